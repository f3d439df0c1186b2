"""The batch run on Spark (src/spark.py): the events of a local run, as Parquet datasets that readers take."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

pytest.importorskip("pyspark")

from src.api import generate
from src.config import SettingsError, load_settings
from src.models import EVENT_MODELS, EVENT_TYPES, dataset_name
from src.output.arrow import arrow_schema
from src.spark import event_frames, session, write_parquet

from .conftest import ROOT, SETTING_VARIABLES

pytestmark = pytest.mark.spark

COUNT, SEED = 30_000, 20260
WINDOW = {"window_start": "2026-03-01T06:00:00Z", "window_end": "2026-03-04T06:00:00Z"}  # 3 days over 4 dates


@pytest.fixture(scope="module")
def spark() -> Iterator[Any]:
    conf = {
        "spark.ui.enabled": "false",
        "spark.sql.shuffle.partitions": "4",
        "spark.driver.memory": "1g",
        # Not UTC: the events' times and dates must not depend on the session's zone.
        "spark.sql.session.timeZone": "America/Los_Angeles",
    }
    spark = session("local[2]", conf)
    yield spark
    spark.stop()


@pytest.fixture(scope="module")
def written(spark: Any, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, int]]:
    """A Spark run of COUNT events over three days, written as Parquet."""
    out = tmp_path_factory.mktemp("spark")
    settings = load_settings({"event_count": COUNT, "seed": SEED, **WINDOW})
    return out, write_parquet(spark, settings, out)


@pytest.fixture(scope="module")
def local(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same run made locally (one process), by the Parquet sink."""
    out = tmp_path_factory.mktemp("local")
    result = generate(
        event_count=COUNT, seed=SEED, output="parquet", output_dir=out, workers=1, overwrite=True, **WINDOW
    )
    assert result.total == COUNT
    return out


def _read(folder: Path, event_type: str) -> pa.Table:
    """A dataset's rows as the model's fields, plain strings, sorted by event_id."""
    table = ds.dataset(folder / dataset_name(event_type), format="parquet", partitioning="hive").to_table()
    return table.select(arrow_schema(event_type).names).cast(arrow_schema(event_type)).sort_by("event_id")


def test_a_spark_run_writes_exactly_the_events_of_a_local_run(
    written: tuple[Path, dict[str, int]], local: Path
) -> None:
    """Same rows per type, same event_ids, every field equal: shards made on executors are the local run's."""
    out, counts = written
    assert sum(counts.values()) == COUNT
    for event_type in EVENT_TYPES:
        theirs, ours = _read(out, event_type), _read(local, event_type)
        assert theirs.num_rows == ours.num_rows == counts[event_type], event_type
        assert theirs.column("event_id").equals(ours.column("event_id")), event_type
        for name in theirs.column_names:
            assert theirs.column(name).equals(ours.column(name)), f"{event_type}.{name}"


def test_spark_reads_the_local_datasets_with_only_a_path(spark: Any, local: Path) -> None:
    """The local sink's datasets are Spark tables as they are: typed columns, the date from the folders."""
    for event_type in EVENT_TYPES:
        frame = spark.read.parquet(str(local / dataset_name(event_type)))
        fields = {f.name: f.dataType.simpleString() for f in frame.schema.fields}
        assert list(fields)[:-1] == list(EVENT_MODELS[event_type].model_fields) and fields["date"] == "date"
        assert fields["timestamp"] == "timestamp", fields
        assert frame.count() == pq.ParquetDataset(local / dataset_name(event_type)).read().num_rows
    clicks = spark.read.parquet(str(local / "click_events"))
    assert dict(clicks.schema.jsonValue()["fields"][9])["type"] == "decimal(18,2)"  # result_price
    searches = spark.read.parquet(str(local / "search_events"))
    assert clicks.join(searches, clicks.search_event_id == searches.event_id).count() == clicks.count()


def test_the_parquet_spark_writes_is_typed_and_read_by_duckdb_and_polars(written: tuple[Path, dict[str, int]]) -> None:
    """UTC timestamps in microseconds (not INT96), structs, decimal(18,2); dates as Hive folders; no markers."""
    out, counts = written
    assert not list(out.rglob("*.crc")) and not list(out.rglob("_SUCCESS"))
    search = next((out / "search_events").glob("date=*/*.parquet"))
    schema = pq.read_schema(search)
    assert schema.field("timestamp").type == pa.timestamp("us", tz="UTC")
    column = pq.ParquetFile(search).metadata.schema.column(schema.get_field_index("timestamp"))
    assert column.physical_type == "INT64" and "isAdjustedToUTC=true" in str(column.logical_type)
    assert pa.types.is_struct(schema.field("geo").type) and pa.types.is_struct(schema.field("filters").type)
    assert schema.field("filters").type.field("max_price").type == pa.decimal128(18, 2)
    conversion = pq.read_schema(next((out / "conversion_events").glob("date=*/*.parquet")))
    assert conversion.field("booking_value").type == conversion.field("commission").type == pa.decimal128(18, 2)
    dates = sorted(p.name for p in (out / "search_events").iterdir())
    assert dates == ["date=2026-03-01", "date=2026-03-02", "date=2026-03-03", "date=2026-03-04"]
    for event_type in EVENT_TYPES:
        glob = f"{out}/{dataset_name(event_type)}/*/*.parquet"
        types = {row[0]: row[1] for row in duckdb.sql(f"DESCRIBE SELECT * FROM read_parquet('{glob}')").fetchall()}
        assert types["timestamp"] == "TIMESTAMP WITH TIME ZONE" and types["date"] == "DATE"
        wrong = duckdb.sql(
            f"SELECT count(*) FROM read_parquet('{glob}') WHERE date <> CAST(timezone('UTC', timestamp) AS DATE)"
        ).fetchall()
        assert wrong == [(0,)]
        assert duckdb.sql(f"SELECT count(*) FROM read_parquet('{glob}')").fetchall() == [(counts[event_type],)]
        frame = pl.read_parquet(out / dataset_name(event_type))
        assert frame.height == counts[event_type]
        assert frame.columns == [*EVENT_MODELS[event_type].model_fields, "date"]
        assert pl.scan_parquet(out / dataset_name(event_type)).select(pl.len()).collect().item() == counts[event_type]
    assert types["booking_value"] == "DECIMAL(18,2)"


def test_event_frames_hold_the_model_fields_and_the_date(spark: Any) -> None:
    """One DataFrame per type, columns in the model's order then date; no seed is refused before any work."""
    settings = load_settings({"event_count": 2000, "seed": 5, **WINDOW})
    frames = event_frames(spark, settings)
    assert list(frames) == list(EVENT_TYPES)
    for event_type, frame in frames.items():
        assert frame.columns == [*EVENT_MODELS[event_type].model_fields, "date"]
        assert str(frame.schema["timestamp"].dataType) == "TimestampType()"
    assert sum(frame.count() for frame in frames.values()) == 2000
    with pytest.raises(SettingsError, match="--seed"):
        event_frames(spark, load_settings({"event_count": 2000}))


def _run_spark(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in SETTING_VARIABLES}
    return subprocess.run(
        [sys.executable, "-m", "src.spark", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=240
    )


def test_the_command_writes_the_three_datasets_and_refuses_a_bad_setting(tmp_path: Path) -> None:
    """`python -m src.spark` exits 0 with one summary line; a bad setting is one line and exit status 2."""
    run = _run_spark(
        "--master", "local[1]", "--count", "5000", "--seed", "3", "--days", "2", "--output-dir", str(tmp_path)
    )
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.stdout.startswith("wrote 5,000 events (") and run.stdout.count("\n") == 1, run.stdout
    rows = {t: pl.scan_parquet(tmp_path / dataset_name(t)).select(pl.len()).collect().item() for t in EVENT_TYPES}
    assert sum(rows.values()) == 5000 and all(rows.values()), rows
    bad = _run_spark("--count", "-1", "--seed", "3", "--output-dir", str(tmp_path))
    assert bad.returncode == 2
    assert bad.stderr == "error: --count=-1: must be >= 1\n"
    assert _run_spark("--help").stdout.count("python -m src.spark --master local[2]") == 1
