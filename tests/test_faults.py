"""The fault suite (marked ``faults``; `.ci/run` runs it): the experiments of issue 13, repeated, with their figures.

Concurrent writers, a full disk (a 3 MB tmpfs; needs root), SIGKILL at random points of
batch runs, SIGTERM and SIGINT at random points (the first second included), the report
on empty, corrupt and binary folders, and memory limits. Every loop is bounded and seeded.
"""

from __future__ import annotations

import contextlib
import json
import random
import re
import resource
import signal
import subprocess
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from src.models import EVENT_TYPES, file_name
from src.output.files import LOCK_NAME, FilePublisher
from src.simulation.shards import SLICE_EVENTS

from .conftest import run_cli, start_cli

pytestmark = pytest.mark.faults

END = "2026-03-01"
DAYS = 7


_start = start_cli


def _until_written(directory: Path, run: subprocess.Popen[str]) -> None:
    """Wait until the run has written its first bytes of events: start-up takes seconds on a slow machine,
    so a delay counted from the launch alone may never reach the run itself."""
    deadline = time.monotonic() + 60
    paths = [directory / file_name(event_type) for event_type in EVENT_TYPES]
    while not any(path.exists() and path.stat().st_size for path in paths):
        assert run.poll() is None and time.monotonic() < deadline, "the run never wrote an event"
        time.sleep(0.02)


def _whole_lines(path: Path) -> list[bytes]:
    """The complete lines of a file (a partial last line left out)."""
    if not path.exists():
        return []
    data = path.read_bytes()
    return data[: data.rfind(b"\n") + 1].splitlines()


def _last_time(lines: list[bytes], default: datetime) -> datetime:
    if not lines:
        return default
    stamp = json.loads(lines[-1])["timestamp"]
    return datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S.%fZ")


def _assert_whole_json_lines(directory: Path) -> dict[str, list[dict[str, object]]]:
    events = {}
    for event_type in EVENT_TYPES:
        path = directory / file_name(event_type)
        data = path.read_bytes() if path.exists() else b""
        assert not data or data.endswith(b"\n"), f"{path} ends in a partial line"
        events[event_type] = [json.loads(line) for line in data.splitlines()]
    return events


def _integrity(events: dict[str, list[dict[str, object]]]) -> dict[str, int]:
    searches = {e["event_id"] for e in events["search"]}
    clicks = {e["event_id"] for e in events["click"]}
    every = [e["event_id"] for t in EVENT_TYPES for e in events[t]]
    return {
        "dangling_clicks": sum(1 for e in events["click"] if e["search_event_id"] not in searches),
        "dangling_conversions": sum(1 for e in events["conversion"] if e["click_event_id"] not in clicks),
        "duplicate_ids": len(every) - len(set(every)),
    }


def _summary_counts(stderr: str) -> dict[str, int] | None:
    match = re.search(
        r"(?:wrote|stopped after writing) [\d,]+ events \(([\d,]+) search, ([\d,]+) click, ([\d,]+) conv", stderr
    )
    if not match:
        return None
    return dict(zip(EVENT_TYPES, (int(g.replace(",", "")) for g in match.groups()), strict=True))


class TestConcurrentWriters:
    def test_a_second_writer_is_refused_and_nothing_is_lost(self, tmp_path: Path) -> None:
        """Issue 13's round: one long run, three more into the same folder. They are refused; 0 lost, 0 dangling."""
        first = _start("--count", "600000", "--rate", "60000", "--seed", "500", "--end", END,
                       "--output-dir", str(tmp_path))  # fmt: skip
        deadline = time.monotonic() + 60
        while not (tmp_path / file_name("search")).exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        others = [_start("--count", "200000", "--seed", f"60{k}", "--output-dir", str(tmp_path)) for k in (1, 2, 3)]
        results = [(p.wait(timeout=120), *p.communicate()) for p in others]
        _, first_err = first.communicate(timeout=300)
        assert first.returncode == 0, first_err
        for code, _, err in results:
            assert code == 2, err
            assert err.count("\n") == 1, err
            assert f"{tmp_path}: another run (PID {first.pid})" in err
        events = _assert_whole_json_lines(tmp_path)
        counts = {t: len(v) for t, v in events.items()}
        assert counts == _summary_counts(first_err)
        assert counts == json.loads((tmp_path / "manifest.json").read_text())["totals_in_files"]
        assert sum(counts.values()) == 600_000
        assert _integrity(events) == {"dangling_clicks": 0, "dangling_conversions": 0, "duplicate_ids": 0}
        assert not (tmp_path / LOCK_NAME).exists()


@contextlib.contextmanager
def _tmpfs(path: Path, size: str = "3m") -> Iterator[Path]:
    path.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root, as CI has): {mounted.stderr.decode().strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", str(path)], check=False)


class TestFullDisk:
    def test_a_full_disk_ends_the_run_with_one_line_and_a_true_manifest(self, tmp_path: Path) -> None:
        """A 3 MB tmpfs, --count 1000000: exit 1, one line naming the file; whole lines; manifest = files; twice."""
        with _tmpfs(tmp_path / "disk") as disk:
            for seed in ("1", "2"):
                result = run_cli(
                    "--count", "1000000", "--seed", seed, "--end", END, "-q", env={"OUTPUT_DIR": str(disk)}
                )
                assert result.returncode == 1, result.stderr
                assert result.stderr.count("\n") == 1, result.stderr
                assert "No space left on device" in result.stderr and "_events.jsonl" in result.stderr
                assert "Traceback" not in result.stderr
                events = _assert_whole_json_lines(disk)
                manifest = json.loads((disk / "manifest.json").read_text())
                assert {t: len(v) for t, v in events.items()} == manifest["totals_in_files"]
                assert _integrity(events)["dangling_clicks"] == 0

    def test_a_full_disk_under_parquet_leaves_complete_files_and_a_true_manifest(self, tmp_path: Path) -> None:
        """Parquet on a 3 MB tmpfs: exit 1, one line naming the file; every file reads whole; a true manifest."""
        with _tmpfs(tmp_path / "disk") as disk:
            result = run_cli("--count", "2000000", "--seed", "1", "--end", END, "--output", "parquet", "-q",
                             env={"OUTPUT_DIR": str(disk)})  # fmt: skip
            assert result.returncode == 1, result.stderr
            assert result.stderr.count("\n") == 1 and "No space left on device" in result.stderr, result.stderr
            assert ".parquet" in result.stderr and "Traceback" not in result.stderr
            assert not list(disk.glob("*/date=*/.part-*")), "an unfinished file was left"
            manifest = json.loads((disk / "manifest.json").read_text())
            for event_type in EVENT_TYPES:
                files = sorted(disk.glob(f"{event_type}_events/date=*/*.parquet"))
                assert sum(pq.read_table(f).num_rows for f in files) == manifest["totals_in_files"][event_type]

    @pytest.mark.parametrize("key", ["users", "items"])
    def test_a_full_disk_while_writing_an_answer_key_cuts_it_back_and_says_so(self, tmp_path: Path, key: str) -> None:
        """The events fit, users.jsonl (or items.jsonl) does not: exit 1 naming it, whole lines, a true manifest."""
        name = f"{key}.jsonl"
        args = ("--count", "6500", "--seed", "1", "--end", END, "-q")
        dry = tmp_path / "dry"
        assert run_cli(*args, env={"OUTPUT_DIR": str(dry)}).returncode == 0
        events = sum((dry / file_name(t)).stat().st_size for t in EVENT_TYPES)
        size_of = {k: (dry / f"{k}.jsonl").stat().st_size for k in ("users", "items")}
        assert size_of[key] > 200_000  # room for half of it, and a wide margin either side
        # The events, two manifests' worth (one is written beside the other), pages, the users when items
        # are the key that fails (users are written first), and half the key.
        before = size_of["users"] if key == "items" else 0
        size = events + 2 * (dry / "manifest.json").stat().st_size + 16 * 4096 + before + size_of[key] // 2
        with _tmpfs(tmp_path / "disk", f"{size // 1024}k") as disk:
            result = run_cli(*args, env={"OUTPUT_DIR": str(disk)})
            assert result.returncode == 1, result.stderr
            assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr, result.stderr
            assert f"cannot write {disk / name}: No space left on device" in result.stderr
            data = (disk / name).read_bytes()
            assert data == b""  # cut back to its size before the run: nothing, not a partial line
            manifest = json.loads((disk / "manifest.json").read_text())
            assert manifest["interrupted"] is True
            assert manifest[key]["lines"] == 0 and "No space left" in manifest[key]["failed"]
            assert manifest["runs"][-1][key] == manifest[key]
            # Items come after users: when users do not fit, neither do items; when items do not, users did.
            assert manifest["items"]["lines"] == 0 and (disk / "items.jsonl").read_bytes() == b""
            users = len((disk / "users.jsonl").read_bytes().splitlines())
            assert manifest["users"]["lines"] == users and (users > 0) == (key == "items")
            written = _assert_whole_json_lines(disk)
            assert {t: len(v) for t, v in written.items()} == manifest["totals_in_files"]
            # More room: the next run appends whole lines, and its manifest entry counts them.
            subprocess.run(["mount", "-o", "remount,size=32m", str(disk)], check=True)
            again = run_cli("--count", "2000", "--seed", "2", "--end", END, "-q", env={"OUTPUT_DIR": str(disk)})
            assert again.returncode == 0, again.stderr
            lines = [json.loads(line) for line in (disk / name).read_bytes().splitlines()]
            if key == "users":
                assert lines and all(line["user_id"].startswith("user_") for line in lines)
            else:
                assert lines and {line["seed"] for line in lines} == {2}
            manifest = json.loads((disk / "manifest.json").read_text())
            assert [run[key]["lines"] for run in manifest["runs"]] == [0, len(lines)]

    def test_overwrite_on_a_full_disk_keeps_the_old_files(self, tmp_path: Path) -> None:
        """--overwrite that runs out of space: the old files and manifest are as they were."""
        with _tmpfs(tmp_path / "disk", "12m") as disk:  # room for a small run's files, items.jsonl's 8.4 MB with them
            assert (
                run_cli("--count", "2000", "--seed", "1", "--end", END, "-q", env={"OUTPUT_DIR": str(disk)}).returncode
                == 0
            )
            before = {p.name: p.read_bytes() for p in disk.iterdir()}
            result = run_cli("--count", "1000000", "--seed", "2", "--overwrite", "-q", env={"OUTPUT_DIR": str(disk)})
            assert result.returncode == 1 and result.stderr.count("\n") == 1, result.stderr
            assert {p.name: p.read_bytes() for p in disk.iterdir()} == before

    def test_the_report_on_a_full_disk_leaves_no_empty_page(self, tmp_path: Path) -> None:
        """report --out onto a full disk: one line, and no report.html (not even an empty one)."""
        source = tmp_path / "run"
        assert (
            run_cli("--count", "2000", "--seed", "1", "--end", END, "-q", env={"OUTPUT_DIR": str(source)}).returncode
            == 0
        )
        with _tmpfs(tmp_path / "disk", "200k") as disk:
            with contextlib.suppress(OSError), (disk / "filler").open("wb") as filler:
                while True:
                    filler.write(b"x" * 65536)
                    filler.flush()
            result = run_cli("report", "--input", str(source), "--out", str(disk / "report.html"))
            assert result.returncode != 0
            assert result.stderr.count("\n") == 1 and "No space left on device".lower() in result.stderr.lower()
            assert sorted(p.name for p in disk.iterdir()) == ["filler"]

    def test_a_full_disk_at_the_report_json_names_it_and_replaces_nothing(self, tmp_path: Path) -> None:
        """Room for the page but not the JSON: one line naming report.json, exit 1, neither file put in place."""
        source = tmp_path / "run"
        assert (
            run_cli("--count", "3000", "--seed", "1", "--end", END, "-q", env={"OUTPUT_DIR": str(source)}).returncode
            == 0
        )
        assert run_cli("report", "--input", str(source), "-q").returncode == 0
        page, figures = ((source / name).stat().st_size for name in ("report.html", "report.json"))
        assert figures > 16_384  # half of it leaves a margin of pages either side
        with _tmpfs(tmp_path / "disk", f"{(page + 4095) // 4096 * 4 + figures // 2048}k") as disk:
            result = run_cli("report", "--input", str(source), "--out", str(disk / "report.html"))
            assert result.returncode == 1, result.stderr
            assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr, result.stderr
            assert f"cannot write {disk / 'report.json'}: No space left on device" in result.stderr
            assert list(disk.iterdir()) == []


def _batch_span(count: int) -> timedelta:
    slices = -(-count // SLICE_EVENTS)
    return timedelta(days=DAYS) / slices


class TestKill:
    TRIES = 20
    COUNT = 2_000_000

    def test_after_sigkill_the_files_are_a_prefix_in_time(self, tmp_path: Path) -> None:
        """20 SIGKILLs at random points: the files' last times within one batch; whole lines after the repair."""
        rng = random.Random(13)
        span = _batch_span(self.COUNT)
        start = datetime.fromisoformat(END) - timedelta(days=DAYS)
        spreads = []
        for attempt in range(self.TRIES):
            directory = tmp_path / f"try{attempt}"
            run = _start("--count", str(self.COUNT), "--seed", str(100 + attempt), "--end", END, "--days", str(DAYS),
                         "-q", "--output-dir", str(directory))  # fmt: skip
            # Odd tries count from the first write, so that some kills land mid-run on any machine.
            if attempt % 2:
                _until_written(directory, run)
            time.sleep(rng.uniform(0.3, 3.0))
            run.kill()
            run.communicate()
            lines = {t: _whole_lines(directory / file_name(t)) for t in EVENT_TYPES}
            last = [_last_time(lines[t], start) for t in EVENT_TYPES]
            spreads.append(max(last) - min(last))
            assert max(last) - min(last) <= span, (attempt, last)
            # The next run repairs a partial last line under the lock: through the CLI every fourth time.
            if attempt % 4 == 0:
                result = run_cli("--count", "1000", "--seed", "9", "--end", "2026-04-01", "-q",
                                 env={"OUTPUT_DIR": str(directory)})  # fmt: skip
                assert result.returncode == 0, result.stderr
                # The killed run is listed in the manifest by this one: its totals are the lines on disk.
                totals = json.loads((directory / "manifest.json").read_text())["totals_in_files"]
                assert totals == {t: len(_whole_lines(directory / file_name(t))) for t in EVENT_TYPES}
            elif directory.exists():
                FilePublisher(directory).close()
            if directory.exists():
                _assert_whole_json_lines(directory)
        print(f"SIGKILL: {self.TRIES} tries, max spread of last times {max(spreads)}, batch span {span}")

    def test_a_killed_overwrite_leaves_the_old_files(self, tmp_path: Path) -> None:
        """SIGKILL during --overwrite (batch): the old files are untouched; the next run drops the .new files."""
        rng = random.Random(7)
        assert (
            run_cli("--count", "5000", "--seed", "1", "--end", END, "-q", env={"OUTPUT_DIR": str(tmp_path)}).returncode
            == 0
        )
        before = {t: (tmp_path / file_name(t)).read_bytes() for t in EVENT_TYPES}
        for attempt in range(4):
            run = _start("--count", str(self.COUNT), "--seed", str(200 + attempt), "--overwrite", "-q",
                         "--output-dir", str(tmp_path))  # fmt: skip
            time.sleep(rng.uniform(0.5, 4.0))
            run.kill()
            run.communicate()
            assert {t: (tmp_path / file_name(t)).read_bytes() for t in EVENT_TYPES} == before
        FilePublisher(tmp_path).close()
        assert not list(tmp_path.glob("*.new"))

    def test_a_killed_parquet_overwrite_leaves_the_old_datasets(self, tmp_path: Path) -> None:
        """SIGKILL during a Parquet --overwrite: the old datasets are untouched; the next run drops the staged ones."""
        parquet = ["--output", "parquet", "--output-dir", str(tmp_path), "-q"]
        assert run_cli("--count", "5000", "--seed", "1", "--end", END, *parquet).returncode == 0
        before = {p: p.read_bytes() for p in tmp_path.glob("*_events/date=*/*.parquet")}
        run = _start("--count", str(self.COUNT), "--seed", "300", "--overwrite", "--end", END, *parquet)
        deadline = time.monotonic() + 60
        while not list(tmp_path.glob(".*_events.new/date=*/*")) and time.monotonic() < deadline:
            time.sleep(0.02)
        run.kill()
        run.communicate()
        assert {p: p.read_bytes() for p in tmp_path.glob("*_events/date=*/*.parquet")} == before
        assert list(tmp_path.glob(".*_events.new")), "the kill came after the run had ended"
        assert run_cli("--count", "5000", "--seed", "2", "--end", END, *parquet).returncode == 0
        assert not list(tmp_path.glob(".*_events.new"))


class TestSignals:
    TRIES = 12

    def test_sigterm_and_sigint_at_random_points_end_quietly(self, tmp_path: Path) -> None:
        """Before the run starts: exit 130/143, nothing written; after: exit 0, summary = lines = manifest."""
        rng = random.Random(8)
        # The first tries land in the start-up; the others count from the first write (a slow machine's
        # start-up can outlast any fixed delay), half of them at once, half up to 2 s later.
        delays = [0.15, 0.3, 0.5, 0.7, 0.9] + [rng.uniform(0.0, 2.0) for _ in range(self.TRIES - 5)]
        outcomes = []
        for attempt, delay in enumerate(delays):
            signum = (signal.SIGTERM, signal.SIGINT)[attempt % 2]
            directory = tmp_path / f"try{attempt}"
            run = _start(
                "--count", "2000000", "--seed", str(300 + attempt), "--end", END, "--output-dir", str(directory)
            )
            if attempt >= 5:
                _until_written(directory, run)
            time.sleep(delay)
            run.send_signal(signum)
            _, err = run.communicate(timeout=120)
            assert "Traceback" not in err and "ignored" not in err, err
            # -signum: the signal came as Python was exiting after the run had ended (it resets its handlers then).
            assert run.returncode in (0, 128 + signum, -signum), (delay, run.returncode, err)
            events = _assert_whole_json_lines(directory) if directory.exists() else {t: [] for t in EVENT_TYPES}
            counts = {t: len(v) for t, v in events.items()}
            if run.returncode in (0, -signum):
                assert counts == _summary_counts(err), err
                assert counts == json.loads((directory / "manifest.json").read_text())["counts"]
                outcomes.append("stopped")
            else:
                assert sum(counts.values()) == 0
                assert err.strip().endswith("before any event was written"), err
                outcomes.append("before start")
        assert "before start" in outcomes and "stopped" in outcomes
        print(f"signals: {len(delays)} tries: {outcomes.count('before start')} before the start, "
              f"{outcomes.count('stopped')} stopped mid-run")  # fmt: skip

    def test_a_signal_during_the_report_ends_it_quietly(self, tmp_path: Path) -> None:
        """SIGINT at random points of `report`: exit 130 (or 0 once done), no traceback, no partial page."""
        rng = random.Random(5)
        assert (
            run_cli(
                "--count", "200000", "--seed", "1", "--end", END, "-q", env={"OUTPUT_DIR": str(tmp_path)}
            ).returncode
            == 0
        )
        for _ in range(4):
            for name in ("report.html", "report.json"):
                (tmp_path / name).unlink(missing_ok=True)
            run = _start("report", "--input", str(tmp_path))
            time.sleep(rng.uniform(0.5, 3.0))
            run.send_signal(signal.SIGINT)
            _, err = run.communicate(timeout=120)
            assert "Traceback" not in err, err
            # -SIGINT: the signal came as Python was exiting after the report was written.
            assert run.returncode in (0, 130, -signal.SIGINT), err
            if run.returncode != 130 or (tmp_path / "report.json").exists():
                json.loads((tmp_path / "report.json").read_text())  # whole, never cut
            if (tmp_path / "report.html").exists():
                assert (tmp_path / "report.html").read_text().rstrip().endswith("</html>")
            assert not list(tmp_path.glob(".*.tmp"))


class TestReportOnBadFolders:
    @pytest.mark.parametrize("kind", ["empty", "corrupt", "binary", "no files"])
    def test_nothing_to_measure_is_one_line(self, tmp_path: Path, kind: str) -> None:
        """Empty, all-corrupt, binary or missing event files: one line, exit 2, no page."""
        rng = random.Random(kind)
        for event_type in EVENT_TYPES:
            path = tmp_path / file_name(event_type)
            if kind == "empty":
                path.write_bytes(b"")
            elif kind == "corrupt":
                path.write_bytes(b'garbage\n{"event_id": \n[1, 2]\n')
            elif kind == "binary":
                path.write_bytes(rng.randbytes(50_000))
        result = run_cli("report", "--input", str(tmp_path))
        assert result.returncode == 2, result.stderr
        assert result.stderr.count("\n") == 1, result.stderr
        assert "Traceback" not in result.stderr
        assert not (tmp_path / "report.html").exists()

    def test_binary_lines_among_good_ones_are_skipped_and_counted(self, tmp_path: Path) -> None:
        """A few lines of bytes that are not UTF-8 in a run's file: the rest is measured, the lines reported."""
        assert (
            run_cli("--count", "3000", "--seed", "1", "--end", END, "-q", env={"OUTPUT_DIR": str(tmp_path)}).returncode
            == 0
        )
        with (tmp_path / file_name("click")).open("ab") as handle:
            handle.write(b"\xff\xfe\x00 not text\n")
        result = run_cli("report", "--input", str(tmp_path))
        assert result.returncode == 0, result.stderr
        report = json.loads((tmp_path / "report.json").read_text())
        assert report["integrity"]["malformed_lines"] >= 1
        assert "not UTF-8" in result.stderr


class TestMemory:
    @pytest.mark.parametrize("limit_mb", [400, 1000, 1500])
    def test_a_memory_limit_is_one_line_and_overwrite_keeps_the_files(self, tmp_path: Path, limit_mb: int) -> None:
        """ulimit -v 0.4-1.5 GB: one line, exit 1, and --overwrite has not emptied anything."""
        assert (
            run_cli("--count", "2000", "--seed", "1", "--end", END, "-q", env={"OUTPUT_DIR": str(tmp_path)}).returncode
            == 0
        )
        before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}

        def limit() -> None:
            resource.setrlimit(resource.RLIMIT_AS, (limit_mb << 20, limit_mb << 20))

        run = _start(
            "--count", "1000000", "--seed", "2", "--overwrite", "--output-dir", str(tmp_path), preexec_fn=limit
        )
        _, err = run.communicate(timeout=120)
        assert run.returncode == 1, err
        assert err.count("\n") == 1 and "ulimit -v" in err, err
        assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before

    @pytest.mark.parametrize("above_mb", [0, 50, 150])
    def test_a_limit_a_little_above_the_threshold_runs_a_million_events(self, tmp_path: Path, above_mb: int) -> None:
        """ulimit -v just above what src/early.py asks for: a 1,000,000-event run completes (it aborted in Rust)."""
        from src.early import MIN_ADDRESS_SPACE

        limit_bytes = MIN_ADDRESS_SPACE + (above_mb << 20)

        def limit() -> None:
            resource.setrlimit(resource.RLIMIT_AS, (limit_bytes, limit_bytes))

        run = _start("--count", "1000000", "--seed", str(40 + above_mb), "--end", END, "-q",
                     "--output-dir", str(tmp_path), preexec_fn=limit)  # fmt: skip
        _, err = run.communicate(timeout=300)
        assert run.returncode == 0, err
        events = _assert_whole_json_lines(tmp_path)
        assert sum(len(v) for v in events.values()) == 1_000_000

    @pytest.mark.parametrize("workers", ["1", "2"])
    def test_out_of_memory_mid_run_is_one_line(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], workers: str
    ) -> None:
        """A MemoryError in the third batch: one line, exit 1; appended whole lines, manifest = files.

        In one process the batch is encoded here; with worker processes (which encode their own
        events, out of reach of a monkeypatch) this process merges their bytes, and that fails.
        """
        from src.main import main
        from src.output.batch import EncodedBatch
        from src.output.encoding import Encoder

        owner, name = (Encoder, "encode_all") if workers == "1" else (EncodedBatch, "merge")
        real = getattr(owner, name)
        calls = {"n": 0}

        def failing(*args: object) -> object:
            calls["n"] += 1
            if calls["n"] == 3:
                raise MemoryError
            return real(*args)

        monkeypatch.setattr(owner, name, failing if workers == "1" else staticmethod(failing))
        args = ["--count", "1000000", "--seed", "4", "-q", "--workers", workers, "--output-dir", str(tmp_path)]
        assert main(args) == 1
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "out of memory" in err, err
        events = _assert_whole_json_lines(tmp_path)
        assert {t: len(v) for t, v in events.items()} == json.loads((tmp_path / "manifest.json").read_text())[
            "totals_in_files"
        ]
