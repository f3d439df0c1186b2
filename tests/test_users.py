"""Users with a life, measured as an analyst would: timelines, returning visits, sign-ups, churn, trips, holidays.

Everything here reads the issue's run (1,000,000 events over the 28 days before
2026-11-29, seed 1: the ``reported`` fixture) back from its files with DuckDB.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
import json
from pathlib import Path

import duckdb
import pytest

from tests.conftest import run_cli


@pytest.fixture(scope="module")
def con(reported: tuple[Path, dict]) -> duckdb.DuckDBPyConnection:
    directory, _ = reported
    con = duckdb.connect()
    columns = "{'session_id': 'VARCHAR', 'user_id': 'VARCHAR', 'timestamp': 'VARCHAR'}"
    con.execute(
        f"""CREATE TABLE ev AS
        SELECT session_id, user_id, CAST(timestamp AS TIMESTAMP) AS ts, 'search' AS kind, geo.country AS country
            FROM read_json('{directory}/search_events.jsonl',
            columns={{'session_id': 'VARCHAR', 'user_id': 'VARCHAR', 'timestamp': 'VARCHAR',
            'geo': 'STRUCT(country VARCHAR, city VARCHAR)'}})
        UNION ALL SELECT session_id, user_id, CAST(timestamp AS TIMESTAMP), 'click', NULL
            FROM read_json('{directory}/click_events.jsonl', columns={columns})
        UNION ALL SELECT session_id, user_id, CAST(timestamp AS TIMESTAMP), 'conversion', NULL
            FROM read_json('{directory}/conversion_events.jsonl', columns={columns})"""
    )
    con.execute(
        """CREATE TABLE s AS SELECT session_id, any_value(user_id) AS user_id, min(ts) AS first_ts, max(ts) AS last_ts,
        any_value(country) AS country, count(*) FILTER (WHERE kind = 'conversion') AS bookings
        FROM ev GROUP BY 1"""
    )
    con.execute(f"CREATE TABLE u AS SELECT * FROM read_json('{directory}/users.jsonl')")
    return con


def _one(con: duckdb.DuckDBPyConnection, sql: str) -> float:
    return con.execute(sql).fetchall()[0][0]


def test_a_users_sessions_never_overlap_nor_come_within_the_session_timeout(con) -> None:
    """0 pairs of one user's sessions overlap, and 0 start within 30 minutes of the end of the one before."""
    pairs = con.execute(
        """SELECT count(*) FILTER (WHERE first_ts < previous_end),
            count(*) FILTER (WHERE first_ts < previous_end + INTERVAL 30 MINUTE), count(*)
        FROM (SELECT first_ts, lag(last_ts) OVER (PARTITION BY user_id ORDER BY first_ts) AS previous_end
              FROM s WHERE user_id IS NOT NULL) WHERE previous_end IS NOT NULL"""
    ).fetchall()[0]
    assert pairs[2] > 50_000  # plenty of users come back
    assert pairs[:2] == (0, 0)


def test_returning_visits_are_near_the_published_share(con) -> None:
    """Returning visits read 27-37 % of sessions (Databox: about 32 %), measured two ways.

    In the files alone (a user's sessions after their first in the window), and with the
    answer key (every session of a user but the one they signed up in). The band is the
    issue's; sampling error on about 315,000 sessions is a tenth of a point.
    """
    sessions = _one(con, "SELECT count(*) FROM s")
    in_window = _one(con, "SELECT count(user_id) - count(DISTINCT user_id) FROM s")
    signups = _one(
        con, "SELECT count(*) FROM s JOIN u USING (user_id) WHERE s.first_ts = CAST(u.signed_up_at AS TIMESTAMP)"
    )
    logged = _one(con, "SELECT count(user_id) FROM s")
    assert 0.27 <= in_window / sessions <= 0.37
    assert 0.27 <= (logged - signups) / sessions <= 0.37


def test_new_users_sign_up_in_every_week(con) -> None:
    """Every full week of the window has first sessions of new users, at a steady pace (within 20 % of the mean).

    About 20,000 sign-ups a week: Poisson noise is under 1 %, the calendar moves a week a few percent.
    """
    weeks = [
        n
        for (n,) in con.execute(
            """SELECT count(*) FROM (SELECT CAST(floor(date_diff('day', DATE '2026-11-01',
                CAST(signed_up_at AS TIMESTAMP)) / 7) AS INTEGER) AS week FROM u
                WHERE CAST(signed_up_at AS TIMESTAMP) >= TIMESTAMP '2026-11-01'
                AND CAST(signed_up_at AS TIMESTAMP) < TIMESTAMP '2026-11-29') GROUP BY week ORDER BY week"""
        ).fetchall()
    ]
    assert len(weeks) == 4
    mean = sum(weeks) / 4
    assert min(weeks) > 0.8 * mean and max(weeks) < 1.2 * mean, weeks


def test_churn_labels_are_in_the_answer_key_and_no_one_returns_after_churning(con) -> None:
    """Some users churn within the window (a Weibull hazard rising with inactivity); none has a session after."""
    churned = _one(con, "SELECT count(*) FROM u WHERE churned_at IS NOT NULL")
    users = _one(con, "SELECT count(*) FROM u")
    assert 0.005 < churned / users < 0.5
    late = _one(
        con,
        """SELECT count(*) FROM s JOIN u USING (user_id)
        WHERE u.churned_at IS NOT NULL AND s.first_ts > CAST(u.churned_at AS TIMESTAMP)""",
    )
    assert late == 0


def test_a_booking_ends_its_session_and_its_trip(con) -> None:
    """0 sessions book twice, and no session has an event after its booking."""
    assert _one(con, "SELECT count(*) FROM s WHERE bookings > 1") == 0
    after = _one(
        con,
        """SELECT count(*) FROM ev e JOIN (SELECT session_id, ts FROM ev WHERE kind = 'conversion') b
        USING (session_id) WHERE e.ts > b.ts""",
    )
    assert after == 0


def test_activity_is_heavy_tailed_but_human(con) -> None:
    """The 99.9th percentile of sessions per user per week and of bookings per user per month stay human.

    Documented in the README: about 18 sessions a week and 5 to 6 bookings a month at the 99.9th
    percentile. That percentile of bookings is the 11th highest of about 11,000 booking
    user-months, so it moves by a whole booking from seed to seed (measured 5 and 6 on seeds 1
    and 2, with and without the page jitter); the bounds leave room for another seed.
    """
    sessions_p999 = _one(
        con,
        """SELECT quantile_cont(n, 0.999) FROM (SELECT user_id, date_trunc('week', first_ts), count(*) AS n
        FROM s WHERE user_id IS NOT NULL GROUP BY 1, 2)""",
    )
    bookings_p999 = _one(
        con,
        """SELECT quantile_cont(n, 0.999) FROM (SELECT user_id, date_trunc('month', first_ts), sum(bookings) AS n
        FROM s WHERE user_id IS NOT NULL GROUP BY 1, 2 HAVING sum(bookings) > 0)""",
    )
    heaviest = _one(
        con, "SELECT max(n) FROM (SELECT user_id, count(*) AS n FROM s WHERE user_id IS NOT NULL GROUP BY 1)"
    )
    assert 5 <= sessions_p999 <= 25
    assert bookings_p999 <= 7
    assert heaviest <= 100  # 28 days: fewer than four sessions a day for the most active user


def test_us_thanksgiving_is_quiet_and_the_deal_days_busy(con) -> None:
    """US sessions on Thanksgiving Day (2026-11-26) are at least 15 % under the Thursdays before, Black Friday busier.

    Dates are US Central days, as an analyst of US traffic would count them (UTC days put a US
    evening, the busiest hours, into the next day and halve the dip); each day has about 7,000
    US sessions, so the calendar's -25 % (measured -24 %) stands far outside a few percent of noise.
    """
    daily = dict(
        con.execute(
            """SELECT timezone('America/Chicago', timezone('UTC', first_ts))::DATE, count(*) FROM s
            WHERE country = 'US' GROUP BY 1"""
        ).fetchall()
    )
    thursdays = [daily[dt.date(2026, 11, d)] for d in (5, 12, 19)]
    fridays = [daily[dt.date(2026, 11, d)] for d in (6, 13, 20)]
    assert daily[dt.date(2026, 11, 26)] < 0.85 * sum(thursdays) / 3
    assert daily[dt.date(2026, 11, 27)] > 1.05 * sum(fridays) / 3


@pytest.mark.parametrize("workers", ["2", "4"])
def test_any_number_of_workers_writes_the_same_bytes(tmp_path: Path, workers: str) -> None:
    """--workers 1, 2 and 4 give byte-identical files for the same seed and settings."""
    digests = []
    for w in ("1", workers):
        out = tmp_path / w
        result = run_cli(
            "--count", "150000", "--seed", "8", "--end", "2026-06-01", "--workers", w, "--output-dir", str(out), "-q"
        )
        assert result.returncode == 0, result.stderr
        digests.append(
            [
                hashlib.sha256((out / f"{t}_events.jsonl").read_bytes()).hexdigest()
                for t in ("search", "click", "conversion")
            ]
            + [hashlib.sha256((out / "users.jsonl").read_bytes()).hexdigest()]
        )
    assert digests[0] == digests[1]


def test_the_answer_keys_written_in_pieces_are_the_same_bytes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """users.jsonl and items.jsonl are rendered a chunk of rows at a time (bounded memory for ten million
    users): chunks of 7 rows give the same files as one chunk holding every row."""
    from src import api
    from src.output import answer_key

    digests = []
    for rows in (10**9, 7):
        monkeypatch.setattr(answer_key, "KEY_CHUNK_ROWS", rows)
        out = tmp_path / str(rows)
        api.generate(event_count=20_000, seed=4, window_end="2026-03-02T00:00:00Z", output_dir=out, workers=1)
        digests.append(
            [hashlib.sha256((out / name).read_bytes()).hexdigest() for name in ("users.jsonl", "items.jsonl")]
        )
        numbers = [int(json.loads(line)["user_id"].removeprefix("user_")) for line in (out / "users.jsonl").open()]
        assert len(numbers) > 7
        # The shards' tables interleave the numbers: the file is in order of user all the same.
        assert all(a < b for a, b in itertools.pairwise(numbers))
    assert digests[0] == digests[1]


@pytest.mark.parametrize("overwrite", [False, True])
def test_an_answer_key_whose_later_chunk_fails_leaves_no_line_of_the_run(
    tmp_path: Path, overwrite: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A chunk rendered after others were written can fail too (out of memory): the file is cut back to
    the lines before the run (appending) or removed (an overwrite), and the error goes on."""
    import polars as pl

    from src.output.answer_key import write_key

    old = b'{"user_id":"user_1"}\n'
    (tmp_path / "users.jsonl").write_bytes(old)
    frame = pl.DataFrame({"n": range(10)})

    def render(rows: pl.DataFrame) -> pl.DataFrame:
        if rows["n"][0] >= 4:
            raise MemoryError
        return rows

    monkeypatch.setattr("src.output.answer_key.KEY_CHUNK_ROWS", 4)
    with pytest.raises(MemoryError):
        write_key(tmp_path, "users.jsonl", frame, overwrite, render)
    if overwrite:
        assert not (tmp_path / "users.jsonl").exists()
    else:
        assert (tmp_path / "users.jsonl").read_bytes() == old
