"""The batch run on Spark: every shard of the plan on an executor, made by the engine of a local run.

A shard's events are a pure function of the seed, the settings, the window, the count and the
shard's number (``simulation.shards``), so a DataFrame of shard numbers, one per partition,
turned into events by ``mapInArrow`` holds exactly the events of a local run with the same seed
and settings (same event_ids, every field equal); only row order and files differ. This is the
only module that imports pyspark (the ``[spark]`` extra). Executors need the package ``src``
(on a cluster: ``pip install 'searchflow-event-generator[spark]'``); local runs find the checkout.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from functools import cache, partial
from pathlib import Path

if __package__ in (None, ""):  # `spark-submit src/spark.py`: the package is the folder above this file
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import click
import numpy as np
import pyarrow as pa
from pyspark import SparkConf, SparkContext, StorageLevel
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.pandas.types import from_arrow_schema

from src.config import Settings, SettingsError, check_output_dir, load_settings
from src.main import run_command
from src.models import EVENT_TYPES, dataset_name
from src.output.arrow import ArrowEncoder, arrow_schema
from src.simulation.shards import ShardPlan, World, run_shard
from src.simulation.timing import to_ms

__all__ = ["event_frames", "main", "session", "write_parquet"]

US_PER_DAY = 86_400_000_000
# Spark's names of the codecs of PARQUET_COMPRESSION; its "lz4" is Hadoop's framing, pyarrow's is LZ4_RAW.
CODECS = {"zstd": "zstd", "snappy": "snappy", "gzip": "gzip", "lz4": "lz4_raw", "none": "none"}
# Hadoop settings of each write: no _SUCCESS marker, and no .crc beside each file on a local disk.
WRITE_OPTIONS = {"mapreduce.fileoutputcommitter.marksuccessfuljobs": "false", "fs.file.impl.disable.cache": "true",
                 "fs.file.impl": "org.apache.hadoop.fs.RawLocalFileSystem"}  # fmt: skip
ROOT = Path(__file__).resolve().parents[1]  # the folder holding the package `src`


@cache
def wide_schema() -> pa.Schema:
    """The one row type of mapInArrow: event_type, its UTC date, and a struct per event type (null for the others)."""
    structs = [pa.field(t, pa.struct(list(arrow_schema(t))), nullable=True) for t in EVENT_TYPES]
    return pa.schema([pa.field("event_type", pa.string(), False), pa.field("date", pa.date32(), False), *structs])


def _wide(event_type: str, table: pa.Table) -> pa.RecordBatch:
    """One event type's encoded rows as rows of the wide schema."""
    rows = table.num_rows
    plain = table.combine_chunks().to_batches()[0]
    micros = plain.column("timestamp").cast(pa.int64()).to_numpy()
    date = pa.array((micros // US_PER_DAY).astype(np.int32), pa.int32()).view(pa.date32())
    fields = plain.to_struct_array()
    columns = [pa.array([event_type] * rows, pa.string()), date]
    for name in EVENT_TYPES:
        struct_type = wide_schema().field(name).type
        columns.append(fields if name == event_type else pa.nulls(rows, struct_type))
    return pa.RecordBatch.from_arrays(columns, schema=wide_schema())


_WORLDS: dict[str, tuple[World, ArrowEncoder]] = {}  # a Python worker's last world: its next tasks reuse it


def _world(settings: Settings, plan: ShardPlan) -> tuple[World, ArrowEncoder]:
    key = f"{settings.model_dump_json()} {plan.seed} {plan.start_ms} {plan.end_ms}"
    if key not in _WORLDS:
        _WORLDS.clear()
        world = World(settings, plan.seed, plan.start_ms, plan.end_ms)
        _WORLDS[key] = world, ArrowEncoder(world.model.catalogue, world.site.cities)
    return _WORLDS[key]


def shard_rows(settings: Settings, plan: ShardPlan, batches: Iterable[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    """The mapInArrow function: the events of every shard number in ``batches`` as wide rows, slice by slice.

    The world (markets, catalogue, session model, clock) is static: it is built once per
    task at most, and kept for the worker's next tasks, as a local run builds it once.
    """
    for batch in batches:
        for index in batch.column(0).to_pylist():
            world, encoder = _world(settings, plan)
            for tables in run_shard(settings, plan, int(index), world):
                for event_type, table in encoder(tables).items():
                    if table.num_rows:
                        yield _wide(event_type, table)


def _plan(settings: Settings, seed: int | None) -> ShardPlan:
    seed = settings.seed if seed is None else seed
    if seed is None:
        raise SettingsError("--seed: a Spark run needs a seed (--seed or SEED): each executor makes its shards from it")
    if settings.mode != "batch":
        raise SettingsError(f"MODE={settings.mode}: a Spark run is a batch run; set MODE=batch or unset it")
    start, end = settings.window()
    return ShardPlan(seed, to_ms(start), to_ms(end), settings.event_count, settings.shards)


def _wide_frame(spark: SparkSession, settings: Settings, seed: int | None) -> DataFrame:
    """The persisted wide frame of every event of the run (one partition per shard)."""
    plan = _plan(settings, seed)
    shards = spark.range(0, plan.shards, 1, numPartitions=plan.shards).withColumnRenamed("id", "shard")
    function: Callable[[Iterable[pa.RecordBatch]], Iterator[pa.RecordBatch]] = partial(shard_rows, settings, plan)
    wide = shards.mapInArrow(function, from_arrow_schema(wide_schema()))
    return wide.persist(StorageLevel.MEMORY_AND_DISK)


def _split(wide: DataFrame) -> dict[str, DataFrame]:
    return {t: wide.where(F.col("event_type") == t).select(f"{t}.*", "date") for t in EVENT_TYPES}


def event_frames(spark: SparkSession, settings: Settings, seed: int | None = None) -> dict[str, DataFrame]:
    """The run's events as one DataFrame per event type: the model's fields in order, then ``date`` (UTC).

    The batch window is ``settings.window()`` with ``settings.event_count`` events over
    ``settings.shards`` shards; ``seed`` (default ``settings.seed``) is required: raises
    SettingsError without one. The shards are generated once into a persisted
    (MEMORY_AND_DISK) frame that the three share (until ``spark.catalog.clearCache()``);
    the rows are those of a local run.
    """
    return _split(_wide_frame(spark, settings, seed))


def write_parquet(
    spark: SparkSession, settings: Settings, output_dir: str | Path, seed: int | None = None
) -> dict[str, int]:
    """Write the run's events as Parquet datasets ``output_dir/<type>_events/date=YYYY-MM-DD/``; rows per type.

    Each dataset is replaced (mode overwrite); compression is ``settings.parquet_compression``
    and timestamps are TIMESTAMP_MICROS (UTC), not INT96. As the local sink, no ``_SUCCESS``
    markers nor (on local disks) ``.crc`` files: polars reads a dataset from its folder.
    """
    wide = _wide_frame(spark, settings, seed)
    key = "spark.sql.parquet.outputTimestampType"
    before = spark.conf.get(key, None)
    spark.conf.set(key, "TIMESTAMP_MICROS")
    try:
        counts = dict.fromkeys(EVENT_TYPES, 0)  # counting first fills the cache the three writes read
        counts.update({row[0]: int(row[1]) for row in wide.groupBy("event_type").count().collect()})
        for event_type, frame in _split(wide).items():
            frame.write.mode("overwrite").partitionBy("date").options(**WRITE_OPTIONS).option(
                "compression", CODECS[settings.parquet_compression]
            ).parquet(f"{str(output_dir).rstrip('/')}/{dataset_name(event_type)}")
        return counts
    finally:
        if before is None:
            spark.conf.unset(key)
        else:
            spark.conf.set(key, before)
        wide.unpersist()


def session(master: str | None = None, conf: Mapping[str, str] | None = None) -> SparkSession:
    """The SparkSession of a run: ``master`` (else spark-submit's, else local[*]) and ``conf``.

    Local Python workers run this interpreter and find the package ``src`` (its folder goes
    on their PYTHONPATH); each uses one polars thread, as Spark runs a task per core.
    """
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    builder = SparkSession.builder.appName("searchflow-events")
    if master:
        builder = builder.master(master)
    given = ""
    if "PYSPARK_GATEWAY_PORT" in os.environ:  # spark-submit's JVM is up: keep the workers' PYTHONPATH it was given
        SparkContext._ensure_initialized()
        given = SparkConf().get("spark.executorEnv.PYTHONPATH", "")
    path = os.pathsep.join(p for p in (str(ROOT), given) if p)
    workers = {"spark.executorEnv.PYTHONPATH": path, "spark.executorEnv.POLARS_MAX_THREADS": "1"}
    for name, value in {**workers, "spark.ui.showConsoleProgress": "false", **(conf or {})}.items():
        builder = builder.config(name, value)
    return builder.getOrCreate()


EXAMPLES = """
\b
Examples:
  python -m src.spark --master local[2] --count 1000000 --days 7 --seed 1 --output-dir ./data/spark
  spark-submit --master local[4] src/spark.py --count 20000000 --days 28 --seed 1 --output-dir /data/raw
  SHARDS=64 spark-submit --master yarn src/spark.py --count 500000000 --seed 7 --output-dir hdfs:///events
\b
Writes OUTPUT_DIR/<type>_events/date=YYYY-MM-DD/: the events of `python -m src.main --output parquet` with the
same seed and settings, which are read as src.main reads them (flags, environment, --config).
"""


@click.command(epilog=EXAMPLES, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option("--master", metavar="URL", help="Spark master, e.g. local[2]. [spark-submit's, else local[*]]")
@click.option("--count", "event_count", metavar="N", help="Events to write, over all types. [EVENT_COUNT, 10000]")
@click.option("--seed", metavar="S", help="Seed, required: each shard is made from it on an executor. [SEED]")
@click.option("--start", "window_start", metavar="TIME", help="Start of the window, e.g. 2026-01-01. [end - days]")
@click.option("--end", "window_end", metavar="TIME", help="End of the window. [WINDOW_END, this hour]")
@click.option("--days", "window_days", metavar="D", help="Length of the window without --start. [WINDOW_DAYS, 7]")
@click.option("--output-dir", metavar="DIR", help="Folder (or URI) of the Parquet datasets. [OUTPUT_DIR, /data/raw]")
@click.option("--config", metavar="FILE", help="Read settings from a TOML or .env file. [SEARCHFLOW_CONFIG]")
def cli(master: str | None, config: str | None, **flags: str | None) -> int:
    """Generate a batch run on Spark into Parquet datasets by date (UTC): one task per shard (SHARDS, 8)."""
    settings = load_settings(flags, config)
    _plan(settings, None)  # a missing seed or a continuous mode fails before Spark starts
    output_dir = flags["output_dir"] or str(settings.output_dir)
    if "://" not in output_dir:
        check_output_dir(Path(output_dir), "--output-dir" if flags["output_dir"] else "OUTPUT_DIR")
    started = time.perf_counter()
    spark = session(master)
    try:
        ready = time.perf_counter()
        counts = write_parquet(spark, settings, output_dir)
    finally:
        spark.stop()
    done = time.perf_counter()
    total = sum(counts.values())
    per_type = ", ".join(f"{n:,} {t}" for t, n in counts.items())
    click.echo(
        f"wrote {total:,} events ({per_type}) to {output_dir} in {done - started:.1f} s, "
        f"{total / (done - started):,.0f} events/s ({total / (done - ready):,.0f} events/s after "
        f"{ready - started:.1f} s of Spark start-up)"
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run the command line; a bad setting is one line on stderr and exit status 2 (as ``python -m src.main``)."""
    prog = "python -m src.spark" if "-m" in getattr(sys, "orig_argv", []) else "spark-submit src/spark.py"
    return run_command(cli, argv, prog)


if __name__ == "__main__":
    from src.spark import main as run  # the module by its name, so Spark pickles its functions by reference

    sys.exit(run())
