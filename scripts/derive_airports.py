"""Derive ``src/data/airports.csv.gz`` from airportsdata, with airline service from OurAirports.

``airportsdata`` (Mike Borsetti, MIT licence) lists every airport that has an IATA code,
7,884 of them: hubs, but also heliports, seaplane bases, air force bases, mine airstrips and
farm strips. It gives names, countries and coordinates, and nothing on airline service. This
script keeps the places that can be a traveller's airport, and marks those with scheduled
passenger flights, so that a home city's origin airport is a real airport with airline service.

**Dropped** (:data:`DROPPED`, by name, first match wins): airports under construction,
heliports, seaplane bases, military fields (air bases, Air Force Bases, Army Air Fields, Naval
Air Stations, RAF and RAAF stations, radar sites...) unless the name also names the civil
airport that shares the field (:data:`JOINT_USE`: "Charleston Afb/International Airport"),
airstrips and landing strips, airparks, glider fields, mine and ranch strips, and Australian
cattle-station strips. An airport of a destination or of an IATA multi-airport city is never
dropped (Buenos Aires' Aeroparque is "Jorge Newbery Airpark"), nor a military field where
OurAirports (below) records scheduled flights: joint-use airports such as Zaragoza, Reus,
Iwakuni and Saguenay's Bagotville.

**Commercial** (``commercial`` = 1): an airport kept that is any of

1. the IATA code of a row of ``src/data/destinations.csv``;
2. an airport of an IATA multi-airport city (``iata_macs.csv``, shipped with airportsdata:
   London's Heathrow, Gatwick, City, Stansted and Luton, New York's JFK, LaGuardia and
   Newark: 89 airports of 41 cities), IATA's own list of the airports serving a city;
3. marked ``scheduled_service = yes``, or classed ``large_airport``, by OurAirports (public
   domain; the 2022-10-11 snapshot shipped by the ``ourairports`` package), its volunteers'
   record of which airports have scheduled airline flights (the class catches the few hubs
   it marks without, Fuzhou Changle and Darwin); an OurAirports row counts when it has the
   same IATA or ICAO code and lies within :data:`MATCH_KM` of the airport. A name is no such
   sign: of the 191 US airports named international, 38 have no airline (Fort Worth Meacham,
   Oakland County near Detroit, Gary/Chicago);
4. not in OurAirports at all (opened since 2022, or listed under another code) and named
   international (:data:`INTERNATIONAL`): Western Sydney, Navi Mumbai, Siem Reap-Angkor;
5. named in :data:`COMMERCIAL`: airports with flights that OurAirports marks without.

except those named in :data:`NOT_COMMERCIAL`: fields inside big cities whose few scheduled
flights (seaplanes, island commuters) are not where the city flies from; as the origin
airport of a home city is its nearest commercial airport, leaving them commercial would fly
Seattle from Boeing Field and Melbourne from Essendon.

airportsdata has some coordinates wrong: Belgium's and Luxembourg's airports carry their
degrees-minutes-seconds digits as decimal degrees (20 to 40 km off), and a few Chinese cities'
airports sit where the airport they replaced was. :data:`COORDINATES` corrects those that
serve big cities, with OurAirports' coordinates.

Every IATA code of ``destinations.csv`` must be in airportsdata, kept and commercial; every
:data:`COMMERCIAL`, :data:`NOT_COMMERCIAL` and :data:`COORDINATES` entry must name an airport
kept and change something, or the script stops, so a changed release fails loudly.

Output is deterministic: rows sorted by IATA code, coordinates rounded to 4 decimals, and the
gzip header written with mtime 0, so re-running gives identical bytes.

Run from the project root (``--origins`` also lists, for the six user markets, every airport
that is a home city's origin, with the people it serves, and the cities far from any)::

    python scripts/derive_airports.py
"""

from __future__ import annotations

import csv
import gzip
import io
import math
import re
import sys
from collections import Counter, defaultdict
from importlib import metadata, resources
from pathlib import Path
from typing import Any

import airportsdata
from derive_cities import write_file  # the one atomic writer of derived data files

DATA_DIR = Path(__file__).resolve().parent.parent / "src" / "data"
AIRPORTS_PATH = DATA_DIR / "airports.csv.gz"
CITIES_PATH = DATA_DIR / "cities.csv.gz"
DESTINATIONS_PATH = DATA_DIR / "destinations.csv"

AIRPORT_COLUMNS = ("iata", "name", "country", "latitude", "longitude", "commercial")
MARKETS = ("US", "CA", "GB", "IE", "AU", "NZ")
EARTH_RADIUS_KM = 6371.0088
MATCH_KM = 30.0  # an OurAirports row farther than this from the airport is another place

Airport = dict[str, Any]

# Why an airport is no airline airport, by a pattern of its name (case-insensitive), first match wins.
DROPPED: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (reason, re.compile(pattern, re.IGNORECASE))
    for reason, pattern in (
        ("under construction", r"under construction"),
        ("heliport", r"\bheliport\b|\bhelipad\b"),
        ("seaplane base", r"seaplane|sea plane|water aerodrome"),
        (
            "military",
            r"air ?force|\bafb\b|\bair base\b|\barmy\b|\bnaval\b|\bnas\b|\bnaf\b|\bns\b|\bnolf\b|\bmcaf?\b|\bmcas\b"
            r"|marine corps|coast guard|\braf\b|\braaf\b|\brnzaf\b|\bcfb\b|space force|joint base"
            r"|\blrrs\b|air station|military|\baf aux\b|\brnas\b|\barb\b|\bangb\b|\bab airport\b|base a[eé]rea"
            r"|base de avia",
        ),
        ("airstrip", r"\bairstrip\b|landing strip"),
        ("airpark", r"\bair ?park\b"),
        ("glider field", r"\bglider\b"),
        ("mine or ranch strip", r"\bmine\b|\branch\b"),
    )
)
# A military name that also names the civil airport sharing the field: kept.
JOINT_USE = re.compile(r"/.*\b(airport|international|municipal|regional)\b|\bmunicipal\b", re.IGNORECASE)
# Australian cattle-station strips: "Kirkimbie Station Airport", "Margaret River (Station) Airport".
STATION = re.compile(r"\bstation\b", re.IGNORECASE)

INTERNATIONAL = re.compile(
    r"\b(international|internationa|internacional|internasional|internationale|intercontinental|intcntl|intl)\b",
    re.IGNORECASE,
)

# Airports with scheduled passenger flights that OurAirports (2022) marks without.
COMMERCIAL: dict[str, str] = {
    "ATW": "Appleton International, Delta, United and Allegiant",
    "SAF": "Santa Fe Regional, American and United",
    "MTJ": "Montrose Regional, United, American and Delta to the ski resorts",
    "LAW": "Lawton-Fort Sill Regional, American Eagle",
    "HOB": "Lea County Regional (Hobbs), United Express",
    "DIK": "Dickinson, United Express",
    "RIW": "Central Wyoming Regional (Riverton), Essential Air Service",
    "COD": "Yellowstone Regional (Cody), United Express",
    "HGR": "Hagerstown Regional, Allegiant",
}

# Airports with scheduled flights that are not where their city flies from, or with none.
NOT_COMMERCIAL: dict[str, str] = {
    "BFI": "Boeing Field, Seattle: general aviation and cargo; Seattle flies from SEA",
    "MEB": "Essendon, Melbourne: business and commuter flights; Melbourne flies from MEL",
    "MBW": "Moorabbin, Melbourne: general aviation and a King Island commuter",
    "MHR": "Mather, Sacramento: cargo and general aviation",
    "PNE": "Northeast Philadelphia: general aviation",
    "CXH": "Vancouver Harbour: a seaplane terminal; Vancouver flies from YVR",
    "YWH": "Victoria Harbour: a seaplane terminal; Victoria flies from YYJ",
    "BDR": "Bridgeport Sikorsky Memorial: no airline since 1999",
}

# airportsdata coordinates that are wrong: code -> (latitude, longitude), as OurAirports gives them.
COORDINATES: dict[str, tuple[float, float]] = {
    # Degrees-minutes-seconds digits read as decimal degrees: BRU 50.5405 is 50°54'05".
    "BRU": (50.9014, 4.4844),
    "CRL": (50.4592, 4.4538),
    "LGG": (50.6374, 5.4432),
    "ANR": (51.1894, 4.4603),
    "OST": (51.1998, 2.8747),
    "KJK": (50.8172, 3.2047),
    "LUX": (49.6233, 6.2044),
    # The airport the code moved to: Kunming Changshui (2012) for Wujiaba, Jieyang Chaoshan (2011) for
    # Shantou Waisha, Zhanjiang Wuchuan (2022) for Xintang, Lianyungang Huaguoshan (2021) for Baitabu.
    "KMG": (25.1103, 102.9367),
    "SWA": (23.552, 116.5033),
    "ZHA": (21.4817, 110.5903),
    "LYG": (34.4141, 119.179),
}
COORDINATES_MIN_KM = 5.0  # a correction must move the airport at least this far, or it is stale


def km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in km (haversine, mean Earth radius)."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    h = math.sin((p2 - p1) / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(math.radians(lon2 - lon1) / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(math.sqrt(h))


def drop_reason(airport: Airport) -> str | None:
    """Return why ``airport`` is no airline airport, by its name, or None."""
    name = airport["name"]
    for reason, pattern in DROPPED:
        if pattern.search(name) and not (reason == "military" and JOINT_USE.search(name)):
            return reason
    if airport["country"] == "AU" and STATION.search(name):
        return "cattle station strip (AU)"
    return None


def multi_airport_cities() -> dict[str, str]:
    """IATA multi-airport cities: airport code -> city code, from airportsdata's ``iata_macs.csv``."""
    text = resources.files("airportsdata").joinpath("iata_macs.csv").read_text(encoding="utf-8")
    return {row["Airport Code"]: row["City Code"] for row in csv.DictReader(io.StringIO(text))}


def read_ourairports() -> list[dict[str, str]]:
    """OurAirports' airports table, as shipped in the ``ourairports`` package (read without importing it)."""
    path = metadata.distribution("ourairports").locate_file("ourairports/data/airports.csv.gz")
    text = gzip.decompress(Path(str(path)).read_bytes()).decode("utf-8")
    return list(csv.DictReader(io.StringIO(text)))


def scheduled_service(airports: dict[str, Airport], ourairports: list[dict[str, str]]) -> dict[str, str]:
    """Per IATA code that OurAirports lists near the airport: ``scheduled``, ``large`` (an airport that
    OurAirports classes large without scheduled flights) or ``none``."""
    rows: defaultdict[str, list[dict[str, str]]] = defaultdict(list)
    for row in ourairports:
        for key in {row["iata_code"], row["ident"], row["gps_code"]} - {""}:
            rows[key].append(row)
    found: dict[str, str] = {}
    for code, airport in airports.items():
        near = [
            row
            for row in rows[code] + rows[airport["icao"]]
            if (row["iata_code"] in ("", code))
            and km(airport["lat"], airport["lon"], float(row["latitude_deg"]), float(row["longitude_deg"])) <= MATCH_KM
        ]
        if near:
            if any(row["scheduled_service"] == "yes" and row["type"] != "closed" for row in near):
                found[code] = "scheduled"
            else:
                found[code] = "large" if any(row["type"] == "large_airport" for row in near) else "none"
    return found


def _read_cities() -> list[dict[str, Any]]:
    rows = list(csv.DictReader(io.StringIO(gzip.decompress(CITIES_PATH.read_bytes()).decode("utf-8"))))
    for row in rows:
        row["population"] = int(row["population"])
        row["latitude"], row["longitude"] = float(row["latitude"]), float(row["longitude"])
    return rows


def _read_destination_codes() -> list[str]:
    with DESTINATIONS_PATH.open(encoding="utf-8", newline="") as file:
        return [row["iata"] for row in csv.DictReader(file)]


def _coordinate(value: float) -> str:
    """Format a latitude or longitude rounded to 4 decimals, without a negative zero."""
    return repr(round(value, 4) + 0.0)


def correct_coordinates(airports: dict[str, Airport]) -> dict[str, Airport]:
    """Return ``airports`` with :data:`COORDINATES` applied; fail on an entry that is unknown or no longer needed."""
    bad = [code for code in COORDINATES if code not in airports]
    stale = [
        code
        for code, (lat, lon) in COORDINATES.items()
        if code in airports and km(airports[code]["lat"], airports[code]["lon"], lat, lon) < COORDINATES_MIN_KM
    ]
    if bad or stale:
        raise SystemExit(f"COORDINATES entries for unknown airports {bad}, or already right in airportsdata {stale}")
    fixed = dict(airports)
    for code, (lat, lon) in COORDINATES.items():
        fixed[code] = {**airports[code], "lat": lat, "lon": lon}
    return fixed


def derive_airports(
    airports: dict[str, Airport],
    destinations: list[str],
    macs: dict[str, str],
    service: dict[str, str],
) -> tuple[list[list[str]], Counter[str], Counter[str]]:
    """Return the output rows (sorted, as strings), the airports dropped per reason and the commercial per rule."""
    missing = sorted({code for code in destinations if code not in airports})
    if missing:
        raise SystemExit(f"destination IATA codes that airportsdata does not list: {missing}")
    protected = set(destinations) | set(macs)
    kept: dict[str, Airport] = {}
    dropped: Counter[str] = Counter()
    for code, airport in sorted(airports.items()):
        reason = None if code in protected else drop_reason(airport)
        if reason == "military" and service.get(code) == "scheduled":
            reason = None  # a joint-use airport
        if reason is None:
            kept[code] = airport
        else:
            dropped[reason] += 1

    rule: dict[str, str] = {}
    for code, airport in kept.items():
        if code in destinations:
            rule[code] = "1. destination"
        elif code in macs:
            rule[code] = "2. airport of an IATA multi-airport city"
        elif service.get(code) in ("scheduled", "large"):
            rule[code] = "3. scheduled service (or a large airport) in OurAirports"
        elif code not in service and INTERNATIONAL.search(airport["name"]):
            rule[code] = "4. not in OurAirports, named international"
    not_kept = sorted(code for code in (*COMMERCIAL, *NOT_COMMERCIAL) if code not in kept)
    stale = sorted(code for code in COMMERCIAL if code in rule) + sorted(
        code for code in NOT_COMMERCIAL if code not in rule
    )
    protected_listed = sorted(code for code in NOT_COMMERCIAL if code in protected)
    if not_kept or stale or protected_listed:
        raise SystemExit(
            f"COMMERCIAL / NOT_COMMERCIAL entries that are no airport kept: {not_kept}; that change nothing: "
            f"{stale}; that are destinations or multi-airport city airports: {protected_listed}"
        )
    for code in COMMERCIAL:
        rule[code] = "5. named in COMMERCIAL"
    for code in NOT_COMMERCIAL:
        del rule[code]

    not_commercial = [code for code in destinations if code not in rule]
    if not_commercial:
        raise SystemExit(f"destination airports that are not commercial: {not_commercial}")
    rows = [
        [
            code,
            airport["name"],
            airport["country"],
            _coordinate(airport["lat"]),
            _coordinate(airport["lon"]),
            "1" if code in rule else "0",
        ]
        for code, airport in sorted(kept.items())
    ]
    return rows, dropped, Counter(rule.values())


def origins(rows: list[list[str]], cities: list[dict[str, Any]]) -> None:
    """Print, for the user markets, each origin airport with the people and cities it serves, and far cities."""
    commercial = [(r[0], r[1], r[2], float(r[3]), float(r[4])) for r in rows if r[5] == "1"]
    served: Counter[str] = Counter()
    examples: defaultdict[str, list[str]] = defaultdict(list)
    far: list[str] = []
    for city in cities:
        if city["country"] not in MARKETS:
            continue
        distance, code = min((km(city["latitude"], city["longitude"], a[3], a[4]), a[0]) for a in commercial)
        served[code] += city["population"]
        examples[code].append(city["name"])
        if distance > 100 and city["population"] >= 50_000:
            far.append(f"  {city['country']} {city['name']} ({city['population']:,}): {code} {distance:.0f} km")
    names = {a[0]: a for a in commercial}
    for code, people in served.most_common():
        print(f"  {names[code][2]} {code} {people:>10,}  {names[code][1]}: {', '.join(examples[code][:4])}")
    print("cities of 50,000+ more than 100 km from their origin airport:")
    print("\n".join(far))


def main() -> None:
    """Write the airports file and print what was written, dropped and marked commercial."""
    airports = correct_coordinates({code: dict(airport) for code, airport in airportsdata.load("IATA").items()})
    service = scheduled_service(airports, read_ourairports())
    rows, dropped, commercial = derive_airports(airports, _read_destination_codes(), multi_airport_cities(), service)
    if "--origins" in sys.argv[1:]:
        origins(rows, _read_cities())
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(AIRPORT_COLUMNS)
    writer.writerows(rows)
    # gzip.compress writes no file name, and mtime=0 makes the header constant.
    write_file(AIRPORTS_PATH, gzip.compress(buffer.getvalue().encode("utf-8"), compresslevel=9, mtime=0))

    print(
        f"read {len(airports)} IATA airports from airportsdata {airportsdata.__version__}, "
        f"{len(service)} of them found in ourairports {metadata.version('ourairports')}"
    )
    print(f"wrote {AIRPORTS_PATH}: {len(rows)} rows, {AIRPORTS_PATH.stat().st_size:,} bytes")
    print(f"dropped {sum(dropped.values())} airports:")
    for reason, count in sorted(dropped.items(), key=lambda item: (-item[1], item[0])):
        print(f"  {count:4d}  {reason}")
    print(f"kept {len(rows)}, of which {sum(r[5] == '1' for r in rows)} commercial:")
    for reason, count in sorted(commercial.items()):
        print(f"  {count:4d}  {reason}")
    print(f"  and {len(NOT_COMMERCIAL)} that rules 1 to 4 mark, taken off by NOT_COMMERCIAL")


if __name__ == "__main__":
    main()
