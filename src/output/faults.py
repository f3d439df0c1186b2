"""Faults in the text, and the truth about every fault: the sidecar ``faults.jsonl``.

``simulation.faults`` marks rows; here the marked JSON lines are damaged (cut, made invalid,
mistyped, not UTF-8, a field dropped or null), and every marked row becomes one record of
the sidecar: what kind of fault, which event, what was changed, and where it landed. Only
the few marked rows are touched, a whole batch at a time.
"""

from __future__ import annotations

import json
import os
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import polars as pl

from ..config import FAULT_KINDS
from ..models import EVENT_TYPES, file_name
from ..simulation.faults import FAULT_CODES, MALFORMED_WAYS, MISSING_FIELDS
from ..simulation.tables import time_order
from .ascii import timestamp_chars, uuid_chars

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
    faulty = np.flatnonzero(np.isin(fault, [FAULT_CODES[k] for k in ("malformed", "missing", "drift")]))
    if not bad_bytes_in:
        faulty = np.setdiff1d(faulty, bad_bytes(table), assume_unique=True)
    binary = text.cast(pl.Binary)
    if not len(faulty):
        return binary
    # A few lines in a few hundred: string functions on each cost less than a columnar pass per way,
    # whose set-up (a regex compiled per call) is paid again for every small batch a worker encodes.
    keys = zip(fault[faulty].tolist(), value[faulty].tolist(), strict=True)
    damaged = [ways[key](line) for key, line in zip(keys, text.gather(faulty).to_list(), strict=True)]
    # One scatter of every damaged line: each would copy the whole column.
    return binary.scatter(faulty, pl.Series(damaged, dtype=pl.Binary))


@cache
def _ways(event_type: str, end: str) -> dict[tuple[int, int], Callable[[str], bytes]]:
    """What each malformed, missing and drift fault of a type does to a line, by (fault code, way)."""

    def cut(line: str) -> str:
        return line[: len(line) // 2] + end

    def bad_byte(line: str) -> bytes:
        data = line.encode()
        return data[:UTF8_AT] + bytes([BAD_BYTE]) + data[UTF8_AT + 1 :]

    malformed: dict[str, Callable[[str], bytes]] = {
        "cut": _encoded(cut),
        "invalid_json": _encoded(lambda line: line.replace(',"timestamp":', '"timestamp":', 1)),
        "wrong_type": _encoded(_as_text(WRONG_TYPE[event_type])),
        "invalid_utf8": bad_byte,
    }
    ways = {(FAULT_CODES["malformed"], MALFORMED_WAYS.index(name)): way for name, way in malformed.items()}
    for k, (field, how) in enumerate(MISSING_FIELDS[event_type]):
        pattern = f'"{field}":{_VALUE}'
        change = _first(pattern + ",", "") if how == "dropped" else _first(pattern, f'"{field}":null')
        ways[FAULT_CODES["missing"], k] = _encoded(change)
    drift = DRIFT[event_type]
    renamed, new_name = drift["renamed"]
    retyped = _as_text(str(drift["retyped"]))
    dropped = _first(f'"{drift["dropped"]}":{_VALUE},', "")
    typed = f'"event_type":"{event_type}",'

    def version_2(line: str) -> str:
        line = line.replace(typed, typed + '"schema_version":2,', 1).replace(f'"{renamed}":', f'"{new_name}":', 1)
        return dropped(retyped(line)).removesuffix("}" + end) + f',"app_version":"{APP_VERSION}"}}{end}'

    ways[FAULT_CODES["drift"], 0] = _encoded(version_2)
    return ways


def _first(pattern: str, replacement: str) -> Callable[[str], str]:
    """Replace the first match of a regex in a line."""
    compiled = re.compile(pattern)
    return lambda line: compiled.sub(replacement, line, count=1)


def _as_text(field: str) -> Callable[[str], str]:
    """Send the number of ``field`` as a string."""
    return _first(f'"{field}":(-?[0-9.]+)', rf'"{field}":"\g<1>"')


def _encoded(change: Callable[[str], str]) -> Callable[[str], bytes]:
    return lambda line: change(line).encode()


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
    ids = ["id_hi", "id_lo", "orig_hi", "orig_lo", *(["search_hi", "search_lo"] if event_type == "click" else [])]
    t = table.select(*ids, "event_ts", "ts", "fault", "fault_value")[rows]
    code, value, event_ts = t["fault"].to_numpy(), t["fault_value"].to_numpy(), t["event_ts"].to_numpy()
    # The fixed-width texts a whole column at a time; each record is then one format of a few fields.
    # A worker encodes small batches, each with a few hundred faults: a columnar pass per field would
    # cost more in set-up than these formats do.
    text = {
        "id": uuid_chars(t["id_hi"], t["id_lo"]),
        "orig": uuid_chars(t["orig_hi"], t["orig_lo"]),
        "timestamp": timestamp_chars(event_ts),
        "delivered": timestamp_chars(t["ts"].to_numpy()),
        "true_ts": timestamp_chars(event_ts - value),
    }
    fields = {name: _strings(chars) for name, chars in text.items()}
    # Only a click can arrive before its search.
    fields["before"] = _strings(uuid_chars(t["search_hi"], t["search_lo"])) if event_type == "click" else []
    copied = (t["orig_hi"].to_numpy() != 0).tolist()
    drifted = drift_change(event_type)
    missing = MISSING_FIELDS[event_type]
    kept = []
    for k, (kind_code, number) in enumerate(zip(code.tolist(), value.tolist(), strict=True)):
        kind = FAULT_KINDS[kind_code - 1]
        if kind in ("duplicate", "resend", "late"):
            change = f'{{"delay_ms":{number}}}'
        elif kind == "clock_skew":
            change = f'{{"offset_ms":{number},"true_timestamp":"{fields["true_ts"][k]}"}}'
        elif kind == "malformed":
            change = f'{{"how":"{MALFORMED_WAYS[number]}"}}'
        elif kind == "missing":
            change = '{{"field":"{}","how":"{}"}}'.format(*missing[number])
        elif kind == "drift":
            change = drifted
        elif kind == "bot":
            change = f'{{"searches_in_session":{number}}}'
        else:  # out_of_order
            change = f'{{"early_ms":{number},"before_event_id":"{fields["before"][k]}"}}'
        original = f'"{fields["orig"][k]}"' if copied[k] else "null"
        kept.append(
            f'{{"kind":"{kind}","event_type":"{event_type}","event_id":"{fields["id"][k]}",'
            f'"original_event_id":{original},"timestamp":"{fields["timestamp"][k]}",'
            f'"delivered_at":"{fields["delivered"][k]}","change":{change}'
        )
    return FaultRows(rows.astype(np.int64), code.astype(np.int8), pl.Series("record", kept, dtype=pl.String))


def _strings(chars: np.ndarray) -> list[str]:
    """Each row of an (n, w) ASCII array as a str."""
    width = chars.shape[1]
    return np.ascontiguousarray(chars).view(f"S{width}").ravel().astype(f"U{width}").tolist()  # type: ignore[no-any-return]


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
