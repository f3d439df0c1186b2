"""Users' rows kept in a temporary file: the same values back, the pages let go, the same draws in chunks."""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from src.config import load_settings
from src.generator import EventGenerator
from src.simulation import spill
from src.simulation.spill import SpilledColumns
from src.simulation.timing import MS_PER_DAY, TimeModel
from src.simulation.users import (
    DEAD_TIME_MS,
    MAX_SESSIONS_PER_DAY,
    Users,
    UserTables,
    activity_weights,
    level_for,
)

from .conftest import ROOT

DTYPES = {"a": np.int64, "b": np.int8, "c": np.float64}


def test_rows_read_back_as_written_across_chunks() -> None:
    """Appends, puts and takes (any order, repeats) and scans over many chunks agree with plain arrays."""
    rng = np.random.default_rng(3)
    rows = SpilledColumns(DTYPES, chunk_rows=4096)
    reference = {name: np.zeros(0, dtype) for name, dtype in DTYPES.items()}
    for n in (1, 5000, 4095, 12_000, 0, 3):
        values = {"a": rng.integers(-(2**40), 2**40, n), "c": rng.random(n)}  # "b" left out: zeros
        numbers = rows.append(values, n)
        assert np.array_equal(numbers, np.arange(len(reference["a"]), len(reference["a"]) + n))
        for name in DTYPES:
            reference[name] = np.r_[reference[name], values.get(name, np.zeros(n, DTYPES[name]))]
    assert rows.size == 21_099 and rows.chunks == 6
    changed = rng.choice(rows.size, 3000, replace=False)
    new_b = rng.integers(-100, 100, 3000).astype(np.int8)
    rows.put(changed, {"b": new_b, "c": 0.5})
    reference["b"][changed], reference["c"][changed] = new_b, 0.5
    wanted = rng.integers(0, rows.size, 10_000)
    taken = rows.take(wanted, ("a", "b", "c"))
    for name in DTYPES:
        assert taken[name].dtype == DTYPES[name]
        assert np.array_equal(taken[name], reference[name][wanted]), name
        assert np.array_equal(rows.column(name), reference[name]), name
    firsts = [first for first, _ in rows.scan(("a",))]
    assert firsts == [0, 4096, 8192, 12288, 16384, 20480]
    with pytest.raises(IndexError):
        rows.take(np.array([rows.size]), ("a",))
    with pytest.raises(ValueError, match="multiple of 4096"):
        SpilledColumns(DTYPES, chunk_rows=1000)


def _resident_kb(rows: SpilledColumns) -> int:
    """Resident memory of the mappings of ``rows``' chunks (Rss in /proc/self/smaps)."""
    starts = {chunk[next(iter(chunk))].__array_interface__["data"][0] for chunk in rows._views}
    resident, current = 0, False
    for line in Path("/proc/self/smaps").read_text().splitlines():
        head = line.split()[0]
        if "-" in head and ":" not in head:
            low, high = (int(part, 16) for part in head.split("-"))
            current = any(low <= start < high for start in starts)
        elif current and head == "Rss:":
            resident += int(line.split()[1])
    return resident


def test_the_process_holds_only_the_chunk_in_use() -> None:
    """256 MB of rows written and read back in full leave none of their pages in the process: each chunk
    is let go once used (its data stays in the file), while a chunk in use is resident."""
    rows = SpilledColumns({"x": np.float64, "y": np.int64})  # 2 MB a chunk of 131,072 rows
    n = 16 * 1024 * 1024  # 128 chunks
    for first in range(0, n, 1 << 20):
        rows.append({"x": np.full(1 << 20, 1.5), "y": np.arange(first, first + (1 << 20))}, 1 << 20)
    assert rows.chunks == 128 and _resident_kb(rows) == 0
    total = 0.0
    for first, columns in rows.scan(("x", "y")):
        total += float(columns["x"].sum()) + int(columns["y"][-1])
        if first == 0:
            assert _resident_kb(rows) >= 1024  # the chunk in use: the column summed, 1 MB
    assert total == 1.5 * n + sum(range((1 << 17) - 1, n, 1 << 17))  # every value read back
    assert _resident_kb(rows) == 0


def _users(chunk_rows: int, n: int, start: int) -> Users:
    rng = np.random.default_rng(8)
    users = Users(0, 1, n, start, chunk_rows=chunk_rows)
    users.add(
        city=rng.integers(0, 2, n).astype(np.int32),
        weight=activity_weights(rng.random(n)),
        last_start_ms=start - (rng.random(n) * 3 * DEAD_TIME_MS).astype(np.int64),
        churn_at_ms=start + (rng.random(n) * 2 * MS_PER_DAY).astype(np.int64),
        churned=rng.random(n) < 0.1,
    )
    return users


@pytest.mark.parametrize("share", [1e-3, 0.3, 0.97])
def test_the_level_over_chunks_is_the_level_over_all_users(share: float) -> None:
    """The level from chunks (the heavy users kept, the rest summed) is level_for's over all active users,
    from a first guess that keeps nobody, and with few, many and nearly all users at the cap."""
    start = int(datetime(2026, 1, 5, tzinfo=UTC).timestamp() * 1000)
    model = TimeModel(start, start + 2 * MS_PER_DAY, ("UTC", "Asia/Tokyo"), np.array([0, 1]), np.array([0.5, 0.5]))
    clock = model.slice_clock(start, start + MS_PER_DAY)
    group_of_city = np.array([0, 1])
    chunked, whole = _users(4096, 30_000, start), _users(1 << 17, 30_000, start)
    assert chunked.rows.chunks == 8 and whole.rows.chunks == 1
    weights, exposures = [], []
    for first, columns in whole.rows.scan(("churned", "last_start_ms", "city", "weight")):
        *_, weight, _, exposure = whole._open_to(clock, group_of_city, first, columns)
        weights.append(weight)
        exposures.append(exposure)
    weight, exposure = np.concatenate(weights), np.concatenate(exposures)
    sessions = share * float((MAX_SESSIONS_PER_DAY * exposure).sum())
    expected = level_for(weight, exposure, sessions)
    assert whole._level(clock, group_of_city, sessions) == expected  # one chunk: the same sums
    # Over chunks the sums are added in another order: equal up to rounding.
    assert chunked._level(clock, group_of_city, sessions) == pytest.approx(expected, rel=1e-12)
    chunked._floor = 1e-3  # a guess that keeps almost everyone
    assert chunked._level(clock, group_of_city, sessions) == pytest.approx(expected, rel=1e-12)


POOL = 120_000


def test_chunks_of_any_size_give_the_same_events(monkeypatch: pytest.MonkeyPatch) -> None:
    """A run whose users span many small chunks writes the events of one whose users fit in one chunk:
    the draws are made in the same order, and here the level's sums round alike."""
    end = datetime(2026, 3, 2, tzinfo=UTC)

    def run() -> tuple[list[pl.DataFrame], pl.DataFrame]:
        settings = load_settings({"seed": 12, "event_count": 150_000, "user_pool_size": POOL})
        generator = EventGenerator(settings, 12)
        batches = list(generator.batch(150_000, end - timedelta(days=14), end))
        return [pl.concat(getattr(b, kind) for b in batches) for kind in ("search", "click", "conversion")], (
            pl.concat(generator.users.iter_slices(10_000))
        )

    whole, whole_users = run()
    monkeypatch.setattr(spill, "CHUNK_ROWS", 4096)
    chunked, chunked_users = run()
    assert POOL / load_settings({}).shards > 3 * 4096  # many chunks in each shard
    assert chunked_users.equals(whole_users)
    for mine, theirs in zip(chunked, whole, strict=True):
        assert mine.height and mine.equals(theirs)


@pytest.mark.parametrize("in_memory", [1 << 20, 20_000, 0])
def test_the_users_key_reads_back_in_order_of_user_over_shards(monkeypatch: pytest.MonkeyPatch, in_memory: int) -> None:
    """Shards' users added a chunk at a time (each shard in order, numbers interleaved across shards) come
    back as one table in order of user, in slices no longer than asked, every row once: all held in memory,
    spooled from the start, or spooled once there are too many to hold."""
    monkeypatch.setattr(UserTables, "IN_MEMORY_ROWS", in_memory)
    rng = np.random.default_rng(5)
    users = UserTables()
    everyone = []
    for shard in range(5):
        ids = np.sort(rng.choice(np.arange(shard + 1, 200_000, 5), 9_000 + 1000 * shard, replace=False))
        frame = pl.DataFrame({"user": ids, "sessions": rng.integers(0, 9, len(ids)).astype(np.int32)})
        everyone.append(frame)
        for piece in frame.iter_slices(int(rng.integers(500, 4000))):
            users.add(shard, piece)
        users.add(shard, frame.head(0))  # an empty chunk changes nothing
    assert bool(users._spools) == (in_memory < 55_000)  # 55,000 users in all
    slices = list(users.iter_slices(3000))
    assert users.height == sum(f.height for f in everyone) == sum(s.height for s in slices)
    assert max(s.height for s in slices) <= 3000
    assert pl.concat(slices).equals(pl.concat(everyone).sort("user"))


def test_a_full_temporary_folder_stops_the_run_with_one_line(tmp_path: Path) -> None:
    """No room left for the users' rows (a limit on file size stands in for a full disk): the run says so in
    one line naming the temporary folder and TMPDIR, and exits 1; no traceback, and no SIGBUS."""
    folder = tmp_path / "tmp"
    folder.mkdir()

    def limit_file_size() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails instead of killing
        resource.setrlimit(resource.RLIMIT_FSIZE, (40 << 20, 40 << 20))

    # Ten million users of the history: each of the 8 shards needs about 100 MB of rows, the events 10 MB.
    env = {**os.environ, "USER_POOL_SIZE": "10000000", "TMPDIR": str(folder)}
    command = [sys.executable, "-m", "src.main", "--count", "20000", "--seed", "3", "-q", "--output-dir", str(tmp_path)]
    done = subprocess.run(
        command, env=env, preexec_fn=limit_file_size, capture_output=True, text=True, cwd=ROOT, timeout=600
    )
    assert done.returncode == 1, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert f"cannot keep the users' rows in the temporary folder {folder} (TMPDIR): File too large" in lines[0]
    assert list(folder.iterdir()) == []  # the spill files were never named


def test_the_file_takes_disk_for_the_rows_added_only() -> None:
    """A shard of a few users takes a few pages of disk, not a chunk's 10 MB; its blocks grow with its rows."""
    rows = SpilledColumns({"x": np.float64, "y": np.int32})  # 1.5 MB a chunk
    assert rows._file is None  # no users, no file
    rows.append({"x": np.ones(10)}, 10)
    taken = os.fstat(rows._file.fileno()).st_blocks * 512
    assert 0 < taken <= 64 * 1024, taken
    rows.append({"x": np.ones(300_000)}, 300_000)
    taken = os.fstat(rows._file.fileno()).st_blocks * 512
    assert 300_010 * 12 <= taken <= 300_010 * 12 + 2 * 1024 * 1024, taken


def test_the_command_raises_the_limit_on_open_files() -> None:
    """Under the usual soft limit of 1,024 open files, the command's start-up raises it to the hard limit
    (at most 65,536): each shard keeps a file, and a run may have thousands of shards."""
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    if hard != resource.RLIM_INFINITY and hard <= 1024:
        pytest.skip(f"the hard limit on open files is {hard}: nothing to raise")

    def soft_1024() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (1024, hard))

    code = "import resource, src.tuning; print(resource.getrlimit(resource.RLIMIT_NOFILE)[0])"
    done = subprocess.run(
        [sys.executable, "-c", code], preexec_fn=soft_1024, capture_output=True, text=True, cwd=ROOT, check=True
    )
    wanted = 1 << 16 if hard == resource.RLIM_INFINITY else min(hard, 1 << 16)
    assert int(done.stdout) == wanted
