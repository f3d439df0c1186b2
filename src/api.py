"""The library twin of the command: ``generate(settings)`` writes what ``python -m src.main`` writes.

It picks the publishers the settings ask for (files, standard output, Redis), writes
``manifest.json`` beside the files, and returns what was written. The command line is a
thin layer over it: it parses flags, installs signal handlers, prints and exits. Bad
settings raise :class:`~src.config.SettingsError` with one line for the user; nothing here
prints unless asked to (``log`` and ``progress``), reads ``sys.argv`` or exits.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO, TextIO

from .config import Settings, SettingsError, check_output_dir, load_settings, redis_address
from .early import MEMORY_HINT, out_of_memory
from .generator import EventGenerator, WorkerLost, new_seed
from .models import EVENT_TYPES
from .output.answer_key import KeyWritten, key_entry
from .output.faults import FAULTS_FILE, FaultSidecar
from .output.files import FolderLock, WriteFailed
from .output.items import write_items
from .output.manifest import ANSWER_KEYS, begin_run, check_new_run, lines_after, record_run, run_record
from .output.parquet import ParquetPublisher, jsonl_files, parquet_datasets
from .output.users import write_users
from .progress import Progress, thousands
from .publishers import FilePublisher, Publisher, RedisPublisher, RedisUnavailable, StreamPublisher, redis_client
from .runner import ENCODE_THREADS, RunResult, events_per_second, run_batch, run_live
from .simulation.spill import SpillFailed

__all__ = ["GenerateResult", "generate"]


@dataclass
class GenerateResult:
    """What a run wrote, and where."""

    seed: int
    mode: str
    output: str
    counts: dict[str, int]
    elapsed: float
    interrupted: bool
    window_start: datetime
    window_end: datetime
    description: str
    """The run in words: its window (batch) or its rate and length (continuous)."""
    files: dict[str, Path] = field(default_factory=dict)
    """The JSONL file of each event type, when the run wrote files."""
    datasets: dict[str, Path] = field(default_factory=dict)
    """The Parquet dataset (a folder partitioned by date) of each event type, when the run wrote Parquet."""
    manifest: Path | None = None
    users: Path | None = None
    """``users.jsonl``, the users' answer key (sign-up, churn, home, activity), when the run wrote files."""
    items: Path | None = None
    """``items.jsonl``, the inventory's answer key (every item of the seed, as the click model sees it), likewise."""
    redis: str | None = None
    """Where the Redis streams are (``host:port`` or URL without secrets), when the run wrote to Redis."""
    streams: list[str] = field(default_factory=list)
    redis_reconnects: int = 0
    failure: str | None = None
    """Why the run stopped before its end (Redis lost or refusing); the events counted were delivered."""
    reader_gone: bool = False
    """Standard output was closed by its reader (``| head``): the run stopped quietly."""
    started: bool = True
    """False when a stop was asked for before any event was generated: nothing was written."""

    @property
    def total(self) -> int:
        """Events written over all types."""
        return sum(self.counts.values())

    @property
    def events_per_second(self) -> float:
        """The run's throughput."""
        return events_per_second(RunResult(seed=self.seed, counts=self.counts, elapsed=self.elapsed))

    def summary(self) -> dict[str, Any]:
        """The run as one JSON-ready object (what ``--summary-json`` prints)."""
        return {
            "seed": self.seed,
            "mode": self.mode,
            "output": self.output,
            "counts": dict(self.counts),
            "total": self.total,
            "elapsed_seconds": round(self.elapsed, 3),
            "events_per_second": round(self.events_per_second, 1) if self.elapsed > 0 else None,
            "interrupted": self.interrupted,
            "window_start": _iso(self.window_start),
            "window_end": _iso(self.window_end),
            "files": {t: str(p) for t, p in self.files.items()},
            "datasets": {t: str(p) for t, p in self.datasets.items()},
            "manifest": str(self.manifest) if self.manifest else None,
            "users": str(self.users) if self.users else None,
            "items": str(self.items) if self.items else None,
            "redis": {"where": self.redis, "streams": self.streams, "reconnects": self.redis_reconnects}
            if self.redis
            else None,
            "failure": self.failure,
        }


def _iso(instant: datetime) -> str:
    return instant.strftime("%Y-%m-%dT%H:%M:%SZ")


def settings_with(settings: Settings | None, overrides: dict[str, Any]) -> Settings:
    """``settings`` (or the environment's) with ``overrides`` applied and validated; SettingsError if bad."""
    if settings is None:
        return load_settings(overrides)
    if not overrides:
        return settings
    return load_settings({**settings.model_dump(), **overrides})


def connect_redis(settings: Settings) -> RedisPublisher:
    """A Redis publisher for ``settings``, connected; SettingsError naming the setting when it cannot be."""
    password = settings.redis_password.get_secret_value() if settings.redis_password else None
    try:
        client, where = redis_client(
            settings.redis_url, settings.redis_host, settings.redis_port, password, settings.redis_db
        )
    except ValueError:
        url = redis_address(str(settings.redis_url))
        raise SettingsError(f"REDIS_URL={url}: not a Redis URL redis-py can read") from None
    try:
        return RedisPublisher(
            client,
            where,
            prefix=settings.stream_prefix,
            maxlen=settings.stream_maxlen,
            buffer_events=settings.redis_buffer_events,
            give_up_after=settings.redis_retry_seconds,
        )
    except RedisUnavailable as exc:
        if exc.setting == "REDIS_HOST":
            name = f"REDIS_URL={where}" if settings.redis_url else f"REDIS_HOST:REDIS_PORT={where}"
            raise SettingsError(f"{name}: {exc}; start Redis or point REDIS_HOST/REDIS_PORT at it") from None
        value = settings.stream_prefix if exc.setting == "STREAM_PREFIX" else "***"
        raise SettingsError(f"{exc.setting}={value}: {exc}") from None


def _fault_sidecar(
    settings: Settings, files: FilePublisher | None, redis: RedisPublisher | None, live: bool
) -> FaultSidecar:
    """The writer of ``faults.jsonl`` for a run with faults, knowing the sinks it says where faults landed in."""
    lines = None
    if files is not None:
        lines = {t: 0 if settings.overwrite else lines_after(p, 0) for t, p in files.paths.items() if t in EVENT_TYPES}
    return FaultSidecar(
        settings.output_dir,
        overwrite=settings.overwrite,
        staged=not live,
        lines_at_start=lines,
        parquet=settings.writes_parquet,
        streams=redis.stream_names if redis is not None else None,
        stdout=settings.output == "stdout",
    )


def _status(settings: Settings, generator: EventGenerator, progress: Progress, redis: RedisPublisher | None) -> str:
    """Extra figures for the status line of a live run."""
    parts = []
    if settings.mode == "continuous":
        achieved = progress.written / max(progress.elapsed, 1e-9)
        parts += [
            f"target {thousands(settings.events_per_second)}/s",
            f"achieved {thousands(achieved)}/s",
            f"{thousands(generator.in_flight())} sessions in flight",
            f"lag {generator.lag_ms():,} ms",
        ]
    if redis is not None:
        state = "retrying" if redis.retrying else "ok"
        parts.append(f"redis {state}, {redis.reconnects} reconnects, {thousands(redis.buffered)} buffered")
    return ", ".join(parts)


def generate(
    settings: Settings | None = None,
    /,
    *,
    log: Callable[[str], None] | None = None,
    progress: TextIO | None = None,
    should_stop: Callable[[], bool] = lambda: False,
    stdout: BinaryIO | None = None,
    dir_name: str = "OUTPUT_DIR",
    **overrides: Any,
) -> GenerateResult:
    """Run the generator as the command does: files (with ``manifest.json``), standard output or Redis.

    ``settings`` defaults to the environment's (``load_settings()``); keyword ``overrides``
    (setting names, e.g. ``event_count=1000, seed=7``) are applied over them and validated.
    ``log`` receives the lines the command prints to stderr before and during a run,
    ``progress`` shows a bar or status line on that stream, ``should_stop`` ends the run
    early (everything generated is written and flushed), and ``stdout`` is where
    ``output="stdout"`` writes (standard output by default).

    Raises SettingsError (one line naming the setting) before anything is written if a
    setting is bad, the output folder is not writable or Redis cannot be reached. A Redis
    lost during the run does not raise: the result's ``failure`` says what happened.
    """
    settings = settings_with(settings, overrides)
    say = log or (lambda message: None)
    writes_files = settings.writes_folder
    if settings.impressions and not settings.writes_lines:
        settings = settings.model_copy(update={"impressions": False})  # nothing would write them
    if writes_files:
        check_output_dir(settings.output_dir, dir_name)
    redis = connect_redis(settings) if settings.writes_redis else None
    seed = settings.seed if settings.seed is not None else new_seed()
    live = settings.mode == "continuous"
    if live:
        length = f"for {settings.duration:g} s" if settings.duration else "until stopped (Ctrl-C)"
        where = f"continuous at {thousands(settings.events_per_second)} events/s {length}"
        start = end = datetime.now(UTC)
    else:
        start, end = settings.window()
        where = f"window {start:%Y-%m-%dT%H:%M:%SZ} to {end:%Y-%m-%dT%H:%M:%SZ}"
    window = None if live else (_iso(start), _iso(end))
    what = "" if live else f"{thousands(settings.event_count)} events, "
    # One writer per folder, and not the same run twice: refused before anything in the folder is touched.
    lock = FolderLock(settings.output_dir, dir_name) if writes_files else None
    publishers: list[Publisher] = []
    files: dict[str, Path] = {}
    datasets: dict[str, Path] = {}
    file_publisher: FilePublisher | None = None
    folder: list[FilePublisher | ParquetPublisher] = []  # the sinks writing into OUTPUT_DIR
    try:
        if lock is not None and not settings.overwrite:
            check_new_run(settings.output_dir, seed, dir_name)
        say(f"generating {what}seed {seed}, {where}")
        generator = EventGenerator(settings, seed)
        if should_stop():
            if lock is not None:
                lock.release()
            return GenerateResult(seed, settings.mode, settings.output, dict.fromkeys(EVENT_TYPES, 0), 0.0, True,
                                  start, end, where, started=False)  # fmt: skip
        replaces_parquet = settings.overwrite and not settings.writes_parquet
        # An overwrite without faults leaves no sidecar of the old run's: it would describe lines that are gone.
        no_faults = settings.overwrite and not any(settings.fault_rates().values())
        stale_sidecar = [settings.output_dir / FAULTS_FILE] if no_faults else []
        if lock is not None and settings.writes_lines:
            file_publisher = FilePublisher(
                settings.output_dir,
                overwrite=settings.overwrite,
                lock=lock,
                replace_at_end=not live,
                name=dir_name,
                impressions=settings.impressions,
                stale=(parquet_datasets(settings.output_dir) if replaces_parquet else []) + stale_sidecar,
            )
            for event_type, removed in file_publisher.repaired.items():
                say(f"repaired {file_publisher.paths[event_type]}: removed a partial last line ({removed} bytes)")
            folder.append(file_publisher)
            files = dict(file_publisher.paths)
        if lock is not None and settings.writes_parquet:
            stale = jsonl_files(settings.output_dir) if settings.overwrite and not settings.writes_lines else []
            stale += [] if settings.writes_lines else stale_sidecar
            parquet = ParquetPublisher(
                settings.output_dir,
                overwrite=settings.overwrite,
                compression=settings.parquet_compression,
                stale=stale,
                nulls=settings.fault_rates()["missing"] > 0,
            )
            folder.append(parquet)
            datasets = dict(parquet.paths)
        if folder:
            begin_run(folder, settings, seed, window)
            publishers.extend(folder)
    except BaseException:
        if lock is not None:
            lock.release()
        raise
    if redis is not None:
        publishers.append(redis)
    if settings.output == "stdout":
        publishers.append(StreamPublisher(stdout or sys.stdout.buffer))
    sidecar = _fault_sidecar(settings, file_publisher, redis, live) if any(settings.fault_rates().values()) else None
    if sidecar is not None:
        publishers.append(sidecar)

    total = None if live else settings.event_count
    if live and settings.duration:
        total = int(settings.events_per_second * settings.duration)
    bar = Progress(progress or sys.stderr, total, enabled=progress is not None)

    def on_batch(counts: dict[str, int]) -> None:
        bar.update(counts, lambda: _status(settings, generator, bar, redis))

    if redis is not None:
        redis.stopping = should_stop
    began = datetime.now(UTC)
    result = RunResult(seed=seed)
    failure: str | None = None
    files_failed = False  # a write error or no memory: an --overwrite run's new files are dropped
    reader_gone = False
    try:
        if live:
            run_live(
                generator,
                publishers,
                settings.events_per_second,
                settings.duration,
                should_stop=should_stop,
                on_batch=on_batch,
                result=result,
            )
        else:
            run_batch(
                generator,
                publishers,
                settings.event_count,
                start,
                end,
                rate=settings.batch_rate,
                should_stop=should_stop,
                on_batch=on_batch,
                # With Redis, its sender thread (and often the server itself) needs a core of its own.
                encode_threads=1 if redis is not None else ENCODE_THREADS,
                result=result,
            )
    except RedisUnavailable as exc:
        failure = str(exc)
    except (WorkerLost, SpillFailed) as exc:
        failure, files_failed = f"{exc} after {thousands(result.total)} events", True
    except WriteFailed as exc:
        failure, files_failed = str(exc), True
    except (MemoryError, RuntimeError) as exc:
        files_failed = True
        if not out_of_memory(exc):
            raise
        failure = f"out of memory after {thousands(result.total)} events ({type(exc).__name__}); {MEMORY_HINT}"
    except BrokenPipeError:
        # A reader such as `head` closed standard output: stop quietly, as Unix tools do.
        reader_gone = True
        if stdout is None:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except BaseException:
        files_failed = True  # a bug: an --overwrite run's new files are dropped, the old ones stay
        if lock is not None:
            lock.release()
        raise
    finally:
        bar.close()
        for publisher in publishers:
            try:
                if files_failed and isinstance(publisher, FilePublisher | ParquetPublisher | FaultSidecar):
                    publisher.discard()
                else:
                    publisher.close()
            except (RedisUnavailable, WriteFailed) as exc:
                failure = failure or str(exc)
            except BrokenPipeError:
                reader_gone = True
    if live:
        start, end = began, datetime.now(UTC)
    parquet_only = [p for p in folder if isinstance(p, ParquetPublisher) and not settings.writes_lines]
    if parquet_only:
        result.counts = parquet_only[0].complete_rows()  # what the files hold, also after a failed write
    manifest = None
    keys: dict[str, KeyWritten] = {}
    if lock is not None and folder:
        span: dict[str, Any] = {"window_start": _iso(start), "window_end": _iso(end)}
        if live:
            span["rate"] = settings.events_per_second
        special = [] if live else generator.special_days()
        entries: dict[str, dict[str, Any]] = {}
        try:
            # The answer keys before the manifest, so that the manifest (written last) says whether they are in them.
            if not any(p.dropped for p in folder):
                writers: dict[str, Callable[[], KeyWritten | None]] = {
                    "users": lambda: write_users(
                        settings.output_dir,
                        generator.live_users() if live else generator.users,
                        generator.cities,
                        overwrite=settings.overwrite,
                    ),
                    "items": lambda: write_items(
                        settings.output_dir, seed, generator.model.inventory, overwrite=settings.overwrite
                    ),
                }
                for key, write in writers.items():
                    try:
                        written = write()
                    except (WriteFailed, SpillFailed) as exc:
                        entries[key] = key_entry(ANSWER_KEYS[key], None, str(exc))
                        failure = failure or str(exc)
                    else:
                        entries[key] = key_entry(ANSWER_KEYS[key], written)
                        if written is not None:
                            keys[key] = written
            interrupted = result.interrupted or bool(failure)
            faults = dict(sidecar.counts) if sidecar is not None else None
            record = run_record(
                settings, seed, result.counts, span, interrupted, special, entries, generator.model, faults
            )
            manifest = record_run(folder, record, overwrite=settings.overwrite, answer_keys=list(keys.values()))
        except WriteFailed as exc:
            failure = failure or str(exc)
        finally:
            lock.release()
    return GenerateResult(
        seed=seed,
        mode=settings.mode,
        output=settings.output,
        counts=dict(result.counts),
        elapsed=result.elapsed,
        interrupted=result.interrupted,
        window_start=start,
        window_end=end,
        description=where,
        files=files,
        datasets=datasets,
        manifest=manifest,
        users=keys["users"].path if "users" in keys else None,
        items=keys["items"].path if "items" in keys else None,
        redis=redis.where if redis is not None else None,
        streams=list(redis.streams) if redis is not None else [],
        redis_reconnects=redis.reconnects if redis is not None else 0,
        failure=failure,
        reader_gone=reader_gone,
    )
