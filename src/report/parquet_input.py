"""Events from a run's Parquet datasets, loaded as the report loads the JSON lines.

A run written with ``--output parquet`` holds ``search_events/date=YYYY-MM-DD/part-*.parquet``
(and the same for clicks and conversions). Each dataset becomes the table ``j_<type>`` of
``load.py``: ``line_no`` (the row's number over the dataset's files, sorted by path, and
their rows) and ``j``, the STRUCT the JSON path parses each line into, with the JSON's text
forms: the timestamp as ``YYYY-MM-DDTHH:MM:SS.mmmZ``, dates as ``YYYY-MM-DD``, money as
DOUBLE. Every figure downstream is therefore computed from the same values either way.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import duckdb

from ..models import dataset_name

ISO_MILLISECONDS = "%Y-%m-%dT%H:%M:%S.%gZ"  # %g: milliseconds, three digits, as the JSON writes them


def parquet_files(directory: Path, event_type: str) -> list[Path]:
    """The Parquet files of an event type's dataset, sorted by path; none when it is missing or empty."""
    # Hidden temporary files of a run in progress end in .tmp, so the pattern skips them.
    return sorted((directory / dataset_name(event_type)).glob("*/*.parquet"))


def dataset_label(event_type: str) -> str:
    """How problems name an event type's dataset: ``search_events/``."""
    return f"{dataset_name(event_type)}/"


def duckdb_type(structure: Any) -> str:
    """The DuckDB type of a ``from_json`` structure (a type name, or a dict of them for a STRUCT)."""
    if isinstance(structure, dict):
        return "STRUCT(" + ", ".join(f'"{name}" {duckdb_type(kind)}' for name, kind in structure.items()) + ")"
    return str(structure)


def _field(name: str, kind: Any, columns: set[str]) -> str:
    """SQL for one top-level field: the JSON path's type and text form; NULL when the files lack the column."""
    sql_type = duckdb_type(kind)
    if name not in columns:
        return f"NULL::{sql_type}"
    if name == "timestamp":
        return f"strftime(timezone('UTC', \"timestamp\"), '{ISO_MILLISECONDS}')"
    # Casts do the rest: DATE to 'YYYY-MM-DD', DECIMAL to DOUBLE, INTEGER to BIGINT, structs field by field.
    return f'CAST("{name}" AS {sql_type})'


def load_parquet(
    con: duckdb.DuckDBPyConnection,
    table: str,
    files: list[Path],
    structure: str,
    problems: list[dict[str, Any]],
    label: str,
) -> None:
    """Create ``table`` (line_no, j) from ``files``; files that cannot be read leave it empty, with a problem."""
    fields = json.loads(structure)
    paths = [str(path) for path in files]
    # Insertion order is preserved (see load.connection): rows come file by file, in the order of the list.
    # Files of different runs may differ in columns: by name, a column one lacks is NULL there (and fails the
    # schema checks). The ``date`` partition column is not selected: the timestamp holds the date.
    scan = "read_parquet(?, hive_partitioning = true, union_by_name = true)"
    try:
        columns = {row[0] for row in con.execute(f"DESCRIBE SELECT * FROM {scan}", [paths]).fetchall()}
        struct = ", ".join(f"'{name}': {_field(name, kind, columns)}" for name, kind in fields.items())
        con.execute(
            f"""CREATE TABLE {table} AS SELECT row_number() OVER () AS line_no,
            CAST({{{struct}}} AS {duckdb_type(fields)}) AS j FROM {scan}""",
            [paths],
        )
    except duckdb.Error as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        problems.append({"file": label, "line": None, "problem": f"not read as Parquet events: {reason}"})
        con.execute(f"CREATE OR REPLACE TABLE {table} (line_no BIGINT, j {duckdb_type(fields)})")
