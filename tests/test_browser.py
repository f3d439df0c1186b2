"""The report as a browser shows it: headless Chromium renders the page, takes a screenshot, and finds
no console error and no chart without a size."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from PIL import Image

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]  # fmt: skip


def _chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    if CHROMIUM is None:
        pytest.skip("chromium is not installed (.ci/run installs Debian's chromium)")
    profile = tmp_path / "profile"
    return subprocess.run(
        [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *args], capture_output=True, text=True, timeout=120
    )


def test_report_renders_in_chromium_without_errors(reported: tuple[Path, dict], tmp_path: Path) -> None:
    """Every chart has a size, nothing logged an error, and the screenshot is a page, not a blank."""
    directory, _ = reported
    page = (directory / "report.html").as_uri()
    dom = _chromium(tmp_path, "--dump-dom", page).stdout
    body = re.search(r"<body[^>]*>", dom)
    assert body, dom[:500]
    rendered = re.search(r'data-charts-rendered="(\d+)"', body.group(0))
    errors = re.search(r'data-console-errors="([^"]*)"', body.group(0))
    assert rendered and errors, body.group(0)
    assert int(rendered.group(1)) == dom.count('<figure class="chart"') >= 10
    assert errors.group(1) == "[]"

    shot = tmp_path / "report.png"
    _chromium(tmp_path, "--window-size=1100,3000", f"--screenshot={shot}", page)
    image = Image.open(shot).convert("L")
    assert image.size == (1100, 3000)
    low, high = image.getextrema()
    assert high - low > 100  # text and bars on a light page
    colours = len(image.resize((220, 600)).getcolors(256) or [])  # grey levels in use, at most 256
    assert colours > 20
