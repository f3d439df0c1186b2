"""Logged-in users with a life: sign-up, an arrival process of their own, dormancy and churn.

Each user of a shard has a home city, a usual platform and device, and an activity level
drawn from a Zipf-Mandelbrot law (Ali and Scarr 2007: it fits per-user activity better
than a pure power law). Their sessions come from their own arrival process: a Poisson
process whose rate is their activity times the site's level ``c`` times the weekly
rhythm of their local time (and the calendar), so a user's sessions follow their own
day. A user waits at least ``DEAD_TIME_MS`` after a session starts before the next one
(the 30-minute session timeout plus the hour a session can last), so their sessions never
overlap and a sessionizer never merges two of them.

Churn: after each session, the time until a user would leave for good is drawn from a
Weibull law of shape ``CHURN_SHAPE`` > 1, so the hazard of leaving rises with the time
since the user was last seen; a booking makes it slower (``CHURN_BOOKED_FACTOR``). A user
who has not come back by then has churned, at that moment.

The site has a history: ``USER_POOL_SIZE`` users signed up before the window and are
alive at its start, each last seen up to ``BASE_LAST_SEEN_DAYS`` before it. New users sign
up during the window: their first session is their sign-up.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
import polars as pl

from .timing import INFINITE_MS, MS_PER_DAY, SliceClock

# Activity: weight (1 + q + U * ranks)^-s for a uniform U: the rank-frequency law of Zipf and
# Mandelbrot over a population of ZIPF_RANKS, normalised to mean 1.
ZIPF_EXPONENT = 1.0
ZIPF_OFFSET = 20.0
ZIPF_RANKS = 10_000.0
_ZIPF_MEAN = float(np.log((1 + ZIPF_OFFSET + ZIPF_RANKS) / (1 + ZIPF_OFFSET)) / ZIPF_RANKS)

DEAD_TIME_MS = 90 * 60 * 1000  # after a session starts, the next starts no sooner
MAX_SESSIONS_PER_DAY = 3.0  # the most active user's rate at mean rhythm: a human, not a bot
MAX_LEVEL_PASSES = 50  # a bound on the passes of the level search, never reached in practice
CHURN_SHAPE = 2.0  # Weibull shape: hazard of leaving rises with inactivity
CHURN_DAYS = 45.0  # Weibull scale, days since a session
CHURN_BOOKED_FACTOR = 2.0  # after a booking the scale is this much longer: bookers stay
BASE_LAST_SEEN_DAYS = 30.0  # users of the site's history were last seen up to this long before the window
BASE_SIGNUP_DAYS = 3 * 365.0  # ... and signed up up to this long before it


def activity_weights(u: np.ndarray) -> np.ndarray:
    """Zipf-Mandelbrot activity weights (mean 1) for uniforms ``u``."""
    return ((1 + ZIPF_OFFSET + u * ZIPF_RANKS) ** -ZIPF_EXPONENT / _ZIPF_MEAN).astype(np.float64)


def churn_delay_ms(rng: np.random.Generator, n: int, booked: np.ndarray | None = None) -> np.ndarray:
    """Time from a session until its user would churn, if they do not come back first."""
    scale = np.full(n, CHURN_DAYS) if booked is None else np.where(booked, CHURN_DAYS * CHURN_BOOKED_FACTOR, CHURN_DAYS)
    return (scale * rng.weibull(CHURN_SHAPE, n) * MS_PER_DAY).astype(np.int64)


GROWTH = 1.25  # arrays of per-user state grow by a quarter: at most a fifth of them is slack, not half


def grown(array: np.ndarray, size: int) -> np.ndarray:
    """``array`` with room for at least ``size`` entries (new ones zero), grown by GROWTH when full."""
    if size <= len(array):
        return array
    bigger = np.zeros(max(size, int(GROWTH * len(array)), 64), dtype=array.dtype)
    bigger[: len(array)] = array
    return bigger


def level_for(weight: np.ndarray, exposure: np.ndarray, sessions: float) -> float:
    """The site's level at which users are expected to start ``sessions`` sessions in a slice, rates capped.

    ``weight`` is each user's activity, ``exposure`` the cumulative intensity they are open to.
    """
    if not len(weight) or sessions <= 0:
        return 0.0
    most = float((MAX_SESSIONS_PER_DAY * exposure).sum())
    if most <= sessions:
        return float(MAX_SESSIONS_PER_DAY / weight.min())
    # Expected sessions at level L are L * sum(w e) over the users below the cap plus CAP * sum(e)
    # over those at it. Solve with the capped users of the last guess held fixed: each guess is at
    # most the answer and the capped set only grows, so the answer comes when it stops growing
    # (in a few passes, rarely more than ten; a bisection took forty).
    weighted = weight * exposure
    capped = np.zeros(len(weight), dtype=bool)
    level = 0.0
    for _ in range(MAX_LEVEL_PASSES):
        free = float(weighted[~capped].sum())
        if free <= 0:
            break
        level = (sessions - MAX_SESSIONS_PER_DAY * float(exposure[capped].sum())) / free
        now = level * weight >= MAX_SESSIONS_PER_DAY
        if not (now & ~capped).any():
            break
        capped |= now
    return level


@dataclass
class Users:
    """The logged-in users of one shard, as parallel arrays indexed by the shard's own user number.

    A shard keeps every user it has had in memory, so the arrays are as small as they can be
    (about 47 bytes a user): a user's global number follows from their number in the shard,
    and a churned user's churn time is the ``churn_at_ms`` that was due when they churned.
    """

    shard: int
    shards: int
    base_count: int  # users of the site's history over all shards: new users are numbered after them
    start_ms: int = 0  # the start of the window: users of the history signed up before it
    size: int = 0
    columns: dict[str, np.ndarray] = field(default_factory=dict)

    _DTYPES: ClassVar[dict[str, type]] = {
        "city": np.int32,
        "platform": np.int8,
        "device": np.int8,
        "weight": np.float64,
        "signup_ms": np.int64,
        "last_start_ms": np.int64,
        "churn_at_ms": np.int64,  # once churned, the time they churned
        "churned": np.bool_,
        "sessions": np.int32,
        "bookings": np.int32,
    }

    def __post_init__(self) -> None:
        for name, dtype in self._DTYPES.items():
            self.columns.setdefault(name, np.zeros(0, dtype=dtype))

    def __getitem__(self, name: str) -> np.ndarray:
        return self.columns[name][: self.size]

    @property
    def history(self) -> int:
        """Users of the site's history in this shard: they come first, then the shard's sign-ups in order."""
        return len(range(self.shard + 1, self.base_count + 1, self.shards))

    def user_ids(self, members: np.ndarray) -> np.ndarray:
        """Global numbers (the n of ``user_<n>``) of the shard's users ``members``.

        Users of the history are numbered ``shard + 1 + shards * k`` up to ``base_count``; the
        k-th sign-up of a shard is ``base_count + 1 + shard + shards * k``.
        """
        members = np.asarray(members, dtype=np.int64)
        assert not len(members) or int(members.max()) < self.size, "not a user of this shard"
        history = self.history
        k = np.where(members < history, members, members - history)
        return np.where(members < history, 1, self.base_count + 1) + self.shard + self.shards * k

    def add(self, **values: np.ndarray) -> np.ndarray:
        """Append users (every column given as an array of one length); return their numbers in the shard."""
        n = len(next(iter(values.values())))
        first = self.size
        for name in self._DTYPES:
            column = grown(self.columns[name], first + n)
            column[first : first + n] = values.get(name, 0)
            self.columns[name] = column
        self.size += n
        return np.arange(first, first + n)

    def active(self) -> np.ndarray:
        """Numbers of the users who have not churned."""
        return np.flatnonzero(~self["churned"])

    def returning(
        self, rng: np.random.Generator, clock: SliceClock, group_of_city: np.ndarray, sessions: float
    ) -> tuple[np.ndarray, np.ndarray]:
        """Returning visits of active users in the clock's slice: (start times, user numbers), sorted by time.

        Each user's rate is the site's level times their activity (capped at MAX_SESSIONS_PER_DAY)
        times their group's intensity, at the level where ``sessions`` visits are expected
        (:func:`level_for`). Users who would come back only after their churn time churn.
        """
        users = self.active()
        start = np.maximum(self["last_start_ms"][users] + DEAD_TIME_MS, clock.t0)
        group = group_of_city[self["city"][users]]
        weight = self["weight"][users]
        # Most users are past their dead time at the slice's start: their cumulative intensity there
        # is their group's, looked up instead of computed for each of them (the same numbers).
        recent = np.flatnonzero(start > clock.t0)
        at_start = clock.group_at(clock.t0)[group]
        at_start[recent] = clock.at(np.minimum(start[recent], clock.t1), group[recent])
        exposure = np.maximum(clock.group_at(clock.t1)[group] - at_start, 0)
        level = level_for(weight, exposure, sessions)
        rate = np.minimum(level * weight, MAX_SESSIONS_PER_DAY)
        starts, who = [], []
        while len(users):
            live = start < clock.t1
            users, rate, start, group, at_start = users[live], rate[live], start[live], group[live], at_start[live]
            if not len(users):
                break
            x = at_start + rng.standard_exponential(len(users)) / np.maximum(rate, 1e-12)
            # Only users whose draw falls inside the slice come: the others need no inverse.
            t = np.full(len(users), INFINITE_MS)
            inside = np.flatnonzero(x < clock.cumulative[group, -1])
            t[inside] = clock.inverse(x[inside], group[inside])
            churn_at = self["churn_at_ms"][users]
            gone = churn_at <= np.minimum(t, clock.t1 - 1)
            self.columns["churned"][users[gone]] = True
            came = (t < clock.t1) & ~gone
            users, rate, group, t = users[came], rate[came], group[came], t[came]
            starts.append(t)
            who.append(users)
            self.columns["last_start_ms"][users] = t
            self.columns["churn_at_ms"][users] = t + churn_delay_ms(rng, len(users))
            self.columns["sessions"][users] += 1
            start = t + DEAD_TIME_MS
            at_start = clock.at(np.minimum(start, clock.t1), group)
        if not starts:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
        start_all, who_all = np.concatenate(starts), np.concatenate(who)
        order = np.argsort(start_all, kind="stable")
        return start_all[order], who_all[order]

    def booked(self, rng: np.random.Generator, users: np.ndarray, session_start: np.ndarray) -> None:
        """These users booked in a session starting at ``session_start``: count it, and they churn more slowly."""
        np.add.at(self.columns["bookings"], users, 1)
        later = self.columns["last_start_ms"][users] <= session_start  # the booking session was their last
        users, session_start = users[later], session_start[later]
        churn_at = session_start + churn_delay_ms(rng, len(users), np.ones(len(users), bool))
        # Users found to have churned after it (later in the same slice) keep the churn time they left at.
        stay = ~self.columns["churned"][users]
        self.columns["churn_at_ms"][users[stay]] = churn_at[stay]

    def table(self, end_ms: int) -> pl.DataFrame:
        """The answer key of this shard's users who took part in the window: sign-up, churn, home, habits, activity.

        Users of the history who neither came nor churned during the window are left out.
        """
        # A user whose churn time passed before the end of the window without a return has churned too.
        churned = np.where(self["churned"] | (self["churn_at_ms"] < end_ms), self["churn_at_ms"], -1)
        # Users who took part in the window: they came, signed up or churned in it.
        seen = (self["sessions"] > 0) | (self["signup_ms"] >= self.start_ms) | (churned >= 0)
        return pl.DataFrame(
            {
                "user": self.user_ids(np.flatnonzero(seen)),
                "city": self["city"][seen],
                "platform": self["platform"][seen],
                "device": self["device"][seen],
                "activity": self["weight"][seen],
                "signup_ms": self["signup_ms"][seen],
                "churned_ms": churned[seen],
                "sessions": self["sessions"][seen],
                "bookings": self["bookings"][seen],
            }
        )
