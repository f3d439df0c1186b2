"""The answer key written beside every run: seed, settings, window, counts and the model's true parameters.

A pipeline's tests can compare what they compute from the events with these numbers;
the report reads them as its targets.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from ..config import DEVICES, PLATFORMS, PRODUCTS, Settings, redis_address
from ..models import EVENT_TYPES, file_name
from ..reference import CHANNELS
from ..simulation import calendar
from ..simulation import users as lifecycle
from ..simulation.journeys import JOURNEY_DAYS, NIGHT_HOURS
from ..simulation.population import DEVICE_GIVEN_PLATFORM, HABIT_LOYALTY
from ..simulation.sessions import (
    AIRFARE_ONE_WAY,
    AIRFARE_ROUND,
    CAR_DAY,
    HOTEL_NIGHT,
    LEAD_PACKAGE_FACTOR,
    LEAD_SCALE,
    LEAD_SHAPE,
    MAX_SEARCHES,
    NIGHTS_MEDIAN,
    NIGHTS_SIGMA,
    PACKAGE_HOTEL_MARKUP,
    SESSION_TIMEOUT_MS,
    funnel_rates,
)
from ..simulation.timing import DAY_OF_WEEK, HOUR_OF_DAY
from .users import USERS_FILE

MANIFEST = "manifest.json"


def settings_record(settings: Settings) -> dict[str, Any]:
    """Every setting by its environment variable name, secrets masked, in JSON types."""
    record: dict[str, Any] = {}
    for name, value in settings.model_dump(mode="json").items():
        if name == "redis_password" and value is not None:
            value = "***"
        elif name == "redis_url" and value is not None:
            value = redis_address(value)
        record[name.upper()] = value
    return record


def true_parameters(settings: Settings) -> dict[str, Any]:
    """The parameters the events were drawn from, as a pipeline would want to check them."""
    decay, page = settings.click_position_decay, settings.page_size
    zero_rate, click_given_results = funnel_rates(settings)
    ranks = np.arange(1, page + 1, dtype=float) ** -decay
    return {
        "funnel": {
            "click_through_rate": settings.click_through_rate,
            "conversion_rate": settings.conversion_rate,
            "zero_result_rate": zero_rate,
            "click_probability_given_results": click_given_results,
            "clicks_per_search_at_most": 1,
            "conversions_per_click_at_most": 1,
        },
        "click_model": {
            "kind": "position-based, one click at most per search",
            "examination": f"1/rank^{decay}",
            "page_size": page,
            "click_share_by_rank_full_first_page": (ranks / ranks.sum()).round(4).tolist(),
        },
        "sessions": {
            "searches_per_session_mean": settings.searches_per_session,
            "searches_per_session_cap": MAX_SEARCHES,
            "session_timeout_minutes": SESSION_TIMEOUT_MS / 60_000,
            "anonymous_rate": settings.anonymous_rate,
            "habit_loyalty": HABIT_LOYALTY,
        },
        "users": {
            "base_users_before_window": settings.user_pool_size,
            "signup_share_of_logged_in_sessions": settings.signup_share,
            "activity": (
                f"Zipf-Mandelbrot weight (1 + {lifecycle.ZIPF_OFFSET:g} + U * {lifecycle.ZIPF_RANKS:g})"
                f"^-{lifecycle.ZIPF_EXPONENT:g}, mean 1"
            ),
            "max_sessions_per_day": lifecycle.MAX_SESSIONS_PER_DAY,
            "min_minutes_between_session_starts": lifecycle.DEAD_TIME_MS / 60_000,
            "churn": {
                "weibull_shape": lifecycle.CHURN_SHAPE,
                "weibull_scale_days": lifecycle.CHURN_DAYS,
                "scale_factor_after_booking": lifecycle.CHURN_BOOKED_FACTOR,
            },
            "history_last_seen_days": lifecycle.BASE_LAST_SEEN_DAYS,
            "users_file": USERS_FILE,
        },
        "shards": settings.shards,
        "calendar": {"strength": settings.calendar_strength, **calendar.parameters()},
        "journeys": {
            "return_trip_rate": settings.return_trip_rate,
            "journey_days": JOURNEY_DAYS,
            "conversion_weights": settings.journey_weights,
            "device_conversion_weights": settings.device_weights,
            "night_conversion_factor": settings.night_conversion_factor,
            "night_hours": [NIGHT_HOURS.start, NIGHT_HOURS.stop - 1],
        },
        "devices": {
            "platform_shares": settings.platform_weights,
            "device_given_platform": {
                p: dict(zip(DEVICES, DEVICE_GIVEN_PLATFORM[i].tolist(), strict=True)) for i, p in enumerate(PLATFORMS)
            },
        },
        "trips": {
            "product_shares": settings.product_weights,
            "lead_time_days": {"gamma_shape": LEAD_SHAPE, "gamma_scale": LEAD_SCALE},
            "mobile_lead_factor": settings.mobile_lead_factor,
            "package_lead_factor": LEAD_PACKAGE_FACTOR,
            "nights": {"lognormal_median": NIGHTS_MEDIAN, "lognormal_sigma": NIGHTS_SIGMA},
            "season_strength": settings.season_strength,
        },
        "money": {
            "hotel_night_mean_usd": HOTEL_NIGHT,
            "airfare_round_trip_mean_usd": AIRFARE_ROUND,
            "airfare_one_way_mean_usd": AIRFARE_ONE_WAY,
            "car_day_mean_usd": CAR_DAY,
            "package_hotel_markup": PACKAGE_HOTEL_MARKUP,
            "commission_rates": settings.commission_by_product,
        },
        "rhythm": {
            "hour_of_day_share_local": HOUR_OF_DAY.round(5).tolist(),
            "day_of_week_share_local_monday_first": DAY_OF_WEEK.round(5).tolist(),
        },
        "channels": [
            {
                "source": c.source,
                "medium": c.medium,
                "campaigns": list(c.campaigns),
                "new_share": c.new_share,
                "returning_share": c.returning_share,
            }
            for c in CHANNELS
        ],
        "markets": list(settings.market_codes) if settings.market_codes else "ALL",
        "products": list(PRODUCTS),
    }


def run_record(
    settings: Settings,
    seed: int,
    counts: dict[str, int],
    span: dict[str, Any],
    interrupted: bool,
    special_days: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """The manifest entry of one run; ``special_days`` are the calendar's holidays and deal days in its window."""
    parameters = true_parameters(settings)
    parameters["calendar"]["special_days"] = special_days or []
    return {
        "seed": seed,
        "written_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "mode": settings.mode,
        **span,
        "counts": counts,
        "interrupted": interrupted,
        "files": {t: file_name(t) for t in EVENT_TYPES},
        "settings": settings_record(settings),
        "parameters": parameters,
    }


def write_manifest(directory: Path, record: dict[str, Any], overwrite: bool) -> Path:
    """Write ``manifest.json``: this run's record at the top, and every run into these files under ``runs``.

    The files are appended to run after run, so their totals are the sum over ``runs``.
    """
    path = directory / MANIFEST
    runs: list[dict[str, Any]] = []
    if not overwrite and path.exists():
        try:
            runs = list(json.loads(path.read_text(encoding="utf-8")).get("runs", []))
        except (OSError, ValueError, AttributeError):
            runs = []
    keys = ("seed", "written_at", "mode", "window_start", "window_end", "rate", "counts", "interrupted")
    runs.append({k: record[k] for k in keys if k in record})
    totals = {t: sum(run["counts"].get(t, 0) for run in runs) for t in EVENT_TYPES}
    document = {**record, "totals_in_files": totals, "runs": runs}
    temporary = path.with_suffix(".json.tmp")
    temporary.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    temporary.replace(path)
    return path


def read_manifest(directory: Path) -> dict[str, Any] | None:
    """The manifest beside a run's files, or None if there is none (or it does not parse)."""
    try:
        document = json.loads((directory / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return document if isinstance(document, dict) else None
