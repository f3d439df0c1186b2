"""Text made from codes: UUIDs, timestamps, escaping."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

import numpy as np
import polars as pl

from src.output.ascii import timestamp_chars
from src.output.encoding import _json, uuid_series


def test_uuids_are_version_4_and_follow_their_words() -> None:
    """The same words give the same UUID; the text parses as a version-4, RFC 4122 UUID."""
    rng = np.random.default_rng(1)
    hi = pl.Series(rng.integers(0, 2**63, 1000, dtype=np.int64).astype(np.uint64) * np.uint64(2))
    lo = pl.Series(rng.integers(0, 2**63, 1000, dtype=np.int64).astype(np.uint64))
    text = uuid_series("id", hi, lo).to_list()
    assert text == uuid_series("id", hi, lo).to_list()
    for value, h in zip(text, hi.to_list(), strict=True):
        parsed = uuid.UUID(value)
        assert parsed.version == 4 and parsed.variant == uuid.RFC_4122
        assert value[:8] == f"{h:016x}"[:8]
    assert len(set(text)) == 1000


def test_timestamps_match_python_formatting() -> None:
    """Vectorised ISO 8601 text equals datetime's own, to the millisecond, across days and years."""
    rng = np.random.default_rng(2)
    ms = rng.integers(0, 4_102_444_800_000, 5000)  # 1970 to 2100
    text = np.ascontiguousarray(timestamp_chars(np.asarray(ms, dtype=np.int64))).view("S24").ravel().astype(str)
    for value, stamp in zip(text, ms, strict=True):
        expected = datetime.fromtimestamp(stamp / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{stamp % 1000:03d}Z"
        assert value == expected


def test_text_is_escaped_for_json() -> None:
    """Quotes, backslashes and non-ASCII names survive a round trip through the JSON text."""
    for name in ['Kaʻu "Big" Island', "C:\\path", "Zürich", "tab\there"]:
        assert json.loads(_json(name)) == name


def test_encoder_escapes_names_that_need_it() -> None:
    """Cities with quotes, backslashes and non-ASCII letters come out as valid JSON with the same text."""
    import dataclasses

    from src.config import load_settings
    from src.generator import EventGenerator
    from src.output.encoding import Encoder

    generator = EventGenerator(load_settings({"seed": 1}), 1)
    cities = generator.cities
    tricky = ['Kaʻu "Big" Island', "C:\\Tab\there", "Zürich \u2028 line"]
    names = pl.Series([tricky[i % 3] for i in range(len(cities.name))])
    encoder = Encoder(generator.catalogue, dataclasses.replace(cities, name=names))
    start, end = datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 2, tzinfo=UTC)
    tables = next(generator.batch(3000, start, end))
    lines, _ = encoder.encode("search", tables.search)
    seen = set()
    for line in bytes(lines.data).decode().splitlines():
        event = json.loads(line)
        assert event["geo"]["city"] in tricky
        seen.add(event["geo"]["city"])
        if " from " in event["query"]:
            assert any(name in event["query"] for name in tricky)
    assert seen == set(tricky)
