"""Prices and offers: fares against distance, hotel nights, and bookings by price against comparable clicks.

Reads the tables ``load`` made (``s``, ``c``, ``v``, ``session_zone``); prices are turned into US
dollars at the packaged rates, as everywhere in the report. Distances are great-circle km from
the user's home city (``geo``) to the destination's airport (``src.reference``). Hotel stars come
from ``items.jsonl``, the answer key of every inventory item, when it is beside the files.
"""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from ..output.files import not_a_regular_file
from ..output.items import ITEMS_FILE
from ..reference import airports, all_cities, destinations, great_circle_km
from .measure import query_first, query_one, query_rows, wilson
from .published import REALISM

DISTANCE_BANDS_KM = (0, 500, 1000, 2000, 4000, 8000)  # each band up to the next edge; the last has no end
TOP_DESTINATIONS = 10
QUINTILES = 5
ROOM_CAPACITY = 4  # travellers a room sleeps where the answer key does not say (money.room_capacity)
FARE_PRODUCTS = "('flight', 'package')"  # their price depends on where the user flies from and how soon


def offers(con: duckdb.DuckDBPyConnection, directory: Path, parameters: dict[str, Any]) -> dict[str, Any]:
    """Fares against distance, hotel nights by stars and destination, booking rate by price position."""
    _places(con)
    money = parameters.get("money") or {}
    return {
        "fares": fares(con),
        "hotel_nights": hotel_nights(con, directory, money),
        "price_position": price_position(con, parameters),
    }


def _places(con: duckdb.DuckDBPyConnection) -> None:
    """``home_places``: home cities whose name is one city of its country; ``destination_places``: airports."""
    cities = (
        all_cities()
        .group_by("country", "name")
        .agg(pl.len().alias("cities"), pl.col("latitude").first(), pl.col("longitude").first())
        .filter(pl.col("cities") == 1)
    )
    con.register("home_places", cities.select("country", "name", "latitude", "longitude").to_arrow())
    ports = airports().select("iata", pl.col("latitude").alias("lat"), pl.col("longitude").alias("lon"))
    places = destinations().join(ports, on="iata", how="left").select("name", "country", "lat", "lon")
    con.register("destination_places", places.to_arrow())


def _price(key: str) -> float:
    """A published price of ``published.REALISM``, in US dollars."""
    value = REALISM[key]
    if not isinstance(value, int | float):
        raise TypeError(f"{key} is not a single figure")
    return float(value)


def fares(con: duckdb.DuckDBPyConnection) -> dict[str, Any]:
    """Round-trip fare per traveller against great-circle km from home; the US domestic mean against BTS."""
    con.execute(
        """CREATE TABLE fare_clicks AS SELECT s.country AS home_country, s.city AS home_city, c.destination,
            c.price / z.usd_rate / s.travelers AS fare_usd
        FROM c JOIN s ON s.event_id = c.search_event_id JOIN session_zone z ON z.session_id = c.session_id
        WHERE c.product = 'flight' AND s.end_date IS NOT NULL AND s.travelers >= 1"""
    )
    names = ["home_country", "home_city", "destination", "latitude", "longitude", "lat", "lon", "us_domestic"]
    pairs = pl.DataFrame(
        con.execute(
            """SELECT DISTINCT f.home_country, f.home_city, f.destination, h.latitude, h.longitude, d.lat, d.lon,
                f.home_country = 'US' AND d.country = 'US' AS us_domestic
            FROM fare_clicks f JOIN home_places h ON h.country = f.home_country AND h.name = f.home_city
            JOIN destination_places d ON d.name = f.destination WHERE d.lat IS NOT NULL"""
        ).fetchall(),
        schema=dict.fromkeys(names[:3], pl.String)
        | dict.fromkeys(names[3:7], pl.Float64)
        | {"us_domestic": pl.Boolean},
        orient="row",
    )
    home, airport = pairs.select("latitude", "longitude").to_numpy().T, pairs.select("lat", "lon").to_numpy().T
    km = great_circle_km(home[0], home[1], airport[0], airport[1])
    routes = pairs.select("home_country", "home_city", "destination", "us_domestic").with_columns(pl.Series("km", km))
    con.register("fare_routes", routes.to_arrow())
    con.execute(
        """CREATE TABLE fare_km AS SELECT f.fare_usd, r.km, r.us_domestic FROM fare_clicks f
        JOIN fare_routes r USING (home_country, home_city, destination)"""
    )
    clicks = query_one(con, "SELECT count(*) FROM fare_clicks")
    edges = DISTANCE_BANDS_KM
    band = " ".join(f"WHEN km < {high} THEN {i}" for i, high in enumerate(edges[1:]))
    measured = {
        row.pop("band"): row
        for row in query_rows(
            con,
            f"""SELECT CASE {band} ELSE {len(edges) - 1} END AS band, count(*) AS clicks, avg(km) AS mean_km,
                avg(fare_usd) AS mean_usd, median(fare_usd) AS median_usd, quantile_cont(fare_usd, 0.25) AS p25_usd,
                quantile_cont(fare_usd, 0.75) AS p75_usd FROM fare_km GROUP BY 1""",
        )
    }
    by_distance = []
    for i, low in enumerate(edges):
        high = edges[i + 1] if i + 1 < len(edges) else None
        row = measured.get(i) or {"clicks": 0, "mean_km": None, "mean_usd": None, "median_usd": None}
        row.setdefault("p25_usd", None)
        row.setdefault("p75_usd", None)
        per_km = row["mean_usd"] / row["mean_km"] if row["mean_usd"] is not None and row["mean_km"] else None
        label = f"{low:,}-{high:,} km" if high is not None else f"{low:,}+ km"
        by_distance.append({"band": label, "low_km": low, "high_km": high, **row, "usd_per_km": per_km})
    correlation, with_distance = query_first(con, "SELECT corr(fare_usd, km), count(*) FROM fare_km")
    us = query_rows(
        con,
        """SELECT count(*) AS clicks, avg(fare_usd) AS mean_usd, median(fare_usd) AS median_usd, avg(km) AS mean_km
        FROM fare_km WHERE us_domestic""",
    )[0]
    published = _price("airfare_round_trip_usd")
    us["published_usd"] = published
    us["relative"] = us["mean_usd"] / published - 1 if us["mean_usd"] is not None else None
    return {
        "round_trip_clicks": clicks,
        "with_distance": with_distance,
        "correlation": correlation,
        "by_distance": by_distance,
        "us_domestic": us,
        "how": "round-trip flight clicks (the search has an end date), result_price / travelers in USD, against "
        "great-circle km from the home city (geo.city and geo.country; a name two cities of a country share is "
        "left out) to the destination's airport; US domestic: a US home city and a US destination",
    }


def hotel_nights(con: duckdb.DuckDBPyConnection, directory: Path, money: dict[str, Any]) -> dict[str, Any]:
    """Price per room night of hotel clicks: overall, US destinations against STR, top destinations, by stars."""
    capacity = money.get("room_capacity")
    capacity = capacity if isinstance(capacity, int) and capacity >= 1 else ROOM_CAPACITY
    con.execute(
        f"""CREATE TABLE night_clicks AS SELECT c.result_id, c.destination, d.country AS destination_country,
            c.price / z.usd_rate / (s.end_date - s.start_date) / ((s.travelers + {capacity - 1}) // {capacity}) AS night_usd
        FROM c JOIN s ON s.event_id = c.search_event_id JOIN session_zone z ON z.session_id = c.session_id
        LEFT JOIN destination_places d ON d.name = c.destination
        WHERE c.product = 'hotel' AND s.end_date > s.start_date AND s.travelers >= 1"""
    )
    stats = "count(*) AS clicks, avg(night_usd) AS mean_usd, median(night_usd) AS median_usd"
    overall = query_rows(
        con,
        f"""SELECT {stats}, quantile_cont(night_usd, 0.999) AS p999_usd, max(night_usd) AS max_usd
        FROM night_clicks""",
    )[0]
    us = query_rows(
        con,
        f"""SELECT {stats}, quantile_cont(night_usd, 0.999) AS p999_usd FROM night_clicks
        WHERE destination_country = 'US'""",
    )[0]
    published = _price("hotel_night_usd")
    us["published_usd"] = published
    us["relative"] = us["mean_usd"] / published - 1 if us["mean_usd"] is not None else None
    top = query_rows(
        con,
        f"""SELECT destination, any_value(destination_country) AS country, {stats} FROM night_clicks
        GROUP BY destination ORDER BY clicks DESC, destination LIMIT {TOP_DESTINATIONS}""",
    )
    items = _item_stars(con, directory)
    result: dict[str, Any] = {
        "all": overall,
        "us_destinations": us,
        "top_destinations": top,
        "items": items,
        "by_stars": None,
        "room_capacity": capacity,
        "how": f"a room night is result_price / nights / rooms in USD, rooms = ceil(travelers / {capacity})",
    }
    if items["present"]:
        rows = query_rows(
            con,
            f"""SELECT i.stars, {stats} FROM night_clicks n JOIN item_stars i USING (result_id)
            GROUP BY 1 ORDER BY 1""",
        )
        factors = money.get("hotel_star_night_factor") or []
        three = next((r["mean_usd"] for r in rows if r["stars"] == 3), None)
        for row in rows:
            stars = row["stars"]
            row["relative_to_3_stars"] = row["mean_usd"] / three if three else None
            has_factor = len(factors) >= 3 and isinstance(stars, int) and 1 <= stars <= len(factors)
            row["model_relative_to_3_stars"] = factors[stars - 1] / factors[2] if has_factor else None
        hotels = overall["clicks"] or 0
        matched = sum(r["clicks"] for r in rows)
        items["hotel_clicks_matched"] = matched
        items["matched_share"] = matched / hotels if hotels else None
        result["by_stars"] = rows
    return result


def _item_stars(con: duckdb.DuckDBPyConnection, directory: Path) -> dict[str, Any]:
    """Table ``item_stars`` (result_id, stars) from ``items.jsonl``; what the file held, or why it was not read.

    A result_id names an item within its seed: a file of several seeds' items gives some ids
    several hotels, and those whose stars differ are left out.
    """
    path = directory / ITEMS_FILE
    entry: dict[str, Any] = {"file": ITEMS_FILE, "present": False}
    kind = not_a_regular_file(path) if path.exists() else None
    if not path.exists() or kind is not None or path.stat().st_size == 0:
        entry["note"] = f"{ITEMS_FILE} is {kind}, not a file of items" if kind else f"no {ITEMS_FILE} beside the events"
        return entry
    try:
        con.execute(
            """CREATE TABLE items AS SELECT seed, type, result_id, stars FROM read_json(?, format='newline_delimited',
            columns={'seed': 'BIGINT', 'type': 'VARCHAR', 'result_id': 'VARCHAR', 'stars': 'BIGINT'},
            ignore_errors=true)""",
            [str(path)],
        )
    except duckdb.Error as exc:
        entry["note"] = f"{ITEMS_FILE} cannot be read: {str(exc).splitlines()[0]}"
        return entry
    con.execute(
        """CREATE TABLE item_stars AS SELECT result_id, min(stars) AS stars FROM items
        WHERE type = 'hotel' AND result_id IS NOT NULL AND stars IS NOT NULL GROUP BY 1 HAVING count(DISTINCT stars) = 1"""
    )
    hotels, seeds, unreadable = query_first(
        con,
        """SELECT count(*) FILTER (WHERE type = 'hotel'), count(DISTINCT seed), count(*) FILTER (WHERE type IS NULL)
        FROM items""",
    )
    entry.update(
        present=hotels > 0,
        hotels=hotels,
        seeds=seeds,
        lines_without_a_type=unreadable,
        hotel_ids_with_one_star_rating=query_one(con, "SELECT count(*) FROM item_stars"),
    )
    if not hotels:
        entry["note"] = f"{ITEMS_FILE} holds no hotel"
    return entry


def _lead_band(parameters: dict[str, Any]) -> str:
    """SQL for a click's band of days before departure, as the answer key moves fares (or one band)."""
    moves = ((parameters.get("money") or {}).get("price_moves") or {}).get("flight_lead_days_factor") or []
    bounds = [b[0] for b in moves if isinstance(b, list) and b and isinstance(b[0], int | float)]
    if not bounds:
        return "0"
    lead = "s.start_date - CAST(timezone(z.timezone, s.ts AT TIME ZONE 'UTC') AS DATE)"
    return "CASE " + " ".join(f"WHEN {lead} <= {b} THEN {i}" for i, b in enumerate(bounds)) + f" ELSE {len(bounds)} END"


def price_position(con: duckdb.DuckDBPyConnection, parameters: dict[str, Any]) -> dict[str, Any]:
    """Share of clicks booked by quintile of price against comparable clicks' median.

    Comparable: the same product, destination, nights, party and search filters (star floor,
    price cap); for flights and packages also the same home city (its airport is the origin)
    and band of days before departure (fares rise near it). Groups of one click are left out.
    """
    con.execute(
        f"""CREATE TABLE price_clicks AS
        WITH k AS (SELECT c.event_id, c.product, c.destination, s.end_date - s.start_date AS nights, s.travelers,
                s.min_stars, s.max_price IS NOT NULL AS capped, c.price / z.usd_rate AS usd,
                CASE WHEN c.product IN {FARE_PRODUCTS} THEN s.country END AS home_country,
                CASE WHEN c.product IN {FARE_PRODUCTS} THEN s.city END AS home_city,
                CASE WHEN c.product IN {FARE_PRODUCTS} THEN {_lead_band(parameters)} END AS lead_band
            FROM c JOIN s ON s.event_id = c.search_event_id JOIN session_zone z ON z.session_id = c.session_id),
        g AS (SELECT event_id, product, usd / nullif(median(usd) OVER w, 0) AS relative, count(*) OVER w AS n FROM k
            WINDOW w AS (PARTITION BY product, destination, nights, travelers, min_stars, capped, home_country,
                home_city, lead_band))
        SELECT g.event_id, g.product, g.relative, ntile({QUINTILES}) OVER (ORDER BY g.relative, g.event_id) AS quintile,
            b.click_event_id IS NOT NULL AS booked
        FROM g LEFT JOIN (SELECT DISTINCT click_event_id FROM v) b ON b.click_event_id = g.event_id
        WHERE g.n >= 2 AND g.relative IS NOT NULL"""
    )
    rows = query_rows(
        con,
        """SELECT quintile, count(*) AS clicks, sum(CAST(booked AS INTEGER)) AS bookings, min(relative) AS relative_low,
            median(relative) AS relative_median, max(relative) AS relative_high FROM price_clicks GROUP BY 1 ORDER BY 1""",
    )
    for row in rows:
        row["booking_rate"] = row["bookings"] / row["clicks"]
        row["ci95"] = list(wilson(row["bookings"], row["clicks"]))
    by_product = query_rows(
        con,
        """SELECT product, quintile, count(*) AS clicks, avg(CAST(booked AS INTEGER)) AS booking_rate
        FROM price_clicks GROUP BY 1, 2 ORDER BY 1, 2""",
    )
    rates = [r["booking_rate"] for r in rows]
    coefficients = (parameters.get("booking_model") or {}).get("coefficients") or {}
    return {
        "clicks": query_one(con, "SELECT count(*) FROM c"),
        "compared": sum(r["clicks"] for r in rows),
        "by_quintile": rows,
        "by_product": by_product,
        "falls_quintile_by_quintile": len(rates) == QUINTILES and all(a > b for a, b in pairwise(rates)),
        "cheapest_over_dearest": rates[0] / rates[-1] if len(rates) == QUINTILES and rates[-1] else None,
        "model_booking_price_coefficient": coefficients.get("price"),
        "how": "each click's price in USD over the median of comparable clicks: the same product, destination, "
        "nights, party and search filters (star floor, price cap), and for flights and packages the same home "
        "city and band of days before departure of the answer key's fare moves; groups of one click left out",
    }
