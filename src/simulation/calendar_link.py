"""The calendar as the engine uses it: factors on traffic and bookings per home country and local day."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..config import Settings
from .timing import MS_PER_DAY


class SiteCalendar:
    """The calendar of the site's markets over a range of local days, with its highest traffic factor."""

    def __init__(self, calendar: Any, countries: int, first_day: int, last_day: int) -> None:
        """Wrap ``calendar`` (see ``calendar.Calendar``) for country codes 0 .. countries - 1."""
        self.calendar = calendar
        self.first_day, self.last_day = first_day, last_day
        days = np.arange(first_day, last_day + 1)
        codes = np.arange(countries)
        grid = calendar.traffic(np.repeat(codes, len(days)), np.tile(days, len(codes)))
        self.peak_traffic = float(np.max(grid)) if len(grid) else 1.0

    def traffic(self, country: np.ndarray, day: np.ndarray) -> np.ndarray:
        """Factor on traffic of each (country code, local day)."""
        return np.asarray(self.calendar.traffic(country, np.clip(day, self.first_day, self.last_day)))

    def booking(self, country: np.ndarray, day: np.ndarray) -> np.ndarray:
        """Factor on the chance of booking of each (country code, local day)."""
        return np.asarray(self.calendar.booking(country, np.clip(day, self.first_day, self.last_day)))


def site_calendar(
    settings: Settings, countries: tuple[str, ...], start_ms: int, end_ms: int | None
) -> SiteCalendar | None:
    """The calendar of the site's markets over the window (a little beyond it), or None when it is off."""
    strength = float(getattr(settings, "calendar_strength", 0.0))
    if strength <= 0:
        return None
    from .calendar import Calendar

    first = start_ms // MS_PER_DAY - 2
    last = (end_ms if end_ms is not None else start_ms + 400 * MS_PER_DAY) // MS_PER_DAY + 2
    return SiteCalendar(Calendar(list(countries), first, last, strength), len(countries), first, last)
