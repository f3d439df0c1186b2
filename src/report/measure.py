"""Small helpers the report's sections share: rates with Wilson intervals, and query results as Python values."""

from __future__ import annotations

import math
from typing import Any

import duckdb


def wilson(successes: int, trials: int, z: float = 1.96) -> tuple[float, float]:
    """95 % Wilson score interval of a binomial rate."""
    if trials == 0:
        return (0.0, 1.0)
    p = successes / trials
    centre = (p + z * z / (2 * trials)) / (1 + z * z / trials)
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / (1 + z * z / trials)
    # At p = 0 or 1 rounding can put the bound a hair past p (1e-17): the interval must hold p, or a
    # chart's error bar below it comes out negative and matplotlib refuses to draw it.
    return (min(p, max(0.0, centre - half)), max(p, min(1.0, centre + half)))


def rate_entry(successes: int, trials: int, target: float | None) -> dict[str, Any]:
    """A measured rate with its 95 % interval, and whether the target lies inside it.

    More successes than trials (clicks whose searches are not in the files) is no binomial
    rate: its interval and ``within_ci`` are None.
    """
    value = successes / trials if trials else None
    interval = list(wilson(successes, trials)) if successes <= trials else None
    entry: dict[str, Any] = {"value": value, "numerator": successes, "denominator": trials, "ci95": interval}
    if target is not None:
        entry["target"] = target
        entry["within_ci"] = interval[0] <= target <= interval[1] if interval is not None else None
    return entry


def query_rows(con: duckdb.DuckDBPyConnection, sql: str) -> list[dict[str, Any]]:
    """Every row of a query as a dict by column name."""
    cursor = con.execute(sql)
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def query_first(con: duckdb.DuckDBPyConnection, sql: str) -> tuple[Any, ...]:
    """The first row of a query (all rows are fetched: DuckDB wants each result finished)."""
    rows = con.execute(sql).fetchall()
    return tuple(rows[0]) if rows else ()


def query_one(con: duckdb.DuckDBPyConnection, sql: str) -> Any:
    """The first value of the first row of a query."""
    return query_first(con, sql)[0]
