"""Objects from a worker process to its parent through a pipe, their large buffers sent without copies.

A worker's slice of encoded events is about 50 MB. ``multiprocessing.Queue`` pickles it
into one bytes object and the parent reassembles it through an in-memory file: three
copies and a second of CPU per million events. Here the object is pickled with protocol
5, so its buffers (the encoded lines, NumPy arrays) stay out of band: they are written to
the pipe straight from where they are, and read into one new buffer each. A worker that
dies mid-message closes its end, so the parent sees the end of the pipe and says so,
instead of waiting for ever.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import pickle
import queue
import struct
import threading
from typing import Any

F_SETPIPE_SZ = 1031  # Linux: a larger pipe buffer means fewer system calls per slice
PIPE_BYTES = 1 << 20  # the default limit for users (/proc/sys/fs/pipe-max-size)
_HEAD = struct.Struct("<QI")  # length of the pickle, number of out-of-band buffers
_SIZE = struct.Struct("<Q")


class PipeClosed(Exception):
    """The other end of the pipe closed before a whole message came."""


def widen(fd: int) -> None:
    """Ask for a larger buffer on the pipe ``fd`` (best effort: the default works, only slower)."""
    with contextlib.suppress(OSError):
        fcntl.fcntl(fd, F_SETPIPE_SZ, PIPE_BYTES)


def send(fd: int, message: Any) -> None:
    """Write one message to the pipe ``fd``: a short head, the pickle, then each buffer as it is."""
    buffers: list[pickle.PickleBuffer] = []
    data = pickle.dumps(message, protocol=5, buffer_callback=buffers.append)
    raws = [b.raw() for b in buffers]
    head = _HEAD.pack(len(data), len(raws)) + b"".join(_SIZE.pack(r.nbytes) for r in raws)
    for piece in (memoryview(head), memoryview(data), *raws):
        while piece.nbytes:
            piece = piece[os.write(fd, piece) :]


def receive(fd: int) -> Any:
    """Read one message from the pipe ``fd``; PipeClosed if the writer is gone first."""
    size, count = _HEAD.unpack(_read(fd, _HEAD.size))
    sizes = [_SIZE.unpack(_read(fd, _SIZE.size))[0] for _ in range(count)]
    data = _read(fd, size)
    return pickle.loads(data, buffers=[_read(fd, n) for n in sizes])


def _read(fd: int, size: int) -> bytearray:
    buffer = bytearray(size)
    view = memoryview(buffer)
    while view.nbytes:
        got = os.readv(fd, [view])
        if got == 0:
            raise PipeClosed
        view = view[got:]
    return buffer


class Sender:
    """Sends messages on a thread of their own, at most ``ahead`` waiting, so the caller goes on working."""

    def __init__(self, fd: int, ahead: int) -> None:
        """Send to the pipe ``fd``; ``put`` blocks while ``ahead`` messages wait."""
        self.fd = fd
        self.waiting: queue.Queue[Any] = queue.Queue(ahead)
        self.failed: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="sender", daemon=True)
        self.thread.start()

    def put(self, message: Any) -> None:
        """Queue ``message`` to be sent; raise what made an earlier send fail."""
        if self.failed is not None:
            raise self.failed
        self.waiting.put(message)

    def close(self) -> None:
        """Send everything queued, then return."""
        self.waiting.put(_DONE)
        self.thread.join()
        if self.failed is not None:
            raise self.failed

    def _run(self) -> None:
        while (message := self.waiting.get()) is not _DONE:
            if self.failed is None:
                try:
                    send(self.fd, message)
                except BaseException as exc:  # the worker raises it on its next put
                    self.failed = exc


_DONE = object()
