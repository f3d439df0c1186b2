"""Core event generation: a seeded engine that yields batches of events in time order.

Batch mode splits the window into slices of about ``BATCH_EVENTS`` events. Each slice
gets a number of sessions in proportion to its share of the traffic, corrected by what
earlier slices produced, so exactly ``count`` events fill the whole window. Events that
fall past a slice's end wait for the next one, so every batch is in time order and the
run as a whole is too; the first ``count`` events in time order are kept, which never
cuts an event that a kept one refers to (clicks come after their search, bookings after
their click).

Randomness: one seed; the user pool draws from the stream ``(seed, 0)``, slice ``i``
from ``(seed, 1, i, round)``. Nothing else is random, so a seed and settings give the
same bytes.
"""

from __future__ import annotations

import math
import secrets
import time
from collections.abc import Iterator
from datetime import datetime

import numpy as np

from .config import Settings
from .models import stream_names
from .output.encoding import Encoder
from .simulation.journeys import Journeys
from .simulation.population import Population, build_population
from .simulation.sessions import SessionModel
from .simulation.tables import EventTables, Schedule
from .simulation.timing import TimeModel, to_ms

BATCH_EVENTS = 100_000  # events per slice: large enough to vectorise, small enough to bound memory
LIVE_SLICE_MS = 100  # live traffic is generated and written a tenth of a second at a time


def new_seed() -> int:
    """A random seed for a run that was not given one (printed, so the run can be repeated)."""
    return secrets.randbits(63)


def _rng(seed: int, *key: int) -> np.random.Generator:
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed, spawn_key=key)))


class EventGenerator:
    """Simulates the site's traffic for one seed and one set of settings."""

    def __init__(self, settings: Settings, seed: int) -> None:
        """Draw the user pool and prepare the session model."""
        self.settings = settings
        self.seed = seed
        self.population: Population = build_population(settings, _rng(seed, 0))
        self.model = SessionModel(settings, self.population)
        self.encoder = Encoder(
            self.model.catalogue,
            self.population.cities,
            streams=stream_names(settings.stream_prefix) if settings.output in ("redis", "both") else None,
            lines=settings.output != "redis",
        )
        self.journeys = Journeys(self.population.size, settings.return_trip_rate)
        self.schedule = Schedule()  # events still to come in live mode
        self._live_due = 0

    def time_model(self, start: datetime, end: datetime) -> TimeModel:
        """The traffic intensity over [start, end) for this run's population."""
        pop = self.population
        return TimeModel(to_ms(start), to_ms(end), pop.cities.timezone_names, pop.zone_weights())

    def _sessions(
        self,
        rng: np.random.Generator,
        count: int,
        t0: int,
        t1: int,
        clock: TimeModel | None,
        finish_by: int | None = None,
    ) -> EventTables:
        start, user, city = self.model.draw_starts(rng, count, t0, t1, clock)
        return self.model.simulate(rng, start, user, city, self.journeys, finish_by=finish_by)

    def batch(self, count: int, start: datetime, end: datetime) -> Iterator[EventTables]:
        """Yield exactly ``count`` events over [start, end), in time order, a slice at a time."""
        start_ms, end_ms = to_ms(start), to_ms(end)
        clock = self.time_model(start, end)
        per_session = self.model.expected_events_per_session()
        slices = max(1, math.ceil(count / BATCH_EVENTS))
        bounds = np.linspace(start_ms, end_ms, slices + 1).astype(np.int64)
        masses = clock.mass(bounds[:-1], bounds[1:])
        remaining_mass = float(masses.sum())
        generated = emitted = 0
        carry = 0.0
        pending: EventTables | None = None
        for i in range(slices):
            t0, t1 = int(bounds[i]), int(bounds[i + 1])
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
                # Sessions that would run past the window end are shortened to end inside it, so a short
                # window still holds whole sessions and its funnel reads the configured rates.
                rng = _rng(self.seed, 1, i, rounds)
                new, _ = self._sessions(rng, sessions, t0, t1, clock, finish_by=end_ms).sort().split_at(end_ms)
                generated += len(new)
                pending = new if pending is None else pending.merge(new)
                rounds += 1
                # The last slice tops up until the window holds enough events.
                sessions = math.ceil((count - generated) / per_session) + 1 if last and generated < count else 0
            if pending is None:
                continue
            ready, pending = (pending, None) if last else pending.split_at(t1)
            ready, _ = ready.first(count - emitted)
            emitted += len(ready)
            if len(ready):
                yield ready
            if emitted >= count:
                return

    def live(self, rate: float, start_ms: int, end_ms: int | None = None) -> Iterator[EventTables]:
        """Yield live traffic from ``start_ms`` in slices of LIVE_SLICE_MS, each slice's events in time order.

        Many sessions are in flight at once. Before each slice, new sessions are started so
        that the events due by its end match ``rate`` per second since ``start_ms``: the
        achieved rate follows the target closely, not only on average. With ``end_ms``, no
        session runs past it and no more sessions start than the remaining events allow,
        so the run holds whole sessions. The caller decides when to ask for the next slice
        (the iterator never sleeps); it ends at ``end_ms``, or never.
        """
        per_session = self.model.expected_events_per_session()
        empty = self._empty()
        schedule = Schedule()
        generated = emitted = 0
        index = 0
        while end_ms is None or start_ms + index * LIVE_SLICE_MS < end_ms:
            t0 = start_ms + index * LIVE_SLICE_MS
            t1 = t0 + LIVE_SLICE_MS if end_ms is None else min(t0 + LIVE_SLICE_MS, end_ms)
            due = emitted + schedule.count_before(t1)
            wanted = rate * (t1 - start_ms) / 1000 - due
            if end_ms is not None:
                wanted = min(wanted, (rate * (end_ms - start_ms) / 1000 - generated) / per_session)
            sessions = int(wanted + 0.5) if wanted > 0 else 0  # rounded: a run ends neither short nor over
            if sessions:
                new = self._sessions(_rng(self.seed, 2, index), sessions, t0, t1, None, finish_by=end_ms).sort()
                if end_ms is not None:
                    new, _ = new.split_at(end_ms)
                generated += len(new)
                schedule.add(new)
            ready = schedule.pop_before(t1, empty)
            emitted += len(ready)
            self.schedule = schedule
            self._live_due = t1
            index += 1
            yield ready

    def in_flight(self) -> int:
        """Sessions of live traffic with events still to come."""
        return self.schedule.sessions()

    def lag_ms(self) -> int:
        """How far the wall clock is past the end of the last live slice handed out, in ms."""
        return max(0, int(time.time() * 1000) - self._live_due) if self._live_due else 0

    def _empty(self) -> EventTables:
        """Event tables with no rows and the right columns."""
        rng = _rng(self.seed, 3)
        start, user, city = self.model.draw_starts(rng, 1, 0, 1, None)
        scratch = Journeys(self.population.size, 0.0)
        return self.model.simulate(rng, start, user, city, scratch).head(0)
