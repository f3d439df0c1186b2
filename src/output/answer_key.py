"""Answer-key files beside the event files (``users.jsonl``, ``items.jsonl``): how they are written and taken back.

Each is one JSON object per line, written by the run's parent process after the events and
before the manifest: replaced by ``--overwrite``, appended to otherwise. A failed write
leaves whole lines only, and a run whose manifest cannot be written takes its lines out again
(:meth:`KeyWritten.undo`), so the manifest's entry for each file (:func:`key_entry`) is true.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import polars as pl

from .files import WriteFailed


@dataclass(frozen=True)
class KeyWritten:
    """What a run added to an answer-key file: the file, its lines, and its size before (to take them out again)."""

    path: Path
    lines: int
    size_before: int

    def undo(self) -> None:
        """Cut the file back to its size before this run's lines (the manifest could not be written)."""
        with contextlib.suppress(OSError):
            os.truncate(self.path, self.size_before)


def _os_error(error: OSError) -> OSError:
    """``error`` with its errno: polars raises OSError("No space left on device (os error 28)") without one."""
    found = re.search(r"os error (\d+)", str(error)) if error.errno is None else None
    return OSError(int(found.group(1)), os.strerror(int(found.group(1)))) if found else error


KEY_CHUNK_ROWS = 65_536  # rows rendered and written at a time: the text of ten million users never sits in memory


def _take_back(path: Path, before: int, overwrite: bool) -> str:
    """Remove what a failed write added to ``path`` (an overwrite's file entirely); say what was done."""
    try:
        if overwrite:
            path.unlink(missing_ok=True)
            return f"; {path.name} was removed"
        # Never longer than it is: a file cut by someone else meanwhile must not grow NUL bytes.
        os.truncate(path, min(before, path.stat().st_size))
        return f"; {path.name} was cut back to the lines before this run"
    except OSError as cut:
        return f"; could not cut {path.name} back to whole lines ({(cut.strerror or str(cut)).lower()})"


class Rows(Protocol):
    """Rows to write: a DataFrame, or rows read back a slice at a time (the users' :class:`UserTables`)."""

    @property
    def height(self) -> int:
        """The number of rows."""
        ...

    def iter_slices(self, n_rows: int) -> Iterator[pl.DataFrame]:
        """The rows in order, at most ``n_rows`` at a time."""
        ...


def write_key(
    directory: Path,
    name: str,
    frame: Rows,
    overwrite: bool,
    render: Callable[[pl.DataFrame], pl.DataFrame] = lambda rows: rows,
) -> KeyWritten | None:
    """Write (or, appending a run, add to) ``directory/name``, a line per row of ``render(frame)``; None when empty.

    ``render`` turns rows of ``frame`` into the rows written, KEY_CHUNK_ROWS at a time.

    A write that fails (disk full, I/O error) cuts the file back to its size before, so it
    holds whole lines only and none of this run's (an overwrite's file is removed), and
    raises :class:`WriteFailed` naming it. Overwriting with no rows removes the old file:
    its lines belong to the events just replaced.
    """
    path = directory / name
    if not frame.height:
        if overwrite:
            path.unlink(missing_ok=True)
        return None
    try:
        before = 0 if overwrite else path.stat().st_size
    except FileNotFoundError:
        before = 0
    try:
        with path.open("wb" if overwrite else "ab") as handle:
            for rows in frame.iter_slices(KEY_CHUNK_ROWS):
                render(rows).write_ndjson(handle)
    except OSError as exc:
        raise WriteFailed(path, _os_error(exc), _take_back(path, before, overwrite)) from None
    except BaseException:
        # Rendering a later chunk can fail too (out of memory, a stop): no lines of this run are left.
        _take_back(path, before, overwrite)
        raise
    return KeyWritten(path, frame.height, before)


def key_entry(name: str, written: KeyWritten | None, failure: str | None = None) -> dict[str, Any]:
    """What a run added to answer-key file ``name``, for its manifest entry: its lines, and why none if it failed."""
    entry: dict[str, Any] = {"file": name, "lines": written.lines if written is not None else 0}
    if failure is not None:
        entry["failed"] = failure
    return entry


def file_sizes(directory: Path, names: tuple[str, ...]) -> dict[str, int]:
    """The sizes of answer-key files before a run (0 for none), to cut them back to after a kill."""
    sizes = {}
    for name in names:
        try:
            sizes[name] = (directory / name).stat().st_size
        except FileNotFoundError:
            sizes[name] = 0
    return sizes


def cut_back(directory: Path, sizes: dict[str, int]) -> None:
    """Cut each file of ``sizes`` back to its size, where it is longer (a killed run's lines, or a partial one)."""
    for name, size in sizes.items():
        path = directory / name
        with contextlib.suppress(FileNotFoundError):
            if path.stat().st_size > size:
                os.truncate(path, size)
