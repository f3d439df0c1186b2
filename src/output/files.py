"""Sinks for JSON lines: the three JSONL files of a directory, and one stream such as standard output."""

from __future__ import annotations

import os
from pathlib import Path
from typing import BinaryIO

from ..models import EVENT_TYPES, file_name
from .batch import EncodedBatch


def repair_partial_line(path: Path) -> int:
    """Cut a trailing partial line (left by a killed run) off ``path``; return the bytes removed."""
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
        else:
            keep = 0
        if keep < size:
            handle.truncate(keep)
        return size - keep


class FilePublisher:
    """Appends JSON lines to ``<type>_events.jsonl`` files in a directory."""

    def __init__(self, directory: Path, overwrite: bool = False) -> None:
        """Open (and create) the three files; repair a partial last line before appending."""
        directory.mkdir(parents=True, exist_ok=True)
        self.paths = {event_type: directory / file_name(event_type) for event_type in EVENT_TYPES}
        self.repaired: dict[str, int] = {}
        self.written = dict.fromkeys(EVENT_TYPES, 0)
        self._files: dict[str, BinaryIO] = {}
        for event_type, path in self.paths.items():
            if not overwrite and path.exists():
                removed = repair_partial_line(path)
                if removed:
                    self.repaired[event_type] = removed
            # Large buffer: a batch is written in a few system calls, never a flush per event.
            self._files[event_type] = path.open("wb" if overwrite else "ab", buffering=1 << 20)

    def write(self, batch: EncodedBatch) -> None:
        """Append each type's lines to its file."""
        for event_type, data in batch.lines.items():
            if data:
                self._files[event_type].write(data)
                self.written[event_type] += batch.counts[event_type]

    def push(self) -> None:
        """Hand buffered lines to the operating system, so readers see them."""
        self.flush()

    def flush(self) -> None:
        """Hand buffered lines to the operating system."""
        for handle in self._files.values():
            handle.flush()

    def close(self) -> None:
        """Flush and close the files."""
        for handle in self._files.values():
            handle.close()


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
