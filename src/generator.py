"""Core event generation: the seeded engine, its shards run over the machine's cores, merged in time order.

Batch mode splits the users and visitors into ``SHARDS`` seed-stable shards
(``simulation.shards``): each shard's events are a pure function of the seed, the
settings, the window, the count and the shard's number. ``--workers N`` runs the shards
in N workers, two threads to a process; the generator merges the shards' slices in time
order (ties by shard), so the result is the same bytes for any number of workers. Every shard writes exactly
its share of ``count``, so the whole run has exactly ``count`` events, and each shard's
last slice is cut in time, so no kept event refers to one that was cut.

Live traffic runs the same engine in this process, a tenth of a second at a time.
"""

from __future__ import annotations

import contextlib
import ctypes
import itertools
import multiprocessing
import os
import queue
import secrets
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from typing import Any

import numpy as np

from . import pipes
from .config import Settings
from .early import out_of_memory
from .reference import CityTable
from .simulation.catalogue import Catalogue
from .simulation.faults import Delivery
from .simulation.shards import SLICE_EVENTS, Shard, ShardPlan, World, rng_for, run_shard
from .simulation.spill import SpillFailed
from .simulation.tables import EventTables, Schedule
from .simulation.timing import to_ms
from .simulation.users import UserTables

LIVE_SLICE_MS = 100  # live traffic is generated and written a tenth of a second at a time
BACKFILL_SLICE_MS = 3_600_000  # a live run that starts in the past catches up an hour at a time
EncoderFactory = Callable[[Catalogue, CityTable], Callable[[EventTables], Any]]
"""Builds, in a worker, what turns its tables into what the sinks take (the output side's encoder)."""
WORKER_POLL_S = 5  # how long to wait for a worker whose pipe closed to give its exit code
PIECES = 8  # a worker sends a slice's encoded events in this many parts of its time (about 12,500 events each)
WORKER_QUEUE = 1  # slices a worker may have ready before the merge takes them: bounds memory
# Workers on threads of one process: with two, the GIL is held about two thirds of the time (py-spy
# --gil), so a third would mostly wait for it; beyond two, workers go to processes of their own.
WORKER_THREADS = 2


class WorkerLost(Exception):
    """A worker process was killed or ran out of memory: the run cannot go on (one line for the user)."""


def new_seed() -> int:
    """A random seed for a run that was not given one (printed, so the run can be repeated)."""
    return secrets.randbits(63)


def default_workers() -> int:
    """The machine's cores available to this process."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


class EventGenerator:
    """Simulates the site's traffic for one seed and one set of settings."""

    def __init__(self, settings: Settings, seed: int) -> None:
        """Prepare the world for the batch window (or, in continuous mode, from now)."""
        self.settings = settings
        self.seed = seed
        if settings.mode == "continuous":
            start = to_ms(settings.window_start) if settings.window_start else int(time.time() * 1000)
            self.start_ms, self.end_ms = start, None
            self.live_start_ms: int | None = to_ms(settings.window_start) if settings.window_start else None
        else:
            self.live_start_ms = None
            start_dt, end_dt = settings.window()
            self.start_ms, self.end_ms = to_ms(start_dt), to_ms(end_dt)
        self.world = World(settings, seed, self.start_ms, self.end_ms or self.start_ms + 400 * 86_400_000)
        self.model = self.world.model
        self.catalogue = self.model.catalogue
        self.cities = self.world.site.cities
        self.users = UserTables()  # the answer key of users, once a batch has run
        self.schedule = Schedule()  # events still to come in live mode
        self.live_due_ms = 0
        self._live_shard: Shard | None = None

    def plan(self, count: int, start: datetime, end: datetime) -> ShardPlan:
        """The shard plan of a batch of ``count`` events over [start, end)."""
        return ShardPlan(self.seed, to_ms(start), to_ms(end), count, self.settings.shards)

    def workers_for(self, count: int, workers: int | None = None) -> int:
        """Workers a batch of ``count`` events runs in: ``workers``, WORKERS or the cores, at most one a shard.

        Unless asked for, a batch of one slice or less runs in one: it is short, and more workers
        would mostly add the merge of their bytes (and, past two, a process to start).
        """
        asked = workers or self.settings.workers
        if asked is None and count <= SLICE_EVENTS:
            return 1
        return max(1, min(asked or default_workers(), self.settings.shards))

    def batch(self, count: int, start: datetime, end: datetime, workers: int | None = None) -> Iterator[EventTables]:
        """Yield exactly ``count`` events over [start, end), in time order, a slice at a time."""
        plan = self._prepare(count, start, end)
        workers = self.workers_for(count, workers)
        if workers <= 1:
            yield from self._batch_here(plan, self.world)
        else:
            for parts in self._batch_in_workers(plan, workers, None):
                yield EventTables.merge_all(parts)

    def batch_encoded(
        self, count: int, start: datetime, end: datetime, workers: int, make_encoder: EncoderFactory
    ) -> Iterator[list[tuple[Any, dict[str, np.ndarray]]]]:
        """``batch`` over ``workers`` workers (threads, two to a process) that each encode their shards' events.

        Each worker calls ``make_encoder(catalogue, cities)`` once and encodes the merge of its
        shards' tables of every slice with it. For each slice this yields, worker by worker,
        what the encoder made and the shard of each row per event type, to be merged by time
        and then shard (which gives the order of ``batch``). Encoding is as much work as
        generating, so this spreads both over the cores, and the parent only merges bytes.
        """
        plan = self._prepare(count, start, end)
        yield from self._batch_in_workers(plan, workers, make_encoder)

    def _prepare(self, count: int, start: datetime, end: datetime) -> ShardPlan:
        plan = self.plan(count, start, end)
        if (plan.start_ms, plan.end_ms) != (self.start_ms, self.end_ms):
            self.world = World(self.settings, plan.seed, plan.start_ms, plan.end_ms)
            self.start_ms, self.end_ms = plan.start_ms, plan.end_ms
        return plan

    def _batch_here(self, plan: ShardPlan, world: World) -> Iterator[EventTables]:
        shards = [run_shard(self.settings, plan, s, world) for s in range(plan.shards)]
        users = UserTables()
        ended = False
        while not ended:
            parts = []
            for index, shard in enumerate(shards):
                try:
                    parts.append(next(shard))
                except StopIteration as done:
                    users.add_all(index, done.value)
                    ended = True
            if not ended:
                yield EventTables.merge_all(parts)
        self.users = users

    def _batch_in_workers(
        self, plan: ShardPlan, workers: int, make_encoder: EncoderFactory | None
    ) -> Iterator[list[Any]]:
        """Each slice's parts from the workers: every shard's tables in shard order, or each worker's encoding.

        Workers run WORKER_THREADS to a process, each on a thread: the first ones here, with this
        generator's world, the others in spawned processes (``--workers 2`` is one process). A
        process costs an interpreter, its imports and its own allocators' memory (about 70 MB),
        while NumPy and polars let go of the GIL for most of a worker's time.
        """
        context = multiprocessing.get_context("spawn")  # a fresh process: polars' thread pool does not survive fork
        here = range(min(workers, WORKER_THREADS))
        hosts = [range(w, min(w + WORKER_THREADS, workers)) for w in range(len(here), workers, WORKER_THREADS)]
        pipes = {w: context.Pipe(duplex=False) for hosted in hosts for w in hosted}
        processes = [
            context.Process(
                target=_worker,
                args=(self.settings, plan, hosted, workers, [pipes[w][1] for w in hosted], os.getpid(), make_encoder,
                      self.world),
                daemon=True,
            )
            for hosted in hosts
        ]  # fmt: skip
        process_of = {w: processes[i] for i, hosted in enumerate(hosts) for w in hosted}
        local = {
            w: _LocalWorker(_worker_messages(self.settings, plan, w, workers, make_encoder, self.world), f"worker-{w}")
            for w in here
        }
        try:
            with _main_not_reimported():
                for process in processes:
                    process.start()
            for _, sending in pipes.values():
                sending.close()  # the workers hold the only write ends: a dead worker's pipe ends
            for thread in local.values():
                thread.start()

            def receive(w: int) -> tuple[str, Any]:
                return local[w].get() if w in local else _receive(pipes[w][0].fileno(), process_of[w], w)

            users = UserTables()
            while True:
                slices: dict[int, Any] = {}
                for w in range(workers):
                    kind, payload = receive(w)
                    while kind == "users":  # a worker's last messages: its shards' users, a chunk each, then "end"
                        users.add(*payload)
                        kind, payload = receive(w)
                    if kind == "slice" and make_encoder is None:
                        slices.update(payload)
                    elif kind == "slice":
                        slices[w] = payload
                    del payload  # else the last worker's part is still held while the next slice is awaited
                if not slices:
                    break
                parts = [slices[k] for k in sorted(slices)]
                yield parts
                del parts  # the merge is done with them: not held while the next slice is awaited
            self.users = users
        finally:
            for thread in local.values():
                thread.stop()  # all at once: each may be in the middle of a slice
            for thread in local.values():
                thread.wait()
            for process in processes:
                if process.is_alive():
                    process.terminate()
                process.join()
            for receiving, _ in pipes.values():
                receiving.close()

    def live(self, rate: float, start_ms: int | None = None, duration_ms: int | None = None) -> Iterator[EventTables]:
        """Yield live traffic from ``start_ms`` in slices, each slice's events in time order.

        The site is already running: sessions begun in the warm-up before ``start_ms`` are in
        progress, and only their events from ``start_ms`` on are yielded, so the funnel reads
        its targets from the first second. Before each second, new sessions are started so that
        the events due by its end match ``rate`` per second since ``start_ms``: each new session's
        first search makes up what is missing, and its later events fill the seconds after. The
        run is a window on a steady stream: with ``end_ms`` nothing at or after it is yielded,
        and sessions running past it are cut there. Slices in the past (a run that starts at an
        earlier time) are an hour long, so the history is caught up as fast as the machine
        goes; slices from now on are LIVE_SLICE_MS. The iterator never sleeps.
        """
        per_session = self.model.expected_events_per_session()
        shard = Shard(self.world, self.seed, 0, 1, start_ms or int(time.time() * 1000), None)
        self._live_shard = shard
        empty = self.world.empty_tables()
        rates = self.settings.fault_rates()
        delivery = None
        if any(rates.values()):
            # A live run's release comes out when the run starts, unless FAULT_DRIFT_AT says otherwise.
            release = to_ms(self.settings.fault_drift_at) if self.settings.fault_drift_at else (start_ms or 0)
            delivery = Delivery(rates, self.seed, empty, release, text=self.settings.writes_json)
        schedule = Schedule()
        # The site was already running: sessions started in the warm-up have their later events kept.
        warmup = int(min(WARMUP_MS, max(WARMUP_MIN_MS, WARMUP_EVENTS / rate * 1000)))
        if start_ms is None:
            # Live from now: start once the warm-up is made (about a million events a second), not before.
            start_ms = int(time.time() * 1000) + int(rate * warmup / WARMUP_SPEED) + 100
        # --duration is the live part: it counts from now, or from the start if that is later.
        end_ms = max(start_ms, int(time.time() * 1000)) + duration_ms if duration_ms is not None else None
        self.start_ms = start_ms
        index = 0
        t = start_ms - warmup
        while t < start_ms:
            t1 = min(t + BACKFILL_SLICE_MS, start_ms)
            sessions = int(rate * (t1 - t) / 1000 / per_session + 0.5)
            new = shard.step(rng_for(self.seed, 2, 0, index), sessions, t, t1, returning=True, paced=False)
            kept = new.split_at(start_ms)[1]
            schedule.add(kept if end_ms is None else kept.split_at(end_ms)[0])
            index, t = index + 1, t1
        emitted = 0
        budget = round(rate * (end_ms - start_ms) / 1000) if end_ms is not None else 0
        made_until = t0 = start_ms  # sessions are started up to made_until, a chunk ahead of what is emitted
        while end_ms is None or t0 < end_ms:
            now = int(time.time() * 1000)
            length = BACKFILL_SLICE_MS if t0 + BACKFILL_SLICE_MS < now else LIVE_SLICE_MS
            t1 = t0 + length if end_ms is None else min(t0 + length, end_ms)
            if t1 > made_until:
                # Start the sessions of the next chunk (a second, or the hour being caught up) at once: the users'
                # arrivals are drawn once per chunk, not ten times a second.
                c0, c1 = made_until, max(t1, made_until + LIVE_CHUNK_MS)
                if end_ms is not None:
                    c1 = min(c1, end_ms)
                due = emitted + schedule.count_before(c1)
                wanted = rate * (c1 - start_ms) / 1000 - due
                # A second's new sessions make up what is missing with their first search alone (their later
                # events fill the next seconds); the sessions of an hour being caught up fit in it whole.
                if c1 - c0 >= BACKFILL_SLICE_MS:
                    wanted /= per_session
                sessions = int(wanted + 0.5) if wanted > 0 else 0
                if sessions:
                    new = shard.step(rng_for(self.seed, 2, 1, index), sessions, c0, c1, returning=True, paced=False)
                    schedule.add(new if end_ms is None else new.split_at(end_ms)[0])
                made_until = c1
            ready = schedule.pop_before(t1, empty)
            if end_ms is not None:
                # The stream's sessions in progress may run a few events over: a run of known length
                # writes rate x duration events, the last ones cut in time.
                ready, _ = ready.first(max(0, budget - emitted))
            emitted += len(ready)
            if delivery is not None:
                # Late events and copies due after the run's end are never delivered.
                ready = delivery.step(ready, rng_for(self.seed, 32, index), t1)
            self.schedule = schedule
            self.live_due_ms = t1
            index += 1
            t0 = t1
            yield ready

    def special_days(self) -> list[dict[str, Any]]:
        """The calendar's holidays and deal days in the markets over the batch window (empty when it is off)."""
        calendar = self.world.calendar
        if calendar is None:
            return []
        first, last = str(_day(self.start_ms)), str(_day((self.end_ms or self.start_ms) - 1))
        return [d for d in calendar.calendar.special_days() if first <= d["date"] <= last]

    def in_flight(self) -> int:
        """Sessions of live traffic with events still to come."""
        return self.schedule.sessions()

    def lag_ms(self) -> int:
        """How far the wall clock is past the end of the last live slice handed out, in ms."""
        return max(0, int(time.time() * 1000) - self.live_due_ms) if self.live_due_ms else 0

    def live_users(self) -> UserTables:
        """The answer key of users of a live run so far."""
        users = UserTables()
        if self._live_shard:
            users.add_all(0, self._live_shard.users_tables())
        return users


LIVE_CHUNK_MS = 1000  # live sessions are started a second at a time
WARMUP_MS = 30 * 60 * 1000  # a live run starts with the sessions of the half hour before it in progress
WARMUP_EVENTS = 1_500_000  # ... or of fewer minutes at high rates (ten up to 2,500 events/s), so start-up stays short
WARMUP_MIN_MS = 60 * 1000  # ... but never less than a minute
WARMUP_SPEED = 1_000_000  # warm-up events made per second, to plan when a run from now starts


def _day(ms: int) -> date:
    return datetime.fromtimestamp(ms / 1000, UTC).date()


def _pieces(
    tables: EventTables, tags: dict[str, np.ndarray], cuts: np.ndarray
) -> Iterator[tuple[EventTables, dict[str, np.ndarray]]]:
    """``tables`` (sorted) cut before each time of ``cuts``, with the matching part of each type's ``tags``."""
    rest, offsets = tables, dict.fromkeys(tags, 0)
    for cut in [*cuts.tolist(), None]:
        piece, rest = rest.split_at(cut) if cut is not None else (rest, rest.head(0))
        counts = piece.counts()
        yield piece, {t: tags[t][offsets[t] : offsets[t] + counts[t]] for t in tags}
        offsets = {t: offsets[t] + counts[t] for t in tags}


def _receive(fd: int, process: Any, worker: int) -> Any:
    """The next message of a worker; its error, raised here; an error if it ended without one."""
    try:
        message = pipes.receive(fd)
    except pipes.PipeClosed:
        process.join(WORKER_POLL_S)
        code = process.exitcode
        if code is not None and code < 0:
            name = signal.Signals(-code).name
            hint = " (out of memory? the kernel ends processes so)" if name == "SIGKILL" else ""
            raise WorkerLost(f"the process of worker {worker} was killed by {name}{hint}") from None
        raise WorkerLost(f"the process of worker {worker} ended without finishing (exit status {code})") from None
    if isinstance(message, BaseException):
        raise message
    return message


def _die_with_parent(parent: int) -> None:
    """End this worker when the run's process ends, however it ends (a SIGKILL too), and hold none of its pipes.

    Otherwise a killed run would leave workers blocked on their queue for ever, holding the
    run's standard output and error open for whoever reads them.
    """
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # the parent was gone before the line above
        os._exit(1)
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)


PR_SET_PDEATHSIG = 1


@contextmanager
def _main_not_reimported() -> Iterator[None]:
    """Start spawned workers without re-running the caller's script in them.

    A spawned process imports the parent's ``__main__`` from its file before it runs the
    worker; a script that calls the library without an ``if __name__ == "__main__"`` guard
    would then generate again in every worker. The workers need nothing from it.
    """
    main = sys.modules.get("__main__")
    saved = {name: getattr(main, name) for name in ("__file__", "__spec__") if main is not None and hasattr(main, name)}
    try:
        for name in saved:
            setattr(main, name, None) if name == "__spec__" else delattr(main, name)
        yield
    finally:
        for name, value in saved.items():
            setattr(main, name, value)


def _worker(
    settings: Settings,
    plan: ShardPlan,
    hosted: range,
    workers: int,
    connections: list[Any],
    parent: int,
    make_encoder: EncoderFactory | None,
    world: World,
) -> None:
    """A worker process: the workers ``hosted``, each on a thread sending its messages through its pipe.

    ``world`` comes pickled from the parent (a few MB, in milliseconds): building it again would
    cost the process a quarter of a second and the calendar's country modules.
    """
    _die_with_parent(parent)
    threads = [
        threading.Thread(target=_send_messages, args=(settings, plan, w, workers, connection, make_encoder, world))
        for w, connection in zip(hosted, connections, strict=True)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def _send_messages(
    settings: Settings,
    plan: ShardPlan,
    worker: int,
    workers: int,
    connection: Any,
    make_encoder: EncoderFactory | None,
    world: World,
) -> None:
    """``_worker_messages`` of one worker sent through the pipe ``connection``, or the error that stopped it.

    An error that cannot be sent ends the whole process: its pipes close, and the run says the
    worker ended without finishing, instead of waiting for ever on a thread that is gone.
    """
    sender = None
    try:
        fd = connection.fileno()
        pipes.widen(fd)
        sender = pipes.Sender(fd, WORKER_QUEUE)
        for message in _worker_messages(settings, plan, worker, workers, make_encoder, world):
            sender.put(message)
        sender.close()
    except BaseException as exc:  # the parent raises it: a worker's bug is not a silent hang
        if out_of_memory(exc):
            error: Exception = WorkerLost(f"worker {worker} ran out of memory ({type(exc).__name__})")
        elif isinstance(exc, SpillFailed):
            error = exc  # says what to do in one line
        else:
            error = RuntimeError(f"worker {worker} failed: {''.join(traceback.format_exception(exc))}")
        try:
            if sender is None:
                pipes.send(connection.fileno(), error)
            else:
                sender.put(error)
                sender.close()
        except BaseException:
            os._exit(1)


def _worker_messages(
    settings: Settings,
    plan: ShardPlan,
    worker: int,
    workers: int,
    make_encoder: EncoderFactory | None,
    world: World | None = None,
) -> Iterator[tuple[str, Any]]:
    """Run shards ``worker``, ``worker + workers``, ... of ``plan``: each slice in order, then the users, then the end.

    The users go a chunk of a shard's answer key at a time, as ``("users", (shard, table))``.

    A slice goes as every shard's tables, or, with ``make_encoder``, as the encoding of their
    merge with the shard of each row, in PIECES parts of its time.
    """
    world = world or World(settings, plan.seed, plan.start_ms, plan.end_ms)
    encode = make_encoder(world.model.catalogue, world.site.cities) if make_encoder else None
    mine = list(range(worker, plan.shards, workers))
    shards = {s: run_shard(settings, plan, s, world) for s in mine}
    bounds = plan.bounds(world.clock)
    # Every worker cuts a slice at the same times, so the parent merges piece by piece, in bounded memory.
    cuts = [np.linspace(a, b, PIECES + 1)[1:-1].astype(np.int64) for a, b in itertools.pairwise(bounds)]
    sent = 0
    users = []
    while True:
        slices = {}
        for s, shard in shards.items():
            try:
                slices[s] = next(shard)
            except StopIteration as done:
                users.append((s, done.value))
        if users:
            break
        if encode is None:
            yield ("slice", slices)
        else:
            tables, tags = EventTables.merge_tagged([slices.pop(s) for s in mine], np.asarray(mine))
            for piece, piece_tags in _pieces(tables, tags, cuts[sent]):
                yield ("slice", (encode(piece), piece_tags))
        sent += 1
    for s, tables in users:
        for table in tables:
            yield ("users", (s, table))
    yield ("end", None)


class _LocalWorker:
    """A worker's messages made on a thread of this process, at most WORKER_QUEUE ahead, as a pipe gives them."""

    def __init__(self, messages: Iterator[tuple[str, Any]], name: str) -> None:
        self.messages = messages
        self.ready: queue.Queue[Any] = queue.Queue(WORKER_QUEUE)
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        """Start making messages."""
        self.thread.start()

    def get(self) -> tuple[str, Any]:
        """The next message; the error that stopped the worker, raised here."""
        message = self.ready.get()
        if isinstance(message, BaseException):
            raise message
        return message  # type: ignore[no-any-return]

    def stop(self) -> None:
        """Stop after the slice being made (the run ended or failed); ``wait`` waits for that."""
        self.stopping.set()

    def wait(self) -> None:
        """Wait (a few seconds at most) for the thread to end once stopped."""
        if self.thread.is_alive():
            self.thread.join(WORKER_POLL_S)

    def _run(self) -> None:
        try:
            for message in self.messages:
                if not self._put(message):
                    return
        except BaseException as exc:  # the run's thread raises it
            self._put(exc)

    def _put(self, message: Any) -> bool:
        while not self.stopping.is_set():
            with contextlib.suppress(queue.Full):
                self.ready.put(message, timeout=0.1)
                return True
        return False
