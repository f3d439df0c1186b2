"""The answer key written beside every run: seed, settings, window, counts and the model's true parameters.

A pipeline's tests can compare what they compute from the events with these numbers;
the report reads them as its targets.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from ..config import DEVICES, FAULT_KINDS, PLATFORMS, PRODUCTS, Settings, SettingsError, redis_address
from ..models import EVENT_TYPES, dataset_name, file_name
from ..reference import CHANNELS, airports
from ..simulation import calendar, inventory, results
from ..simulation import users as lifecycle
from ..simulation.journeys import JOURNEY_DAYS, NIGHT_HOURS
from ..simulation.population import DEVICE_GIVEN_PLATFORM, HABIT_LOYALTY
from ..simulation.sessions import (
    DEVICE_SENSITIVITY,
    HOTEL_STAR_FILTER_RATE,
    LEAD_PACKAGE_FACTOR,
    LEAD_SCALE,
    LEAD_SHAPE,
    MAX_SEARCHES,
    NIGHTS_MEDIAN,
    NIGHTS_SIGMA,
    PHONE_NIGHTS_FACTOR,
    PHONE_PRODUCT_CONVERSION,
    PHONE_TRAVELERS,
    PRODUCT_LOYALTY,
    SESSION_TIMEOUT_MS,
    SHORT_TRIP_CAR,
)
from ..simulation.timing import DAY_OF_WEEK, HOUR_OF_DAY
from .answer_key import KeyWritten, cut_back, file_sizes, key_entry
from .faults import FAULTS_FILE
from .files import IMPRESSIONS, IMPRESSIONS_FILE, WriteFailed, write_atomically
from .items import ITEMS_FILE
from .parquet import PARQUET_RUN, rows_in, run_files
from .users import USERS_FILE

if TYPE_CHECKING:
    from ..simulation.sessions import SessionModel

MANIFEST = "manifest.json"
# The answer-key files beside the events, by the name of their entry in a run's record, in the order they are written.
ANSWER_KEYS = {"users": USERS_FILE, "items": ITEMS_FILE}

# Settings that say where events go, how fast, or over which window (compared on its own), not which
# events a seed gives: a run's identity leaves them out.
NOT_EVENT_SETTINGS = {
    "OUTPUT_DIR", "OVERWRITE", "QUIET", "OUTPUT", "REDIS_HOST", "REDIS_PORT", "REDIS_URL", "REDIS_PASSWORD",
    "REDIS_DB", "STREAM_PREFIX", "STREAM_MAXLEN", "REDIS_BUFFER_EVENTS", "REDIS_RETRY_SECONDS", "BATCH_RATE",
    "EVENTS_PER_SECOND", "WINDOW_START", "WINDOW_END", "WINDOW_DAYS", "DURATION", "MODE", "WORKERS", "IMPRESSIONS",
    "PARQUET_COMPRESSION",
}  # fmt: skip


class FolderPublisher(Protocol):
    """What the manifest needs of a sink writing into the output folder (JSONL files or Parquet datasets)."""

    directory: Path
    overwrite: bool
    dropped: bool

    @property
    def sizes_at_start(self) -> dict[str, Any]:
        """What to note before the run so a killed run's share can be counted."""

    def undo(self) -> None:
        """Take this run's output out of the folder again."""


RUNNING = "running"  # in manifest.json while a run appends: seed, window and the files' sizes before it


class RepeatedRun(SettingsError):
    """A run whose events are already in the folder's files; one line for the user."""


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


def settings_digest(record: dict[str, Any]) -> str:
    """A short hash of the settings (by variable name, as in :func:`settings_record`) that decide the events."""
    shaping = {k: v for k, v in sorted(record.items()) if k not in NOT_EVENT_SETTINGS}
    # Fault settings left at "none" are left out: a run without faults keeps the digest it had before they existed.
    shaping = {k: v for k, v in shaping.items() if not (k.startswith("FAULT") and v in (None, "none"))}
    return hashlib.sha256(json.dumps(shaping, sort_keys=True).encode()).hexdigest()[:16]


def check_new_run(directory: Path, seed: int, name: str = "OUTPUT_DIR") -> None:
    """Refuse a run whose seed is already in ``directory``'s files, going by its manifest.

    Event ids are drawn from the seed alone: another count, window, setting or mode with the
    same seed gives many of the same ids again (10,000 then 10,001 events share 6,566 search
    ids), so any run of the folder with this seed makes this one a repeat. Raises
    :class:`RepeatedRun`, or :class:`SettingsError` when a manifest is there but cannot be
    read. A run killed while appending is listed first (:func:`account_for_killed_run`).
    Call it under the folder's lock, and only when appending.
    """
    path = directory / MANIFEST
    if not path.exists():
        return
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(document, dict) or not isinstance(document.get("runs", []), list):
            raise ValueError("not a manifest")
    except (OSError, ValueError):
        raise SettingsError(
            f"{name}={directory}: {MANIFEST} cannot be read, so what the files hold is unknown; "
            "move it away or use --overwrite"
        ) from None
    try:
        account_for_killed_run(directory, document)
    except OSError as exc:
        raise WriteFailed(path, exc, "; nothing was written") from None
    runs = [*document.get("runs", []), document]  # manifests of earlier versions give the last run only at the top
    for run in runs:
        if not isinstance(run, dict) or run.get("seed") != seed:
            continue
        when = run.get("written_at") or "earlier"
        mode = run.get("mode") or "a"
        raise RepeatedRun(
            f"{name}={directory}: seed {seed} is already in these files ({mode} run, {when}), and a seed gives "
            f"the same event ids whatever the count, window, settings or mode; use --overwrite to replace the "
            f"files, or another --seed"
        )


def lines_after(path: Path, offset: int) -> int:
    """Whole lines in ``path`` after byte ``offset`` (0 if it is not there)."""
    try:
        with path.open("rb") as handle:
            handle.seek(offset)
            return sum(block.count(b"\n") for block in iter(lambda: handle.read(1 << 22), b""))
    except FileNotFoundError:
        return 0


def _keep_lines(path: Path, offset: int, lines: int) -> None:
    """Cut ``path`` after the first ``lines`` whole lines that follow byte ``offset`` (if it has more)."""
    try:
        with path.open("r+b") as handle:
            handle.seek(offset)
            end, left = offset, lines
            while left:
                block = handle.read(1 << 22)
                if not block:
                    return
                found = block.count(b"\n")
                if found < left:
                    end, left = end + len(block), left - found
                    continue
                at = -1
                for _ in range(left):
                    at = block.index(b"\n", at + 1)
                end, left = end + at + 1, 0
            handle.truncate(end)
    except FileNotFoundError:
        return


def account_for_killed_run(directory: Path, document: dict[str, Any]) -> dict[str, Any] | None:
    """If a run was killed while appending (its ``running`` note is still in ``document``), list it under ``runs``.

    Its lines are those after the sizes it noted, so ``totals_in_files`` stays true and the
    same seeded run is refused as a repeat; the answer-key files (``users.jsonl``,
    ``items.jsonl``) are cut back to the sizes it noted (written after the events, they are
    incomplete at best). Rewrites the manifest (under the lock); returns the killed run's
    entry, or None.
    """
    note = document.get(RUNNING)
    if not isinstance(note, dict):
        return None
    sizes = note.get("sizes", {})
    counts = {t: lines_after(directory / file_name(t), int(sizes.get(t, 0))) for t in EVENT_TYPES}
    if isinstance(sizes.get(PARQUET_RUN), str) and not any(t in sizes for t in EVENT_TYPES):
        # Parquet only: the run's complete files (by its tag) are what it left; its unfinished ones were never named.
        counts = rows_in(run_files(directory, sizes[PARQUET_RUN]))
    keys = ("seed", "mode", "window_start", "window_end", "settings_digest")
    entry = {**{k: note[k] for k in keys if k in note}, "written_at": note.get("started_at"), "counts": counts}
    entry.update(interrupted=True, killed=True)
    for key, name in ANSWER_KEYS.items():
        entry[key] = key_entry(name, None, f"killed before its {key} were written")
    # Answer keys are written after the events: a run killed meanwhile may have left some lines, or a partial one.
    noted = note.get("answer_key_sizes")
    if not isinstance(noted, dict):
        noted = {USERS_FILE: note.get("users_size")}  # the note of a version before items.jsonl
    cut_back(directory, {n: noted[n] for n in ANSWER_KEYS.values() if isinstance(noted.get(n), int)})
    if isinstance(sizes.get(IMPRESSIONS), int):
        # Impressions are written just before their searches: keep one line per search line the run left.
        _keep_lines(directory / IMPRESSIONS_FILE, sizes[IMPRESSIONS], counts["search"])
    runs = list(document.get("runs", []))
    if sum(counts.values()):
        runs.append(entry)
    del document[RUNNING]
    document["runs"] = runs
    document["totals_in_files"] = {t: sum(run["counts"].get(t, 0) for run in runs) for t in EVENT_TYPES}
    write_atomically(directory / MANIFEST, (json.dumps(document, indent=2) + "\n").encode())
    return entry if sum(counts.values()) else None


def begin_run(
    publishers: Sequence[FolderPublisher], settings: Settings, seed: int, window: tuple[str, str] | None
) -> None:
    """Note in the manifest that a run starts appending: its seed, window and the files' sizes before it.

    A run killed before it writes its manifest is then listed by the next run (see
    :func:`account_for_killed_run`). An ``--overwrite`` run notes nothing: killed, a batch
    run leaves the old files. Raises WriteFailed when the note cannot be written (nothing is written then).
    """
    publisher = publishers[0]
    if publisher.overwrite:
        return
    path = publisher.directory / MANIFEST
    sizes = {k: v for p in publishers for k, v in p.sizes_at_start.items()}
    try:
        document: dict[str, Any] = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {"runs": []}
        document[RUNNING] = {
            "seed": seed,
            "mode": settings.mode,
            **({"window_start": window[0], "window_end": window[1]} if window else {}),
            "settings_digest": settings_digest(settings_record(settings)),
            "started_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "sizes": sizes,
            "answer_key_sizes": file_sizes(publisher.directory, tuple(ANSWER_KEYS.values())),
        }
        write_atomically(path, (json.dumps(document, indent=2) + "\n").encode())
    except (OSError, ValueError) as exc:
        error = exc if isinstance(exc, OSError) else OSError(0, str(exc))
        raise WriteFailed(path, error, "; nothing was written") from None


def origin_airports(origins: np.ndarray) -> list[dict[str, Any]]:
    """The airports a run's users fly from (rows of ``airports()``): the number in flight and package result_ids.

    A flight or package ``result_id`` is ``<prefix>_<number * 1,000,000 + item_number>``.
    """
    rows = np.asarray(origins, dtype=np.int64)
    codes = airports()["iata"].gather(rows).to_list()
    return [{"number": row + 1, "iata": code} for row, code in zip(rows.tolist(), codes, strict=True)]


def true_parameters(settings: Settings, model: SessionModel | None = None) -> dict[str, Any]:
    """The parameters the events were drawn from, as a pipeline would want to check them.

    With the run's session ``model``, also what depends on its markets: the origin airports
    (``origin_airports``, to decode flight result_ids) and the fare scale (``money.airfare_scale``).
    """
    decay, page = settings.click_position_decay, settings.page_size
    zero_rate = results.zero_result_share(settings)
    ranks = np.arange(1, page + 1, dtype=float) ** -decay
    strength = settings.attractiveness_strength
    parameters: dict[str, Any] = {
        "funnel": {
            "click_through_rate": settings.click_through_rate,
            "conversion_rate": settings.conversion_rate,
            "zero_result_rate": zero_rate,
            "clicks_per_search_at_most": 1,
            "conversions_per_click_at_most": 1,
        },
        "click_model": {
            "kind": "position-based, one click at most per search",
            "examination": f"1/rank^{decay}",
            "examination_by_rank": ranks.round(6).tolist(),
            "page_size": page,
            "click_share_by_rank_full_first_page": (ranks / ranks.sum()).round(4).tolist(),
            "attractiveness": "1 / (1 + exp(-logit))",
            "logit": "intercept + strength * (-price * sensitivity * relative_log_price + quality * quality_z)",
            "attractiveness_coefficients": {**results.ATTRACTION, "strength": strength},
            "click_probability": "lambda * examination * attractiveness (lambda: scaled per batch to the rate)",
            "relative_log_price": "log price of the item minus the mean log price of its page",
            "quality_z": "the item's quality standardised over its destination's items of the product",
            "price_sensitivity": {
                "mean_setting": settings.price_sensitivity,
                "per_user": f"setting * exp({results.SENSITIVITY_SPREAD} * logit(U)), U a hash of seed and user",
                "device_factor": dict(zip(DEVICES, DEVICE_SENSITIVITY.tolist(), strict=True)),
            },
        },
        "booking_model": {
            "weight": "journey * device * phone_product * night * calendar * offer * near_trip (scaled per batch)",
            "phone_product": dict(zip(PRODUCTS, PHONE_PRODUCT_CONVERSION.tolist(), strict=True)),
            "offer": "exp(strength * (-price * sensitivity * relative_log_price + quality * quality_z))",
            "coefficients": {**results.BOOKING, "strength": strength},
        },
        "results": {
            "ranking": {
                "relevance_weights": inventory.RELEVANCE,
                "features": "standardised log price, quality, log popularity",
                "page_order": f"sorted by place + {results.PAGE_JITTER} * N(0, 1), drawn per search and place "
                "(items stay on their page)",
            },
            "availability_share_of_matching": list(results.AVAILABILITY),
            "cheap_cap_share_of_typical": results.CHEAP_CAP,
            "routes_without_service": inventory.NO_SERVICE,
            "route_share_of_offers": list(inventory.ROUTE_SHARE),
            "items_file": ITEMS_FILE,
            "impressions_file": IMPRESSIONS_FILE if settings.impressions else None,
        },
        "sessions": {
            "searches_per_session_mean": settings.searches_per_session,
            "searches_per_session_cap": MAX_SEARCHES,
            "session_timeout_minutes": SESSION_TIMEOUT_MS / 60_000,
            "anonymous_rate": settings.anonymous_rate,
            "habit_loyalty": HABIT_LOYALTY,
            "favourite_product_draw": f"{PRODUCT_LOYALTY} of a logged-in user's new trips take their favourite "
            "product (a hash of the user, by the product shares); the rest draw by the shares",
            "hotel_star_filter_share_of_users": HOTEL_STAR_FILTER_RATE,
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
            "phone_nights_factor": PHONE_NIGHTS_FACTOR,
            "phone_travelers_1_to_6": PHONE_TRAVELERS.tolist(),
            "season_strength": settings.season_strength,
        },
        "money": {
            "hotel_night_mean_usd_us": inventory.HOTEL_NIGHT,
            "hotel_star_night_factor": inventory.STAR_NIGHT.tolist(),
            "hotel_night_bounds_usd": list(inventory.HOTEL_NIGHT_BOUNDS),
            "room_capacity": inventory.ROOM_CAPACITY,
            "airfare_round_trip_mean_usd_us_domestic": inventory.AIRFARE_ROUND,
            "airfare": "2 * (terminal + taper per mile by band) * scale, one way a share of it",
            "airfare_terminal_usd": inventory.FARE_TERMINAL,
            "airfare_bands_miles_usd_per_mile": [
                [b if b != float("inf") else None, r] for b, r in inventory.FARE_BANDS
            ],
            "airfare_one_way_share": round(inventory.ONE_WAY_SHARE, 4),
            "airfare_stop_factor": inventory.STOP_FARE.tolist(),
            "min_flight_km": settings.min_flight_km,
            "short_trip_car_share": SHORT_TRIP_CAR,
            "car_day_mean_usd": inventory.CAR_DAY,
            "package_discount": list(inventory.PACKAGE_DISCOUNT),
            "price_moves": {
                "season": {"per_popularity": inventory.SEASON_PRICE, "bounds": list(inventory.SEASON_BOUNDS)},
                "demand_bounds": list(inventory.DEMAND_BOUNDS),
                "flight_lead_days_factor": [[d if d != float("inf") else None, f] for d, f in inventory.FLIGHT_LEAD],
                "hotel_weekend": inventory.WEEKEND_HOTEL,
                "flight_weekday_monday_first": inventory.FLIGHT_WEEKDAY.tolist(),
            },
            "commission_rates_on_price": settings.commission_by_product,
            "taxes_and_fees": settings.taxes_by_product,
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
    if model is not None:
        parameters["money"]["airfare_scale"] = model.airfare_scale
        parameters["origin_airports"] = origin_airports(model.origins)
    return parameters


def run_record(
    settings: Settings,
    seed: int,
    counts: dict[str, int],
    span: dict[str, Any],
    interrupted: bool,
    special_days: list[dict[str, Any]] | None = None,
    answer_keys: dict[str, dict[str, Any]] | None = None,
    model: SessionModel | None = None,
    faults: dict[str, int] | None = None,
) -> dict[str, Any]:
    """The manifest entry of one run; ``special_days`` are the calendar's holidays and deal days in its window.

    ``faults`` are the faults injected, by kind, for a run with faults (listed in ``faults.jsonl``).

    ``answer_keys`` says what the run added to each answer-key file, by its entry's name in
    :data:`ANSWER_KEYS` (:func:`~src.output.answer_key.key_entry`; none added where missing).
    ``model`` is the run's session model, for the parameters that depend on its markets.
    """
    parameters = true_parameters(settings, model)
    files: dict[str, str] = {t: file_name(t) for t in EVENT_TYPES} if settings.writes_lines else {}
    if settings.impressions and settings.writes_lines:
        files["impressions"] = IMPRESSIONS_FILE
    datasets = {t: f"{dataset_name(t)}/date=YYYY-MM-DD/*.parquet" for t in EVENT_TYPES}
    parquet = {"datasets": datasets, "partitioned_by": "date of the event in UTC"}
    parquet["compression"] = settings.parquet_compression
    parameters["calendar"]["special_days"] = special_days or []
    given = answer_keys or {}
    return {
        "seed": seed,
        "written_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "settings_digest": settings_digest(settings_record(settings)),
        "mode": settings.mode,
        **span,
        "counts": counts,
        "interrupted": interrupted,
        **{key: given.get(key) or key_entry(name, None) for key, name in ANSWER_KEYS.items()},
        "files": files,
        **({"parquet": parquet} if settings.writes_parquet else {}),
        **({"faults": fault_entry(settings, faults)} if faults is not None else {}),
        "settings": settings_record(settings),
        "parameters": parameters,
    }


def fault_entry(settings: Settings, faults: dict[str, int]) -> dict[str, Any]:
    """The manifest's account of a run's faults: the sidecar, the rates asked for and the faults injected by kind."""
    counts = {kind: faults.get(kind, 0) for kind in FAULT_KINDS}
    return {"file": FAULTS_FILE, "rates": settings.fault_rates(), "counts": counts, "total": sum(counts.values())}


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
    keys = (
        "seed",
        "written_at",
        "mode",
        "window_start",
        "window_end",
        "rate",
        "settings_digest",
        "counts",
        "interrupted",
        "faults",
        *ANSWER_KEYS,
    )
    runs.append({k: record[k] for k in keys if k in record})
    totals = {t: sum(run["counts"].get(t, 0) for run in runs) for t in EVENT_TYPES}
    document = {**record, "totals_in_files": totals, "runs": runs}
    write_atomically(path, (json.dumps(document, indent=2) + "\n").encode())
    return path


def record_run(
    publishers: Sequence[FolderPublisher],
    record: dict[str, Any],
    overwrite: bool,
    answer_keys: Sequence[KeyWritten] = (),
) -> Path | None:
    """Write the manifest for what a run left in ``publisher``'s files (after closing it); its path.

    None when the run's new files were dropped (a failed ``--overwrite``): files and manifest
    are as they were. If the manifest cannot be written, an appending run's lines are taken
    out of the files again, the answer-key files' too (``answer_keys``: ``users.jsonl``,
    ``items.jsonl``), and WriteFailed raised (an overwrite's stale manifest is removed), so a
    manifest never says something other than what the files hold.
    """
    if any(p.dropped for p in publishers):
        return None
    directory = publishers[0].directory
    path = directory / MANIFEST
    try:
        return write_manifest(directory, record, overwrite=overwrite)
    except OSError as exc:
        if overwrite:  # the old files are gone (renamed over, or emptied by a live run): so must their manifest be
            try:
                path.unlink(missing_ok=True)
                note = f"; the files hold this run's events and {MANIFEST} was removed"
            except OSError:
                note = f"; the files hold this run's events, {MANIFEST} an earlier run's"
        else:
            for publisher in publishers:
                publisher.undo()
            for written in answer_keys:
                written.undo()
            note = "; this run's lines were taken out of the files again"
        raise WriteFailed(path, exc, note) from None


def read_manifest(directory: Path) -> dict[str, Any] | None:
    """The manifest beside a run's files, or None if there is none (or it does not parse)."""
    try:
        document = json.loads((directory / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return document if isinstance(document, dict) else None
