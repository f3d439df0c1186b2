"""Workers: each encodes its own shards' events, the run merges the bytes in time order.

Two workers are threads of the run's process; more go to processes of their own, two threads each.

The merge must give the bytes that one process gives (ties in time go by shard), over
several slices and pieces, for files and for Redis commands; and a worker that dies ends
the run with one line, not a hang.
"""

from __future__ import annotations

import contextlib
import hashlib
import multiprocessing
import os
import signal
import time
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from src import pipes
from src.config import load_settings
from src.generator import EventGenerator, _send_messages
from src.output.batch import EncodedBatch
from src.output.encoding import Encoder
from src.simulation.shards import run_shard
from src.simulation.tables import EventTables
from tests.conftest import run_cli, start_cli


def _coarse(tables: EventTables) -> EventTables:
    """The same events with times floored to whole minutes: many ties in time between shards."""
    frames = [t.with_columns(pl.col("ts") // 60_000 * 60_000) for _, t in tables.items()]
    return EventTables(*frames)


def test_merging_encoded_parts_gives_the_bytes_of_encoding_the_merge() -> None:
    """Encode shard groups apart and merge by (time, shard): the same lines and XADDs as one merge encoded."""
    settings = load_settings({"window_end": "2026-03-02", "shards": 6})
    generator = EventGenerator(settings, seed=5)
    start, end = settings.window()
    plan = generator.plan(60_000, start, end)
    per_shard = [_coarse(next(run_shard(settings, plan, s, generator.world))) for s in range(plan.shards)]
    encoder = Encoder(generator.catalogue, generator.cities, streams={"search": "s", "click": "c", "conversion": "v"})
    whole = encoder(EventTables.merge_all(per_shard))
    groups = [[0, 3], [1, 4, 5], [2]]  # uneven groups, as with SHARDS not a multiple of WORKERS
    parts = []
    for group in groups:
        tables, tags = EventTables.merge_tagged([per_shard[s] for s in group], np.asarray(group))
        parts.append((encoder(tables), tags))
    merged = EncodedBatch.merge(parts)
    ties = sum(int((np.diff(whole.stamps[t]) == 0).sum()) for t in whole.stamps)
    assert ties > 1000  # the case that needs the shard to break ties is really there
    for event_type in ("search", "click", "conversion"):
        assert bytes(merged.lines[event_type]) == bytes(whole.lines[event_type])
        assert np.array_equal(merged.offsets[event_type], whole.offsets[event_type])
        assert np.array_equal(merged.stamps[event_type], whole.stamps[event_type])
        assert bytes(merged.xadds[event_type].data) == bytes(whole.xadds[event_type].data)
    assert merged.counts == whole.counts


def _digests(directory: Path) -> list[str]:
    names = ["search_events.jsonl", "click_events.jsonl", "conversion_events.jsonl", "users.jsonl", "items.jsonl"]
    return [hashlib.sha256((directory / name).read_bytes()).hexdigest() for name in names]


def test_two_workers_write_the_bytes_of_one_over_several_slices(tmp_path: Path) -> None:
    """450,000 events are three slices of eight pieces each: the same files from one process and from two."""
    args = ["--count", "450000", "--seed", "21", "--end", "2026-09-01", "-q"]
    for workers in ("1", "2"):
        result = run_cli(*args, "--workers", workers, "--output-dir", str(tmp_path / workers))
        assert result.returncode == 0, result.stderr
    assert _digests(tmp_path / "1") == _digests(tmp_path / "2")


def _worker_processes(pid: int) -> list[int]:
    children = Path(f"/proc/{pid}/task/{pid}/children")
    found = []
    for child in children.read_text().split() if children.exists() else []:
        with contextlib.suppress(OSError):  # a child that just ended
            if b"spawn_main" in Path(f"/proc/{child}/cmdline").read_bytes():
                found.append(int(child))
    return found


def test_two_workers_run_in_the_run_s_own_process(tmp_path: Path) -> None:
    """--workers 2 is two threads of one process: no worker process is started (the bytes are those of one worker,
    tested above)."""
    run = start_cli("--count", "600000", "--seed", "3", "--workers", "2", "--output-dir", str(tmp_path), "-q")
    polls = 0
    while run.poll() is None:
        assert not _worker_processes(run.pid), "a worker process was started for --workers 2"
        polls += 1
        time.sleep(0.02)
    assert run.returncode == 0, run.stderr.read() if run.stderr else ""
    assert polls > 10  # the run was watched while it ran, not only after


def test_a_killed_worker_ends_the_run_with_one_line(tmp_path: Path) -> None:
    """SIGKILL to a worker process (as the kernel's OOM killer sends): exit 1, one line naming it, whole lines on disk.

    With four workers, workers 2 and 3 are threads of a process of their own.
    """
    run = start_cli("--count", "5000000", "--seed", "2", "--workers", "4", "--output-dir", str(tmp_path), "-q")
    deadline = time.monotonic() + 60
    workers: list[int] = []
    while not workers and time.monotonic() < deadline:
        workers = _worker_processes(run.pid)
        time.sleep(0.05)
    assert len(workers) == 1, "not one worker process for workers 2 and 3"
    while not (tmp_path / "search_events.jsonl").exists() or not (tmp_path / "search_events.jsonl").stat().st_size:
        assert time.monotonic() < deadline and run.poll() is None
        time.sleep(0.05)
    os.kill(workers[-1], signal.SIGKILL)
    _, stderr = run.communicate(timeout=60)
    assert run.returncode == 1, stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and "was killed by SIGKILL" in lines[0] and "Traceback" not in stderr, stderr
    for name in ("search_events.jsonl", "click_events.jsonl", "conversion_events.jsonl"):
        assert (tmp_path / name).read_bytes().endswith(b"\n")


def test_a_run_of_one_slice_runs_in_one_worker_unless_asked_for_more() -> None:
    """A run of one slice is short: by default it stays in one worker, more only when asked for."""
    generator = EventGenerator(load_settings({"window_end": "2026-03-02"}), seed=1)
    assert generator.workers_for(200_000) == 1
    assert generator.workers_for(200_001) == min(len(os.sched_getaffinity(0)), 8)
    assert generator.workers_for(1000, workers=2) == 2
    asked = EventGenerator(load_settings({"window_end": "2026-03-02", "workers": 3}), seed=1)
    assert asked.workers_for(1000) == 3


def _failing_encoder(catalogue: object, cities: object) -> Encoder:
    raise ValueError("no encoder today")


def test_a_hosted_worker_that_fails_sends_its_error_through_its_pipe() -> None:
    """A worker thread of a worker process that fails: its error reaches the run, which raises it."""
    settings = load_settings({"window_end": "2026-03-02"})
    generator = EventGenerator(settings, seed=1)
    start, end = settings.window()
    plan = generator.plan(300_000, start, end)
    receiving, sending = multiprocessing.Pipe(duplex=False)
    _send_messages(settings, plan, 3, 4, sending, _failing_encoder, generator.world)
    message = pipes.receive(receiving.fileno())
    assert isinstance(message, RuntimeError)
    assert "worker 3 failed" in str(message) and "no encoder today" in str(message)


def test_a_hosted_worker_that_cannot_report_its_error_ends_its_process(monkeypatch: pytest.MonkeyPatch) -> None:
    """No pipe to send the error through: the process ends (its other pipes close), the run does not wait for ever."""

    class Broken:
        def fileno(self) -> int:
            raise OSError("bad file descriptor")

    ended: list[int] = []

    def exit_now(status: int) -> None:
        ended.append(status)

    monkeypatch.setattr(os, "_exit", exit_now)
    settings = load_settings({"window_end": "2026-03-02"})
    generator = EventGenerator(settings, seed=1)
    start, end = settings.window()
    _send_messages(settings, generator.plan(1000, start, end), 2, 4, Broken(), None, generator.world)
    assert ended == [1]
