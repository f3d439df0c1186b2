"""Encoded batches: the bytes a sink writes, with the counts and times it needs.

An encoder turns a batch of event tables into these; publishers take them whole.
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa

from ..models import EVENT_TYPES
from ..simulation.tables import time_order
from .faults import FaultRows

MAX_TAGS = 1 << 12  # tags (shards) below this sort after the time in one int64 key; SHARDS is at most 4096


@dataclass(frozen=True)
class Lines:
    """Pieces of text back to back in one buffer: piece i is ``data[offsets[i]:offsets[i + 1]]``."""

    data: memoryview
    offsets: np.ndarray

    @classmethod
    def empty(cls) -> Lines:
        """No pieces."""
        return cls(memoryview(b""), np.zeros(1, dtype=np.int64))

    def span(self, first: int, end: int) -> memoryview:
        """Pieces first to end - 1, as one slice of the buffer."""
        return self.data[int(self.offsets[first]) : int(self.offsets[end])]

    def __reduce__(self) -> tuple[Any, ...]:
        # A memoryview does not pickle: a worker process sends the buffer (out of band with protocol 5).
        return (_lines_from_bytes, (_buffer(self.data), self.offsets))

    @classmethod
    def gather(cls, parts: list[Lines], order: np.ndarray) -> Lines:
        """The pieces of ``parts`` laid end to end, taken in ``order`` (indices into that concatenation)."""
        arrays = [
            pa.LargeBinaryArray.from_buffers(
                pa.large_binary(), len(part.offsets) - 1, [None, pa.py_buffer(part.offsets), pa.py_buffer(part.data)]
            )
            for part in parts
        ]
        # polars gathers views of the pieces, then lays the bytes out once (faster than Arrow's own take).
        taken = pl.Series(pa.chunked_array(arrays, pa.large_binary())).gather(order)
        array = taken.to_arrow(compat_level=pl.CompatLevel.oldest())
        _, offsets_buffer, data_buffer = array.buffers()
        new = np.frombuffer(offsets_buffer, dtype=np.int64)[array.offset : array.offset + len(array) + 1]
        view = memoryview(data_buffer) if data_buffer is not None else memoryview(b"")
        return cls(view[new[0] : new[-1]], new - new[0])


@dataclass(frozen=True)
class EncodedBatch:
    """One batch ready to publish: JSON lines per event type, their counts and their times."""

    lines: dict[str, memoryview]  # newline-terminated JSON lines, back to back
    offsets: dict[str, np.ndarray]  # n + 1 offsets into lines: line i is lines[offsets[i]:offsets[i + 1]]
    counts: dict[str, int]
    stamps: dict[str, np.ndarray]  # epoch milliseconds of each line
    xadds: dict[str, Lines] = field(default_factory=dict)  # each event as an XADD command, if asked
    impressions: Lines | None = None  # a line per search line, in its order (the items it showed), if asked
    tables: dict[str, pa.Table] | None = None  # the events as typed Arrow tables (for Parquet), if asked
    faults: dict[str, FaultRows] | None = None  # the injected faults among the rows of each type, if any were asked

    def __len__(self) -> int:
        return sum(self.counts.values())

    def __reduce__(self) -> tuple[Any, ...]:
        # A memoryview does not pickle: a worker process sends the buffer (out of band with protocol 5).
        lines = {t: _buffer(v) for t, v in self.lines.items()}
        rest = (self.offsets, self.counts, self.stamps, self.xadds, self.impressions, self.tables, self.faults)
        return (_batch_from_bytes, (lines, *rest))

    @classmethod
    def merge(cls, parts: list[tuple[EncodedBatch, dict[str, np.ndarray]]]) -> EncodedBatch:
        """Batches encoded apart, each with the tag of every row (its shard), as one batch in time order.

        Rows go by time, then by tag, then in each batch's order: the order of the engine's
        ``EventTables.merge_all`` over every shard, so the bytes do not depend on how the
        shards were split between workers.
        """
        if len(parts) == 1:
            return parts[0][0]
        lines, offsets, stamps, xadds = {}, {}, {}, {}
        impressions = None
        tables: dict[str, pa.Table] | None = {} if parts[0][0].tables is not None else None
        faults: dict[str, FaultRows] | None = {} if parts[0][0].faults is not None else None
        for event_type in EVENT_TYPES:
            times = np.concatenate([batch.stamps[event_type] for batch, _ in parts])
            tags = np.concatenate([tagged[event_type] for _, tagged in parts]).astype(np.int64)
            order = np.argsort(times * MAX_TAGS + tags, kind="stable")
            pieces = [Lines(b.lines[event_type], b.offsets[event_type]) for b, _ in parts]
            # Without JSON lines (Redis the only output) every part's lines are empty.
            has_lines = all(
                len(piece.offsets) == len(b.stamps[event_type]) + 1 for piece, (b, _) in zip(pieces, parts, strict=True)
            )
            merged = Lines.gather(pieces, order) if has_lines else Lines.empty()
            lines[event_type], offsets[event_type], stamps[event_type] = merged.data, merged.offsets, times[order]
            if event_type in parts[0][0].xadds:
                xadds[event_type] = Lines.gather([b.xadds[event_type] for b, _ in parts], order)
            shown = [b.impressions for b, _ in parts if b.impressions is not None]
            if event_type == "search" and shown:
                if len(shown) != len(parts):
                    raise ValueError("some parts of a batch carry impressions and some do not")
                impressions = Lines.gather(shown, order)
            if tables is not None:
                # Taking from one chunk is five times faster than from several (pyarrow 26).
                table = pa.concat_tables([b.tables[event_type] for b, _ in parts if b.tables]).combine_chunks()
                tables[event_type] = table.take(order)
            if faults is not None:
                sizes = [len(b.stamps[event_type]) for b, _ in parts]
                faults[event_type] = FaultRows.merge([b.faults[event_type] for b, _ in parts if b.faults], sizes, order)
        counts = {event_type: len(stamps[event_type]) for event_type in EVENT_TYPES}
        return cls(lines, offsets, counts, stamps, xadds, impressions, tables, faults)

    def line_list(self, event_type: str) -> list[bytes]:
        """The lines of one type as separate bytes (with their newline)."""
        data, offsets = self.lines[event_type], self.offsets[event_type].tolist()
        return [bytes(data[a:b]) for a, b in pairwise(offsets)]

    def interleaved(self) -> bytes:
        """All lines in time order over the three types (ties: search, click, conversion)."""
        lines = [line for event_type in EVENT_TYPES for line in self.line_list(event_type)]
        _, order = time_order([self.stamps[event_type] for event_type in EVENT_TYPES])
        return b"".join(lines[i] for i in order)


def _buffer(view: memoryview) -> pickle.PickleBuffer | bytes:
    return pickle.PickleBuffer(view) if view.nbytes else b""


def _lines_from_bytes(data: bytes, offsets: np.ndarray) -> Lines:
    return Lines(memoryview(data), offsets)


def _batch_from_bytes(lines: dict[str, bytes], *rest: Any) -> EncodedBatch:
    return EncodedBatch({t: memoryview(v) for t, v in lines.items()}, *rest)
