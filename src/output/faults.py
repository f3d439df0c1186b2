"""Faults in the text, and the truth about every fault: the sidecar ``faults.jsonl``.

``simulation.faults`` marks rows; here the marked JSON lines are damaged (cut, made invalid,
mistyped, not UTF-8, a field dropped or null), and every marked row becomes one record of
the sidecar: what kind of fault, which event, what was changed, and where it landed. Only
the few marked rows are touched, a whole batch at a time.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import polars as pl
import pyarrow.compute as pc

from ..config import FAULT_KINDS
from ..models import EVENT_TYPES, file_name
from ..simulation.faults import FAULT_CODES, MALFORMED_WAYS, MISSING_FIELDS
from ..simulation.tables import time_order
from .ascii import fixed_text, timestamp_chars, uuid_chars

if TYPE_CHECKING:
    from .batch import EncodedBatch

FAULTS_FILE = "faults.jsonl"
# The field whose number a "wrong_type" line sends as a string, per event type.
WRONG_TYPE = {"search": "results_count", "click": "result_position", "conversion": "booking_value"}
# A JSON value at the top level of an event: a string, an object without objects inside (geo), or a scalar.
_VALUE = r'(?:"(?:[^"\\]|\\.)*"|\{[^{}]*\}|[^,}]*)'
# What schema version 2 (a client release) does to each event type: a field renamed, one sent as text,
# one left out; every type also gains schema_version (after event_type) and app_version (at the end).
DRIFT = {
    "search": {"renamed": ("device_type", "device"), "retyped": "results_count", "dropped": "page"},
    "click": {"renamed": ("result_position", "position"), "retyped": "result_price", "dropped": "result_provider"},
    "conversion": {"renamed": ("booking_value", "amount"), "retyped": "commission", "dropped": "product_type"},
}
APP_VERSION = "5.2.0"
UTF8_AT = len('{"event_id":"')  # an invalid_utf8 line has the first character of its event_id replaced by 0xFF
BAD_BYTE = 0xFF


@dataclass(frozen=True)
class FaultRows:
    """The faults of one event type in a batch: their rows (ascending), kinds and sidecar records.

    A record is a JSON object without its closing brace: the sink's place is added when written.
    """

    rows: np.ndarray
    kinds: np.ndarray
    records: pl.Series

    @classmethod
    def empty(cls) -> FaultRows:
        """No faults."""
        return cls(np.zeros(0, np.int64), np.zeros(0, np.int8), pl.Series("record", [], dtype=pl.String))

    def __len__(self) -> int:
        return len(self.rows)

    @classmethod
    def merge(cls, parts: list[FaultRows], sizes: list[int], order: np.ndarray) -> FaultRows:
        """Faults of batches laid end to end (``sizes`` rows each) and then taken in ``order``."""
        starts = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
        where = np.empty(len(order), dtype=np.int64)
        where[order] = np.arange(len(order))  # the new row of each row of the concatenation
        rows = np.concatenate([where[part.rows + start] for part, start in zip(parts, starts, strict=True)])
        by_row = np.argsort(rows, kind="stable")
        kinds = np.concatenate([part.kinds for part in parts])[by_row]
        records = pl.concat([part.records for part in parts]).gather(by_row)
        return cls(rows[by_row], kinds, records)


def damage(
    event_type: str, text: pl.Series, table: pl.DataFrame, end: str = "", bad_bytes_in: bool = True
) -> pl.Series:
    """The JSON of ``table``'s rows, each ending in ``end``, with their malformed, missing and drift faults.

    The result is Binary: an ``invalid_utf8`` line has byte 0xFF at UTF8_AT, which no String may hold;
    without ``bad_bytes_in`` those lines are left whole (the caller puts the byte in later).
    """
    fault, value = table["fault"].to_numpy(), table["fault_value"].to_numpy()
    ways = _ways(event_type, end)
    codes = {code for code, _, _ in ways}
    faulty = np.flatnonzero(np.isin(fault, list(codes)))
    rows, parts = [], []
    if len(faulty):
        # Every way at once on the few damaged lines: one frame, one pass.
        few = pl.DataFrame([text.gather(faulty).alias("json"), pl.Series("code", fault[faulty]),
                            pl.Series("way", value[faulty])])  # fmt: skip
        damaged = [pl.when((pl.col("code") == code) & (pl.col("way") == way)).then(expr) for code, way, expr in ways]
        result = few.select(pl.coalesce([*damaged, pl.col("json")]).cast(pl.Binary)).to_series()
        kept = ~(few["code"] == FAULT_CODES["malformed"]) | (few["way"] != MALFORMED_WAYS.index("invalid_utf8"))
        rows.append(faulty[kept.to_numpy()])
        parts.append(result.filter(kept))
    chosen = bad_bytes(table) if bad_bytes_in else np.zeros(0, dtype=np.int64)
    if len(chosen):
        lines = text.gather(chosen).cast(pl.Binary).to_arrow()
        rows.append(chosen)
        parts.append(pl.Series(pc.binary_replace_slice(lines, UTF8_AT, UTF8_AT + 1, bytes([BAD_BYTE]))))
    binary = text.cast(pl.Binary)
    # One scatter of every damaged line: each would copy the whole column.
    return binary.scatter(np.concatenate(rows), pl.concat(parts)) if rows else binary


def _ways(event_type: str, end: str) -> list[tuple[int, int, pl.Expr]]:
    """(fault code, way, what it does to the line) of every malformed, missing and drift fault of a type."""
    text = pl.col("json")
    ways: list[tuple[int, int, pl.Expr]] = [
        (FAULT_CODES["malformed"], 0, text.str.slice(0, text.str.len_chars() // 2) + end),
        (FAULT_CODES["malformed"], 1, text.str.replace(',"timestamp":', '"timestamp":', literal=True)),
        (FAULT_CODES["malformed"], 2, _retyped(WRONG_TYPE[event_type])),
    ]
    for k, (field, how) in enumerate(MISSING_FIELDS[event_type]):
        pattern = f'"{field}":{_VALUE}'
        new = text.str.replace(pattern + ",", "") if how == "dropped" else text.str.replace(pattern, f'"{field}":null')
        ways.append((FAULT_CODES["missing"], k, new))
    drift = DRIFT[event_type]
    renamed, new_name = drift["renamed"]
    version_2 = (
        text.str.replace(
            f'"event_type":"{event_type}",', f'"event_type":"{event_type}","schema_version":2,', literal=True
        )
        .str.replace(f'"{renamed}":', f'"{new_name}":', literal=True)
        .str.replace(f'"{drift["retyped"]}":(-?[0-9.]+)', f'"{drift["retyped"]}":"${{1}}"')
        .str.replace(f'"{drift["dropped"]}":{_VALUE},', "")
        .str.strip_suffix("}" + end)
        + f',"app_version":"{APP_VERSION}"}}{end}'
    )
    ways.append((FAULT_CODES["drift"], 0, version_2))
    return ways


def _retyped(field: str) -> pl.Expr:
    return pl.col("json").str.replace(f'"{field}":(-?[0-9.]+)', f'"{field}":"${{1}}"')


def bad_bytes(table: pl.DataFrame) -> np.ndarray:
    """The rows whose line gets an invalid UTF-8 byte (at UTF8_AT)."""
    malformed = table["fault"].to_numpy() == FAULT_CODES["malformed"]
    return np.flatnonzero(malformed & (table["fault_value"].to_numpy() == MALFORMED_WAYS.index("invalid_utf8")))


def with_bad_bytes(data: memoryview, positions: np.ndarray) -> memoryview:
    """``data`` with BAD_BYTE at ``positions`` (a copy; the encoder's buffers are read-only)."""
    if not len(positions):
        return data
    patched = np.frombuffer(data, dtype=np.uint8).copy()
    patched[positions] = BAD_BYTE
    return memoryview(patched.data)


def records(event_type: str, table: pl.DataFrame) -> FaultRows:
    """The sidecar records of the faulted rows of ``table``, without their place."""
    rows = np.flatnonzero(table["fault"].to_numpy())
    if not len(rows):
        return FaultRows.empty()
    t = table[rows]
    code, value = t["fault"].to_numpy(), t["fault_value"].to_numpy()
    ways = np.clip(value, 0, None)
    missing = MISSING_FIELDS[event_type]
    n = len(rows)
    ids = {
        "id": fixed_text("id", [uuid_chars(t["id_hi"], t["id_lo"])], n),
        "orig": fixed_text("orig", ['"', uuid_chars(t["orig_hi"], t["orig_lo"]), '"'], n),
        "timestamp": fixed_text("timestamp", [timestamp_chars(t["event_ts"].to_numpy())], n),
        "delivered": fixed_text("delivered", [timestamp_chars(t["ts"].to_numpy())], n),
        "true_ts": fixed_text("true_ts", [timestamp_chars(t["event_ts"].to_numpy() - value)], n),
        "before": fixed_text("before", [uuid_chars(t["search_hi"], t["search_lo"])], n)
        if event_type == "click"
        else pl.Series("before", [""] * n, dtype=pl.String),
    }
    names = {
        "kind": ("", *FAULT_KINDS),
        "malformed": MALFORMED_WAYS,
        "field": tuple(f for f, _ in missing),
        "how": tuple(h for _, h in missing),
    }
    chosen = {"kind": code.astype(np.int64), "malformed": ways, "field": ways, "how": ways}
    frame = pl.DataFrame(
        [
            *ids.values(),
            pl.Series("value", value).cast(pl.String),
            *(
                pl.Series(name, list(values)).gather(np.minimum(chosen[name], len(values) - 1))
                for name, values in names.items()
            ),
        ]
    ).with_columns(
        pl.when(pl.Series(t["orig_hi"].to_numpy() != 0)).then(pl.col("orig")).otherwise(pl.lit("null")).alias("orig")
    )
    kind, text = pl.col("kind"), pl.col

    def change(*parts: str | pl.Expr) -> pl.Expr:
        return pl.concat_str([pl.lit(p) if isinstance(p, str) else p for p in parts])

    described = (
        pl.when(kind.is_in(["duplicate", "resend", "late"]))
        .then(change('{"delay_ms":', text("value"), "}"))
        .when(kind == "clock_skew")
        .then(change('{"offset_ms":', text("value"), ',"true_timestamp":"', text("true_ts"), '"}'))
        .when(kind == "malformed")
        .then(change('{"how":"', text("malformed"), '"}'))
        .when(kind == "missing")
        .then(change('{"field":"', text("field"), '","how":"', text("how"), '"}'))
        .when(kind == "drift")
        .then(pl.lit(drift_change(event_type)))
        .when(kind == "bot")
        .then(change('{"searches_in_session":', text("value"), "}"))
        .otherwise(change('{"early_ms":', text("value"), ',"before_event_id":"', text("before"), '"}'))
    )
    record = change(
        '{"kind":"', kind, f'","event_type":"{event_type}","event_id":"', text("id"), '","original_event_id":',
        text("orig"), ',"timestamp":"', text("timestamp"), '","delivered_at":"', text("delivered"), '","change":',
        described,
    )  # fmt: skip
    return FaultRows(rows.astype(np.int64), code.astype(np.int8), frame.select(record.alias("record")).to_series())


def drift_change(event_type: str) -> str:
    """The sidecar's ``change`` of a drifted event of ``event_type``."""
    drift = DRIFT[event_type]
    old, new = drift["renamed"]
    return json.dumps(
        {"schema_version": 2, "renamed": {old: new}, "retyped": [drift["retyped"]], "dropped": [drift["dropped"]],
         "added": ["schema_version", "app_version"]},
        separators=(",", ":"),
    )  # fmt: skip


class FaultSidecar:
    """Writes ``faults.jsonl`` beside the output: every fault's record, with where it landed.

    A publisher like the others, listed after the sinks it describes. Where a fault landed:
    ``position``, its place among this run's deliveries of its type (1 for the first); with
    files, ``file`` and ``line``; with Parquet, ``partition``; with Redis, ``stream``; on
    standard output, ``line`` in the interleaved output. An overwrite of a batch run writes
    ``faults.jsonl.new`` and renames it at the end, as the event files do.
    """

    def __init__(
        self,
        directory: Path,
        *,
        overwrite: bool = False,
        staged: bool = False,
        lines_at_start: dict[str, int] | None = None,
        parquet: bool = False,
        streams: dict[str, str] | None = None,
        stdout: bool = False,
    ) -> None:
        """Open the sidecar; ``lines_at_start`` are the lines each JSONL file held before (when files are written)."""
        directory.mkdir(parents=True, exist_ok=True)
        self.path = directory / FAULTS_FILE
        self.target = self.path.with_name(FAULTS_FILE + ".new") if overwrite and staged else self.path
        flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC | (os.O_TRUNC if overwrite else 0)
        self.fd: int | None = os.open(self.target, flags, 0o666)
        self.lines = lines_at_start
        self.parquet = parquet
        self.streams = streams
        self.stdout = stdout
        self.delivered = dict.fromkeys(EVENT_TYPES, 0)
        self.interleaved = 0
        self.counts: Counter[str] = Counter()

    def write(self, batch: EncodedBatch) -> None:
        """Append the records of the batch's faults, each with its place."""
        faults = batch.faults
        if faults is None:
            return
        places = self._interleaved_lines(batch) if self.stdout else {}
        texts: list[pl.Series] = []
        stamps, types = [], []
        for event_type in EVENT_TYPES:
            found = faults[event_type]
            if len(found):
                position = self.delivered[event_type] + found.rows + 1
                place: dict[str, pl.Series | str] = {"position": pl.Series(position).cast(pl.String)}
                if self.lines is not None:
                    place["file"] = f'"{file_name(event_type)}"'
                    place["line"] = pl.Series(self.lines[event_type] + position).cast(pl.String)
                if self.parquet:
                    days = batch.stamps[event_type][found.rows] // 86_400_000
                    dates = np.array(days, dtype="datetime64[D]").astype(str)
                    place["partition"] = pl.Series(np.char.add(np.char.add('"date=', dates), '"'))
                if self.streams:
                    place["stream"] = json.dumps(self.streams[event_type])
                if self.stdout:
                    place["line"] = pl.Series(places[event_type][found.rows] + 1).cast(pl.String)
                parts: list[pl.Expr] = [pl.col("record")]
                for name, value in place.items():
                    parts += [pl.lit(f',"{name}":'), pl.lit(value)]
                parts.append(pl.lit("}\n"))
                texts.append(pl.DataFrame([found.records]).select(pl.concat_str(parts)).to_series())
                stamps.append(batch.stamps[event_type][found.rows])
                types.append(np.full(len(found), EVENT_TYPES.index(event_type)))
                self.counts.update(np.array(FAULT_KINDS)[found.kinds.astype(np.int64) - 1].tolist())
            self.delivered[event_type] += batch.counts[event_type]
        self.interleaved += len(batch)
        if not texts:
            return
        # In order of delivery (ties by type, then row), so the file does not depend on how the run was batched.
        order = np.lexsort((np.concatenate(types), np.concatenate(stamps)))
        data = pl.concat(texts).gather(order).str.join("").item().encode()
        view = memoryview(data)
        while view and self.fd is not None:
            view = view[os.write(self.fd, view) :]

    def _interleaved_lines(self, batch: EncodedBatch) -> dict[str, np.ndarray]:
        """The 0-based line of each row of each type in the run's interleaved output (standard output)."""
        _, order = time_order([batch.stamps[t] for t in EVENT_TYPES])
        line = np.empty(len(order), dtype=np.int64)
        line[order] = np.arange(len(order)) + self.interleaved
        starts = np.cumsum([0] + [batch.counts[t] for t in EVENT_TYPES])
        return {t: line[starts[k] : starts[k + 1]] for k, t in enumerate(EVENT_TYPES)}

    def push(self) -> None:
        """Records are written as they come: nothing waits."""

    def flush(self) -> None:
        """Records are written as they come: nothing waits."""

    def close(self) -> None:
        """Close the sidecar (an overwrite's staged one takes the old one's place)."""
        if self.fd is None:
            return
        os.close(self.fd)
        self.fd = None
        if self.target != self.path:
            os.replace(self.target, self.path)

    def discard(self) -> None:
        """End a failed run: an overwrite's staged sidecar is dropped, appended records stay."""
        if self.fd is None:
            return
        os.close(self.fd)
        self.fd = None
        if self.target != self.path:
            self.target.unlink(missing_ok=True)
