"""Journeys across sessions: logged-in users come back to the trip they are planning, and book.

A logged-in user has at most one open trip: a destination, a product, dates and a party.
A later session of theirs continues it (same destination and dates, so the lead time
shrinks as the trip draws near) with probability RETURN_TRIP_RATE while the trip is
still ahead and was opened less than JOURNEY_DAYS ago; otherwise it opens a new trip.
Anonymous sessions are one-off. Booking ends a trip.

Who books: each click's chance of a booking is weighted by when in the journey it
comes (the first search day and a return after several visits book most; Expedia and
Sojern: many visits before a booking, the first search day the likeliest single day),
by device (desktop takes most bookings, Criteo 2018), and by the local hour (night
sessions convert badly, Thomas Cook 2017); the weights are then scaled over the batch
so that conversions / clicks still reads CONVERSION_RATE exactly.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from .results import chance_made, session_runs

JOURNEY_DAYS = 45  # Expedia/Millward Brown 2013: visits spread over the 45 days before a booking
NIGHT_HOURS = range(0, 6)  # local hours whose sessions convert at NIGHT_CONVERSION_FACTOR


@dataclass
class Trip:
    """What a session is about, one entry per session."""

    destination: np.ndarray
    product: np.ndarray
    start_day: np.ndarray  # days since the epoch of departure, check-in or pick-up
    nights: np.ndarray
    travelers: np.ndarray
    template: np.ndarray  # the query template the user starts from

    def take(self, rows: np.ndarray) -> Trip:
        """The trips of some sessions."""
        return Trip(*(getattr(self, f.name)[rows] for f in fields(self)))


@dataclass
class Visits:
    """Where each session stands in its user's journey."""

    returning: np.ndarray  # the user had a session before in this run
    visit: np.ndarray  # 1 for the session that opened the trip, then 2, 3, ...
    first_day: np.ndarray  # the session is on the day the trip was opened
    continued_later: np.ndarray  # a later session of this batch goes on with this session's trip
    last_of_user: np.ndarray  # the user's last session in this batch


JOURNEY_COLUMNS: dict[str, type] = {
    "seen": np.bool_,  # the user had a session before in this run
    "open": np.bool_,  # ... and has an open trip
    "visits": np.int32,
    "opened_day": np.int32,
    # Narrow: a trip read back is copied into the session's own wider arrays.
    "destination": np.int32,
    "product": np.int8,
    "start_day": np.int32,
    "nights": np.int32,
    "travelers": np.int32,
    "template": np.int32,
}


class Journeys:
    """The open trips of the logged-in users of a batch of sessions, carried from one batch to the next.

    The shard keeps every user's row of JOURNEY_COLUMNS with its users; a batch works on the
    rows of its own users, numbered from 0 in the order of their numbers in the shard.
    """

    def __init__(self, return_rate: float, state: dict[str, np.ndarray] | None = None) -> None:
        """The trips in ``state`` (JOURNEY_COLUMNS, a row per user), changed in place; no users without it."""
        self.return_rate = return_rate
        state = state if state is not None else {name: np.zeros(0, dtype) for name, dtype in JOURNEY_COLUMNS.items()}
        self.state = state
        self.seen, self.open, self.visits, self.opened_day = (
            state[n] for n in ("seen", "open", "visits", "opened_day")
        )
        self.trip = Trip(*(state[f.name] for f in fields(Trip)))

    def assign(self, rng: np.random.Generator, user: np.ndarray, day: np.ndarray, fresh: Trip) -> tuple[Trip, Visits]:
        """Trips of sessions (sorted by start) of ``user`` (-1 anonymous) on ``day``.

        ``fresh`` holds a newly drawn trip for every session; a session continuing its
        user's open trip takes that trip instead. A user's sessions are handled in order,
        so a second session in the same batch can continue the trip the first one opened.
        """
        n = len(user)
        trip = fresh.take(np.arange(n))
        visits = Visits(
            np.zeros(n, dtype=bool),
            np.ones(n, dtype=np.int64),
            np.ones(n, dtype=bool),
            np.zeros(n, dtype=bool),
            np.ones(n, dtype=bool),
        )
        logged = np.flatnonzero(user >= 0)
        if not len(logged):
            return trip, visits
        assert int(user.max()) < len(self.seen), "a user with no row"
        # Rank of each session among its user's sessions in this batch (0 for the first).
        order = logged[np.argsort(user[logged], kind="stable")]
        users = user[order]
        starts = np.flatnonzero(np.r_[True, users[1:] != users[:-1]])
        rank = np.arange(len(order)) - np.repeat(starts, np.diff(np.r_[starts, len(order)]))
        # The user's latest session so far in this batch, by the user's place among the batch's users.
        previous = np.full(len(starts), -1, dtype=np.int64)
        place = np.empty(n, dtype=np.int64)
        place[order] = np.repeat(np.arange(len(starts)), np.diff(np.r_[starts, len(order)]))
        keep = rng.random(n) < self.return_rate
        state = self.trip
        for r in range(int(rank.max()) + 1):
            rows = order[rank == r]
            u = user[rows]
            visits.returning[rows] = self.seen[u]
            self.seen[u] = True
            going_on = self.open[u] & (state.start_day[u] > day[rows])
            going_on &= (day[rows] - self.opened_day[u] < JOURNEY_DAYS) & keep[rows]
            cont, new = rows[going_on], rows[~going_on]
            uc, un = user[cont], user[new]
            earlier = previous[place[cont]]
            visits.continued_later[earlier[earlier >= 0]] = True
            before = previous[place[rows]]
            visits.last_of_user[before[before >= 0]] = False
            previous[place[rows]] = rows
            for f in fields(Trip):
                getattr(trip, f.name)[cont] = getattr(state, f.name)[uc]
                getattr(state, f.name)[un] = getattr(fresh, f.name)[new]
            self.visits[uc] += 1
            self.visits[un] = 1
            self.opened_day[un] = day[new]
            self.open[un] = True
            visits.visit[rows] = self.visits[u]
            visits.first_day[rows] = self.opened_day[u] == day[rows]
        return trip, visits

    def close(self, user: np.ndarray) -> None:
        """These users booked their open trip (in their last session of the batch): it is done."""
        self.open[user[user >= 0]] = False


def booking_weights(
    visit: np.ndarray,
    first_day: np.ndarray,
    device: np.ndarray,
    local_hour: np.ndarray,
    journey_weights: dict[str, float],
    device_weights: np.ndarray,
    night_factor: float,
) -> np.ndarray:
    """The relative chance that each click is booked, by journey stage, device and local hour.

    ``journey_weights`` has ``first`` (the day a trip was opened), ``middle`` (visits 2 and
    3 on later days) and ``later`` (the fourth visit on); anonymous sessions count as first.
    """
    weight = np.where(
        first_day, journey_weights["first"], np.where(visit >= 4, journey_weights["later"], journey_weights["middle"])
    )
    return np.asarray(weight * device_weights[device] * np.where(np.isin(local_hour, NIGHT_HOURS), night_factor, 1.0))


def booking_chance(rate: float, session: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """Each click's chance of a booking, from relative ``weight``s, so bookings / clicks reads ``rate``.

    A session books once at most and ends with it, so its clicks after a booking are never
    made: click i of a session is made with the chance that none before it booked, and the
    weights are scaled until expected bookings over expected clicks made is ``rate``.
    ``session`` numbers each click's session, clicks grouped by session in order.
    """
    if not len(weight) or weight.sum() <= 0 or rate <= 0:
        return np.full(len(weight), min(rate, 1.0))
    positive = weight[weight > 0]
    runs = session_runs(session)
    # Clicks with a high weight may be certain to book: the scale can go past 1 / (largest weight),
    # up to where every click is, so it is searched for on a log scale, first near where the
    # rate would be met if no booking ended a session, then (rarely needed) over the whole range.
    ceiling = np.log(1.0 / float(positive.min()))
    guess = np.log(rate / float(weight.mean()))
    low, high = guess - 1.5, min(guess + 1.5, ceiling)

    def ratio(log_scale: float) -> float:
        p = np.minimum(weight * np.exp(log_scale), 1.0 - 1e-12)
        made = chance_made(np.log1p(-p), runs)
        return float((made * p).sum() / made.sum())

    if ratio(low) > rate:
        low = np.log(1e-12 / float(positive.max()))
    if ratio(high) < rate:
        high = ceiling
        if ratio(high) <= rate:
            return np.minimum(weight * np.exp(high), 1.0)
    for _ in range(30):
        middle = (low + high) / 2
        if ratio(middle) < rate:
            low = middle
        else:
            high = middle
    return np.minimum(weight * np.exp((low + high) / 2), 1.0)
