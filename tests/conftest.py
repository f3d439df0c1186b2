"""Shared fixtures: a clean environment, a CLI runner, and seeded samples of generated events."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import pytest

from src.config import Settings, load_settings
from src.generator import EventGenerator
from src.models import EVENT_TYPES, file_name
from src.publishers import FilePublisher
from src.runner import run_batch

ROOT = Path(__file__).resolve().parent.parent
SETTING_VARIABLES = [name.upper() for name in Settings.model_fields]


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
    publisher = FilePublisher(directory, overwrite=True)
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


@pytest.fixture(scope="session")
def million(tmp_path_factory: pytest.TempPathFactory) -> Sample:
    """One million events with default settings over the 7 days before 2026-03-02 (seed 20261129).

    Large enough that sampling error on the funnel rates is about 0.05 percentage points.
    """
    return generate(tmp_path_factory.mktemp("million"), 1_000_000, 20261129)


@pytest.fixture(scope="session")
def small(tmp_path_factory: pytest.TempPathFactory) -> Sample:
    """Twenty thousand events, for checks that read every line."""
    return generate(tmp_path_factory.mktemp("small"), 20_000, 5)
