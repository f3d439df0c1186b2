"""Encoded batches: the bytes a sink writes, with the counts and times it needs.

An encoder turns a batch of event tables into these; publishers take them whole.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import pairwise

import numpy as np

from ..models import EVENT_TYPES
from ..simulation.tables import time_order


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


@dataclass(frozen=True)
class EncodedBatch:
    """One batch ready to publish: JSON lines per event type, their counts and their times."""

    lines: dict[str, memoryview]  # newline-terminated JSON lines, back to back
    offsets: dict[str, np.ndarray]  # n + 1 offsets into lines: line i is lines[offsets[i]:offsets[i + 1]]
    counts: dict[str, int]
    stamps: dict[str, np.ndarray]  # epoch milliseconds of each line
    xadds: dict[str, Lines] = field(default_factory=dict)  # each event as an XADD command, if asked

    def __len__(self) -> int:
        return sum(self.counts.values())

    def line_list(self, event_type: str) -> list[bytes]:
        """The lines of one type as separate bytes (with their newline)."""
        data, offsets = self.lines[event_type], self.offsets[event_type].tolist()
        return [bytes(data[a:b]) for a, b in pairwise(offsets)]

    def interleaved(self) -> bytes:
        """All lines in time order over the three types (ties: search, click, conversion)."""
        lines = [line for event_type in EVENT_TYPES for line in self.line_list(event_type)]
        _, order = time_order([self.stamps[event_type] for event_type in EVENT_TYPES])
        return b"".join(lines[i] for i in order)
