"""The package as a user installs it: a wheel built from the sources, installed in a fresh venv, run elsewhere."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from src import __version__

from .conftest import ROOT, SETTING_VARIABLES

pytestmark = pytest.mark.install

# What a wheel is built from; copied to a temporary folder, so the checkout is left without build/ or egg-info.
SOURCES = ("pyproject.toml", "README.md", "src")


def _run(args: list[str], cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in SETTING_VARIABLES and not k.startswith("SEARCHFLOW_")}
    env.pop("PYTHONPATH", None)
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv with the wheel installed (its dependencies taken from this environment); its bin folder."""
    base = tmp_path_factory.mktemp("install")
    tree, wheels, venv = base / "tree", base / "wheels", base / "venv"
    tree.mkdir()
    for name in SOURCES:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, tree / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy(source, tree / name)
    built = _run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(wheels), str(tree)], base)
    assert built.returncode == 0, built.stderr[-2000:]
    (wheel,) = wheels.glob("searchflow_event_generator-*.whl")
    assert wheel.name.startswith(f"searchflow_event_generator-{__version__}-")
    made = _run([sys.executable, "-m", "venv", "--without-pip", str(venv)], base)
    assert made.returncode == 0, made.stderr
    python = venv / "bin" / "python"
    site = Path(
        _run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], base).stdout.strip()
    )
    before = {p.name for p in site.iterdir()}
    # The dependencies come from this environment (no download); the package itself only from the wheel.
    installed = _run([sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet", "--no-deps",
                      str(wheel)], base)  # fmt: skip
    assert installed.returncode == 0, installed.stderr[-2000:]
    added = {p.name for p in site.iterdir()} - before
    assert added == {"src", wheel.name.split("-py3")[0] + ".dist-info"}, added
    (site / "dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    assert (site / "src" / "data" / "cities.csv.gz").is_file()
    return venv / "bin"


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
