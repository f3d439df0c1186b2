"""Reference data: home cities are real cities, not districts of a bigger one."""

from __future__ import annotations

import pytest

from src.reference import all_cities

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
