"""Settings: one frozen object built from flags, environment variables, a config file and defaults.

Precedence is flag > environment > config file > default. Every field reads the
environment variable of the same name in upper case (``click_through_rate`` ->
``CLICK_THROUGH_RATE``), and the same name prefixed with ``SEARCHFLOW_``
(``SEARCHFLOW_CLICK_THROUGH_RATE``), which wins when both are set. A config file (TOML,
or ``.env`` lines) is named by ``--config`` or ``SEARCHFLOW_CONFIG``; it holds the same
names. Validation happens here, before anything is generated,
and a bad value becomes a :class:`SettingsError` whose message is one line that
names the flag or variable, the value given and what is allowed.
"""

from __future__ import annotations

import ipaddress
import math
import os
import tempfile
import tomllib
import unicodedata
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal, get_args, get_origin
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationError, ValidationInfo, field_validator, model_validator
from pydantic_core import ErrorDetails
from pydantic_settings import (
    BaseSettings,
    DotEnvSettingsSource,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

PLATFORMS = ("web", "ios", "android")
DEVICES = ("desktop", "mobile", "tablet")
PRODUCTS = ("flight", "hotel", "car", "package")
JOURNEY_STAGES = ("first", "middle", "later")

# Names the original platform's scripts use, mapped to ours.
MODE_ALIASES = {"once": "batch", "burst": "batch"}
OUTPUT_ALIASES = {"console": "stdout"}
OUTPUT_SINKS = ("file", "parquet", "redis")  # outputs that combine, in the order a combination is written

# Fault kinds with a rate setting each (FAULT_<KIND>_RATE), and the presets FAULTS names.
FAULT_KINDS = ("duplicate", "resend", "late", "out_of_order", "malformed", "missing", "clock_skew", "drift", "bot")
FAULT_PRESETS: dict[str, dict[str, float]] = {
    "none": dict.fromkeys(FAULT_KINDS, 0.0),
    # A healthy production pipeline's background noise.
    "light": {"duplicate": 0.002, "resend": 0.001, "late": 0.005, "out_of_order": 0.002, "malformed": 0.0005,
              "missing": 0.001, "clock_skew": 0.005, "drift": 0.0, "bot": 0.05},
    # A bad day: a retry storm, a backlog of offline phones, a broken client release.
    "chaos": {"duplicate": 0.03, "resend": 0.01, "late": 0.05, "out_of_order": 0.03, "malformed": 0.01,
              "missing": 0.02, "clock_skew": 0.03, "drift": 0.2, "bot": 0.445},
}  # fmt: skip

# Which command-line flag sets which field, so errors can name what the user typed.
FLAGS = {
    "event_count": "--count",
    "events_per_second": "--rate",
    "batch_rate": "--rate",
    "mode": "--mode",
    "output": "--output",
    "output_dir": "--output-dir",
    "seed": "--seed",
    "window_start": "--start",
    "window_end": "--end",
    "window_days": "--days",
    "duration": "--duration",
    "workers": "--workers",
    "overwrite": "--overwrite",
    "impressions": "--impressions",
    "quiet": "--quiet",
    "faults": "--faults",
}


class SettingsError(ValueError):
    """A setting has a value that is not allowed; the message is one line for the user."""


ENV_PREFIX = "SEARCHFLOW_"
CONFIG_VARIABLE = "SEARCHFLOW_CONFIG"
# The config file of the settings being built: set by load_settings(config=...), else SEARCHFLOW_CONFIG.
_CONFIG_FILE: ContextVar[Path | None] = ContextVar("config_file", default=None)


def config_file() -> Path | None:
    """The config file settings are read from: ``load_settings(config=...)``, else ``SEARCHFLOW_CONFIG``."""
    explicit = _CONFIG_FILE.get()
    if explicit is not None:
        return explicit
    named = os.environ.get(CONFIG_VARIABLE)
    return Path(named) if named else None


@contextmanager
def _reading(config: Path | None) -> Iterator[None]:
    token = _CONFIG_FILE.set(config)
    try:
        yield
    finally:
        _CONFIG_FILE.reset(token)


def is_toml(path: Path) -> bool:
    """A config file is TOML when its name ends in .toml; anything else is read as .env lines."""
    return path.suffix.lower() == ".toml"


class _TomlSource(TomlConfigSettingsSource):
    """pydantic-settings' TOML source, reading keys in any case (EVENT_COUNT or event_count)."""

    def _read_file(self, file_path: Path) -> dict[str, Any]:
        return {str(k).lower(): v for k, v in super()._read_file(file_path).items()}


def config_values(path: Path) -> dict[str, Any]:
    """The settings a config file gives, by lower-case name (for messages)."""
    if is_toml(path):
        with path.open("rb") as handle:
            return {str(k).lower(): v for k, v in tomllib.load(handle).items()}
    from dotenv import dotenv_values

    return {k.lower(): v for k, v in dotenv_values(path).items()}


def _parse_mapping(text: str, keys: tuple[str, ...], word: str, most: float = float("inf")) -> dict[str, float]:
    """Parse ``"a=0.5,b=2"`` into a number from 0 to ``most`` for each of ``keys`` (missing keys: 0)."""
    values: dict[str, float] = {}
    for part in text.split(","):
        name, sep, value = part.partition("=")
        name = name.strip()
        if not sep or name not in keys:
            raise ValueError(f"expected {','.join(f'{k}=<{word}>' for k in keys)}")
        try:
            values[name] = float(value)
        except ValueError:
            raise ValueError(f"{word} of {name!r} must be a number") from None
        if not math.isfinite(values[name]):
            raise ValueError(f"{word} of {name!r} must be a finite number")
        if not 0 <= values[name] <= most:
            raise ValueError(f"{word} of {name!r} must be from 0 to {most:g}")
    return {k: values.get(k, 0.0) for k in keys}


def _parse_shares(text: str, keys: tuple[str, ...]) -> dict[str, float]:
    """Parse ``"a=0.5,b=0.5"`` into shares over ``keys``, normalised to sum 1."""
    shares = _parse_mapping(text, keys, "share")
    total = sum(shares.values())
    if total <= 0:
        raise ValueError("at least one share must be positive")
    if not math.isfinite(total) or any(v > 0 and v / total == 0 for v in shares.values()):
        raise ValueError("shares must be numbers of like size whose sum is finite (each at most 1e300)")
    return {k: v / total for k, v in shares.items()}


def _parse_rates(text: str, keys: tuple[str, ...]) -> dict[str, float]:
    """Parse ``"flight=0,hotel=0.15"`` into a rate from 0 to 1 for every one of ``keys``."""
    missing = [k for k in keys if f"{k}=" not in text.replace(" ", "")]
    if missing:
        raise ValueError(f"missing a rate for {', '.join(missing)}")
    return _parse_mapping(text, keys, "rate", most=1.0)


def _parse_weights(text: str, keys: tuple[str, ...]) -> dict[str, float]:
    """Parse ``"desktop=1,mobile=0.35"``: a relative weight from 0 to 100 for every one of ``keys``."""
    missing = [k for k in keys if f"{k}=" not in text.replace(" ", "")]
    if missing:
        raise ValueError(f"missing a weight for {', '.join(missing)}")
    weights = _parse_mapping(text, keys, "weight", most=100.0)
    if sum(weights.values()) <= 0:
        raise ValueError("at least one weight must be positive")
    return weights


# The slowest rate: one event every 100 s. Slower ones would print as 0 events/s and write nothing for hours.
MIN_RATE = 0.01
# What a file name may hold where the file system does not say (Linux's NAME_MAX and PATH_MAX).
NAME_MAX, PATH_MAX = 255, 4096

# Every date in the events (times, and the trips searched for) lies between EARLIEST and LATEST, within the
# calendar the encoder writes (days after 1970, four-digit years). A window must end a year before LATEST:
# trips are searched for months ahead (and are cut at LATEST in the rare case they would go beyond it).
EARLIEST = datetime(1971, 1, 1, tzinfo=UTC)
LATEST = datetime(2999, 1, 1, tzinfo=UTC)
LATEST_WINDOW = datetime(2998, 1, 1, tzinfo=UTC)
MAX_WINDOW_DAYS = 3660  # the longest window (--days), and how far back a continuous run may start
MAX_EVENTS = 10_000_000_000  # the most events a run may write (--count), and a continuous run may catch up
# A continuous run starts with about a minute of traffic in progress, made at once: memory grows with the rate
# (peak RSS 1.0 GB at 20,000 events/s, 1.5 GB at 40,000, 3.3 GB at 100,000; 24 GB at 10,000,000 was OOM-killed).
MAX_CONTINUOUS_RATE = 40_000


def _parse_instant(value: Any) -> datetime | None:
    """Read an ISO 8601 date or date-time; a value without a zone is taken as UTC."""
    if value is None or isinstance(value, datetime):
        parsed = value
    else:
        try:
            parsed = datetime.fromisoformat(str(value).strip())
        except ValueError:
            raise ValueError("expected an ISO 8601 date or time such as 2026-01-31 or 2026-01-31T12:00:00Z") from None
    if parsed is not None and parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    if parsed is not None and not EARLIEST <= parsed <= LATEST_WINDOW:
        raise ValueError(f"expected a time between {EARLIEST:%Y-%m-%d} and {LATEST_WINDOW:%Y-%m-%d}")
    return parsed.astimezone(UTC) if parsed is not None else None


# Settings written as "key=value,..." and how each is read (all raise ValueError with what is expected).
MAPPINGS: dict[str, tuple[Callable[[str, tuple[str, ...]], dict[str, float]], tuple[str, ...]]] = {
    "platform_shares": (_parse_shares, PLATFORMS),
    "product_shares": (_parse_shares, PRODUCTS),
    "commission_rates": (_parse_rates, PRODUCTS),
    "taxes_and_fees": (_parse_rates, PRODUCTS),
    "journey_conversion_weights": (_parse_weights, JOURNEY_STAGES),
    "device_conversion_weights": (_parse_weights, DEVICES),
}


class Settings(BaseSettings):
    """Everything that decides what a run produces and where it goes."""

    model_config = SettingsConfigDict(frozen=True, extra="forbid", env_ignore_empty=True, validate_default=True)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Flags (init) > SEARCHFLOW_NAME > NAME > config file > default."""
        prefixed = EnvSettingsSource(settings_cls, env_prefix=ENV_PREFIX, case_sensitive=False, env_ignore_empty=True)
        sources: list[PydanticBaseSettingsSource] = [init_settings, prefixed, env_settings]
        path = config_file()
        if path is not None:
            if is_toml(path):
                sources.append(_TomlSource(settings_cls, toml_file=path))
            else:
                sources.append(DotEnvSettingsSource(settings_cls, env_file=path, case_sensitive=False, env_prefix=""))
        return tuple(sources)

    # The seed's eight variables, with its defaults.
    redis_host: str = Field(
        "localhost",
        min_length=1,
        json_schema_extra={"allowed": "host name or address"},
        description="Redis host for streaming output.",
    )
    redis_port: int = Field(6379, ge=1, le=65535, description="Redis port.")
    output_dir: Path = Field(
        Path("/data/raw"),
        json_schema_extra={"allowed": "writable directory"},
        description="Directory for the output: JSONL files or Parquet datasets, with manifest.json.",
    )
    events_per_second: float = Field(
        10.0,
        ge=MIN_RATE,
        le=10_000_000,
        allow_inf_nan=False,
        description="Rate of continuous mode, events/s (at most 40,000 there; see Continuous mode).",
    )
    click_through_rate: float = Field(0.30, ge=0, le=1, description="Clicks divided by searches.")
    conversion_rate: float = Field(0.10, ge=0, le=1, description="Conversions divided by clicks.")
    user_pool_size: int = Field(
        10_000, ge=1, le=10_000_000, description="Logged-in users who signed up before the window (the site's history)."
    )
    anonymous_rate: float = Field(0.40, ge=0, le=1, description="Fraction of sessions with no user.")

    # Redis, beside the seed's host and port.
    redis_url: str | None = Field(
        None,
        json_schema_extra={"allowed": "redis://, rediss:// or unix:// URL"},
        description="Overrides host, port, password and database (rediss:// for TLS).",
    )
    redis_password: SecretStr | None = Field(
        None, json_schema_extra={"allowed": "any; never printed"}, description="Redis password."
    )
    redis_db: int = Field(0, ge=0, le=1023, description="Redis database number.")
    stream_prefix: str = Field(
        "searchflow:events",
        min_length=1,
        json_schema_extra={"allowed": "text"},
        description="Streams are <prefix>:<event type>.",
    )
    stream_maxlen: int = Field(
        100_000, ge=0, le=2**63 - 1, description="Approximate length cap per stream (MAXLEN ~); 0 for none."
    )
    redis_buffer_events: int = Field(
        200_000, ge=1000, le=100_000_000, description="Events held while Redis is away; generation pauses when full."
    )
    redis_retry_seconds: float = Field(
        300.0, gt=0, le=1e9, allow_inf_nan=False, description="How long to retry a lost Redis before failing the run."
    )

    # Run shape.
    mode: Literal["batch", "continuous"] = Field("batch", description="batch (aliases once, burst) or continuous.")
    output: str = Field(
        "file",
        json_schema_extra={"allowed": "file, parquet, redis, stdout, both, or file,parquet,redis in any combination"},
        description="file (JSONL), parquet, redis, stdout (alias console), both (file and redis), or a list such as "
        "parquet,redis.",
    )
    parquet_compression: Literal["zstd", "snappy", "gzip", "lz4", "none"] = Field(
        "zstd", description="Compression of the Parquet files (output parquet)."
    )
    event_count: int = Field(10_000, ge=1, le=MAX_EVENTS, description="Events in a batch run, over all types.")
    batch_rate: float | None = Field(
        None, ge=MIN_RATE, le=10_000_000, allow_inf_nan=False, description="Pace a batch run at this many events/s."
    )
    seed: int | None = Field(None, ge=0, le=2**63 - 1, description="Seed for a reproducible run; random if unset.")
    window_start: datetime | None = Field(
        None,
        json_schema_extra={"allowed": "ISO 8601 date or time"},
        description="Start of the batch time window (ISO 8601, UTC).",
    )
    window_end: datetime | None = Field(
        None,
        json_schema_extra={"allowed": "ISO 8601 date or time"},
        description="End of the batch time window; the current hour if unset.",
    )
    window_days: float = Field(
        7.0, gt=0, le=MAX_WINDOW_DAYS, allow_inf_nan=False, description="Length of the window when start is not given."
    )
    duration: float | None = Field(
        None, gt=0, le=1e9, allow_inf_nan=False, description="Seconds a continuous run lasts; until stopped if unset."
    )
    workers: int | None = Field(
        None,
        ge=1,
        le=256,
        description=(
            "Workers that generate shards in a batch run (two threads to a process); the machine's cores if unset."
        ),
    )
    shards: int = Field(
        8, ge=1, le=4096, description="Seed-stable parts of the users and visitors; part of what a seed means."
    )
    overwrite: bool = Field(False, description="Start the output files afresh instead of appending.")
    quiet: bool = Field(False, description="Print nothing but errors and warnings.")
    impressions: bool = Field(
        False, description="Also write impressions.jsonl: the result_ids each search showed, in page order (files)."
    )

    # The model.
    page_size: int = Field(10, ge=1, le=100, description="Results shown on one page of a search.")
    zero_result_rate: float = Field(0.05, ge=0, le=1, description="Share of searches that find nothing.")
    searches_per_session: float = Field(2.5, ge=1, le=20, description="Mean searches in a session.")
    click_position_decay: float = Field(
        0.8, ge=0, le=5, description="Exponent a of examination 1/rank^a (rank on its page)."
    )
    signup_share: float = Field(
        0.45, ge=0, le=1, description="Share of logged-in sessions that are a new user's first visit (sign-ups)."
    )
    return_trip_rate: float = Field(
        0.6, ge=0, le=1, description="Chance that a logged-in user's session continues their open trip."
    )
    journey_conversion_weights: str = Field(
        "first=1.4,middle=0.7,later=1.3",
        json_schema_extra={"allowed": "weights for first, middle, later"},
        description="Booking weight on a trip's first day, on visits 2-3, from visit 4 on.",
    )
    device_conversion_weights: str = Field(
        "desktop=1.0,tablet=0.9,mobile=0.35",
        json_schema_extra={"allowed": "weights for desktop, mobile, tablet"},
        description="Booking weight of a click by device.",
    )
    night_conversion_factor: float = Field(
        0.5, ge=0, le=10, description="Booking weight of sessions starting 00:00-05:59 local time."
    )
    price_sensitivity: float = Field(
        1.0,
        ge=0,
        le=10,
        description="Users' mean price sensitivity in choosing and booking results (0: price plays no part).",
    )
    attractiveness_strength: float = Field(
        1.0,
        ge=0,
        le=5,
        description=(
            "Weight of what a result offers (price, quality) against its rank, in clicks and bookings (0: rank alone)."
        ),
    )
    min_flight_km: float = Field(
        150.0, ge=0, le=2000, description="Shortest flight in km; nearer trips are hotel stays or car rentals."
    )
    mobile_lead_factor: float = Field(0.6, gt=0, le=10, description="Lead time of phone searches relative to others.")
    season_strength: float = Field(
        1.0, ge=0, le=3, description="How much destination popularity follows the month (0: not at all)."
    )
    calendar_strength: float = Field(
        1.0,
        ge=0,
        le=3,
        description="How much public holidays and travel-deal days move traffic and bookings (0: not at all).",
    )
    markets: str = Field(
        "US,CA,GB,IE,AU,NZ",
        json_schema_extra={"allowed": "ISO country codes, or ALL"},
        description="Country codes users live in, or ALL.",
    )
    platform_shares: str = Field(
        "web=0.55,ios=0.25,android=0.20",
        json_schema_extra={"allowed": "shares for web, ios, android"},
        description="Share of users per platform.",
    )
    product_shares: str = Field(
        "flight=0.40,hotel=0.40,car=0.08,package=0.12",
        json_schema_extra={"allowed": "shares for flight, hotel, car, package"},
        description="Share of trips per product type.",
    )
    commission_rates: str = Field(
        "flight=0,hotel=0.15,car=0.04,package=0.10",
        json_schema_extra={"allowed": "a rate 0 to 1 for each product"},
        description="Commission as a share of the price booked (before taxes and fees).",
    )
    taxes_and_fees: str = Field(
        "flight=0,hotel=0.14,car=0.20,package=0.05",
        json_schema_extra={"allowed": "a rate 0 to 1 for each product"},
        description="Taxes and fees added to the clicked price in the booking value, as a share of it.",
    )

    # Faults injected on request (src/simulation/faults.py): every rate None takes the preset's.
    faults: Literal["none", "light", "chaos"] = Field(
        "none", description="A preset of fault rates (none, light, chaos); each FAULT_* rate set overrides its own."
    )
    fault_duplicate_rate: float | None = Field(
        None, ge=0, le=0.5, description="Share of events delivered again later with the same event_id (a retry)."
    )
    fault_resend_rate: float | None = Field(
        None, ge=0, le=0.5, description="Share of events sent again by the client with a new event_id."
    )
    fault_late_rate: float | None = Field(
        None, ge=0, le=0.5, description="Share of events delivered minutes to days after their timestamp."
    )
    fault_out_of_order_rate: float | None = Field(
        None, ge=0, le=0.5, description="Share of clicks delivered just before the search they belong to."
    )
    fault_malformed_rate: float | None = Field(
        None, ge=0, le=0.5, description="Share of JSON lines cut, made invalid, mistyped or not UTF-8 (not Parquet)."
    )
    fault_missing_rate: float | None = Field(
        None, ge=0, le=0.5, description="Share of JSON events with a required field dropped or null (not Parquet)."
    )
    fault_clock_skew_rate: float | None = Field(
        None, ge=0, le=0.5, description="Share of users (or anonymous sessions) whose device clock is off."
    )
    fault_drift_rate: float | None = Field(
        None, ge=0, le=1, description="Share of users whose app sends schema version 2 from FAULT_DRIFT_AT on."
    )
    fault_drift_at: datetime | None = Field(
        None,
        json_schema_extra={"allowed": "ISO 8601 date or time"},
        description="When the client release that drifts the schema comes out; the middle of the window if unset.",
    )
    fault_bot_rate: float | None = Field(
        None,
        ge=0,
        le=0.9,
        description="Share of searches made by bots (44.5 % of travel traffic is bad bots: Imperva).",
    )

    @field_validator("redis_url")
    @classmethod
    def _redis_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("expected a URL starting with redis://, rediss:// or unix://")
        if value is not None:
            _check_url(value)
        return value

    @field_validator("redis_host")
    @classmethod
    def _redis_host(cls, value: str) -> str:
        _check_host(value)
        return value

    @field_validator("output_dir", mode="before")
    @classmethod
    def _output_dir(cls, value: Any) -> Any:
        if isinstance(value, str | Path):
            _check_path(str(value))
        return value

    @field_validator("stream_prefix")
    @classmethod
    def _stream_prefix(cls, value: str) -> str:
        if len(value.encode("utf-8", "surrogateescape")) > 1000:
            raise ValueError("must be at most 1,000 bytes")
        # A line end or NUL in a key name breaks every tool that lists keys a line at a time (redis-cli --scan).
        if any(unicodedata.category(c) == "Cc" for c in value):
            raise ValueError("must not contain control characters (line ends, tabs, NUL): it names Redis keys")
        return value

    @field_validator("mode", mode="before")
    @classmethod
    def _mode_alias(cls, value: Any) -> Any:
        return MODE_ALIASES.get(str(value).lower(), str(value).lower()) if value is not None else value

    @field_validator("output", mode="before")
    @classmethod
    def _output_alias(cls, value: Any) -> Any:
        if value is None:
            return value
        text = str(value).lower().strip()
        text = OUTPUT_ALIASES.get(text, text)
        if text == "stdout":
            return text
        names = {part.strip() for part in text.replace("+", ",").split(",")}
        names = (names - {"both"}) | ({"file", "redis"} if "both" in names else set())
        if "stdout" in names:
            raise ValueError("stdout carries the events alone: it cannot be combined with other outputs")
        if not names or not names <= set(OUTPUT_SINKS):
            raise ValueError("must be file, parquet, redis, stdout, both, or file, parquet and redis joined by commas")
        return "both" if names == {"file", "redis"} else ",".join(s for s in OUTPUT_SINKS if s in names)

    @field_validator("window_start", "window_end", "fault_drift_at", mode="before")
    @classmethod
    def _instant(cls, value: Any) -> datetime | None:
        return _parse_instant(value)

    @field_validator("markets")
    @classmethod
    def _markets(cls, value: str) -> str:
        from .reference import country_codes

        codes = [c.strip().upper() for c in value.split(",") if c.strip()]
        if codes == ["ALL"]:
            return "ALL"
        unknown = [c for c in codes if c not in country_codes()]
        if not codes or unknown:
            raise ValueError("expected ISO 3166 country codes separated by commas (US,CA,GB) or ALL")
        return ",".join(codes)

    @field_validator(*MAPPINGS)
    @classmethod
    def _mapping(cls, value: str, info: ValidationInfo) -> str:
        parse, keys = MAPPINGS[str(info.field_name)]
        parse(value, keys)
        return value

    @model_validator(mode="after")
    def _window_order(self) -> Settings:
        if self.window_start and self.window_end and self.window_start >= self.window_end:
            raise ValueError("window_start: must be before the end of the window")
        if self.mode == "batch":
            # The window --days gives must lie in the same bounds as --start and --end.
            start, end = self.window()
            field = "window_days"
            if "window_days" not in self.model_fields_set:
                field = "window_end" if self.window_end is not None else "window_start"
            if start < EARLIEST or end > LATEST_WINDOW:
                raise ValueError(
                    f"{field}: gives the window {start:%Y-%m-%d} to {end:%Y-%m-%d}; a window must lie between "
                    f"{EARLIEST:%Y-%m-%d} and {LATEST_WINDOW:%Y-%m-%d}"
                )
        else:
            self._check_continuous()
            if self.writes_parquet:
                raise ValueError(
                    "output: Parquet is written by batch runs (a file per date, complete when the date is); "
                    "a continuous run writes file or redis"
                )
        return self

    @model_validator(mode="after")
    def _fault_total(self) -> Settings:
        # A click can have any one of the kinds but clock skew and drift (which take their user's events whole).
        rates = self.fault_rates()
        total = sum(rate for kind, rate in rates.items() if kind not in ("clock_skew", "drift", "bot"))
        if total > 1:
            given = [f"fault_{k}_rate" for k in FAULT_KINDS if getattr(self, f"fault_{k}_rate") is not None]
            raise ValueError(
                f"{given[-1] if given else 'faults'}: the fault rates add up to {total:g} for a click; "
                "an event has at most one fault, so they may add up to at most 1"
            )
        return self

    @property
    def sinks(self) -> frozenset[str]:
        """Where the events go: some of file, parquet, redis, or stdout alone."""
        return frozenset({"file", "redis"} if self.output == "both" else self.output.split(","))

    @property
    def writes_lines(self) -> bool:
        """The run writes the three JSONL files."""
        return "file" in self.sinks

    @property
    def writes_parquet(self) -> bool:
        """The run writes the three Parquet datasets."""
        return "parquet" in self.sinks

    @property
    def writes_redis(self) -> bool:
        """The run adds the events to Redis streams."""
        return "redis" in self.sinks

    @property
    def writes_json(self) -> bool:
        """The run writes events as JSON somewhere: files of lines, Redis streams or standard output."""
        return self.writes_lines or self.writes_redis or self.output == "stdout"

    @property
    def writes_folder(self) -> bool:
        """The run writes into OUTPUT_DIR (files of lines or Parquet, with the manifest and answer keys)."""
        return self.writes_lines or self.writes_parquet

    def _check_continuous(self) -> None:
        """A continuous run's rate must fit in memory, and its history (``--start``) be caught up in hours."""
        if self.events_per_second > MAX_CONTINUOUS_RATE:
            raise ValueError(
                f"events_per_second: must be at most {MAX_CONTINUOUS_RATE:,} events/s in continuous mode (a live "
                "run starts with a minute of traffic in memory: 1.5 GB at that rate)"
            )
        if self.window_start is None:
            return
        now = datetime.now(UTC)
        if self.window_start > now:
            raise ValueError("window_start: a continuous run starts now or in the past (it catches up from there)")
        history = (now - self.window_start).total_seconds()
        if history > MAX_WINDOW_DAYS * 86_400:
            raise ValueError(
                f"window_start: a continuous run may start at most {MAX_WINDOW_DAYS:,} days (10 years) ago, "
                "as a batch window may be long"
            )
        if self.events_per_second * history > MAX_EVENTS:
            raise ValueError(
                f"window_start: catching up from it at {self.events_per_second:,g} events/s makes "
                f"{self.events_per_second * history:,.0f} events, more than the {MAX_EVENTS:,} a run may write; "
                "start later or lower the rate"
            )

    def fault_rates(self) -> dict[str, float]:
        """The rate of every fault kind: its FAULT_*_RATE if set, else the FAULTS preset's."""
        rates = dict(FAULT_PRESETS[self.faults])
        for kind in FAULT_KINDS:
            rate = getattr(self, f"fault_{kind}_rate")
            if rate is not None:
                rates[kind] = rate
        return rates

    # Derived views of the "key=value" settings, read once they are known to be valid.
    def mapping(self, field: str) -> dict[str, float]:
        """The numbers of a "key=value,..." setting (shares normalised to sum 1)."""
        parse, keys = MAPPINGS[field]
        return parse(getattr(self, field), keys)

    @property
    def platform_weights(self) -> dict[str, float]:
        """Share of users per platform, summing to 1."""
        return self.mapping("platform_shares")

    @property
    def product_weights(self) -> dict[str, float]:
        """Share of trips per product type, summing to 1."""
        return self.mapping("product_shares")

    @property
    def commission_by_product(self) -> dict[str, float]:
        """Commission rate per product type."""
        return self.mapping("commission_rates")

    @property
    def taxes_by_product(self) -> dict[str, float]:
        """Taxes and fees per product type, as a share of the price."""
        return self.mapping("taxes_and_fees")

    @property
    def journey_weights(self) -> dict[str, float]:
        """Booking weight by journey stage: first, middle, later."""
        return self.mapping("journey_conversion_weights")

    @property
    def device_weights(self) -> dict[str, float]:
        """Booking weight by device type."""
        return self.mapping("device_conversion_weights")

    @property
    def market_codes(self) -> tuple[str, ...] | None:
        """Country codes of the markets, or None for every country."""
        return None if self.markets == "ALL" else tuple(self.markets.split(","))

    def window(self, now: datetime | None = None) -> tuple[datetime, datetime]:
        """The batch window as (start, end), both UTC.

        Without an explicit end the window ends at the start of the current hour, so
        two runs with the same seed within the hour write the same bytes.
        """
        if self.window_end is not None:
            end = self.window_end
        elif self.window_start is not None:
            end = self.window_start + timedelta(days=self.window_days)
        else:
            end = (now or datetime.now(UTC)).replace(minute=0, second=0, microsecond=0)
        start = self.window_start or end - timedelta(days=self.window_days)
        return start, end


def env_name(field: str) -> str:
    """The environment variable that sets ``field``."""
    return field.upper()


def _environment(name: str) -> str | None:
    """An environment variable, looked up without regard to case as pydantic-settings does."""
    for key, value in os.environ.items():
        if key.upper() == name and value != "":
            return value
    return None


def source_of(field: str, config: Path | None = None) -> tuple[str, Any] | None:
    """Where ``field``'s value comes from when no flag sets it: (name for messages, value), or None for its default.

    Names are ``SEARCHFLOW_NAME`` or ``NAME`` for the environment and ``FILE: NAME`` for a config file.
    """
    for name in (ENV_PREFIX + env_name(field), env_name(field)):
        value = _environment(name)
        if value is not None:
            return name, value
    path = config if config is not None else config_file()
    if path is not None:
        try:
            values = config_values(path)
        except (OSError, ValueError):
            return None
        if field in values:
            return f"{path}: {env_name(field)}", values[field]
    return None


def _describe(error: ErrorDetails) -> str:
    """Say in a few words what a pydantic error allows."""
    kind, ctx = error["type"], error.get("ctx", {})
    if kind in ("greater_than_equal", "greater_than", "less_than_equal", "less_than"):
        bounds = {"greater_than_equal": ">=", "greater_than": ">", "less_than_equal": "<=", "less_than": "<"}
        limit = next(iter(ctx.values()))
        return f"must be {bounds[kind]} {limit}"
    if kind in ("int_parsing", "int_from_float"):
        return "must be a whole number"
    if kind == "float_parsing":
        return "must be a number"
    if kind == "bool_parsing":
        return "must be true or false"
    if kind == "literal_error":
        return f"must be one of {ctx.get('expected', '')}"
    if kind == "value_error":
        return str(ctx.get("error", error["msg"]))
    if kind == "extra_forbidden":
        return "not a setting (see the README's settings table)"
    return str(error["msg"]).lower()


PROBABILITIES = {
    "click_through_rate",
    "conversion_rate",
    "anonymous_rate",
    "zero_result_rate",
    "return_trip_rate",
    "signup_share",
}


def check_config_file(path: Path, name: str) -> None:
    """Check that a config file exists and parses; SettingsError naming ``name`` (the flag or variable) if not."""
    if not path.is_file():
        raise SettingsError(f"{name}={path}: no such file; give a TOML (.toml) or .env file of settings")
    try:
        config_values(path)
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(f"{name}={path}: not valid TOML ({exc})") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SettingsError(f"{name}={path}: cannot be read ({exc})") from None


def load_settings(overrides: dict[str, Any] | None = None, config: Path | str | None = None) -> Settings:
    """Build settings from command-line ``overrides`` (None values are ignored) over the environment.

    ``config`` names a config file (TOML, or .env lines) read below the environment; without
    it, ``SEARCHFLOW_CONFIG`` may name one. Raises SettingsError with one line naming the
    flag or variable, the value and what is allowed.
    """
    given = {k: v for k, v in (overrides or {}).items() if v is not None}
    # env_ignore_empty reads an empty variable as unset; an empty OUTPUT_DIR must not mean the default.
    empty = [
        k for k, v in os.environ.items() if k.upper() in ("OUTPUT_DIR", ENV_PREFIX + "OUTPUT_DIR") and not v.strip()
    ]
    if "output_dir" not in given and empty:
        raise SettingsError(f"{empty[0]}={os.environ[empty[0]]}: must not be empty; give a directory, or unset it")
    path = Path(config) if config is not None else config_file()
    if path is not None:
        check_config_file(path, "--config" if config is not None else CONFIG_VARIABLE)
    try:
        with _reading(path):
            return Settings(**given)
    except ValidationError as exc:
        error = exc.errors()[0]
        field = str(error["loc"][0]) if error["loc"] else ""
        message = _describe(error)
        head, _, rest = message.partition(": ")
        if not field and head in Settings.model_fields:
            field, message = head, rest
        if field in PROBABILITIES and error["type"] != "value_error":
            message = "must be a probability between 0 and 1"
        source = source_of(field, path)
        if field in given:
            name, value = FLAGS.get(field, env_name(field)), given[field]
        elif error["type"] == "extra_forbidden" and path is not None:
            name, value = f"{path}: {env_name(field)}", error.get("input", "")
        elif source is not None:
            name, value = source
        else:
            name = env_name(field)
            value = next((v for k, v in os.environ.items() if k.upper() == name), "")  # names are case-insensitive
        if isinstance(value, datetime):
            value = value.isoformat()
        if field in SECRETS:
            value = redis_address(str(value)) if field == "redis_url" else "***"
        raise SettingsError(f"{name}={_shown(value)}: {message}") from None


SECRETS = {"redis_url", "redis_password"}


def _shown(value: Any, most: int = 120) -> str:
    """A value as a message shows it: on one line (control characters escaped) and at most ``most`` characters."""
    text = str(value)
    if not text.isprintable():
        text = "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
    return text if len(text) <= most else f"{text[:most]}... ({len(text):,} characters)"


HOST_RULE = "expected a host name (labels of 1 to 63 letters, digits or hyphens) or an IP address"


def _check_host(host: str) -> None:
    """Raise ValueError unless ``host`` is an IP address or a host name a resolver accepts (checked offline)."""
    try:
        ipaddress.ip_address(host)
        return
    except ValueError:
        pass
    try:
        ascii_name = host.encode("idna").decode("ascii")
    except UnicodeError:
        raise ValueError(
            "expected a host name (labels of 1 to 63 letters, digits or hyphens) or an IP address"
        ) from None
    name = ascii_name[:-1] if ascii_name.endswith(".") else ascii_name
    labels = name.split(".")
    if (
        not name
        or len(name) > 253
        or any(not 1 <= len(label) <= 63 for label in labels)
        or any(not all(c.isalnum() or c in "-_" for c in label) or label.startswith("-") for label in labels)
    ):
        raise ValueError(HOST_RULE)


def _check_url(url: str) -> None:
    """Raise ValueError unless ``url``'s host, port and database can be used (checked offline)."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise ValueError("expected redis://host:port/db with a port from 1 to 65535") from None
    if parts.scheme == "unix":
        if not parts.path:
            raise ValueError("expected unix:///path/to/redis.sock")
        _check_path(parts.path)
        return
    if parts.hostname:
        _check_host(parts.hostname)
    if port is not None and not 1 <= port <= 65535:
        raise ValueError("expected a port from 1 to 65535")
    db = parts.path.strip("/")
    if db and not (db.isdigit() and int(db) <= 1023):
        raise ValueError("expected a database number from 0 to 1023 after the host")


def _check_path(text: str) -> None:
    """Raise ValueError unless ``text`` is a path the file system can hold: not empty, no NUL, names not too long."""
    if not text.strip():
        raise ValueError("must not be empty; give a directory")
    if "\x00" in text:
        raise ValueError("must not contain a NUL character")
    path = Path(text)
    probe = path if path.is_absolute() else Path.cwd() / path
    while True:
        try:
            if probe.exists():
                break
        except OSError:
            pass
        if probe.parent == probe:
            break
        probe = probe.parent
    try:
        name_max = os.pathconf(probe, "PC_NAME_MAX")
        path_max = os.pathconf(probe, "PC_PATH_MAX")
    except (OSError, ValueError):
        name_max, path_max = NAME_MAX, PATH_MAX
    for part in path.parts:
        size = len(part.encode("utf-8", "surrogateescape"))
        if size > name_max:
            raise ValueError(f"a name in it is {size} bytes long; the file system allows {name_max}")
    if len(os.fsencode(path.absolute())) + 40 > path_max:
        raise ValueError(f"is too long for the file system (at most {path_max - 40} bytes with room for file names)")


def redis_address(url: str) -> str:
    """``scheme://host:port`` of a Redis URL, for messages: never its user, password or query."""
    try:
        parts = urlsplit(url)
        if parts.scheme == "unix":
            return f"unix://{parts.path}"
        return f"{parts.scheme}://{parts.hostname or 'localhost'}:{parts.port or 6379}"
    except ValueError:
        return f"{url.split(':', 1)[0]}://(unreadable address)"


def _allowed(name: str) -> str:
    """What a field accepts, in a few words, from its type and constraints."""
    info = Settings.model_fields[name]
    extra = info.json_schema_extra
    if isinstance(extra, dict) and "allowed" in extra:
        return str(extra["allowed"])
    if info.annotation is bool:
        return "true or false"
    if get_origin(info.annotation) is Literal:
        return ", ".join(get_args(info.annotation))
    bounds = []
    for item in info.metadata:
        for attribute, sign in (("ge", ">="), ("gt", ">"), ("le", "<="), ("lt", "<")):
            if getattr(item, attribute, None) is not None:
                value = getattr(item, attribute)
                bounds.append(f"{sign} {value:,}" if isinstance(value, int) else f"{sign} {value:g}")
    kind = "whole number" if int in (info.annotation, *get_args(info.annotation)) else "number"
    return f"{kind} {' and '.join(bounds)}" if bounds else kind


def settings_table() -> str:
    """The README's settings table: variable, default, allowed values, meaning; one row per setting."""
    rows = ["| Variable | Flag | Default | Allowed | Meaning |", "|---|---|---|---|---|"]
    for name, info in Settings.model_fields.items():
        default = "unset" if info.default is None else str(info.default)
        flag = f"`{FLAGS[name]}`" if name in FLAGS else ""
        rows.append(f"| `{env_name(name)}` | {flag} | `{default}` | {_allowed(name)} | {info.description} |")
    return "\n".join(rows) + "\n"


def check_output_dir(path: Path, name: str = "OUTPUT_DIR") -> None:
    """Check that ``path`` is, or can be made, a writable directory, without leaving anything behind."""
    probe = path
    while not probe.exists():
        if probe.parent == probe:
            break
        probe = probe.parent
    if probe.exists() and not probe.is_dir():
        raise SettingsError(f"{name}={path}: {probe} is a file, not a directory; choose a writable directory")
    try:
        # os.access says yes to root even on a read-only file system, so try for real.
        with tempfile.TemporaryFile(dir=probe):
            pass
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise SettingsError(f"{name}={path}: not writable ({reason.lower()}); choose a writable directory") from None
