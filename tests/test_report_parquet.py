"""The report on Parquet: the same figures as on the JSON lines of the same seeded run, and the command reads it."""

from __future__ import annotations

import json
import math
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from src.api import generate
from src.models import EVENT_TYPES, dataset_name, file_name
from src.report.load import _load, build_report, connection

from .conftest import run_cli

SEED, COUNT = 20_260_301, 60_000
START, END = datetime(2026, 3, 2, tzinfo=UTC), datetime(2026, 3, 9, tzinfo=UTC)  # 7 days, fixed
# What legitimately differs between the two reports, and why:
# - input: the folder's path; the two runs are written to two folders.
# - input_format: which format was read ("jsonl" and "parquet"): the point of the comparison.
# - manifest.runs[0].written_at: when each run was written; two runs, written one after the other.
# Nothing else names a file that differs: both folders hold users.jsonl, items.jsonl and manifest.json, and
# problems name event files only for bad lines, of which there are none.
EXCEPTIONS = {"input", "input_format", "manifest.runs[0].written_at"}
# Floats: DuckDB aggregates in parallel and combines the threads' partial sums in whatever order they finish
# (and how the rows are split differs too: byte ranges of a JSONL file, files and row groups of a dataset).
# Adding doubles is not associative, so means and correlations may differ in their last digits: two reports on
# the same JSONL folder do as well (about 1e-15 to 1e-13 relative). 1e-9 is far above that noise and far below
# any figure the page shows (four significant digits at most); integer figures and text must be equal.
RELATIVE = 1e-9


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The same seeded run written twice: as JSON lines (``file``) and as Parquet datasets."""
    folders = {}
    for output in ("file", "parquet"):
        folder = tmp_path_factory.mktemp(output)
        generate(
            event_count=COUNT,
            seed=SEED,
            window_start=START,
            window_end=END,
            output=output,
            output_dir=folder,
            overwrite=True,
        )
        folders[output] = folder
    assert not any((folders["parquet"] / file_name(t)).exists() for t in EVENT_TYPES)
    assert all(list((folders["parquet"] / dataset_name(t)).glob("date=*/*.parquet")) for t in EVENT_TYPES)
    return folders


@pytest.fixture(scope="module")
def reports(runs: dict[str, Path]) -> dict[str, dict[str, Any]]:
    return {output: build_report(folder) for output, folder in runs.items()}


def _differences(a: Any, b: Any, path: str = "") -> list[str]:
    """Paths (``funnel.clicks``, ``ranks.by_rank[0].share``) where two JSON-ready values differ."""
    if isinstance(a, dict) and isinstance(b, dict):
        keys = list(a) + [k for k in b if k not in a]
        return [d for k in keys for d in _differences(a.get(k, "<absent>"), b.get(k, "<absent>"), f"{path}.{k}")]
    if isinstance(a, list | tuple) and isinstance(b, list | tuple) and len(a) == len(b):
        return [d for i, (x, y) in enumerate(zip(a, b, strict=True)) for d in _differences(x, y, f"{path}[{i}]")]
    if isinstance(a, float) and isinstance(b, float):
        same = (math.isnan(a) and math.isnan(b)) or math.isclose(a, b, rel_tol=RELATIVE, abs_tol=0.0)
        return [] if same else [f"{path.lstrip('.')}: {a!r} != {b!r}"]
    return [] if a == b and type(a) is type(b) else [f"{path.lstrip('.')}: {a!r} != {b!r}"]


def test_parquet_gives_the_same_figures_as_the_json_lines(reports: dict[str, dict[str, Any]]) -> None:
    """Every figure, target, check and problem is the same; only the folder, the format and the write time differ."""
    jsonl, parquet = reports["file"], reports["parquet"]
    assert (jsonl["input_format"], parquet["input_format"]) == ("jsonl", "parquet")
    assert jsonl["counts"] == parquet["counts"] and parquet["counts"]["conversion"] > 0
    differing = _differences(jsonl, parquet)
    assert {"input", "input_format"} <= {d.split(":")[0] for d in differing} <= EXCEPTIONS, differing
    assert [p for p in parquet["problems"] if not p.get("figure")] == []


def test_every_event_loads_as_the_same_row(runs: dict[str, Path]) -> None:
    """Row for row, ``j_<type>`` holds the same line number and the same values, in the JSON's text forms."""
    tables: dict[str, dict[str, list[Any]]] = {}
    for output, folder in runs.items():
        with connection() as con:
            problems: list[dict[str, Any]] = []
            _load(con, folder, problems)
            assert problems == []
            tables[output] = {
                t: con.execute(f"SELECT line_no, j FROM j_{t} ORDER BY line_no").fetchall() for t in EVENT_TYPES
            }
    for event_type in EVENT_TYPES:
        rows = tables["parquet"][event_type]
        assert [n for n, _ in rows] == list(range(1, len(rows) + 1))
        assert rows == tables["file"][event_type], event_type
    first = tables["parquet"]["search"][0][1]
    assert first["timestamp"].endswith("Z") and len(first["timestamp"]) == len("2026-03-02T00:00:00.000Z")


def test_the_command_reports_on_a_parquet_folder(runs: dict[str, Path], tmp_path: Path) -> None:
    """``report --input`` on a Parquet run: exit 0, the page written, naming the format beside the folder."""
    page, figures = tmp_path / "report.html", tmp_path / "report.json"
    result = run_cli("report", "--input", str(runs["parquet"]), "--out", str(page))
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert json.loads(figures.read_text())["input_format"] == "parquet"
    assert f"{runs['parquet']} (parquet): " in page.read_text()


def test_with_both_formats_the_json_lines_are_measured(
    runs: dict[str, Path], reports: dict[str, dict[str, Any]], tmp_path: Path
) -> None:
    """JSON lines beside the datasets are what is measured: here, 1,000 searches of the file, not the dataset's."""
    folder = tmp_path / "both"
    shutil.copytree(runs["parquet"], folder)
    lines = (runs["file"] / file_name("search")).read_bytes().splitlines(keepends=True)
    (folder / file_name("search")).write_bytes(b"".join(lines[:1000]))
    report = build_report(folder)
    assert report["input_format"] == "jsonl and parquet"  # clicks and conversions: only their datasets are there
    assert report["counts"]["search"] == 1000
    assert report["counts"]["click"] == reports["parquet"]["counts"]["click"]


def test_a_missing_dataset_is_named_as_missing(runs: dict[str, Path], tmp_path: Path) -> None:
    """A Parquet folder without conversions (the folder there but no file in it): the dataset is missing or empty."""
    folder = tmp_path / "no-conversions"
    shutil.copytree(runs["parquet"], folder, ignore=shutil.ignore_patterns("*.parquet"))
    for event_type in ("search", "click"):
        shutil.rmtree(folder / dataset_name(event_type))
        shutil.copytree(runs["parquet"] / dataset_name(event_type), folder / dataset_name(event_type))
    report = build_report(folder)
    assert report["input_format"] == "parquet" and report["counts"]["conversion"] == 0
    assert {"file": "conversion_events/", "line": None, "problem": "missing or empty"} in report["problems"]


def test_a_folder_with_neither_format_is_one_line_naming_both(tmp_path: Path) -> None:
    """No JSONL file and no dataset with a Parquet file in it: exit 2, one line naming the files and the datasets."""
    (tmp_path / dataset_name("search") / "date=2026-03-02").mkdir(parents=True)  # a dataset without files
    result = run_cli("report", "--input", str(tmp_path))
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"error: --input={tmp_path}: none of search_events.jsonl, click_events.jsonl, conversion_events.jsonl "
        "or the Parquet datasets search_events/, click_events/, conversion_events/ is there"
    ]
    assert not (tmp_path / "report.html").exists()
