"""The report's sections, each measured in SQL over the tables ``report`` loads (s, c, v, sessions, events)."""

from __future__ import annotations

from typing import Any

import duckdb

from ..config import DEVICES, PLATFORMS, PRODUCTS, Settings
from ..reference import all_cities
from .measure import query_first, query_one, query_rows, rate_entry
from .published import BACKLINKO, REALISM, SISTRIX_CTR

WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def figures(con: duckdb.DuckDBPyConnection, settings: Settings, parameters: dict[str, Any], top: int) -> dict[str, Any]:
    """Every section of the report."""
    return {
        "funnel": funnel(con, settings),
        "ranks": ranks(con, parameters),
        "rhythm": rhythm(con, parameters),
        "sessions": sessions(con, settings),
        "geography": geography(con, settings, top),
        "devices": devices(con, parameters),
        "channels": channels(con, parameters),
        "trips": trips(con),
        "money": money(con, settings),
        "integrity": integrity(con),
    }


def funnel(con: duckdb.DuckDBPyConnection, settings: Settings) -> dict[str, Any]:
    """Click-through rate = clicks / searches, conversion rate = conversions / clicks, as the platform measures them."""
    ctr, cvr = settings.click_through_rate, settings.conversion_rate
    searches, clicks, conversions = (query_one(con, f"SELECT count(*) FROM {t}") for t in "scv")
    by = query_rows(
        con,
        """SELECT x.platform, x.device, count(DISTINCT s.event_id) AS searches,
            (SELECT count(*) FROM c JOIN sessions y USING (session_id) WHERE y.platform = x.platform AND y.device = x.device) AS clicks,
            (SELECT count(*) FROM v JOIN sessions y USING (session_id) WHERE y.platform = x.platform AND y.device = x.device) AS conversions
        FROM s JOIN sessions x USING (session_id) GROUP BY 1, 2 ORDER BY 1, 2""",
    )
    segments = [
        {
            "platform": row["platform"],
            "device": row["device"],
            "click_through_rate": rate_entry(row["clicks"], row["searches"], None),
            "conversion_rate": rate_entry(row["conversions"], row["clicks"], None),
        }
        for row in by
    ]
    daily = query_rows(
        con,
        """SELECT d, count(*) FILTER (WHERE kind = 'search') AS searches, count(*) FILTER (WHERE kind = 'click') AS clicks, count(*) FILTER (WHERE kind = 'conversion') AS conversions
        FROM (SELECT CAST(local_ts AS DATE) AS d, kind FROM events) GROUP BY d ORDER BY d""",
    )
    return {
        "searches": searches,
        "clicks": clicks,
        "conversions": conversions,
        "click_through_rate": rate_entry(clicks, searches, ctr),
        "conversion_rate": rate_entry(conversions, clicks, cvr),
        "by_platform_and_device": segments,
        "daily": [
            {
                "day": str(r["d"]),
                "ctr": r["clicks"] / r["searches"] if r["searches"] else None,
                "cvr": r["conversions"] / r["clicks"] if r["clicks"] else None,
                "searches": int(r["searches"]),
            }
            for r in daily
        ],
    }


def ranks(con: duckdb.DuckDBPyConnection, parameters: dict[str, Any]) -> dict[str, Any]:
    """Share of clicks at ranks 1-10 (among clicks on the first ten ranks) against published curves."""
    counts = dict(con.execute("SELECT position, count(*) FROM c WHERE position <= 10 GROUP BY 1").fetchall())
    total = sum(counts.values()) or 1
    sistrix_total = sum(SISTRIX_CTR)
    model = examination_shares(parameters)
    rows = []
    for rank in range(1, 11):
        share = counts.get(rank, 0) / total
        published = SISTRIX_CTR[rank - 1] / sistrix_total
        rows.append(
            {
                "rank": rank,
                "share": share,
                "sistrix_share": published,
                "model_examination_share": model[rank - 1] if rank <= len(model) else None,
                "relative_to_sistrix": share / published - 1,
            }
        )
    beyond = query_one(con, "SELECT count(*) FROM c WHERE position > 10")
    clicks = query_one(con, "SELECT count(*) FROM c") or 1
    return {
        "by_rank": rows,
        "share_beyond_rank_10": beyond / clicks,
        "backlinko": BACKLINKO,
        "top_3_share": sum(r["share"] for r in rows[:3]),
        "model_examination": parameters.get("click_model", {}).get("examination"),
    }


def examination_shares(parameters: dict[str, Any]) -> list[float]:
    """The answer key's examination curve (click_model.examination_by_rank) over ranks 1-10, normalised to sum to 1.

    Empty when the manifest has no such curve. With a page shorter than ten, the curve has fewer ranks.
    """
    curve = parameters.get("click_model", {}).get("examination_by_rank") or []
    first = [float(x) for x in curve[:10] if isinstance(x, int | float)]
    total = sum(first)
    return [x / total for x in first] if total > 0 and len(first) == len(curve[:10]) else []


def rhythm(con: duckdb.DuckDBPyConnection, parameters: dict[str, Any]) -> dict[str, Any]:
    """Events by local hour of day and day of week (time zone of the user's home city)."""
    target = parameters.get("rhythm", {})
    total = query_one(con, "SELECT count(*) FROM events") or 1
    hours = dict(con.execute("SELECT hour(local_ts), count(*) FROM events GROUP BY 1").fetchall())
    days = dict(con.execute("SELECT isodow(local_ts) - 1, count(*) FROM events GROUP BY 1").fetchall())
    bookings = dict(
        con.execute("SELECT hour(local_ts), count(*) FROM events WHERE kind = 'conversion' GROUP BY 1").fetchall()
    )
    booking_total = sum(bookings.values()) or 1
    hour_target = target.get("hour_of_day_share_local", [None] * 24)
    day_target = target.get("day_of_week_share_local_monday_first", [None] * 7)
    whole_weeks = query_one(
        con, "SELECT (max(CAST(local_ts AS DATE)) - min(CAST(local_ts AS DATE)) + 1) / 7 FROM events"
    )
    return {
        "by_hour": [
            {
                "hour": h,
                "share": hours.get(h, 0) / total,
                "target": hour_target[h],
                "bookings_share": bookings.get(h, 0) / booking_total,
            }
            for h in range(24)
        ],
        "by_weekday": [
            {"weekday": WEEKDAYS[d], "share": days.get(d, 0) / total, "target": day_target[d]} for d in range(7)
        ],
        "weeks_covered": whole_weeks,
        "night_share_00_06": sum(hours.get(h, 0) for h in range(6)) / total,
        "evening_share_18_22": sum(hours.get(h, 0) for h in range(18, 22)) / total,
    }


def sessions(con: duckdb.DuckDBPyConnection, settings: Settings) -> dict[str, Any]:
    """Searches per session, session length, sessions per user, returning visits."""
    per = query_first(con, "SELECT avg(searches), median(searches) FROM sessions") or (None, None)
    length = query_first(
        con,
        """SELECT avg(seconds), median(seconds) FROM (SELECT session_id, epoch(max(ts) - min(ts)) AS seconds FROM
        (SELECT session_id, ts FROM s UNION ALL SELECT session_id, ts FROM c UNION ALL SELECT session_id, ts FROM v)
        GROUP BY session_id)""",
    )
    histogram = dict(con.execute("SELECT least(searches, 10), count(*) FROM sessions GROUP BY 1").fetchall())
    users = query_first(
        con,
        "SELECT count(*), avg(n), max(n) FROM (SELECT user_id, count(*) AS n FROM sessions WHERE user_id IS NOT NULL GROUP BY 1)",
    )
    all_sessions = query_one(con, "SELECT count(*) FROM sessions") or 1
    logged = query_one(con, "SELECT count(*) FROM sessions WHERE user_id IS NOT NULL")
    returning = logged - (users[0] or 0)  # a user's sessions after their first
    return {
        "sessions": all_sessions,
        "searches_per_session": {
            "mean": per[0],
            "median": per[1],
            "target_mean": settings.searches_per_session,
            "published": REALISM["searches_per_session"],
            "histogram": {str(k): histogram[k] for k in sorted(histogram)},
        },
        "session_seconds": {
            "mean": length[0],
            "median": length[1],
            "published_visit_minutes": REALISM["visit_minutes_mobile"],
        },
        "anonymous_share": {"value": 1 - logged / all_sessions, "target": settings.anonymous_rate},
        "users": users[0],
        "sessions_per_user": {"mean": users[1], "max": users[2]},
        "returning_visit_share": {"value": returning / all_sessions, "published": REALISM["returning_visitor_share"]},
    }


def geography(con: duckdb.DuckDBPyConnection, settings: Settings, top: int) -> dict[str, Any]:
    """Top home cities of logged-in users against their share of the population of the markets."""
    cities = all_cities()
    markets = settings.market_codes
    if markets is not None:
        cities = cities.filter(cities["country"].is_in(list(markets)))
    con.register("market_cities", cities.select("country", "name", "population").to_arrow())
    rows = query_rows(
        con,
        f"""WITH homes AS (SELECT country, city, count(DISTINCT user_id) AS users FROM sessions
                WHERE user_id IS NOT NULL GROUP BY 1, 2),
            total AS (SELECT sum(users) AS n FROM homes),
            people AS (SELECT country, name AS city, sum(population) AS population FROM market_cities GROUP BY 1, 2)
        SELECT p.country, p.city, coalesce(h.users, 0) AS users, coalesce(h.users, 0) / (SELECT n FROM total) AS share,
            p.population / (SELECT sum(population) FROM market_cities) AS population_share
        FROM people p LEFT JOIN homes h USING (country, city) ORDER BY p.population DESC LIMIT {top}""",
    )
    for row in rows:
        # No logged-in user in the files (a few anonymous searches): no share to hold against the population.
        measurable = row["share"] is not None and row["population_share"]
        row["relative"] = row["share"] / row["population_share"] - 1 if measurable else None
    countries = query_rows(con, "SELECT country, count(*) AS sessions FROM sessions GROUP BY 1 ORDER BY 2 DESC")
    return {"top_cities": rows, "sessions_by_country": countries}


def devices(con: duckdb.DuckDBPyConnection, parameters: dict[str, Any]) -> dict[str, Any]:
    """Sessions by platform and device, and whether apps ever ran on a desktop."""
    counts = {
        (p, d): n for p, d, n in con.execute("SELECT platform, device, count(*) FROM sessions GROUP BY 1, 2").fetchall()
    }
    total = sum(counts.values()) or 1
    matrix = [{"platform": p, **{d: counts.get((p, d), 0) / total for d in DEVICES}} for p in PLATFORMS]
    mobile = sum(n for (_, d), n in counts.items() if d == "mobile") / total
    return {
        "matrix_share_of_sessions": matrix,
        "apps_on_desktop": counts.get(("ios", "desktop"), 0) + counts.get(("android", "desktop"), 0),
        "mobile_share": {"value": mobile, "published": REALISM["mobile_traffic_share"]},
        "configured": parameters.get("devices", {}),
    }


def channels(con: duckdb.DuckDBPyConnection, parameters: dict[str, Any]) -> dict[str, Any]:
    """Sessions by UTM source and medium, against the configured mix of new and returning visits."""
    total = query_one(con, "SELECT count(*) FROM sessions") or 1
    rows = query_rows(
        con,
        "SELECT coalesce(utm_source, '(direct)') AS source, coalesce(utm_medium, '(none)') AS medium, count(*) AS sessions FROM sessions GROUP BY 1, 2 ORDER BY 3 DESC",
    )
    configured: dict[tuple[str, str], dict[str, float]] = {}
    for channel in parameters.get("channels", []):
        key = (channel["source"] or "(direct)", channel["medium"] or "(none)")
        entry = configured.setdefault(key, {"new": 0.0, "returning": 0.0})
        entry["new"] += channel["new_share"]
        entry["returning"] += channel["returning_share"]
    for row in rows:
        row["share"] = row["sessions"] / total
        shares = configured.get((row["source"], row["medium"]), {})
        row["configured_new_share"], row["configured_returning_share"] = shares.get("new"), shares.get("returning")
    return {"by_source_medium": rows}


def trips(con: duckdb.DuckDBPyConnection) -> dict[str, Any]:
    """Lead time (search day to trip start) and length of stay, overall and by device."""
    lead = query_rows(
        con,
        """SELECT x.device, avg(lead) AS mean, median(lead) AS median, avg(CAST(lead <= 7 AS INTEGER)) AS within_7, avg(CAST(lead <= 30 AS INTEGER)) AS within_30
        FROM (SELECT session_id, start_date - CAST(ts AS DATE) AS lead FROM s) JOIN sessions x USING (session_id)
        GROUP BY ROLLUP (x.device) ORDER BY x.device NULLS FIRST""",
    )
    stay = query_first(
        con, "SELECT avg(end_date - start_date), median(end_date - start_date) FROM s WHERE end_date IS NOT NULL"
    ) or (None, None)
    histogram = dict(
        con.execute("SELECT least(start_date - CAST(ts AS DATE), 120) // 7, count(*) FROM s GROUP BY 1").fetchall()
    )
    return {
        "lead_time_days": [{**row, "device": row["device"] or "all"} for row in lead],
        "lead_time_weeks_histogram": {str(int(k)): v for k, v in sorted(histogram.items())},
        "nights": {
            "mean": stay[0],
            "median": stay[1],
            "published_mean": REALISM["nights_mean"],
            "published_median": REALISM["nights_median"],
        },
        "published": {
            k: REALISM[k]
            for k in ("lead_time_mean_days", "lead_time_share_within_7_days", "lead_time_share_within_30_days")
        },
    }


def money(con: duckdb.DuckDBPyConnection, settings: Settings) -> dict[str, Any]:
    """Prices, booking values and commission by product, in US dollars at the packaged rates."""
    prices = query_rows(
        con,
        """SELECT c.product, avg(price / z.usd_rate) AS mean_usd, median(price / z.usd_rate) AS median_usd, count(*) AS clicks
        FROM c JOIN session_zone z USING (session_id) GROUP BY 1 ORDER BY 1""",
    )
    bookings = query_rows(
        con,
        # Commission is on the price booked, before taxes and fees: the clicked price.
        """SELECT v.product, avg(value / coalesce(r.rate, 1)) AS mean_value_usd,
            sum(commission) / sum(coalesce(k.price, value)) AS commission_share,
            count(*) AS bookings, avg(CAST(x.device = 'desktop' AS INTEGER)) AS desktop_share
        FROM v JOIN sessions x USING (session_id) LEFT JOIN usd_rates r ON r.currency = v.currency
        LEFT JOIN c k ON k.event_id = v.click_event_id GROUP BY 1 ORDER BY 1""",
    )
    rates = settings.commission_by_product
    for row in bookings:
        row["configured_commission"] = rates.get(row["product"])
        desktop_shares: dict[str, float] = REALISM["desktop_share_of_bookings"]  # type: ignore[assignment]
        row["published_desktop_share"] = desktop_shares.get(row["product"])
    by_device = query_rows(
        con,
        """SELECT x.device, avg(value / coalesce(r.rate, 1)) AS mean_value_usd, count(*) AS bookings FROM v
        JOIN sessions x USING (session_id) LEFT JOIN usd_rates r ON r.currency = v.currency GROUP BY 1 ORDER BY 1""",
    )
    desktop = next((r["mean_value_usd"] for r in by_device if r["device"] == "desktop"), None)
    for row in by_device:
        row["relative_to_desktop"] = row["mean_value_usd"] / desktop if desktop else None
    return {
        "click_prices": prices,
        "bookings": bookings,
        "bookings_by_device": by_device,
        "products": list(PRODUCTS),
        "published": {
            k: REALISM[k]
            for k in (
                "hotel_night_usd",
                "airfare_round_trip_usd",
                "car_day_usd",
                "smartphone_booking_value_vs_desktop",
                "commission",
            )
        },
    }


def integrity(con: duckdb.DuckDBPyConnection) -> dict[str, Any]:
    """Every check that must read 0 on the generator's own output."""
    checks = {
        "clicks_without_their_search": "SELECT count(*) FROM c LEFT JOIN s ON s.event_id = c.search_event_id WHERE s.event_id IS NULL",
        "clicks_not_after_their_search_in_the_session": """SELECT count(*) FROM c JOIN s ON s.event_id = c.search_event_id
            WHERE s.session_id <> c.session_id OR s.user_id IS DISTINCT FROM c.user_id OR s.ts >= c.ts""",
        "conversions_without_their_click": "SELECT count(*) FROM v LEFT JOIN c ON c.event_id = v.click_event_id WHERE c.event_id IS NULL",
        "conversions_not_after_their_click_in_the_session": """SELECT count(*) FROM v JOIN c ON c.event_id = v.click_event_id
            WHERE c.session_id <> v.session_id OR c.user_id IS DISTINCT FROM v.user_id OR c.ts >= v.ts OR c.product <> v.product""",
        "clicks_booked_twice": "SELECT count(*) - count(DISTINCT click_event_id) FROM v",
        "duplicate_event_ids": """SELECT count(*) - count(DISTINCT event_id) FROM
            (SELECT event_id FROM s UNION ALL SELECT event_id FROM c UNION ALL SELECT event_id FROM v)""",
        "sessions_with_ctr_above_1": """SELECT count(*) FROM (SELECT session_id, count(*) AS n FROM c GROUP BY 1) k
            JOIN sessions USING (session_id) WHERE k.n > searches""",
        "sessions_with_cvr_above_1": """SELECT count(*) FROM (SELECT session_id, count(*) AS n FROM v GROUP BY 1) b
            LEFT JOIN (SELECT session_id, count(*) AS n FROM c GROUP BY 1) k USING (session_id) WHERE b.n > coalesce(k.n, 0)""",
        "users_with_ctr_above_1": """SELECT count(*) FROM (SELECT user_id, count(*) AS n FROM c WHERE user_id IS NOT NULL GROUP BY 1) k
            JOIN (SELECT user_id, count(*) AS n FROM s GROUP BY 1) q USING (user_id) WHERE k.n > q.n""",
        "users_with_cvr_above_1": """SELECT count(*) FROM (SELECT user_id, count(*) AS n FROM v WHERE user_id IS NOT NULL GROUP BY 1) b
            LEFT JOIN (SELECT user_id, count(*) AS n FROM c GROUP BY 1) k USING (user_id) WHERE b.n > coalesce(k.n, 0)""",
        "apps_on_desktop": "SELECT count(*) FROM s WHERE platform IN ('ios', 'android') AND device = 'desktop'",
        "clicks_beyond_results_shown": """SELECT count(*) FROM c JOIN s ON s.event_id = c.search_event_id
            WHERE c.position > s.results_count""",
    }
    result: dict[str, Any] = {name: int(query_one(con, sql)) for name, sql in checks.items()}
    result["out_of_order_lines"] = {
        kind: int(
            query_one(
                con,
                f"SELECT count(*) FROM (SELECT ts < lag(ts) OVER (ORDER BY line_no) AS back FROM {table}) WHERE back",
            )
        )
        for kind, table in zip(("search", "click", "conversion"), "scv", strict=True)
    }
    return result
