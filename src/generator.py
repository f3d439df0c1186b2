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
from collections.abc import Iterator
from datetime import datetime

import numpy as np

from .config import Settings
from .encoding import Encoder
from .population import Population, build_population
from .sessions import SessionModel
from .tables import EventTables
from .timing import TimeModel, to_ms

BATCH_EVENTS = 100_000  # events per slice: large enough to vectorise, small enough to bound memory


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
        self.encoder = Encoder(self.model.catalogue, self.population.cities)
        self._seen = np.zeros(self.population.size, dtype=bool)

    def time_model(self, start: datetime, end: datetime) -> TimeModel:
        """The traffic intensity over [start, end) for this run's population."""
        pop = self.population
        return TimeModel(to_ms(start), to_ms(end), pop.cities.timezone_names, pop.zone_weights())

    def _sessions(self, rng: np.random.Generator, count: int, t0: int, t1: int, clock: TimeModel) -> EventTables:
        start, user, city = self.model.draw_starts(rng, count, t0, t1, clock)
        return self.model.simulate(rng, start, user, city, self._seen)

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
                new, _ = self._sessions(_rng(self.seed, 1, i, rounds), sessions, t0, t1, clock).sort().split_at(end_ms)
                generated += len(new)
                pending = new if pending is None else pending.concat(new)
                rounds += 1
                # The last slice tops up until the window holds enough events.
                sessions = math.ceil((count - generated) / per_session) + 1 if last and generated < count else 0
            if pending is None:
                continue
            pending = pending.sort()
            ready, pending = (pending, None) if last else pending.split_at(t1)
            ready, _ = ready.first(count - emitted)
            emitted += len(ready)
            if len(ready):
                yield ready
            if emitted >= count:
                return
