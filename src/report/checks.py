"""Figures held against their published references, each with a stated tolerance.

A figure outside its tolerance is flagged on the page and listed under ``problems`` in
``report.json``. Tolerances follow the reference's confidence (docs/REALISM.md): a range
the source gives is used as it is; a single figure from a large study gets ±0.10 as a
share, a vendor's or blog's figure ±50 %; a published price (BTS's fare, STR's hotel night) ±20 %.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from .published import REALISM


@dataclass(frozen=True)
class Check:
    """One figure against its reference: the allowed range and whether the figure is in it."""

    figure: str
    label: str
    measured: float | None
    low: float
    high: float
    reference: str
    unit: str = ""

    @property
    def ok(self) -> bool | None:
        """In the allowed range; None when there is nothing to measure."""
        return None if self.measured is None else self.low <= self.measured <= self.high

    def describe(self) -> str:
        """One line for the problems list."""
        scale = 100 if self.unit == "%" else 1
        shown = "n/a" if self.measured is None else f"{scale * self.measured:,.2f}{self.unit and ' ' + self.unit}"
        allowed = f"{scale * self.low:,.2f} to {scale * self.high:,.2f}{self.unit and ' ' + self.unit}"
        return f"{self.label} is {shown}, outside {allowed} ({self.reference})"

    def as_json(self) -> dict[str, Any]:
        """JSON-ready, with ``ok``."""
        return {**asdict(self), "ok": self.ok}


def _published(key: str) -> float:
    """A single published figure (not a range)."""
    value = REALISM[key]
    if not isinstance(value, int | float):
        raise TypeError(f"{key} is not a single figure")
    return float(value)


def _around(value: float, share: float) -> tuple[float, float]:
    return value * (1 - share), value * (1 + share)


def checks(report: dict[str, Any]) -> list[Check]:
    """Every figure of ``report`` that has a published reference, with its tolerance."""
    s, t, m, d = report["sessions"], report["trips"], report["money"], report["devices"]
    lead: dict[str, Any] = next((row for row in t["lead_time_days"] if row["device"] == "all"), {})
    median_seconds = s["session_seconds"]["median"]
    minutes = _published("visit_minutes_mobile")
    per_session = REALISM["searches_per_session"]
    assert isinstance(per_session, list)
    lead_range = REALISM["lead_time_mean_days"]
    assert isinstance(lead_range, list)
    found = [
        Check(
            "sessions.searches_per_session.mean",
            "searches per session (mean)",
            s["searches_per_session"]["mean"],
            per_session[0],
            per_session[1],
            "Jansen, Booth and Spink 2009: 1.6 to under 3",
        ),
        Check(
            "sessions.session_seconds.median",
            "session length (median, minutes)",
            None if median_seconds is None else median_seconds / 60,
            *_around(minutes, 0.5),
            "Similarweb: visits about 6 min, ±50 %",
        ),
        Check(
            "sessions.returning_visit_share",
            "returning visits",
            s["returning_visit_share"]["value"],
            _published("returning_visitor_share") - 0.10,
            _published("returning_visitor_share") + 0.10,
            "Databox: about 32 %, ±10 points",
            "%",
        ),
        Check(
            "devices.mobile_share",
            "phone share of sessions",
            d["mobile_share"]["value"],
            _published("mobile_traffic_share") - 0.10,
            _published("mobile_traffic_share") + 0.10,
            "Similarweb 2017: about 55 % of travel traffic, ±10 points",
            "%",
        ),
        Check(
            "trips.lead_time_days.mean",
            "lead time (mean, days)",
            lead.get("mean"),
            lead_range[0] * 0.75,
            lead_range[1] * 1.25,
            "Agoda, nSight: 21 to 24 days, ±25 %",
        ),
        Check(
            "trips.lead_time_days.within_7",
            "searches for trips within 7 days",
            lead.get("within_7"),
            _published("lead_time_share_within_7_days") - 0.10,
            _published("lead_time_share_within_7_days") + 0.10,
            "Koddi: 41.5 %, ±10 points",
            "%",
        ),
        Check(
            "trips.nights.mean",
            "nights (mean)",
            t["nights"]["mean"],
            *_around(_published("nights_mean"), 0.25),
            "Airbnb: about 4, ±25 %",
        ),
    ]
    phone = next((row for row in m["bookings_by_device"] if row["device"] == "mobile"), None)
    if phone is not None:
        ratio = _published("smartphone_booking_value_vs_desktop")
        found.append(
            Check(
                "money.bookings_by_device.mobile.relative_to_desktop",
                "phone booking value against desktop",
                phone["relative_to_desktop"],
                ratio - 0.15,
                ratio + 0.15,
                "Criteo 2015: 57 %, ±15 points",
                "%",
            )
        )
    for row in m["bookings"]:
        published = row.get("published_desktop_share")
        if published is not None:
            found.append(
                Check(
                    f"money.bookings.{row['product']}.desktop_share",
                    f"{row['product']} bookings on desktop",
                    row["desktop_share"],
                    published - 0.15,
                    published + 0.15,
                    f"Criteo 2018: {100 * published:.0f} %, ±15 points",
                    "%",
                )
            )
    found.extend(_prices(report.get("offers") or {}))
    return found


def _prices(offers: dict[str, Any]) -> list[Check]:
    """The US domestic round-trip fare against BTS 2022 and the US hotel night against CoStar/STR 2023, ±20 %."""
    found = []
    fare = (offers.get("fares") or {}).get("us_domestic")
    if fare is not None:
        found.append(
            Check(
                "offers.fares.us_domestic.mean_usd",
                "US domestic round-trip fare per traveller (mean, USD)",
                fare["mean_usd"],
                *_around(_published("airfare_round_trip_usd"), 0.20),
                "BTS 2022: $469, ±20 %",
            )
        )
    night = (offers.get("hotel_nights") or {}).get("us_destinations")
    if night is not None:
        found.append(
            Check(
                "offers.hotel_nights.us_destinations.mean_usd",
                "US hotel night (mean, USD)",
                night["mean_usd"],
                *_around(_published("hotel_night_usd"), 0.20),
                "CoStar/STR 2023: $155.62, ±20 %",
            )
        )
    return found


def flag(report: dict[str, Any]) -> None:
    """Add ``checks`` to ``report`` and list every figure outside its tolerance under ``problems``."""
    found = checks(report)
    report["checks"] = [c.as_json() for c in found]
    report["problems"].extend(
        {"file": None, "line": None, "figure": c.figure, "problem": c.describe()} for c in found if c.ok is False
    )
