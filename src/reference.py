"""Reference data: real cities, countries, airports, destinations, and the site's own catalogue.

Data files live in ``src/data`` (see its README for sources and licences) and are read
with importlib.resources, once, whatever the working directory. Tables here are small
and static: they name things (providers, channels, query templates) so the simulation
can work with integer codes and the encoder can turn codes into text.
"""

from __future__ import annotations

import gzip
import io
from dataclasses import dataclass
from functools import cache
from importlib import resources

import numpy as np
import polars as pl


def _read_csv(name: str) -> pl.DataFrame:
    raw = resources.files("src").joinpath("data", name).read_bytes()
    if name.endswith(".gz"):
        raw = gzip.decompress(raw)
    return pl.read_csv(io.BytesIO(raw), infer_schema_length=None)


@cache
def countries() -> pl.DataFrame:
    """Every country: ``code``, ``name``, ``currency``, ``continent``."""
    return _read_csv("countries.csv")


@cache
def country_codes() -> frozenset[str]:
    """The ISO 3166-1 alpha-2 codes that have a row in :func:`countries`."""
    return frozenset(countries()["code"].to_list())


@cache
def all_cities() -> pl.DataFrame:
    """GeoNames cities over 15,000 people: name, country, admin1, population, timezone, latitude, longitude."""
    return _read_csv("cities.csv.gz")


@cache
def destinations() -> pl.DataFrame:
    """Travel destinations: name, country, kind (beach, city, summer, ski), weight, price_index, iata."""
    return _read_csv("destinations.csv")


@cache
def airports() -> pl.DataFrame:
    """Airports with an IATA code: iata, name, country, latitude, longitude, commercial (1: scheduled flights)."""
    return _read_csv("airports.csv.gz")


@cache
def destination_airports() -> np.ndarray:
    """Row index into :func:`airports` of each destination's ``iata``, in :func:`destinations` order."""
    codes = airports()["iata"].to_list()
    row = {code: i for i, code in enumerate(codes)}
    index = np.array([row[code] for code in destinations()["iata"]], dtype=np.int32)
    index.setflags(write=False)
    return index


EARTH_RADIUS_KM = 6371.0088  # the mean Earth radius (IUGG)


def great_circle_km(
    lat1: np.ndarray | float, lon1: np.ndarray | float, lat2: np.ndarray | float, lon2: np.ndarray | float
) -> np.ndarray:
    """Great-circle distance in km between points given in degrees, by the haversine formula.

    Arguments are scalars or arrays that NumPy broadcasts together (one origin against many
    destinations, or pairs of equal-length arrays); the result has their broadcast shape, a
    0-d array for four scalars. On a sphere of the mean Earth radius (6371.0088 km), which is
    within about 0.5 % of the distance on the ellipsoid.
    """
    phi1, lam1, phi2, lam2 = (np.radians(np.asarray(x, dtype=np.float64)) for x in (lat1, lon1, lat2, lon2))
    h = np.sin((phi2 - phi1) / 2) ** 2 + np.cos(phi1) * np.cos(phi2) * np.sin((lam2 - lam1) / 2) ** 2
    # Rounding can put h a hair above 1 for antipodes; arcsin would then give NaN.
    return 2 * EARTH_RADIUS_KM * np.arcsin(np.sqrt(np.minimum(h, 1.0)))


def _unit_vectors(latitude: np.ndarray, longitude: np.ndarray) -> np.ndarray:
    """Points in degrees as unit vectors on the sphere, one row of (x, y, z) per point."""
    phi, lam = np.radians(latitude), np.radians(longitude)
    return np.column_stack((np.cos(phi) * np.cos(lam), np.cos(phi) * np.sin(lam), np.sin(phi)))


NEAREST_BLOCK = 512  # cities per block, taken in order of latitude
NEAREST_BAND = 2.0  # degrees of latitude either side of a block where its airports are first looked for


def nearest_commercial_airport(latitude: np.ndarray, longitude: np.ndarray) -> np.ndarray:
    """Row index into :func:`airports` of the commercial airport nearest to each point (degrees).

    The nearest on the sphere is the airport whose unit vector has the largest dot product
    with the point's (the shortest chord is the shortest arc), so a matrix product compares a
    block of points with many airports at once. Points go in blocks of nearby latitudes, and
    a block is compared only with the airports in a band of latitude around it: an airport
    more than ``d`` degrees of latitude away is more than ``d`` degrees of arc away, so once
    the band is as wide as the farthest of the block's nearest airports found in it, no
    airport outside can be nearer. A first band of :data:`NEAREST_BAND` degrees is widened
    once if it is not. The result is the same as comparing every point with every airport;
    a tie goes to the airport first in :func:`airports` (by IATA code).
    """
    table = airports()
    commercial = np.flatnonzero(table["commercial"].to_numpy() == 1)
    port_latitude = table["latitude"].to_numpy()[commercial]
    ports = _unit_vectors(port_latitude, table["longitude"].to_numpy()[commercial])
    latitude = np.asarray(latitude, dtype=np.float64)
    points = _unit_vectors(latitude, np.asarray(longitude, dtype=np.float64))
    order = np.argsort(latitude, kind="stable")
    best = np.empty(len(points), dtype=np.int64)
    for start in range(0, len(points), NEAREST_BLOCK):
        rows = order[start : start + NEAREST_BLOCK]
        low, high = latitude[rows[0]], latitude[rows[-1]]
        reach = NEAREST_BAND
        while True:
            band = np.flatnonzero((port_latitude >= low - reach) & (port_latitude <= high + reach))
            if len(band) == 0:
                band = np.arange(len(commercial))
            dots = points[rows] @ ports[band].T
            pick = np.argmax(dots, axis=1)
            farthest = np.degrees(np.arccos(np.clip(dots[np.arange(len(rows)), pick].min(), -1.0, 1.0)))
            if farthest < reach or len(band) == len(commercial):
                break
            reach = farthest + 1e-6  # every block's nearest airport is within this band: one more pass
        best[rows] = band[pick]
    return commercial[best].astype(np.int32)


@dataclass(frozen=True)
class CityTable:
    """The home cities users can live in, as parallel arrays indexed by city code."""

    name: pl.Series
    country: pl.Series
    timezone: pl.Series
    population: np.ndarray
    timezone_code: np.ndarray
    timezone_names: tuple[str, ...]
    currency_code: np.ndarray
    latitude: np.ndarray  # degrees, float64
    longitude: np.ndarray  # degrees, float64
    airport: np.ndarray  # int32 row index into airports(): the city's origin airport

    @property
    def weights(self) -> np.ndarray:
        """Probability of each city being a home city: its share of the population."""
        return self.population / self.population.sum()


@cache
def home_cities(markets: tuple[str, ...] | None) -> CityTable:
    """Cities of the given markets (None: every country), with time zone and currency codes."""
    cities = all_cities()
    if markets is not None:
        cities = cities.filter(pl.col("country").is_in(list(markets)))
    currency_of = dict(zip(countries()["code"], countries()["currency"], strict=True))
    currency_names = CURRENCIES
    currency = np.array(
        [
            currency_names.index(c) if c in currency_names else 0
            for c in (currency_of.get(k) for k in cities["country"])
        ],
        dtype=np.int16,
    )
    zones, zone_code = np.unique(cities["timezone"].to_numpy().astype(str), return_inverse=True)
    latitude = cities["latitude"].to_numpy().astype(np.float64)
    longitude = cities["longitude"].to_numpy().astype(np.float64)
    return CityTable(
        name=cities["name"],
        country=cities["country"],
        timezone=cities["timezone"],
        population=cities["population"].to_numpy().astype(np.float64),
        timezone_code=zone_code.astype(np.int32),
        timezone_names=tuple(str(z) for z in zones),
        currency_code=currency,
        latitude=latitude,
        longitude=longitude,
        # A city's origin airport is the nearest airport with scheduled flights, whatever the
        # distance: a city far from any (Bendigo, 113 km from Melbourne) still flies from the
        # nearest, as its people would drive there. Nearest by great circle, not by road.
        airport=nearest_commercial_airport(latitude, longitude),
    )


# How many units of each currency one US dollar buys.
# Approximate 2024 averages; a country whose currency is not listed is priced in USD.
USD_RATES: dict[str, float] = {
    "USD": 1.0, "CAD": 1.37, "GBP": 0.78, "EUR": 0.92, "AUD": 1.52, "NZD": 1.65, "JPY": 151.0,
    "CNY": 7.19, "INR": 83.7, "MXN": 18.3, "BRL": 5.39, "CHF": 0.88, "SEK": 10.6, "NOK": 10.8,
    "DKK": 6.89, "PLN": 3.98, "ZAR": 18.3, "SGD": 1.34, "HKD": 7.8, "KRW": 1364.0, "AED": 3.67,
    "TRY": 32.8, "ILS": 3.7, "THB": 35.3, "PHP": 57.3, "IDR": 15850.0, "MYR": 4.58, "CZK": 23.2,
    "HUF": 366.0, "ARS": 915.0, "CLP": 944.0, "COP": 4070.0, "SAR": 3.75, "EGP": 45.0, "NGN": 1480.0,
}  # fmt: skip
CURRENCIES: tuple[str, ...] = tuple(USD_RATES)
CURRENCY_RATE = np.array([USD_RATES[c] for c in CURRENCIES])
# ISO 4217 currencies without minor units: amounts in them are whole numbers.
WHOLE_UNITS = np.array([c in ("JPY", "KRW", "CLP") for c in CURRENCIES])

# Who sells each product, with relative shares of the results users click.
PROVIDERS: dict[str, tuple[tuple[str, float], ...]] = {
    "flight": (
        ("Expedia", 18), ("Kayak", 12), ("Priceline", 8), ("Delta", 12), ("United", 11),
        ("American Airlines", 12), ("Southwest", 8), ("Air Canada", 6), ("WestJet", 3),
        ("British Airways", 5), ("Qantas", 3), ("Alaska Airlines", 2),
    ),
    "hotel": (
        ("Booking.com", 30), ("Expedia", 22), ("Hotels.com", 12), ("Marriott", 10), ("Hilton", 9),
        ("Agoda", 5), ("IHG", 5), ("Hyatt", 4), ("Vrbo", 3),
    ),
    "car": (
        ("Enterprise", 25), ("Hertz", 20), ("Avis", 17), ("Budget", 12), ("Alamo", 10),
        ("National", 8), ("Sixt", 8),
    ),
    "package": (
        ("Expedia", 35), ("Costco Travel", 15), ("Priceline", 12), ("Booking.com", 10),
        ("Apple Vacations", 8), ("Delta Vacations", 8), ("Sunwing", 7), ("Funjet Vacations", 5),
    ),
}  # fmt: skip

RESULT_PREFIX = {"flight": "flt", "hotel": "htl", "car": "car", "package": "pkg"}

# Query templates per product: {dest} is the destination, {origin} the user's home city.
# "cheap" templates come with a price cap filter, "star" ones with a star filter.
QUERY_TEMPLATES: dict[str, tuple[str, ...]] = {
    "flight": (
        "flights to {dest}", "flights from {origin} to {dest}", "{origin} to {dest}",
        "cheap flights to {dest}", "one way flights to {dest}", "last minute flights to {dest}",
        "{dest} flights",
    ),
    "hotel": (
        "hotels in {dest}", "{dest} hotels", "cheap hotels in {dest}", "best hotels in {dest}",
        "5 star hotels in {dest}", "hotels with free cancellation in {dest}", "family hotels {dest}",
    ),
    "car": (
        "car rental {dest}", "cheap car rental in {dest}", "{dest} airport car rental", "rent a car in {dest}",
    ),
    "package": (
        "{dest} vacation packages", "all inclusive {dest}", "flight and hotel {dest}",
        "cheap {dest} vacations", "{dest} holiday deals",
    ),
}  # fmt: skip


def template_flags(template: str) -> tuple[bool, bool, bool]:
    """Whether a template asks for a low price, for a star rating, and is a one-way trip."""
    return "cheap" in template, "star" in template, "one way" in template


@dataclass(frozen=True)
class Channel:
    """A marketing channel: UTM source and medium, its campaigns, and its share of new and returning visits."""

    source: str | None
    medium: str | None
    campaigns: tuple[str | None, ...]
    new_share: float
    returning_share: float


# Sabre 2019, Skift 2018, Similarweb: direct 35-50 %, organic 25-44 %, paid search about 18 %,
# metasearch and referral about 12 %; email, social and affiliate small (email and affiliate: guesses).
# Returning visitors come more through direct and email, new ones more through search and metasearch.
CHANNELS: tuple[Channel, ...] = (
    Channel(None, None, (None,), 0.30, 0.48),
    Channel("google", "organic", (None,), 0.26, 0.17),
    Channel("bing", "organic", (None,), 0.04, 0.02),
    Channel("google", "cpc", ("brand_search", "generic_flights", "generic_hotels", "destination_deals"), 0.15, 0.08),
    Channel("bing", "cpc", ("brand_search", "generic_travel"), 0.03, 0.01),
    Channel("kayak", "metasearch", ("hotel_listing", "flight_listing"), 0.06, 0.03),
    Channel("tripadvisor", "referral", ("hotel_reviews",), 0.04, 0.02),
    Channel("trivago", "metasearch", ("hotel_listing",), 0.03, 0.01),
    Channel("facebook", "social", ("summer_sale", "weekend_getaways"), 0.03, 0.02),
    Channel("instagram", "social", ("travel_inspiration",), 0.02, 0.01),
    Channel("email", "email", ("weekly_deals", "price_alert", "abandoned_search"), 0.01, 0.13),
    Channel("partner_blog", "affiliate", ("travel_tips",), 0.03, 0.02),
)
