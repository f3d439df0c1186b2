"""The report as one library call: measure a folder of events, write the page and the JSON figures.

Errors are :class:`~src.config.SettingsError` with one line that names what the user gave
(``--input``, ``--out``, ``--json``) or, when they gave nothing, the ``OUTPUT_DIR`` that was used;
a write that fails after the measuring raises :class:`~src.output.files.WriteFailed` naming the file.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..config import SettingsError
from ..output.files import not_a_regular_file


@dataclass
class ReportResult:
    """What a report wrote: its figures and the two files."""

    data: dict[str, Any]
    html: Path
    json: Path


def write_report(
    directory: Path,
    html_path: Path | None = None,
    json_path: Path | None = None,
    *,
    input_name: str = "--input",
    config: Path | None = None,
) -> ReportResult:
    """Measure the events in ``directory`` and write ``report.html`` and ``report.json``.

    The page goes to ``html_path`` (default ``directory/report.html``) and the figures to
    ``json_path`` (default: the page's path ending in ``.json``); missing folders are
    created. ``input_name`` is how messages name the folder (the flag or variable it came
    from); ``config`` is a settings file read when the folder has no manifest.
    """
    from .load import ReportError, build_report, check_input
    from .page import write

    try:
        check_input(directory, input_name)
    except ReportError as exc:
        raise SettingsError(str(exc)) from None
    html = html_path if html_path is not None else directory / "report.html"
    if html_path is not None and html.suffix.lower() == ".json":
        raise SettingsError(f"--out={html}: names the HTML page, not the JSON; give the JSON's path with --json")
    figures = json_path if json_path is not None else html.with_suffix(".json")
    if figures.resolve() == html.resolve():
        raise SettingsError(f"--json={figures}: the same file as the page (--out); give another path")
    given = {html: html_path is not None, figures: json_path is not None}
    flags = {html: "--out", figures: "--json"}

    def named(path: Path) -> str:
        return f"{flags[path]}={path}" if given[path] else f"{input_name}={directory}: {path.name}"

    # Folders first: a path that cannot be written fails at once, not after the measuring.
    for path in (html, figures):
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise SettingsError(f"{named(path)}: cannot create its folder ({exc.strerror or exc})") from None
        # The page is renamed over its path: over /dev/null or a FIFO that would replace them with a file.
        kind = not_a_regular_file(path)
        if kind is not None:
            raise SettingsError(f"{named(path)}: it is {kind}, not a regular file; give the path of a file to write")
    try:
        data = build_report(directory, input_name=input_name, config=config)
    except ReportError as exc:
        raise SettingsError(str(exc)) from None
    # A write that fails now (a full disk) is a failure mid-way, not bad input: WriteFailed (exit 1), naming the file.
    write(data, html, figures)
    return ReportResult(data, html, figures)
