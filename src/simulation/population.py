"""The users of the site: a fixed pool with a home city, a preferred platform and device, and a habit.

The pool is drawn from its own random stream, so the same seed gives the same users
whatever the count or window of a run: a user who comes back in a later run of the
same seed is the same person, from the same city, on the same phone.
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

# Activity per user follows a Zipf-Mandelbrot law over a random ranking (Ali and Scarr
# 2007: it fits per-user activity better than a pure power law): weight (rank + q)^-s.
ZIPF_EXPONENT = 1.0
ZIPF_OFFSET = 200.0  # a flatter head: the most active of 10,000 users has about 0.13 % of sessions


@dataclass(frozen=True)
class Population:
    """The user pool and the home-city table, as parallel arrays."""

    cities: CityTable
    home_city: np.ndarray  # city code per user
    platform: np.ndarray  # platform code per user
    device: np.ndarray  # device code per user
    activity: Sampler  # draws a user in proportion to their share of logged-in sessions
    city: Sampler  # draws a city in proportion to its population
    platform_weights: np.ndarray
    anonymous_rate: float

    @property
    def size(self) -> int:
        """Number of users in the pool."""
        return len(self.home_city)

    def zone_weights(self) -> np.ndarray:
        """Expected share of sessions per time zone: logged-in users by activity, the rest by population."""
        activity = np.diff(self.activity.cdf, prepend=0.0)
        zones = len(self.cities.timezone_names)
        by_users = np.bincount(self.cities.timezone_code[self.home_city], weights=activity, minlength=zones)
        by_people = np.bincount(self.cities.timezone_code, weights=self.cities.weights, minlength=zones)
        return (1 - self.anonymous_rate) * by_users + self.anonymous_rate * by_people


def draw_platform_device(
    rng: np.random.Generator, n: int, platform_weights: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Draw ``n`` platforms by their shares and a device for each, given its platform."""
    platform = np.searchsorted(np.cumsum(platform_weights), rng.random(n) * platform_weights.sum(), side="right")
    platform = np.minimum(platform, len(PLATFORMS) - 1).astype(np.int8)
    device_cdf = np.cumsum(DEVICE_GIVEN_PLATFORM, axis=1)[platform]
    device = (rng.random(n)[:, None] >= device_cdf[:, :-1]).sum(axis=1).astype(np.int8)
    return platform, device


def build_population(settings: Settings, rng: np.random.Generator) -> Population:
    """Draw the pool of ``USER_POOL_SIZE`` users from ``rng``."""
    cities = home_cities(settings.market_codes)
    city = Sampler(cities.weights)
    n = settings.user_pool_size
    # Systematic sampling: every city gets its population share of the pool to within one user,
    # so even a small pool mirrors the population; the order is then shuffled.
    home = rng.permutation(city((rng.random() + np.arange(n)) / n)).astype(np.int32)
    platform_weights = np.array([settings.platform_weights[p] for p in PLATFORMS])
    platform, device = draw_platform_device(rng, n, platform_weights)
    rank = rng.permutation(n)
    activity = (rank + 1 + ZIPF_OFFSET) ** -ZIPF_EXPONENT
    return Population(
        cities=cities,
        home_city=home,
        platform=platform,
        device=device,
        activity=Sampler(activity),
        city=city,
        platform_weights=platform_weights,
        anonymous_rate=settings.anonymous_rate,
    )


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
