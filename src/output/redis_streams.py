"""The Redis Streams sink: one stream per event type, MULTI/EXEC chunks from a sender thread."""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from itertools import islice, pairwise
from typing import Any

import numpy as np

from ..models import EVENT_TYPES, stream_names
from ..simulation.faults import FAULT_CODES
from ..simulation.tables import time_order
from .batch import EncodedBatch, Lines
from .encoding import XADD_EVENT_ID


class RedisUnavailable(ConnectionError):
    """Redis cannot take the events; the message says where and why, never with a password.

    ``setting`` names what the user should look at (REDIS_HOST, REDIS_PASSWORD, STREAM_PREFIX...).
    """

    def __init__(self, message: str, setting: str = "REDIS_HOST") -> None:
        super().__init__(message)
        self.setting = setting


@dataclass
class _Chunk:
    """Events for one transaction: per stream, their XADD commands back to back and where to find them.

    ``anchors`` holds, per stream, the event_id of the run's last event there up to the end
    of the chunk that is not a retry (an injected duplicate shares its original's id), and
    how many events follow it up to the chunk's end; None where the run has none yet.
    """

    counts: list[int]
    args: list[memoryview]
    anchors: list[tuple[bytes, int] | None]

    def __len__(self) -> int:
        return sum(self.counts)


class RedisPublisher:
    """Writes events into one Redis stream per event type, from a sender thread, losing and doubling none.

    Entries carry the event's JSON line in ``data`` plus ``event_id`` and ``event_type``.
    Events are sent in chunks, each one MULTI/EXEC transaction of XADDs (and one approximate
    trim per stream), so a chunk is in Redis whole or not at all. When Redis goes away the
    sender retries with exponential backoff (capped), while ``write`` keeps accepting
    batches into a bounded buffer; when the buffer is full ``write`` waits, which pauses
    generation. After reconnecting, the sender reads the last entry of each stream to learn
    whether the chunks in flight were applied, so none is sent twice.
    """

    def __init__(
        self,
        client: Any,
        where: str,
        prefix: str = "searchflow:events",
        maxlen: int = 100_000,
        buffer_events: int = 200_000,
        chunk_events: int = 5_000,
        give_up_after: float = 300.0,
    ) -> None:
        """Check the connection (RedisUnavailable if it fails) and start the sender thread."""
        import redis

        self._errors = (redis.ConnectionError, redis.TimeoutError, redis.BusyLoadingError, OSError)
        self.client = client
        self.where = where
        self.stream_names = stream_names(prefix)  # the encoder writes XADD commands for these
        self.streams = list(self.stream_names.values())
        self.buffer_events = buffer_events
        self.chunk_events = chunk_events
        self._anchors: list[tuple[bytes, int] | None] = [None] * len(EVENT_TYPES)  # see _Chunk
        self.give_up_after = give_up_after
        self.stopping: Callable[[], bool] = lambda: False  # set by the caller: a stop was asked for
        try:
            client.ping()
            kinds = {stream: client.type(stream) for stream in self.streams}
        except redis.AuthenticationError as exc:
            raise RedisUnavailable(
                f"Redis at {where} refused the password ({_reason(exc)})", "REDIS_PASSWORD"
            ) from None
        except self._errors as exc:
            raise RedisUnavailable(f"cannot connect to Redis at {where} ({_reason(exc)})") from None
        except redis.ResponseError as exc:
            raise RedisUnavailable(f"Redis at {where} answered: {_reason(exc)}") from None
        for stream, kind in kinds.items():
            if _kind(kind) not in ("none", "stream"):
                raise RedisUnavailable(_not_a_stream(stream, kind), "STREAM_PREFIX")
        # One approximate trim per stream that a chunk adds to, at the end of its transaction.
        self._trims = [
            _command(b"XTRIM", stream.encode(), b"MAXLEN", b"~", str(maxlen).encode()) if maxlen else None
            for stream in self.streams
        ]
        self.written = dict.fromkeys(EVENT_TYPES, 0)
        self.reconnects = 0
        # The sender keeps one connection of its own; count each time it is made again after a loss.
        self._connection = client.connection_pool.get_connection()
        self._connection.register_connect_callback(self._connected)
        self.retrying = False
        self.failure: str | None = None
        self._queue: deque[_Chunk] = deque()
        self._queued = 0
        self._closing = False
        self._lock = threading.Condition()
        self._thread = threading.Thread(target=self._send_loop, name="redis-sender", daemon=True)
        self._thread.start()

    @property
    def buffered(self) -> int:
        """Events accepted but not yet confirmed by Redis."""
        return self._queued

    def write(self, batch: EncodedBatch) -> None:
        """Queue a batch (in time order, in chunks); wait while the buffer is full."""
        for chunk in _chunks(batch, self.chunk_events, self._anchors):
            with self._lock:
                while self._queued >= self.buffer_events and self.failure is None:
                    self._lock.wait(0.1)
                self._raise_failure()
                self._queue.append(chunk)
                self._queued += len(chunk)
                self._lock.notify_all()

    def push(self) -> None:
        """Nothing to do: the sender thread sends as soon as events are queued."""

    def flush(self) -> None:
        """Wait until Redis has every queued event (or the publisher gave up)."""
        with self._lock:
            while self._queue and self.failure is None:
                self._lock.wait(0.1)
            self._raise_failure()

    def close(self) -> None:
        """Deliver what is queued, then stop the sender."""
        try:
            self.flush()
        finally:
            with self._lock:
                self._closing = True
                self._lock.notify_all()
            self._thread.join()

    def _connected(self, connection: Any) -> None:
        self.reconnects += 1

    def _raise_failure(self) -> None:
        if self.failure is not None:
            raise RedisUnavailable(self.failure)

    def _send_loop(self) -> None:
        try:
            self._send_chunks()
        except Exception as exc:  # a bug must not leave the run waiting for a thread that is gone
            self._fail(f"the Redis sender stopped: {exc!r}")
            raise

    def _send_chunks(self) -> None:
        """Keep up to IN_FLIGHT chunks sent ahead of their replies, so Redis never waits for the next one."""
        import redis

        delay, down_since = 0.05, 0.0
        sent = 0  # chunks at the head of the queue that were sent and await their reply
        lost = False  # the connection broke: replies to the chunks sent will never come
        probing = False  # just reconnected: one chunk alone, so a refusal (LOADING) cannot let the next one past it
        while True:
            with self._lock:
                while not self._queue and not self._closing:
                    self._lock.wait(0.5)
                if not self._queue:
                    return
                ahead = list(islice(self._queue, min(1 if probing else IN_FLIGHT, len(self._queue))))
            try:
                if lost:
                    # The chunks sent without a reply may be in Redis or not: look before sending again.
                    self._confirm(self._applied_prefix(ahead[:sent]))
                    sent, lost, probing = 0, False, True
                    continue
                while sent < len(ahead):
                    sent += 1  # counted before sending: a failure halfway leaves it in doubt too
                    self._send(ahead[sent - 1])
                applied, error = self._read_transaction(ahead[0])
                sent -= 1
                self._confirm(1, applied)
                if error is not None:
                    # Redis refused (out of memory, a read-only replica, a stream replaced by another kind
                    # of key): retrying would fail the same way. Count what the chunks in flight put in, stop.
                    for chunk in ahead[1 : 1 + sent]:
                        self._confirm(1, self._read_transaction(chunk)[0])
                    self._connection.disconnect()
                    self._fail(f"Redis at {self.where} answered: {error}")
                    return
                self.retrying, delay, probing = False, 0.05, False
            except self._errors as exc:
                self._connection.disconnect()
                lost = True
                now = time.monotonic()
                if not self.retrying:
                    self.retrying, down_since = True, now
                # Asked to stop during an outage: wait a short grace, not the whole retry time.
                limit = min(self.give_up_after, STOP_GRACE) if self.stopping() else self.give_up_after
                if now - down_since > limit:
                    self._fail(f"Redis at {self.where} unreachable for {now - down_since:.0f} s ({_reason(exc)})")
                    return
                time.sleep(delay)
                delay = min(delay * 2, MAX_BACKOFF)
                continue
            except redis.ResponseError as exc:  # from reading the streams' last entries
                self._connection.disconnect()
                self._fail(f"Redis at {self.where} answered: {_reason(exc)}")
                return

    def _fail(self, reason: str) -> None:
        with self._lock:
            self.failure = f"{reason}; {self._queued:,} events were not delivered"
            self._lock.notify_all()

    def _confirm(self, chunks: int, applied: list[int] | None = None) -> None:
        """The first ``chunks`` queued chunks are in Redis: count them and make room in the buffer.

        With ``applied``, only that many events per stream of the last of them went in; the rest
        stay counted in the buffer, as not delivered.
        """
        with self._lock:
            for _ in range(chunks):
                chunk = self._queue.popleft()
                counts = chunk.counts if applied is None else applied
                self._queued -= sum(counts)
                for event_type, count in zip(EVENT_TYPES, counts, strict=True):
                    self.written[event_type] += count
            self._lock.notify_all()

    def _send(self, chunk: _Chunk) -> None:
        """Send the chunk's transaction without waiting for replies; the XADDs go out from the encoder's buffers."""
        self._connection.send_packed_command(
            [_MULTI, *chunk.args, *self._chunk_trims(chunk), _EXEC], check_health=False
        )

    def _chunk_trims(self, chunk: _Chunk) -> list[bytes]:
        """The trims a chunk's transaction ends with: one per stream it adds to, unless streams are unbounded."""
        return [trim for trim, count in zip(self._trims, chunk.counts, strict=True) if trim and count]

    def _read_transaction(self, chunk: _Chunk) -> tuple[list[int], str | None]:
        """Read every reply to one chunk's transaction: the events applied per stream, and Redis' first refusal.

        A command refused as it is queued (out of memory, read-only) makes Redis discard the whole
        transaction; one that fails as it runs (a key of another kind) leaves the others applied.
        """
        import redis

        error: str | None = None
        for _ in range(1 + len(chunk) + len(self._chunk_trims(chunk))):  # MULTI's OK, then QUEUED for each
            try:
                self._connection.read_response()
            except redis.ResponseError as exc:
                error = error or _reason(exc)
        try:
            results = self._connection.read_response()
        except redis.ResponseError as exc:  # EXECABORT: nothing was applied
            return [0] * len(chunk.counts), error or _reason(exc)
        applied, first = [], 0
        for stream, count in zip(self.streams, chunk.counts, strict=True):
            failed = [r for r in results[first : first + count] if isinstance(r, Exception)]
            applied.append(count - len(failed))
            if failed and error is None:
                error = self._explain(stream, failed[0])
            first += count
        trim_failures = [r for r in results[first:] if isinstance(r, Exception)]
        if trim_failures and error is None:
            error = _reason(trim_failures[0])
        return applied, error

    def _explain(self, stream: str, failure: Exception) -> str:
        """Why a stream refused its events, as one line, naming the key if it is now of another kind."""
        if not str(failure).startswith("WRONGTYPE"):
            return _reason(failure)
        try:
            kind = self.client.type(stream)
        except Exception:  # the message is best effort: Redis may have gone too
            return f"{stream}: {_reason(failure)}"
        return _not_a_stream(stream, kind)

    def _applied_prefix(self, chunks: list[_Chunk]) -> int:
        """How many of ``chunks`` (sent in order, replies lost) are in Redis.

        Transactions are applied whole and in order, so the newest one whose last event is the last
        entry of one of its streams is in, with every chunk before it; the rest are not.
        """
        for position in range(len(chunks) - 1, -1, -1):
            for stream, anchor in zip(self.streams, chunks[position].anchors, strict=True):
                if anchor is not None:
                    # An event_id that is nowhere else, with the chunk's events after it on top of the stream.
                    event_id, after = anchor
                    top = self.client.xrevrange(stream, count=after + 1)
                    if len(top) == after + 1 and top[after][1].get(b"event_id") == event_id:
                        return position + 1
                    break
        return 0


IN_FLIGHT = 2  # chunks sent before the reply to the first comes back
STOP_GRACE = 10.0  # seconds a stopping run keeps trying a Redis that is away
MAX_BACKOFF = 5.0  # seconds between reconnection attempts at most


def _reason(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0].rstrip(".")


def _command(*args: bytes) -> bytes:
    """One Redis command in the protocol: an array of bulk strings."""
    return b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%s\r\n" % (len(arg), arg) for arg in args)


_MULTI, _EXEC = _command(b"MULTI"), _command(b"EXEC")


def _kind(kind: bytes | str) -> str:
    """The type of a key as TYPE answers it, as text."""
    return kind.decode() if isinstance(kind, bytes) else str(kind)


def _not_a_stream(stream: str, kind: bytes | str) -> str:
    return f"key {stream} holds a {_kind(kind)}, not a stream"


def _chunks(batch: EncodedBatch, size: int, anchors: list[tuple[bytes, int] | None]) -> Iterator[_Chunk]:
    """Split a batch into chunks of about ``size`` events in time order, each a run of XADDs per type.

    ``anchors`` are the run's anchors per stream so far (see ``_Chunk``), updated here.
    """
    order, _ = time_order([batch.stamps[t] for t in EVENT_TYPES])
    # Lines of each type used up to every position of the global order.
    used = np.stack([np.cumsum(order == k) for k in range(len(EVENT_TYPES))], axis=1)
    bounds = [np.zeros(len(EVENT_TYPES), dtype=np.int64)]
    bounds += [used[i - 1] for i in range(size, len(order), size)] + [used[-1]] if len(order) else []
    retries = _retries(batch)
    for low, high in pairwise(bounds):
        counts: list[int] = []
        args: list[memoryview] = []
        for k, event_type in enumerate(EVENT_TYPES):
            first, end = int(low[k]), int(high[k])
            counts.append(end - first)
            if end > first:
                args.append(batch.xadds[event_type].span(first, end))
                anchors[k] = _anchor(batch.xadds[event_type], retries[event_type], first, end, anchors[k])
        yield _Chunk(counts, args, list(anchors))


def _retries(batch: EncodedBatch) -> dict[str, np.ndarray]:
    """Per type, whether each row is an injected retry (the same event_id as an event before it)."""
    flags = {t: np.zeros(batch.counts[t], dtype=bool) for t in EVENT_TYPES}
    if batch.faults is not None:
        for event_type, faults in batch.faults.items():
            flags[event_type][faults.rows[faults.kinds == FAULT_CODES["duplicate"]]] = True
    return flags


def _anchor(
    commands: Lines, retries: np.ndarray, first: int, end: int, before: tuple[bytes, int] | None
) -> tuple[bytes, int] | None:
    """The anchor of a stream after rows [first, end): its last row that is not a retry, else ``before`` moved on.

    A retry always follows its original, so an event_id found ``after`` entries below the top
    of the stream is there only if these rows are.
    """
    row = end - 1
    while row >= first and retries[row]:
        row -= 1
    if row < first:
        return None if before is None else (before[0], before[1] + end - first)
    command = commands.span(row, row + 1).tobytes()
    start = command.rindex(XADD_EVENT_ID) + len(XADD_EVENT_ID)
    return command[start : start + 36], end - 1 - row


def redis_client(url: str | None, host: str, port: int, password: str | None, db: int) -> tuple[Any, str]:
    """A redis-py client for the settings, and a description of where it points that shows no password."""
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    # No retries inside redis-py: a command resent after a lost reply could add a chunk twice.
    # The publisher retries itself, after checking what Redis already has.
    options: dict[str, Any] = {
        "socket_timeout": 10,
        "socket_connect_timeout": 5,
        "client_name": "searchflow-generator",
        "retry": Retry(NoBackoff(), 0),
    }
    if url:
        client = redis.Redis.from_url(url, **options)
        kwargs = client.connection_pool.connection_kwargs
        # Parsed parts only, never the password: a socket path, or host and port.
        where = str(kwargs["path"]) if "path" in kwargs else f"{kwargs.get('host', host)}:{kwargs.get('port', port)}"
    else:
        client = redis.Redis(host=host, port=port, password=password, db=db, **options)
        where = f"{host}:{port}"
    return client, where
