"""Event models and their JSON Schemas: the checked-in schemas are current and every line fits one."""

from __future__ import annotations

import json

import jsonschema
import pytest

from src.models import EVENT_MODELS, EVENT_TYPES, SCHEMA_DIR, schema_text

from .conftest import Sample


@pytest.mark.parametrize("event_type", EVENT_TYPES)
def test_checked_in_schema_is_current(event_type: str) -> None:
    """schemas/<type>_event.schema.json equals the schema derived from the model (run scripts/write_schemas.py)."""
    assert (SCHEMA_DIR / f"{event_type}_event.schema.json").read_text(encoding="utf-8") == schema_text(event_type)


@pytest.mark.parametrize("event_type", EVENT_TYPES)
def test_every_line_validates_against_its_schema(small: Sample, event_type: str) -> None:
    """Each of 20,000 generated lines is valid JSON that its checked-in schema accepts."""
    schema = json.loads((SCHEMA_DIR / f"{event_type}_event.schema.json").read_text(encoding="utf-8"))
    validator = jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())
    lines = small.lines(event_type)
    assert lines
    for line in lines:
        event = json.loads(line)
        errors = list(validator.iter_errors(event))
        assert not errors, (line, errors[0].message)


@pytest.mark.parametrize("event_type", EVENT_TYPES)
def test_fields_are_written_in_model_order(small: Sample, event_type: str) -> None:
    """Keys appear in the order the model declares, with exactly the seed's names."""
    fields = list(EVENT_MODELS[event_type].model_fields)
    for line in small.lines(event_type)[:200]:
        assert list(json.loads(line)) == fields


def test_schemas_reject_wrong_events() -> None:
    """The schemas are strict: an unknown field, a bad timestamp or a bad user_id fail."""
    schema = json.loads((SCHEMA_DIR / "conversion_event.schema.json").read_text(encoding="utf-8"))
    good = {
        "event_id": "0b5b4a0e-8a5b-4b7c-9a55-0d1f1f0b0a11",
        "event_type": "conversion",
        "timestamp": "2026-01-31T12:00:00.000Z",
        "user_id": "user_123",
        "session_id": "sess_0123456789abcdef",
        "click_event_id": "1b5b4a0e-8a5b-4b7c-9a55-0d1f1f0b0a11",
        "booking_value": 120.5,
        "commission": 18.08,
        "currency": "CAD",
        "product_type": "hotel",
        "provider": "Expedia",
    }
    jsonschema.validate(good, schema)
    for change in ({"extra": 1}, {"timestamp": "2026-01-31 12:00:00"}, {"user_id": "123"}, {"product_type": "boat"}):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate({**good, **change}, schema)
