"""The three event types: their fields, in the order they are written, and their JSON Schemas.

Field names and order are a public contract (downstream SQL reads them by name). The
generator never builds these objects on its hot path; it writes columns in this order,
and the tests check every written line against the schemas derived from these models.
Run ``python scripts/write_schemas.py`` to rewrite the checked-in schemas in ``schemas/``.
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

SCHEMA_DIR = Path(__file__).resolve().parent.parent / "schemas"

Uuid = Annotated[str, Field(pattern=r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")]
Timestamp = Annotated[
    str,
    Field(
        pattern=r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$",
        json_schema_extra={"format": "date-time"},
        description="ISO 8601 in UTC with milliseconds, ending in Z.",
    ),
]
UserId = Annotated[str | None, Field(pattern=r"^user_\d+$", description="null for an anonymous session.")]
SessionId = Annotated[str, Field(pattern=r"^sess_[0-9a-f]{16}$")]
Money = Annotated[float, Field(ge=0, description="Two decimals, in the currency of the user's country.")]
Product = Literal["flight", "hotel", "car", "package"]


class _Event(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Geo(BaseModel):
    """Where the user is: their home city."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    country: Annotated[str, Field(pattern=r"^[A-Z]{2}$", description="ISO 3166-1 alpha-2.")]
    city: str


class Filters(BaseModel):
    """What the search asked for beside the query text. Keys are always present; unused ones are null."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    start_date: date = Field(description="Departure, check-in or pick-up day.")
    end_date: date | None = Field(description="Return, check-out or drop-off day; null for one-way flights.")
    travelers: int = Field(ge=1, le=9)
    max_price: Money | None = Field(description="Price cap of a 'cheap' search, else null.")
    min_stars: int | None = Field(ge=1, le=5, description="Hotel star filter, else null.")


class SearchEvent(_Event):
    """A user searches for a destination."""

    event_id: Uuid
    event_type: Literal["search"]
    timestamp: Timestamp
    user_id: UserId
    session_id: SessionId
    query: str
    results_count: int = Field(ge=0)
    page: int = Field(ge=1)
    platform: Literal["web", "ios", "android"]
    device_type: Literal["desktop", "mobile", "tablet"]
    geo: Geo
    utm_source: str | None
    utm_medium: str | None
    utm_campaign: str | None
    filters: Filters


class ClickEvent(_Event):
    """A user clicks a result of an earlier search of the same session."""

    event_id: Uuid
    event_type: Literal["click"]
    timestamp: Timestamp
    user_id: UserId
    session_id: SessionId
    search_event_id: Uuid
    result_position: int = Field(
        ge=1, description="1-based place over all pages: place on its page + page size per page before."
    )
    result_id: str
    result_type: Product
    result_price: Money
    result_provider: str
    result_destination: str


class ConversionEvent(_Event):
    """A user books what an earlier click of the same session showed."""

    event_id: Uuid
    event_type: Literal["conversion"]
    timestamp: Timestamp
    user_id: UserId
    session_id: SessionId
    click_event_id: Uuid
    booking_value: Money
    commission: Money
    currency: Annotated[str, Field(pattern=r"^[A-Z]{3}$", description="ISO 4217.")]
    product_type: Product
    provider: str


EVENT_MODELS: dict[str, type[_Event]] = {"search": SearchEvent, "click": ClickEvent, "conversion": ConversionEvent}
EVENT_TYPES = tuple(EVENT_MODELS)


def file_name(event_type: str) -> str:
    """The JSONL file an event type is written to."""
    return f"{event_type}_events.jsonl"


def dataset_name(event_type: str) -> str:
    """The Parquet dataset (a folder partitioned by ``date=``) an event type is written to."""
    return f"{event_type}_events"


def stream_names(prefix: str) -> dict[str, str]:
    """The Redis stream each event type is written to: ``<prefix>:<type>``."""
    return {event_type: f"{prefix}:{event_type}" for event_type in EVENT_TYPES}


def json_schema(event_type: str) -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of one event type, derived from its model."""
    schema = EVENT_MODELS[event_type].model_json_schema()
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"{event_type}_event.schema.json",
        **schema,
    }


def schema_text(event_type: str) -> str:
    """The schema as it is stored in ``schemas/``: sorted keys would reorder fields, so insertion order is kept."""
    return json.dumps(json_schema(event_type), indent=2, ensure_ascii=False) + "\n"


def write_schemas(directory: Path = SCHEMA_DIR) -> list[Path]:
    """Write one ``<type>_event.schema.json`` per event type and return their paths."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for event_type in EVENT_TYPES:
        path = directory / f"{event_type}_event.schema.json"
        path.write_text(schema_text(event_type), encoding="utf-8")
        paths.append(path)
    return paths
