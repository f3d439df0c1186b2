"""The users' answer key: who signed up when, who churned when, where they live and how active they are.

Written as ``users.jsonl`` beside the event files, one JSON object per user of the run:
a churn model has labels to be tested against, and a returning-visit measure the true
sign-up times.
"""

from __future__ import annotations

import contextlib
import os
import re
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from ..config import DEVICES, PLATFORMS
from ..reference import CityTable
from .files import WriteFailed

USERS_FILE = "users.jsonl"


def _iso(column: str) -> pl.Expr:
    """Epoch milliseconds as ISO 8601 UTC text with milliseconds, or null for a negative value."""
    instant = pl.from_epoch(pl.col(column), time_unit="ms").dt.strftime("%Y-%m-%dT%H:%M:%S%.3fZ")
    return pl.when(pl.col(column) >= 0).then(instant).otherwise(None).alias(column)


def users_frame(users: pl.DataFrame, cities: CityTable) -> pl.DataFrame:
    """The users table of a run (as the engine returns it) in the form it is written."""
    users = users.sort("user")
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


@dataclass(frozen=True)
class UsersWritten:
    """What a run added to ``users.jsonl``: the file, its lines, and its size before (to take them out again)."""

    path: Path
    lines: int
    size_before: int

    def undo(self) -> None:
        """Cut the file back to its size before this run's lines (the manifest could not be written)."""
        with contextlib.suppress(OSError):
            os.truncate(self.path, self.size_before)


def _os_error(error: OSError) -> OSError:
    """``error`` with its errno: polars raises OSError("No space left on device (os error 28)") without one."""
    found = re.search(r"os error (\d+)", str(error)) if error.errno is None else None
    return OSError(int(found.group(1)), os.strerror(int(found.group(1)))) if found else error


def write_users(directory: Path, users: pl.DataFrame, cities: CityTable, overwrite: bool) -> UsersWritten | None:
    """Write (or, appending a run, add to) ``users.jsonl``; None when the run had no users table.

    A write that fails (disk full, I/O error) cuts the file back to its size before, so it
    holds whole lines only and none of this run's (an overwrite's file is removed), and
    raises :class:`WriteFailed` naming it. Overwriting with no users removes the old file:
    its users belong to the events just replaced.
    """
    path = directory / USERS_FILE
    if not users.height:
        if overwrite:
            path.unlink(missing_ok=True)
        return None
    try:
        before = 0 if overwrite else path.stat().st_size
    except FileNotFoundError:
        before = 0
    frame = users_frame(users, cities)
    try:
        with path.open("wb" if overwrite else "ab") as handle:
            frame.write_ndjson(handle)
    except OSError as exc:
        try:
            if overwrite:
                path.unlink(missing_ok=True)
                note = f"; {USERS_FILE} was removed"
            else:
                # Never longer than it is: a file cut by someone else meanwhile must not grow NUL bytes.
                os.truncate(path, min(before, path.stat().st_size))
                note = f"; {USERS_FILE} was cut back to the lines before this run"
        except OSError as cut:
            note = f"; could not cut {USERS_FILE} back to whole lines ({(cut.strerror or str(cut)).lower()})"
        raise WriteFailed(path, _os_error(exc), note) from None
    return UsersWritten(path, frame.height, before)
