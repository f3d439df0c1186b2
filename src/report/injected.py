"""Faults in the input: what the report finds by itself, set beside what the run says it injected.

A run with ``FAULTS`` writes ``faults.jsonl``; any input may hold faults of its own. The
report finds what the data shows (lines that are not JSON or fail the schema, repeated
events, bot sessions, events far off the time of the lines around them), takes the repeats
and the bots out so that every figure is measured on the events of the site's people as
they made them, and, with a sidecar, counts its records by kind beside what was found.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb

from ..models import EVENT_TYPES
from ..output.faults import FAULTS_FILE
from .measure import query_one

BOT_SEARCHES = 10  # a session of this many searches or more, at machine pace and without a click, is a bot
BOT_GAP_MS = 5_000  # ... machine pace: a median gap between its searches under 5 s
OFF_MS = 300_000  # a line 5 minutes off the median time of the lines around it is out of its place in time
AROUND = 25  # lines on each side that give the time a line was delivered at
# The fields of an event that a client's re-send repeats: all but its event_id.
_NOT_THE_ID = "json_merge_patch(to_json(j), '{\"event_id\":null}')"


def drop_copies(con: duckdb.DuckDBPyConnection) -> dict[str, dict[str, int]]:
    """Take out of each ``j_<type>`` table the later copies of an event; how many, per kind and type.

    ``duplicate``: an event_id seen on an earlier line (a retry). ``resend``: the same event
    (every field but the event_id) as an earlier line under a new id (a client that sent it again).
    """
    found: dict[str, dict[str, int]] = {"duplicate": {}, "resend": {}}
    for event_type in EVENT_TYPES:
        table = f"j_{event_type}"
        found["duplicate"][event_type] = _delete_later(con, table, "j.event_id", "true")
        # Only events that share a session and a time can be the same event: compare those whole.
        shared = f"""(j.session_id, j.timestamp) IN (SELECT (j.session_id, j.timestamp) FROM {table}
            GROUP BY ALL HAVING count(*) > 1)"""
        found["resend"][event_type] = _delete_later(con, table, f"md5({_NOT_THE_ID})", shared)
    return found


def drop_bots(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    """Take the searches of bot sessions out of ``j_search``: how many searches, in how many sessions.

    A bot session: BOT_SEARCHES or more searches, a median gap under BOT_GAP_MS between them,
    and no click. People's sessions reach that many searches only rarely, and then slowly.
    """
    ts = "epoch_ms(strptime(j.timestamp, '%Y-%m-%dT%H:%M:%S.%gZ'))"
    con.execute(f"""CREATE OR REPLACE TEMP TABLE bot_sessions AS SELECT session_id FROM (
        SELECT session_id, count(*) AS n, median(gap) AS gap FROM (SELECT j.session_id AS session_id,
            {ts} - lag({ts}) OVER (PARTITION BY j.session_id ORDER BY {ts}) AS gap FROM j_search)
        GROUP BY 1) WHERE n >= {BOT_SEARCHES} AND gap < {BOT_GAP_MS}
        AND session_id NOT IN (SELECT j.session_id FROM j_click WHERE j.session_id IS NOT NULL)""")
    sessions = int(query_one(con, "SELECT count(*) FROM bot_sessions"))
    before = int(query_one(con, "SELECT count(*) FROM j_search"))
    if sessions:
        con.execute("DELETE FROM j_search WHERE j.session_id IN (SELECT session_id FROM bot_sessions)")
    searches = before - int(query_one(con, "SELECT count(*) FROM j_search"))
    con.execute("DROP TABLE bot_sessions")
    return {"searches": searches, "sessions": sessions}


def _delete_later(con: duckdb.DuckDBPyConnection, table: str, key: str, where: str) -> int:
    later = f"""SELECT line_no FROM (SELECT line_no, row_number() OVER (PARTITION BY {key} ORDER BY line_no) AS n
        FROM {table} WHERE {where}) WHERE n > 1"""
    con.execute(f"CREATE OR REPLACE TEMP TABLE later AS {later}")
    count = int(query_one(con, "SELECT count(*) FROM later"))
    if count:
        con.execute(f"DELETE FROM {table} WHERE line_no IN (SELECT line_no FROM later)")
    con.execute("DROP TABLE later")
    return count


def off_in_time(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    """Search lines more than OFF_MS behind or ahead of the median time of the AROUND lines on each side.

    Lines are in order of delivery: one far behind arrived late (or its device's clock is
    slow), one far ahead comes from a clock that is fast. Searches only: they are the densest
    (clicks and bookings are too far apart in time for their neighbours to tell).
    """
    off = f"""SELECT epoch_ms(ts) - median(epoch_ms(ts)) OVER (ORDER BY line_no ROWS BETWEEN {AROUND} PRECEDING
        AND {AROUND} FOLLOWING) AS off FROM s"""
    behind, ahead = con.execute(
        f"SELECT count(*) FILTER (off < -{OFF_MS}), count(*) FILTER (off > {OFF_MS}) FROM ({off})"
    ).fetchone() or (0, 0)
    return {"behind": int(behind), "ahead": int(ahead)}


def faults(
    con: duckdb.DuckDBPyConnection,
    directory: Path,
    copies: dict[str, dict[str, int]],
    drifted: dict[str, int],
    bots: dict[str, int],
    integrity: dict[str, Any],
) -> dict[str, Any]:
    """The faults found in the input, and with a sidecar, its records by kind beside them.

    ``drifted`` are the lines of another schema version per type (taken out as they were read).
    """
    timing = off_in_time(con)
    found = {
        "duplicate": sum(copies["duplicate"].values()),
        "resend": sum(copies["resend"].values()),
        "drift": sum(drifted.values()),
        "bot": bots["searches"],
        "bot_sessions": bots["sessions"],
        "malformed_or_missing": integrity["malformed_lines"] + sum(integrity["schema_failures"].values()),
        "searches_behind": timing["behind"],
        "searches_ahead": timing["ahead"],
    }
    result: dict[str, Any] = {"found": found, "by_type": {**copies, "drift": drifted}, "sidecar": None}
    path = directory / FAULTS_FILE
    if not path.exists() or not path.stat().st_size:
        return result
    con.execute(
        "CREATE TEMP TABLE sidecar AS SELECT kind, event_type, change FROM read_json(?, columns={'kind': 'VARCHAR', "
        "'event_type': 'VARCHAR', 'change': 'JSON'}, "
        "format='newline_delimited')",
        [str(path)],
    )
    kinds = dict(con.execute("SELECT kind, count(*) FROM sidecar GROUP BY kind").fetchall())
    far = int(
        query_one(
            con,
            f"""SELECT count(*) FROM sidecar WHERE event_type = 'search' AND ((kind = 'late' AND (change->>'delay_ms')::BIGINT >= {OFF_MS})
            OR (kind = 'clock_skew' AND abs((change->>'offset_ms')::BIGINT) >= {OFF_MS}))""",
        )
    )
    injected = {kind: int(kinds.get(kind, 0)) for kind in sorted(kinds)}
    result["sidecar"] = {
        "file": FAULTS_FILE,
        "injected": injected,
        "compared": [
            _row("duplicate", injected.get("duplicate", 0), found["duplicate"], "an event_id on an earlier line"),
            _row("resend", injected.get("resend", 0), found["resend"], "every field but the id on an earlier line"),
            _row(
                "malformed and missing",
                injected.get("malformed", 0) + injected.get("missing", 0),
                found["malformed_or_missing"],
                "lines that are not JSON, not UTF-8, or fail the schema",
            ),
            _row("drift", injected.get("drift", 0), found["drift"], "lines with a schema_version (version 2)"),
            _row(
                "bot",
                injected.get("bot", 0),
                found["bot"],
                f"searches of sessions with {BOT_SEARCHES}+ searches, under {BOT_GAP_MS // 1000} s apart, no click",
            ),
            _row(
                f"searches late, or with a clock off, by {OFF_MS // 60_000} min or more",
                far,
                timing["behind"] + timing["ahead"],
                f"search lines over {OFF_MS // 60_000} min off the median of the {2 * AROUND} around them",
            ),
        ],
        "not_seen_in_files": {k: injected[k] for k in ("out_of_order",) if k in injected},
    }
    return result


def _row(kind: str, injected: int, found: int, how: str) -> dict[str, Any]:
    return {"kind": kind, "injected": injected, "found": found, "how": how}
