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

A shard's users live in a temporary file (``spill``), a chunk of rows paged in at a time: a
slice's draw of returning visits passes over them chunk by chunk, and the users' answer key
is spooled to a file and merged in order of user when it is written.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import numpy as np
import polars as pl

from .spill import SpilledColumns, SpooledFrames
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


@dataclass
class Rest:
    """Users left out of :func:`level_for`'s arrays, as sums: none of them may reach the cap at the level found."""

    weighted: float = 0.0  # sum of activity times exposure
    exposure: float = 0.0
    lightest: float = np.inf  # the least and the most activity among them
    heaviest: float = 0.0

    def add(self, weight: np.ndarray, exposure: np.ndarray) -> None:
        """Count these users in."""
        if len(weight):
            self.weighted += float((weight * exposure).sum())
            self.exposure += float(exposure.sum())
            self.lightest = min(self.lightest, float(weight.min()))
            self.heaviest = max(self.heaviest, float(weight.max()))


def level_for(weight: np.ndarray, exposure: np.ndarray, sessions: float, rest: Rest | None = None) -> float:
    """The site's level at which users are expected to start ``sessions`` sessions in a slice, rates capped.

    ``weight`` is each user's activity, ``exposure`` the cumulative intensity they are open to;
    ``rest`` sums up more users, taken to stay under the cap (check it: ``rest.heaviest * level``).
    """
    rest = rest or Rest()
    if (not len(weight) and rest.lightest == np.inf) or sessions <= 0:
        return 0.0
    most = float((MAX_SESSIONS_PER_DAY * exposure).sum()) + MAX_SESSIONS_PER_DAY * rest.exposure
    if most <= sessions:
        return float(MAX_SESSIONS_PER_DAY / min(weight.min(initial=np.inf), rest.lightest))
    # Expected sessions at level L are L * sum(w e) over the users below the cap plus CAP * sum(e)
    # over those at it. Solve with the capped users of the last guess held fixed: each guess is at
    # most the answer and the capped set only grows, so the answer comes when it stops growing
    # (in a few passes, rarely more than ten; a bisection took forty).
    weighted = weight * exposure
    capped = np.zeros(len(weight), dtype=bool)
    level = 0.0
    for _ in range(MAX_LEVEL_PASSES):
        free = float(weighted[~capped].sum()) + rest.weighted
        if free <= 0:
            break
        level = (sessions - MAX_SESSIONS_PER_DAY * float(exposure[capped].sum())) / free
        now = level * weight >= MAX_SESSIONS_PER_DAY
        if not (now & ~capped).any():
            break
        capped |= now
    return level


USER_COLUMNS: dict[str, type] = {
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


@dataclass
class Users:
    """The logged-in users of one shard, a row each (by the shard's own user number) in spilled columns.

    A shard keeps every user it has had, in a temporary file (:class:`SpilledColumns`), so its
    memory does not grow with its users: a user's global number follows from their number in
    the shard, and a churned user's churn time is the ``churn_at_ms`` that was due when they
    churned. ``extra`` columns ride along in the same rows (the journeys' open trips).
    """

    shard: int
    shards: int
    base_count: int  # users of the site's history over all shards: new users are numbered after them
    start_ms: int = 0  # the start of the window: users of the history signed up before it
    extra: dict[str, type] = field(default_factory=dict)
    chunk_rows: int | None = None  # rows of a chunk of the spilled columns (CHUNK_ROWS)
    rows: SpilledColumns = field(init=False)
    _floor: float = field(init=False, default=np.inf)  # activity above which users' exposures are kept one by one

    def __post_init__(self) -> None:
        self.rows = SpilledColumns({**USER_COLUMNS, **self.extra}, self.chunk_rows)

    @property
    def size(self) -> int:
        """Users the shard has had."""
        return self.rows.size

    def __getitem__(self, name: str) -> np.ndarray:
        """A copy of column ``name`` for every user (for tests and small shards: it reads every chunk)."""
        return self.rows.column(name)

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
        """Append users (every column given as an array of one length, others zero); return their numbers."""
        return self.rows.append(values, len(next(iter(values.values()))))

    def _open_to(
        self, clock: SliceClock, group_of_city: np.ndarray, first: int, columns: dict[str, np.ndarray]
    ) -> tuple[np.ndarray, ...]:
        """Active users of one chunk (rows from ``first``): number, earliest start, group, activity, exposure.

        Also the cumulative intensity of their group where they become free to come.
        """
        users = np.flatnonzero(~columns["churned"])
        start = np.maximum(columns["last_start_ms"][users] + DEAD_TIME_MS, clock.t0)
        group = group_of_city[columns["city"][users]]
        weight = columns["weight"][users]
        # Most users are past their dead time at the slice's start: their cumulative intensity there
        # is their group's, looked up instead of computed for each of them (the same numbers).
        recent = np.flatnonzero(start > clock.t0)
        at_start = clock.group_at(clock.t0)[group]
        at_start[recent] = clock.at(np.minimum(start[recent], clock.t1), group[recent])
        exposure = np.maximum(clock.group_at(clock.t1)[group] - at_start, 0)
        return users + first, start, group, weight, at_start, exposure

    def _level(self, clock: SliceClock, group_of_city: np.ndarray, sessions: float) -> float:
        """:func:`level_for` over the active users, a chunk at a time.

        Only users active enough to reach the cap are kept one by one (all of them while the
        shard has one chunk); the others are summed up. If the level found would cap one of
        those summed up, the pass is made again with more users kept.
        """
        floor = 0.0 if self.rows.chunks <= 1 else self._floor
        while True:
            weights, exposures, rest = [], [], Rest()
            for first, columns in self.rows.scan(("churned", "last_start_ms", "city", "weight")):
                _, _, _, weight, _, exposure = self._open_to(clock, group_of_city, first, columns)
                kept = weight >= floor
                weights.append(weight[kept])
                exposures.append(exposure[kept])
                rest.add(weight[~kept], exposure[~kept])
            level = level_for(np.concatenate([np.zeros(0), *weights]), np.concatenate([np.zeros(0), *exposures]),
                              sessions, rest)  # fmt: skip
            if rest.heaviest * level < MAX_SESSIONS_PER_DAY:
                break
            floor = MAX_SESSIONS_PER_DAY / level / 2 if floor > 1e-9 else 0.0
        # The next slice's level is close: keep a margin of a factor two below this one's cap.
        self._floor = MAX_SESSIONS_PER_DAY / level / 2 if level > 0 else np.inf
        return level

    def returning(
        self, rng: np.random.Generator, clock: SliceClock, group_of_city: np.ndarray, sessions: float
    ) -> tuple[np.ndarray, np.ndarray]:
        """Returning visits of active users in the clock's slice: (start times, user numbers), sorted by time.

        Each user's rate is the site's level times their activity (capped at MAX_SESSIONS_PER_DAY)
        times their group's intensity, at the level where ``sessions`` visits are expected
        (:func:`level_for`). Users who would come back only after their churn time churn.
        """
        level = self._level(clock, group_of_city, sessions)
        # First visits in the slice, a chunk at a time (the draws are those of one pass over all).
        came_parts: list[tuple[np.ndarray, ...]] = []
        for first, columns in self.rows.scan(("churned", "last_start_ms", "city", "weight", "churn_at_ms")):
            users, start, group, weight, at_start, _ = self._open_to(clock, group_of_city, first, columns)
            live = start < clock.t1
            users, group, at_start = users[live], group[live], at_start[live]
            rate = np.minimum(level * weight[live], MAX_SESSIONS_PER_DAY)
            t = self._draw(rng, clock, at_start, rate, group)
            gone = columns["churn_at_ms"][users - first] <= np.minimum(t, clock.t1 - 1)
            columns["churned"][users[gone] - first] = True
            came = (t < clock.t1) & ~gone
            came_parts.append((users[came], rate[came], group[came], t[came]))
        if not came_parts:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
        came_users, rate, group, t = (np.concatenate(part) for part in zip(*came_parts, strict=True))
        # Those who came may come again: their state is held here until the slice is drawn.
        churn_at = t + churn_delay_ms(rng, len(t))
        last, visits, churned = t.copy(), np.ones(len(t), dtype=np.int32), np.zeros(len(t), dtype=bool)
        starts, who = [t], [came_users]
        place = np.arange(len(t))
        start = t + DEAD_TIME_MS
        at_start = clock.at(np.minimum(start, clock.t1), group)
        while len(place):
            live = start < clock.t1
            place, rate, group, at_start = place[live], rate[live], group[live], at_start[live]
            if not len(place):
                break
            t = self._draw(rng, clock, at_start, rate, group)
            gone = churn_at[place] <= np.minimum(t, clock.t1 - 1)
            churned[place[gone]] = True
            came = (t < clock.t1) & ~gone
            place, rate, group, t = place[came], rate[came], group[came], t[came]
            starts.append(t)
            who.append(came_users[place])
            last[place] = t
            churn_at[place] = t + churn_delay_ms(rng, len(place))
            visits[place] += 1
            start = t + DEAD_TIME_MS
            at_start = clock.at(np.minimum(start, clock.t1), group)
        before = self.rows.take(came_users, ("sessions",))["sessions"]
        self.rows.put(
            came_users,
            {"last_start_ms": last, "churn_at_ms": churn_at, "churned": churned, "sessions": before + visits},
        )
        start_all, who_all = np.concatenate(starts), np.concatenate(who)
        order = np.argsort(start_all, kind="stable")
        return start_all[order], who_all[order]

    @staticmethod
    def _draw(
        rng: np.random.Generator, clock: SliceClock, at_start: np.ndarray, rate: np.ndarray, group: np.ndarray
    ) -> np.ndarray:
        """Each user's next start from ``at_start`` on their group's clock at ``rate``; INFINITE_MS past the slice."""
        x = at_start + rng.standard_exponential(len(rate)) / np.maximum(rate, 1e-12)
        # Only users whose draw falls inside the slice come: the others need no inverse.
        t = np.full(len(rate), INFINITE_MS)
        inside = np.flatnonzero(x < clock.cumulative[group, -1])
        t[inside] = clock.inverse(x[inside], group[inside])
        return t

    def booked(self, rng: np.random.Generator, users: np.ndarray, session_start: np.ndarray) -> None:
        """These users booked in a session starting at ``session_start``: count it, and they churn more slowly."""
        rows, place = np.unique(users, return_inverse=True)
        state = self.rows.take(rows, ("bookings", "last_start_ms", "churned", "churn_at_ms"))
        np.add.at(state["bookings"], place, 1)
        later = state["last_start_ms"][place] <= session_start  # the booking session was their last
        place, session_start = place[later], session_start[later]
        churn_at = session_start + churn_delay_ms(rng, len(place), np.ones(len(place), bool))
        # Users found to have churned after it (later in the same slice) keep the churn time they left at.
        stay = ~state["churned"][place]
        state["churn_at_ms"][place[stay]] = churn_at[stay]
        self.rows.put(rows, {"bookings": state["bookings"], "churn_at_ms": state["churn_at_ms"]})

    def tables(self, end_ms: int) -> Iterator[pl.DataFrame]:
        """The answer key of this shard's users who took part in the window, a chunk of users at a time.

        Sign-up, churn, home, habits and activity, in order of user. Users of the history who
        neither came nor churned during the window are left out.
        """
        for first, columns in self.rows.scan(tuple(USER_COLUMNS)):
            yield self._table_part(first, columns, end_ms)

    def _table_part(self, first: int, columns: dict[str, np.ndarray], end_ms: int) -> pl.DataFrame:
        # A user whose churn time passed before the end of the window without a return has churned too.
        churned = np.where(columns["churned"] | (columns["churn_at_ms"] < end_ms), columns["churn_at_ms"], -1)
        # Users who took part in the window: they came, signed up or churned in it.
        seen = (columns["sessions"] > 0) | (columns["signup_ms"] >= self.start_ms) | (churned >= 0)
        return pl.DataFrame(
            {
                "user": self.user_ids(first + np.flatnonzero(seen)),
                "city": columns["city"][seen],
                "platform": columns["platform"][seen],
                "device": columns["device"][seen],
                "activity": columns["weight"][seen],
                "signup_ms": columns["signup_ms"][seen],
                "churned_ms": churned[seen],
                "sessions": columns["sessions"][seen],
                "bookings": columns["bookings"][seen],
            }
        )


class UserTables:
    """The users' answer key of a run: each shard's users, in order of user.

    Held in memory up to IN_MEMORY_ROWS users in all (a few tens of MB), beyond that spooled
    to a temporary file per shard and read back in order of user over all shards a slice at a
    time (a merge of the shards' ordered runs), so the key of millions of users never sits in
    memory whole.
    """

    IN_MEMORY_ROWS = 1 << 18

    def __init__(self) -> None:
        """No users yet."""
        self._held: dict[int, list[pl.DataFrame]] = {}
        self._spools: dict[int, SpooledFrames] = {}
        self.height = 0

    def add(self, shard: int, frame: pl.DataFrame) -> None:
        """The next users of ``shard`` (after those added before, in order of user)."""
        if not frame.height:
            return
        self.height += frame.height
        if self.height <= self.IN_MEMORY_ROWS:
            self._held.setdefault(shard, []).append(frame)
            return
        for held_shard, frames in self._held.items():  # too many to hold: everything goes to the spools
            for held in frames:
                self._spools.setdefault(held_shard, SpooledFrames()).add(held)
        self._held = {}
        self._spools.setdefault(shard, SpooledFrames()).add(frame)

    def add_all(self, shard: int, frames: Iterable[pl.DataFrame]) -> None:
        """All the users of ``shard``, as :meth:`Users.tables` gives them."""
        for frame in frames:
            self.add(shard, frame)

    def iter_slices(self, rows: int) -> Iterator[pl.DataFrame]:
        """All users in order of user, at most ``rows`` at a time (once: the spools are read as they go)."""
        if self._held:
            yield from (
                pl.concat([f for _, frames in sorted(self._held.items()) for f in frames])
                .sort("user")
                .iter_slices(rows)
            )
            return
        sources = [spool.frames() for _, spool in sorted(self._spools.items())]
        heads = [next(source, None) for source in sources]
        while True:
            ready = [i for i, head in enumerate(heads) if head is not None]
            if not ready:
                return
            # Every shard's users up to the smallest last user among the frames at hand come next.
            bound = min(int(heads[i]["user"][-1]) for i in ready)  # type: ignore[index]
            taken = []
            for i in ready:
                head = heads[i]
                assert head is not None
                cut = int(np.searchsorted(head["user"].to_numpy(), bound, side="right"))
                taken.append(head[:cut])
                heads[i] = head[cut:] if cut < head.height else next(sources[i], None)
            yield from pl.concat(taken).sort("user").iter_slices(rows)
