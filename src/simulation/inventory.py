"""The site's inventory: hotels, flight offers, car rentals and packages at each destination, and their prices.

Items are drawn once per seed from a random stream of their own, so every run and every
shard with the seed sees the same items at the same base prices. A ``result_id`` names one
item (a flight or package item is one offer on one route, from one origin airport).

What an item costs on given dates is its base price moved by season, weekday, lead time and
demand, each within the bounds written beside it below, and all of it a pure function of the
item, the route, the dates and the day of the search: the same item on the same dates costs
the same within a session.

The site ranks each destination's items of a product once per seed, by a relevance score
(``RELEVANCE``); a search shows the items that match it in that order (see ``results``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..reference import airports, destination_airports, great_circle_km, home_cities
from .catalogue import Catalogue
from .population import pick

FLIGHT, HOTEL, CAR, PACKAGE = range(4)

# Hotels. Stars: most rooms are midscale (STR chain scales); the nightly price rises with stars,
# spread lognormal sigma 0.25 inside a star class, which with the spread between classes and
# destinations gives about the published sigma 0.65 (Antonio et al. 2019; median near $125). The
# US mean is CoStar/STR 2023's $155.62 for the nights chosen: users click the cheaper offers of a
# page, so list prices are set CHOSEN_DISCOUNT dearer (measured on seeded runs at the default
# price sensitivity; tests/test_world.py holds the result). A base night is bounded so that with
# its moves it stays under $2,000.
STAR_SHARES = np.array([0.06, 0.18, 0.42, 0.27, 0.07])  # 1 to 5 stars
STAR_NIGHT = np.array([0.60, 0.75, 0.95, 1.30, 1.90])
HOTEL_SPREAD = 0.25
HOTEL_NIGHT_BOUNDS = (35.0, 1200.0)
HOTEL_NIGHT = 155.62  # CoStar/STR 2023: the mean US hotel night
AIRFARE_ROUND = 469.0  # BTS 2022: the mean US domestic round trip
CHOSEN_DISCOUNT = 0.80  # what is clicked averages this share of what is listed (hotels and flights)
ROOM_CAPACITY = 4  # a room sleeps four; a party of five or six takes two (the price is per room)

# Flights: offers per destination, of which a route gets a share; stops and their discount.
FLIGHT_OFFERS = 120
ROUTE_SHARE = (0.15, 1.0)  # share of a destination's offers that fly from one origin airport
NO_SERVICE = 0.03  # share of routes with no service at all
STOP_SHARES = np.array([0.55, 0.37, 0.08])  # nonstop, one stop, two stops
STOP_FARE = np.array([1.0, 0.85, 0.75])
FARE_SPREAD = 0.25  # lognormal sigma of offers on one route
# Fare against distance, shaped like DOT's Standard Industry Fare Level: a terminal charge and a
# rate per mile that falls by distance band (the taper of REALISM.md), then scaled so that the mean
# US domestic round trip is BTS 2022's $469. One way costs 271 / 469 of a round trip (BTS 2022).
FARE_TERMINAL = 53.0
FARE_BANDS = ((500.0, 0.29), (1500.0, 0.22), (np.inf, 0.21))  # (miles up to, dollars a mile)
ONE_WAY_SHARE = 271.0 / 469.0
KM_PER_MILE = 1.609344

# Cars: class, seats, daily price relative to a midsize, share of the fleet (Enterprise, Hertz classes).
CAR_CLASSES = (
    ("economy", 4, 0.75, 0.20), ("compact", 5, 0.85, 0.20), ("midsize", 5, 1.0, 0.20),
    ("fullsize", 5, 1.15, 0.12), ("suv", 5, 1.30, 0.15), ("minivan", 7, 1.45, 0.08), ("luxury", 5, 2.10, 0.05),
)  # fmt: skip
CAR_DAY, CAR_SPREAD = 70.0, 0.15  # $55-85 a day (REALISM.md)

# Packages: a flight and a hotel of 3 stars or more, for less than the two apart.
PACKAGE_DISCOUNT = (0.80, 0.95)
PACKAGES = 60

# The site's relevance score, on standardised features of a destination's items of one product:
# cheaper, better and more popular items rank higher, with a little noise.
RELEVANCE = {"price": -1.0, "quality": 0.8, "popularity": 0.4, "noise": 0.5}

# How prices move (all multiply the base price; the bounds hold for any dates).
SEASON_PRICE = 0.25  # a month's popularity above 1 raises prices by a quarter of it: 0.85 to 1.2
SEASON_BOUNDS = (0.85, 1.2)
DEMAND_BOUNDS = (0.92, 1.08)  # demand at the destination on the start date (a hash of the two)
# Flights and packages dearer the nearer departure (Kayak, Expedia: cheapest 3-8 weeks ahead):
# (days ahead up to, factor).
FLIGHT_LEAD = ((6, 1.30), (13, 1.15), (20, 1.05), (90, 1.0), (np.inf, 0.95))
_LEAD_BOUNDS = np.array([b for b, _ in FLIGHT_LEAD])
_LEAD_FACTOR = np.array([f for _, f in FLIGHT_LEAD])
WEEKEND_HOTEL = 1.06  # a stay starting Friday or Saturday
FLIGHT_WEEKDAY = np.array([1.0, 0.94, 0.94, 1.0, 1.08, 1.0, 1.08])  # leaving Monday to Sunday

_M1, _M2 = np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def _mix(x: np.ndarray) -> np.ndarray:
    """SplitMix64's finaliser, in place: every input bit moves every output bit."""
    x ^= x >> np.uint64(30)
    x *= _M1
    x ^= x >> np.uint64(27)
    x *= _M2
    x ^= x >> np.uint64(31)
    return x


def hash_unit(seed: int, *keys: np.ndarray | int) -> np.ndarray:
    """Uniforms in [0, 1) that are a pure function of the seed and integer keys (broadcast together).

    What must be the same whenever it is asked for again (a route's service, the demand at a
    destination on a date, a user's price sensitivity) is drawn this way rather than from a
    stream: keys are folded in by xor and an odd multiplier, then SplitMix64's finaliser mixes.
    """
    h = _mix(np.atleast_1d(np.uint64(seed % 2**64) ^ _GOLDEN))
    for key in keys:
        h = (h ^ np.atleast_1d(key).astype(np.int64).astype(np.uint64)) * _GOLDEN
    h = _mix(h)
    h >>= np.uint64(11)
    return h.astype(np.float64) * 2.0**-53


def round_trip_fare(km: np.ndarray, scale: float) -> np.ndarray:
    """The typical round-trip fare per traveller, in US dollars, for a great-circle distance."""
    miles = np.asarray(km, dtype=np.float64) / KM_PER_MILE
    one_way = np.full(miles.shape, FARE_TERMINAL)
    low = 0.0
    for high, rate in FARE_BANDS:
        one_way += rate * np.clip(miles - low, 0.0, high - low)
        low = high
    return 2.0 * one_way * scale


def _standard(values: np.ndarray) -> np.ndarray:
    spread = values.std()
    return (values - values.mean()) / (spread if spread > 0 else 1.0)


@dataclass(frozen=True)
class Items:
    """One product's items over all destinations, and each destination's items in rank order.

    ``lists[row]`` holds item indices best first (padded with -1), ``lengths[row]`` how many;
    a row is ``destination * variants + variant``, the variant a filter the list already
    applies (hotels: star filter 0, 3, 4, 5; cars: seats for parties up to 4, 5, 7).
    """

    destination: np.ndarray
    number: np.ndarray  # the item's number within its destination (flights: within the route)
    base: np.ndarray  # hotel: a room night; car: a day; flight: a factor on the route's fare; package: see Inventory
    quality: np.ndarray  # what the user sees of the item's quality, standardised per destination
    provider: np.ndarray
    popularity: np.ndarray
    feature: np.ndarray  # hotel: stars; flight: stops; car: seats; package: its hotel
    lists: np.ndarray
    lengths: np.ndarray
    variants: int
    typical: np.ndarray  # per list: the geometric mean base price of its items
    thresholds: np.ndarray  # (lists, PRICE_LEVELS): base prices a price cap is rounded down to
    levels: np.ndarray  # (lists, PRICE_LEVELS, longest): ranks of the items at or under each threshold, then NO_RANK
    log_base: np.ndarray  # log of base: a price's log is this plus its search's factor

    def ranks(self) -> np.ndarray:
        """Each item's rank, from 1, in its destination's unfiltered list (variant 0)."""
        lists = self.lists[:: self.variants]
        listed = lists >= 0
        rank = np.zeros(len(self.destination), dtype=np.int64)
        rank[lists[listed]] = np.broadcast_to(np.arange(1, lists.shape[1] + 1), lists.shape)[listed]
        return rank


def _ranked(
    rng: np.random.Generator,
    destination: np.ndarray,
    price: np.ndarray,
    quality: np.ndarray,
    popularity: np.ndarray,
    keep: list[np.ndarray],
    destinations: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Rank lists per destination and variant by the relevance score; ``keep[v]`` masks variant v's items."""
    score = np.empty(len(destination))
    for d in range(destinations):
        rows = destination == d
        score[rows] = (
            RELEVANCE["price"] * _standard(np.log(price[rows]))
            + RELEVANCE["quality"] * _standard(quality[rows])
            + RELEVANCE["popularity"] * _standard(np.log(popularity[rows]))
            + RELEVANCE["noise"] * rng.standard_normal(int(rows.sum()))
        )
    order = np.lexsort((-score, destination))
    variants = len(keep)
    rows_out: list[np.ndarray] = []
    for d in range(destinations):
        in_dest = order[destination[order] == d]
        rows_out.extend(in_dest[keep[v][in_dest]] for v in range(variants))
    longest = max(1, max(len(r) for r in rows_out))
    lists = np.full((len(rows_out), longest), -1, dtype=np.int64)
    for i, r in enumerate(rows_out):
        lists[i, : len(r)] = r
    return lists, np.array([len(r) for r in rows_out], dtype=np.int64)


PRICE_LEVELS = 16  # a price cap is applied in steps: the site's price filter has this many per list
NO_RANK = np.iinfo(np.int16).max


def _levels(lists: np.ndarray, lengths: np.ndarray, base: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each list's typical base price, its price thresholds and the ranks of the items under each."""
    rows, longest = lists.shape
    typical = np.ones(rows)
    thresholds = np.zeros((rows, PRICE_LEVELS))
    levels = np.full((rows, PRICE_LEVELS, longest), NO_RANK, dtype=np.int16)
    for row in range(rows):
        prices = base[lists[row, : lengths[row]]]
        if not len(prices):
            continue
        typical[row] = np.exp(np.log(prices).mean())
        steps = np.ceil(np.arange(1, PRICE_LEVELS + 1) * len(prices) / PRICE_LEVELS).astype(np.int64) - 1
        thresholds[row] = np.sort(prices)[steps]  # the price at each sixteenth of the list
        under = prices[None, :] <= thresholds[row][:, None]
        # Each level's ranks under its threshold first, in rank order (a stable sort of "not under").
        order = np.argsort(~under, axis=1, kind="stable")
        levels[row, :, : len(prices)] = np.where(np.take_along_axis(under, order, 1), order, NO_RANK)
    return typical, thresholds, levels


def _items(
    destination: np.ndarray,
    base: np.ndarray,
    quality: np.ndarray,
    provider: np.ndarray,
    popularity: np.ndarray,
    feature: np.ndarray,
    ranked: tuple[np.ndarray, np.ndarray],
    variants: int,
) -> Items:
    lists, lengths = ranked
    destinations = int(destination.max()) + 1
    return Items(destination, _within(destination), base, _per_destination(quality, destination, destinations),
                 provider, popularity, feature, lists, lengths, variants, *_levels(lists, lengths, base),
                 np.log(base))  # fmt: skip


def _sizes(weight: np.ndarray, low: int, high: int) -> np.ndarray:
    """Items per destination: more at popular destinations, from ``low`` to ``high``."""
    return np.round(low + (high - low) * np.sqrt(weight / weight.max())).astype(np.int64)


def _providers(rng: np.random.Generator, catalogue: Catalogue, product: int, n: int) -> np.ndarray:
    return (catalogue.provider_first[product] + pick(catalogue.provider_cdf[product], rng.random(n))).astype(np.int16)


class Inventory:
    """Every item the site sells for one seed, and what it costs on given dates."""

    def __init__(self, rng: np.random.Generator, catalogue: Catalogue, us_destination: np.ndarray) -> None:
        """Draw the items of every destination; ``us_destination`` marks the US ones (for the price scale)."""
        self.catalogue = catalogue
        weight = catalogue.destination_weight_by_month.mean(axis=0)
        price_index = catalogue.destination_price
        n_dest = len(weight)
        # Hotels: a US destination's night averages HOTEL_NIGHT, weighted by its traffic.
        hotel_count = _sizes(weight, 15, 120)
        h_dest = np.repeat(np.arange(n_dest), hotel_count)
        stars = (np.searchsorted(np.cumsum(STAR_SHARES), rng.random(len(h_dest)), side="right") + 1).clip(1, 5)
        us_index = float(np.average(price_index[us_destination], weights=weight[us_destination]))
        star_mean = float(STAR_SHARES @ STAR_NIGHT)
        night = (HOTEL_NIGHT / CHOSEN_DISCOUNT / us_index / star_mean) * price_index[h_dest] * STAR_NIGHT[stars - 1]
        night *= np.exp(HOTEL_SPREAD * rng.standard_normal(len(h_dest)) - HOTEL_SPREAD**2 / 2)
        night = np.clip(night, *HOTEL_NIGHT_BOUNDS)
        review = np.clip(np.round(6.0 + 0.5 * stars + 0.6 * rng.standard_normal(len(h_dest)), 1), 2.5, 9.9)
        self.hotel_review = review  # the review score users see (out of 10); quality is it standardised
        h_pop = rng.pareto(1.5, len(h_dest)) + 1.0
        h_keep = [np.ones(len(h_dest), dtype=bool), stars >= 3, stars >= 4, stars >= 5]
        ranked = _ranked(rng, h_dest, night, review, h_pop, h_keep, n_dest)
        self.hotel = _items(
            h_dest, night, review, _providers(rng, catalogue, HOTEL, len(h_dest)), h_pop, stars, ranked, 4
        )

        # Flight offers: the same offers per destination, priced on each route by its distance.
        f_dest = np.repeat(np.arange(n_dest), FLIGHT_OFFERS)
        stops = np.searchsorted(np.cumsum(STOP_SHARES), rng.random(len(f_dest)), side="right").clip(0, 2)
        factor = STOP_FARE[stops] * np.exp(FARE_SPREAD * rng.standard_normal(len(f_dest)) - FARE_SPREAD**2 / 2)
        factor /= np.mean(factor)
        comfort = -stops + 0.3 * rng.standard_normal(len(f_dest))
        f_pop = rng.pareto(1.5, len(f_dest)) + 1.0
        ranked = _ranked(rng, f_dest, factor, comfort, f_pop, [np.ones(len(f_dest), dtype=bool)], n_dest)
        self.flight = _items(
            f_dest, factor, comfort, _providers(rng, catalogue, FLIGHT, len(f_dest)), f_pop, stops, ranked, 1
        )

        # Cars.
        car_count = _sizes(weight, 8, 40)
        c_dest = np.repeat(np.arange(n_dest), car_count)
        shares = np.array([c[3] for c in CAR_CLASSES])
        car_class = np.searchsorted(np.cumsum(shares / shares.sum()), rng.random(len(c_dest)), side="right")
        car_class = car_class.clip(0, len(CAR_CLASSES) - 1)
        self.car_class = car_class  # index into CAR_CLASSES
        seats = np.array([c[1] for c in CAR_CLASSES])[car_class]
        day = CAR_DAY * np.sqrt(price_index[c_dest]) * np.array([c[2] for c in CAR_CLASSES])[car_class]
        day *= np.exp(CAR_SPREAD * rng.standard_normal(len(c_dest)) - CAR_SPREAD**2 / 2)
        rating = np.clip(4.0 + 0.4 * rng.standard_normal(len(c_dest)), 2.0, 5.0)
        c_pop = rng.pareto(1.5, len(c_dest)) + 1.0
        c_keep = [np.ones(len(c_dest), dtype=bool), seats >= 5, seats >= 7]
        ranked = _ranked(rng, c_dest, day, rating, c_pop, c_keep, n_dest)
        self.car = _items(c_dest, day, rating, _providers(rng, catalogue, CAR, len(c_dest)), c_pop, seats, ranked, 3)

        # Packages: a flight offer and a 3-star-or-better hotel of the destination, discounted.
        p_dest = np.repeat(np.arange(n_dest), PACKAGES)
        good = [np.flatnonzero((h_dest == d) & (stars >= 3)) for d in range(n_dest)]
        good = [g if len(g) else np.flatnonzero(h_dest == d) for d, g in enumerate(good)]
        pick_hotel = np.array([g[int(u * len(g))] for g, u in zip((good[d] for d in p_dest), rng.random(len(p_dest)),
                                                                  strict=True)])  # fmt: skip
        pick_flight = p_dest * FLIGHT_OFFERS + rng.integers(0, FLIGHT_OFFERS, len(p_dest))
        self.package_hotel, self.package_flight = pick_hotel, pick_flight
        self.package_discount = rng.uniform(*PACKAGE_DISCOUNT, len(p_dest))
        # Ranked at a reference trip: two travellers, three nights, a 1,500 km flight.
        reference = 2 * factor[pick_flight] * round_trip_fare(np.array(1500.0), 1.0) + 3 * night[pick_hotel]
        reference = reference * self.package_discount
        p_quality = review[pick_hotel] - stops[pick_flight]
        p_pop = rng.pareto(1.5, len(p_dest)) + 1.0
        ranked = _ranked(rng, p_dest, reference, p_quality, p_pop, [np.ones(len(p_dest), dtype=bool)], n_dest)
        providers = _providers(rng, catalogue, PACKAGE, len(p_dest))
        self.package = _items(p_dest, self.package_discount, p_quality, providers, p_pop, pick_hotel, ranked, 1)
        self.products = (self.flight, self.hotel, self.car, self.package)

    def list_row(
        self, product: int, destination: np.ndarray, star_filter: np.ndarray, travelers: np.ndarray
    ) -> np.ndarray:
        """The ranked list a search of ``product`` looks in: its destination's, with its filters applied."""
        items = self.products[product]
        if product == HOTEL:
            variant = np.select([star_filter >= 5, star_filter >= 4, star_filter >= 3], [3, 2, 1], 0)
        elif product == CAR:
            variant = np.select([travelers > 5, travelers > 4], [2, 1], 0)
        else:
            variant = np.zeros(len(destination), dtype=np.int64)
        return destination.astype(np.int64) * items.variants + variant

    def unit_price(self, product: int, item: np.ndarray) -> np.ndarray:
        """What an item's price is proportional to within a search (not packages): its base price."""
        return self.products[product].base[np.maximum(item, 0)]

    def search_factor(self, seed: int, product: int, trip: TripTerms) -> np.ndarray:
        """US dollars per unit of base price for each search (hotels, cars, flights): trip and moves.

        Hotel: nights and rooms; car: days; flight: the route's fare, one way or round, per traveller.
        """
        rooms = -(-trip.travelers // ROOM_CAPACITY)
        if product == HOTEL:
            size = trip.nights * rooms
        elif product == CAR:
            size = np.maximum(trip.nights, 1)
        else:
            size = trip.fare * np.where(trip.one_way, ONE_WAY_SHARE, 1.0) * trip.travelers
        return size * self.moves(seed, product, trip)

    def package_prices(self, seed: int, item: np.ndarray, trip: TripTerms) -> np.ndarray:
        """US-dollar prices of packages ``item`` (a row per search): the flight and the stay, discounted, moved."""
        col = (slice(None), None)
        safe = np.maximum(item, 0)
        rooms = -(-trip.travelers // ROOM_CAPACITY)
        fare = trip.fare * np.where(trip.one_way, ONE_WAY_SHARE, 1.0) * trip.travelers
        stay = self.hotel.base[self.package_hotel[safe]] * (trip.nights * rooms)[col]
        price = (self.flight.base[self.package_flight[safe]] * fare[col] + stay) * self.package.base[safe]
        return price * self.moves(seed, PACKAGE, trip)[col]

    def prices(self, seed: int, product: int, item: np.ndarray, trip: TripTerms) -> np.ndarray:
        """US-dollar prices of ``item`` (a row per search, any columns) for each search's trip."""
        if product == PACKAGE:
            return self.package_prices(seed, item, trip)
        return self.unit_price(product, item) * self.search_factor(seed, product, trip)[:, None]

    def moves(self, seed: int, product: int, trip: TripTerms) -> np.ndarray:
        """Season, weekday, lead time and demand at the destination on the dates, multiplied: one per search."""
        month = trip.start_day.astype("datetime64[D]").astype("datetime64[M]").astype(np.int64) % 12
        season = self.catalogue.destination_season[month, trip.destination]
        factor = np.clip(1 + SEASON_PRICE * (season - 1), *SEASON_BOUNDS)
        weekday = (trip.start_day + 3) % 7  # 1970-01-01 was a Thursday
        if product in (FLIGHT, PACKAGE):
            lead = trip.start_day - trip.day
            factor = factor * _LEAD_FACTOR[np.searchsorted(_LEAD_BOUNDS, lead)] * FLIGHT_WEEKDAY[weekday]
        else:
            factor = factor * np.where(weekday >= 4, WEEKEND_HOTEL, 1.0)
        low, high = DEMAND_BOUNDS
        return factor * (low + (high - low) * hash_unit(seed, 20 + product, trip.destination, trip.start_day))


@dataclass
class TripTerms:
    """What prices a search's results: one value per search."""

    destination: np.ndarray
    start_day: np.ndarray
    nights: np.ndarray
    travelers: np.ndarray
    one_way: np.ndarray
    fare: np.ndarray  # the route's typical round-trip fare per traveller (flights and packages)
    day: np.ndarray  # the local day of the search

    def take(self, rows: np.ndarray) -> TripTerms:
        """The terms of some searches."""
        return TripTerms(*(getattr(self, f)[rows] for f in self.__dataclass_fields__))


def _within(destination: np.ndarray) -> np.ndarray:
    """0, 1, ... within each destination (items come grouped by destination)."""
    counts = np.bincount(destination)
    return np.arange(len(destination)) - np.repeat(np.cumsum(counts) - counts, counts)


def _per_destination(values: np.ndarray, destination: np.ndarray, destinations: int) -> np.ndarray:
    out = np.empty(len(values))
    for d in range(destinations):
        rows = destination == d
        out[rows] = _standard(values[rows])
    return out


# The number of the result_id of an item: destination and item for hotels and cars; origin
# airport, destination and offer for flights and packages (each offer flies from every origin).
ORIGIN_UNIT = 1_000_000  # a flight or package result_id's n is (origin airport row + 1) * ORIGIN_UNIT + item number


def item_numbers(destination: np.ndarray, number: np.ndarray) -> np.ndarray:
    """An item's number across destinations: (destination + 1) * 1000 + its number within the destination."""
    return (destination.astype(np.int64) + 1) * 1000 + number


def result_numbers(product: int, destination: np.ndarray, number: np.ndarray, origin: np.ndarray) -> np.ndarray:
    """The n of ``<prefix>_<n>`` for items of one product; ``origin`` (rows of airports()) for flights and packages."""
    base = item_numbers(destination, number)
    if product in (FLIGHT, PACKAGE):
        return (origin.astype(np.int64) + 1) * ORIGIN_UNIT + base
    return base


def route_km(origins: np.ndarray) -> np.ndarray:
    """Great-circle km from each origin airport (rows of ``airports()``) to each destination's airport."""
    table = airports()
    lat, lon = table["latitude"].to_numpy(), table["longitude"].to_numpy()
    to = destination_airports()
    return great_circle_km(lat[origins][:, None], lon[origins][:, None], lat[to][None, :], lon[to][None, :])


def fare_scale(catalogue: Catalogue, min_km: float) -> float:
    """The scale on the fare curve that makes the mean US domestic round trip booked BTS's $469.

    The mean offer is over US home cities by population and US destinations by traffic, as the
    simulation draws them, on routes long enough to fly; users choose the cheaper offers, so
    the offers average BTS's fare over CHOSEN_DISCOUNT.
    """
    us = home_cities(("US",))
    dest = np.flatnonzero(catalogue.destination_country == "US")
    origins, city_origin = np.unique(us.airport, return_inverse=True)
    km = route_km(origins)[city_origin][:, dest]
    weight = us.weights[:, None] * catalogue.destination_weight_by_month.mean(axis=0)[dest][None, :]
    weight = np.where(km >= min_km, weight, 0.0)
    return AIRFARE_ROUND / CHOSEN_DISCOUNT / float(np.average(round_trip_fare(km, 1.0), weights=weight))
