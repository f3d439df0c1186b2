"""The engine: exact counts, time order, the prefix cut, seeds, bounded batches."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl
import pytest

from src.config import load_settings
from src.generator import EventGenerator
from src.simulation.population import Sampler, pick
from src.simulation.shards import SLICE_EVENTS, Shard, World
from src.simulation.tables import EventTables
from src.simulation.timing import CELL_MS, MS_PER_HOUR, TimeModel, hour_of_week, zone_offsets
from src.simulation.users import MAX_SESSIONS_PER_DAY, Users, activity_weights, level_for

END = datetime(2026, 3, 2, tzinfo=UTC)


def _run(count: int, seed: int = 1, start: datetime | None = None, end: datetime = END, **overrides) -> EventTables:
    settings = load_settings({"seed": seed, "event_count": count, **overrides})
    generator = EventGenerator(settings, seed)
    batches = list(generator.batch(count, start or end - timedelta(days=7), end))
    tables = batches[0]
    for batch in batches[1:]:
        tables = tables.concat(batch)
    return tables


def _dangling(tables: EventTables) -> int:
    searches = set(zip(tables.search["id_hi"], tables.search["id_lo"], strict=True))
    clicks = set(zip(tables.click["id_hi"], tables.click["id_lo"], strict=True))
    bad = sum(
        (h, lo) not in searches for h, lo in zip(tables.click["search_hi"], tables.click["search_lo"], strict=True)
    )
    return bad + sum(
        (h, lo) not in clicks
        for h, lo in zip(tables.conversion["click_hi"], tables.conversion["click_lo"], strict=True)
    )


@pytest.mark.parametrize("count", [1, 2, 37, 1000, 12_345])
def test_exact_count_and_no_dangling_reference(count: int) -> None:
    """Any count is met exactly, and the cut never keeps an event whose search or click was cut."""
    tables = _run(count, seed=count)
    assert len(tables) == count
    assert _dangling(tables) == 0


def test_count_across_many_slices_and_a_short_window() -> None:
    """Counts that need several slices, or a window of one hour, are still exact and ordered."""
    tables = _run(2 * SLICE_EVENTS + 7, start=END - timedelta(hours=1))
    assert len(tables) == 2 * SLICE_EVENTS + 7
    for _, table in tables.items():
        stamps = table["ts"].to_numpy()
        assert (np.diff(stamps) >= 0).all()
        assert stamps.min() >= int((END - timedelta(hours=1)).timestamp() * 1000)
        assert stamps.max() < int(END.timestamp() * 1000)
    assert _dangling(tables) == 0


def test_batches_stay_bounded_whatever_the_count() -> None:
    """Memory does not grow with --count: batches hold about SLICE_EVENTS events each."""
    settings = load_settings({"seed": 3})
    sizes = [len(b) for b in EventGenerator(settings, 3).batch(2_000_000, END - timedelta(days=7), END)]
    assert sum(sizes) == 2_000_000
    assert max(sizes) < 2 * SLICE_EVENTS
    assert len(sizes) >= 2_000_000 // (2 * SLICE_EVENTS)


def test_same_seed_same_events_different_seed_different_events() -> None:
    """Generation is a function of the seed and the settings only."""
    a, b, c = _run(5000, seed=11), _run(5000, seed=11), _run(5000, seed=12)
    for (_, x), (_, y), (_, z) in zip(a.items(), b.items(), c.items(), strict=True):
        assert x.equals(y)
        assert not x.equals(z)


def test_users_of_the_history_do_not_depend_on_the_count() -> None:
    """The same seed gives the same users of the site's history (home city, habits, activity) for any run length."""
    start = int((END - timedelta(days=7)).timestamp() * 1000)
    histories = []
    for count in (10, 10_000_000):
        settings = load_settings({"seed": 5, "event_count": count})
        world = World(settings, 5, start, int(END.timestamp() * 1000))
        shard = Shard(world, 5, 3, settings.shards, start, None)
        history = {c: shard.users[c].copy() for c in ("city", "platform", "device", "weight")}
        histories.append({"user_id": shard.users.user_ids(np.arange(shard.users.size)), **history})
    assert np.array_equal(histories[0]["user_id"], np.arange(4, 10_001, 8))  # shard 3 of 8: users 4, 12, ...
    for column, values in histories[0].items():
        assert np.array_equal(values, histories[1][column]), column


def test_the_level_solves_for_the_sessions_wanted_with_rates_capped() -> None:
    """level_for's few passes give the level at which capped expected sessions are the ones wanted:
    checked against the sum itself, with no user capped, many capped, and all of them at the cap."""
    rng = np.random.default_rng(4)
    weight = activity_weights(rng.random(50_000))
    exposure = rng.random(50_000) * 0.02

    def expected(level: float) -> float:
        return float((np.minimum(level * weight, MAX_SESSIONS_PER_DAY) * exposure).sum())

    most = expected(np.inf)
    for share in (1e-4, 0.05, 0.5, 0.95):
        level = level_for(weight, exposure, share * most)
        # The closed form is exact up to rounding in sums of 50,000 terms.
        assert expected(level) == pytest.approx(share * most, rel=1e-9)
    assert (level * weight >= MAX_SESSIONS_PER_DAY).mean() > 0.5  # the last one caps most users
    assert level_for(weight, exposure, most * 1.1) == MAX_SESSIONS_PER_DAY / weight.min()
    assert level_for(weight, exposure, 0) == 0.0 and level_for(weight[:0], exposure[:0], 5) == 0.0


@pytest.mark.parametrize(("base", "shards"), [(10_000, 8), (10_003, 7), (5, 8), (0, 3)])
def test_user_numbers_follow_from_the_shards_numbering(base: int, shards: int) -> None:
    """Users' numbers are derived, not stored: the history's users 1..base split by (n - 1) % shards, then
    each shard's sign-ups after base; over all shards every number is used once, whoever has few users."""
    numbers = []
    for shard in range(shards):
        users = Users(shard, shards, base)
        history = len(range(shard + 1, base + 1, shards))
        signups = 3 + shard
        users.add(city=np.zeros(history + signups, dtype=np.int32))
        ids = users.user_ids(np.arange(users.size))
        assert np.array_equal(ids[:history], np.arange(shard + 1, base + 1, shards))
        assert np.all((ids[history:] - base - 1) % shards == shard) and np.all(ids[history:] > base)
        numbers.extend(ids.tolist())
    total = base + sum(3 + s for s in range(shards))
    assert len(set(numbers)) == len(numbers) and set(numbers) <= set(range(1, base + shards * (3 + shards) + 1))
    assert set(range(1, base + 1)) <= set(numbers) and len(numbers) == total


def test_sampler_agrees_with_a_binary_search() -> None:
    """The guide-table sampler returns exactly what a search of the CDF returns."""
    rng = np.random.default_rng(4)
    weights = rng.pareto(1.0, 5000) + 1e-9
    sampler = Sampler(weights)
    u = rng.random(200_000)
    assert np.array_equal(sampler(u), pick(sampler.cdf, u))


def _clock(start: int, days: int, zone: str) -> TimeModel:
    return TimeModel(start, start + days * 24 * MS_PER_HOUR, (zone,), np.array([0]), np.array([1.0]))


class TestTimeModel:
    def test_intensity_of_one_zone_is_the_weekly_rhythm(self) -> None:
        """With all traffic in UTC, the intensity of each hour is that hour's rhythm."""
        start = int(datetime(2026, 1, 5, tzinfo=UTC).timestamp() * 1000)  # a Monday
        model = _clock(start, 7, "UTC")
        hourly = model.intensity.reshape(168, MS_PER_HOUR // CELL_MS).mean(axis=1)
        cells = start + MS_PER_HOUR * np.arange(168)
        assert hour_of_week(cells)[0] == 0
        assert np.allclose(model.mass(start, start + 7 * 24 * MS_PER_HOUR) / (7 * 24 * MS_PER_HOUR), 1.0)
        assert hourly.argmax() in range(18, 22)  # Monday evening
        assert hourly.argmin() % 24 in range(0, 7)  # a night

    def test_slices_cut_the_window_into_equal_traffic(self) -> None:
        """Slice bounds run from the start to the end of the window, in order, each slice with the same
        expected traffic: short at the busy hours, long at night (equal times would differ by half again)."""
        start = int(datetime(2026, 1, 5, tzinfo=UTC).timestamp() * 1000) + 7 * 60_000  # not on the grid
        model = TimeModel(
            start, start + 7 * 24 * MS_PER_HOUR, ("UTC", "Asia/Kolkata"), np.array([0, 1]), np.array([0.7, 0.3])
        )
        bounds = model.equal_mass_bounds(start, start + 7 * 24 * MS_PER_HOUR, 100)
        assert bounds[0] == start and bounds[-1] == start + 7 * 24 * MS_PER_HOUR and (np.diff(bounds) > 0).all()
        masses = model.mass(bounds[:-1], bounds[1:])
        # Bounds are whole milliseconds: a slice's mass is off by at most a millisecond's worth.
        assert masses.max() / masses.min() < 1 + 1e-6
        lengths = np.diff(bounds)
        assert lengths.max() / lengths.min() > 1.5
        even = np.linspace(start, start + 7 * 24 * MS_PER_HOUR, 101).astype(np.int64)
        assert model.mass(even[:-1], even[1:]).max() / masses.mean() > 1.3

    def test_offsets_follow_daylight_saving(self) -> None:
        """New York is UTC-5 in January and UTC-4 in July."""
        start = int(datetime(2026, 1, 1, tzinfo=UTC).timestamp() * 1000)
        july = int(datetime(2026, 7, 1, 12, tzinfo=UTC).timestamp() * 1000)
        offsets = zone_offsets(("America/New_York",), np.array([0, 0]), np.array([start + 12 * MS_PER_HOUR, july]))
        assert list(offsets) == [-5 * MS_PER_HOUR, -4 * MS_PER_HOUR]

    def test_inverse_of_the_cumulative_intensity_is_exact(self) -> None:
        """Arrival times drawn through a slice's cumulative intensity land where that intensity says."""
        start = int(datetime(2026, 1, 5, tzinfo=UTC).timestamp() * 1000)
        model = TimeModel(
            start, start + 3 * 24 * MS_PER_HOUR, ("UTC", "Asia/Kolkata"), np.array([0, 1]), np.array([0.5, 0.5])
        )
        clock = model.slice_clock(start + 5 * 60_000, start + 2 * 24 * MS_PER_HOUR)
        rng = np.random.default_rng(1)
        group = rng.integers(0, 2, 10_000)
        t = clock.t0 + (rng.random(10_000) * (clock.t1 - clock.t0)).astype(np.int64)
        back = clock.inverse(clock.at(t, group), group)
        assert np.abs(back - t).max() <= 1
        assert (clock.inverse(clock.at(np.full(2, clock.t1), np.array([0, 1])) + 1, np.array([0, 1])) > clock.t1).all()


def test_trip_dates_never_pass_the_last_date_allowed(tmp_path) -> None:
    """A window at the end of the allowed range with ten times the phone lead: every trip ends by 2999-01-01."""
    from .conftest import generate

    sample = generate(tmp_path, 4000, 2, window_end="2998-01-01T00:00:00Z", window_days=1, mobile_lead_factor=10)
    dates = sample.search.select(
        pl.col("filters").struct.field("start_date").max().alias("start"),
        pl.col("filters").struct.field("end_date").max().alias("end"),
    ).row(0)
    assert max(d for d in dates if d) <= "2999-01-01", dates
