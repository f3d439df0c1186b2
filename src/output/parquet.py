"""A sink for Parquet: one Hive-partitioned dataset per event type, by event date in UTC.

``OUTPUT_DIR/search_events/date=2026-01-31/part-r0000-00000.parquet``, and the same for
clicks and conversions. Rows come in time order, so a date's file is complete once a later
date begins; each file is written under a hidden temporary name (``.part-….parquet.tmp``,
which Spark, Hive, pyarrow and ``*.parquet`` globs skip) and renamed when it is closed, so
a reader never sees half a file, however the run ends. A run's files carry its run tag
(``r0000``, the first free number in the folder): appending adds new files and never
touches old ones. An ``--overwrite`` run writes hidden ``.<dataset>.new`` folders and puts
them in place of the old datasets when it ends.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ..models import EVENT_TYPES, dataset_name, file_name
from .arrow import arrow_schema, dictionary_columns
from .batch import EncodedBatch
from .files import IMPRESSIONS_FILE, WriteFailed, remove_all

ROW_GROUP_ROWS = 1 << 17  # 131,072 rows (DuckDB writes 122,880): fast scans; twice as many cost 200 MB more at 20M
FILE_ROW_GROUPS = 32  # a date of one type goes on in a new file after this many row groups (about 4 million rows)
TEMPORARY_SUFFIX = ".tmp"
STAGED_PREFIX, STAGED_SUFFIX = ".", ".new"  # an --overwrite run's datasets: .search_events.new
MS_PER_DAY = 86_400_000
COMPLETE = "; the datasets hold complete files only"
PARQUET_RUN = "parquet_run"  # the manifest's note of a run's tag, to count what a killed run left
_PART = re.compile(r"^part-r(\d+)-\d+\.parquet$")


def parquet_datasets(directory: Path) -> list[Path]:
    """The three Parquet datasets of a folder (whether they are there or not)."""
    return [directory / dataset_name(t) for t in EVENT_TYPES]


def jsonl_files(directory: Path) -> list[Path]:
    """The JSON lines of a folder's events (and impressions), whether they are there or not."""
    return [*(directory / file_name(t) for t in EVENT_TYPES), directory / IMPRESSIONS_FILE]


def run_files(directory: Path, run_tag: str) -> list[Path]:
    """The complete Parquet files of one run (by its tag) in the datasets of ``directory``."""
    return sorted(
        path
        for event_type in EVENT_TYPES
        for path in (directory / dataset_name(event_type)).glob(f"date=*/part-{run_tag}-*.parquet")
    )


def rows_in(paths: Sequence[Path]) -> dict[str, int]:
    """Rows per event type in Parquet files of the datasets (read from their footers)."""
    names = {dataset_name(t): t for t in EVENT_TYPES}
    return {t: _rows([p for p in paths if names.get(p.parent.parent.name) == t]) for t in EVENT_TYPES}


def _rows(paths: Sequence[Path]) -> int:
    return sum(pq.ParquetFile(path).metadata.num_rows for path in paths)


def remove_leftovers(directory: Path) -> None:
    """Delete what a killed run left: temporary files in the datasets and staged ``--overwrite`` datasets."""
    for event_type in EVENT_TYPES:
        name = dataset_name(event_type)
        shutil.rmtree(directory / f"{STAGED_PREFIX}{name}{STAGED_SUFFIX}", ignore_errors=True)
        for leftover in (directory / name).glob(f"date=*/.part-*{TEMPORARY_SUFFIX}"):
            with contextlib.suppress(FileNotFoundError):
                leftover.unlink()


def _next_run_tag(directory: Path) -> str:
    numbers = [
        int(match.group(1))
        for event_type in EVENT_TYPES
        for path in (directory / dataset_name(event_type)).glob("date=*/part-r*.parquet")
        if (match := _PART.match(path.name))
    ]
    return f"r{max(numbers, default=-1) + 1:04d}"


class _Dataset:
    """One event type's dataset being written: rows waiting for a row group, and the open file of their date."""

    def __init__(self, root: Path, schema: pa.Schema, options: dict[str, Any], run_tag: str) -> None:
        self.root, self.schema, self.options, self.run_tag = root, schema, options, run_tag
        self.day: int | None = None
        self.waiting: list[pa.Table] = []
        self.rows_waiting = 0
        self.writer: pq.ParquetWriter | None = None
        self.temporary = self.final = Path()
        self.groups = 0
        self.sequence = 0
        self.closed: list[Path] = []  # complete files of this run
        self.file_rows = 0  # rows in the open file
        self.complete = 0  # rows in complete files

    def add(self, day: int, rows: pa.Table) -> None:
        if day != self.day:
            self.write_waiting(everything=True)
            self.close_file()
            self.day = day
        self.waiting.append(rows)
        self.rows_waiting += rows.num_rows
        self.write_waiting(everything=False)

    def write_waiting(self, everything: bool) -> None:
        """Write whole row groups of the waiting rows (and, with ``everything``, the rest as a last one)."""
        whole = self.rows_waiting if everything else self.rows_waiting // ROW_GROUP_ROWS * ROW_GROUP_ROWS
        if whole == 0:
            return
        # One chunk per column, so that nothing in the bytes depends on how the rows came in batches (and so on
        # the number of workers).
        table = pa.concat_tables(self.waiting).combine_chunks()
        written = 0
        while written < whole:
            if self.writer is None:
                self.open_file()
            size = min(ROW_GROUP_ROWS, whole - written)
            try:
                assert self.writer is not None
                self.writer.write_table(table.slice(written, size), row_group_size=ROW_GROUP_ROWS)
            except OSError as exc:
                raise WriteFailed(self.final, exc, COMPLETE) from None
            written += size
            self.file_rows += size
            self.groups += 1
            if self.groups >= FILE_ROW_GROUPS:
                self.close_file()
        rest = table.slice(whole)
        self.waiting, self.rows_waiting = ([rest] if rest.num_rows else []), rest.num_rows

    def open_file(self) -> None:
        day = np.datetime64(self.day, "D")
        folder = self.root / f"date={day}"
        name = f"part-{self.run_tag}-{self.sequence:05d}.parquet"
        self.sequence += 1
        self.final, self.temporary = folder / name, folder / f".{name}{TEMPORARY_SUFFIX}"
        try:
            folder.mkdir(parents=True, exist_ok=True)
            self.writer = pq.ParquetWriter(self.temporary, self.schema, **self.options)
        except OSError as exc:
            raise WriteFailed(self.final, exc, COMPLETE) from None
        self.groups = 0

    def close_file(self) -> None:
        """Finish the open file and give it its name: from now on readers see it, whole."""
        if self.writer is None:
            return
        writer, self.writer = self.writer, None
        try:
            writer.close()
            os.replace(self.temporary, self.final)
        except OSError as exc:
            raise WriteFailed(self.final, exc, COMPLETE) from None
        self.closed.append(self.final)
        self.complete += self.file_rows
        self.file_rows = 0

    def abandon(self) -> None:
        """Drop the open file and the waiting rows (a failed run): only complete files stay."""
        self.waiting, self.rows_waiting = [], 0
        if self.writer is not None:
            with contextlib.suppress(Exception):
                self.writer.close()
            self.writer = None
        self.file_rows = 0
        if self.temporary != Path():
            with contextlib.suppress(OSError):
                self.temporary.unlink()


class ParquetPublisher:
    """Writes each batch's Arrow tables to the three Parquet datasets of a folder, by date.

    The caller holds the folder's lock. ``stale`` are paths an ``--overwrite`` run removes
    when it ends (the JSON lines of an earlier run, when this one writes none).
    """

    def __init__(
        self,
        directory: Path,
        overwrite: bool = False,
        *,
        compression: str = "zstd",
        stale: Sequence[Path] = (),
        name: str = "OUTPUT_DIR",
        nulls: bool = False,
    ) -> None:
        """Clear what a killed run left, and choose this run's tag (appending) or staged folders (overwrite).

        With ``nulls`` (missing-field faults), the fields such a fault leaves null are nullable.
        """
        self.directory = directory
        self.nulls = nulls
        self.overwrite = overwrite
        self.paths = {t: directory / dataset_name(t) for t in EVENT_TYPES}
        self._stale = list(stale)
        self.dropped = False
        self.failed = False  # a write failed: open files were dropped, nothing more is written
        try:
            remove_leftovers(directory)
            self.run_tag = "r0000" if overwrite else _next_run_tag(directory)
        except OSError as exc:
            raise WriteFailed(directory, exc, "; nothing was written") from None
        self._roots = {
            t: path.with_name(f"{STAGED_PREFIX}{path.name}{STAGED_SUFFIX}") if overwrite else path
            for t, path in self.paths.items()
        }
        options: dict[str, Any] = {
            "compression": "none" if compression == "none" else compression,
            "store_decimal_as_integer": True,
            "write_statistics": True,
        }
        self._datasets = {
            t: _Dataset(
                self._roots[t],
                arrow_schema(t, nulls),
                {**options, "use_dictionary": dictionary_columns(t)},
                self.run_tag,
            )
            for t in EVENT_TYPES
        }
        self.written = dict.fromkeys(EVENT_TYPES, 0)

    @property
    def sizes_at_start(self) -> dict[str, Any]:
        """What the manifest notes before the run, to count a killed run's rows: its run tag."""
        return {PARQUET_RUN: self.run_tag}

    def write(self, batch: EncodedBatch) -> None:
        """Add a batch's rows, date by date; whole row groups are written as they fill."""
        if batch.tables is None:
            raise ValueError("the batch carries no Arrow tables: the encoder was not asked for Parquet")
        if not self.failed:
            with self._failing():
                self._write(batch)

    @contextlib.contextmanager
    def _failing(self) -> Iterator[None]:
        """On a failed write, drop every open file (so only complete ones stay) and write no more."""
        try:
            yield
        except WriteFailed:
            self.failed = True
            for dataset in self._datasets.values():
                dataset.abandon()
            raise

    def _write(self, batch: EncodedBatch) -> None:
        assert batch.tables is not None
        for event_type, dataset in self._datasets.items():
            table = batch.tables[event_type]
            if table.num_rows == 0:
                continue
            days = batch.stamps[event_type] // MS_PER_DAY
            starts = np.r_[0, np.flatnonzero(np.diff(days)) + 1, len(days)]
            for a, b in zip(starts[:-1].tolist(), starts[1:].tolist(), strict=True):
                dataset.add(int(days[a]), table.slice(a, b - a))
            self.written[event_type] += table.num_rows

    def push(self) -> None:
        """Nothing: files become visible as their dates end (Parquet is for batch runs)."""

    def flush(self) -> None:
        """Write every waiting row and close every open file: all this run's rows are in complete files."""
        if self.failed:
            return
        with self._failing():
            for dataset in self._datasets.values():
                dataset.write_waiting(everything=True)
                dataset.close_file()

    def close(self) -> None:
        """Flush; an overwrite's new datasets take the place of the old ones."""
        self.flush()
        if not self.overwrite:
            return
        for event_type, path in self.paths.items():
            staged, old = self._roots[event_type], path.with_name(f"{STAGED_PREFIX}{path.name}.old")
            try:
                staged.mkdir(exist_ok=True)  # an event type with no rows still gets its (empty) dataset
                if path.exists():
                    path.replace(old)
                staged.replace(path)
            except OSError as exc:
                raise WriteFailed(path, exc, f"; the run's new dataset is {staged.name}") from None
            shutil.rmtree(old, ignore_errors=True)
        remove_all(self._stale)

    def discard(self) -> None:
        """End a failed run: an overwrite's new datasets are dropped (the old ones stay).

        An appending run keeps what it was handed, in complete files, where they can still be
        written (the run failed elsewhere); what cannot be is dropped, and only complete files stay.
        """
        if not self.overwrite:
            with contextlib.suppress(WriteFailed):
                self.flush()
        for dataset in self._datasets.values():
            dataset.abandon()
        if self.overwrite:
            for root in self._roots.values():
                shutil.rmtree(root, ignore_errors=True)
            self.dropped = True

    def undo(self) -> None:
        """Take this run's files out of the datasets again (the manifest could not be written)."""
        if self.overwrite:
            return
        for dataset in self._datasets.values():
            for path in dataset.closed:
                with contextlib.suppress(OSError):
                    path.unlink()

    def complete_rows(self) -> dict[str, int]:
        """Rows per event type in this run's complete files: what it wrote, however it ended."""
        return {t: dataset.complete for t, dataset in self._datasets.items()}

    def files(self) -> list[Path]:
        """The complete files this run wrote, in the order they were closed per event type."""
        return [path for dataset in self._datasets.values() for path in dataset.closed]
