"""items.jsonl, the inventory's answer key: every item of the seed, joined to the clicks as a warehouse would."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from src import generate
from src.output.items import ITEMS_FILE, SCHEMA
from src.reference import home_cities

from .conftest import run_cli

ARGS = ("--seed", "5", "--end", "2026-03-02", "-q")
ORIGIN = 1_000_000  # a flight or package result_id's n is origin number * ORIGIN + item number
TYPES = ("flight", "hotel", "car", "package")
# The fields only some types have, and those types: null for every other.
ONLY = {
    "result_id": {"hotel", "car"},
    "base_price_usd": {"hotel", "car"},
    "fare_factor": {"flight"},
    "discount": {"package"},
    "stars": {"hotel"},
    "review_score": {"hotel"},
    "car_class": {"car"},
    "seats": {"car"},
    "stops": {"flight"},
    "hotel_item_number": {"package"},
    "flight_item_number": {"package"},
}


def _items(directory: Path) -> pl.DataFrame:
    # The first lines are flights, whose hotel and car fields are null: a schema read from them would be wrong.
    return pl.read_ndjson(directory / ITEMS_FILE, infer_schema_length=None)


def _manifest(directory: Path) -> dict:
    return json.loads((directory / "manifest.json").read_text())


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """20,000 events with seed 5 (the ``small`` sample's run), written by the command with its answer keys."""
    directory = tmp_path_factory.mktemp("items")
    result = run_cli("--count", "20000", *ARGS, "--output-dir", str(directory))
    assert result.returncode == 0, result.stderr
    return directory


@pytest.fixture(scope="module")
def clicks(run: Path) -> pl.DataFrame:
    """The run's clicks with their result_id decoded and their search's filters and home city."""
    searches = pl.read_ndjson(run / "search_events.jsonl").select(
        pl.col("event_id").alias("search_event_id"),
        pl.col("filters").struct.field("min_stars"),
        pl.col("filters").struct.field("max_price"),
        pl.col("filters").struct.field("travelers"),
        pl.col("geo").struct.field("country"),
        pl.col("geo").struct.field("city"),
    )
    n = pl.col("result_id").str.split("_").list.get(1).cast(pl.Int64)
    return (
        pl.read_ndjson(run / "click_events.jsonl")
        .with_columns((n % ORIGIN).alias("item_number"), (n // ORIGIN).alias("origin"))
        .join(searches, on="search_event_id", how="left")
    )


class TestTheFile:
    def test_fields_in_order_with_nulls_where_they_do_not_apply(self, run: Path) -> None:
        """Every line has the 19 fields in the documented order; each type's own fields are set, the others null."""
        first = json.loads((run / ITEMS_FILE).open().readline())
        assert list(first) == list(SCHEMA)
        items = _items(run)
        assert items.schema == pl.Schema(SCHEMA)
        assert set(items["type"]) == set(TYPES) and set(items["seed"]) == {5}
        for field, types in ONLY.items():
            for kind in TYPES:
                nulls = items.filter(pl.col("type") == kind)[field].null_count()
                assert nulls == (0 if kind in types else items.filter(pl.col("type") == kind).height), (field, kind)
        shared = ["item_number", "destination", "provider", "rank", "quality", "popularity"]
        assert items.select(shared).null_count().sum_horizontal().item() == 0

    def test_ids_are_unique_and_ranks_a_permutation_per_destination(self, run: Path) -> None:
        """(type, item_number) is a key; each destination's items of a type are ranked 1..k, each rank once."""
        items = _items(run)
        assert items.select("type", "item_number").is_unique().all()
        ranks = items.group_by("type", "destination").agg(
            pl.col("rank").min().alias("low"), pl.col("rank").max().alias("high"), pl.len(), pl.col("rank").n_unique()
        )
        assert (ranks["low"] == 1).all() and (ranks["high"] == ranks["len"]).all()
        assert (ranks["rank"] == ranks["len"]).all()
        hotels = items.filter(pl.col("type").is_in(["hotel", "car"]))
        prefix = hotels["type"].replace({"hotel": "htl", "car": "car"})
        assert (hotels["result_id"] == prefix + "_" + hotels["item_number"].cast(pl.String)).all()

    def test_quality_is_standardised_within_each_destination(self, run: Path) -> None:
        """Quality is what the model sees: mean 0 and spread 1 over a destination's items of a type (4 decimals)."""
        spread = (
            _items(run)
            .group_by("type", "destination")
            .agg(pl.col("quality").mean().alias("mean"), pl.col("quality").std(ddof=0).alias("std"))
        )
        assert spread["mean"].abs().max() < 1e-3
        assert (spread["std"] - 1).abs().max() < 1e-3

    def test_a_package_is_a_flight_and_a_good_hotel_of_its_destination(self, run: Path) -> None:
        """hotel_item_number and flight_item_number name items of the package's destination; hotels of 3 stars or more.

        (A destination with no hotel of 3 stars or more takes any of its hotels: none has, with seed 5.)
        """
        items = _items(run)
        packages = items.filter(pl.col("type") == "package")
        for kind, column in (("hotel", "hotel_item_number"), ("flight", "flight_item_number")):
            parts = items.filter(pl.col("type") == kind).select(
                pl.col("item_number").alias(column), pl.col("destination").alias("part_destination"), "stars"
            )
            joined = packages.select("destination", column).join(parts, on=column, how="left")
            assert joined["part_destination"].null_count() == 0
            assert (joined["part_destination"] == joined["destination"]).all()
            if kind == "hotel":
                assert joined["stars"].min() >= 3
        assert packages["discount"].is_between(0.80, 0.95).all()

    def test_the_manifest_counts_the_lines(self, run: Path) -> None:
        """The run's entry says what it added: items: {file, lines}, the lines in items.jsonl."""
        manifest = _manifest(run)
        lines = len((run / ITEMS_FILE).read_bytes().splitlines())
        assert manifest["items"] == {"file": ITEMS_FILE, "lines": lines} == manifest["runs"][-1]["items"]
        assert lines > 10_000


class TestClicksJoinTheItems:
    def test_every_hotel_and_car_click_is_an_item_of_its_type_destination_and_provider(
        self, run: Path, clicks: pl.DataFrame
    ) -> None:
        """Joined by result_id, every hotel and car click finds its item: the click's type, destination, provider."""
        local = clicks.filter(pl.col("result_type").is_in(["hotel", "car"]))
        assert local.height > 1000
        joined = local.join(_items(run), on="result_id", how="left")
        assert joined["type"].null_count() == 0
        assert (joined["type"] == joined["result_type"]).all()
        assert (joined["destination"] == joined["result_destination"]).all()
        assert (joined["provider"] == joined["result_provider"]).all()

    def test_every_flight_and_package_click_is_an_item_from_an_origin_of_the_manifest(
        self, run: Path, clicks: pl.DataFrame
    ) -> None:
        """n mod 1,000,000 is an item_number of the click's type and destination; n // 1,000,000 an origin number.

        And that origin is the airport of the searcher's home city (by the search's geo), as the manifest names it.
        """
        flights = clicks.filter(pl.col("result_type").is_in(["flight", "package"]))
        assert flights.height > 1000
        joined = flights.join(
            _items(run), left_on=["result_type", "item_number"], right_on=["type", "item_number"], how="left"
        )
        assert joined["destination"].null_count() == 0
        assert (joined["destination"] == joined["result_destination"]).all()
        assert (joined["provider"] == joined["result_provider"]).all()
        origins = {row["number"]: row["iata"] for row in _manifest(run)["parameters"]["origin_airports"]}
        assert set(joined["origin"]) <= set(origins)
        # The home city's airport: a city name may be in a country twice, so any of its airports will do.
        cities = home_cities(("US", "CA", "GB", "IE", "AU", "NZ"))
        homes = pl.DataFrame(
            {"country": cities.country, "city": cities.name, "number": cities.airport.astype(np.int64) + 1}
        )
        homes = homes.group_by("country", "city").agg(pl.col("number").alias("numbers"))
        located = joined.join(homes, on=["country", "city"], how="left")
        assert located["numbers"].null_count() == 0
        assert located.select(pl.col("numbers").list.contains(pl.col("origin")).all()).item()

    def test_an_unfiltered_click_is_at_its_items_rank(self, run: Path, clicks: pl.DataFrame) -> None:
        """A search without a price cap or star filter (a car's party of four at most) lists items by rank.

        So its click is on the page of the item's rank in items.jsonl, for every type, a place or
        two from it (each search's jitter: place + 2 x a standard normal, then sorted).
        """
        n = pl.col("result_id").str.split("_").list.get(1).cast(pl.Int64) % ORIGIN
        plain = clicks.filter(
            pl.col("max_price").is_null()
            & pl.col("min_stars").is_null()
            & ~((pl.col("result_type") == "car") & (pl.col("travelers") > 4))
        ).with_columns(n.alias("item_number"))
        joined = plain.join(
            _items(run), left_on=["result_type", "item_number"], right_on=["type", "item_number"], how="left"
        )
        assert set(joined["result_type"]) == set(TYPES) and joined.height > 2000
        size = 10
        assert ((joined["result_position"] - 1) // size == (joined["rank"] - 1) // size).all()
        moved = (joined["result_position"] - joined["rank"]).abs()
        # Measured: 1.09 places on average, 35 % of clicks at the item's own rank (0 and 100 % with no jitter).
        assert 0.5 < moved.mean() < 3.0
        assert 0.2 < (joined["result_position"] == joined["rank"]).mean() < 0.6


class TestRuns:
    def test_the_same_seed_gives_the_same_bytes_whatever_the_count(self, run: Path, tmp_path: Path) -> None:
        """items.jsonl depends on the seed: --count 1000 writes the bytes of --count 20000; another seed does not."""
        assert run_cli("--count", "1000", *ARGS, "--output-dir", str(tmp_path / "a")).returncode == 0
        other = ["--count", "1000", "--seed", "6", "--end", "2026-03-02", "-q", "--output-dir", str(tmp_path / "b")]
        assert run_cli(*other).returncode == 0
        assert (tmp_path / "a" / ITEMS_FILE).read_bytes() == (run / ITEMS_FILE).read_bytes()
        assert (tmp_path / "b" / ITEMS_FILE).read_bytes() != (run / ITEMS_FILE).read_bytes()
        assert set(_items(tmp_path / "b")["seed"]) == {6}

    def test_an_appending_run_adds_its_seeds_items_and_overwrite_replaces_them(self, tmp_path: Path) -> None:
        """A second seed appends its items after the first's; --overwrite leaves only its own; manifests count them."""
        alone = generate(output_dir=tmp_path / "alone", event_count=500, seed=8, window_end="2026-03-02")
        assert alone.items == tmp_path / "alone" / ITEMS_FILE
        folder = tmp_path / "runs"
        generate(output_dir=folder, event_count=500, seed=7, window_end="2026-03-02")
        first = (folder / ITEMS_FILE).read_bytes()
        generate(output_dir=folder, event_count=500, seed=8, window_end="2026-03-02")
        assert (folder / ITEMS_FILE).read_bytes() == first + alone.items.read_bytes()
        manifest = _manifest(folder)
        assert [run["items"]["lines"] for run in manifest["runs"]] == [
            len(first.splitlines()),
            len(alone.items.read_bytes().splitlines()),
        ]
        assert _items(folder)["seed"].unique(maintain_order=True).to_list() == [7, 8]

        replaced = generate(output_dir=folder, event_count=500, seed=9, window_end="2026-03-02", overwrite=True)
        assert replaced.summary()["items"] == str(folder / ITEMS_FILE)
        assert set(_items(folder)["seed"]) == {9}
        manifest = _manifest(folder)
        assert [run["items"]["lines"] for run in manifest["runs"]] == [_items(folder).height]

    def test_no_items_without_files(self, tmp_path: Path) -> None:
        """Like users.jsonl, items.jsonl goes beside event files only: not with --output stdout."""
        result = run_cli("--count", "200", "--output", "stdout", *ARGS, env={"OUTPUT_DIR": str(tmp_path)})
        assert result.returncode == 0, result.stderr
        assert not (tmp_path / ITEMS_FILE).exists()
