"""Faults injected on request, each one marked on the row it changed so the truth can be written down.

A run with fault rates set passes every slice of events through a :class:`Delivery`, which
draws, row by row and from the run's seed:

- the faults of delivery, which change when or how often an event arrives: a retry
  (``duplicate``, the same event_id later), a client's re-send (``resend``, a new event_id),
  a ``late`` event (delivered minutes to days after its timestamp) and a click delivered just
  before its search (``out_of_order``);
- a device clock that is off (``clock_skew``): every event of some users, or anonymous
  sessions, carries a timestamp off by that device's offset, but arrives on time;
- ``bot`` sessions: many searches at machine pace, no clicks or bookings, on top of the people's;
- the faults of content, which the encoder applies to the JSON text: ``malformed`` lines,
  ``missing`` fields, and ``drift`` (schema version 2, sent by a share of users' clients from
  a release on); here only the row and the way are drawn.

From here on ``ts`` is the time an event is delivered, which orders the output (files,
streams, date partitions), and ``event_ts`` the timestamp it carries. Every row has a fault
code (0: none), a number that says how (a delay, an offset, a way), and for a copy the id of
the event it copies. Kinds are exclusive: a row has at most one fault, and copies are clean
copies. A run without faults never comes here, so its bytes are the same as before faults
existed.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from ..config import FAULT_KINDS
from .tables import EventTables, Schedule

FAULT_CODES = {kind: code for code, kind in enumerate(FAULT_KINDS, start=1)}  # 0: no fault
FAULT_COLUMNS = {
    "event_ts": pl.Int64,  # the timestamp the event carries (``ts`` is when it is delivered)
    "fault": pl.Int8,  # FAULT_CODES, or 0
    "fault_value": pl.Int64,  # a delay or offset in ms, or the index of a way (MALFORMED_WAYS, MISSING_FIELDS)
    "orig_hi": pl.UInt64,  # the event a duplicate or resend copies (0 for others)
    "orig_lo": pl.UInt64,
}
MALFORMED_WAYS = ("cut", "invalid_json", "wrong_type", "invalid_utf8")
# Required fields a client release may leave out or send as null, per event type: (field, how).
MISSING_FIELDS: dict[str, tuple[tuple[str, str], ...]] = {
    "search": (("query", "dropped"), ("results_count", "null"), ("device_type", "dropped"), ("geo", "null")),
    "click": (("search_event_id", "dropped"), ("result_price", "null"), ("result_id", "null")),
    "conversion": (("click_event_id", "dropped"), ("booking_value", "null"), ("currency", "dropped")),
}
# Delays, lognormal: (median ms, sigma, least ms, most ms).
RETRY_DELAY = (3_000, 1.5, 200, 3_600_000)  # a delivery retried after a lost acknowledgement
RESEND_DELAY = (2_000, 1.0, 500, 600_000)  # a client that timed out and sent the event again
LATE_DELAY = (1_800_000, 1.8, 60_000, 3 * 86_400_000)  # an offline phone, a stuck queue: minutes to days
EARLY_MS = 2_000  # an out-of-order click arrives up to this long before its search
BOT_SEARCHES = (10, 40)  # a bot session's searches: at least 10, and a geometric number more with this mean
BOT_GAP_MS = (300, 1_500)  # between a bot's searches: at least 0.3 s, and an exponential time more with this mean
NEVER = 2**62  # a time after every delivery


def written_time(table: pl.DataFrame) -> pl.Series:
    """The timestamp each row carries in the output (``ts`` unless faults moved its delivery or skewed it)."""
    return table["event_ts"] if "event_ts" in table.columns else table["ts"]


def with_fault_columns(tables: EventTables) -> EventTables:
    """``tables`` as delivered without faults: each row on time, as it was made."""
    return EventTables(*(_add_columns(table) for _, table in tables.items()))


def _add_columns(table: pl.DataFrame) -> pl.DataFrame:
    zero = {name: pl.lit(0, dtype) for name, dtype in FAULT_COLUMNS.items() if name != "event_ts"}
    return table.with_columns(pl.col("ts").alias("event_ts"), **zero)


def _delays(rng: np.random.Generator, n: int, shape: tuple[int, float, int, int]) -> np.ndarray:
    median, sigma, least, most = shape
    return np.clip(rng.lognormal(np.log(median), sigma, n), least, most).astype(np.int64)


def _mix(words: np.ndarray) -> np.ndarray:
    """SplitMix64's finaliser: 64 well-mixed bits from each word."""
    z = words + np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def _in_order(rows: pl.DataFrame, kept: np.ndarray, due: pl.DataFrame) -> pl.DataFrame:
    """The ``kept`` rows of ``rows`` (in order of delivery already) and the ``due`` ones, in order: one gather."""
    if not due.height and kept.all():
        return rows
    both = pl.concat([rows, due], rechunk=False)
    index = np.concatenate([np.flatnonzero(kept), np.arange(rows.height, both.height)])
    return both[index[np.argsort(both["ts"].to_numpy()[index], kind="stable")]]


def _device(user: np.ndarray, session: np.ndarray) -> np.ndarray:
    """A key per device: the user, or for an anonymous visitor the session."""
    return np.where(user >= 0, user.astype(np.uint64), session | np.uint64(1 << 63))


def _unit(words: np.ndarray) -> np.ndarray:
    return (words >> np.uint64(11)).astype(np.float64) / 2.0**53


class Delivery:
    """Turns slices of clean events (sorted by time) into the slices delivered, faults and all.

    Events delivered later than their slice (late ones, copies) wait here until their time
    comes; :meth:`step` with no end delivers all that wait (the end of a batch run).
    """

    def __init__(
        self, rates: dict[str, float], seed: int, empty: EventTables, drift_at_ms: int, text: bool = True
    ) -> None:
        """Rates per kind (``Settings.fault_rates``), the run's seed, tables with no rows, and the drift's release.

        Without ``text`` (no output of JSON), rows drawn for malformed or drift stay whole: the
        draws, and so every other fault, are those of a run that writes JSON too.
        """
        self.rates = rates
        self.text = text
        self.drift_at_ms = drift_at_ms
        self.empty = with_fault_columns(empty)
        self.waiting = Schedule()
        self.floor = -NEVER  # nothing may be delivered before what was delivered already
        # Which devices have a wrong clock or the new release depends on the user alone, in every shard and slice.
        self.salt, self.drift_salt = np.random.SeedSequence(seed, spawn_key=(31,)).generate_state(2, np.uint64)

    def step(self, tables: EventTables, rng: np.random.Generator, until_ms: int | None) -> EventTables:
        """The events delivered before ``until_ms`` (all that wait when None), given the slice ``tables``."""
        marked, later = [], []
        for event_type, table in tables.items():
            rows, kept, waiting = self._mark(event_type, table, rng, tables.search)
            marked.append((rows, kept))
            later.append(waiting)
        if self.rates["bot"] > 0:
            later[0] = pl.concat([later[0], self._bots(marked[0][0], rng)])
        self.waiting.add(EventTables(*later).sort())
        due = self.waiting.pop_before(NEVER if until_ms is None else until_ms, self.empty)
        if until_ms is not None:
            self.floor = until_ms
        return EventTables(
            *(_in_order(rows, kept, due_rows) for (rows, kept), (_, due_rows) in zip(marked, due.items(), strict=True))
        )

    def skew(self, user: np.ndarray, session: np.ndarray) -> np.ndarray:
        """The clock offset in ms of each event's device: 0 for most, drawn once per user (or anonymous session)."""
        rate = self.rates["clock_skew"]
        if rate <= 0 or not len(user):
            return np.zeros(len(user), dtype=np.int64)
        first = _mix(_device(user, session) ^ self.salt)
        skewed = np.flatnonzero(_unit(first) < rate)
        second = _mix(first[skewed])
        third = _mix(second)
        sign = np.where(second & np.uint64(1), 1, -1)
        # A third are set to the wrong time zone (whole hours); the rest drift by seconds to a quarter of an hour.
        hours = 3_600_000 * (1 + (_unit(second) * 12).astype(np.int64))
        drift = np.exp(np.log(2_000) + _unit(third) * np.log(900_000 / 2_000)).astype(np.int64)
        offset = np.zeros(len(user), dtype=np.int64)
        offset[skewed] = np.where(_unit(third) < 1 / 3, hours, drift) * sign
        return offset

    def drifted(self, user: np.ndarray, session: np.ndarray, ts: np.ndarray) -> np.ndarray:
        """Whether each event is sent by a client on the drifted release: a share of users, from its release on."""
        rate = self.rates["drift"]
        if rate <= 0 or not len(user):
            return np.zeros(len(user), dtype=bool)
        return (_unit(_mix(_device(user, session) ^ self.drift_salt)) < rate) & (ts >= self.drift_at_ms)

    def _mark(
        self, event_type: str, table: pl.DataFrame, rng: np.random.Generator, searches: pl.DataFrame
    ) -> tuple[pl.DataFrame, np.ndarray, pl.DataFrame]:
        """The rows of one type with their faults, which of them are delivered in place, and the others and copies."""
        n = table.height
        ts = table["ts"].to_numpy()
        offset = self.skew(table["user"].to_numpy(), table["session"].to_numpy())
        fault = np.where(offset != 0, FAULT_CODES["clock_skew"], 0).astype(np.int8)
        value = offset.copy()
        kinds = ["duplicate", "resend", "late", "malformed", "missing"]
        if event_type == "click":
            kinds.append("out_of_order")
        edges = np.cumsum([self.rates[k] for k in kinds])
        pick = np.searchsorted(edges, rng.random(n), side="right")  # len(kinds): none
        # A user's clock or release takes all their events: those have no other fault.
        drifted = self.drifted(table["user"].to_numpy(), table["session"].to_numpy(), ts) & (offset == 0)
        pick[(offset != 0) | drifted] = len(kinds)
        if self.text:
            fault[drifted] = FAULT_CODES["drift"]
        chosen = {kind: np.flatnonzero(pick == k) for k, kind in enumerate(kinds)}
        sent = ts.copy()

        late = chosen["late"]
        value[late] = _delays(rng, len(late), LATE_DELAY)
        sent[late] += value[late]
        fault[late] = FAULT_CODES["late"]
        for kind, count in (("malformed", len(MALFORMED_WAYS)), ("missing", len(MISSING_FIELDS[event_type]))):
            rows = chosen[kind]
            way = rng.integers(0, count, len(rows))
            if self.text or kind == "missing":  # Parquet has a missing field too: a null
                fault[rows] = FAULT_CODES[kind]
                value[rows] = way
        if event_type == "click":
            rows = chosen["out_of_order"]
            search_ts = self._search_times(table, rows, searches)
            # Never before what was delivered already: the click must land in this slice, before its search.
            early = np.minimum(rng.integers(1, EARLY_MS + 1, len(rows)), search_ts - self.floor)
            can = (search_ts >= 0) & (early > 0)
            rows, early = rows[can], early[can]
            sent[rows] = search_ts[can] - early
            value[rows] = early
            fault[rows] = FAULT_CODES["out_of_order"]

        marked = table.with_columns(
            pl.Series("ts", sent),
            pl.Series("event_ts", ts + offset),
            pl.Series("fault", fault),
            pl.Series("fault_value", value),
            pl.lit(0, pl.UInt64).alias("orig_hi"),
            pl.lit(0, pl.UInt64).alias("orig_lo"),
        )
        retries, resends = chosen["duplicate"], chosen["resend"]
        delay = np.concatenate([_delays(rng, len(retries), RETRY_DELAY), _delays(rng, len(resends), RESEND_DELAY)])
        moved = np.flatnonzero(sent != ts)
        return marked, sent == ts, self._later(marked, moved, retries, resends, delay, rng)

    def _bots(self, searches: pl.DataFrame, rng: np.random.Generator) -> pl.DataFrame:
        """Bot sessions over this slice's time, making ``rates["bot"]`` of all searches with the people's.

        A bot is anonymous, on the web on a desktop, from one city, and searches BOT_SEARCHES
        times at machine pace (BOT_GAP_MS), walking destinations taken from people's searches;
        it never clicks or books. Each bot search is a fault row; its number is the session's searches.
        """
        if not searches.height:
            return searches.head(0)
        rate = self.rates["bot"]
        wanted = rng.poisson(searches.height * rate / (1 - rate))
        sizes = BOT_SEARCHES[0] - 1 + rng.geometric(1 / BOT_SEARCHES[1], 2 * wanted // BOT_SEARCHES[0] + 1)
        sizes = sizes[np.cumsum(sizes) - sizes < wanted]  # sessions until the searches wanted are made
        total = int(sizes.sum())
        if not total:
            return searches.head(0)
        ts = searches["ts"].to_numpy()
        session = np.repeat(np.arange(len(sizes)), sizes)
        first = np.cumsum(sizes) - sizes
        starts = rng.integers(int(ts.min()), int(ts.max()) + 1, len(sizes))
        gaps = BOT_GAP_MS[0] + rng.exponential(BOT_GAP_MS[1], total).astype(np.int64)
        gaps[first] = 0
        at = starts[session] + np.cumsum(gaps) - np.repeat(np.cumsum(gaps)[first], sizes)
        model = searches[rng.integers(0, searches.height, total)]  # what a person looked for, valid codes and all
        home = model["city"].to_numpy()[first][session]
        return model.with_columns(
            pl.Series("ts", at.astype(np.int64)),
            pl.Series("id_hi", rng.integers(0, 2**64, total, dtype=np.uint64)),
            pl.Series("id_lo", rng.integers(0, 2**64, total, dtype=np.uint64)),
            pl.lit(-1, pl.Int64).alias("user"),
            pl.Series("session", rng.integers(0, 2**64, len(sizes), dtype=np.uint64)[session]),
            pl.lit(0, model["platform"].dtype).alias("platform"),  # web
            pl.lit(0, model["device"].dtype).alias("device"),  # desktop
            pl.Series("city", home).cast(model["city"].dtype),
            pl.Series("event_ts", at.astype(np.int64)),
            pl.lit(FAULT_CODES["bot"], pl.Int8).alias("fault"),
            pl.Series("fault_value", sizes[session].astype(np.int64)),
            pl.lit(0, pl.UInt64).alias("orig_hi"),
            pl.lit(0, pl.UInt64).alias("orig_lo"),
        )

    @staticmethod
    def _later(
        marked: pl.DataFrame,
        moved: np.ndarray,
        retries: np.ndarray,
        resends: np.ndarray,
        delay: np.ndarray,
        rng: np.random.Generator,
    ) -> pl.DataFrame:
        """The rows ``moved``, then copies of ``retries`` (same id) and ``resends`` (a new id): one gather.

        ``moved`` rows are delivered late or early as marked; each copy ``delay`` ms after its original.
        """
        rows = marked[np.concatenate([moved, retries, resends])]
        first_copy, first_resend = len(moved), len(moved) + len(retries)
        hi, lo = rows["id_hi"].to_numpy(), rows["id_lo"].to_numpy()
        new_hi, new_lo = hi.copy(), lo.copy()
        new_hi[first_resend:] = rng.integers(0, 2**64, len(resends), dtype=np.uint64)
        new_lo[first_resend:] = rng.integers(0, 2**64, len(resends), dtype=np.uint64)
        ts = rows["ts"].to_numpy().copy()
        ts[first_copy:] += delay
        fault = rows["fault"].to_numpy().copy()
        fault[first_copy:first_resend] = FAULT_CODES["duplicate"]
        fault[first_resend:] = FAULT_CODES["resend"]
        value = rows["fault_value"].to_numpy().copy()
        value[first_copy:] = delay
        orig_hi, orig_lo = np.zeros_like(hi), np.zeros_like(lo)
        orig_hi[first_copy:], orig_lo[first_copy:] = hi[first_copy:], lo[first_copy:]
        return rows.with_columns(
            pl.Series("ts", ts),
            pl.Series("id_hi", new_hi),
            pl.Series("id_lo", new_lo),
            pl.Series("fault", fault),
            pl.Series("fault_value", value),
            pl.Series("orig_hi", orig_hi),
            pl.Series("orig_lo", orig_lo),
        )

    def _search_times(self, clicks: pl.DataFrame, rows: np.ndarray, searches: pl.DataFrame) -> np.ndarray:
        """The time of the search each of the clicks ``rows`` belongs to, from this slice's searches (-1: not here)."""
        wanted_hi, wanted_lo = clicks["search_hi"].to_numpy()[rows], clicks["search_lo"].to_numpy()[rows]
        search_hi = searches["id_hi"].to_numpy()
        # The few searches wanted found by the high half of their id, then matched in full.
        few = np.flatnonzero(np.isin(search_hi, wanted_hi))
        times = dict(zip(zip(search_hi[few].tolist(), searches["id_lo"].to_numpy()[few].tolist(), strict=True),
                         searches["ts"].to_numpy()[few].tolist(), strict=True))  # fmt: skip
        found = [times.get(key, -1) for key in zip(wanted_hi.tolist(), wanted_lo.tolist(), strict=True)]
        return np.array(found, dtype=np.int64)
