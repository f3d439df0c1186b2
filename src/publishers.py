"""Output handlers: where encoded batches go (files, standard output, Redis).

Every publisher takes whole batches of JSON lines, one ``bytes`` per event type, and
has the same methods, so the run loop does not care where events go. The sinks live
in ``src.output``; this module is their one entry point.
"""

from __future__ import annotations

from typing import Protocol

from .output.batch import EncodedBatch
from .output.files import FilePublisher, StreamPublisher, repair_partial_line
from .output.redis_streams import RedisPublisher, RedisUnavailable, redis_client

__all__ = [
    "FilePublisher",
    "Publisher",
    "RedisPublisher",
    "RedisUnavailable",
    "StreamPublisher",
    "redis_client",
    "repair_partial_line",
]


class Publisher(Protocol):
    """Where a run's events go."""

    def write(self, batch: EncodedBatch) -> None:
        """Write one batch."""

    def push(self) -> None:
        """Let readers see what was written soon (called after every slice of live traffic)."""

    def flush(self) -> None:
        """Make everything written so far durable or visible; wait for it if need be."""

    def close(self) -> None:
        """Flush and release resources."""
