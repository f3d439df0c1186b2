"""Faults injected on request (FAULTS, FAULT_*_RATE): found in the output as an analyst would, and matched
with the sidecar faults.jsonl, record for record; and a run without them unchanged."""

from __future__ import annotations

import hashlib
import json
import time
from collections import Counter
from itertools import pairwise
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import polars as pl
import pytest

from src.api import generate
from src.config import FAULT_KINDS, SettingsError, load_settings
from src.models import EVENT_TYPES, file_name
from src.output.batch import Lines
from src.output.encoding import XADD_EVENT_ID
from src.output.faults import FAULTS_FILE, WRONG_TYPE
from src.output.redis_streams import RedisPublisher, _anchor, _Chunk
from src.simulation.faults import MISSING_FIELDS

from .conftest import RedisServer, run_cli
from .test_live import start_cli
from .test_redis import kill_generator_connections

EVERY_KIND_AT_1 = {f"fault_{kind}_rate": 0.01 for kind in FAULT_KINDS}
WINDOW = {"window_start": "2026-01-05", "window_end": "2026-01-12"}
# The fields a line must have, non-null, to be whole (the others may be null by the schema).
REQUIRED = {t: [f for f, _ in MISSING_FIELDS[t]] for t in EVENT_TYPES}


def run(directory: Path, count: int, seed: int = 5, **settings: Any) -> Any:
    return generate(
        event_count=count, seed=seed, output_dir=directory, overwrite=True, quiet=True, **WINDOW, **settings
    )


def sidecar(directory: Path) -> pl.DataFrame:
    return pl.read_ndjson(directory / FAULTS_FILE, infer_schema_length=None)


def digests(directory: Path) -> dict[str, str]:
    return {
        str(p.relative_to(directory)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(directory.rglob("*"))
        if p.is_file() and p.name != "manifest.json"
    }


@pytest.fixture(scope="module")
def faulty(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every kind at 1 % on 200,000 events: about 2,000 of each (enough that a missed kind or off-by-one shows)."""
    directory = tmp_path_factory.mktemp("faulty")
    run(directory, 200_000, **EVERY_KIND_AT_1)
    return directory


@pytest.fixture(scope="module")
def classified(faulty: Path) -> pl.DataFrame:
    """``classify`` of the ``faulty`` run, read once for the tests that look at its lines."""
    return classify(faulty)


def classify(directory: Path) -> pl.DataFrame:
    """Every line of the three files as a quarantine step would see it: type, line, and what is wrong."""
    rows = []
    for event_type in EVENT_TYPES:
        numbers = {f: (int, float) for f in ("results_count", "result_position", "booking_value")}
        for line_number, raw in enumerate((directory / file_name(event_type)).read_bytes().splitlines(), 1):
            problem, event_id, event = "", None, None
            try:
                event = json.loads(raw.decode("utf-8"))
            except UnicodeDecodeError:
                problem = "invalid_utf8"
            except json.JSONDecodeError:
                problem = "not_json"
            if event is not None:
                event_id = event.get("event_id")
                field = WRONG_TYPE[event_type]
                if "schema_version" in event:
                    problem = "drift"
                elif field in event and event[field] is not None and not isinstance(event[field], numbers[field]):
                    problem = "wrong_type"
                elif any(event.get(f) is None for f in REQUIRED[event_type]):
                    problem = "missing"
            content = json.dumps({k: v for k, v in event.items() if k != "event_id"}) if event else None
            rows.append((event_type, line_number, problem, event_id, json.dumps(event) if event else None, content))
    schema = ["event_type", "line", "problem", "event_id", "event", "content"]
    return pl.DataFrame(rows, schema=schema, orient="row")


def test_every_kind_is_in_the_sidecar_and_the_manifest_sums_them(faulty: Path) -> None:
    """About 1 % of each kind; the manifest counts the sidecar's records; the events over the count are copies."""
    records = sidecar(faulty)
    counts = Counter(records["kind"].to_list())
    manifest = json.loads((faulty / "manifest.json").read_text())
    assert manifest["faults"]["counts"] == {kind: counts[kind] for kind in FAULT_KINDS}
    # 1 % of 200,000 is 2,000 (a click share for out_of_order, a share of users for clock skew):
    # a binomial count of 2,000 has a standard deviation of 45, so a third either way is a broken rate.
    searches_and_clicks = manifest["counts"]["search"] + manifest["counts"]["click"]
    assert 1300 < counts["duplicate"] < 2700 and 1300 < counts["late"] < 2700, counts
    assert 1300 < counts["malformed"] < 2700 and 1300 < counts["missing"] < 2700, counts
    assert 650 < counts["resend"] < 2700 and 1000 < counts["clock_skew"] < 4000, counts
    assert 0.3 * 0.01 * manifest["counts"]["click"] < counts["out_of_order"] < 0.012 * searches_and_clicks, counts
    # Drift: 1 % of users, from the middle of the window on: about 0.5 % of events, in the second half only.
    assert 400 < counts["drift"] < 1600, counts
    assert records.filter(pl.col("kind") == "drift")["timestamp"].min() >= "2026-01-08T12:00:00"
    # Bots: 1 % of searches, on top of the people's.
    assert 0.007 < counts["bot"] / manifest["counts"]["search"] < 0.013, counts
    assert sum(manifest["counts"].values()) == 200_000 + counts["duplicate"] + counts["resend"] + counts["bot"]


def test_malformed_and_missing_lines_are_found_exactly(faulty: Path, classified: pl.DataFrame) -> None:
    """Lines that do not parse, are not UTF-8, carry a string for a number or lack a field: exactly the sidecar's."""
    lines = classified
    records = sidecar(faulty)
    found = lines.filter(~pl.col("problem").is_in(["", "drift"]))
    expected = records.filter(pl.col("kind").is_in(["malformed", "missing"]))
    key = ["event_type", "line"]
    assert sorted(found.select(key).rows()) == sorted(expected.select(key).rows())
    drifted = lines.filter(pl.col("problem") == "drift").select(key).rows()
    assert sorted(drifted) == sorted(records.filter(pl.col("kind") == "drift").select(key).rows())
    ways = dict(zip(expected["line"].to_list(), expected["change"].to_list(), strict=True))
    by_problem = Counter()
    for event_type, line, problem in found.select("event_type", "line", "problem").rows():
        change = next(
            r for r in expected.filter((pl.col("event_type") == event_type) & (pl.col("line") == line))["change"]
        )
        by_problem[(problem, change.get("how"))] += 1
    assert ways  # the sidecar says how
    assert {p for p, _ in by_problem} == {"invalid_utf8", "not_json", "wrong_type", "missing"}
    assert all(
        how in {"invalid_utf8": {"invalid_utf8"}, "not_json": {"cut", "invalid_json"},
                "wrong_type": {"wrong_type"}, "missing": {"dropped", "null"}}[problem]
        for problem, how in by_problem
    ), by_problem  # fmt: skip


def test_duplicates_and_resends_are_found_exactly(faulty: Path, classified: pl.DataFrame) -> None:
    """A repeated event_id is a retry (the later line); the same event under a new id is a client's re-send."""
    records = sidecar(faulty)
    everything = classified
    for event_type in EVENT_TYPES:
        lines = everything.filter((pl.col("event_type") == event_type) & (pl.col("problem") == ""))
        con = duckdb.connect()
        con.register("lines", lines.to_arrow())
        retries = con.sql(
            "SELECT line FROM (SELECT line, row_number() OVER (PARTITION BY event_id ORDER BY line) AS n FROM lines) "
            "WHERE n > 1"
        ).fetchall()
        resends = con.sql(
            "SELECT line FROM (SELECT line, row_number() OVER (PARTITION BY content ORDER BY line) AS n FROM lines) "
            "WHERE n > 1"
        ).fetchall()
        resends = sorted(set(resends) - set(retries))
        mine = records.filter(pl.col("event_type") == event_type)
        assert sorted(retries) == sorted(mine.filter(pl.col("kind") == "duplicate").select("line").rows())
        assert resends == sorted(mine.filter(pl.col("kind") == "resend").select("line").rows())
        # The sidecar names the original: the event the copy repeats.
        copies = mine.filter(pl.col("kind").is_in(["duplicate", "resend"]))
        originals = set(lines["event_id"].to_list())
        assert set(copies["original_event_id"].to_list()) <= originals


def test_bot_sessions_are_found_exactly(faulty: Path) -> None:
    """Sessions of 10+ searches, a median gap under 5 s and no click: exactly the sessions of the sidecar's bots."""
    path = {t: str(faulty / file_name(t)) for t in EVENT_TYPES}
    con = duckdb.connect()
    # Bad lines (not JSON, not UTF-8) are read as nothing: the analyst's quarantine has them.
    con.execute(f"""CREATE TABLE s AS SELECT * FROM read_json('{path["search"]}', ignore_errors = true,
        columns = {{event_id: 'VARCHAR', session_id: 'VARCHAR', timestamp: 'VARCHAR'}})""")
    con.execute(f"""CREATE TABLE c AS SELECT * FROM read_json('{path["click"]}', ignore_errors = true,
        columns = {{session_id: 'VARCHAR'}})""")
    flagged = con.sql("""SELECT session_id FROM (SELECT session_id, count(*) AS n, median(gap) AS gap FROM (
        SELECT session_id, epoch_ms(timestamp::TIMESTAMP) - lag(epoch_ms(timestamp::TIMESTAMP))
            OVER (PARTITION BY session_id ORDER BY timestamp) AS gap FROM s WHERE session_id IS NOT NULL)
        GROUP BY 1) WHERE n >= 10 AND gap < 5000
        AND session_id NOT IN (SELECT session_id FROM c WHERE session_id IS NOT NULL)""").fetchall()
    records = sidecar(faulty).filter(pl.col("kind") == "bot")
    con.register("bots", records.select("event_id").to_arrow())
    sessions = con.sql("SELECT DISTINCT session_id FROM s JOIN bots USING (event_id)").fetchall()
    assert len(sessions) > 20
    assert sorted(flagged) == sorted(sessions)
    events = con.sql("SELECT count(*) FROM s WHERE session_id IN (SELECT session_id FROM bots JOIN s USING (event_id))")
    assert events.fetchall() == [(records.height,)]


def test_late_and_skewed_events_stand_out_from_their_neighbours(faulty: Path, classified: pl.DataFrame) -> None:
    """A search line whose time is minutes off the lines around it is late or from a skewed clock, and vice versa.

    The searches arrive about one every 4 s, so the median of the 50 lines around a line is within about
    two minutes of when it was delivered; 5 minutes off is a late event or a wrong clock (or a retry
    delivered that late, which the sidecar lists as such), and every such fault of 10 minutes or more shows.
    """
    lines = classified.filter((pl.col("event_type") == "search") & (pl.col("problem") == ""))
    times = lines.select(
        "line", pl.col("event").str.json_path_match("$.timestamp").str.to_datetime(time_zone="UTC").alias("ts")
    ).with_columns(pl.col("ts").dt.epoch("ms").alias("ms"))
    times = times.with_columns((pl.col("ms") - pl.col("ms").rolling_median(51, center=True)).alias("off"))
    off = set(times.filter(pl.col("off").abs() > 300_000)["line"].to_list())
    records = sidecar(faulty).filter(pl.col("event_type") == "search")
    delay = pl.col("change").struct.field("delay_ms")
    skew = pl.col("change").struct.field("offset_ms")
    explained = records.filter(pl.col("kind").is_in(["late", "clock_skew", "duplicate", "resend"]))
    assert off <= set(explained["line"].to_list())
    # Away from the file's ends, where the lines around are too few or all late themselves.
    inside = (pl.col("line") > 25) & (pl.col("delivered_at") < "2026-01-11T23:00:00")
    visible = records.filter(inside & (((pl.col("kind") == "late") & (delay >= 600_000)) | (skew.abs() >= 600_000)))
    assert len(visible) > 300
    assert set(visible["line"].to_list()) <= off


def test_a_click_ahead_of_its_search_is_seen_in_the_interleaved_output(tmp_path: Path) -> None:
    """On standard output, a click line before its search's line: every out_of_order record, and nothing unexplained."""
    settings = {"fault_out_of_order_rate": 0.05, "fault_late_rate": 0.01}
    result = run_cli("--count", "30000", "--seed", "3", "--output", "stdout", "--start", "2026-01-05",
                     env={"OUTPUT_DIR": str(tmp_path), **{k.upper(): str(v) for k, v in settings.items()}})  # fmt: skip
    assert result.returncode == 0, result.stderr
    seen: dict[str, int] = {}
    ahead = set()
    for number, line in enumerate(result.stdout.splitlines(), 1):
        event = json.loads(line)
        if event["event_type"] == "search":
            seen[event["event_id"]] = number
        elif event["event_type"] == "click" and event["search_event_id"] not in seen:
            ahead.add(event["event_id"])
    records = sidecar(tmp_path)
    out_of_order = set(records.filter(pl.col("kind") == "out_of_order")["event_id"].to_list())
    late_searches = set(records.filter((pl.col("kind") == "late") & (pl.col("event_type") == "search"))["event_id"])
    assert len(out_of_order) > 200
    assert out_of_order <= ahead
    # A click can also be ahead of a search that arrived late; nothing else puts one there.
    events = [json.loads(line) for line in result.stdout.splitlines()]
    clicks = {e["event_id"]: e["search_event_id"] for e in events if e["event_type"] == "click"}
    assert all(clicks[c] in late_searches for c in ahead - out_of_order)
    # The sidecar's line is the line on standard output.
    lines = result.stdout.splitlines()
    for record in records.head(50).iter_rows(named=True):
        assert json.loads(lines[record["line"] - 1])["event_id"] == record["event_id"]


def test_the_same_seed_gives_the_same_faults_with_any_number_of_workers(tmp_path: Path) -> None:
    """Faults are drawn per shard from the seed: one worker or two write the same bytes, sidecar included."""
    run(tmp_path / "one", 60_000, workers=1, faults="chaos")
    run(tmp_path / "two", 60_000, workers=2, faults="chaos")
    assert digests(tmp_path / "one") == digests(tmp_path / "two")
    assert (tmp_path / "one" / FAULTS_FILE).stat().st_size > 100_000


def test_no_fault_settings_write_what_a_run_without_the_feature_writes(tmp_path: Path) -> None:
    """FAULTS=none and every rate 0 write the default run's bytes, and no sidecar; an overwrite removes an old one."""
    run(tmp_path / "default", 30_000)
    zero = {f"fault_{kind}_rate": 0.0 for kind in FAULT_KINDS}
    run(tmp_path / "zero", 30_000, faults="none", **zero)
    assert digests(tmp_path / "default") == digests(tmp_path / "zero")
    assert not (tmp_path / "default" / FAULTS_FILE).exists()
    manifest = json.loads((tmp_path / "default" / "manifest.json").read_text())
    assert "faults" not in manifest
    run(tmp_path / "again", 30_000, faults="light")
    assert (tmp_path / "again" / FAULTS_FILE).exists()
    run(tmp_path / "again", 30_000)
    assert not (tmp_path / "again" / FAULTS_FILE).exists()


def test_presets_and_overrides(tmp_path: Path) -> None:
    """A preset's rates, one kind overridden by its own setting; a bad value is one line naming the setting."""
    settings = load_settings({"faults": "light", "fault_late_rate": 0.2, "output_dir": tmp_path})
    rates = settings.fault_rates()
    assert rates["late"] == 0.2 and rates["duplicate"] == 0.002
    assert load_settings({"fault_late_rate": 0, "faults": "chaos"}).fault_rates()["late"] == 0
    for bad, name in (({"faults": "mild"}, "--faults"), ({"fault_late_rate": 0.9}, "FAULT_LATE_RATE")):
        with pytest.raises(SettingsError, match=name):
            load_settings(bad)
    env = {"OUTPUT_DIR": str(tmp_path), "FAULT_DUPLICATE_RATE": "0.5", "FAULT_LATE_RATE": "0.5",
           "FAULT_MISSING_RATE": "0.2"}  # fmt: skip
    result = run_cli("--count", "10", env=env)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "FAULT_MISSING_RATE=0.2" in result.stderr, result.stderr
    result = run_cli("--count", "10", env={"OUTPUT_DIR": str(tmp_path), "FAULT_DRIFT_AT": "soon"})
    assert result.returncode == 2 and result.stderr.startswith("error: FAULT_DRIFT_AT=soon: expected an ISO 8601")


def test_the_drift_starts_at_its_release(tmp_path: Path) -> None:
    """FAULT_DRIFT_AT: no event before it has schema version 2, and about the share asked for after it do."""
    run(tmp_path, 40_000, fault_drift_rate=0.5, fault_drift_at="2026-01-10T06:00:00Z")
    records = sidecar(tmp_path).filter(pl.col("kind") == "drift")
    assert records["timestamp"].min() >= "2026-01-10T06:00:00"
    lines = [json.loads(line) for line in (tmp_path / file_name("search")).read_text().splitlines()]
    after = [e for e in lines if e["timestamp"] >= "2026-01-10T06:00:00"]
    share = sum("schema_version" in e for e in after) / len(after)
    # Half of the users (and anonymous sessions); the share of their events varies with how active they
    # are, so a wide band: a broken draw gives 0 or 1.
    assert 0.3 < share < 0.7, share
    assert all(e.get("device") and "device_type" not in e for e in after if "schema_version" in e)


def test_parquet_rows_land_in_the_partition_of_their_delivery(tmp_path: Path) -> None:
    """Late events land in a later date partition (beyond the window too), with their own timestamp."""
    run(tmp_path, 40_000, output="file,parquet", fault_late_rate=0.05)
    records = sidecar(tmp_path).filter(pl.col("kind") == "late")
    search = duckdb.sql(
        f"SELECT event_id, timestamp, date FROM read_parquet('{tmp_path}/search_events/*/*.parquet', "
        "hive_partitioning = true)"
    ).pl()
    joined = records.filter(pl.col("event_type") == "search").join(search, on="event_id")
    assert joined.height == records.filter(pl.col("event_type") == "search").height > 300
    assert (("date=" + joined["date"].cast(pl.String)) == joined["partition"]).all()
    assert (joined["date"].cast(pl.String) > joined["timestamp"].str.slice(0, 10)).sum() > 10
    assert joined["date"].max() > pl.Series(["2026-01-11"]).str.to_date()[0]
    assert search.height == len((tmp_path / file_name("search")).read_bytes().splitlines())


def test_a_missing_field_is_a_null_in_parquet(tmp_path: Path) -> None:
    """In Parquet a field left out or sent as null is a null (of a nullable column), for exactly the sidecar's rows."""
    run(tmp_path, 30_000, output="parquet", fault_missing_rate=0.05)
    records = sidecar(tmp_path).filter(pl.col("kind") == "missing")
    assert records.height > 1000
    for event_type, fields in REQUIRED.items():
        nulls = " OR ".join(f"{field} IS NULL" for field in fields)
        table = duckdb.sql(
            f"SELECT event_id, {', '.join(fields)} FROM read_parquet('{tmp_path}/{event_type}_events/*/*.parquet') "
            f"WHERE {nulls}"
        ).pl()
        expected = records.filter(pl.col("event_type") == event_type)
        found = [(row["event_id"], next(f for f in fields if row[f] is None)) for row in table.iter_rows(named=True)]
        wanted = [(r["event_id"], r["change"]["field"]) for r in expected.iter_rows(named=True)]
        assert sorted(found) == sorted(wanted), event_type


def test_injected_retries_reach_redis_once_each_through_lost_connections(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    """With retries at 5 %, connections killed mid-run: each stream holds the file's lines, once each, in order.

    Malformed lines (not UTF-8 too), missing fields and drift go to the streams as to the files, byte for byte.

    A retry has its original's event_id, so finding where Redis stopped by the last event_id sent
    would take a retry's chunk for its original's; the sender anchors on events that are not retries.
    """
    env = {"REDIS_PORT": str(redis_server.port), "OUTPUT_DIR": str(tmp_path), "STREAM_MAXLEN": "0",
           "FAULT_DUPLICATE_RATE": "0.05", "FAULT_MALFORMED_RATE": "0.02", "FAULT_MISSING_RATE": "0.02",
           "FAULT_DRIFT_RATE": "0.1"}  # fmt: skip
    proc = start_cli("--mode", "continuous", "--rate", "3000", "--duration", "6", "--output", "both", env=env)
    killed = kill_generator_connections(redis_server)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 0, stderr
    assert all(n >= 1 for n in killed) and "reconnected" in stderr, (killed, stderr)
    admin = redis_server.client()
    duplicates = 0
    for event_type in EVENT_TYPES:
        lines = (tmp_path / file_name(event_type)).read_bytes().splitlines()
        entries = admin.xrange(f"searchflow:events:{event_type}")
        assert [fields[b"data"] for _, fields in entries] == lines, event_type
        duplicates += len(lines) - len({fields[b"event_id"] for _, fields in entries})
    records = sidecar(tmp_path)
    assert duplicates == records.filter(pl.col("kind") == "duplicate").height > 100
    assert set(records["stream"].to_list()) <= {f"searchflow:events:{t}" for t in EVENT_TYPES}


def test_a_chunk_of_retries_alone_is_found_in_redis_only_when_it_is_there(redis_server: RedisServer) -> None:
    """After a lost reply, a chunk holding only a retry of the stream's top entry is not taken for applied.

    The retry's event_id is its original's, on top of the stream already: looking for the chunk's
    last event_id would say it is in and lose it. Its anchor is the original, one entry below it.
    """
    client = redis_server.client()
    publisher = RedisPublisher(client, f"127.0.0.1:{redis_server.port}", prefix="t", maxlen=0)
    try:
        original = b"6c1f0a52-8a1e-4d7e-9d3b-0e6f3e1c2a10"
        client.xadd("t:search", {"data": b"{}", "event_id": original, "event_type": b"search"})
        command = b"*9\r\n" + XADD_EVENT_ID + original + b"\r\n"
        commands = Lines(memoryview(command), np.array([0, len(command)]))
        anchor = _anchor(commands, np.array([True]), 0, 1, (original, 0))
        assert anchor == (original, 1)
        retry_only = _Chunk([1, 0, 0], [], [anchor, None, None])
        assert publisher._applied_prefix([retry_only]) == 0
        client.xadd("t:search", {"data": b"{}", "event_id": original, "event_type": b"search"})
        assert publisher._applied_prefix([retry_only]) == 1
    finally:
        publisher.close()


def test_parquet_alone_gets_the_same_rows_and_no_text_faults(tmp_path: Path) -> None:
    """Without JSON nothing is malformed or drifted; every other fault (a missing field: a null) is as with JSON."""
    run(tmp_path / "alone", 30_000, output="parquet", faults="chaos")
    run(tmp_path / "both", 30_000, output="file,parquet", faults="chaos")
    datasets = {t: f"{t}_events" for t in EVENT_TYPES}
    for name in datasets.values():
        assert len(digests(tmp_path / "alone" / name)) >= 7
        assert digests(tmp_path / "alone" / name) == digests(tmp_path / "both" / name)
    alone, both = sidecar(tmp_path / "alone"), sidecar(tmp_path / "both")
    assert not alone.filter(pl.col("kind").is_in(["malformed", "drift"])).height
    text_kinds = both.filter(pl.col("kind").is_in(["malformed", "drift"]))
    assert text_kinds.height > 300
    key = ["kind", "event_id", "partition"]
    assert sorted(alone.select(key).rows()) == sorted(both.join(text_kinds, on=key, how="anti").select(key).rows())


def test_the_report_finds_the_faults_and_measures_the_clean_events(faulty: Path, tmp_path: Path) -> None:
    """The report takes out exactly the sidecar's copies and bad lines, and the funnel reads its targets."""
    result = run_cli("report", "--input", str(faulty), "--out", str(tmp_path / "report.html"))
    assert result.returncode == 0, result.stderr
    report = json.loads((tmp_path / "report.json").read_text())
    compared = {row["kind"]: row for row in report["faults"]["sidecar"]["compared"]}
    for kind in ("duplicate", "resend", "malformed and missing", "drift", "bot"):
        assert compared[kind]["found"] == compared[kind]["injected"] > 400, compared[kind]
    # Searches far off in time: a search 5 minutes off its neighbours' median is seen unless its
    # neighbours are off too or it sits at the file's ends; the count agrees to a few percent.
    timing = next(row for kind, row in compared.items() if kind.startswith("searches late"))
    assert abs(timing["found"] - timing["injected"]) < 0.1 * timing["injected"], timing
    for rate in ("click_through_rate", "conversion_rate"):
        assert report["funnel"][rate]["within_ci"], report["funnel"][rate]
    manifest = json.loads((faulty / "manifest.json").read_text())
    records = sidecar(faulty)
    removed = records.filter(pl.col("kind").is_in(["duplicate", "resend", "malformed", "missing", "drift", "bot"]))
    for event_type in EVENT_TYPES:
        gone = removed.filter(pl.col("event_type") == event_type).height
        assert report["counts"][event_type] == manifest["counts"][event_type] - gone
    assert report["integrity"]["duplicate_event_ids"] == 0
    assert "faults: " in result.stderr and "taken out" in result.stderr
    assert '<section id="faults">' in (tmp_path / "report.html").read_text()


def test_the_report_finds_copies_in_parquet_too(tmp_path: Path) -> None:
    """Retries and re-sends in Parquet datasets are found by the same queries as in JSONL."""
    run(tmp_path, 30_000, output="parquet", fault_duplicate_rate=0.02, fault_resend_rate=0.02)
    result = run_cli("report", "--input", str(tmp_path))
    assert result.returncode == 0, result.stderr
    report = json.loads((tmp_path / "report.json").read_text())
    compared = {row["kind"]: row for row in report["faults"]["sidecar"]["compared"]}
    assert compared["duplicate"]["found"] == compared["duplicate"]["injected"] > 300
    assert compared["resend"]["found"] == compared["resend"]["injected"] > 300


def test_a_live_run_delivers_late_events_in_a_later_slice(tmp_path: Path) -> None:
    """Continuous mode catching up from 3 minutes ago: late events arrive after events of later times, once due.

    Only what arrived before the run ended is in the files and the sidecar: a late event due after
    the end never arrives, as in a real stream.
    """
    start = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 180))
    env = {"OUTPUT_DIR": str(tmp_path), "FAULT_LATE_RATE": "0.2", "FAULT_DUPLICATE_RATE": "0.02"}
    result = run_cli("--mode", "continuous", "--rate", "100", "--duration", "3", "--start", start, env=env)
    assert result.returncode == 0, result.stderr
    records = sidecar(tmp_path)
    late = records.filter(pl.col("kind") == "late")
    # A fifth of 18,000 events late, a tenth of those (lognormal, median 30 min) due within 3 minutes.
    assert late.height > 50
    ended = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime())
    assert (late["delivered_at"] > late["timestamp"]).all() and (late["delivered_at"] <= ended).all()
    for event_type in EVENT_TYPES:
        lines = (tmp_path / file_name(event_type)).read_text().splitlines()
        for record in records.filter(pl.col("event_type") == event_type).iter_rows(named=True):
            event = json.loads(lines[record["line"] - 1])
            assert (event["event_id"], event["timestamp"][:19]) == (record["event_id"], record["timestamp"][:19])
        # A late line comes after lines of later times: the files are in order of arrival.
        stamps = [json.loads(line)["timestamp"] for line in lines]
        assert any(a > b for a, b in pairwise(stamps)) or event_type == "conversion"


@pytest.mark.slow
def test_every_kind_at_1_percent_on_a_million_events(tmp_path: Path) -> None:
    """The issue's run: every kind at 1 % on 1,000,000 events; the report finds exactly what it can see.

    CTR and CVR of the clean events inside their 95 % intervals; copies, bad lines, drifted lines
    and bot searches found equal the sidecar's; searches off in time within 5 % of it.
    """
    run(tmp_path, 1_000_000, **EVERY_KIND_AT_1)
    result = run_cli("report", "--input", str(tmp_path), timeout=600)
    assert result.returncode == 0, result.stderr
    report = json.loads((tmp_path / "report.json").read_text())
    compared = {row["kind"]: row for row in report["faults"]["sidecar"]["compared"]}
    for kind in ("duplicate", "resend", "malformed and missing", "drift", "bot"):
        assert compared[kind]["found"] == compared[kind]["injected"] > 4000, compared[kind]
    timing = next(row for kind, row in compared.items() if kind.startswith("searches late"))
    assert abs(timing["found"] - timing["injected"]) < 0.05 * timing["injected"], timing
    for rate in ("click_through_rate", "conversion_rate"):
        assert report["funnel"][rate]["within_ci"], report["funnel"][rate]
