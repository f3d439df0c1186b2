"""Parquet datasets: the schema from the models, the same events as the JSON lines, read by DuckDB and polars
with nothing but a path, partitions by UTC date, atomic files, appends, --overwrite and a killed run."""

from __future__ import annotations

import datetime as dt
import decimal
import json
import os
import signal
import time
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from src.api import generate
from src.models import EVENT_MODELS, EVENT_TYPES, dataset_name, file_name
from src.output.arrow import MONEY, TIMESTAMP, arrow_schema
from src.output.parquet import ROW_GROUP_ROWS

from .conftest import run_cli, start_cli

WINDOW = {"window_start": "2026-01-29T00:00:00Z", "window_end": "2026-02-02T00:00:00Z"}


def _run(directory: Path, count: int, seed: int, output: str = "parquet", **overrides: Any) -> Any:
    settings = {"overwrite": True, **WINDOW, **overrides}
    return generate(event_count=count, seed=seed, output=output, output_dir=directory, **settings)


def _one(query: str) -> tuple[Any, ...]:
    row = duckdb.connect().execute(query).fetchone()
    assert row is not None
    return row


def _files(directory: Path, event_type: str) -> list[Path]:
    return sorted((directory / dataset_name(event_type)).glob("date=*/*.parquet"))


@pytest.fixture(scope="module")
def both(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One run written as JSON lines and as Parquet at once."""
    directory = tmp_path_factory.mktemp("both")
    _run(directory, 60_000, 5, output="file,parquet")
    return directory


def test_schema_follows_the_models() -> None:
    for event_type, model in EVENT_MODELS.items():
        schema = arrow_schema(event_type)
        assert schema.names == list(model.model_fields), event_type
        assert schema.field("timestamp").type == TIMESTAMP == pa.timestamp("us", tz="UTC")
        assert schema.field("event_type").type == pa.string()
        assert not schema.field("event_id").nullable and schema.field("user_id").nullable
    search = arrow_schema("search")
    assert [f.name for f in search.field("filters").type] == ["start_date", "end_date", "travelers", "max_price",
                                                              "min_stars"]  # fmt: skip
    assert search.field("filters").type.field("max_price").type == MONEY == pa.decimal128(18, 2)
    assert search.field("filters").type.field("start_date").type == pa.date32()
    assert [f.name for f in search.field("geo").type] == ["country", "city"]
    assert arrow_schema("conversion").field("booking_value").type == MONEY


def _as_json(value: Any) -> Any:
    """A value read from Parquet as the JSON line writes it."""
    if isinstance(value, dict):
        return {k: _as_json(v) for k, v in value.items()}
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return float(value)
    return value


def test_every_field_of_every_event_equals_its_json_line(both: Path) -> None:
    for event_type in EVENT_TYPES:
        lines = (both / file_name(event_type)).read_text().splitlines()
        table = pa.concat_tables(pq.read_table(path) for path in _files(both, event_type))
        rows = table.to_pylist()
        assert len(rows) == len(lines) > 0, event_type
        # Dates in order, and each file in time order: the rows come in the order of the lines.
        for row, line in zip(rows, lines, strict=True):
            assert _as_json(row) == json.loads(line), event_type


def test_parquet_is_at_least_five_times_smaller_than_the_json_lines(both: Path) -> None:
    for event_type in ("search", "click"):
        jsonl = (both / file_name(event_type)).stat().st_size
        parquet = sum(p.stat().st_size for p in _files(both, event_type))
        assert jsonl / parquet >= 5, (event_type, jsonl / parquet)


def test_duckdb_and_polars_read_the_datasets_with_only_a_path(both: Path) -> None:
    for event_type in EVENT_TYPES:
        lines = sum(1 for _ in (both / file_name(event_type)).open())
        glob = str(both / dataset_name(event_type) / "**" / "*.parquet")
        count, dates = _one(f"SELECT count(*), count(DISTINCT date) FROM '{glob}'")
        assert count == lines and dates == 4, event_type
        frame = pl.read_parquet(both / dataset_name(event_type))
        assert frame.height == lines and frame.columns[-1] == "date"
        assert pl.scan_parquet(both / dataset_name(event_type)).select(pl.len()).collect().item() == lines
    described = duckdb.connect().execute(f"DESCRIBE SELECT * FROM '{both}/search_events/**/*.parquet'").fetchall()
    types = {row[0]: row[1] for row in described}
    assert types["timestamp"] == "TIMESTAMP WITH TIME ZONE" and types["date"] == "DATE"
    assert types["geo"] == "STRUCT(country VARCHAR, city VARCHAR)"
    assert "max_price DECIMAL(18,2)" in types["filters"]


def test_each_partition_holds_the_events_of_its_utc_date(both: Path) -> None:
    for event_type in EVENT_TYPES:
        glob = f"{both}/{dataset_name(event_type)}/**/*.parquet"
        wrong = _one(f"SELECT count(*) FROM '{glob}' WHERE date <> CAST(timezone('UTC', timestamp) AS DATE)")
        assert wrong == (0,), event_type
    for path in _files(both, "search"):
        stamps = pq.read_table(path, columns=["timestamp"])["timestamp"].to_numpy()
        assert (stamps[1:] >= stamps[:-1]).all(), path


def test_the_same_files_for_one_and_two_workers(tmp_path: Path) -> None:
    _run(tmp_path / "one", 40_000, 8, workers=1)
    _run(tmp_path / "two", 40_000, 8, workers=2)
    for event_type in EVENT_TYPES:
        one, two = _files(tmp_path / "one", event_type), _files(tmp_path / "two", event_type)
        assert [p.relative_to(tmp_path / "one") for p in one] == [p.relative_to(tmp_path / "two") for p in two]
        for a, b in zip(one, two, strict=True):
            assert a.read_bytes() == b.read_bytes(), a


def test_row_groups_are_full_until_the_last_of_a_file(tmp_path: Path) -> None:
    # One day of 700,000 events: about 525,000 searches, so two full row groups and a last one.
    _run(tmp_path, 700_000, 3, window_start="2026-01-29T00:00:00Z", window_end="2026-01-30T00:00:00Z")
    (path,) = _files(tmp_path, "search")
    meta = pq.ParquetFile(path).metadata
    sizes = [meta.row_group(i).num_rows for i in range(meta.num_row_groups)]
    assert sizes[:-1] == [ROW_GROUP_ROWS] * (len(sizes) - 1) and len(sizes) >= 3
    assert meta.row_group(0).column(0).compression == "ZSTD"


def test_compression_is_a_setting(tmp_path: Path) -> None:
    _run(tmp_path, 5_000, 2, parquet_compression="snappy")
    meta = pq.ParquetFile(_files(tmp_path, "search")[0]).metadata
    assert meta.row_group(0).column(0).compression == "SNAPPY"


def test_appending_adds_files_and_leaves_the_old_ones_alone(tmp_path: Path) -> None:
    _run(tmp_path, 20_000, 1)
    first = {p: p.read_bytes() for t in EVENT_TYPES for p in _files(tmp_path, t)}
    assert all("part-r0000-" in p.name for p in first)
    _run(tmp_path, 20_000, 2, overwrite=False)
    after = [p for t in EVENT_TYPES for p in _files(tmp_path, t)]
    assert all(p.read_bytes() == data for p, data in first.items())
    assert {p.name.split("-")[1] for p in after} == {"r0000", "r0001"}
    totals = json.loads((tmp_path / "manifest.json").read_text())["totals_in_files"]
    for event_type in EVENT_TYPES:
        assert sum(pq.ParquetFile(p).metadata.num_rows for p in _files(tmp_path, event_type)) == totals[event_type]


def test_overwrite_replaces_the_datasets_and_drops_the_other_format(tmp_path: Path) -> None:
    _run(tmp_path, 10_000, 1, output="file,parquet")
    _run(tmp_path, 10_000, 2, overwrite=False)
    _run(tmp_path, 10_000, 3)  # --overwrite, Parquet only: one run's datasets, no JSON lines left
    assert {p.name.split("-")[1] for t in EVENT_TYPES for p in _files(tmp_path, t)} == {"r0000"}
    assert not any((tmp_path / file_name(t)).exists() for t in EVENT_TYPES)
    assert json.loads((tmp_path / "manifest.json").read_text())["seed"] == 3
    _run(tmp_path, 10_000, 4, output="file")  # and back: JSON lines only, the datasets gone
    assert not any((tmp_path / dataset_name(t)).exists() for t in EVENT_TYPES)
    assert not any(p.name.startswith(".") for p in tmp_path.iterdir() if p.name != ".searchflow.lock")


def test_a_killed_run_leaves_only_complete_files(tmp_path: Path) -> None:
    # 1.1 million searches a day: a day's file is open (under its temporary name) for several row groups.
    args = ["--count", "4500000", "--seed", "9", "--days", "3", "--end", "2026-03-01", "--output", "parquet"]
    proc = start_cli(*args, "--output-dir", str(tmp_path), "-q")
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if any(tmp_path.glob("search_events/date=*/part-*.parquet")) and any(tmp_path.glob("*/date=*/.part-*.tmp")):
            break
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    complete = [p for t in EVENT_TYPES for p in _files(tmp_path, t)]
    assert complete, "no file was complete before the kill"
    for path in complete:
        pq.read_table(path)  # every named file reads whole
    assert list(tmp_path.glob("*/date=*/.part-*.parquet.tmp")), "no file was being written at the kill"
    assert _one(f"SELECT count(*) FROM '{tmp_path}/search_events/**/*.parquet'")[0] > 0
    # The next run clears the unfinished files and lists the killed run with the rows its files hold.
    result = run_cli("--count", "2000", "--seed", "10", "--end", "2026-03-01", "--output", "parquet",
                     "--output-dir", str(tmp_path), "-q")  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert not list(tmp_path.glob("*/date=*/.part-*"))
    runs = json.loads((tmp_path / "manifest.json").read_text())["runs"]
    killed = runs[0]
    assert killed["killed"] and killed["seed"] == 9
    for event_type in EVENT_TYPES:
        mine = [p for p in complete if p.parent.parent.name == dataset_name(event_type)]
        assert killed["counts"][event_type] == sum(pq.ParquetFile(p).metadata.num_rows for p in mine)


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (["--output", "parquet,stdout"], {}, "--output=parquet,stdout: stdout carries the events alone"),
        (["--output", "orc"], {}, "--output=orc: must be file, parquet, redis, stdout, both"),
        (["--mode", "continuous", "--output", "parquet"], {}, "Parquet is written by batch runs"),
        ([], {"OUTPUT": "parquet", "PARQUET_COMPRESSION": "brotli"}, "PARQUET_COMPRESSION=brotli: must be one of"),
    ],
)
def test_bad_parquet_settings_are_one_line(tmp_path: Path, args: list[str], env: dict[str, str], message: str) -> None:
    result = run_cli(*args, "--output-dir", str(tmp_path / "out"), env=env)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and message in result.stderr, result.stderr
    assert not (tmp_path / "out").exists()


def test_the_command_says_where_the_datasets_are(tmp_path: Path) -> None:
    result = run_cli("--count", "3000", "--seed", "1", "--output", "parquet", "--output-dir", str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert f"parquet: {tmp_path}/search_events/, {tmp_path}/click_events/" in result.stderr


def test_the_command_builds_arrow_tables_with_glibcs_allocator() -> None:
    """The command (src.tuning, imported first) makes pyarrow use glibc's allocator, which reuses the pages
    of every slice's tables (mimalloc kept them: about 100 MB more at the peak of a 1M-event Parquet run);
    a user's own choice of pool is kept."""
    import subprocess
    import sys

    code = "import src.tuning, pyarrow; print(pyarrow.default_memory_pool().backend_name)"
    env = {k: v for k, v in os.environ.items() if k != "ARROW_DEFAULT_MEMORY_POOL"}
    root = Path(__file__).resolve().parent.parent
    chosen = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True, cwd=root)
    assert chosen.stdout.strip() == "system"
    kept = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={**env, "ARROW_DEFAULT_MEMORY_POOL": "mimalloc"},
        check=True,
        cwd=root,
    )
    assert kept.stdout.strip() == "mimalloc"
