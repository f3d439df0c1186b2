"""The users' answer key: who signed up when, who churned when, where they live and how active they are.

Written as ``users.jsonl`` beside the event files, one JSON object per user of the run:
a churn model has labels to be tested against, and a returning-visit measure the true
sign-up times.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from ..config import DEVICES, PLATFORMS
from ..reference import CityTable
from ..simulation.users import UserTables
from .answer_key import KeyWritten, write_key

USERS_FILE = "users.jsonl"


def _iso(column: str) -> pl.Expr:
    """Epoch milliseconds as ISO 8601 UTC text with milliseconds, or null for a negative value."""
    instant = pl.from_epoch(pl.col(column), time_unit="ms").dt.strftime("%Y-%m-%dT%H:%M:%S%.3fZ")
    return pl.when(pl.col(column) >= 0).then(instant).otherwise(None).alias(column)


def users_frame(users: pl.DataFrame, cities: CityTable) -> pl.DataFrame:
    """Rows of the users table of a run (as the engine returns it) in the form they are written."""
    city = users["city"].cast(pl.Int64)
    return users.select(
        pl.format("user_{}", pl.col("user")).alias("user_id"),
        _iso("signup_ms").alias("signed_up_at"),
        _iso("churned_ms").alias("churned_at"),
    ).with_columns(
        cities.country.gather(city).alias("home_country"),
        cities.name.gather(city).alias("home_city"),
        pl.Series(PLATFORMS).gather(users["platform"].cast(pl.Int64)).alias("platform"),
        pl.Series(DEVICES).gather(users["device"].cast(pl.Int64)).alias("device_type"),
        users["activity"].round(4).alias("activity"),
        users["sessions"].alias("sessions_in_run"),
        users["bookings"].alias("bookings_in_run"),
    )


def write_users(directory: Path, users: UserTables, cities: CityTable, overwrite: bool) -> KeyWritten | None:
    """Write (or, appending a run, add to) ``users.jsonl``, in order of user; None when the run had no users.

    See :func:`~src.output.answer_key.write_key` for a failed write (WriteFailed naming the
    file, whole lines left) and an overwrite with no users (the old file is removed).
    """
    return write_key(directory, USERS_FILE, users, overwrite, lambda rows: users_frame(rows, cities))
