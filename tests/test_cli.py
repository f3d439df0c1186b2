"""The command line as a user runs it: the seed's commands, errors, help, output choices."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from src.models import EVENT_TYPES, file_name

from .conftest import ROOT, run_cli


def _line_counts(directory: Path) -> dict[str, int]:
    return {t: len((directory / file_name(t)).read_bytes().splitlines()) for t in EVENT_TYPES}


def _bytes(directory: Path) -> dict[str, bytes]:
    return {t: (directory / file_name(t)).read_bytes() for t in EVENT_TYPES}


class TestBatch:
    def test_count_writes_exactly_that_many_events_and_repeats_byte_for_byte(self, tmp_path: Path) -> None:
        """`--count 10000 --seed 7` into an empty directory: 10,000 lines; again elsewhere: the same bytes."""
        first, second = tmp_path / "a", tmp_path / "b"
        for directory in (first, second):
            result = run_cli("--count", "10000", "--seed", "7", env={"OUTPUT_DIR": str(directory)})
            assert result.returncode == 0, result.stderr
        assert sum(_line_counts(first).values()) == 10_000
        assert all(n > 0 for n in _line_counts(first).values())
        assert _bytes(first) == _bytes(second)
        assert "seed 7" in result.stderr and "10,000" in result.stderr

    def test_without_seed_a_random_seed_is_printed_and_repeats_the_run(self, tmp_path: Path) -> None:
        """The summary names the seed it chose; passing it back gives the same bytes."""
        first = run_cli("--count", "2000", "--end", "2026-01-01", env={"OUTPUT_DIR": str(tmp_path / "a")})
        seed = first.stderr.split("--seed ")[1].split(")")[0]
        run_cli("--count", "2000", "--end", "2026-01-01", "--seed", seed, env={"OUTPUT_DIR": str(tmp_path / "b")})
        assert _bytes(tmp_path / "a") == _bytes(tmp_path / "b")

    def test_different_seeds_give_different_events(self, tmp_path: Path) -> None:
        """Seeds 1 and 2 differ."""
        for seed in ("1", "2"):
            run_cli("--count", "500", "--seed", seed, "--end", "2026-01-01", env={"OUTPUT_DIR": str(tmp_path / seed)})
        assert _bytes(tmp_path / "1") != _bytes(tmp_path / "2")

    def test_mode_aliases_of_the_platform_scripts(self, tmp_path: Path) -> None:
        """`--mode once --count N --output file` and `--mode burst` are batch mode."""
        for mode in ("once", "burst"):
            result = run_cli("--mode", mode, "--count", "300", "--output", "file", "--overwrite",
                             env={"OUTPUT_DIR": str(tmp_path)})  # fmt: skip
            assert result.returncode == 0, result.stderr
            assert sum(_line_counts(tmp_path).values()) == 300

    def test_files_are_appended_to_unless_overwrite(self, tmp_path: Path) -> None:
        """A second run adds its events; --overwrite starts afresh."""
        env = {"OUTPUT_DIR": str(tmp_path)}
        run_cli("--count", "1000", "--seed", "1", env=env)
        run_cli("--count", "1000", "--seed", "2", env=env)
        assert sum(_line_counts(tmp_path).values()) == 2000
        run_cli("--count", "1000", "--seed", "3", "--overwrite", env=env)
        assert sum(_line_counts(tmp_path).values()) == 1000

    def test_a_partial_last_line_is_repaired_before_appending(self, tmp_path: Path) -> None:
        """A file cut mid-line by a killed run gets the fragment removed, then the new lines."""
        env = {"OUTPUT_DIR": str(tmp_path)}
        run_cli("--count", "1000", "--seed", "1", env=env)
        search = tmp_path / file_name("search")
        search.write_bytes(search.read_bytes() + b'{"event_id":"trunc')
        result = run_cli("--count", "1000", "--seed", "2", env=env)
        assert "repaired" in result.stderr
        for event_type in EVENT_TYPES:
            for line in (tmp_path / file_name(event_type)).read_text().splitlines():
                json.loads(line)
        assert sum(_line_counts(tmp_path).values()) == 2000

    def test_window_flags(self, tmp_path: Path) -> None:
        """--start/--end bound every timestamp; --days sets the length."""
        result = run_cli("--count", "3000", "--start", "2025-12-24", "--days", "2", env={"OUTPUT_DIR": str(tmp_path)})
        assert result.returncode == 0, result.stderr
        stamps = [json.loads(line)["timestamp"] for line in (tmp_path / file_name("search")).read_text().splitlines()]
        assert min(stamps) >= "2025-12-24T00:00:00.000Z"
        assert max(stamps) < "2025-12-26T00:00:00.000Z"

    def test_flag_wins_over_environment_which_wins_over_default(self, tmp_path: Path) -> None:
        """EVENT_COUNT sets the count; --count overrides it."""
        env = {"OUTPUT_DIR": str(tmp_path), "EVENT_COUNT": "700", "SEED": "4"}
        run_cli("--overwrite", env=env)
        assert sum(_line_counts(tmp_path).values()) == 700
        run_cli("--overwrite", "--count", "400", env=env)
        assert sum(_line_counts(tmp_path).values()) == 400

    def test_rate_paces_a_batch(self, tmp_path: Path) -> None:
        """`--count 300 --rate 200` takes about 1.5 s of wall time, not a few milliseconds."""
        result = run_cli("--count", "300", "--rate", "200", "--seed", "1", env={"OUTPUT_DIR": str(tmp_path)})
        elapsed = float(result.stderr.split(" s, ")[0].split(" in ")[-1])
        assert 1.3 <= elapsed <= 3.0


class TestOutputs:
    def test_stdout_prints_json_lines_in_time_order(self) -> None:
        """`--output stdout --count 100`: 100 JSON lines on stdout, in time order, nothing else."""
        result = run_cli("--output", "stdout", "--count", "100", "--seed", "1", "--quiet")
        lines = result.stdout.splitlines()
        assert len(lines) == 100
        stamps = [json.loads(line)["timestamp"] for line in lines]
        assert stamps == sorted(stamps)
        assert result.stderr == ""

    def test_console_is_an_alias_of_stdout(self) -> None:
        """The original platform's `--output console` works."""
        assert len(run_cli("--output", "console", "--count", "20", "-q").stdout.splitlines()) == 20

    @pytest.mark.parametrize(
        "args",
        [
            "--output stdout --count 100",
            "--output stdout --count 1000000",  # many batches: the pipe closes while more are written
            "--mode continuous --rate 1000 --duration 3 --output stdout",
        ],
    )
    def test_stdout_into_head_ends_quietly(self, args: str) -> None:
        """`... | head -3` prints three lines; the generator exits 0 without a traceback or a summary."""
        shell = f"set -o pipefail; {sys.executable} -m src.main {args} | head -3"
        proc = subprocess.run(["bash", "-c", shell], cwd=ROOT, capture_output=True, text=True, timeout=60)
        assert len(proc.stdout.splitlines()) == 3
        assert proc.returncode == 0, proc.stderr
        assert "Traceback" not in proc.stderr


class TestErrors:
    @pytest.mark.parametrize(
        ("args", "env", "names"),
        [
            (["--count", "-5"], {}, "--count=-5"),
            (["--count", "many"], {}, "--count=many"),
            ([], {"CLICK_THROUGH_RATE": "1.5"}, "CLICK_THROUGH_RATE=1.5"),
            ([], {"CONVERSION_RATE": "-0.1"}, "CONVERSION_RATE=-0.1"),
            ([], {"ANONYMOUS_RATE": "lots"}, "ANONYMOUS_RATE=lots"),
            ([], {"USER_POOL_SIZE": "0"}, "USER_POOL_SIZE=0"),
            ([], {"EVENTS_PER_SECOND": "0"}, "EVENTS_PER_SECOND=0"),
            ([], {"REDIS_PORT": "70000"}, "REDIS_PORT=70000"),
            (["--start", "2026-02-01", "--end", "2026-01-01"], {}, "--start=2026-02-01"),
            (["--start", "yesterday"], {}, "--start=yesterday"),
            (["--mode", "sometimes"], {}, "--mode=sometimes"),
            (["--output", "kafka"], {}, "--output=kafka"),
            (["--rate", "-3"], {}, "--rate=-3"),
            ([], {"MARKETS": "US,XX"}, "MARKETS=US,XX"),
            ([], {"PRODUCT_SHARES": "flight=1,boat=2"}, "PRODUCT_SHARES=flight=1,boat=2"),
            (["--no-such-flag"], {}, "--no-such-flag"),
        ],
    )
    def test_bad_input_is_one_line_naming_the_setting_and_exit_2(
        self, tmp_path: Path, args: list[str], env: dict[str, str], names: str
    ) -> None:
        """Bad values stop the run before any output: one line on stderr, status 2, no file."""
        output = tmp_path / "out"
        result = run_cli(*args, env={"OUTPUT_DIR": str(output), **env})
        assert result.returncode == 2
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
        assert names in result.stderr
        assert "Traceback" not in result.stderr
        assert not output.exists()

    def test_unwritable_output_dir(self, tmp_path: Path) -> None:
        """OUTPUT_DIR under a file, or on a read-only file system: one line, status 2, nothing created."""
        blocker = tmp_path / "file"
        blocker.write_text("x")
        for bad in (blocker / "raw", Path("/proc/searchflow")):
            result = run_cli("--count", "10", env={"OUTPUT_DIR": str(bad)})
            assert result.returncode == 2
            assert len(result.stderr.strip().splitlines()) == 1
            assert f"OUTPUT_DIR={bad}" in result.stderr
        assert blocker.read_text() == "x"
        assert list(tmp_path.iterdir()) == [blocker]

    def test_existing_files_are_untouched_by_a_bad_run(self, tmp_path: Path) -> None:
        """A run that fails validation changes nothing in OUTPUT_DIR."""
        env = {"OUTPUT_DIR": str(tmp_path)}
        run_cli("--count", "100", "--seed", "1", env=env)
        before = _bytes(tmp_path)
        assert run_cli("--count", "100", "--overwrite", env={**env, "CONVERSION_RATE": "2"}).returncode == 2
        assert _bytes(tmp_path) == before


class TestHelp:
    def test_help_lists_every_flag_with_examples(self) -> None:
        """--help shows each flag and an Examples section."""
        result = run_cli("--help")
        assert result.returncode == 0
        for flag in ("--count", "--rate", "--mode", "--output", "--output-dir", "--seed", "--start", "--end",
                     "--days", "--overwrite", "--quiet"):  # fmt: skip
            assert flag in result.stdout
        assert "Examples:" in result.stdout
        assert "python -m src.main --count 10000" in result.stdout


class TestConventions:
    def test_version(self) -> None:
        """--version prints the package's version and exits 0."""
        from src import __version__

        result = run_cli("--version")
        assert result.returncode == 0
        assert result.stdout.strip() == f"searchflow-events {__version__}"

    def test_summary_json_is_one_object_on_stdout(self, tmp_path: Path) -> None:
        """--summary-json: one JSON object on stdout with the run's counts and files; the human summary on stderr."""
        result = run_cli("--count", "2000", "--seed", "4", "--end", "2026-01-01", "--summary-json",
                         env={"OUTPUT_DIR": str(tmp_path)})  # fmt: skip
        assert result.returncode == 0, result.stderr
        assert len(result.stdout.splitlines()) == 1
        summary = json.loads(result.stdout)
        assert summary["total"] == 2000 == sum(summary["counts"].values()) == sum(_line_counts(tmp_path).values())
        assert summary["seed"] == 4 and summary["window_end"] == "2026-01-01T00:00:00Z"
        assert summary["files"]["search"] == str(tmp_path / "search_events.jsonl")
        assert summary["manifest"] == str(tmp_path / "manifest.json") and summary["failure"] is None
        assert "wrote 2,000 events" in result.stderr

    def test_summary_json_with_quiet_prints_only_the_object(self, tmp_path: Path) -> None:
        """-q keeps stderr empty; the JSON still comes."""
        result = run_cli("--count", "100", "-q", "--summary-json", env={"OUTPUT_DIR": str(tmp_path)})
        assert result.stderr == ""
        assert json.loads(result.stdout)["total"] == 100

    @pytest.mark.parametrize(
        ("args", "names"),
        [
            (["--summary-json", "--output", "stdout"], "--summary-json: standard output carries the events"),
            (["--duration", "5"], "--duration=5: applies to continuous mode only"),
            (["--mode", "continuous", "--count", "5"], "--count=5: applies to batch mode only"),
            (["--mode", "continuous", "--end", "2026-01-01"], "--end=2026-01-01: applies to batch mode only"),
            (["--mode", "continuous", "--workers", "2"], "--workers=2: applies to batch mode only"),
            (["--mode", "continuous", "--days", "2"], "--days=2: applies to batch mode only"),
            (["--count", "5", "report"], "--count: given before the 'report' command"),
            (["--seed", "1", "generate"], "--seed: given before the 'generate' command"),
            (["--config", "/no/such.toml"], "--config=/no/such.toml: no such file"),
            (["report", "--config", "/no/such.toml"], "--config=/no/such.toml: no such file"),
            (["--summary-json=yes"], "--summary-json"),
        ],
    )
    def test_a_flag_that_does_not_apply_or_a_bad_new_flag_is_one_line_and_exit_2(
        self, tmp_path: Path, args: list[str], names: str
    ) -> None:
        """Never silently ignored: one line naming the flag, status 2, nothing written."""
        output = tmp_path / "out"
        result = run_cli(*args, env={"OUTPUT_DIR": str(output)})
        assert result.returncode == 2, result.stderr
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
        assert names in result.stderr
        assert not output.exists()

    def test_continuous_mode_from_the_environment_also_rejects_count(self, tmp_path: Path) -> None:
        """The rule reads the mode the run will have, wherever it was set."""
        result = run_cli("--count", "5", env={"OUTPUT_DIR": str(tmp_path), "SEARCHFLOW_MODE": "continuous"})
        assert result.returncode == 2
        assert "--count=5: applies to batch mode only" in result.stderr

    def test_file_flags_with_an_output_that_writes_no_files_warn(self, tmp_path: Path) -> None:
        """--output-dir with --output stdout: a warning on stderr, the events on stdout, no folder made."""
        result = run_cli("--output", "stdout", "--count", "20", "--output-dir", str(tmp_path / "x"), "-q")
        assert result.returncode == 0
        assert len(result.stdout.splitlines()) == 20
        assert result.stderr.startswith(
            f"warning: --output-dir={tmp_path / 'x'}: ignored, output stdout writes no files"
        )
        assert not (tmp_path / "x").exists()

    def test_generate_subcommand_is_the_bare_command(self, tmp_path: Path) -> None:
        """`generate --count N` writes the bytes `--count N` writes."""
        for directory, head in ((tmp_path / "a", ["generate"]), (tmp_path / "b", [])):
            result = run_cli(*head, "--count", "800", "--seed", "9", "--end", "2026-01-01", "-q",
                             env={"OUTPUT_DIR": str(directory)})  # fmt: skip
            assert result.returncode == 0, result.stderr
        assert _bytes(tmp_path / "a") == _bytes(tmp_path / "b")

    def test_help_shows_the_real_defaults(self) -> None:
        """Each `[VARIABLE, default]` in --help is the settings object's default; --rate does not claim 10 for batch."""
        from src.config import Settings

        text = " ".join(run_cli("--help").stdout.split())
        hints = re.findall(r"\[([A-Z_]+), ([^\]]+)\]", text)
        assert {name for name, _ in hints} >= {"EVENT_COUNT", "BATCH_RATE", "EVENTS_PER_SECOND", "MODE", "OUTPUT_DIR"}
        for name, shown in hints:
            default = Settings.model_fields[name.lower()].default
            if default is None:
                assert shown in ("unset", "random", "end - days", "this hour", "until Ctrl-C", "all cores"), (
                    name,
                    shown,
                )
            elif isinstance(default, float):
                assert float(shown) == default, name
            else:
                assert shown == str(default), name
        rate = text.split("--rate R")[1].split("--mode")[0]
        assert "[BATCH_RATE, unset]" in rate and "as fast as it can" in rate
        assert "[EVENTS_PER_SECOND, 10]" in rate.split("Continuous")[1]

    def test_report_help_and_generate_help(self) -> None:
        """Both commands have help with their own flags."""
        report = run_cli("report", "--help").stdout
        assert "--json FILE" in report and "--out FILE" in report
        generate = run_cli("generate", "--help").stdout
        assert "--count N" in generate and "--summary-json" in generate
