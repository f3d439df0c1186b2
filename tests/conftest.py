"""Shared fixtures: a clean environment, a CLI runner, and seeded samples of generated events."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl
import pytest
import redis

from src import __version__
from src.config import Settings, load_settings
from src.generator import EventGenerator
from src.models import EVENT_TYPES, file_name
from src.publishers import FilePublisher
from src.runner import run_batch

from .closure import closure, link, wheel_requirements

ROOT = Path(__file__).resolve().parent.parent
SETTING_VARIABLES = [
    *(name.upper() for name in Settings.model_fields),
    *(f"SEARCHFLOW_{name.upper()}" for name in Settings.model_fields),
    "SEARCHFLOW_CONFIG",
]


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No setting leaks in from the machine running the tests."""
    for name in SETTING_VARIABLES:
        monkeypatch.delenv(name, raising=False)


@dataclass
class CliResult:
    returncode: int
    stdout: str
    stderr: str


def run_cli(*args: str, env: dict[str, str] | None = None, cwd: Path = ROOT, timeout: float = 120) -> CliResult:
    """Run ``python -m src.main`` as a user would, with only the given settings in the environment."""
    base = {k: v for k, v in os.environ.items() if k not in SETTING_VARIABLES}
    proc = subprocess.run(
        [sys.executable, "-m", "src.main", *args],
        cwd=cwd,
        env={**base, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    return CliResult(proc.returncode, proc.stdout, proc.stderr)


def start_cli(*args: str, env: dict[str, str] | None = None, **popen: Any) -> subprocess.Popen[str]:
    """Start `python -m src.main` in the background with only the given settings."""
    base = {k: v for k, v in os.environ.items() if k not in SETTING_VARIABLES}
    return subprocess.Popen(
        [sys.executable, "-m", "src.main", *args],
        cwd=ROOT,
        env={**base, **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **popen,
    )


@dataclass
class Sample:
    """A generated run read back: one DataFrame per event type, plus the settings that made it."""

    directory: Path
    settings: Settings
    search: pl.DataFrame
    click: pl.DataFrame
    conversion: pl.DataFrame

    def lines(self, event_type: str) -> list[str]:
        return (self.directory / file_name(event_type)).read_text(encoding="utf-8").splitlines()


def generate(directory: Path, count: int, seed: int, **overrides: object) -> Sample:
    """Generate ``count`` events with the library and read them back (ignoring the environment)."""
    with pytest.MonkeyPatch.context() as patch:
        for name in SETTING_VARIABLES:
            patch.delenv(name, raising=False)
        settings = _settings(directory, count, seed, overrides)
    start, end = settings.window()
    publisher = FilePublisher(directory, overwrite=True, impressions=settings.impressions)
    run_batch(EventGenerator(settings, seed), [publisher], count, start, end)
    publisher.close()
    frames = {t: pl.read_ndjson(directory / file_name(t), infer_schema_length=None) for t in EVENT_TYPES}
    return Sample(directory, settings, **frames)


def _settings(directory: Path, count: int, seed: int, overrides: dict[str, object]) -> Settings:
    return load_settings(
        {
            "output_dir": directory,
            "event_count": count,
            "seed": seed,
            "window_end": "2026-03-02T00:00:00Z",
            "overwrite": True,
            **overrides,
        }
    )


def pytest_addoption(parser: pytest.Parser) -> None:
    """Options to measure the ``million`` sample's checks on another seed, count or window."""
    group = parser.getgroup("searchflow")
    group.addoption("--sample-seed", type=int, default=20261129, help="seed of the million sample")
    group.addoption("--sample-count", type=int, default=1_000_000, help="events of the million sample")
    group.addoption("--sample-days", type=float, default=7.0, help="days of the million sample's window")


@pytest.fixture(scope="session")
def million(tmp_path_factory: pytest.TempPathFactory, pytestconfig: pytest.Config) -> Sample:
    """One million events with default settings over the 7 days before 2026-03-02 (seed 20261129).

    Large enough that sampling error on the funnel rates is about 0.05 percentage points.
    With ``impressions.jsonl``, the pages the searches showed. ``--sample-seed``,
    ``--sample-count`` and ``--sample-days`` run the same checks on another sample, e.g.
    ``pytest tests/test_world.py --sample-seed 3 --sample-count 5000000 --sample-days 28``.
    """
    return generate(
        tmp_path_factory.mktemp("million"),
        pytestconfig.getoption("sample_count"),
        pytestconfig.getoption("sample_seed"),
        impressions=True,
        window_days=pytestconfig.getoption("sample_days"),
    )


@pytest.fixture(scope="session")
def small(tmp_path_factory: pytest.TempPathFactory) -> Sample:
    """Twenty thousand events, for checks that read every line."""
    return generate(tmp_path_factory.mktemp("small"), 20_000, 5)


class RedisServer:
    """A redis-server of the test's own on a free port, stopped (or killed) by its PID."""

    def __init__(self, directory: Path, *extra: str) -> None:
        self.directory = directory
        self.extra = extra
        self.port = _free_port()
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        if shutil.which("redis-server") is None:
            pytest.skip("redis-server is not installed (.ci/run installs it)")
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--dir",
             str(self.directory), "--logfile", str(self.directory / "redis.log"), *self.extra],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                if self.client().ping():
                    return
            except redis.exceptions.AuthenticationError:
                return  # up, and asking for its password
            except (redis.exceptions.BusyLoadingError, redis.exceptions.ConnectionError):
                pass
            time.sleep(0.05)
        raise RuntimeError(f"redis-server on port {self.port} did not start")

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port, socket_timeout=5)

    def kill(self) -> None:
        """SIGKILL, as a crash would."""
        assert self.process is not None
        self.process.kill()
        self.process.wait()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A fresh redis-server for one test."""
    server = RedisServer(tmp_path)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def durable_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A redis-server that writes every command to its append-only file before answering."""
    server = RedisServer(tmp_path, "--appendonly", "yes", "--appendfsync", "always")
    server.start()
    yield server
    server.stop()


# The run: one million events over 28 days, seed 1 (ending at a fixed hour, so it repeats).
RUN = ["--count", "1000000", "--days", "28", "--end", "2026-11-29", "--seed", "1", "--overwrite"]


@pytest.fixture(scope="session")
def reported(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """1,000,000 events over 28 days (seed 1), with their manifest, and the report on them.

    A 95 % interval misses its target for one seed in twenty; this run is the one the issue names.
    """
    directory = tmp_path_factory.mktemp("reported")
    result = run_cli(*RUN, env={"OUTPUT_DIR": str(directory)})
    assert result.returncode == 0, result.stderr
    report = run_cli("report", "--input", str(directory))
    assert report.returncode == 0, report.stderr
    assert "integrity: all checks 0" in report.stderr
    return directory, json.loads((directory / "report.json").read_text())


def run_outside(
    args: list[str], cwd: Path, timeout: float = 300, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run a command as on a user's machine: none of the settings' variables, no PYTHONPATH unless ``env`` sets one."""
    base = {k: v for k, v in os.environ.items() if k not in SETTING_VARIABLES and not k.startswith("SEARCHFLOW_")}
    base.pop("PYTHONPATH", None)
    return subprocess.run(args, cwd=cwd, env={**base, **(env or {})}, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="session")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel `pip install .` builds from the checkout; the build leaves no build/ or egg-info in it."""
    wheels = tmp_path_factory.mktemp("wheels")
    leftovers = ("build", "searchflow_event_generator.egg-info")
    before = {name for name in leftovers if (ROOT / name).exists()}
    built = run_outside(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(wheels), str(ROOT)], wheels
    )
    assert built.returncode == 0, built.stderr[-2000:]
    assert {name for name in leftovers if (ROOT / name).exists()} == before
    (path,) = wheels.glob("searchflow_event_generator-*.whl")
    assert path.name.startswith(f"searchflow_event_generator-{__version__}-")
    return path


def install_wheel(wheel: Path, venv: Path, dependencies: Path) -> Path:
    """A fresh venv with only the wheel installed and ``dependencies`` (a folder of links) on its path; its bin."""
    made = run_outside([sys.executable, "-m", "venv", "--without-pip", str(venv)], venv.parent)
    assert made.returncode == 0, made.stderr
    python = venv / "bin" / "python"
    site = Path(
        run_outside(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], venv.parent
        ).stdout.strip()
    )
    before = {p.name for p in site.iterdir()}
    # The package only from the wheel; its dependencies are the links, so nothing is downloaded.
    pip = [sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet", "--no-deps", str(wheel)]
    installed = run_outside(pip, venv.parent)
    assert installed.returncode == 0, installed.stderr[-2000:]
    added = {p.name for p in site.iterdir()} - before
    assert added == {"src", wheel.name.split("-py3")[0] + ".dist-info"}, added
    (site / "dependencies.pth").write_text(f"{dependencies}\n")
    assert (site / "src" / "data" / "cities.csv.gz").is_file()
    return venv / "bin"


@pytest.fixture(scope="session")
def installed(tmp_path_factory: pytest.TempPathFactory, wheel: Path) -> Path:
    """A fresh venv with the wheel and only what it declares (and what that needs), from this environment; its bin.

    Not the [report] extra: see ``report_extra``.
    """
    base = tmp_path_factory.mktemp("install")
    link(closure(wheel_requirements(wheel)).values(), base / "dependencies")
    return install_wheel(wheel, base / "venv", base / "dependencies")


@pytest.fixture(scope="session")
def report_extra(tmp_path_factory: pytest.TempPathFactory, wheel: Path) -> Path:
    """A folder of links to what the wheel's [report] extra adds to its dependencies, for PYTHONPATH."""
    requirements = wheel_requirements(wheel)
    base = closure(requirements)
    added = {name: d for name, d in closure(requirements, ["report"]).items() if name not in base}
    assert {"duckdb", "matplotlib"} <= set(added), set(added)
    directory = tmp_path_factory.mktemp("report-extra")
    link(added.values(), directory)
    return directory
