"""The site's markets: home cities weighted by population, grouped by time zone and country; devices by platform.

Users themselves (sign-up, activity, churn) live in ``users``, one shard at a time.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..config import PLATFORMS, Settings
from ..reference import CityTable, home_cities

# Device given platform (rows: web, ios, android; columns: desktop, mobile, tablet). Apps run on
# phones and tablets only; with the default platform shares about 55 % of traffic is mobile
# (Similarweb 2017: travel sites about 55 % mobile).
DEVICE_GIVEN_PLATFORM = np.array(
    [
        [0.72, 0.21, 0.07],
        [0.00, 0.85, 0.15],
        [0.00, 0.92, 0.08],
    ]
)

# A logged-in user is on their usual platform and device in this share of sessions.
HABIT_LOYALTY = 0.85


@dataclass(frozen=True)
class Site:
    """What every shard shares: the home cities, their groups (a time zone in a country), platform shares."""

    cities: CityTable
    city: Sampler  # draws a city in proportion to its population
    platform_weights: np.ndarray
    anonymous_rate: float
    country_names: tuple[str, ...]  # ISO codes of the home countries, indexed by country code
    country_of_city: np.ndarray
    group_of_city: np.ndarray  # a group is a (time zone, country) pair
    group_zone: np.ndarray
    group_country: np.ndarray
    group_weights: np.ndarray  # share of the population per group

    def draw_cities(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """``n`` home cities drawn by population."""
        return self.city(rng.random(n)).astype(np.int32)


def build_site(settings: Settings) -> Site:
    """The site's markets for these settings."""
    cities = home_cities(settings.market_codes)
    country_names, country_of_city = np.unique(cities.country.to_numpy().astype(str), return_inverse=True)
    keys = cities.timezone_code.astype(np.int64) * len(country_names) + country_of_city
    groups, group_of_city = np.unique(keys, return_inverse=True)
    return Site(
        cities=cities,
        city=Sampler(cities.weights),
        platform_weights=np.array([settings.platform_weights[p] for p in PLATFORMS]),
        anonymous_rate=settings.anonymous_rate,
        country_names=tuple(str(c) for c in country_names),
        country_of_city=country_of_city.astype(np.int32),
        group_of_city=group_of_city.astype(np.int64),
        group_zone=(groups // len(country_names)).astype(np.int64),
        group_country=(groups % len(country_names)).astype(np.int64),
        group_weights=np.bincount(group_of_city, weights=cities.weights, minlength=len(groups)),
    )


def draw_platform_device(
    rng: np.random.Generator, n: int, platform_weights: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Draw ``n`` platforms by their shares and a device for each, given its platform."""
    platform = np.searchsorted(np.cumsum(platform_weights), rng.random(n) * platform_weights.sum(), side="right")
    platform = np.minimum(platform, len(PLATFORMS) - 1).astype(np.int8)
    device_cdf = np.cumsum(DEVICE_GIVEN_PLATFORM, axis=1)[platform]
    device = (rng.random(n)[:, None] >= device_cdf[:, :-1]).sum(axis=1).astype(np.int8)
    return platform, device


def pick(cdf: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Indices drawn from a cumulative distribution ``cdf`` (ending at 1) with uniforms ``u``."""
    return np.minimum(np.searchsorted(cdf, u, side="right"), len(cdf) - 1)


class Sampler:
    """Draws from a fixed discrete distribution in constant time per draw, with a guide table over its CDF.

    A binary search over a large CDF (thousands of users or cities) misses the cache at every
    step; the guide table jumps straight to the right neighbourhood (Chen and Asau, 1974).
    """

    def __init__(self, weights: np.ndarray) -> None:
        """Prepare for draws in proportion to ``weights``."""
        cdf = np.cumsum(weights, dtype=np.float64)
        self.cdf = cdf / cdf[-1]
        self.cdf[-1] = 1.0
        self.size = 2 * len(cdf)
        self.guide = np.searchsorted(self.cdf, np.arange(self.size) / self.size, side="right")

    def __call__(self, u: np.ndarray) -> np.ndarray:
        """Indices for uniforms ``u`` in [0, 1): the same as a search of the CDF would give."""
        index = self.guide[(u * self.size).astype(np.int64)]
        behind = np.flatnonzero(self.cdf[index] <= u)
        while len(behind):
            index[behind] += 1
            behind = behind[self.cdf[index[behind]] <= u[behind]]
        return index
