"""Public holidays and travel-deal days: a factor on traffic and one on bookings per market and local day.

Each market country has its own calendar in its users' local dates. A day is ordinary
(both factors 1), a public holiday (less traffic on the day itself), the day off that
stands in for a holiday falling on a weekend ("observed"), one of the days just after a
major holiday (people plan trips), or a travel-deal day (Black Friday, Cyber Monday,
"Travel Tuesday", Boxing Day), with more traffic and a higher propensity to book. Holidays
come from the ``holidays`` package (maintained rules per country and year, observed days
included), not from a hand-typed list; deal days are placed from its dates (the US
Thanksgiving Day, Boxing Day). :data:`EFFECTS` lists every effect with its source.

:class:`Calendar` tabulates the factors once per run as dense ``(countries, days)`` arrays,
so the engine looks up whole columns of (country code, local day) pairs with one fancy
index. Days are counted from 1970-01-01 (``datetime.date.toordinal() - 719163``).

This module imports nothing from the rest of the engine, the output or the report.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from importlib.metadata import version
from typing import Any

import holidays
import numpy as np

EPOCH = date(1970, 1, 1)

KINDS: tuple[str, ...] = ("ordinary", "public holiday", "deal day", "observed holiday", "after holiday")
ORDINARY, HOLIDAY, DEAL, OBSERVED, AFTER = range(len(KINDS))

# Black Friday and Cyber Monday are common retail days in these markets; Travel Tuesday is
# promoted by US and Canadian travel sites on the Tuesday after US Thanksgiving.
RETAIL_MARKETS = ("US", "CA", "GB", "AU", "NZ", "IE")
TRAVEL_TUESDAY_MARKETS = ("US", "CA")
BOXING_DAY_MARKETS = ("GB", "CA", "AU", "NZ")

# Holidays differ by state or province where the package knows subdivisions; the most
# populous one stands for the country (the engine works per country). Canada's national
# list lacks Thanksgiving, Victoria Day and Boxing Day, Australia's its Labour Day and King's
# Birthday, the UK's Easter Monday and August bank holiday. A guess: other regions differ.
SUBDIVISIONS: dict[str, str] = {"CA": "ON", "AU": "NSW", "GB": "ENG"}

AFTER_DAYS = 2  # days after a major holiday with more planning traffic
MIN_FACTOR = 0.05  # floor on a scaled factor, so a strong setting never gives zero or negative traffic


@dataclass(frozen=True)
class Effect:
    """One kind of special day: where it applies, its factors at strength 1, and why."""

    name: str
    kind: int  # index into KINDS
    markets: tuple[str, ...] | None  # None: every country the holidays package knows
    traffic: float  # multiplies session arrivals
    booking: float  # multiplies the propensity of a click to book
    source: str
    confidence: str  # as in REALISM.md: H, M, L, or "guess"

    def record(self) -> dict[str, Any]:
        """The effect as JSON-ready data."""
        return {
            "name": self.name,
            "kind": KINDS[self.kind],
            "markets": list(self.markets) if self.markets is not None else "all",
            "traffic": self.traffic,
            "booking": self.booking,
            "source": self.source,
            "confidence": self.confidence,
        }


MAJOR_HOLIDAY = Effect(
    "major holiday (Christmas Day, New Year's Day, US Thanksgiving Day)",
    HOLIDAY,
    None,
    0.75,
    0.90,
    "TripIt 2021: Thanksgiving Day is the least popular day to travel (7 % of departures against "
    "16-17 % on the Tuesday and Wednesday before). Searches fall less than departures: 0.75 is a "
    "guess, and so is the booking factor",
    "L-M (direction), guess (level)",
)
PUBLIC_HOLIDAY = Effect(
    "other public holiday",
    HOLIDAY,
    None,
    0.90,
    0.95,
    "guess: a milder version of the major holidays",
    "guess",
)
OBSERVED_HOLIDAY = Effect(
    "observed day off (a holiday on a weekend moved to a weekday)",
    OBSERVED,
    None,
    0.92,
    0.95,
    "guess: a day off without the festivity",
    "guess",
)
AFTER_HOLIDAY = Effect(
    f"the {AFTER_DAYS} days after a major holiday",
    AFTER,
    None,
    1.10,
    1.05,
    "guess: people plan trips after the holidays (search interest peaks in January: Google Trends)",
    "guess",
)
BLACK_FRIDAY = Effect(
    "Black Friday (the day after US Thanksgiving)",
    DEAL,
    RETAIL_MARKETS,
    1.25,
    1.20,
    "Hopper 2022: Travel Tuesday has about 50 % more deals than Black Friday, so 1.8 / 1.5 = 1.2 on "
    "bookings; traffic is a guess",
    "L (ratio), guess (level)",
)
CYBER_MONDAY = Effect(
    "Cyber Monday (4 days after US Thanksgiving)",
    DEAL,
    RETAIL_MARKETS,
    1.35,
    1.40,
    "Hopper 2022: Travel Tuesday has about 30 % more deals than Cyber Monday, so 1.8 / 1.3 = 1.4 on "
    "bookings; traffic is a guess",
    "L (ratio), guess (level)",
)
TRAVEL_TUESDAY = Effect(
    "Travel Tuesday (5 days after US Thanksgiving)",
    DEAL,
    TRAVEL_TUESDAY_MARKETS,
    1.50,
    1.80,
    "Hopper 2022 (most deals of the week); FlightHub 2019 (more flight bookings than on Black Friday "
    "or Cyber Monday); search interest up over 500 % 2021-2023. The levels are a guess",
    "L-M (direction), guess (level)",
)
BOXING_DAY = Effect(
    "Boxing Day (26 December) sales",
    DEAL,
    BOXING_DAY_MARKETS,
    1.15,
    1.25,
    "guess: a big retail sale day in these markets; a public holiday too, which the sale outweighs online",
    "guess",
)

# Every effect, in increasing precedence: where two fall on one day, the later one wins
# (Boxing Day sales over the holiday, Black Friday over "after Thanksgiving").
EFFECTS: tuple[Effect, ...] = (
    AFTER_HOLIDAY,
    OBSERVED_HOLIDAY,
    PUBLIC_HOLIDAY,
    MAJOR_HOLIDAY,
    BOXING_DAY,
    BLACK_FRIDAY,
    CYBER_MONDAY,
    TRAVEL_TUESDAY,
)


def parameters() -> dict[str, Any]:
    """The calendar's effects and choices as JSON-ready data, for the run's manifest."""
    return {
        "effects": [effect.record() for effect in EFFECTS],
        "subdivisions": dict(SUBDIVISIONS),
        "after_days": AFTER_DAYS,
        "kinds": list(KINDS),
        "holidays_package": version("holidays"),
    }


def day_number(day: date) -> int:
    """Days from 1970-01-01 to ``day``."""
    return (day - EPOCH).days


def _date(number: int) -> date:
    return EPOCH + timedelta(days=number)


def _thanksgivings(years: range) -> list[date]:
    """US Thanksgiving Day of each year, from the holidays package."""
    us = holidays.country_holidays("US", years=years)
    return sorted(d for d in us.get_named("Thanksgiving") if d.month == 11)


def _country_holidays(country: str, years: range, observed: bool) -> holidays.HolidayBase | None:
    """The country's public holidays over ``years``, or None where the package does not know it."""
    try:
        return holidays.country_holidays(country, subdiv=SUBDIVISIONS.get(country), years=years, observed=observed)
    except NotImplementedError:
        return None


class Calendar:
    """Traffic and booking factors per (market country, local day), tabulated for a range of days.

    ``countries`` are ISO 3166-1 alpha-2 codes, their position the country code the engine
    uses; ``first_day`` and ``last_day`` (both included) count days from 1970-01-01 in local
    dates. ``strength`` scales every effect's distance from 1 (0 turns the calendar off,
    2 doubles each effect). Days outside the range, and countries the ``holidays`` package
    does not know, are ordinary.
    """

    KINDS: tuple[str, ...] = KINDS

    def __init__(self, countries: Sequence[str], first_day: int, last_day: int, strength: float = 1.0) -> None:
        """Tabulate the calendar of every country over the days ``first_day`` to ``last_day``."""
        if last_day < first_day:
            raise ValueError(f"last_day {last_day} is before first_day {first_day}")
        if strength < 0:
            raise ValueError(f"strength {strength} is negative; expected 0 (off) or more")
        self.countries = tuple(countries)
        self.first_day = first_day
        self.last_day = last_day
        self.strength = strength
        self.n_days = last_day - first_day + 1
        shape = (len(self.countries), self.n_days + 1)  # one more column: ordinary, for days out of range
        self._kind = np.zeros(shape, dtype=np.int8)
        self._effect = np.full(shape, -1, dtype=np.int8)  # index into EFFECTS, -1 ordinary
        self._names: dict[tuple[int, int], str] = {}
        years = range(_date(first_day).year, _date(last_day).year + 1)
        thanksgivings = _thanksgivings(years)
        for index, country in enumerate(self.countries):
            self._fill(index, country.upper(), years, thanksgivings)
        traffic = np.array([1.0] + [e.traffic for e in EFFECTS])
        booking = np.array([1.0] + [e.booking for e in EFFECTS])
        self._traffic = np.maximum(1.0 + strength * (traffic[self._effect + 1] - 1.0), MIN_FACTOR)
        self._booking = np.maximum(1.0 + strength * (booking[self._effect + 1] - 1.0), MIN_FACTOR)

    def _mark(self, index: int, day: date, effect: Effect, name: str) -> None:
        """Give ``day`` of country ``index`` the effect, unless it already has one of higher precedence."""
        offset = day_number(day) - self.first_day
        if not 0 <= offset < self.n_days:
            return
        rank = EFFECTS.index(effect)
        if self._effect[index, offset] > rank:
            return
        self._effect[index, offset] = rank
        self._kind[index, offset] = effect.kind
        self._names[(index, offset)] = name

    def _fill(self, index: int, country: str, years: range, thanksgivings: list[date]) -> None:
        """Mark the holidays and deal days of one country."""
        actual = _country_holidays(country, years, observed=False)
        if actual is None:
            return
        with_observed = _country_holidays(country, years, observed=True)
        assert with_observed is not None
        majors = {d for d in actual if (d.month, d.day) in ((1, 1), (12, 25))}
        if country == "US":
            majors.update(d for d in thanksgivings if d in actual)
        for day in sorted(set(with_observed) - set(actual)):
            self._mark(index, day, OBSERVED_HOLIDAY, str(with_observed[day]))
        for day in sorted(majors):
            for after in range(1, AFTER_DAYS + 1):
                self._mark(index, day + timedelta(days=after), AFTER_HOLIDAY, f"after {actual[day]}")
        for day, name in sorted(actual.items()):
            self._mark(index, day, MAJOR_HOLIDAY if day in majors else PUBLIC_HOLIDAY, str(name))
        if country in BOXING_DAY_MARKETS:
            for day in actual.get_named("Boxing Day", lookup="exact"):
                self._mark(index, day, BOXING_DAY, "Boxing Day")
        for thanksgiving in thanksgivings:
            if country in RETAIL_MARKETS:
                self._mark(index, thanksgiving + timedelta(days=1), BLACK_FRIDAY, "Black Friday")
                self._mark(index, thanksgiving + timedelta(days=4), CYBER_MONDAY, "Cyber Monday")
            if country in TRAVEL_TUESDAY_MARKETS:
                self._mark(index, thanksgiving + timedelta(days=5), TRAVEL_TUESDAY, "Travel Tuesday")

    def _cells(self, country: np.ndarray, day: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Row and column of each (country code, day) pair; days out of range read the ordinary column."""
        offset = np.asarray(day, dtype=np.int64) - self.first_day
        offset = np.where((offset >= 0) & (offset < self.n_days), offset, self.n_days)
        return np.asarray(country, dtype=np.intp), offset

    def traffic(self, country: np.ndarray, day: np.ndarray) -> np.ndarray:
        """Factor on session arrivals per (country code, local day); 1 on ordinary days."""
        return self._traffic[self._cells(country, day)]

    def booking(self, country: np.ndarray, day: np.ndarray) -> np.ndarray:
        """Factor on the propensity to book per (country code, local day); 1 on ordinary days."""
        return self._booking[self._cells(country, day)]

    def kind(self, country: np.ndarray, day: np.ndarray) -> np.ndarray:
        """Kind of each (country code, local day), an index into :data:`KINDS` (whatever the strength)."""
        return self._kind[self._cells(country, day)]

    def special_days(self) -> list[dict[str, Any]]:
        """Every day that is not ordinary, in order of country code and day, as JSON-ready records."""
        return [
            {
                "country": self.countries[index],
                "date": _date(self.first_day + offset).isoformat(),
                "name": name,
                "kind": KINDS[int(self._kind[index, offset])],
                "effect": EFFECTS[int(self._effect[index, offset])].name,
                "traffic": round(float(self._traffic[index, offset]), 4),
                "booking": round(float(self._booking[index, offset]), 4),
            }
            for (index, offset), name in sorted(self._names.items())
        ]
