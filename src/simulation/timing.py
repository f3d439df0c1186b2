"""When sessions start: a weekly rhythm in each user's local time, over a window in UTC.

The site's traffic at a UTC instant is the sum over time zones of the local rhythm,
weighted by how much of the traffic lives in each zone. This module tabulates that
intensity on a 15-minute grid (offsets of every zone are whole quarter hours) so the
generator can split a window into slices of known expected traffic, and it gives the
acceptance probability used to thin uniformly drawn candidate start times into times
that follow the rhythm exactly.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import cache
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
    """Traffic intensity over a UTC window for a given mix of time zones."""

    def __init__(self, start_ms: int, end_ms: int, zone_names: tuple[str, ...], zone_weights: np.ndarray) -> None:
        """Tabulate the intensity of ``[start_ms, end_ms)`` for traffic spread over zones by ``zone_weights``."""
        self.start_ms, self.end_ms = start_ms, end_ms
        self.first_day = start_ms // MS_PER_DAY - 1
        days = end_ms // MS_PER_DAY + 2 - self.first_day
        # UTC offset of every zone on every day, taken at noon UTC: a DST change moves it at most for hours.
        self.offsets_ms = np.empty((days, len(zone_names)), dtype=np.int64)
        for z, name in enumerate(zone_names):
            zone = ZoneInfo(name)
            for d in range(days):
                noon = datetime(1970, 1, 1, 12, tzinfo=UTC) + timedelta(days=int(self.first_day + d))
                offset = noon.astimezone(zone).utcoffset() or timedelta(0)
                self.offsets_ms[d, z] = int(offset.total_seconds() * 1000)
        weights = np.asarray(zone_weights, dtype=np.float64)
        weights = weights / weights.sum()

        self.grid_start = start_ms - start_ms % CELL_MS
        cells = -(-(end_ms - self.grid_start) // CELL_MS)
        cell_starts = self.grid_start + CELL_MS * np.arange(cells, dtype=np.int64)
        day = (cell_starts // MS_PER_DAY - self.first_day).astype(np.int64)
        # Group zones by offset per day so the work grows with distinct offsets, not zones.
        distinct, inverse = np.unique(self.offsets_ms, return_inverse=True)
        inverse = inverse.reshape(self.offsets_ms.shape)
        by_offset = np.zeros((days, len(distinct)))
        np.add.at(by_offset, (np.repeat(np.arange(days), len(zone_names)), inverse.ravel()), np.tile(weights, days))
        intensity = np.zeros(cells)
        for j, offset in enumerate(distinct):
            intensity += by_offset[day, j] * WEEK_RHYTHM[hour_of_week(cell_starts + offset)]
        self.intensity = intensity
        self.cumulative = np.concatenate([[0.0], np.cumsum(intensity * CELL_MS)])

    def mass(self, t0: np.ndarray | int, t1: np.ndarray | int) -> np.ndarray:
        """Expected share of traffic between t0 and t1, in units of 'milliseconds at mean intensity'."""
        return np.asarray(self._cumulative_at(t1) - self._cumulative_at(t0))

    def _cumulative_at(self, t: np.ndarray | int) -> np.ndarray:
        position = (np.asarray(t, dtype=np.float64) - self.grid_start) / CELL_MS
        return np.interp(position, np.arange(len(self.cumulative)), self.cumulative)

    def offset_ms(self, t_ms: np.ndarray, zone: np.ndarray) -> np.ndarray:
        """UTC offset in milliseconds of each zone at each instant."""
        day = np.clip(t_ms // MS_PER_DAY - self.first_day, 0, len(self.offsets_ms) - 1)
        return self.offsets_ms[day, zone]

    def acceptance(self, t_ms: np.ndarray, zone: np.ndarray) -> np.ndarray:
        """Probability of keeping a candidate start at ``t_ms`` for a user in ``zone``: rhythm over its peak."""
        local = t_ms + self.offset_ms(t_ms, zone)
        return WEEK_RHYTHM[hour_of_week(local)] / RHYTHM_MAX


@cache
def _offset_at_hour(zone: str, hour: int) -> int:
    """UTC offset in ms of ``zone`` during the UTC hour ``hour`` (hours since the epoch)."""
    instant = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(hours=hour)
    offset = instant.astimezone(ZoneInfo(zone)).utcoffset() or timedelta(0)
    return int(offset.total_seconds() * 1000)


def local_time(t_ms: np.ndarray, zone: np.ndarray, zone_names: tuple[str, ...]) -> np.ndarray:
    """Local wall-clock time, as epoch milliseconds, of instants ``t_ms`` in the zones coded ``zone``."""
    if not len(t_ms):
        return np.asarray(t_ms, dtype=np.int64)
    hours = t_ms // MS_PER_HOUR
    first = int(hours.min())
    # One integer per (zone, hour): a flat unique is much faster than a unique over rows.
    keys, inverse = np.unique(zone.astype(np.int64) << 32 | (hours - first), return_inverse=True)
    offsets = np.array(
        [_offset_at_hour(zone_names[k >> 32], first + int(k & 0xFFFFFFFF)) for k in keys.tolist()], dtype=np.int64
    )
    return t_ms + offsets[inverse]
