"""The package as a user installs it: a wheel built from the sources, installed in a fresh venv, run elsewhere."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from src import __version__

from .conftest import ROOT
from .conftest import run_outside as _run

pytestmark = pytest.mark.install


def test_the_command_runs_from_another_folder_and_writes_what_the_checkout_writes(
    installed: Path, tmp_path: Path
) -> None:
    """`searchflow-events` outside the checkout: the same bytes as `python -m src.main` in it, and a manifest."""
    args = ["--count", "3000", "--seed", "3", "--end", "2026-01-01", "--summary-json"]
    run = _run([str(installed / "searchflow-events"), *args, "--output-dir", "out"], tmp_path)
    assert run.returncode == 0, run.stderr
    summary = json.loads(run.stdout)
    assert summary["total"] == 3000 and summary["manifest"].endswith("manifest.json")
    here = _run([sys.executable, "-m", "src.main", *args, "--output-dir", str(tmp_path / "checkout")], ROOT)
    assert here.returncode == 0, here.stderr
    for name in ("search_events.jsonl", "click_events.jsonl", "conversion_events.jsonl"):
        assert (tmp_path / "out" / name).read_bytes() == (tmp_path / "checkout" / name).read_bytes(), name
    assert (tmp_path / "out" / "manifest.json").is_file()


def test_version_and_report_from_the_installed_command(installed: Path, tmp_path: Path) -> None:
    """`--version` names the package's version; `report` runs against the installed package's data."""
    version = _run([str(installed / "searchflow-events"), "--version"], tmp_path)
    assert version.stdout.strip() == f"searchflow-events {__version__}"
    _run(
        [str(installed / "searchflow-events"), "--count", "2000", "--seed", "1", "--output-dir", "out", "-q"], tmp_path
    )
    report = _run(
        [str(installed / "searchflow-events"), "report", "--input", "out", "--out", "new/page.html"], tmp_path
    )
    assert report.returncode == 0, report.stderr
    assert (tmp_path / "new" / "page.html").is_file() and (tmp_path / "new" / "page.json").is_file()
