"""Users' lives as the files and the answer key show them: returning visits, activity, sign-ups, churn, holidays.

Reads the tables ``load`` made (``sessions``, ``session_zone``, ``v``) and, when it is beside
the files, ``users.jsonl`` (the answer key of sign-up and churn times).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb

from .measure import query_one, query_rows
from .published import REALISM

USERS_FILE = "users.jsonl"


def lifecycle(con: duckdb.DuckDBPyConnection, directory: Path, manifest: dict[str, Any] | None) -> dict[str, Any]:
    """Returning visits against Databox's 32 %, sessions per user per week, sign-ups and churn, holidays."""
    sessions = query_one(con, "SELECT count(*) FROM sessions") or 0
    logged = query_one(con, "SELECT count(user_id) FROM sessions") or 0
    distinct = query_one(con, "SELECT count(DISTINCT user_id) FROM sessions") or 0
    per_week = query_rows(
        con,
        """SELECT avg(n) AS mean, quantile_cont(n, 0.5) AS p50, quantile_cont(n, 0.99) AS p99,
            quantile_cont(n, 0.999) AS p999, max(n) AS max FROM (SELECT user_id, date_trunc('week', first_search) AS w,
            count(*) AS n FROM sessions WHERE user_id IS NOT NULL GROUP BY 1, 2)""",
    )
    bookings = query_rows(
        con,
        """SELECT quantile_cont(n, 0.999) AS p999, max(n) AS max FROM (SELECT user_id, date_trunc('month', ts) AS m,
            count(*) AS n FROM v WHERE user_id IS NOT NULL GROUP BY 1, 2)""",
    )
    result: dict[str, Any] = {
        "returning_visit_share_in_files": {
            "value": (logged - distinct) / sessions if sessions else None,
            "published": REALISM["returning_visitor_share"],
            "how": "a user's sessions after their first one in the files, over all sessions",
        },
        "sessions_per_user_per_week": per_week[0] if per_week else {},
        "bookings_per_user_per_month": bookings[0] if bookings else {},
    }
    path = directory / USERS_FILE
    if path.exists() and path.stat().st_size:
        con.execute(
            """CREATE TABLE users AS SELECT user_id, CAST(signed_up_at AS TIMESTAMP) AS signed_up_at,
            CAST(churned_at AS TIMESTAMP) AS churned_at FROM read_json(?, columns={'user_id': 'VARCHAR',
            'signed_up_at': 'VARCHAR', 'churned_at': 'VARCHAR'}, ignore_errors=true)""",
            [str(path)],
        )
        signups = query_one(
            con, "SELECT count(*) FROM sessions x JOIN users u USING (user_id) WHERE x.first_search = u.signed_up_at"
        )
        result["returning_visit_share"] = {
            "value": (logged - signups) / sessions if sessions else None,
            "published": REALISM["returning_visitor_share"],
            "how": "every logged-in session but the one a user signed up in (users.jsonl), over all sessions",
        }
        first, last = (manifest or {}).get("window_start"), (manifest or {}).get("window_end")
        bounds = f"d >= DATE '{first[:10]}' AND d < DATE '{last[:10]}'" if first and last else "TRUE"
        result["signups_and_churn_by_day"] = query_rows(
            con,
            f"""SELECT d AS day, sum(signed) AS signups, sum(churned) AS churned FROM (
                SELECT CAST(signed_up_at AS DATE) AS d, 1 AS signed, 0 AS churned FROM users
                UNION ALL SELECT CAST(churned_at AS DATE), 0, 1 FROM users WHERE churned_at IS NOT NULL)
            WHERE {bounds} GROUP BY 1 ORDER BY 1""",
        )
        for row in result["signups_and_churn_by_day"]:
            row["day"] = str(row["day"])
    special = ((manifest or {}).get("parameters", {}).get("calendar", {}) or {}).get("special_days") or []
    result["holidays"] = _holidays(con, special)
    return result


def _holidays(con: duckdb.DuckDBPyConnection, special: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Sessions on each special day of the calendar against the ordinary days of the same weekday, per market."""
    if not special:
        return []
    con.execute("CREATE TABLE special_days (country VARCHAR, day DATE, name VARCHAR, kind VARCHAR)")
    con.executemany(
        "INSERT INTO special_days VALUES (?, CAST(? AS DATE), ?, ?)",
        [(d["country"], d["date"], d["name"], d["kind"]) for d in special],
    )
    con.execute(
        """CREATE TABLE local_days AS SELECT x.country, CAST(timezone(z.timezone, x.first_search AT TIME ZONE 'UTC')
        AS DATE) AS day, count(*) AS sessions FROM sessions x JOIN session_zone z USING (session_id) GROUP BY 1, 2"""
    )
    rows = query_rows(
        con,
        """WITH ordinary AS (SELECT l.country, dayofweek(l.day) AS dow, avg(l.sessions) AS sessions FROM local_days l
                ANTI JOIN special_days s ON s.country = l.country AND s.day = l.day
                WHERE l.day > (SELECT min(day) FROM local_days) AND l.day < (SELECT max(day) FROM local_days)
                GROUP BY 1, 2)
        SELECT s.country, CAST(s.day AS VARCHAR) AS day, s.name, s.kind, l.sessions, o.sessions AS ordinary_same_weekday,
            l.sessions / o.sessions AS ratio
        FROM special_days s JOIN local_days l ON l.country = s.country AND l.day = s.day
        JOIN ordinary o ON o.country = s.country AND o.dow = dayofweek(s.day)
        WHERE l.day > (SELECT min(day) FROM local_days) AND l.day < (SELECT max(day) FROM local_days)
        ORDER BY s.country, s.day""",
    )
    return rows
