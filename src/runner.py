"""A whole run as a library call: generate, encode, pace and publish, then report counts.

``main`` wires flags, signals and progress to these functions; Python users can call
them directly, for example ``run_batch(EventGenerator(settings, seed=7), [FilePublisher(path)], ...)``.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import Any

import numpy as np

from .generator import EventGenerator
from .models import EVENT_TYPES
from .output.batch import EncodedBatch
from .output.encoding import Encoder
from .output.faults import FaultSidecar
from .output.parquet import ParquetPublisher
from .publishers import Publisher
from .simulation.tables import EventTables

PACE_STEP = 0.05  # seconds of events written at once when a rate is set: smooth, not a burst a second
ENCODE_THREADS = 2  # NumPy and polars release the GIL, so encoding overlaps generation
ENCODE_AHEAD = 3  # batches encoding at once: bounds memory


@dataclass
class RunResult:
    """What a run wrote."""

    seed: int
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(EVENT_TYPES, 0))
    elapsed: float = 0.0
    interrupted: bool = False

    @property
    def total(self) -> int:
        """Events written over all types."""
        return sum(self.counts.values())


def paced(batches: Iterator[EventTables], rate: float | None) -> Iterator[EventTables]:
    """Pass batches through as they come, or, with a rate, in slices written at ``rate`` events/s of wall time."""
    if rate is None:
        yield from batches
        return
    step = max(1, int(rate * PACE_STEP))
    started = time.monotonic()
    sent = 0
    for batch in batches:
        rest = batch
        while len(rest):
            part, rest = rest.first(step)
            due = started + sent / rate
            delay = due - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            yield part
            sent += len(part)


def encoder_for(generator: EventGenerator, publishers: Sequence[Publisher]) -> Encoder:
    """The encoder the publishers need: JSON lines, XADD commands for Redis streams, Arrow tables for Parquet."""
    publishers = [p for p in publishers if not isinstance(p, FaultSidecar)]  # it reads only what any batch has
    names = [getattr(p, "stream_names", None) for p in publishers]
    streams = next((n for n in names if n), None)
    parquet = [isinstance(p, ParquetPublisher) for p in publishers]
    nulls = any(p.nulls for p in publishers if isinstance(p, ParquetPublisher))
    lines = not all(bool(n) or table for n, table in zip(names, parquet, strict=True))
    return Encoder(
        generator.catalogue, generator.cities, streams=streams, lines=lines, parquet=any(parquet), parquet_nulls=nulls
    )


def encoded(
    encoder: Encoder, batches: Iterator[EventTables], ahead: int = ENCODE_AHEAD, threads: int = ENCODE_THREADS
) -> Iterator[EncodedBatch]:
    """Encode batches on ``threads`` worker threads while the next ones are generated; yield them in order."""
    if ahead == 0:
        for tables in batches:
            yield encoder.encode_all(tables)
        return
    with ThreadPoolExecutor(threads, thread_name_prefix="encode") as pool:
        queue: deque[Future[EncodedBatch]] = deque()
        for tables in batches:
            queue.append(pool.submit(encoder.encode_all, tables))
            while len(queue) > ahead or (queue and queue[0].done()):
                yield queue.popleft().result()
        while queue:
            yield queue.popleft().result()


def run_batch(
    generator: EventGenerator,
    publishers: Sequence[Publisher],
    count: int,
    start: datetime,
    end: datetime,
    rate: float | None = None,
    should_stop: Callable[[], bool] = lambda: False,
    on_batch: Callable[[dict[str, int]], None] = lambda counts: None,
    encode_threads: int = ENCODE_THREADS,
    result: RunResult | None = None,
) -> RunResult:
    """Write ``count`` events over [start, end) to every publisher; stop early when ``should_stop()``.

    Everything generated is written and flushed before returning, also when stopped early.
    Counts go into ``result`` as the run goes, so a caller keeps them if a publisher fails.
    """
    result = result or RunResult(seed=generator.seed)
    encoder = encoder_for(generator, publishers)
    workers = generator.workers_for(count)
    with _flushed(publishers, result):
        if rate is None and workers > 1:
            # The workers encode their own shards' events; here their bytes are only merged in time order.
            arrow = encoder.arrow
            factory = partial(
                Encoder,
                streams=encoder.streams,
                lines=encoder.lines,
                parquet=arrow is not None,
                parquet_nulls=arrow is not None and arrow.nulls,
            )
            parts = generator.batch_encoded(count, start, end, workers, factory)
            ready: Iterator[EncodedBatch] = _merged(parts)
        else:
            batches = paced(generator.batch(count, start, end, workers), rate)
            ready = encoded(encoder, batches, ahead=0 if rate else ENCODE_AHEAD, threads=encode_threads)
        for batch in ready:
            _publish(batch, publishers, result)
            on_batch(batch.counts)
            if should_stop():
                result.interrupted = True
                break
            del batch  # not held while the next one is made: a slice's bytes are tens of MB
    return result


def _merged(parts: Iterator[list[Any]]) -> Iterator[EncodedBatch]:
    """Each slice's parts merged in time order, the parts and the merge let go before the next slice is awaited."""
    for part in parts:
        merged = EncodedBatch.merge(part)
        del part  # else still held here while ``parts`` makes the next slice
        yield merged
        del merged


def run_live(
    generator: EventGenerator,
    publishers: Sequence[Publisher],
    rate: float,
    duration: float | None = None,
    should_stop: Callable[[], bool] = lambda: False,
    on_batch: Callable[[dict[str, int]], None] = lambda counts: None,
    result: RunResult | None = None,
) -> RunResult:
    """Stream live traffic at ``rate`` events/s to every publisher, for ``duration`` seconds or until stopped.

    Each slice of events is written when its wall-clock time has come, so every event
    carries the time it was emitted (to within a slice, 100 ms). On a stop request the
    events already due are written, nothing later, and everything is flushed.
    """
    result = result or RunResult(seed=generator.seed)
    encoder = encoder_for(generator, publishers)
    with _flushed(publishers, result):
        # From now (once the warm-up is made), or from the start of a history to catch up first.
        duration_ms = int(duration * 1000) if duration else None
        for tables in generator.live(rate, generator.live_start_ms, duration_ms):
            stopped = _sleep_until(generator.live_due_ms, should_stop)
            if stopped:
                tables, _ = tables.split_at(int(time.time() * 1000))
            if len(tables):
                _publish(encoder.encode_all(tables), publishers, result, push=True)
            on_batch(tables.counts())
            if stopped:
                result.interrupted = True
                break
    return result


@contextmanager
def _flushed(publishers: Sequence[Publisher], result: RunResult) -> Iterator[None]:
    """Flush every publisher when the run ends, however it ends, and time the run."""
    began = time.monotonic()
    try:
        yield
    finally:
        try:
            for publisher in publishers:
                publisher.flush()
        finally:  # timed even when a flush fails (Redis gone), so the summary's rate is not made up
            result.elapsed = time.monotonic() - began


def _publish(batch: EncodedBatch, publishers: Sequence[Publisher], result: RunResult, push: bool = False) -> None:
    """Hand a batch to every publisher (and, for live traffic, let readers see it now); count it."""
    for publisher in publishers:
        publisher.write(batch)
        if push:
            publisher.push()
    for event_type, n in batch.counts.items():
        result.counts[event_type] += n


def _sleep_until(due_ms: int, should_stop: Callable[[], bool]) -> bool:
    """Sleep until the wall clock reaches ``due_ms``; True if a stop was requested first."""
    while True:
        if should_stop():
            return True
        left = due_ms / 1000 - time.time()
        if left <= 0:
            return False
        time.sleep(min(left, 0.05))


def events_per_second(result: RunResult) -> float:
    """The run's throughput."""
    return result.total / result.elapsed if result.elapsed > 0 else float(np.inf)
