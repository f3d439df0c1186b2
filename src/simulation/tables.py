"""A batch of events as three column tables, one per event type, with integer codes for text.

Every table has ``ts`` (epoch milliseconds) first, and rows in time order once the
generator has sorted them. Text (UUIDs, names, queries) is only made from the codes when
a batch is encoded, so merging, sorting and cutting batches stays cheap.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import polars as pl

from ..models import EVENT_TYPES


def time_order(stamps: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Merge per-type times: the type of each event in time order, and its row in the concatenation.

    Ties in time go by event type (search, click, conversion), and within a type rows keep
    their order, so any prefix of the order is a prefix of each type's rows.
    """
    flat = np.concatenate(stamps)
    kinds = np.repeat(np.arange(len(stamps)), [len(s) for s in stamps])
    order = np.argsort(flat, kind="stable")  # the concatenation is in type order already
    return kinds[order], order


@dataclass(frozen=True)
class EventTables:
    """Searches, clicks and conversions of a batch, each a polars DataFrame of internal columns."""

    search: pl.DataFrame
    click: pl.DataFrame
    conversion: pl.DataFrame

    def items(self) -> Iterator[tuple[str, pl.DataFrame]]:
        """(event type, table) pairs in the order of EVENT_TYPES."""
        for event_type in EVENT_TYPES:
            yield event_type, getattr(self, event_type)

    def counts(self) -> dict[str, int]:
        """Rows per event type."""
        return {event_type: table.height for event_type, table in self.items()}

    def __len__(self) -> int:
        return self.search.height + self.click.height + self.conversion.height

    def concat(self, other: EventTables) -> EventTables:
        """Rows of ``self`` followed by rows of ``other``."""
        return EventTables(
            *(pl.concat([mine, theirs]) for (_, mine), (_, theirs) in zip(self.items(), other.items(), strict=True))
        )

    def merge(self, other: EventTables) -> EventTables:
        """Rows of two sorted batches, merged into one sorted batch."""
        return EventTables(
            *(
                mine.merge_sorted(theirs, key="ts")
                for (_, mine), (_, theirs) in zip(self.items(), other.items(), strict=True)
            )
        )

    @classmethod
    def merge_all(cls, parts: list[EventTables]) -> EventTables:
        """Rows of several sorted batches as one sorted batch; rows with equal times keep the order of the parts."""
        if len(parts) == 1:
            return parts[0]
        return cls.merge_tagged(parts, np.arange(len(parts)))[0]

    @classmethod
    def merge_tagged(cls, parts: list[EventTables], tags: np.ndarray) -> tuple[EventTables, dict[str, np.ndarray]]:
        """``merge_all`` of ``parts``, with the tag of the part each row came from (``tags[i]`` for part i).

        A later merge of several such results by (time, tag) gives the rows in the order one
        ``merge_all`` of all their parts would, when the tags rise with the parts' order.
        """
        merged, tagged = [], {}
        for event_type in EVENT_TYPES:
            frames = [getattr(part, event_type) for part in parts]
            frame = pl.concat(frames, rechunk=False)
            # A stable sort of sorted runs laid end to end is a merge (timsort finds the runs).
            order = np.argsort(frame["ts"].to_numpy(), kind="stable")
            merged.append(frame[order] if len(parts) > 1 else frame)
            tagged[event_type] = np.repeat(np.asarray(tags, dtype=np.int32), [f.height for f in frames])[order]
        return cls(*merged), tagged

    def count_before(self, cut_ms: int) -> int:
        """Events earlier than ``cut_ms``; tables must be sorted."""
        return sum(int(np.searchsorted(table["ts"].to_numpy(), cut_ms, side="left")) for _, table in self.items())

    def sort(self) -> EventTables:
        """Each table in time order; rows with equal times keep their order."""
        return EventTables(*(table[np.argsort(table["ts"].to_numpy(), kind="stable")] for _, table in self.items()))

    def split_at(self, cut_ms: int) -> tuple[EventTables, EventTables]:
        """Rows before ``cut_ms`` and the rest; tables must be sorted."""
        before, after = [], []
        for _, table in self.items():
            n = int(np.searchsorted(table["ts"].to_numpy(), cut_ms, side="left"))
            before.append(table.slice(0, n))
            after.append(table.slice(n))
        return EventTables(*before), EventTables(*after)

    def first(self, n: int) -> tuple[EventTables, EventTables]:
        """The first ``n`` events in time order over all types, and the rest; tables must be sorted.

        Ties in time are broken by event type (search, click, conversion), so within a type the
        kept rows are always a prefix of its table.
        """
        if n >= len(self):
            return self, self.head(0)
        kinds, _ = time_order([table["ts"].to_numpy() for _, table in self.items()])
        kept = np.bincount(kinds[:n], minlength=3)
        head = EventTables(*(table.slice(0, int(k)) for (_, table), k in zip(self.items(), kept, strict=True)))
        tail = EventTables(*(table.slice(int(k)) for (_, table), k in zip(self.items(), kept, strict=True)))
        return head, tail

    def head(self, n: int) -> EventTables:
        """The first ``n`` rows of each table."""
        return EventTables(*(table.head(n) for _, table in self.items()))


class Schedule:
    """Events still to come of the sessions in flight, kept as a few sorted pieces.

    Live traffic adds a small sorted batch every slice, and takes out the events due
    before the slice's end. Merging every new batch into one big table would copy all
    pending events ten times a second; instead pieces of similar size are merged, as in
    a log-structured merge tree, so each event is copied only a logarithmic number of times.
    """

    def __init__(self) -> None:
        self.pieces: list[EventTables] = []

    def __len__(self) -> int:
        return sum(len(piece) for piece in self.pieces)

    def add(self, tables: EventTables) -> None:
        """Schedule a sorted batch of events."""
        if not len(tables):
            return
        self.pieces.append(tables)
        while len(self.pieces) >= 2 and len(self.pieces[-2]) <= 2 * len(self.pieces[-1]):
            newer = self.pieces.pop()
            self.pieces.append(self.pieces.pop().merge(newer))

    def count_before(self, cut_ms: int) -> int:
        """Scheduled events earlier than ``cut_ms``."""
        return sum(piece.count_before(cut_ms) for piece in self.pieces)

    def pop_before(self, cut_ms: int, empty: EventTables) -> EventTables:
        """Take out the events earlier than ``cut_ms``, in time order (``empty`` if there are none)."""
        due, kept = [], []
        for piece in self.pieces:
            head, tail = piece.split_at(cut_ms)
            if len(head):
                due.append(head)
            if len(tail):
                kept.append(tail)
        self.pieces = kept
        if not due:
            return empty
        ready = due[0]
        for head in due[1:]:
            ready = ready.merge(head)
        return ready

    def sessions(self) -> int:
        """Distinct sessions with events still to come."""
        if not self.pieces:
            return 0
        return pl.concat([table["session"] for piece in self.pieces for _, table in piece.items()]).n_unique()
