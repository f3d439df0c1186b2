"""The page's section on prices and offers: fares against distance, hotel nights, booking rate by price position."""

from __future__ import annotations

import html
from typing import Any

from .page import (
    BLUE,
    GREY,
    ORANGE,
    _counts,
    _figure,
    _legend,
    _note,
    _number,
    _percent,
    _shares,
    _status,
    _svg,
    _table,
)


def _usd(value: float | None, digits: int = 0) -> str:
    return "n/a" if value is None else f"${value:,.{digits}f}"


def _against(value: float | None, published: float, tolerance: float = 0.20) -> tuple[str, str]:
    """The measured figure's distance from a published one, and whether it is within the tolerance."""
    if value is None:
        return "n/a", ""
    relative = value / published - 1
    return f"{100 * relative:+.0f} %", _status(abs(relative) <= tolerance)


def offers_section(report: dict[str, Any]) -> str:
    """Fares against distance, price per hotel night, and the share of clicks booked by price position."""
    offers = report.get("offers") or {}
    return (
        "<h3>Fares against distance</h3>"
        + _fares(offers.get("fares") or {})
        + "<h3>Price per hotel night</h3>"
        + _nights(offers.get("hotel_nights") or {})
        + "<h3>Booking rate by price position</h3>"
        + _position(offers.get("price_position") or {})
    )


def _fares(f: dict[str, Any]) -> str:
    bands = [b for b in f.get("by_distance", []) if b["clicks"]]
    us = f.get("us_domestic") or {}
    if not bands:
        return _note("No round-trip flight click with a known distance from home: fares cannot be held against it.")

    def draw(ax: Any) -> None:
        km = [b["mean_km"] for b in bands]
        ax.fill_between(
            km,
            [b["p25_usd"] for b in bands],
            [b["p75_usd"] for b in bands],
            color=BLUE,
            alpha=0.15,
            label="middle half of fares",
        )
        ax.plot(km, [b["mean_usd"] for b in bands], "o-", color=BLUE, label="mean fare by distance band")
        if us.get("mean_usd") is not None:
            ax.plot([us["mean_km"]], [us["mean_usd"]], "D", color=ORANGE, label="US domestic, measured")
        ax.axhline(us.get("published_usd", 469.0), color=ORANGE, ls="--", lw=1, label="BTS 2022 US domestic")
        ax.set_xlabel("great-circle km from the home city to the destination's airport")
        ax.set_ylabel("round-trip fare per traveller, USD")
        _counts(ax.xaxis)
        _counts(ax.yaxis)
        _legend(ax)

    rows = [
        [
            b["band"],
            _number(b["clicks"]),
            _number(b["mean_km"], 0),
            _usd(b["mean_usd"]),
            _usd(b["median_usd"]),
            f"{_usd(b['p25_usd'])} to {_usd(b['p75_usd'])}",
            _usd(b["usd_per_km"], 3),
        ]
        for b in f["by_distance"]
    ]
    left_out = (f.get("round_trip_clicks") or 0) - (f.get("with_distance") or 0)
    first, last = bands[0], bands[-1]
    relative, ok = _against(us.get("mean_usd"), us.get("published_usd", 469.0))
    note = (
        f"<p>Correlation of fare and distance: {_number(f.get('correlation'))} over {_number(f.get('with_distance'))} "
        f"round-trip flight clicks ({_number(left_out)} left out: a home city whose name two cities of its country "
        f"share, or one not in the reference data). The fare per km falls from {_usd(first['usd_per_km'], 3)} "
        f"({html.escape(first['band'])}) to {_usd(last['usd_per_km'], 3)} ({html.escape(last['band'])}): fares rise "
        "with distance, less than in proportion (the taper). US domestic round trips: mean "
        f"{_usd(us.get('mean_usd'))}, median {_usd(us.get('median_usd'))} over {_number(us.get('clicks'))} clicks "
        f"(BTS 2022: $469; {relative}) {ok}</p>"
    )
    return (
        _figure(
            "fares",
            _svg(draw, 6.4, 3.4),
            "Round-trip fare per traveller against distance from home (mean and middle half by band)",
        )
        + _table(["distance", "clicks", "mean km", "mean fare", "median", "middle half", "per km"], rows)
        + note
    )


def _nights(n: dict[str, Any]) -> str:
    overall, us, top = n.get("all") or {}, n.get("us_destinations") or {}, n.get("top_destinations") or []
    if not overall.get("clicks"):
        return _note("No hotel click: the price per night cannot be measured.")
    relative, ok = _against(us.get("mean_usd"), us.get("published_usd", 155.62))
    summary = _table(
        ["hotel clicks", "clicks", "mean night", "median", "99.9th percentile"],
        [
            [
                label,
                _number(x.get("clicks")),
                _usd(x.get("mean_usd"), 2),
                _usd(x.get("median_usd"), 2),
                _usd(x.get("p999_usd"), 2),
            ]
            for label, x in (("all destinations", overall), ("US destinations", us))
        ],
    ) + (
        f"<p>US destinations: mean {_usd(us.get('mean_usd'), 2)} a room night against CoStar/STR 2023's $155.62 "
        f"({relative}) {ok}. Of a hotel click, {html.escape(n.get('how', ''))}.</p>"
    )

    def draw(ax: Any) -> None:
        names = [t["destination"] for t in top]
        ax.barh(names, [t["mean_usd"] for t in top], color=BLUE, label="mean")
        ax.plot([t["median_usd"] for t in top], names, "o", color=GREY, label="median")
        ax.axvline(us.get("published_usd", 155.62), color=ORANGE, ls="--", lw=1, label="CoStar/STR US mean")
        ax.invert_yaxis()
        ax.tick_params(axis="y", labelsize=8)
        ax.set_xlabel("price per room night, USD")
        _legend(ax)

    rows = [
        [
            html.escape(f"{t['destination']}, {t['country'] or '?'}"),
            _number(t["clicks"]),
            _usd(t["mean_usd"], 2),
            _usd(t["median_usd"], 2),
        ]
        for t in top
    ]
    return (
        summary
        + _figure("nights", _svg(draw, 6.4, 3.6), "Price per room night, destinations with the most hotel clicks")
        + _table(["destination", "clicks", "mean night", "median"], rows)
        + _stars(n)
    )


def _stars(n: dict[str, Any]) -> str:
    items, stars = n.get("items") or {}, n.get("by_stars")
    if not stars:
        why = items.get("note") or f"no hotel click matched a hotel of {items.get('file', 'items.jsonl')}"
        return _note(f"By stars: left out, the answer key has no items file to read stars from ({why}).")

    def draw(ax: Any) -> None:
        x = [s["stars"] for s in stars]
        ax.bar(x, [s["mean_usd"] for s in stars], color=BLUE, label="mean night, measured")
        three = next((s["mean_usd"] for s in stars if s["stars"] == 3), None)
        model = [
            (s["stars"], s["model_relative_to_3_stars"] * three)
            for s in stars
            if three and s["model_relative_to_3_stars"] is not None
        ]
        if model:
            ax.plot(
                *zip(*model, strict=True), "o--", color=ORANGE, label="answer key's star factor (3 stars = measured)"
            )
        ax.set_xticks(x)
        ax.set_xlabel("stars")
        ax.set_ylabel("price per room night, USD")
        _counts(ax.yaxis)
        _legend(ax)

    rows = [
        [
            _number(s["stars"]),
            _number(s["clicks"]),
            _usd(s["mean_usd"], 2),
            _usd(s["median_usd"], 2),
            _number(s["relative_to_3_stars"]),
            _number(s["model_relative_to_3_stars"]),
        ]
        for s in stars
    ]
    matched = (
        f"<p>Stars from {html.escape(str(items.get('file')))}: {_percent(items.get('matched_share'))} of hotel clicks "
        f"matched an item by result_id ({_number(items.get('hotels'))} hotels of {_number(items.get('seeds'))} "
        "seed(s); an id that names hotels of different stars in different seeds is left out).</p>"
    )
    return (
        _figure("stars", _svg(draw, 5.0, 3.2), "Price per room night by stars")
        + _table(["stars", "clicks", "mean night", "median", "against 3 stars", "answer key"], rows)
        + matched
    )


def _position(p: dict[str, Any]) -> str:
    rows = p.get("by_quintile") or []
    if not rows:
        return _note("Too few comparable clicks to rank prices against each other.")
    labels = ["cheapest", "", "", "", "dearest"] if len(rows) == 5 else [""] * len(rows)
    names = [f"{r['quintile']}{' ' + label if label else ''}" for r, label in zip(rows, labels, strict=True)]

    def draw(ax: Any) -> None:
        rates = [r["booking_rate"] for r in rows]
        low = [max(0.0, v - r["ci95"][0]) for v, r in zip(rates, rows, strict=True)]
        high = [max(0.0, r["ci95"][1] - v) for v, r in zip(rates, rows, strict=True)]
        ax.bar(names, rates, yerr=[low, high], color=BLUE, capsize=3)
        ax.set_xlabel("fifth of clicks by price against comparable clicks' median")
        ax.set_ylabel("share of clicks booked")
        _shares(ax.yaxis)

    table = _table(
        ["fifth", "price against median", "clicks", "booked", "booking rate", "95 % interval"],
        [
            [
                html.escape(name),
                f"{_number(r['relative_low'])} to {_number(r['relative_high'])}",
                _number(r["clicks"]),
                _number(r["bookings"]),
                _percent(r["booking_rate"]),
                f"{_percent(r['ci95'][0])} to {_percent(r['ci95'][1])}",
            ]
            for name, r in zip(names, rows, strict=True)
        ],
    )
    products: dict[str, dict[int, float]] = {}
    for row in p.get("by_product") or []:
        products.setdefault(row["product"], {})[row["quintile"]] = row["booking_rate"]
    by_product = _table(
        ["product", *names],
        [[html.escape(k), *(_percent(v.get(r["quintile"])) for r in rows)] for k, v in products.items()],
    )
    first, last = rows[0]["booking_rate"], rows[-1]["booking_rate"]
    coefficient = p.get("model_booking_price_coefficient")
    model = (
        f" The model's booking weight falls with price against the page: exp(&minus;{_number(coefficient, 1)} "
        "&times; the user's price sensitivity &times; the log price against the page's mean), times the rest "
        "(answer key: booking_model)."
        if coefficient is not None
        else ""
    )
    if p.get("falls_quintile_by_quintile"):
        words = (
            f"Cheaper offers book more: {_percent(first)} of clicks in the cheapest fifth are booked against "
            f"{_percent(last)} in the dearest, {_number(p.get('cheapest_over_dearest'), 1)} times as often, and the "
            "rate falls fifth by fifth."
        )
    else:
        words = (
            f"Booking rates do not fall fifth by fifth here: {_percent(first)} of clicks in the cheapest fifth are "
            f"booked against {_percent(last)} in the dearest."
        )
    how = (
        f"<p>{_number(p.get('compared'))} of {_number(p.get('clicks'))} clicks compared: "
        f"{html.escape(p.get('how', ''))}.</p>"
    )
    return (
        _figure("price-position", _svg(draw, 6.0, 3.2), "Share of clicks booked by price against comparable clicks")
        + table
        + f"<p>{words}{model}</p>"
        + how
        + by_product
    )
