"""Seed-stable shards: the user space and the one-off visitors split into parts that are generated apart.

A shard's events over a window are a pure function of the seed, the settings, the window,
the event count and the shard's number. A :class:`ShardPlan` says which shards there are
and which window they cover; :func:`run_shard` turns one shard into column tables, one
per slice of the plan. Any engine that can run a function per shard (processes on one
machine, or a cluster) and merge the results in time order gets the same events.

Each shard owns the logged-in users whose number ``n`` has ``(n - 1) % shards == shard``
(users of the site's history and those who sign up during the window), and its share of
the anonymous visitors. It writes exactly its share of ``count`` events: every slice of
the window gets sessions in proportion to the slice's share of the traffic, corrected
by what earlier slices produced, and the last slice tops up and cuts at the exact count.
Within a slice the sessions are, in order: new users signing up (their first visit),
the returning visits of every active user from their own arrival process (at the level
that gives returning visits their share), sign-ups that make up for returning visits
that fell short, and anonymous visits. Events of sessions still running at a slice's end
wait for the next slice, so each slice is in time order.

Randomness: shard ``s`` draws its users' history from the stream ``(seed, 10, s)`` and
slice ``i`` (round ``r``) from ``(seed, 11, s, i, r)``.
"""

from __future__ import annotations

import math
from collections.abc import Generator, Iterator
from dataclasses import dataclass, field

import numpy as np
import polars as pl

from ..config import Settings
from .calendar_link import site_calendar
from .faults import Delivery
from .journeys import JOURNEY_COLUMNS, Journeys
from .population import Site, build_site, draw_platform_device
from .sessions import SESSION_TIMEOUT_MS, Arrivals, SessionModel
from .tables import EventTables
from .timing import MS_PER_DAY, TimeModel, local_time, to_ms
from .users import (
    BASE_LAST_SEEN_DAYS,
    BASE_SIGNUP_DAYS,
    CHURN_DAYS,
    CHURN_SHAPE,
    DEAD_TIME_MS,
    Users,
    activity_weights,
    churn_delay_ms,
)

ARRIVAL_STEP_MS = MS_PER_DAY  # returning visits are drawn a day at a time within a slice
PRIOR_SESSIONS = 100  # weight of the model's mean events per session against those measured
SLICE_EVENTS = 200_000  # events per slice over all shards: large enough to vectorise, small enough to bound memory


def rng_for(seed: int, *key: int) -> np.random.Generator:
    """The generator of one named random stream of a seed (NumPy's SeedSequence spawn keys)."""
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed, spawn_key=key)))


@dataclass(frozen=True)
class ShardPlan:
    """Which shards cover which window with how many events: all a shard needs besides the settings."""

    seed: int
    start_ms: int
    end_ms: int
    count: int
    shards: int

    def shard_counts(self) -> list[int]:
        """Events of each shard: the count split as evenly as whole numbers allow."""
        base, extra = divmod(self.count, self.shards)
        return [base + (s < extra) for s in range(self.shards)]

    def bounds(self, clock: TimeModel) -> np.ndarray:
        """Boundaries of the slices every shard fills, in epoch ms (the same for all shards).

        Each slice has the same expected traffic under ``clock`` (the world's), so the same number
        of events: slices of equal time would hold half as many again at the busiest hours of the
        week, and the memory of a run goes with its largest slice.
        """
        slices = max(1, math.ceil(self.count / SLICE_EVENTS))
        return clock.equal_mass_bounds(self.start_ms, self.end_ms, slices)


class World:
    """What every shard of a run shares and never changes: markets, catalogue, session model, clock."""

    def __init__(self, settings: Settings, seed: int, start_ms: int, end_ms: int) -> None:
        """Build the static tables for ``settings`` and ``seed`` over [start_ms, end_ms)."""
        self.settings = settings
        self.site: Site = build_site(settings)
        self.model = SessionModel(settings, self.site, seed)
        self.calendar = site_calendar(settings, self.site.country_names, start_ms, end_ms)
        site = self.site
        self._empty: EventTables | None = None
        self.clock = TimeModel(
            start_ms,
            end_ms,
            site.cities.timezone_names,
            site.group_zone,
            site.group_weights,
            site.group_country,
            day_factor=self.calendar.traffic if self.calendar else None,
            peak_factor=self.calendar.peak_traffic if self.calendar else 1.0,
        )

    def empty_tables(self) -> EventTables:
        """Event tables with no rows and the columns the session model writes."""
        if self._empty is None:
            rng = rng_for(0, 3)
            start, city = self.model.draw_visitors(rng, 1, 0, 1, None)
            minus, zeros = np.full(1, -1, dtype=np.int64), np.zeros(1, dtype=np.int8)
            arrivals = Arrivals(start, minus, minus, city, zeros, zeros, np.zeros(1, dtype=bool), start + 2**40)
            self._empty = self.model.simulate(rng, arrivals, Journeys(0.0))[0].head(0)
        return self._empty

    def booking_factor(self, start: np.ndarray, city: np.ndarray) -> np.ndarray | None:
        """The calendar's factor on the chance of booking for sessions starting at ``start`` in ``city``."""
        if self.calendar is None:
            return None
        cities = self.site.cities
        day = local_time(start, cities.timezone_code[city], cities.timezone_names) // MS_PER_DAY
        return self.calendar.booking(self.site.country_of_city[city], day)


@dataclass
class Shard:
    """One shard's users and visitors, generated a slice at a time."""

    world: World
    seed: int
    index: int
    shards: int
    start_ms: int
    end_ms: int | None  # None: live traffic with no end
    users: Users = field(init=False)  # with each user's open trip (JOURNEY_COLUMNS)
    _carry: dict[str, float] = field(default_factory=dict)
    sessions_made: int = 0

    def __post_init__(self) -> None:
        settings = self.world.settings
        self.users = Users(self.index, self.shards, settings.user_pool_size, self.start_ms, JOURNEY_COLUMNS)
        self._history(rng_for(self.seed, 10, self.index), self.users.history)

    def _history(self, rng: np.random.Generator, n: int) -> None:
        """The users of the site's history, alive at the start: last seen up to BASE_LAST_SEEN_DAYS before it."""
        site = self.world.site
        # Systematic sampling: every city gets its population share of the users to within one, then shuffled.
        city = rng.permutation(site.city((rng.random() + np.arange(n)) / max(n, 1))).astype(np.int32)
        platform, device = draw_platform_device(rng, n, site.platform_weights)
        seen_ago = (rng.random(n) * BASE_LAST_SEEN_DAYS * MS_PER_DAY).astype(np.int64)
        last = self.start_ms - seen_ago
        # Alive at the start: the churn delay drawn given it is longer than the time since last seen.
        scale_ms = CHURN_DAYS * MS_PER_DAY
        delay = scale_ms * ((seen_ago / scale_ms) ** CHURN_SHAPE + rng.standard_exponential(n)) ** (1 / CHURN_SHAPE)
        self.users.add(
            city=city,
            platform=platform,
            device=device,
            weight=activity_weights(rng.random(n)),
            signup_ms=last - (rng.random(n) * BASE_SIGNUP_DAYS * MS_PER_DAY).astype(np.int64),
            last_start_ms=last,
            churn_at_ms=last + delay.astype(np.int64),
        )

    def _split(self, name: str, value: float) -> int:
        """A whole number of sessions for ``value``, carrying the fraction to the next call of the same name."""
        total = value + self._carry.get(name, 0.0)
        whole = int(total)
        self._carry[name] = total - whole
        return whole

    def _sign_up(self, rng: np.random.Generator, count: int, t0: int, t1: int, paced: bool) -> Arrivals:
        """``count`` new users signing up in [t0, t1): their first sessions."""
        world = self.world
        start, city = world.model.draw_visitors(rng, count, t0, t1, world.clock if paced else None)
        platform, device = draw_platform_device(rng, count, world.site.platform_weights)
        member = self.users.add(
            city=city,
            platform=platform,
            device=device,
            weight=activity_weights(rng.random(count)),
            signup_ms=start,
            last_start_ms=start,
            churn_at_ms=start + churn_delay_ms(rng, count),
            sessions=np.ones(count, dtype=np.int32),
        )
        return self._logged(start, member, returning=False)

    def _logged(self, start: np.ndarray, member: np.ndarray, returning: bool) -> Arrivals:
        room = start + DEAD_TIME_MS - SESSION_TIMEOUT_MS - 1  # ends 30 minutes before the user's next start
        home = self.users.rows.take(member, ("city", "platform", "device"))
        return Arrivals(
            start=start,
            user=self.users.user_ids(member),
            member=member,
            city=home["city"],
            platform=home["platform"],
            device=home["device"],
            returning=np.full(len(start), returning),
            finish_by=room,
        )

    def _anonymous(self, rng: np.random.Generator, count: int, t0: int, t1: int, paced: bool) -> Arrivals:
        start, city = self.world.model.draw_visitors(rng, count, t0, t1, self.world.clock if paced else None)
        minus = np.full(count, -1, dtype=np.int64)
        zeros = np.zeros(count, dtype=np.int8)
        return Arrivals(start, minus, minus, city, zeros, zeros, np.zeros(count, dtype=bool), start + 2**40)

    def step(
        self, rng: np.random.Generator, sessions: int, t0: int, t1: int, returning: bool, paced: bool = True
    ) -> EventTables:
        """Simulate about ``sessions`` sessions starting in [t0, t1), sorted by time.

        With ``returning``, active users come back from their own arrival processes (once per
        slice); otherwise (a top-up) only new and anonymous visitors come. ``paced`` thins
        visitors' start times by the rhythm (batch); live traffic keeps every candidate.
        """
        settings = self.world.settings
        anonymous = self._split("anonymous", sessions * settings.anonymous_rate)
        logged = sessions - anonymous
        parts = []
        if returning:
            # Day by day, so the site's level follows the users who signed up earlier in the slice.
            edges = np.unique(np.r_[np.arange(t0, t1, ARRIVAL_STEP_MS), t1])
            masses = self.world.clock.mass(edges[:-1], edges[1:]) if paced else np.diff(edges).astype(np.float64)
            shares = masses / masses.sum() if masses.sum() > 0 else np.full(len(masses), 1 / len(masses))
            group = self.world.site.group_of_city
            for a, b, share in zip(edges[:-1].tolist(), edges[1:].tolist(), shares.tolist(), strict=True):
                new = self._split("signup", logged * settings.signup_share * share)
                parts.append(self._sign_up(rng, new, a, b, paced))
                clock = self.world.clock.slice_clock(a, b)
                wanted = self._split("returning", logged * (1 - settings.signup_share) * share)
                start, member = self.users.returning(rng, clock, group, wanted)
                parts.append(self._logged(start, member, returning=True))
                short = max(0, wanted - len(start))
                if short:
                    parts.append(self._sign_up(rng, short, a, b, paced))
        elif logged:
            parts.append(self._sign_up(rng, logged, t0, t1, paced))
        if anonymous:
            parts.append(self._anonymous(rng, anonymous, t0, t1, paced))
        if not parts:
            parts.append(self._anonymous(rng, 0, t0, t1, paced))
        arrivals = Arrivals.concat(parts)
        self.sessions_made += len(arrivals)
        if self.end_ms is not None:
            arrivals.finish_by = np.minimum(arrivals.finish_by, self.end_ms - 1)
        return self._simulate(rng, arrivals)

    def _simulate(self, rng: np.random.Generator, arrivals: Arrivals) -> EventTables:
        """The sessions of ``arrivals``, with their users' open trips (read, then put back), sorted by time."""
        member = arrivals.member
        signed_in = member >= 0
        rows = np.unique(member[signed_in])
        # The batch's users are numbered from 0, in the order of their numbers in the shard.
        journeys = Journeys(self.world.settings.return_trip_rate, self.users.rows.take(rows, tuple(JOURNEY_COLUMNS)))
        arrivals.member = np.where(signed_in, np.searchsorted(rows, member), -1)
        tables, outcome = self.world.model.simulate(
            rng, arrivals, journeys, self.world.booking_factor(arrivals.start, arrivals.city)
        )
        self.users.rows.put(rows, journeys.state)
        booked = outcome.booked & signed_in
        self.users.booked(rng, member[booked], arrivals.start[booked])
        return tables.sort()

    def users_tables(self) -> Iterator[pl.DataFrame]:
        """The answer key of this shard's users so far, a chunk of users at a time (see ``Users.tables``)."""
        return self.users.tables(self.end_ms if self.end_ms is not None else (2**62))


def run_shard(
    settings: Settings, plan: ShardPlan, index: int, world: World | None = None
) -> Generator[EventTables, None, Iterator[pl.DataFrame]]:
    """Events of shard ``index`` of ``plan``: one table set per slice of the plan, in time order, some empty.

    Exactly ``plan.shard_counts()[index]`` events over all slices. After the last slice the
    generator returns the shard's users tables (``StopIteration.value``, an iterator of
    tables of a chunk of users each, in order of user), the answer key of who signed up and
    churned. With fault rates set, the slices are as delivered
    (``simulation.faults``): in order of delivery, with copies on top of the count, and the
    last slice also holds what arrives after the window.
    """
    world = world or World(settings, plan.seed, plan.start_ms, plan.end_ms)
    slices = _shard_slices(settings, plan, index, world)
    rates = settings.fault_rates()
    if not any(rates.values()):
        return (yield from slices)
    release = to_ms(settings.fault_drift_at) if settings.fault_drift_at else (plan.start_ms + plan.end_ms) // 2
    delivery = Delivery(rates, plan.seed, world.empty_tables(), release, text=settings.writes_json)
    bounds = plan.bounds(world.clock)
    i = 0
    while True:
        try:
            tables = next(slices)
        except StopIteration as done:
            return done.value  # type: ignore[no-any-return]
        # The last slice delivers all that waits, also what arrives after the window.
        until = int(bounds[i + 1]) if i + 2 < len(bounds) else None
        yield delivery.step(tables, rng_for(plan.seed, 31, index, i), until)
        i += 1


def _shard_slices(
    settings: Settings, plan: ShardPlan, index: int, world: World
) -> Generator[EventTables, None, Iterator[pl.DataFrame]]:
    """``run_shard`` as made, before delivery."""
    shard = Shard(world, plan.seed, index, plan.shards, plan.start_ms, plan.end_ms)
    count = plan.shard_counts()[index]
    prior = world.model.expected_events_per_session()
    bounds = plan.bounds(world.clock)
    masses = world.clock.mass(bounds[:-1], bounds[1:])
    remaining_mass = float(masses.sum())
    slices = len(bounds) - 1
    generated = emitted = 0
    carry = 0.0
    pending: EventTables | None = None
    empty = world.empty_tables()
    for i in range(slices):
        t0, t1 = int(bounds[i]), int(bounds[i + 1])
        # Events per session as made so far (bookings end sessions early), from the model's mean at first.
        per_session = (generated + PRIOR_SESSIONS * prior) / (shard.sessions_made + PRIOR_SESSIONS)
        share = float(masses[i]) / remaining_mass if remaining_mass > 0 else 1.0
        remaining_mass -= float(masses[i])
        wanted = max(0, count - generated) / per_session * share + carry
        sessions = int(wanted)
        carry = wanted - sessions
        last = i == slices - 1
        if last and generated < count:
            sessions = max(sessions, 1)
        rounds = 0
        while sessions > 0:
            new = shard.step(rng_for(plan.seed, 11, index, i, rounds), sessions, t0, t1, returning=rounds == 0)
            generated += len(new)
            pending = new if pending is None else pending.merge(new)
            rounds += 1
            # The last slice tops up until the shard holds enough events.
            sessions = math.ceil((count - generated) / per_session) + 1 if last and generated < count else 0
        if pending is None:
            yield empty
            continue
        ready, pending = (pending, None) if last else pending.split_at(t1)
        ready, _ = ready.first(count - emitted)
        emitted += len(ready)
        yield ready
    return shard.users_tables()
