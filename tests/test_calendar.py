"""The calendar: holidays and travel-deal days as traffic and booking factors per market and local day."""

from __future__ import annotations

import json
import time
from datetime import date, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from src.simulation import calendar
from src.simulation.calendar import KINDS, Calendar, day_number

MARKETS = ("US", "CA", "GB", "IE", "AU", "NZ")
US, CA, GB = 0, 1, 2
THANKSGIVING_2026 = date(2026, 11, 26)
TRAVEL_TUESDAY_2026 = date(2026, 12, 1)


@pytest.fixture(scope="module")
def year_2026() -> Calendar:
    """The markets' calendar over 2026 at strength 1."""
    return Calendar(MARKETS, day_number(date(2026, 1, 1)), day_number(date(2026, 12, 31)))


def _at(cal: Calendar, country: int, day: date) -> tuple[float, float, str]:
    """Traffic factor, booking factor and kind of one country on one day."""
    c, d = np.array([country]), np.array([day_number(day)])
    return float(cal.traffic(c, d)[0]), float(cal.booking(c, d)[0]), KINDS[int(cal.kind(c, d)[0])]


class TestCalendar:
    def test_thanksgiving_has_less_traffic_than_the_thursday_before(self, year_2026: Calendar) -> None:
        """US Thanksgiving Day 2026 (26 November) reads less traffic than 19 November, an ordinary Thursday."""
        thanksgiving, _, kind = _at(year_2026, US, THANKSGIVING_2026)
        before, _, before_kind = _at(year_2026, US, THANKSGIVING_2026 - timedelta(days=7))
        assert kind == "public holiday" and before_kind == "ordinary"
        assert thanksgiving < before == 1.0
        assert thanksgiving == pytest.approx(0.75)

    def test_travel_tuesday_books_most_of_its_week(self, year_2026: Calendar) -> None:
        """In the US, Travel Tuesday (1 December 2026) has the week's highest booking factor, above Cyber Monday's."""
        week = [TRAVEL_TUESDAY_2026 + timedelta(days=k) for k in range(-5, 2)]  # Thanksgiving Day to Wednesday
        booking = {day: _at(year_2026, US, day)[1] for day in week}
        assert max(booking, key=booking.__getitem__) == TRAVEL_TUESDAY_2026
        assert booking[TRAVEL_TUESDAY_2026] > booking[TRAVEL_TUESDAY_2026 - timedelta(days=1)] > 1.0
        assert _at(year_2026, US, TRAVEL_TUESDAY_2026)[2] == "deal day"

    def test_deal_days_by_market(self, year_2026: Calendar) -> None:
        """Black Friday is a deal day in GB too, Travel Tuesday only in US and CA, Boxing Day in GB, not the US."""
        assert _at(year_2026, GB, date(2026, 11, 27))[2] == "deal day"
        assert _at(year_2026, CA, TRAVEL_TUESDAY_2026)[2] == "deal day"
        assert _at(year_2026, GB, TRAVEL_TUESDAY_2026)[2] == "ordinary"
        assert _at(year_2026, GB, date(2026, 12, 26))[2] == "deal day"
        assert _at(year_2026, US, date(2026, 12, 26))[2] == "after holiday"

    def test_christmas_and_new_year_are_low(self, year_2026: Calendar) -> None:
        """Christmas Day and New Year's Day have the major-holiday traffic in every market."""
        for country in range(len(MARKETS)):
            for day in (date(2026, 1, 1), date(2026, 12, 25)):
                assert _at(year_2026, country, day)[0] == pytest.approx(0.75), (MARKETS[country], day)

    def test_observed_day_off(self, year_2026: Calendar) -> None:
        """Independence Day 2026 falls on a Saturday: Friday 3 July is the observed day off, milder than the day."""
        traffic, _, kind = _at(year_2026, US, date(2026, 7, 3))
        assert kind == "observed holiday"
        assert 0.75 < traffic < 1.0

    def test_days_after_a_major_holiday_plan_trips(self, year_2026: Calendar) -> None:
        """The days after New Year's Day have more traffic than an ordinary day."""
        assert _at(year_2026, US, date(2026, 1, 2))[0] > 1.0

    def test_ordinary_days_are_ordinary(self, year_2026: Calendar) -> None:
        """Most days have both factors exactly 1, and a year's mean traffic factor is within 1 % of 1."""
        days = np.arange(day_number(date(2026, 1, 1)), day_number(date(2026, 12, 31)) + 1)
        countries = np.zeros(len(days), dtype=np.int64)
        kinds = year_2026.kind(countries, days)
        assert (kinds == 0).mean() > 0.9
        assert np.all(year_2026.traffic(countries, days)[kinds == 0] == 1.0)
        assert year_2026.traffic(countries, days).mean() == pytest.approx(1.0, abs=0.01)

    def test_strength_zero_gives_all_ones(self) -> None:
        """At strength 0 every factor is 1, while the kinds still mark the special days."""
        cal = Calendar(MARKETS, day_number(date(2026, 1, 1)), day_number(date(2026, 12, 31)), strength=0.0)
        days = np.arange(cal.first_day, cal.last_day + 1)
        for country in range(len(MARKETS)):
            codes = np.full(len(days), country)
            assert np.all(cal.traffic(codes, days) == 1.0)
            assert np.all(cal.booking(codes, days) == 1.0)
        assert _at(cal, US, THANKSGIVING_2026)[2] == "public holiday"

    def test_strength_scales_the_deviation(self) -> None:
        """At strength 2, each factor's distance from 1 doubles."""
        first, last = day_number(date(2026, 11, 1)), day_number(date(2026, 12, 31))
        one, two = Calendar(["US"], first, last, 1.0), Calendar(["US"], first, last, 2.0)
        days = np.arange(first, last + 1)
        codes = np.zeros(len(days), dtype=np.int64)
        assert np.allclose(two.booking(codes, days) - 1, 2 * (one.booking(codes, days) - 1))
        assert np.allclose(two.traffic(codes, days) - 1, 2 * (one.traffic(codes, days) - 1))

    def test_unknown_country_has_only_ordinary_days(self) -> None:
        """A country code the holidays package does not know gives ordinary days, without an error."""
        cal = Calendar(["US", "XX"], day_number(date(2026, 1, 1)), day_number(date(2026, 12, 31)))
        days = np.arange(cal.first_day, cal.last_day + 1)
        codes = np.ones(len(days), dtype=np.int64)
        assert np.all(cal.traffic(codes, days) == 1.0)
        assert np.all(cal.kind(codes, days) == 0)

    def test_days_outside_the_range_are_ordinary(self, year_2026: Calendar) -> None:
        """A day before or after the tabulated range reads factor 1, kind ordinary."""
        days = np.array([day_number(date(2025, 12, 25)), day_number(date(2027, 1, 1))])
        codes = np.zeros(2, dtype=np.int64)
        assert np.all(year_2026.traffic(codes, days) == 1.0)
        assert np.all(year_2026.kind(codes, days) == 0)

    def test_lookups_are_elementwise(self, year_2026: Calendar) -> None:
        """One call answers a column of mixed (country, day) pairs in their order."""
        countries = np.array([US, GB, US, CA])
        days = np.array(
            [day_number(d) for d in (TRAVEL_TUESDAY_2026, TRAVEL_TUESDAY_2026, date(2026, 3, 3), THANKSGIVING_2026)]
        )
        kinds = [KINDS[k] for k in year_2026.kind(countries, days)]
        assert kinds == ["deal day", "ordinary", "ordinary", "ordinary"]

    def test_ten_years_of_six_countries_build_fast(self) -> None:
        """A table over ten years of days for six countries builds in well under a second."""
        start = time.perf_counter()
        cal = Calendar(MARKETS, day_number(date(2020, 1, 1)), day_number(date(2029, 12, 31)))
        elapsed = time.perf_counter() - start
        assert cal.n_days == 3653
        assert elapsed < 0.5, f"{elapsed:.3f} s"

    def test_parameters_are_json_ready(self) -> None:
        """parameters() gives every effect with its factors and source, serialisable as JSON."""
        params = json.loads(json.dumps(calendar.parameters()))
        names = [effect["name"] for effect in params["effects"]]
        assert any(name.startswith("Travel Tuesday") for name in names)
        assert all(effect["source"] for effect in params["effects"])
        assert params["kinds"] == list(KINDS)

    def test_special_days_name_them(self, year_2026: Calendar) -> None:
        """special_days() lists the non-ordinary days with their names, e.g. US Thanksgiving and Boxing Day in GB."""
        days = {(d["country"], d["date"]): d for d in year_2026.special_days()}
        assert days[("US", "2026-11-26")]["name"] == "Thanksgiving Day"
        assert days[("GB", "2026-12-26")]["kind"] == "deal day"
        assert ("US", "2026-03-03") not in days

    def test_negative_strength_is_refused(self) -> None:
        """A negative strength raises a ValueError that names it."""
        with pytest.raises(ValueError, match="strength"):
            Calendar(["US"], 0, 10, strength=-1.0)


def test_time_zones_come_from_the_pinned_package_not_the_machine(tmp_path: Path) -> None:
    """A machine whose zone database says Paris is Tokyo changes nothing: zones are read from tzdata."""
    import zoneinfo
    from importlib import resources

    from src.simulation.timing import time_zone

    (tmp_path / "Europe").mkdir()
    tokyo = resources.files("tzdata.zoneinfo").joinpath("Asia", "Tokyo").read_bytes()
    (tmp_path / "Europe" / "Paris").write_bytes(tokyo)
    zoneinfo.reset_tzpath([str(tmp_path)])
    time_zone.cache_clear()
    try:
        assert zoneinfo.ZoneInfo.no_cache("Europe/Paris").utcoffset(datetime(2026, 1, 15)) == timedelta(hours=9)
        assert time_zone("Europe/Paris").utcoffset(datetime(2026, 1, 15)) == timedelta(hours=1)
    finally:
        zoneinfo.reset_tzpath()
        time_zone.cache_clear()
