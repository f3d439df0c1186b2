"""Reference data: home cities are real cities, not districts of a bigger one; airports and distances."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from src.reference import (
    airports,
    all_cities,
    destination_airports,
    destinations,
    great_circle_km,
    home_cities,
    nearest_commercial_airport,
)

# Districts and neighbourhoods that GeoNames lists as places of their own (issue 8).
DISTRICTS = [
    ("Harlem", "US"),
    ("East Harlem", "US"),
    ("Astoria", "US"),
    ("Washington Heights", "US"),
    ("Brooklyn", "US"),
    ("East New York", "US"),
    ("Upper West Side", "US"),
    ("South Boston", "US"),
    ("Orient Heights", "US"),
    ("Hollywood", "US"),  # Hollywood, Florida is a city of its own; Hollywood, California is not
    ("Willowdale", "CA"),
    ("Soho", "GB"),
]

# Cities of their own, several of them next to (or inside the radius of) a bigger one.
CITIES = [
    ("New York City", "US"),
    ("Jersey City", "US"),
    ("Newark", "US"),
    ("Yonkers", "US"),
    ("Boston", "US"),
    ("Cambridge", "US"),
    ("Somerville", "US"),
    ("Long Beach", "US"),
    ("Glendale", "US"),
    ("Toronto", "CA"),
    ("Mississauga", "CA"),
    ("Markham", "CA"),
    ("London", "GB"),
    ("Manchester", "GB"),
    ("Salford", "GB"),
]


def _rows(name: str, country: str) -> list[dict[str, object]]:
    cities = all_cities()
    return cities.filter((cities["name"] == name) & (cities["country"] == country)).to_dicts()


class TestHomeCities:
    @pytest.mark.parametrize(("name", "country"), DISTRICTS)
    def test_district_is_no_home_city(self, name: str, country: str) -> None:
        """A district or neighbourhood of a larger city is not among the home cities."""
        rows = _rows(name, country)
        if name == "Hollywood":
            assert [row["admin1"] for row in rows] == ["FL"]
        else:
            assert rows == []

    @pytest.mark.parametrize(("name", "country"), CITIES)
    def test_real_city_is_a_home_city(self, name: str, country: str) -> None:
        """A city of its own stays, with its population."""
        rows = _rows(name, country)
        assert rows, f"{name} ({country}) missing"
        assert all(int(str(row["population"])) >= 15_000 for row in rows)

    def test_cambridge_massachusetts_is_kept(self) -> None:
        """Cambridge, 4 km from Boston's centre, is kept as the city it is."""
        assert [row["admin1"] for row in _rows("Cambridge", "US")] == ["MA"]

    def test_districts_do_not_add_to_their_city(self) -> None:
        """New York City keeps the census count of its five boroughs; no district's people are added."""
        (row,) = _rows("New York City", "US")
        assert row["population"] == 8_804_190


def _airport(code: str) -> dict[str, object]:
    (row,) = airports().filter(pl.col("iata") == code).to_dicts()
    return row


def _origin(name: str, country: str, admin1: str | None = None) -> str:
    """The IATA code of the origin airport of the one home city so named (among every country's)."""
    cities = all_cities()
    match = (cities["name"] == name) & (cities["country"] == country)
    if admin1 is not None:
        match &= cities["admin1"] == admin1
    (row,) = np.flatnonzero(match.to_numpy())  # all_cities and home_cities(None) share their order
    table = home_cities(None)
    assert table.name[int(row)] == name
    return str(airports()["iata"][int(table.airport[row])])


class TestAirports:
    def test_codes_are_unique_sorted_and_flags_are_0_or_1(self) -> None:
        """One row per IATA code, in code order; commercial is 0 or 1 and a few thousand airports have it."""
        table = airports()
        codes = table["iata"].to_list()
        assert codes == sorted(set(codes))
        assert all(len(code) == 3 for code in codes)
        assert set(table["commercial"].unique().to_list()) == {0, 1}
        assert 3_000 < table["commercial"].sum() < 5_000 < len(table)

    def test_every_destination_airport_resolves_and_is_commercial(self) -> None:
        """destination_airports() points, row by row, at each destination's IATA code, an airport with flights."""
        index = destination_airports()
        assert index.dtype == np.int32 and len(index) == len(destinations())
        table = airports()
        assert table["iata"].gather(index).to_list() == destinations()["iata"].to_list()
        assert table["commercial"].gather(index).to_list() == [1] * len(index)

    @pytest.mark.parametrize("word", ["Heliport", "Seaplane", "Airstrip", "Airpark", "Landing Strip"])
    def test_dropped_kinds_are_absent(self, word: str) -> None:
        """Heliports, seaplane bases, airstrips and airparks are not airports a traveller flies from."""
        names = airports()["name"].to_list()
        kept = [name for name in names if word.lower() in name.lower()]
        assert kept == (["Jorge Newbery Airpark"] if word == "Airpark" else [])  # Buenos Aires' Aeroparque

    @pytest.mark.parametrize("word", ["Air Force", "Afb", "Air Base", "RAF", "RNAS", "Army Air", "Nas", "Arb"])
    def test_military_fields_are_dropped_unless_they_have_airlines(self, word: str) -> None:
        """A field named as military is kept only as a joint-use airport with scheduled flights."""
        table = airports().filter(pl.col("name").str.contains(rf"(?i)\b{word}\b"))
        civil = table.filter(pl.col("name").str.contains("/", literal=True))  # "Charleston Afb/International"
        assert table.join(civil, on="iata", how="anti")["commercial"].to_list() == [1] * (len(table) - len(civil))

    @pytest.mark.parametrize("code", ["LSV", "EDW", "LKZ", "ADW", "NHT"])
    def test_air_bases_without_airlines_are_gone(self, code: str) -> None:
        """Nellis, Edwards, RAF Lakenheath, Joint Base Andrews and RAF Northolt are not in the table."""
        assert airports().filter(pl.col("iata") == code).is_empty()

    @pytest.mark.parametrize("code", ["BFI", "FTW", "PTK", "GYY", "MEB"])
    def test_general_aviation_fields_are_not_commercial(self, code: str) -> None:
        """Fields named international, or in a big city, without airlines to speak of are kept but not commercial."""
        assert _airport(code)["commercial"] == 0

    def test_belgian_coordinates_are_corrected(self) -> None:
        """Brussels Airport is at Zaventem, 12 km from the city centre, not 42 km south as airportsdata has it."""
        brussels = _airport("BRU")
        assert float(great_circle_km(brussels["latitude"], brussels["longitude"], 50.8505, 4.3488)) < 15


class TestGreatCircle:
    def test_jfk_to_lax(self) -> None:
        """JFK to LAX is about 3,975 km (within 1 %)."""
        jfk, lax = _airport("JFK"), _airport("LAX")
        distance = great_circle_km(jfk["latitude"], jfk["longitude"], lax["latitude"], lax["longitude"])
        assert distance.shape == ()
        assert float(distance) == pytest.approx(3_975, rel=0.01)

    def test_same_point_is_zero_and_order_does_not_matter(self) -> None:
        """A point is 0 km from itself, and A to B is B to A."""
        assert float(great_circle_km(51.47, -0.46, 51.47, -0.46)) == 0.0
        assert float(great_circle_km(51.47, -0.46, -33.95, 151.18)) == pytest.approx(
            float(great_circle_km(-33.95, 151.18, 51.47, -0.46)), abs=1e-9
        )

    def test_known_lengths(self) -> None:
        """A quarter meridian, a degree of the equator and antipodes give the sphere's lengths."""
        quarter = np.pi / 2 * 6371.0088
        assert float(great_circle_km(0.0, 0.0, 90.0, 0.0)) == pytest.approx(quarter, rel=1e-12)
        assert float(great_circle_km(0.0, 0.0, 0.0, 1.0)) == pytest.approx(quarter / 90, rel=1e-12)
        # Haversine loses digits near antipodes (arcsin of nearly 1): still within a metre.
        assert float(great_circle_km(10.0, 20.0, -10.0, -160.0)) == pytest.approx(2 * quarter, abs=1e-3)
        assert float(great_circle_km(0.0, 179.5, 0.0, -179.5)) == pytest.approx(quarter / 90, rel=1e-9)

    def test_arrays_broadcast(self) -> None:
        """One origin against many destinations gives one distance per destination; pairs go element-wise."""
        lat = np.array([0.0, 0.0, 45.0])
        lon = np.array([0.0, 1.0, 0.0])
        one_to_many = great_circle_km(0.0, 0.0, lat, lon)
        assert one_to_many.shape == (3,)
        assert one_to_many[0] == 0.0 and one_to_many[2] == pytest.approx(5_003.8, abs=0.1)
        matrix = great_circle_km(lat[:, None], lon[:, None], lat[None, :], lon[None, :])
        assert matrix.shape == (3, 3)
        assert np.allclose(matrix, matrix.T) and np.all(np.diag(matrix) == 0)


class TestOriginAirports:
    @pytest.mark.parametrize(
        ("name", "country", "admin1", "expected"),
        [
            (
                "Valley Stream",
                "US",
                "NY",
                {"JFK"},
            ),  # Queens' neighbour, 6 km from JFK (Springfield Gardens is no home city)
            ("New York City", "US", "NY", {"JFK", "LGA", "EWR"}),
            ("Paradise", "US", "NV", {"LAS"}),  # the Las Vegas Strip
            ("London", "GB", None, {"LHR", "LGW", "LCY", "STN", "LTN"}),
            ("Seattle", "US", None, {"SEA"}),  # not Boeing Field, 7 km closer
            ("Melbourne", "AU", None, {"MEL", "AVV"}),  # not Essendon
            ("Darwin", "AU", None, {"DRW"}),  # an airline airport that OurAirports marks without
            ("Brussels", "BE", None, {"BRU", "CRL"}),
        ],
    )
    def test_named_cities(self, name: str, country: str, admin1: str | None, expected: set[str]) -> None:
        """A city's origin airport is the airline airport its people fly from."""
        assert _origin(name, country, admin1) in expected

    def test_every_home_city_flies_from_a_commercial_airport(self) -> None:
        """No home city's origin airport is one without scheduled flights."""
        table = home_cities(None)
        assert table.airport.dtype == np.int32 and len(table.airport) == len(table.name)
        assert np.all(airports()["commercial"].to_numpy()[table.airport] == 1)

    def test_coordinates_are_the_cities(self) -> None:
        """CityTable's latitude and longitude are float64 degrees of the same cities, in the same order."""
        table = home_cities(("GB", "IE"))
        cities = all_cities().filter(pl.col("country").is_in(["GB", "IE"]))
        assert table.latitude.dtype == np.float64 and table.longitude.dtype == np.float64
        assert np.array_equal(table.latitude, cities["latitude"].to_numpy())
        assert np.array_equal(table.longitude, cities["longitude"].to_numpy())

    def test_origin_is_the_nearest_commercial_airport(self) -> None:
        """For a sample of cities and of points anywhere, no commercial airport is nearer than the one chosen."""
        rng = np.random.default_rng(8)
        table = home_cities(None)
        sample = rng.choice(len(table.name), 1_500, replace=False)
        lat = np.concatenate([table.latitude[sample], np.degrees(np.arcsin(rng.uniform(-1, 1, 1_500))), [90.0, -90.0]])
        lon = np.concatenate([table.longitude[sample], rng.uniform(-180, 180, 1_500), [0.0, 0.0]])
        chosen = np.concatenate([table.airport[sample], nearest_commercial_airport(lat[1_500:], lon[1_500:])])
        ports = airports().filter(pl.col("commercial") == 1)
        every = great_circle_km(lat[:, None], lon[:, None], ports["latitude"].to_numpy(), ports["longitude"].to_numpy())
        chosen_km = great_circle_km(
            lat, lon, airports()["latitude"].to_numpy()[chosen], airports()["longitude"].to_numpy()[chosen]
        )
        assert np.allclose(chosen_km, every.min(axis=1), rtol=0, atol=1e-6)

    def test_a_market_gives_the_same_airports_as_every_country(self) -> None:
        """A city's origin airport does not depend on which markets are chosen."""
        everywhere = home_cities(None)
        markets = home_cities(("US", "CA", "GB", "IE", "AU", "NZ"))
        rows = np.flatnonzero(everywhere.country.is_in(["US", "CA", "GB", "IE", "AU", "NZ"]).to_numpy())
        assert np.array_equal(markets.airport, everywhere.airport[rows])
