"""The JSONL files of a folder: one writer, repeated runs refused, whole lines after a failed write, --overwrite."""

from __future__ import annotations

import errno
import json
import os
import stat
from pathlib import Path

import pytest

from src.config import load_settings
from src.generator import EventGenerator
from src.main import main
from src.models import EVENT_TYPES, file_name
from src.output import files, manifest
from src.output.files import LOCK_NAME, FilePublisher, FolderBusy, FolderLock, FolderUnusable, WriteFailed
from src.output.manifest import begin_run
from src.runner import run_batch

ARGS = ["--count", "3000", "--seed", "11", "--end", "2026-03-01", "-q"]


def _lines(directory: Path) -> dict[str, list[bytes]]:
    return {t: (directory / file_name(t)).read_bytes().splitlines(keepends=True) for t in EVENT_TYPES}


def _whole(directory: Path) -> None:
    for event_type in EVENT_TYPES:
        data = (directory / file_name(event_type)).read_bytes()
        assert not data or data.endswith(b"\n"), event_type
        for line in data.splitlines():
            json.loads(line)


def _manifest_totals(directory: Path) -> dict[str, int]:
    return json.loads((directory / "manifest.json").read_text())["totals_in_files"]


class TestFolderLock:
    def test_a_second_lock_is_refused_naming_the_folder_and_the_pid(self, tmp_path: Path) -> None:
        """While one lock is held, another on the same folder raises FolderBusy with the holder's PID."""
        with FolderLock(tmp_path):
            assert (tmp_path / LOCK_NAME).read_text().strip() == str(os.getpid())
            with pytest.raises(FolderBusy, match=rf"{tmp_path}: another run \(PID {os.getpid()}\)"):
                FolderLock(tmp_path)
        assert not (tmp_path / LOCK_NAME).exists()
        FolderLock(tmp_path).release()  # free again

    def test_a_stale_lock_file_of_a_killed_run_does_not_block(self, tmp_path: Path) -> None:
        """The kernel drops a dead process's flock: a leftover lock file is taken over."""
        (tmp_path / LOCK_NAME).write_text("999999\n")
        lock = FolderLock(tmp_path)
        assert (tmp_path / LOCK_NAME).read_text().strip() == str(os.getpid())
        lock.release()

    def test_the_cli_refuses_a_busy_folder_before_touching_it(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A run into a locked folder: one line naming folder and PID, exit 2, the files unchanged."""
        assert main([*ARGS, "--output-dir", str(tmp_path)]) == 0
        search = tmp_path / file_name("search")
        search.write_bytes(search.read_bytes() + b'{"partial')
        before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
        with FolderLock(tmp_path):
            code = main(["--count", "3000", "--seed", "12", "-q", "--output-dir", str(tmp_path)])
            err = capsys.readouterr().err
        assert code == 2
        assert err.count("\n") == 1 and f"PID {os.getpid()}" in err and str(tmp_path) in err
        after = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
        assert after == before  # not even the partial line was repaired


class TestRepeatedRuns:
    def test_the_same_seeded_run_twice_is_refused(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        """Seed, settings and window already in the manifest: one line suggesting --overwrite or another seed."""
        assert main([*ARGS, "--output-dir", str(tmp_path)]) == 0
        before = _lines(tmp_path)
        capsys.readouterr()
        assert main([*ARGS, "--output-dir", str(tmp_path)]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "--overwrite" in err and "another --seed" in err
        assert _lines(tmp_path) == before

    def test_another_seed_is_a_new_run(self, tmp_path: Path) -> None:
        """Another seed appends; --overwrite may repeat a seed, since it replaces the files."""
        directory = ["--output-dir", str(tmp_path)]
        assert main([*ARGS, *directory]) == 0
        assert main([*ARGS[:3], "12", *ARGS[4:], *directory]) == 0
        assert sum(_manifest_totals(tmp_path).values()) == 6_000
        assert main([*ARGS, "--overwrite", *directory]) == 0

    @pytest.mark.parametrize(
        ("extra", "env"),
        [
            (["--count", "3001"], {}),  # the audit's 10,000 then 10,001: 6,566 search ids twice
            (["--days", "3"], {}),
            ([], {"CLICK_THROUGH_RATE": "0.30000001"}),
            (["--mode", "continuous", "--rate", "200", "--duration", "0.3"], {}),
        ],
        ids=["count", "window", "setting", "mode"],
    )
    def test_the_same_seed_with_other_settings_is_refused(
        self,
        tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str],
        extra: list[str],
        env: dict[str, str],
    ) -> None:
        """Event ids come from the seed: a seed already in the folder is refused whatever else changed."""
        assert main([*ARGS, "--output-dir", str(tmp_path)]) == 0
        before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
        capsys.readouterr()
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        args = [*ARGS, *extra] if "--mode" not in extra else ["--seed", "11", "-q", *extra]
        assert main([*args, "--output-dir", str(tmp_path)]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "seed 11" in err and "--overwrite" in err and "another --seed" in err, err
        assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before

    def test_a_seed_of_continuous_traffic_is_refused_whatever_the_window(self, tmp_path: Path) -> None:
        """Live runs with one seed repeat event ids whatever the wall-clock time: the second is refused."""
        live = ["--mode", "continuous", "--rate", "200", "--duration", "0.3", "--seed", "4", "-q"]
        assert main([*live, "--output-dir", str(tmp_path)]) == 0
        assert main([*live, "--output-dir", str(tmp_path)]) == 2
        assert main([*live[:-2], "5", "-q", "--output-dir", str(tmp_path)]) == 0

    def test_a_killed_run_is_listed_by_the_next_and_cannot_be_repeated(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A run that dies before its manifest: the next run lists its lines, and refuses its seed again."""
        assert main([*ARGS, "--output-dir", str(tmp_path)]) == 0
        settings = load_settings({"event_count": 5000, "seed": 21, "window_end": "2026-03-01", "output_dir": tmp_path})
        start, end = settings.window()
        publisher = FilePublisher(tmp_path)
        begin_run([publisher], settings, 21, ("2026-02-22T00:00:00Z", "2026-03-01T00:00:00Z"))
        run_batch(EventGenerator(settings, 21), [publisher], 5000, start, end)
        publisher._close_fds()  # what SIGKILL leaves: lines, a "running" note, no manifest entry
        publisher.lock.release()
        users, items = tmp_path / "users.jsonl", tmp_path / "items.jsonl"
        users_before, items_before = users.read_bytes(), items.read_bytes()
        users.write_bytes(users_before + b'{"user_id":"user_1"}\n{"user_id":"us')  # killed while writing its users
        items.write_bytes(items_before + b'{"seed":21,"type":"flight"}\n{"seed":21,"ty')  # or its items
        assert (
            main(["--count", "5000", "--seed", "21", "--end", "2026-03-01", "-q", "--output-dir", str(tmp_path)]) == 2
        )
        assert "already in these files" in capsys.readouterr().err
        assert (
            main(["--count", "1000", "--seed", "22", "--end", "2026-03-01", "-q", "--output-dir", str(tmp_path)]) == 0
        )
        manifest = json.loads((tmp_path / "manifest.json").read_text())
        assert {t: len(lines) for t, lines in _lines(tmp_path).items()} == manifest["totals_in_files"]
        assert [(run["seed"], run.get("killed", False)) for run in manifest["runs"]] == [
            (11, False),
            (21, True),
            (22, False),
        ]
        assert sum(manifest["runs"][1]["counts"].values()) == 5000
        assert "running" not in manifest
        # The killed run's users and items were cut off again (its entry says so); the next run's were appended whole.
        for key, path, before in (("users", users, users_before), ("items", items, items_before)):
            assert manifest["runs"][1][key]["lines"] == 0 and "killed" in manifest["runs"][1][key]["failed"]
            after = path.read_bytes()
            assert after.startswith(before) and after.endswith(b"\n")
            assert len(after[len(before) :].splitlines()) == manifest["runs"][2][key]["lines"] > 0
        assert {json.loads(line)["seed"] for line in items.read_bytes()[len(items_before) :].splitlines()} == {22}

    def test_a_killed_runs_impressions_are_cut_to_its_searches(self, tmp_path: Path) -> None:
        """Killed between a piece's impressions and its searches: the next run keeps a line per search line."""
        assert main([*ARGS, "--impressions", "--output-dir", str(tmp_path)]) == 0
        settings = load_settings(
            {"event_count": 3000, "seed": 21, "window_end": "2026-03-01", "output_dir": tmp_path, "impressions": True}
        )
        start, end = settings.window()
        publisher = FilePublisher(tmp_path, impressions=True)
        begin_run([publisher], settings, 21, ("2026-02-22T00:00:00Z", "2026-03-01T00:00:00Z"))
        run_batch(EventGenerator(settings, 21), [publisher], 3000, start, end)
        publisher._close_fds()
        publisher.lock.release()
        pages = tmp_path / "impressions.jsonl"
        # The kill came after the next piece's impressions, before its searches.
        pages.write_bytes(pages.read_bytes() + b'{"search_event_id":"x","result_ids":[]}\n{"search_event_id":"y"')
        assert main(["--count", "1000", "--seed", "22", "--end", "2026-03-01", "-q", "--impressions",
                     "--output-dir", str(tmp_path)]) == 0  # fmt: skip
        searches = [json.loads(line)["event_id"] for line in _lines(tmp_path)["search"]]
        assert [json.loads(line)["search_event_id"] for line in pages.read_bytes().splitlines()] == searches

    def test_impressions_stay_in_step_with_the_searches(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """Appending with --impressions to searches without them, or without it to a folder with them: exit 2.

        An --overwrite without --impressions removes the old file, whose lines would join the new searches.
        """
        assert main([*ARGS, "--output-dir", str(tmp_path)]) == 0
        more = ["--count", "1000", "--seed", "12", "--end", "2026-03-01", "-q", "--output-dir", str(tmp_path)]
        assert main([*more, "--impressions"]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "IMPRESSIONS=true" in err and "--overwrite" in err
        assert not (tmp_path / "impressions.jsonl").exists()
        assert main([*more, "--impressions", "--overwrite"]) == 0
        assert (tmp_path / "impressions.jsonl").exists()
        assert main([*more[:3], "13", *more[4:]]) == 2
        assert "IMPRESSIONS=false" in capsys.readouterr().err
        assert main([*more, "--overwrite"]) == 0
        assert not (tmp_path / "impressions.jsonl").exists()

    def test_impressions_do_not_change_the_events(self, tmp_path: Path) -> None:
        """The same seeded run writes the same event bytes with and without --impressions, and the same digest."""
        plain, shown = tmp_path / "plain", tmp_path / "shown"
        assert main([*ARGS, "--output-dir", str(plain)]) == 0
        assert main([*ARGS, "--impressions", "--output-dir", str(shown)]) == 0
        assert _lines(plain) == _lines(shown)
        digests = [json.loads((d / "manifest.json").read_text())["settings_digest"] for d in (plain, shown)]
        assert digests[0] == digests[1]

    def test_an_unreadable_manifest_is_not_appended_to(self, tmp_path: Path) -> None:
        """A manifest that does not parse: what the files hold is unknown, so appending is refused."""
        assert main([*ARGS, "--output-dir", str(tmp_path)]) == 0
        (tmp_path / "manifest.json").write_text("{not json")
        assert main(["--count", "100", "--seed", "3", "-q", "--output-dir", str(tmp_path)]) == 2


class _FailingWrites:
    """os.write for the files module that fails with ``code`` once ``budget`` bytes have been written."""

    def __init__(self, budget: int, code: int = errno.ENOSPC) -> None:
        self.budget, self.code = budget, code
        self.real = os.write

    def __call__(self, fd: int, data: memoryview) -> int:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            # A full disk fails files, not pipes: and os.write is the process's, which multiprocessing
            # binds for good when its connection module is first imported (here, if a run starts workers).
            return self.real(fd, data)
        if self.budget <= 0:
            raise OSError(self.code, os.strerror(self.code))
        take = min(len(data), self.budget, 1000)  # short writes too, ending mid-line
        self.budget -= take
        return self.real(fd, data[:take])


class TestWriteErrors:
    @pytest.mark.parametrize("code", [errno.ENOSPC, errno.EIO, errno.EACCES])
    def test_a_failed_write_ends_the_run_with_one_line_and_whole_lines(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], code: int
    ) -> None:
        """Mid-run: exit 1, one line naming the file and the error; files whole lines; manifest = files."""
        assert main([*ARGS, "--output-dir", str(tmp_path)]) == 0
        capsys.readouterr()
        monkeypatch.setattr(files.os, "write", _FailingWrites(5_000_000, code))
        assert main(["--count", "400000", "--seed", "2", "-q", "--output-dir", str(tmp_path)]) == 1
        err = capsys.readouterr().err
        assert err.count("\n") == 1, err
        assert "cannot write" in err and "_events.jsonl" in err and os.strerror(code) in err
        _whole(tmp_path)
        counts = {t: len(lines) for t, lines in _lines(tmp_path).items()}
        assert counts == _manifest_totals(tmp_path)
        assert sum(counts.values()) >= 3000

    def test_a_failed_write_leaves_one_impression_line_per_search_line(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """impressions.jsonl is cut back with the search lines: after a failed write, line i is search i's page."""
        assert main([*ARGS, "--impressions", "--output-dir", str(tmp_path)]) == 0
        monkeypatch.setattr(files.os, "write", _FailingWrites(5_000_000))
        assert main(["--count", "400000", "--seed", "2", "-q", "--impressions", "--output-dir", str(tmp_path)]) == 1
        assert "cannot write" in capsys.readouterr().err
        _whole(tmp_path)
        searches = [json.loads(line)["event_id"] for line in _lines(tmp_path)["search"]]
        pages = (tmp_path / "impressions.jsonl").read_bytes()
        assert pages.endswith(b"\n")
        assert [json.loads(line)["search_event_id"] for line in pages.splitlines()] == searches
        assert len(searches) > 2000

    def test_a_failed_overwrite_leaves_the_old_files(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """--overwrite writes new files and renames them at the end: a failed one keeps files and manifest."""
        assert main([*ARGS, "--output-dir", str(tmp_path)]) == 0
        before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
        monkeypatch.setattr(files.os, "write", _FailingWrites(2_000_000))
        assert main(["--count", "400000", "--seed", "2", "-q", "--overwrite", "--output-dir", str(tmp_path)]) == 1
        assert "the old files are left as they were" in capsys.readouterr().err
        assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before

    def test_a_manifest_that_cannot_be_written_takes_the_run_out_again(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """If manifest.json cannot be written, the appended lines go (answer keys' too): the old manifest is true."""
        assert main([*ARGS, "--output-dir", str(tmp_path)]) == 0
        before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
        assert {"users.jsonl", "items.jsonl"} <= set(before)

        real, calls = manifest.write_atomically, []

        def refuse(path: Path, data: bytes) -> None:
            calls.append(path)
            if len(calls) == 2:  # the first is the run's "running" note; the second its manifest
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            real(path, data)

        monkeypatch.setattr("src.output.manifest.write_atomically", refuse)
        assert main(["--count", "5000", "--seed", "9", "-q", "--output-dir", str(tmp_path)]) == 1
        assert "taken out of the files again" in capsys.readouterr().err
        after = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
        assert {k: v for k, v in after.items() if k != "manifest.json"} == {
            k: v for k, v in before.items() if k != "manifest.json"
        }
        old, new = (json.loads(d["manifest.json"]) for d in (before, after))
        assert new["runs"] == old["runs"] and new["totals_in_files"] == old["totals_in_files"]


class TestPublisher:
    def test_batches_are_written_to_the_three_files_a_slice_of_time_at_a_time(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """The files advance together: at every write, the types' last times are within a slice of each other."""
        settings = load_settings(
            {"event_count": 100_000, "seed": 3, "window_end": "2026-03-01", "output_dir": tmp_path}
        )
        publisher = FilePublisher(tmp_path)
        order: list[int] = []
        real = os.write
        fds = {fd: t for t, fd in publisher._fds.items()}

        def spy(fd: int, data: memoryview) -> int:
            if fd in fds:
                order.append(EVENT_TYPES.index(fds[fd]))
            return real(fd, data)

        monkeypatch.setattr(files.os, "write", spy)
        start, end = settings.window()
        run_batch(EventGenerator(settings, 3), [publisher], 100_000, start, end)
        publisher.close()
        # One batch of ~40 MB goes out in several rounds of search, click, conversion, not one file after another.
        assert order.count(0) >= 5 and order[:3] == [0, 1, 2]

    def test_a_long_trailing_piece_without_line_end_is_not_cut(self, tmp_path: Path) -> None:
        """A file that ends in megabytes without a newline is not ours to repair: refused, left alone."""
        search = tmp_path / file_name("search")
        search.write_bytes(b"x" * (2 << 20))
        with pytest.raises(FolderUnusable, match="without a line end"):
            FilePublisher(tmp_path)
        assert search.stat().st_size == 2 << 20
        assert not (tmp_path / LOCK_NAME).exists()

    def test_live_overwrite_empties_the_files_only_at_the_first_write(self, tmp_path: Path) -> None:
        """Without replace_at_end, --overwrite keeps the old lines until the run has its first batch."""
        (tmp_path / file_name("search")).write_text('{"old": 1}\n')
        publisher = FilePublisher(tmp_path, overwrite=True, replace_at_end=False)
        assert (tmp_path / file_name("search")).read_text() == '{"old": 1}\n'
        publisher.discard()
        assert (tmp_path / file_name("search")).read_text() == '{"old": 1}\n'

    def test_a_staged_file_left_by_a_killed_overwrite_is_removed(self, tmp_path: Path) -> None:
        """<file>.new of a killed --overwrite run is dropped by the next run."""
        (tmp_path / (file_name("search") + ".new")).write_text("half")
        FilePublisher(tmp_path).close()
        assert not (tmp_path / (file_name("search") + ".new")).exists()

    def test_write_failed_names_the_file_and_the_error(self) -> None:
        """The message is one line: file, reason, errno name."""
        message = str(WriteFailed(Path("/x/search_events.jsonl"), OSError(errno.ENOSPC, "No space left on device")))
        assert message == "cannot write /x/search_events.jsonl: No space left on device (ENOSPC)"
