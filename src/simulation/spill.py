"""Columns of one row per user, kept in a temporary file instead of the process's memory.

A shard has a row for every user it has had (millions in a long run) and touches all of
them once a slice, to draw who comes back. Held in memory they were most of a large run's
memory (1.5 GB at 100M events). Here they live in a temporary file (unlinked at once, so
nothing is left behind, even after a kill), mapped a chunk of CHUNK_ROWS rows at a time:
each use of a chunk pages it in, and the chunk is let go right after (``MADV_DONTNEED``,
which for a file mapping keeps the data in the file and the page cache). The process holds
only the chunk in use; the operating system keeps the rest in its page cache while it has
room and writes it to disk when it needs the room.

The file goes where ``tempfile`` puts temporary files (``TMPDIR``, else ``/tmp``). Where that
is a tmpfs (memory), the rows leave the process but not the machine's memory: point
``TMPDIR`` at a disk for runs of millions of users.
"""

from __future__ import annotations

import mmap
import os
import tempfile
from collections.abc import Iterator
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa

CHUNK_ROWS = 1 << 17  # rows a chunk: a whole number of pages for any column, and a small pass over a shard's users


RESERVE_ROWS = 4096  # rows whose disk blocks are taken at a time: a few pages a column
SPOOL_BATCH_ROWS = 16_384  # rows read back at a time: a merge of eight shards holds eight such batches


class SpillFailed(Exception):
    """Users' rows cannot be kept in the temporary folder (no room, no file): the run stops with one line.

    Not an OSError: a writer of output files must not take it for a failure of its own file.
    """


def _spill_error(error: OSError, what: str) -> SpillFailed:
    folder = tempfile.gettempdir()
    reason = error.strerror or str(error)
    return SpillFailed(f"cannot keep {what} in the temporary folder {folder} (TMPDIR): {reason}")


class SpilledColumns:
    """Named columns of equal length in a temporary file, used a chunk of rows at a time."""

    def __init__(self, dtypes: dict[str, type | np.dtype], chunk_rows: int | None = None) -> None:
        """No rows yet; ``chunk_rows`` (CHUNK_ROWS) a multiple of the page size: each column of a chunk starts one."""
        self.dtypes = {name: np.dtype(dtype) for name, dtype in dtypes.items()}
        self.chunk_rows = chunk_rows = chunk_rows or CHUNK_ROWS
        if chunk_rows % mmap.ALLOCATIONGRANULARITY:
            raise ValueError(f"chunk_rows must be a multiple of {mmap.ALLOCATIONGRANULARITY}, not {chunk_rows}")
        offsets, at = {}, 0
        for name, dtype in self.dtypes.items():
            offsets[name] = at
            at += dtype.itemsize * chunk_rows
        self._offsets, self._chunk_bytes = offsets, at
        self._file: Any = None  # made with the first row: a shard without users has no file
        self._maps: list[mmap.mmap] = []
        self._views: list[dict[str, np.ndarray]] = []
        self.size = 0
        self._reserved = 0  # rows whose blocks the file has taken

    @property
    def chunks(self) -> int:
        """Chunks holding rows."""
        return -(-self.size // self.chunk_rows)

    def _chunk(self, k: int) -> dict[str, np.ndarray]:
        """Chunk ``k``'s columns (every row of the chunk, also those not yet added), mapped on first use."""
        while len(self._maps) <= k:
            at = len(self._maps) * self._chunk_bytes
            try:
                if self._file is None:
                    self._file = tempfile.TemporaryFile(prefix="searchflow-users-")  # noqa: SIM115 (as long as the rows)
                self._file.truncate(at + self._chunk_bytes)  # sparse: blocks are taken as rows are added
                mapped = mmap.mmap(self._file.fileno(), self._chunk_bytes, offset=at)
            except OSError as exc:
                raise _spill_error(exc, "the users' rows") from None
            self._maps.append(mapped)
            self._views.append(
                {
                    name: np.frombuffer(mapped, dtype, self.chunk_rows, self._offsets[name])
                    for name, dtype in self.dtypes.items()
                }
            )
        return self._views[k]

    def _let_go(self, k: int) -> None:
        """Take chunk ``k``'s pages out of the process (their data stays in the file)."""
        self._maps[k].madvise(mmap.MADV_DONTNEED)

    def _by_chunk(self, rows: np.ndarray) -> Iterator[tuple[int, np.ndarray | None, np.ndarray]]:
        """For each chunk that ``rows`` touch: the chunk, which entries of ``rows`` are in it, their places there.

        The entries are None when they are all of ``rows`` (a shard of one chunk: no sorting).
        """
        rows = np.asarray(rows, dtype=np.int64)
        if len(rows) and (int(rows.min()) < 0 or int(rows.max()) >= self.size):
            raise IndexError(f"rows outside 0..{self.size - 1}")
        if self.chunks == 1:
            if len(rows):
                yield 0, None, rows
            return
        chunk = rows // self.chunk_rows
        order = np.argsort(chunk, kind="stable")
        bounds = np.searchsorted(chunk[order], np.arange(self.chunks + 1))
        for k in range(self.chunks):
            entries = order[bounds[k] : bounds[k + 1]]
            if len(entries):
                yield k, entries, rows[entries] - k * self.chunk_rows

    def _reserve(self, end: int) -> None:
        """Take the file's blocks for rows up to ``end`` of every column (they read as zeros until written).

        A write through the mapping to a block the disk has no room for would kill the process
        with SIGBUS; taken here, no room is an error that says so. Blocks are taken RESERVE_ROWS
        rows ahead, so a shard adding a few users at a time makes few calls.
        """
        if end <= self._reserved:
            return
        first, end = self._reserved, -(-end // RESERVE_ROWS) * RESERVE_ROWS  # a chunk holds whole reserves
        for k in range(first // self.chunk_rows, -(-end // self.chunk_rows)):
            self._chunk(k)
            low = max(first - k * self.chunk_rows, 0)
            high = min(end - k * self.chunk_rows, self.chunk_rows)
            for name, dtype in self.dtypes.items():
                at = k * self._chunk_bytes + self._offsets[name] + low * dtype.itemsize
                try:
                    os.posix_fallocate(self._file.fileno(), at, (high - low) * dtype.itemsize)
                except OSError as exc:
                    raise _spill_error(exc, "the users' rows") from None
        self._reserved = end

    def append(self, values: dict[str, np.ndarray], n: int) -> np.ndarray:
        """Add ``n`` rows (columns not in ``values`` are zero); return their row numbers."""
        first = self.size
        self._reserve(first + n)
        self.size += n
        rows = np.arange(first, first + n)
        if n:
            self.put(rows, values)
        return rows

    def take(self, rows: np.ndarray, names: tuple[str, ...] | list[str]) -> dict[str, np.ndarray]:
        """Copies of columns ``names`` at ``rows`` (any order, repeats allowed)."""
        out = {name: np.empty(len(rows), dtype=self.dtypes[name]) for name in names}
        for k, entries, places in self._by_chunk(rows):
            chunk = self._chunk(k)
            for name in names:
                if entries is None:
                    out[name] = chunk[name][places]
                else:
                    out[name][entries] = chunk[name][places]
            self._let_go(k)
        return out

    def put(self, rows: np.ndarray, values: dict[str, np.ndarray]) -> None:
        """Set columns at ``rows`` (distinct) to ``values`` (arrays as long as ``rows``, or scalars)."""
        for k, entries, places in self._by_chunk(rows):
            chunk = self._chunk(k)
            for name, value in values.items():
                chunk[name][places] = value[entries] if np.ndim(value) and entries is not None else value
            self._let_go(k)

    def scan(self, names: tuple[str, ...] | list[str]) -> Iterator[tuple[int, dict[str, np.ndarray]]]:
        """Each chunk in order: its first row and its columns ``names`` (writable views of its rows, let go after)."""
        for k in range(self.chunks):
            chunk = self._chunk(k)
            rows = min(self.chunk_rows, self.size - k * self.chunk_rows)
            try:
                yield k * self.chunk_rows, {name: chunk[name][:rows] for name in names}
            finally:
                self._let_go(k)

    def column(self, name: str) -> np.ndarray:
        """A copy of a whole column (for small tables and tests)."""
        parts = [columns[name].copy() for _, columns in self.scan((name,))]
        return np.concatenate(parts) if parts else np.zeros(0, dtype=self.dtypes[name])


class SpooledFrames:
    """Frames of one schema written one after another to a temporary file (Arrow IPC), read back in order.

    They come back SPOOL_BATCH_ROWS rows at a time at most, whatever their size when written.
    """

    def __init__(self) -> None:
        """Nothing written yet."""
        try:
            self._file = tempfile.TemporaryFile(prefix="searchflow-spool-")  # noqa: SIM115 (as long as the frames)
        except OSError as exc:
            raise _spill_error(exc, "the users' answer key") from None
        self._writer: pa.ipc.RecordBatchStreamWriter | None = None

    def add(self, frame: pl.DataFrame) -> None:
        """Write ``frame`` after the others."""
        table = frame.to_arrow()
        try:
            if self._writer is None:
                self._writer = pa.ipc.new_stream(self._file, table.schema)
            self._writer.write_table(table, max_chunksize=SPOOL_BATCH_ROWS)
        except OSError as exc:
            raise _spill_error(exc, "the users' answer key") from None

    def frames(self) -> Iterator[pl.DataFrame]:
        """The rows written, in order, in frames of SPOOL_BATCH_ROWS at most (once: nothing can be added after)."""
        if self._writer is None:
            return
        try:
            self._writer.close()
            self._file.flush()  # the last bytes buffered: no room for them is said here
            self._file.seek(0)
        except OSError as exc:
            raise _spill_error(exc, "the users' answer key") from None
        for batch in pa.ipc.open_stream(self._file):
            yield pl.DataFrame(pl.from_arrow(batch))
