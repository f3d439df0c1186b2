"""The report as a browser shows it: headless Chromium renders the page at a desktop width and at a phone's,
takes a screenshot of each, and finds no console error, no chart without a size and no page wider than the window."""

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
HEIGHT = 3000


def _chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    if CHROMIUM is None:
        pytest.skip("chromium is not installed (.ci/run installs Debian's chromium)")
    profile = tmp_path / "profile"
    return subprocess.run(
        [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *args], capture_output=True, text=True, timeout=120
    )


# Chromium's windows are at least 500 px wide, so the page is shown in a frame exactly as wide as the
# device; the frame's own viewport is what its layout and media queries see. The wrapper copies the
# data-* attributes the page's script sets on its body onto its own, where --dump-dom shows them, and adds
# the number of chart legends and the charts whose legend lies over their axes' area (it may hide data).
WRAPPER = """<!DOCTYPE html><html><head><meta charset="utf-8"><style>body{{margin:0}}
iframe{{border:0;width:{width}px;height:{height}px;display:block}}</style></head><body>
<iframe id="page" src="{page}"></iframe><script>window.addEventListener('load',function(){{
var d=document.getElementById('page').contentDocument,b=d.body;for(var i=0;i<b.attributes.length;i++){{
var a=b.attributes[i];if(a.name.indexOf('data-')===0){{document.body.setAttribute(a.name,a.value);}}}}
var legends=0,inside=[];d.querySelectorAll('figure.chart').forEach(function(f){{
var l=f.querySelector('g[id=legend_1]'),p=f.querySelector('g[id=axes_1] > g[id=patch_2]');if(!l||!p){{return;}}
legends++;var lr=l.getBoundingClientRect(),pr=p.getBoundingClientRect();
if(lr.bottom>pr.top+1&&lr.top<pr.bottom&&lr.right>pr.left&&lr.left<pr.right){{inside.push(f.dataset.chart);}}}});
document.body.setAttribute('data-legends',legends);document.body.setAttribute('data-legends-over-axes',JSON.stringify(inside));}});
</script></body></html>"""


def _framed(tmp_path: Path, page: Path, width: int) -> str:
    wrapper = tmp_path / f"device-{width}.html"
    wrapper.write_text(WRAPPER.format(width=width, height=HEIGHT, page=page.as_uri()), encoding="utf-8")
    return wrapper.as_uri()


def _attribute(body: str, name: str) -> str:
    found = re.search(rf'{name}="([^"]*)"', body)
    assert found, body
    return found.group(1)


@pytest.mark.parametrize("width", [1400, 390])
def test_report_renders_in_chromium_at_desktop_and_phone_width(
    reported: tuple[Path, dict], tmp_path: Path, width: int
) -> None:
    """Every chart has a size, nothing logged an error, the page fits the window, and the screenshot is a page."""
    directory, _ = reported
    page = _framed(tmp_path, directory / "report.html", width)
    window = f"--window-size={max(width, 500)},{HEIGHT}"
    dom = _chromium(tmp_path, "--allow-file-access-from-files", window, "--dump-dom", page).stdout
    body = re.search(r"<body[^>]*>", dom)
    assert body, dom[:500]
    charts = (directory / "report.html").read_text(encoding="utf-8").count('<figure class="chart"')
    assert int(_attribute(body.group(0), "data-charts-rendered")) == charts >= 10
    assert _attribute(body.group(0), "data-console-errors") == "[]"
    # Legends sit in a row above their axes (the sign-ups chart's once crossed its line).
    assert int(_attribute(body.group(0), "data-legends")) >= 5
    assert _attribute(body.group(0), "data-legends-over-axes") == "[]"
    viewport = int(_attribute(body.group(0), "data-viewport-width"))
    assert viewport == width
    # Wide tables scroll in their own box: the page itself is never wider than the window.
    assert int(_attribute(body.group(0), "data-page-width")) <= viewport

    shot = tmp_path / f"report-{width}.png"
    _chromium(tmp_path, "--allow-file-access-from-files", window, f"--screenshot={shot}", page)
    image = Image.open(shot).convert("L")
    assert image.size == (max(width, 500), HEIGHT)
    image = image.crop((0, 0, width, HEIGHT))  # the device's width: the frame
    low, high = image.getextrema()
    assert high - low > 100  # text and bars on a light page
    small = image.resize((width // 5, HEIGHT // 5))
    assert len(small.getcolors(256) or []) > 20  # grey levels in use, at most 256
    # Content reaches across the page: the right third of the top of the page is not blank.
    right = image.crop((2 * width // 3, 0, width, HEIGHT // 3))
    assert right.getextrema()[0] < 128


def test_flagged_figures_are_marked_on_the_page(reported: tuple[Path, dict]) -> None:
    """A figure outside its reference's tolerance carries an `off` mark in the references section."""
    directory, report = reported
    page = (directory / "report.html").read_text(encoding="utf-8")
    section = page.split('<section id="references">')[1].split("</section>")[0]
    off = [c for c in report["checks"] if c["ok"] is False]
    assert section.count('<span class="off">off</span>') == len(off) + (1 if off else 0)  # and one in the summary
    for check in off:
        assert check["label"] in section
