"""Sinks for JSON lines: the three JSONL files of a directory, and one stream such as standard output.

The files of a directory have one writer at a time (:class:`FolderLock`). Each batch is
written to the three files a slice of event time at a time, without a user-space buffer,
so whatever stops a run, even SIGKILL, the files end within one batch's span of event
time of each other. A write that fails (disk full, I/O error) cuts every file back to the
whole lines of the batches before, and raises :class:`WriteFailed`.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import math
import os
import shutil
import stat
from pathlib import Path
from typing import BinaryIO, NoReturn

import numpy as np

from ..config import SettingsError
from ..models import EVENT_TYPES, file_name
from .batch import EncodedBatch

LOCK_NAME = ".searchflow.lock"  # in the output folder while a run writes there; holds the writer's PID
STAGED_SUFFIX = ".new"  # an --overwrite batch run writes <file>.new and renames it over <file> at the end
PIECE_BYTES = 4 << 20  # a batch is written in slices of event time of about this many bytes over the three files
IMPRESSIONS = "impressions"  # the key of impressions.jsonl among a publisher's files
IMPRESSIONS_FILE = "impressions.jsonl"  # a line per search: the result_ids its page showed, in order
MAX_PARTIAL_LINE = 1 << 20  # a trailing piece without a line end longer than this is not a cut-off event


class FolderBusy(SettingsError):
    """Another run holds the output folder's lock; one line for the user."""


class FolderUnusable(SettingsError):
    """The output folder or one of its files cannot be used as it is; one line for the user."""


class WriteFailed(Exception):
    """Writing a file failed during a run (disk full, I/O error); the message is one line naming the file."""

    def __init__(self, path: Path, error: OSError, note: str = "") -> None:
        """Name ``path`` and the operating system's ``error``; ``note`` says what was done about it."""
        reason = error.strerror or str(error)
        code = errno.errorcode.get(error.errno or 0, "")
        super().__init__(f"cannot write {path}: {reason}{f' ({code})' if code else ''}{note}")
        self.path = path
        self.error = error


def _error_text(error: OSError) -> str:
    return (error.strerror or str(error)).lower()


class FolderLock:
    """An exclusive advisory lock (``flock``) on an output folder, held by one run at a time.

    The lock is the file ``.searchflow.lock`` in the folder, which holds the writer's PID
    while it runs and is removed when the lock is released. A second writer is refused at
    once with :class:`FolderBusy`, before it touches anything else in the folder.
    """

    def __init__(self, directory: Path, name: str = "OUTPUT_DIR") -> None:
        """Take the lock on ``directory`` (created if need be); ``name`` is the setting named in errors."""
        self.directory = directory
        self.path = directory / LOCK_NAME
        self._fd: int | None = None
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise FolderUnusable(f"{name}={directory}: cannot create it ({_error_text(exc)})") from None
        while True:
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
            except OSError as exc:
                raise FolderUnusable(f"{name}={directory}: cannot create {LOCK_NAME} ({_error_text(exc)})") from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "unknown"
                os.close(fd)
                raise FolderBusy(
                    f"{name}={directory}: another run (PID {holder}) is writing to this folder; "
                    "wait for it to end or choose another folder"
                ) from None
            # A releasing writer removes the file: if ours was removed meanwhile, lock the new one.
            try:
                same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        with contextlib.suppress(OSError):  # a full disk: the lock holds, only the PID is not written down
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

    @property
    def held(self) -> bool:
        """True until released."""
        return self._fd is not None

    def release(self) -> None:
        """Remove the lock file and release the lock (once; later calls do nothing)."""
        if self._fd is None:
            return
        with contextlib.suppress(OSError):
            self.path.unlink()
        os.close(self._fd)
        self._fd = None

    def __enter__(self) -> FolderLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def repair_partial_line(path: Path, most: int | None = None) -> int:
    """Cut a trailing partial line (left by a killed run) off ``path``; return the bytes removed.

    With ``most``, a trailing piece longer than that is left alone and :class:`ValueError` raised:
    it is not a cut-off line of ours, and cutting it could destroy someone's data.
    """
    with path.open("r+b") as handle:
        size = handle.seek(0, os.SEEK_END)
        end = size
        block = 1 << 16
        while end > 0:
            start = max(0, end - block)
            handle.seek(start)
            chunk = handle.read(end - start)
            newline = chunk.rfind(b"\n")
            if newline >= 0:
                keep = start + newline + 1
                break
            end = start
            if most is not None and size - end > most:
                raise ValueError(f"ends with over {most:,} bytes without a line end")
        else:
            keep = 0
        if most is not None and size - keep > most:
            raise ValueError(f"ends with {size - keep:,} bytes without a line end")
        if keep < size:
            handle.truncate(keep)
        return size - keep


def not_a_regular_file(path: Path) -> str | None:
    """What ``path`` is if it exists and is not a regular file (``"a FIFO"``, ``"a directory"``...), else None.

    Symbolic links are followed: a link to a device is refused like the device.
    """
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return None  # missing (it will be created), or a problem the write itself will report
    if stat.S_ISREG(mode):
        return None
    kinds = {
        stat.S_ISDIR: "a directory",
        stat.S_ISFIFO: "a FIFO",
        stat.S_ISCHR: "a character device",
        stat.S_ISBLK: "a block device",
        stat.S_ISSOCK: "a socket",
    }
    return next((kind for test, kind in kinds.items() if test(mode)), "not a regular file")


class NotARegularFile(OSError):
    """The target of an atomic write exists and is not a regular file: renaming over it would replace it."""

    def __init__(self, path: Path, kind: str) -> None:
        """``kind`` says what ``path`` is, as :func:`not_a_regular_file` returns it."""
        super().__init__(errno.EINVAL, f"it is {kind}, not a regular file", str(path))


def remove_all(paths: list[Path]) -> None:
    """Remove files and whole folders; those already gone are no error."""
    for path in paths:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()


def _write_temporary(path: Path, data: bytes) -> Path:
    """Write ``data`` to a new temporary file beside ``path`` (refusing a ``path`` that is not a regular file)."""
    kind = not_a_regular_file(path)
    if kind is not None:
        raise NotARegularFile(path, kind)
    temporary = path.with_name(f".{path.name}.tmp")
    # A leftover of a killed writer goes first; whatever is there (even a FIFO) is never opened.
    with contextlib.suppress(FileNotFoundError):
        temporary.unlink()
    try:
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o666)
        with open(fd, "wb") as handle:
            handle.write(data)
    except BaseException:
        with contextlib.suppress(OSError):
            temporary.unlink()
        raise
    return temporary


def write_atomically(path: Path, data: bytes) -> None:
    """Write ``path`` through a temporary file renamed over it: it is the old file or the new one, never part.

    On failure the temporary file is removed and the error raised; ``path`` is untouched. A
    ``path`` that exists and is not a regular file (``/dev/null``, a FIFO, a directory) is
    refused with :class:`NotARegularFile`: the rename would put a file in its place.
    """
    temporary = _write_temporary(path, data)
    try:
        temporary.replace(path)
    except BaseException:
        with contextlib.suppress(OSError):
            temporary.unlink()
        raise


def write_all_atomically(files: list[tuple[Path, bytes]]) -> None:
    """Write several files each through a temporary file, then rename them all over their paths.

    All are written before any is replaced, so a failed write (a full disk) leaves every
    path as it was and no temporary file; it raises :class:`WriteFailed` naming the file
    that failed. Each path is checked as :func:`write_atomically` does.
    """
    temporaries: list[tuple[Path, Path]] = []
    current, replaced = Path(), 0
    try:
        for path, data in files:
            current = path
            temporaries.append((path, _write_temporary(path, data)))
        for path, temporary in temporaries:
            current = path
            temporary.replace(path)
            replaced += 1
    except BaseException as exc:
        for _, temporary in temporaries[replaced:]:
            with contextlib.suppress(OSError):
                temporary.unlink()
        if not isinstance(exc, OSError):
            raise
        done = [p.name for p, _ in temporaries[:replaced]]
        note = f"; {', '.join(done)} written, the rest left as they were" if done else "; no file was replaced"
        raise WriteFailed(current, exc, note) from None


def _pieces(batch: EncodedBatch) -> list[dict[str, int]]:
    """Line indices per type at which to cut a batch into slices of event time of about PIECE_BYTES."""
    total = sum(len(batch.lines[t]) for t in EVENT_TYPES)
    count = max(1, min(64, math.ceil(total / PIECE_BYTES)))
    ends: list[dict[str, int]] = [{t: batch.counts[t] for t in EVENT_TYPES}]
    stamps = [batch.stamps[t] for t in EVENT_TYPES if batch.counts[t]]
    if count == 1 or not stamps:
        return ends
    first = min(int(s[0]) for s in stamps)
    last = max(int(s[-1]) for s in stamps)
    cuts = np.linspace(first, last, count + 1)[1:-1]
    per_type = {}
    for t in EVENT_TYPES:
        at = np.searchsorted(batch.stamps[t], cuts, side="right") if batch.counts[t] else np.zeros(len(cuts), int)
        per_type[t] = np.maximum.accumulate(at).tolist()  # never backwards, even if a type were out of order
    return [{t: int(per_type[t][k]) for t in EVENT_TYPES} for k in range(len(cuts))] + ends


def _check_impressions_in_step(directory: Path, impressions: bool, name: str) -> None:
    """Refuse an appending run that would put impressions.jsonl out of step with search_events.jsonl."""
    searches, pages = directory / file_name("search"), directory / IMPRESSIONS_FILE
    if impressions and not pages.exists() and searches.exists() and searches.stat().st_size:
        raise FolderUnusable(
            f"IMPRESSIONS=true: {name}={directory} holds searches without {IMPRESSIONS_FILE}, so its lines would "
            "not match theirs; use --overwrite or another folder"
        )
    if not impressions and pages.exists():
        raise FolderUnusable(
            f"IMPRESSIONS=false: {name}={directory} has {IMPRESSIONS_FILE}, a line per search; add --impressions "
            "to keep it in step, or use --overwrite or another folder"
        )


class FilePublisher:
    """Writes JSON lines to ``<type>_events.jsonl`` files (and ``impressions.jsonl``) in a directory, one writer each.

    Appending (the default), a partial last line left by a killed run is cut off first, under
    the folder's lock. With ``overwrite``, the old files stay as they are until this run has
    something to put in their place: with ``replace_at_end`` (batch runs) the new lines go to
    ``<file>.new`` and are renamed over the old files by :meth:`close`; without it (live runs)
    the files are emptied when the first batch is written. :meth:`discard` ends a run that
    failed: an overwrite's new files are dropped, appended whole lines stay.
    """

    def __init__(
        self,
        directory: Path,
        overwrite: bool = False,
        *,
        lock: FolderLock | None = None,
        replace_at_end: bool = True,
        name: str = "OUTPUT_DIR",
        impressions: bool = False,
        stale: list[Path] | None = None,
    ) -> None:
        """Take the folder's lock (unless ``lock`` is given, held by the caller) and open the three files.

        With ``impressions``, also ``impressions.jsonl``: each batch's impression lines, written
        and cut back with its search lines. ``stale`` are files or folders an overwrite removes
        with the old files (an earlier run's Parquet datasets, when this one writes none).
        """
        self._own_lock = lock is None
        self.directory = directory
        self.overwrite = overwrite
        self.lock = lock if lock is not None else FolderLock(directory, name)
        self.paths = {event_type: directory / file_name(event_type) for event_type in EVENT_TYPES}
        impressions_path = directory / IMPRESSIONS_FILE
        if impressions:
            self.paths[IMPRESSIONS] = impressions_path
        # An overwrite without impressions leaves none of the old run's: they would join its searches' ids.
        self._stale = [impressions_path] if overwrite and not impressions else []
        self._stale += stale or []
        self.repaired: dict[str, int] = {}
        self.written = dict.fromkeys(EVENT_TYPES, 0)
        self.staged = overwrite and replace_at_end
        self._truncate_first = overwrite and not replace_at_end
        self._targets = {t: p.with_name(p.name + STAGED_SUFFIX) if self.staged else p for t, p in self.paths.items()}
        self._fds: dict[str, int] = {}
        self._sizes: dict[str, int] = {}
        self.failed = False
        self.dropped = False  # an overwrite's new files were dropped: the folder is as the run found it
        try:
            for path in [*self.paths.values(), impressions_path]:
                # A staged file left by a killed --overwrite run is never wanted: the run it belongs to is gone.
                with contextlib.suppress(FileNotFoundError):
                    path.with_name(path.name + STAGED_SUFFIX).unlink()
            if not overwrite:
                _check_impressions_in_step(directory, impressions, name)
            for event_type, path in self.paths.items():
                if not overwrite and path.exists():
                    try:
                        removed = repair_partial_line(path, most=MAX_PARTIAL_LINE)
                    except ValueError as exc:
                        raise FolderUnusable(
                            f"{name}={directory}: {path.name} {exc}, so it is not a file of this generator's "
                            "lines; move it away or use --overwrite"
                        ) from None
                    if removed:
                        self.repaired[event_type] = removed
            for event_type, target in self._targets.items():
                flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC
                if self.staged:
                    flags |= os.O_TRUNC
                fd = os.open(target, flags, 0o666)
                self._fds[event_type] = fd
                self._sizes[event_type] = os.fstat(fd).st_size
        except OSError as exc:
            self._close_fds()
            self._drop_staged()
            if self._own_lock:
                self.lock.release()
            where = Path(exc.filename) if exc.filename else directory
            raise FolderUnusable(f"{name}={directory}: cannot open {where.name} ({_error_text(exc)})") from None
        except BaseException:
            self._close_fds()
            self._drop_staged()
            if self._own_lock:
                self.lock.release()
            raise
        self._initial = dict(self._sizes)

    @property
    def sizes_at_start(self) -> dict[str, int]:
        """Each file's size in bytes when this run opened it (after the repair)."""
        return dict(self._initial)

    def write(self, batch: EncodedBatch) -> None:
        """Write the batch to the three files, a slice of event time at a time; all of it, or none of it.

        Raises :class:`WriteFailed` if the system refuses a write; the files are then cut back to
        their ends before this batch, so they hold whole lines only and nothing of it.
        """
        if self._truncate_first:
            for event_type, fd in self._fds.items():
                try:
                    os.ftruncate(fd, 0)
                except OSError as exc:
                    self.failed = True
                    raise WriteFailed(self._targets[event_type], exc) from None
                self._sizes[event_type] = self._initial[event_type] = 0
            self._truncate_first = False
            self._remove_stale()
        before = dict(self._sizes)
        start = dict.fromkeys(EVENT_TYPES, 0)
        for end in _pieces(batch):
            for event_type in EVENT_TYPES:
                first, last = start[event_type], end[event_type]
                if last > first:
                    offsets = batch.offsets[event_type]
                    data = batch.lines[event_type][int(offsets[first]) : int(offsets[last])]
                    if event_type == "search" and IMPRESSIONS in self._fds:
                        # Before the searches: a run killed in between leaves impressions ahead, never behind.
                        if batch.impressions is None:
                            raise ValueError("impressions.jsonl is open but the batch carries no impressions")
                        self._write_all(IMPRESSIONS, batch.impressions.span(first, last), before)
                    self._write_all(event_type, data, before)
                start[event_type] = last
        for event_type in EVENT_TYPES:
            self.written[event_type] += batch.counts[event_type]

    def _write_all(self, event_type: str, data: memoryview, before: dict[str, int]) -> None:
        fd = self._fds[event_type]
        view = memoryview(data).cast("B")
        while len(view):
            try:
                done = os.write(fd, view)
            except OSError as exc:
                self._fail(before, exc, event_type)
            self._sizes[event_type] += done
            view = view[done:]

    def _fail(self, before: dict[str, int], error: OSError, event_type: str) -> NoReturn:
        """Cut every file back to ``before`` and raise WriteFailed naming the file that failed."""
        self.failed = True
        note = "; the old files are left as they were" if self.staged else "; the files hold whole lines only"
        for t, fd in self._fds.items():
            try:
                # Never longer than it is: a file cut by someone else meanwhile must not grow NUL bytes.
                size = min(before[t], os.fstat(fd).st_size)
                os.ftruncate(fd, size)
                self._sizes[t] = size
            except OSError as exc:
                note = f"; could not cut {self._targets[t].name} back to whole lines ({_error_text(exc)})"
        raise WriteFailed(self._targets[event_type], error, note) from None

    def push(self) -> None:
        """Nothing to do: every write goes straight to the operating system, so readers see it."""

    def flush(self) -> None:
        """Nothing to do: lines are not buffered in the process."""

    def close(self) -> None:
        """Close the files; an overwrite's new files replace the old ones. Releases a lock of its own."""
        if not self._fds:
            return
        self._close_fds()
        try:
            if self.staged:
                for event_type, path in self.paths.items():
                    try:
                        self._targets[event_type].replace(path)
                    except OSError as exc:
                        raise WriteFailed(path, exc, "; the run's new files end in .new") from None
                self._remove_stale()
        finally:
            if self._own_lock:
                self.lock.release()

    def discard(self) -> None:
        """Close after a failed run: an overwrite's new files are dropped (the old ones stay), appended lines stay."""
        self._close_fds()
        self._drop_staged()
        self.dropped = self.staged
        if self._own_lock:
            self.lock.release()

    def undo(self) -> None:
        """Take this run's lines out of appended files again (after closing), so they are as the run found them."""
        if self.staged:
            return
        for event_type, path in self.paths.items():
            with contextlib.suppress(OSError):
                os.truncate(path, self._initial[event_type])

    def _remove_stale(self) -> None:
        remove_all(self._stale)
        self._stale = []

    def _close_fds(self) -> None:
        for fd in self._fds.values():
            with contextlib.suppress(OSError):
                os.close(fd)
        self._fds = {}

    def _drop_staged(self) -> None:
        if self.staged:
            for target in self._targets.values():
                with contextlib.suppress(OSError):
                    target.unlink()


class StreamPublisher:
    """Writes JSON lines of every type, interleaved in time order, to one binary stream (standard output)."""

    def __init__(self, stream: BinaryIO) -> None:
        """Write to ``stream``; the caller owns it."""
        self.stream = stream
        self.written = dict.fromkeys(EVENT_TYPES, 0)

    def write(self, batch: EncodedBatch) -> None:
        """Write the batch's lines in time order, all of them (a short write is retried, a closed pipe raises)."""
        data = memoryview(batch.interleaved())
        while len(data):
            written = self.stream.write(data)
            if not written:
                raise BrokenPipeError("standard output accepted nothing")
            data = data[written:]
        for event_type, count in batch.counts.items():
            self.written[event_type] += count

    def push(self) -> None:
        """Flush the stream, so a reader sees each slice of live traffic as it comes."""
        self.flush()

    def flush(self) -> None:
        """Flush the stream."""
        self.stream.flush()

    def close(self) -> None:
        """Flush; the stream stays open for its owner."""
        self.flush()
