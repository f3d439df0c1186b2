"""The realism report: measure a directory of generated events against their targets.

DuckDB reads the three JSONL files (line by line, so a malformed line is reported with
its file and number and the rest is still measured), or a Parquet run's datasets where
they are missing (``parquet_input.py``), and every figure is computed in SQL. Targets come from the run's ``manifest.json`` when it is there, and otherwise from
the defaults; published figures come from ``docs/REALISM.md`` (in ``published.py``). ``report.page``
turns the result into a self-contained HTML page.
"""

from __future__ import annotations

import json
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb

from ..config import Settings, load_settings
from ..models import EVENT_TYPES, file_name
from ..output.files import not_a_regular_file
from ..output.manifest import NOT_EVENT_SETTINGS, read_manifest, true_parameters
from ..reference import USD_RATES, all_cities, countries
from .checks import flag
from .figures import figures
from .injected import drop_bots, drop_copies, faults
from .lifecycle import lifecycle
from .measure import query_one
from .offers import offers
from .parquet_input import dataset_label, duckdb_type, load_parquet, parquet_files

_STRUCTURES = {
    "search": """{"event_id":"VARCHAR","event_type":"VARCHAR","timestamp":"VARCHAR","user_id":"VARCHAR",
        "session_id":"VARCHAR","query":"VARCHAR","results_count":"BIGINT","page":"BIGINT","platform":"VARCHAR",
        "device_type":"VARCHAR","geo":{"country":"VARCHAR","city":"VARCHAR"},"utm_source":"VARCHAR",
        "utm_medium":"VARCHAR","utm_campaign":"VARCHAR","filters":{"start_date":"VARCHAR","end_date":"VARCHAR",
        "travelers":"BIGINT","max_price":"DOUBLE","min_stars":"BIGINT"}}""",
    "click": """{"event_id":"VARCHAR","event_type":"VARCHAR","timestamp":"VARCHAR","user_id":"VARCHAR",
        "session_id":"VARCHAR","search_event_id":"VARCHAR","result_position":"BIGINT","result_id":"VARCHAR",
        "result_type":"VARCHAR","result_price":"DOUBLE","result_provider":"VARCHAR","result_destination":"VARCHAR"}""",
    "conversion": """{"event_id":"VARCHAR","event_type":"VARCHAR","timestamp":"VARCHAR","user_id":"VARCHAR",
        "session_id":"VARCHAR","click_event_id":"VARCHAR","booking_value":"DOUBLE","commission":"DOUBLE",
        "currency":"VARCHAR","product_type":"VARCHAR","provider":"VARCHAR"}""",
}
# The numbers at the top level of each event, which must be JSON numbers.
_NUMBERS = {
    "search": ("results_count", "page"),
    "click": ("result_position", "result_price"),
    "conversion": ("booking_value", "commission"),
}
_UUID = "^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$"
_COMMON_CHECKS = f"""regexp_full_match(coalesce(j.event_id, ''), '{_UUID}')
    AND regexp_full_match(coalesce(j.timestamp, ''), '\\d{{4}}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\d\\.\\d{{3}}Z')
    AND (j.user_id IS NULL OR regexp_full_match(j.user_id, 'user_\\d+'))
    AND regexp_full_match(coalesce(j.session_id, ''), 'sess_[0-9a-f]{{16}}')"""
_SCHEMA_CHECKS = {
    "search": """j.event_type = 'search' AND j.query IS NOT NULL AND j.results_count >= 0 AND j.page >= 1
        AND j.platform IN ('web', 'ios', 'android') AND j.device_type IN ('desktop', 'mobile', 'tablet')
        AND regexp_full_match(coalesce(j.geo.country, ''), '[A-Z]{2}') AND j.geo.city IS NOT NULL
        AND j.filters.start_date IS NOT NULL AND j.filters.travelers >= 1""",
    "click": f"""j.event_type = 'click' AND regexp_full_match(coalesce(j.search_event_id, ''), '{_UUID}')
        AND j.result_position >= 1 AND j.result_id IS NOT NULL AND j.result_price >= 0
        AND j.result_type IN ('flight', 'hotel', 'car', 'package') AND j.result_provider IS NOT NULL""",
    "conversion": f"""j.event_type = 'conversion' AND regexp_full_match(coalesce(j.click_event_id, ''), '{_UUID}')
        AND j.booking_value >= 0 AND j.commission >= 0 AND regexp_full_match(coalesce(j.currency, ''), '[A-Z]{{3}}')
        AND j.product_type IN ('flight', 'hotel', 'car', 'package') AND j.provider IS NOT NULL""",
}


class ReportError(ValueError):
    """The input cannot be reported on at all (no directory, no event file); one line for the user."""


# DuckDB's working memory. Beyond it, DuckDB spills tables and intermediate results to a temporary
# folder, so the report's peak memory stays near this figure (plus Python and matplotlib) whatever the
# input size. (A database file instead of an in-memory one bounds memory as well, but was slower on 1M events.)
MEMORY_LIMIT = "768MB"


@contextmanager
def connection(memory_limit: str = MEMORY_LIMIT) -> Iterator[duckdb.DuckDBPyConnection]:
    """A DuckDB connection with bounded memory, spilling to a temporary folder that is removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="searchflow-report-") as scratch:
        con = duckdb.connect(":memory:")
        try:
            con.execute(f"SET memory_limit = '{memory_limit}'")
            con.execute(f"SET temp_directory = '{Path(scratch) / 'spill'}'")
            con.execute("SET preserve_insertion_order = true")
            yield con
        finally:
            con.close()


def _has_lines(path: Path) -> bool:
    return path.exists() and path.stat().st_size > 0


def _sources(directory: Path) -> tuple[dict[str, list[Path]], str]:
    """Each event type's Parquet files (none unless its JSONL file is missing or empty), and the format read.

    The format: ``jsonl``, ``parquet``, or ``jsonl and parquet`` when the types are read from different ones.
    """
    files = {t: [] if _has_lines(directory / file_name(t)) else parquet_files(directory, t) for t in EVENT_TYPES}
    lines = any(_has_lines(directory / file_name(t)) for t in EVENT_TYPES)
    parquet = any(files.values())
    return files, "jsonl and parquet" if lines and parquet else "parquet" if parquet else "jsonl"


def _load(
    con: duckdb.DuckDBPyConnection, directory: Path, problems: list[dict[str, Any]]
) -> tuple[dict[str, int], str]:
    """Load each event type from its JSONL file, or else its Parquet dataset; note what is malformed or off-schema.

    Returns the schema failures and the format read (see ``_sources``).
    """
    failures: dict[str, int] = {}
    sources, input_format = _sources(directory)
    for event_type in EVENT_TYPES:
        table, files, path = f"j_{event_type}", sources[event_type], directory / file_name(event_type)
        # A type missing from a Parquet folder is named by its dataset, not by a file such a run does not write.
        name = dataset_label(event_type) if files or input_format == "parquet" else path.name
        if files:
            load_parquet(con, table, files, _STRUCTURES[event_type], problems, name)
        elif _has_lines(path):
            _load_lines(con, event_type, path, problems, failures)
        else:
            problems.append({"file": name, "line": None, "problem": "missing or empty"})
            con.execute(f"CREATE TABLE {table} (line_no BIGINT, j {duckdb_type(json.loads(_STRUCTURES[event_type]))})")
        checks = f"({_COMMON_CHECKS}) AND ({_SCHEMA_CHECKS[event_type]})"
        bad = con.execute(
            f"SELECT line_no FROM {table} WHERE NOT coalesce({checks}, false) ORDER BY line_no"
        ).fetchall()
        failures[event_type] = len(bad)
        problems.extend({"file": name, "line": n, "problem": "does not match the schema"} for (n,) in bad[:20])
        con.execute(f"DELETE FROM {table} WHERE NOT coalesce({checks}, false)")
    return failures, input_format


def _load_lines(
    con: duckdb.DuckDBPyConnection,
    event_type: str,
    path: Path,
    problems: list[dict[str, Any]],
    failures: dict[str, int],
) -> None:
    """Table ``j_<type>`` from its JSONL file, read as lines: malformed lines are noted and skipped."""
    raw, table = f"raw_{event_type}", f"j_{event_type}"
    read = f"""CREATE OR REPLACE TABLE {raw} AS SELECT row_number() OVER () AS line_no, line FROM read_csv(?,
        columns={{'line': 'VARCHAR'}}, delim='\\x01', quote='', escape='', header=false,
        auto_detect=false, max_line_size=1048576, strict_mode=false OPTIONS)"""
    try:
        con.execute(read.replace(" OPTIONS", ""), [str(path)])
    except duckdb.InvalidInputException as exc:
        # Bytes that are not UTF-8 (a binary or damaged file): skip those lines, measure the rest.
        con.execute(read.replace(" OPTIONS", ", ignore_errors=true"), [str(path)])
        kept = query_one(con, f"SELECT count(*) FROM {raw}")
        skipped = max(1, _count_lines(path) - kept)
        first = re.search(r"Line: (\d+)", str(exc))
        problems.append(
            {
                "file": path.name,
                "line": int(first.group(1)) if first else None,
                "problem": f"not JSON: {skipped:,} line(s) not UTF-8 text, skipped "
                "(line numbers after the first are off by up to that many)",
            }
        )
        failures[f"{event_type}_not_text"] = skipped
    for line_no, line in con.execute(
        f"SELECT line_no, left(line, 80) FROM {raw} WHERE NOT coalesce(json_valid(line), false) ORDER BY line_no"
    ).fetchall():
        problems.append({"file": path.name, "line": line_no, "problem": f"not JSON: {line!r}"})
    # DuckDB reads "12" as the number 12: a number sent as text is taken out, so the line fails the schema.
    text = "line"
    for field in _NUMBERS[event_type]:
        text = f"""CASE WHEN json_type(line, '$.{field}') = 'VARCHAR' THEN json_merge_patch({text}, '{{"{field}":null}}')
            ELSE {text} END"""
    con.execute(
        f"""CREATE TABLE {table} AS SELECT line_no, from_json({text}, '{" ".join(_STRUCTURES[event_type].split())}')
        AS j FROM {raw} WHERE coalesce(json_valid(line), false)"""
    )
    # A line of another schema version (a client release) is counted apart, and not measured.
    drifted = (
        f"SELECT line_no FROM {raw} WHERE coalesce(json_valid(line), false) AND json_exists(line, '$.schema_version')"
    )
    failures[f"{event_type}_drifted"] = int(query_one(con, f"SELECT count(*) FROM ({drifted})"))
    if failures[f"{event_type}_drifted"]:
        con.execute(f"DELETE FROM {table} WHERE line_no IN ({drifted})")
    con.execute(f"DROP TABLE {raw}")


def _flatten(con: duckdb.DuckDBPyConnection) -> None:
    """Typed tables: s (searches), c (clicks), v (conversions), sessions, with UTC and local times."""
    ts = "strptime(j.timestamp, '%Y-%m-%dT%H:%M:%S.%gZ')"
    con.execute(f"""CREATE TABLE s AS SELECT line_no, j.event_id AS event_id, {ts} AS ts, j.user_id AS user_id,
        j.session_id AS session_id, j.results_count AS results_count, j.page AS page, j.platform AS platform,
        j.device_type AS device, j.geo.country AS country, j.geo.city AS city, j.utm_source AS utm_source,
        j.utm_medium AS utm_medium, j.utm_campaign AS utm_campaign, TRY_CAST(j.filters.start_date AS DATE) AS start_date,
        TRY_CAST(j.filters.end_date AS DATE) AS end_date, j.filters.travelers AS travelers,
        j.filters.min_stars AS min_stars, j.filters.max_price AS max_price FROM j_search""")
    con.execute(f"""CREATE TABLE c AS SELECT line_no, j.event_id AS event_id, {ts} AS ts, j.user_id AS user_id,
        j.session_id AS session_id, j.search_event_id AS search_event_id, j.result_position AS position,
        j.result_type AS product, j.result_price AS price, j.result_provider AS provider, j.result_id AS result_id,
        j.result_destination AS destination FROM j_click""")
    con.execute(f"""CREATE TABLE v AS SELECT line_no, j.event_id AS event_id, {ts} AS ts, j.user_id AS user_id,
        j.session_id AS session_id, j.click_event_id AS click_event_id, j.booking_value AS value,
        j.commission AS commission, j.currency AS currency, j.product_type AS product FROM j_conversion""")
    cities = all_cities().sort("population", descending=True).unique(["country", "name"], keep="first")
    con.register("city_zones", cities.select("country", "name", "timezone", "population").to_arrow())
    currency = countries().select("code", "currency").to_arrow()
    con.register("country_currency", currency)
    con.execute("CREATE TABLE usd_rates (currency VARCHAR, rate DOUBLE)")
    con.executemany("INSERT INTO usd_rates VALUES (?, ?)", list(USD_RATES.items()))
    con.execute("""CREATE TABLE sessions AS SELECT session_id, any_value(user_id) AS user_id, any_value(platform) AS platform,
        any_value(device) AS device, any_value(country) AS country, any_value(city) AS city,
        any_value(utm_source) AS utm_source, any_value(utm_medium) AS utm_medium, min(ts) AS first_search,
        count(*) AS searches FROM s GROUP BY session_id""")
    con.execute("""CREATE TABLE session_zone AS SELECT x.session_id, coalesce(z.timezone, 'UTC') AS timezone,
        coalesce(r.rate, 1.0) AS usd_rate FROM sessions x LEFT JOIN city_zones z ON z.country = x.country AND z.name = x.city
        LEFT JOIN country_currency k ON k.code = x.country LEFT JOIN usd_rates r ON r.currency = k.currency""")
    for event_type in EVENT_TYPES:
        con.execute(f"DROP TABLE j_{event_type}")
    # A view: every section that reads local times computes them as it scans, nothing is stored twice.
    con.execute("""CREATE VIEW events AS SELECT e.kind, e.session_id,
        timezone(z.timezone, e.ts AT TIME ZONE 'UTC') AS local_ts FROM (
            SELECT 'search' AS kind, session_id, ts FROM s UNION ALL SELECT 'click', session_id, ts FROM c
            UNION ALL SELECT 'conversion', session_id, ts FROM v) e JOIN session_zone z USING (session_id)""")


def _count_lines(path: Path) -> int:
    """Lines in a file, a last one without a line end included."""
    count, last = 0, b"\n"
    with path.open("rb") as handle:
        while block := handle.read(1 << 22):
            count += block.count(b"\n")
            last = block[-1:]
    return count + (last != b"\n")


def _events_there(directory: Path) -> bool:
    """A JSONL file of events (even empty), or a Parquet dataset holding a file, is in ``directory``."""
    return any((directory / file_name(t)).exists() or parquet_files(directory, t) for t in EVENT_TYPES)


def check_input(directory: Path, input_name: str = "--input") -> None:
    """ReportError unless ``directory`` is a folder holding at least one of the event files or Parquet datasets."""
    try:
        directory.is_dir() and _events_there(directory)
    except (OSError, ValueError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ReportError(
            f"{input_name}={directory}: cannot be read ({reason.lower()}); point it at a run's OUTPUT_DIR"
        ) from None
    if not directory.is_dir():
        raise ReportError(f"{input_name}={directory}: not a directory; point it at the OUTPUT_DIR of a run")
    if not _events_there(directory):
        files, datasets = (", ".join(f(t) for t in EVENT_TYPES) for f in (file_name, dataset_label))
        raise ReportError(f"{input_name}={directory}: none of {files} or the Parquet datasets {datasets} is there")
    for event_type in EVENT_TYPES:
        # DuckDB cannot read a folder, and would wait forever on a FIFO: say so instead.
        kind = not_a_regular_file(directory / file_name(event_type))
        if kind is not None:
            raise ReportError(
                f"{input_name}={directory}: {file_name(event_type)} is {kind}, not a file of events; move it away"
            )


def build_report(
    directory: Path, top_cities: int = 10, input_name: str = "--input", config: Path | None = None
) -> dict[str, Any]:
    """Measure the events in ``directory``; every figure, target and problem, as JSON-ready data.

    ``input_name`` is how errors name the folder (the flag or variable the user set); ``config``
    is a settings file, read for the targets when there is no manifest.
    """
    check_input(directory, input_name)
    manifest = read_manifest(directory)
    if manifest and not (isinstance(manifest.get("settings"), dict) and isinstance(manifest.get("parameters"), dict)):
        manifest = None  # not a manifest of this generator: measure against the defaults
    # The run's own settings where a manifest says them; load_settings gives a bad value one line, not a traceback.
    # Only those that shape the events: the targets. Where they went, how fast and when are no target, and a
    # manifest of an earlier version may hold a rate or a start a run is no longer allowed.
    settings = load_settings(
        {
            k.lower(): v
            for k, v in manifest["settings"].items()
            if k.lower() in Settings.model_fields and k not in NOT_EVENT_SETTINGS
        }
        if manifest
        else {},
        config,
    )
    parameters = manifest["parameters"] if manifest else true_parameters(settings)
    with connection() as con:
        return _measure(con, directory, manifest, settings, parameters, top_cities)


def _measure(
    con: duckdb.DuckDBPyConnection,
    directory: Path,
    manifest: dict[str, Any] | None,
    settings: Settings,
    parameters: dict[str, Any],
    top_cities: int,
) -> dict[str, Any]:
    problems: list[dict[str, Any]] = []
    schema_failures, input_format = _load(con, directory, problems)
    not_text = sum(schema_failures.pop(f"{t}_not_text", 0) for t in EVENT_TYPES)
    drifted = {t: schema_failures.pop(f"{t}_drifted", 0) for t in EVENT_TYPES}
    if not query_one(con, "SELECT count(*) FROM j_search"):
        names = (file_name("search"), dataset_label("search"))
        first = next((p for p in problems if p["file"] in names), None)  # the source read, and what is wrong
        search = str(first["file"]) if first else names[input_format == "parquet"]
        why = str(first["problem"]) if first else "no event matches the schema"
        raise ReportError(f"--input={directory}: nothing to measure, not one valid search event in {search} ({why})")
    copies = drop_copies(con)  # every figure is measured on the events of people, as the site made them
    bots = drop_bots(con)
    _flatten(con)

    report: dict[str, Any] = {
        "input": str(directory),
        "input_format": input_format,
        "targets_from": "manifest.json"
        if manifest
        else "default settings and the environment (no manifest.json beside the files)",
        "counts": {t: query_one(con, f"SELECT count(*) FROM {k}") for t, k in zip(EVENT_TYPES, "scv", strict=True)},
        **figures(con, settings, parameters, top_cities),
    }
    report["lifecycle"] = lifecycle(con, directory, manifest)
    report["offers"] = offers(con, directory, parameters)
    report["integrity"]["schema_failures"] = schema_failures
    # Lines that are not JSON, one problem each, and lines that are not UTF-8 text, one problem per file.
    not_json = [p for p in problems if str(p["problem"]).startswith("not JSON")]
    report["integrity"]["malformed_lines"] = sum(1 for p in not_json if "not UTF-8" not in p["problem"]) + not_text
    report["faults"] = faults(con, directory, copies, drifted, bots, report["integrity"])
    report["problems"] = problems[:200]
    report["manifest"] = _runs(manifest)
    flag(report)
    return report


def _runs(manifest: dict[str, Any] | None) -> dict[str, Any] | None:
    """The manifest's last run (seed, window, mode) and every run into these files (``runs``)."""
    if not manifest:
        return None
    keys = ("seed", "window_start", "window_end", "mode", "rate", "counts", "written_at", "interrupted")
    last: dict[str, Any] = {k: manifest[k] for k in ("seed", "window_start", "window_end", "mode") if k in manifest}
    runs = manifest.get("runs") or [manifest]
    return {**last, "runs": [{k: run[k] for k in keys if k in run} for run in runs if isinstance(run, dict)]}
