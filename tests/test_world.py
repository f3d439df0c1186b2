"""The world behind the results, measured on the million seeded events as an analyst and an ML engineer would.

Tolerances: the sample has about 225,000 clicks, 90,000 of them on flights and 85,000 on
hotels, and 22,500 bookings. Targets that are structural (a fare that depends on distance,
the same count for the same search) are held exactly or far from their bound; those that
are means of skewed prices get the 20 % the issue allows, many standard errors wide
(a mean over 20,000 prices with a spread of 0.65 of the mean has a standard error of 0.5 %).
"""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from src.reference import airports, all_cities, destinations, great_circle_km

from .conftest import Sample

# The rank shares Sistrix 2020 gives for ranks 1-10 (CTR by rank, normalised over the ten).
SISTRIX_CTR = [28.5, 15.7, 11.0, 8.0, 5.9, 4.9, 4.1, 3.6, 3.1, 2.5]


def _clicks_with_searches(sample: Sample) -> pl.DataFrame:
    """Each click beside the search it came from: what an analyst joins first."""
    search = sample.search.select(
        pl.col("event_id").alias("search_event_id"),
        pl.col("timestamp").alias("search_time"),
        "query",
        "results_count",
        "page",
        "device_type",
        pl.col("geo").struct.field("country").alias("country"),
        pl.col("geo").struct.field("city").alias("city"),
        pl.col("filters").struct.field("start_date").alias("start_date"),
        pl.col("filters").struct.field("end_date").alias("end_date"),
        pl.col("filters").struct.field("travelers").alias("travelers"),
        pl.col("filters").struct.field("min_stars").alias("min_stars"),
    )
    return sample.click.join(search, on="search_event_id")


def _with_distance(clicks: pl.DataFrame) -> pl.DataFrame:
    """Great-circle km from the home city to the destination's airport.

    Cities are matched by name and country, as an analyst can; names that two cities of a
    country share are left out, as they cannot be placed.
    """
    cities = all_cities().filter(pl.len().over("name", "country") == 1)
    places = airports().select("iata", pl.col("latitude").alias("to_lat"), pl.col("longitude").alias("to_lon"))
    ends = (
        destinations()
        .join(places, on="iata")
        .select(
            pl.col("name").alias("result_destination"),
            pl.col("country").alias("destination_country"),
            "to_lat",
            "to_lon",
        )
    )
    placed = clicks.join(
        cities.select(pl.col("name").alias("city"), "country", "latitude", "longitude"), on=["city", "country"]
    ).join(ends, on="result_destination")
    km = great_circle_km(
        placed["latitude"].to_numpy(),
        placed["longitude"].to_numpy(),
        placed["to_lat"].to_numpy(),
        placed["to_lon"].to_numpy(),
    )
    return placed.with_columns(km=pl.Series(km))


@pytest.fixture(scope="module")
def clicks(million: Sample) -> pl.DataFrame:
    return _with_distance(_clicks_with_searches(million))


class TestFares:
    def test_round_trip_fare_per_traveller_rises_with_distance(self, clicks: pl.DataFrame) -> None:
        """Correlation of round-trip fare per traveller with distance is at least 0.5 (about 0.88 here)."""
        trips = clicks.filter((pl.col("result_type") == "flight") & pl.col("end_date").is_not_null())
        trips = trips.filter(pl.col("country") == "US")  # one currency
        per_traveller = (trips["result_price"] / trips["travelers"]).to_numpy()
        assert trips.height > 10_000
        assert np.corrcoef(per_traveller, trips["km"].to_numpy())[0, 1] >= 0.5

    def test_us_domestic_round_trip_averages_near_bts(self, clicks: pl.DataFrame) -> None:
        """US domestic round trips average within 20 % of BTS 2022's $469 a traveller."""
        domestic = clicks.filter(
            (pl.col("result_type") == "flight")
            & pl.col("end_date").is_not_null()
            & (pl.col("country") == "US")
            & (pl.col("destination_country") == "US")
        )
        assert domestic.height > 5_000
        assert (domestic["result_price"] / domestic["travelers"]).mean() == pytest.approx(469, rel=0.20)

    def test_nobody_flies_under_the_minimum_distance(self, million: Sample, clicks: pl.DataFrame) -> None:
        """No flight or package click from a home city nearer the destination than MIN_FLIGHT_KM."""
        flying = clicks.filter(pl.col("result_type").is_in(["flight", "package"]))
        assert flying.height > 20_000
        assert flying.filter(pl.col("km") < million.settings.min_flight_km).height == 0


class TestHotels:
    @pytest.fixture(scope="class")
    def nights(self, clicks: pl.DataFrame) -> pl.DataFrame:
        """US users' hotel clicks at US destinations, priced per night and per room (a room sleeps four)."""
        hotels = clicks.filter(
            (pl.col("result_type") == "hotel") & (pl.col("country") == "US") & (pl.col("destination_country") == "US")
        )
        length = (pl.col("end_date").str.to_date() - pl.col("start_date").str.to_date()).dt.total_days()
        rooms = (pl.col("travelers") + 3) // 4
        return hotels.with_columns(night=pl.col("result_price") / length / rooms)

    def test_mean_night_is_near_str(self, nights: pl.DataFrame) -> None:
        """Mean within 20 % of CoStar/STR 2023's $155.62; 99.9th percentile under $2,000 a night."""
        assert nights.height > 10_000
        assert nights["night"].mean() == pytest.approx(155.62, rel=0.20)
        assert nights["night"].quantile(0.999) < 2000

    def test_a_room_night_costs_the_same_for_any_party(self, nights: pl.DataFrame) -> None:
        """The same hotel on the same dates costs the same per room night whatever the party's size.

        Parties of one to four take a room, five or six two. (What parties choose differs: large
        parties come more from desktops, whose users are less price-sensitive.)
        """
        same = nights.group_by("result_id", "start_date", "end_date").agg(
            (pl.col("night").max() - pl.col("night").min()).alias("spread"), pl.col("travelers").n_unique()
        )
        mixed = same.filter(pl.col("travelers") > 1)
        assert mixed.height > 1_000
        assert mixed["spread"].max() <= 0.01  # a price is rounded to the cent over all its nights and rooms


class TestResults:
    def test_the_same_search_finds_the_same_count(self, million: Sample) -> None:
        """A search repeated in a session (same query, filters and page) finds the same count in 99 % or more."""
        repeats = (
            million.search.group_by("session_id", "query", "filters", "page")
            .agg(pl.col("results_count").n_unique().alias("counts"), pl.len())
            .filter(pl.col("len") > 1)
        )
        assert repeats.height > 10_000
        assert (repeats["counts"] == 1).mean() >= 0.99

    def test_an_item_has_one_price_for_the_same_dates_in_a_session(self, clicks: pl.DataFrame) -> None:
        """The same result_id for the same trip in a session shows one price."""
        groups = clicks.group_by("session_id", "result_id", "start_date", "end_date", "travelers").agg(
            pl.col("result_price").n_unique().alias("prices"), pl.len()
        )
        assert groups.filter(pl.col("len") > 1).height > 1_000
        assert groups.filter(pl.col("prices") > 1).height == 0

    def test_a_result_id_names_one_item(self, million: Sample) -> None:
        """Every click of a result_id has one type, destination and provider."""
        items = million.click.group_by("result_id").agg(
            pl.col("result_type").n_unique(),
            pl.col("result_destination").n_unique(),
            pl.col("result_provider").n_unique(),
        )
        assert items.filter(pl.col("result_type") > 1).height == 0
        assert items.filter(pl.col("result_destination") > 1).height == 0
        assert items.filter(pl.col("result_provider") > 1).height == 0

    def test_a_price_cap_holds_on_every_result_clicked(self, clicks: pl.DataFrame, million: Sample) -> None:
        """A click on a search with max_price never costs more than the cap."""
        caps = million.search.select(
            pl.col("event_id").alias("search_event_id"), pl.col("filters").struct.field("max_price").alias("cap")
        )
        capped = million.click.join(caps, on="search_event_id").filter(pl.col("cap").is_not_null())
        assert capped.height > 5_000
        assert capped.filter(pl.col("result_price") > pl.col("cap")).height == 0

    def test_zero_results_have_causes(self, million: Sample) -> None:
        """Searches that ask for 5 stars find nothing more often than others (few hotels have 5 stars)."""
        search = million.search.with_columns(
            zero=pl.col("results_count") == 0, stars=pl.col("filters").struct.field("min_stars")
        )
        hotels = search.filter(pl.col("query").str.contains("hotel"))  # the same sold-out dates for both
        five = hotels.filter(pl.col("stars") == 5)["zero"].mean()
        other = hotels.filter(pl.col("stars").is_null())["zero"].mean()
        assert five > 1.5 * other


class TestClicksAndBookings:
    def test_rank_one_is_near_sistrix(self, million: Sample) -> None:
        """Rank 1 takes within 15 % of its Sistrix 2020 share of the clicks on ranks 1-10."""
        first_ten = million.click.filter(pl.col("result_position") <= 10)
        share = (first_ten["result_position"] == 1).mean()
        assert share == pytest.approx(SISTRIX_CTR[0] / sum(SISTRIX_CTR), rel=0.15)

    def test_booking_value_is_the_price_with_taxes_and_fees(self, million: Sample) -> None:
        """booking_value is the clicked price plus the product's taxes and fees, to the cent."""
        taxes = million.settings.taxes_by_product
        joined = million.conversion.join(million.click, left_on="click_event_id", right_on="event_id")
        expected = (pl.col("result_price") * (1 + pl.col("result_type").replace_strict(taxes))).round(2)
        whole = pl.col("currency").is_in(["JPY", "KRW", "CLP"])
        expected = pl.when(whole).then(expected.round(0)).otherwise(expected)
        assert joined.filter((pl.col("booking_value") - expected).abs() > 0.005).height == 0
        assert (
            joined.filter(pl.col("result_type") == "hotel")["booking_value"].sum()
            > joined.filter(pl.col("result_type") == "hotel")["result_price"].sum()
        )

    def test_cheaper_offers_book_more(self, clicks: pl.DataFrame, million: Sample) -> None:
        """Hotel clicks in the cheapest third per night at their destination book more often than the dearest third."""
        booked = million.conversion.select(pl.col("click_event_id").alias("event_id"), pl.lit(True).alias("booked"))
        hotels = clicks.filter(pl.col("result_type") == "hotel").join(booked, on="event_id", how="left")
        length = (pl.col("end_date").str.to_date() - pl.col("start_date").str.to_date()).dt.total_days()
        hotels = hotels.with_columns(
            booked=pl.col("booked").fill_null(False),
            third=((pl.col("result_price") / length).rank() / pl.len())
            .over("result_destination", "country")
            .mul(3)
            .floor()
            .clip(0, 2),
        )
        rate = dict(hotels.group_by("third").agg(pl.col("booked").mean()).iter_rows())
        assert rate[0.0] > 1.3 * rate[2.0]


def test_a_booking_model_on_what_the_events_show_beats_chance(million: Sample) -> None:
    """Gradient boosting on click features predicts a booking: AUC >= 0.70, and >= 0.65 without the device.

    Measured 0.764 and 0.675 here, 0.764 and 0.671 on the issue's run (seed 3, 28 days); the
    held-out 30 % has about 6,800 bookings, so the AUC's standard error is under 0.005.
    """
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.metrics import roc_auc_score

    features = _clicks_with_searches(million).join(
        million.conversion.select(pl.col("click_event_id").alias("event_id"), pl.lit(1).alias("booked")),
        on="event_id",
        how="left",
    )
    start = pl.col("start_date").str.to_date()
    length = (pl.col("end_date").str.to_date() - start).dt.total_days().fill_null(0)
    features = features.with_columns(
        booked=pl.col("booked").fill_null(0),
        log_price=pl.col("result_price").log(),
        lead=(start - pl.col("search_time").str.slice(0, 10).str.to_date()).dt.total_days(),
        nights=length,
        hour=pl.col("search_time").str.slice(11, 2).cast(pl.Int32),
    ).with_columns(
        # The price against others for the same trip: what the page showed is not in the events.
        relative_price=pl.col("log_price")
        - pl.col("log_price").median().over("result_type", "result_destination", "nights", "travelers"),
    )
    categorical = ["result_type", "result_destination", "result_provider", "country", "device_type"]
    features = features.with_columns(pl.col(c).cast(pl.Categorical).to_physical() for c in categorical)
    numeric = ["result_position", "log_price", "relative_price", "travelers", "lead", "nights", "hour", "results_count"]
    label = features["booked"].to_numpy()
    order = np.random.default_rng(0).permutation(len(label))
    train, test = order[: len(order) * 7 // 10], order[len(order) * 7 // 10 :]

    def auc(columns: list[str]) -> float:
        x = features.select(columns).to_numpy().astype(float)
        model = HistGradientBoostingClassifier(
            max_iter=200, learning_rate=0.05, categorical_features=[c in categorical for c in columns], random_state=0
        )
        model.fit(x[train], label[train])
        return float(roc_auc_score(label[test], model.predict_proba(x[test])[:, 1]))

    assert auc(numeric + categorical) >= 0.70
    assert auc(numeric + [c for c in categorical if c != "device_type"]) >= 0.65


def _impressions(sample: Sample) -> pl.DataFrame:
    """Every result a search showed, one row each: the search, the place on its page (from 0), the result_id."""
    pages = pl.read_ndjson(sample.directory / "impressions.jsonl", schema={
        "search_event_id": pl.String, "result_ids": pl.List(pl.String)})  # fmt: skip
    return (
        pages.with_columns(place=pl.int_ranges(pl.col("result_ids").list.len()))
        .explode("result_ids", "place")
        .drop_nulls("place")
        .rename({"result_ids": "result_id"})
    )


class TestImpressions:
    def test_a_line_per_search_with_its_page(self, million: Sample) -> None:
        """impressions.jsonl has each search once, in file order, with as many results as its page holds."""
        pages = pl.read_ndjson(million.directory / "impressions.jsonl", schema={
            "search_event_id": pl.String, "result_ids": pl.List(pl.String)})  # fmt: skip
        assert pages["search_event_id"].to_list() == million.search["event_id"].to_list()
        size = million.settings.page_size
        on_page = (million.search["results_count"] - (million.search["page"] - 1) * size).clip(0, size)
        assert (pages["result_ids"].list.len() == on_page).all()
        assert (pages["result_ids"].list.n_unique() == pages["result_ids"].list.len()).all()

    def test_every_click_is_on_its_page_at_its_place(self, million: Sample) -> None:
        """The clicked result_id is the one the page showed at the click's place."""
        size = million.settings.page_size
        clicks = million.click.select("search_event_id", "result_id", place=(pl.col("result_position") - 1) % size)
        joined = clicks.join(_impressions(million), on=["search_event_id", "place"], how="left")
        assert joined.height == million.click.height
        assert (joined["result_id"] == joined["result_id_right"]).all()

    def test_the_same_item_moves_between_places(self, million: Sample) -> None:
        """The site's order varies per search (PAGE_JITTER): most items shown 20+ times appear at 3+ places."""
        shown = _impressions(million).group_by("result_id").agg(pl.len(), pl.col("place").n_unique().alias("places"))
        often = shown.filter(pl.col("len") >= 20)
        assert often.height > 1_000
        assert (often["places"] >= 3).mean() > 0.9


def test_a_position_based_click_model_recovers_the_examination_curve(million: Sample) -> None:
    """PBM fitted by expectation-maximisation on impressions and clicks gives 1/rank^decay within 10 % per rank.

    As an ML engineer would fit it: a document is a result_id within its query's context (its
    filters, party and page), and documents seen fewer than 30 times are left out. Fitting a
    parameter per rare document biases the curve: kept, the 650,000 documents seen a few times
    each flatten it by up to 49 % (measured). The largest error over ranks 2-10 measured 4.9,
    7.1 and 6.1 % on three seeds' million events (about 26,000 documents, 225,000 clicks).
    """
    size = million.settings.page_size
    context = million.search.select(
        pl.col("event_id").alias("search_event_id"),
        pl.concat_str(
            pl.col("filters").struct.field("min_stars").fill_null(0),
            pl.col("filters").struct.field("max_price").is_null(),
            pl.col("filters").struct.field("travelers"),
            pl.col("page"),
            separator="/",
        ).alias("context"),
    )
    clicked = million.click.select(
        "search_event_id", "result_id", place=(pl.col("result_position") - 1) % size, clicked=pl.lit(1)
    )
    shown = (
        _impressions(million)
        .join(context, on="search_event_id")
        .join(clicked, on=["search_event_id", "result_id", "place"], how="left")
        .with_columns(pl.col("clicked").fill_null(0), document=pl.concat_str("result_id", "context"))
        .filter(pl.len().over("document") >= 30)
    )
    _, document = np.unique(shown["document"].to_numpy(), return_inverse=True)
    documents = int(document.max()) + 1
    place = shown["place"].to_numpy().astype(np.int64)
    cell = document * size + place
    seen = np.bincount(cell, minlength=documents * size).reshape(documents, size).astype(float)
    clicks = np.bincount(cell, shown["clicked"].to_numpy(), minlength=documents * size).reshape(documents, size)
    not_clicked = seen - clicks
    examination, attractiveness = np.full(size, 0.5), np.full(documents, 0.2)
    for _ in range(5_000):
        e, a = examination[None, :], attractiveness[:, None]
        # Unclicked impressions: examined but not attractive, or attractive but not examined.
        update = (clicks + not_clicked * e * (1 - a) / (1 - e * a)).sum(0) / seen.sum(0)
        attractiveness = (clicks + not_clicked * (1 - e) * a / (1 - e * a)).sum(1) / seen.sum(1)
        converged = np.abs(update / update[0] - examination / examination[0]).max() < 1e-6
        examination = update
        if converged:
            break
    fitted = examination / examination[0]
    true = np.arange(1, size + 1) ** -million.settings.click_position_decay
    assert documents > 10_000
    assert fitted[:10] == pytest.approx(true[:10], rel=0.10)


class TestUserHistories:
    """What a recommender learns from a user's history: tastes that persist from trip to trip."""

    def test_a_users_trips_favour_one_product(self, million: Sample) -> None:
        """A user's clicks on later trips (other destinations) are of their first trip's type more than by chance.

        By chance the match would be the sum of the squared type shares (0.35 here); half of
        a logged-in user's trips are of their favourite type (PRODUCT_LOYALTY). Measured 0.50
        on 17,000 later trips, and 0.35 with PRODUCT_LOYALTY 0 (standard error 0.004).
        """
        clicks = million.click.filter(pl.col("user_id").is_not_null()).sort("timestamp")
        first = clicks.group_by("user_id").agg(
            pl.col("result_destination").first().alias("first_destination"),
            pl.col("result_type").first().alias("first_type"),
        )
        later = (
            clicks.join(first, on="user_id")
            .filter(pl.col("result_destination") != pl.col("first_destination"))
            .unique(["user_id", "result_destination"], keep="first")
        )
        shares = clicks["result_type"].value_counts(normalize=True)["proportion"].to_numpy()
        chance = float((shares**2).sum())
        same = float((later["result_type"] == later["first_type"]).mean())
        assert later.height > 10_000
        assert same > chance + 0.1

    def test_a_user_filters_hotel_stars_the_same_way_every_time(self, million: Sample) -> None:
        """Of users with hotel searches in two sessions, the 3-4 star filter of the first is that of the later.

        HOTEL_STAR_FILTER_RATE (0.15) of users filter on 3 or 4 stars, always the same (measured:
        all of 26,000 pairs); a session-by-session draw would agree 0.85^2 + 2 * 0.075^2, about
        0.73, of the time.
        """
        hotel = million.search.filter(
            pl.col("user_id").is_not_null()
            & pl.col("query").str.contains("hotels")  # the hotel queries; packages say "flight and hotel"
            & (pl.col("filters").struct.field("min_stars").fill_null(0) < 5)
        ).sort("timestamp")
        per_session = hotel.group_by("user_id", "session_id", maintain_order=True).agg(
            pl.col("filters").struct.field("min_stars").fill_null(0).first().alias("stars")
        )
        pairs = (
            per_session.group_by("user_id", maintain_order=True)
            .agg(pl.col("stars").first().alias("first"), pl.col("stars").slice(1).alias("later"))
            .explode("later")
            .drop_nulls("later")
        )
        same = float((pairs["first"] == pairs["later"]).mean())
        assert pairs.height > 2_000
        assert same > 0.9
