"""Journeys across sessions and the effects on who books, measured on seeded output.

Tolerances are loose on purpose: each compares two groups of thousands of sessions
whose configured difference is large (a factor of 1.5 to 3), so sampling error is a
few per cent of the difference.
"""

from __future__ import annotations

from datetime import UTC, datetime

import polars as pl
import pytest

from src.reference import destinations

from .conftest import Sample, generate


def _sessions(sample: Sample) -> pl.DataFrame:
    """One row per logged-in session: user, first search time and trip start, in time order per user."""
    return (
        sample.search.drop_nulls("user_id")
        .with_columns(pl.col("filters").struct.field("start_date").str.to_date().alias("trip_start"))
        .group_by("session_id")
        .agg(
            pl.col("user_id").first(),
            pl.col("timestamp").min(),
            pl.col("trip_start").first(),
            pl.col("device_type").first(),
        )
        .with_columns(pl.col("timestamp").str.to_datetime("%Y-%m-%dT%H:%M:%S%.3fZ"))
        .sort("user_id", "timestamp")
        .with_columns(
            pl.col("trip_start").shift().over("user_id").alias("previous_start"),
            pl.col("timestamp").shift().over("user_id").alias("previous_time"),
        )
    )


def test_returning_users_come_back_to_their_trip_with_dates_drawing_near(million: Sample) -> None:
    """A logged-in user's next session often plans the same trip; on a later day its lead time is shorter."""
    sessions = _sessions(million).drop_nulls("previous_start")
    same_trip = sessions.filter((pl.col("trip_start") - pl.col("previous_start")).dt.total_days().abs() <= 3)
    assert same_trip.height / sessions.height > 0.3
    later_day = same_trip.filter(pl.col("timestamp").dt.date() > pl.col("previous_time").dt.date())
    lead = (pl.col("trip_start") - pl.col("timestamp").dt.date()).dt.total_days()
    previous_lead = (pl.col("previous_start") - pl.col("previous_time").dt.date()).dt.total_days()
    shrinking = later_day.select((lead < previous_lead).mean()).item()
    assert later_day.height > 1000
    assert shrinking > 0.8


def test_first_search_day_books_more_than_the_visits_after_it(million: Sample) -> None:
    """Clicks in sessions on the day a trip was first searched convert more than clicks two or three visits later."""
    sessions = (
        _sessions(million)
        .with_columns(
            ((pl.col("trip_start") - pl.col("previous_start")).dt.total_days().abs() > 3)
            .fill_null(True)
            .alias("new_trip")
        )
        .with_columns(pl.col("new_trip").cum_sum().over("user_id").alias("trip"))
    )
    sessions = sessions.with_columns(
        pl.int_range(pl.len()).over("user_id", "trip").alias("visit"),
        (pl.col("timestamp").dt.date() == pl.col("timestamp").dt.date().first().over("user_id", "trip")).alias(
            "first_day"
        ),
    )
    clicks = million.click.select("event_id", "session_id").join(sessions, on="session_id")
    booked = million.conversion.select(pl.col("click_event_id").alias("event_id"), pl.lit(1).alias("booked"))
    clicks = clicks.join(booked, on="event_id", how="left").with_columns(pl.col("booked").fill_null(0))
    first = clicks.filter(pl.col("first_day"))["booked"].mean()
    middle = clicks.filter(~pl.col("first_day") & pl.col("visit").is_between(1, 2))["booked"].mean()
    assert first > 1.3 * middle


def test_night_sessions_convert_less(million: Sample) -> None:
    """Clicks of sessions that start between 00:00 and 05:59 local time book at under 75 % of the overall rate."""
    starts = million.search.sort("timestamp").unique("session_id", keep="first")
    hours = _local_hours(starts)
    clicks = million.click.select("event_id", "session_id").join(hours, on="session_id")
    booked = set(million.conversion["click_event_id"])
    clicks = clicks.with_columns(pl.col("event_id").is_in(list(booked)).alias("booked"))
    night = clicks.filter(pl.col("hour") < 6)["booked"].mean()
    assert clicks.filter(pl.col("hour") < 6).height > 1000
    assert night < 0.75 * clicks["booked"].mean()


def _local_hours(starts: pl.DataFrame) -> pl.DataFrame:
    """Local hour of each session's first search."""
    from src.reference import all_cities

    zones = all_cities().sort("population", descending=True).unique(["country", "name"], keep="first")
    frame = starts.select(
        "session_id",
        pl.col("timestamp").str.to_datetime("%Y-%m-%dT%H:%M:%S%.3fZ", time_zone="UTC"),
        pl.col("geo").struct.field("country"),
        pl.col("geo").struct.field("city"),
    ).join(zones.select("country", pl.col("name").alias("city"), "timezone"), on=["country", "city"])
    parts = [
        group.select("session_id", pl.col("timestamp").dt.convert_time_zone(str(zone)).dt.hour().alias("hour"))
        for (zone,), group in frame.group_by("timezone")
    ]
    return pl.concat(parts)


def test_phones_search_closer_to_the_trip_and_desktops_take_most_bookings(million: Sample) -> None:
    """Mean lead time on phones is under 80 % of desktop's; desktop books more than its share of clicks, and most."""
    lead = million.search.select(
        "device_type",
        (pl.col("filters").struct.field("start_date").str.to_date()
         - pl.col("timestamp").str.slice(0, 10).str.to_date()).dt.total_days().alias("lead"),
    ).group_by("device_type").agg(pl.col("lead").mean())  # fmt: skip
    means = dict(lead.iter_rows())
    assert means["mobile"] < 0.8 * means["desktop"]
    device = million.search.unique("session_id").select("session_id", "device_type")
    clicks = million.click.join(device, on="session_id")["device_type"]
    bookings = million.conversion.join(device, on="session_id")["device_type"]
    assert (bookings == "desktop").mean() > max(0.5, (clicks == "desktop").mean())


@pytest.mark.parametrize("strength", [1.0, 0.0])
def test_beach_destinations_weigh_more_in_winter(tmp_path, strength: float) -> None:
    """Beach destinations take a larger share of searches in January than in July; SEASON_STRENGTH=0 removes it."""
    beaches = set(destinations().filter(pl.col("kind") == "beach")["name"])
    shares = []
    for month in (1, 7):
        start = datetime(2026, month, 1, tzinfo=UTC)
        sample = generate(tmp_path / f"{month}", 60_000, 4, window_start=start.isoformat(),
                          window_end=start.replace(day=15).isoformat(), season_strength=strength)  # fmt: skip
        shares.append(sample.click["result_destination"].is_in(list(beaches)).mean())
    january, july = shares
    if strength:
        assert january > 1.5 * july
    else:
        assert january == pytest.approx(july, rel=0.1)
