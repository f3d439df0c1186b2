"""When sessions start: a weekly rhythm in each user's local time, over a window in UTC.

The site's traffic at a UTC instant is the sum over time zones of the local rhythm,
weighted by how much of the traffic lives in each zone. This module tabulates that
intensity on a 15-minute grid (offsets of every zone are whole quarter hours) so the
generator can split a window into slices of known expected traffic, and it gives the
acceptance probability used to thin uniformly drawn candidate start times into times
that follow the rhythm exactly.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import cache
from importlib import resources
from zoneinfo import ZoneInfo

import numpy as np

MS_PER_DAY = 86_400_000
MS_PER_HOUR = 3_600_000
CELL_MS = 900_000  # 15 minutes: every UTC offset in use is a multiple of it.

# Share of searches per local hour, 00h to 23h (percent). Koddi (US hotel ads) and Thomas
# Cook 2017: about 1 %/h from 00 to 06, rising through the day, a bump near 11h, peak 18-21h.
HOUR_OF_DAY = np.array(
    [1.6, 1.1, 0.9, 0.8, 0.8, 1.0, 1.6, 2.6, 3.6, 4.4, 5.0, 5.6,
     5.2, 5.0, 5.0, 5.1, 5.3, 5.8, 6.6, 7.0, 7.0, 6.6, 5.2, 3.7]
)  # fmt: skip
HOUR_OF_DAY = HOUR_OF_DAY / HOUR_OF_DAY.sum()

# Share of searches per local day, Monday first (123compareme metasearch, hotel searches).
DAY_OF_WEEK = np.array([16.3, 15.7, 14.6, 14.6, 14.6, 11.1, 13.2])
DAY_OF_WEEK = DAY_OF_WEEK / DAY_OF_WEEK.sum()

# Relative intensity per local hour of the week (Monday 00h first), mean 1.
WEEK_RHYTHM = np.outer(DAY_OF_WEEK * 7, HOUR_OF_DAY * 24).ravel()
RHYTHM_MAX = float(WEEK_RHYTHM.max())

# 1970-01-01 was a Thursday: hours from a Monday 00:00 to the epoch.
_EPOCH_HOUR_OF_WEEK = 3 * 24


def hour_of_week(local_ms: np.ndarray) -> np.ndarray:
    """Hour of the week (0 = Monday 00h) of local times given as epoch milliseconds."""
    return (local_ms // MS_PER_HOUR + _EPOCH_HOUR_OF_WEEK) % 168


def to_ms(instant: datetime) -> int:
    """Epoch milliseconds of an aware datetime."""
    return int(instant.timestamp() * 1000)


class TimeModel:
    """Traffic intensity over a UTC window for traffic spread over groups of users.

    A group is a time zone in a country: its rhythm is the weekly rhythm in the zone's
    local time, times the calendar's factor for the country's local day (holidays and
    deal days; 1 without a calendar). The model tabulates the site's total intensity on
    a 15-minute grid, so the generator can split a window into slices of known expected
    traffic; it gives the probability that thins uniformly drawn candidate starts into
    starts that follow the rhythm; and, for one slice at a time, each group's cumulative
    intensity and its inverse, which turn a user's own arrival process into session times.
    """

    def __init__(
        self,
        start_ms: int,
        end_ms: int,
        zone_names: tuple[str, ...],
        group_zone: np.ndarray,
        group_weights: np.ndarray,
        group_country: np.ndarray | None = None,
        day_factor: DayFactor | None = None,
        peak_factor: float = 1.0,
    ) -> None:
        """Tabulate ``[start_ms, end_ms)`` for groups in zones ``group_zone`` weighted by ``group_weights``.

        ``day_factor(country, local_day)`` scales the rhythm of a group's local day (country codes
        from ``group_country``); ``peak_factor`` bounds it from above.
        """
        self.start_ms, self.end_ms = start_ms, end_ms
        self.zone_names = zone_names
        self.group_zone = np.asarray(group_zone, dtype=np.int64)
        self.group_country = (
            np.zeros(len(self.group_zone), dtype=np.int64) if group_country is None else np.asarray(group_country)
        )
        self.day_factor = day_factor
        self.peak = RHYTHM_MAX * max(peak_factor, 1.0)
        weights = np.asarray(group_weights, dtype=np.float64)
        self.weights = weights / weights.sum()
        self.grid_start = start_ms - start_ms % CELL_MS
        cells = -(-(end_ms - self.grid_start) // CELL_MS)
        intensity = np.zeros(cells)
        block = 30 * MS_PER_DAY // CELL_MS  # a month of cells at a time bounds the memory used
        for first in range(0, cells, block):
            starts = self.grid_start + CELL_MS * np.arange(first, min(cells, first + block), dtype=np.int64)
            intensity[first : first + len(starts)] = self.weights @ self.cell_intensity(starts)
        self.intensity = intensity
        self.cumulative = np.concatenate([[0.0], np.cumsum(intensity * CELL_MS)])

    def cell_intensity(self, cell_starts: np.ndarray) -> np.ndarray:
        """Intensity of every group (rows) in the 15-minute cells starting at ``cell_starts`` (columns)."""
        offsets = zone_offsets(self.zone_names, self.group_zone[:, None], cell_starts[None, :])
        local = cell_starts[None, :] + offsets
        rhythm = WEEK_RHYTHM[hour_of_week(local)]
        if self.day_factor is not None:
            country = np.broadcast_to(self.group_country[:, None], local.shape)
            rhythm = rhythm * self.day_factor(country.ravel(), (local // MS_PER_DAY).ravel()).reshape(local.shape)
        return rhythm

    def mass(self, t0: np.ndarray | int, t1: np.ndarray | int) -> np.ndarray:
        """Expected share of traffic between t0 and t1, in units of 'milliseconds at mean intensity'."""
        return np.asarray(self._cumulative_at(t1) - self._cumulative_at(t0))

    def _cumulative_at(self, t: np.ndarray | int) -> np.ndarray:
        position = (np.asarray(t, dtype=np.float64) - self.grid_start) / CELL_MS
        return np.interp(position, np.arange(len(self.cumulative)), self.cumulative)

    def equal_mass_bounds(self, t0: int, t1: int, parts: int) -> np.ndarray:
        """Times (epoch ms, from ``t0`` to ``t1``) that cut [t0, t1) into ``parts`` of equal expected traffic."""
        targets = np.linspace(float(self._cumulative_at(t0)), float(self._cumulative_at(t1)), parts + 1)
        position = np.interp(targets, self.cumulative, np.arange(len(self.cumulative)))
        bounds = (self.grid_start + position * CELL_MS).astype(np.int64)
        bounds[0], bounds[-1] = t0, t1
        return np.clip(np.maximum.accumulate(bounds), t0, t1)

    def acceptance(self, t_ms: np.ndarray, group: np.ndarray) -> np.ndarray:
        """Probability of keeping a candidate start at ``t_ms`` for a user in ``group``: intensity over its peak."""
        offsets = zone_offsets(self.zone_names, self.group_zone[group], t_ms)
        local = t_ms + offsets
        rhythm = WEEK_RHYTHM[hour_of_week(local)]
        if self.day_factor is not None:
            rhythm = rhythm * self.day_factor(self.group_country[group], local // MS_PER_DAY)
        return rhythm / self.peak

    def slice_clock(self, t0: int, t1: int) -> SliceClock:
        """Every group's cumulative intensity over [t0, t1), to draw arrival times in that slice."""
        return SliceClock(self, t0, t1)


class SliceClock:
    """Cumulative intensity of each group over one slice, in days at mean intensity, and its inverse."""

    def __init__(self, model: TimeModel, t0: int, t1: int) -> None:
        """Tabulate the cells that cover [t0, t1)."""
        self.t0, self.t1 = t0, t1
        first = t0 - t0 % CELL_MS
        cells = max(1, -(-(t1 - first) // CELL_MS))
        self.first = first
        self.cells = cells
        starts = first + CELL_MS * np.arange(cells, dtype=np.int64)
        self.rate = model.cell_intensity(starts) * (CELL_MS / MS_PER_DAY)  # days at mean intensity per cell
        self.cumulative = np.concatenate([np.zeros((len(self.rate), 1)), np.cumsum(self.rate, axis=1)], axis=1)
        self.span = float(self.cumulative[:, -1].max()) + 1.0
        # One increasing array over all groups: group g's cumulative values are shifted by g * span.
        self.flat = (self.cumulative + self.span * np.arange(len(self.rate))[:, None]).ravel()

    def at(self, t_ms: np.ndarray, group: np.ndarray) -> np.ndarray:
        """Cumulative intensity of ``group`` at ``t_ms`` (inside the slice's cells)."""
        position = (np.asarray(t_ms) - self.first) / CELL_MS
        cell = np.clip(position.astype(np.int64), 0, self.cells - 1)
        return self.cumulative[group, cell] + (position - cell) * self.rate[group, cell]

    def group_at(self, t_ms: int) -> np.ndarray:
        """Cumulative intensity of every group at ``t_ms`` (inside the slice's cells), indexed by group."""
        groups = len(self.rate)
        return self.at(np.full(groups, t_ms, dtype=np.int64), np.arange(groups))

    def inverse(self, x: np.ndarray, group: np.ndarray) -> np.ndarray:
        """The time at which ``group``'s cumulative intensity reaches ``x``; INFINITE_MS past the slice."""
        shifted = x + self.span * group
        index = np.searchsorted(self.flat, shifted, side="right") - 1
        row_length = self.cells + 1
        cell = index - group * row_length
        inside = (cell >= 0) & (cell < self.cells) & (x < self.cumulative[group, -1])
        cell = np.clip(cell, 0, self.cells - 1)
        base = self.cumulative[group, cell]
        fraction = (x - base) / np.maximum(self.rate[group, cell], 1e-12)
        t = self.first + (cell + np.clip(fraction, 0, 1)) * CELL_MS
        return np.where(inside, np.maximum(t.astype(np.int64), self.t0), INFINITE_MS)


INFINITE_MS = np.iinfo(np.int64).max // 4
DayFactor = Callable[[np.ndarray, np.ndarray], np.ndarray]


@cache
def time_zone(name: str) -> ZoneInfo:
    """The zone from the pinned ``tzdata`` package, never the system's database.

    The system's copy differs between machines (Debian's tzdata is updated apart from
    Python's), and a zone whose rules changed would move local times, and with them the
    events: the same seed must give the same bytes on every machine.
    """
    with resources.files("tzdata.zoneinfo").joinpath(*name.split("/")).open("rb") as data:
        return ZoneInfo.from_file(data, key=name)


@cache
def _offset_at_day(zone: str, day: int) -> int:
    """UTC offset in ms of ``zone`` at noon UTC of ``day`` (days since the epoch)."""
    noon = datetime(1970, 1, 1, 12, tzinfo=UTC) + timedelta(days=day)
    offset = noon.astimezone(time_zone(zone)).utcoffset() or timedelta(0)
    return int(offset.total_seconds() * 1000)


def zone_offsets(zone_names: tuple[str, ...], zone: np.ndarray, t_ms: np.ndarray) -> np.ndarray:
    """UTC offset in ms of each zone at each instant (taken at noon UTC of its day: DST moves it for hours only).

    ``zone`` and ``t_ms`` broadcast: a column of zones against a row of times gives a table.
    """
    zone, t_ms = np.broadcast_arrays(np.asarray(zone, dtype=np.int64), np.asarray(t_ms, dtype=np.int64))
    if not zone.size:
        return np.zeros(zone.shape, dtype=np.int64)
    day = t_ms // MS_PER_DAY
    first = int(day.min())
    keys, inverse = np.unique(zone.ravel() << 32 | (day.ravel() - first), return_inverse=True)
    offsets = np.array(
        [_offset_at_day(zone_names[k >> 32], first + int(k & 0xFFFFFFFF)) for k in keys.tolist()], dtype=np.int64
    )
    return offsets[inverse].reshape(zone.shape)


@cache
def _hourly_offsets(zone: str, day: int) -> tuple[int, ...]:
    """UTC offsets in ms of ``zone`` during each UTC hour of ``day`` (days since the epoch)."""
    name = time_zone(zone)
    start = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(days=day)
    return tuple(
        int(((start + timedelta(hours=h)).astimezone(name).utcoffset() or timedelta(0)).total_seconds() * 1000)
        for h in range(24)
    )


def local_time(t_ms: np.ndarray, zone: np.ndarray, zone_names: tuple[str, ...]) -> np.ndarray:
    """Local wall-clock time, as epoch milliseconds, of instants ``t_ms`` in the zones coded ``zone``."""
    if not len(t_ms):
        return np.asarray(t_ms, dtype=np.int64)
    day = t_ms // MS_PER_DAY
    first = int(day.min())
    # One integer per (zone, day): the offsets of its 24 hours are looked up once.
    keys, inverse = np.unique(zone.astype(np.int64) << 32 | (day - first), return_inverse=True)
    table = np.array(
        [_hourly_offsets(zone_names[k >> 32], first + int(k & 0xFFFFFFFF)) for k in keys.tolist()], dtype=np.int64
    )
    return t_ms + table[inverse, t_ms // MS_PER_HOUR % 24]
