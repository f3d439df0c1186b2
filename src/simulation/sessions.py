"""The session model: who visits, what trip they plan, what they search, click and book.

Everything is drawn as whole arrays for a batch of sessions; one call returns the
batch's searches, clicks and conversions as column tables. Defaults follow the
published figures in ``shared/spec/REALISM.md``; each is named where it is used.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import UTC, datetime

import numpy as np
import polars as pl

from ..config import DEVICES, LATEST, PRODUCTS, Settings
from ..reference import CURRENCY_RATE, WHOLE_UNITS, airports, destination_airports, great_circle_km
from .catalogue import build_catalogue
from .inventory import Inventory, fare_scale, hash_unit, result_numbers, route_km
from .journeys import Journeys, Trip, booking_chance, booking_weights
from .population import HABIT_LOYALTY, Site, draw_platform_device, pick
from .results import BOOKING, Clicks, ResultModel, Searches, sensitivity
from .tables import EventTables
from .timing import MS_PER_DAY, MS_PER_HOUR, TimeModel, local_time

FLIGHT, HOTEL, CAR, PACKAGE = range(4)
MOBILE = 1

MAX_SEARCHES = 40  # a session longer than this is a bot, not a traveller

# Refining a trip (Jansen, Booth and Spink 2009: 1.6 to under 3 queries a session).
NEXT_PAGE_RATE = 0.05  # a later search asks for the next page of the one before
REPHRASE_RATE = 0.25  # a later search uses another template for the same trip
DATE_CHANGE_RATE = 0.30  # a later search moves the dates by one to three days
HOTEL_STAR_FILTER_RATE = 0.15  # a hotel session without "5 star" still filters on 3 or 4 stars
PRODUCT_LOYALTY = 0.5  # share of a logged-in user's trips that are of their favourite product

# Lead time Gamma(k=0.8, theta=30) days (Airbnb, arXiv 2601.12175: mean 21-24 days), about
# 10 days shorter on phones (MOBILE_LEAD_FACTOR), about twice as long for packages (Koddi 2014, Expedia Group).
LEAD_SHAPE, LEAD_SCALE = 0.8, 30.0
LEAD_PACKAGE_FACTOR = 2.0  # phones: MOBILE_LEAD_FACTOR, a setting
# Nights lognormal, median 3, sigma 0.78 (Airbnb US, arXiv 2507.21298).
NIGHTS_MEDIAN, NIGHTS_SIGMA = 3.0, 0.78
LAST_TRIP_DAY = (LATEST - datetime(1970, 1, 1, tzinfo=UTC)).days  # no trip ends after LATEST (days since 1970)
# Travellers 1 to 6: adults-only trips of one or two dominate (Hotels.com).
TRAVELERS = np.array([0.42, 0.38, 0.08, 0.09, 0.02, 0.01])
# Phone trips are smaller (Criteo 2015: a phone booking is worth 57 % of a desktop one): shorter
# stays and more often one traveller.
PHONE_NIGHTS_FACTOR = 0.7
# Phones book hotels and cars more readily than flights and packages (Criteo 2018: desktop takes 78 %
# of flight bookings, 68 % of package ones, 61 % of hotel and 60 % of car ones): a phone click's
# booking weight by product, on top of DEVICE_CONVERSION_WEIGHTS.
PHONE_PRODUCT_CONVERSION = np.array([0.3, 0.75, 0.75, 0.45])
PHONE_TRAVELERS = np.array([0.60, 0.30, 0.04, 0.04, 0.01, 0.01])

# Phone users are the more price-sensitive (Criteo 2015: a phone booking is worth 57 % of a desktop one).
DEVICE_SENSITIVITY = np.array([1.0, 1.5, 1.1])  # desktop, phone, tablet
SHORT_TRIP_CAR = 0.2  # a trip too short to fly is a car rental in this share, else a hotel stay

# Gaps inside a session, lognormal (median seconds, sigma, minimum seconds); all stay under the
# 30-minute session timeout (Similarweb 2018: travel visits about 6 minutes).
SESSION_TIMEOUT_MS = 30 * 60 * 1000
GAP_CAP_MS = SESSION_TIMEOUT_MS - 60_000
SEARCH_GAP = (45.0, 1.0, 2.0)
CLICK_GAP = (12.0, 0.7, 1.0)
CONVERSION_GAP = (240.0, 0.6, 30.0)


# Most trips stay in the traveller's country: destinations there weigh this much more.
DOMESTIC_BOOST = 10.0


def _lognormal(rng: np.random.Generator, median: float | np.ndarray, sigma: float, n: int) -> np.ndarray:
    return np.asarray(median) * np.exp(sigma * rng.standard_normal(n))


def _gap_ms(rng: np.random.Generator, gap: tuple[float, float, float], n: int) -> np.ndarray:
    median, sigma, minimum = gap
    seconds = np.maximum(_lognormal(rng, median, sigma, n), minimum)
    return np.minimum(seconds * 1000, GAP_CAP_MS).astype(np.int64)


def _segment_positions(lengths: np.ndarray) -> np.ndarray:
    """0, 1, ... within each segment of the given lengths, laid end to end."""
    starts = np.cumsum(lengths) - lengths
    return np.arange(int(lengths.sum())) - np.repeat(starts, lengths)


def _uint64(rng: np.random.Generator, n: int) -> np.ndarray:
    return rng.integers(0, np.iinfo(np.uint64).max, size=n, dtype=np.uint64, endpoint=True)


def _squeeze(
    rng: np.random.Generator, offset: np.ndarray, session: np.ndarray, first: np.ndarray, room: np.ndarray
) -> np.ndarray:
    """Shorten sessions whose last event is later than ``room`` ms after their start.

    Such a session ends at a random point of its room (30 % to 100 %), its gaps scaled
    alike, so sessions cut short by the end of a run do not all end at the same instant.
    Events stay at least 1 ms apart, in order.
    """
    n = len(first)
    span = np.maximum.reduceat(offset, first) if len(offset) else np.zeros(n, dtype=np.int64)
    limit = np.maximum(room, 0) * rng.uniform(0.3, 1.0, n)
    factor = np.where(span > limit, limit / np.maximum(span, 1), 1.0)
    scaled = np.floor(offset * factor[session]).astype(np.int64)
    position = _segment_positions(np.diff(np.append(first, len(offset))))
    # Strictly increasing within each session: a running maximum of (offset - position), per session.
    isolate = session.astype(np.int64) << 42
    return np.maximum.accumulate(scaled - position + isolate) - isolate + position


class SessionModel:
    """Draws sessions and their events for one run's settings and user pool."""

    def __init__(self, settings: Settings, site: Site, seed: int) -> None:
        """Prepare the tables the draws index into, and the seed's inventory."""
        self.settings = settings
        self.site = site
        self.seed = seed
        self.catalogue = build_catalogue(settings.season_strength)
        stream = np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed, spawn_key=(12,))))
        self.inventory = Inventory(stream, self.catalogue, self.catalogue.destination_country == "US")
        # Great-circle distance from each home city's airport to each destination's.
        self.city_airport = site.cities.airport
        # The airports the home cities fly from (rows of airports(), sorted), and each city's among them.
        self.origins, self.city_origin = np.unique(site.cities.airport, return_inverse=True)
        self.route_km = route_km(self.origins)
        to = destination_airports()
        self.dest_lat, self.dest_lon = airports()["latitude"].to_numpy()[to], airports()["longitude"].to_numpy()[to]
        self.airfare_scale = fare_scale(self.catalogue, settings.min_flight_km)  # on round_trip_fare's curve
        self.results = ResultModel(seed, settings, self.inventory, self.airfare_scale, self.origins)
        self.taxes = np.array([settings.taxes_by_product[p] for p in PRODUCTS])
        self.device_weights = np.array([settings.device_weights[d] for d in DEVICES])
        cities = site.cities
        self.city_country = cities.country.to_numpy().astype(str)
        # Countries as small integers (codes shared by cities and destinations), and each (month, home
        # country)'s destination CDF once computed: the draw then does no string work per slice.
        _, inverse = np.unique(
            np.concatenate([self.city_country, self.catalogue.destination_country.astype(str)]), return_inverse=True
        )
        self.city_country_code = inverse[: len(self.city_country)]
        self.destination_country_code = inverse[len(self.city_country) :]
        self._destination_cdfs: dict[tuple[int, int], np.ndarray] = {}
        # The destination a home city is (same name and country), or -1: nobody travels to their own city.
        index = {
            (c, name): i
            for i, (name, c) in enumerate(
                zip(self.catalogue.destination_names, self.catalogue.destination_country, strict=True)
            )
        }
        self.home_destination = np.array(
            [index.get((c, name), -1) for c, name in zip(self.city_country, cities.name.to_list(), strict=True)]
        )
        self.product_cdf = np.cumsum([settings.product_weights[p] for p in PRODUCTS])
        self.commission = np.array([settings.commission_by_product[p] for p in PRODUCTS])
        self.search_continue = 1.0 - 1.0 / settings.searches_per_session

    def _destinations(self, rng: np.random.Generator, month: np.ndarray, city: np.ndarray) -> np.ndarray:
        """Destinations by season and by the traveller's country, never the traveller's own city.

        Destinations in the traveller's own country weigh DOMESTIC_BOOST times more.
        """
        country = self.city_country_code[city]
        dest = np.empty(len(month), dtype=np.int32)
        u = rng.random(len(month))
        for m in np.unique(month):
            in_month = month == m
            for home in np.unique(country[in_month]):
                rows = in_month & (country == home)
                dest[rows] = pick(self._destination_cdf(int(m), int(home)), u[rows])
        clash = dest == self.home_destination[city]
        dest[clash] = (dest[clash] + 1) % len(self.catalogue.destination_names)
        return dest

    def _destination_cdf(self, month: int, home: int) -> np.ndarray:
        """The destination CDF of one month for travellers from one country (by code), cached."""
        key = (month, home)
        if key not in self._destination_cdfs:
            weights = self.catalogue.destination_weight_by_month[month] * np.where(
                self.destination_country_code == home, DOMESTIC_BOOST, 1.0
            )
            self._destination_cdfs[key] = np.cumsum(weights) / weights.sum()
        return self._destination_cdfs[key]

    def _result_numbers(self, product: np.ndarray, items: np.ndarray, origin: np.ndarray) -> np.ndarray:
        """The n of ``<prefix>_<n>`` of each item (-1 for none); one product and origin airport per row of ``items``."""
        numbers = np.full(items.shape, -1, dtype=np.int64)
        for p in range(len(PRODUCTS)):
            rows = np.flatnonzero(product == p)
            chosen = items[rows]
            stock = self.inventory.products[p]
            at = np.maximum(chosen, 0)
            where = origin[rows].reshape((-1,) + (1,) * (items.ndim - 1))
            got = result_numbers(p, stock.destination[at], stock.number[at], where)
            numbers[rows] = np.where(chosen >= 0, got, -1)
        return numbers

    def _offer_weight(self, clicks: Clicks, price_sensitivity: np.ndarray, lead_days: np.ndarray) -> np.ndarray:
        """A click's booking weight from what it offers: price against its page, quality, a near trip."""
        strength = self.settings.attractiveness_strength
        offer = np.exp(
            np.clip(
                strength
                * (-BOOKING["price"] * price_sensitivity * clicks.relative_price + BOOKING["quality"] * clicks.quality),
                -BOOKING["offer_bound"],
                BOOKING["offer_bound"],
            )
        )
        return offer * (1 + BOOKING["near_trip"] * np.exp(-np.maximum(lead_days, 0) / BOOKING["near_trip_days"]))

    def expected_events_per_session(self) -> float:
        """Mean events of a session: searches times (1 + CTR + CTR x CVR), with the cap on searches.

        A booking ends its session, so a session goes on past a search with probability
        ``search_continue`` times the chance that the search was not booked.
        """
        ctr, cvr = self.settings.click_through_rate, self.settings.conversion_rate
        q = self.search_continue * (1 - ctr * cvr)
        searches = (1 - q**MAX_SEARCHES) / (1 - q) if q < 1 else float(MAX_SEARCHES)
        return searches * (1 + ctr + ctr * cvr)

    def draw_visitors(
        self, rng: np.random.Generator, count: int, t0: int, t1: int, time_model: TimeModel | None
    ) -> tuple[np.ndarray, np.ndarray]:
        """``count`` one-off visits in [t0, t1) by people drawn by population: start times (sorted) and home cities.

        Candidates are drawn uniformly in time and thinned by the local rhythm (and calendar)
        of their city's group, so the kept ones follow it exactly; without a time model (live
        traffic at a fixed rate) every candidate is kept.
        """
        site = self.site
        if count <= 0:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int32)
        starts, cities = [], []
        kept = 0
        while kept < count:
            m = int((count - kept) * 2.6) + 16
            city = site.city(rng.random(m)).astype(np.int32)
            t = t0 + (rng.random(m) * (t1 - t0)).astype(np.int64)
            if time_model is None:
                keep = np.ones(m, dtype=bool)
            else:
                keep = rng.random(m) < time_model.acceptance(t, site.group_of_city[city])
            starts.append(t[keep])
            cities.append(city[keep])
            kept += int(keep.sum())
        start_all, city_all = np.concatenate(starts)[:count], np.concatenate(cities)[:count]
        order = np.argsort(start_all, kind="stable")
        return start_all[order], city_all[order]

    def simulate(
        self,
        rng: np.random.Generator,
        arrivals: Arrivals,
        journeys: Journeys,
        booking_factor: np.ndarray | None = None,
    ) -> tuple[EventTables, Outcome]:
        """Events of the sessions in ``arrivals`` (sorted by start), and what came of them.

        ``journeys`` holds each logged-in user's open trip (by ``arrivals.member``, their number
        in the batch); it is updated, so their later sessions continue it. Each session ends by its
        ``finish_by``: one that would run longer has its gaps shortened. A session books at
        most once: it ends with its booking, and the trip is closed. ``booking_factor``
        scales each session's chance of booking (the calendar's deal days).
        """
        s = self.settings
        cat = self.catalogue
        site = self.site
        start, user, member, city = arrivals.start, arrivals.user, arrivals.member, arrivals.city
        n = len(start)
        logged_in = member >= 0

        # Who: platform and device are a logged-in user's habit most of the time.
        platform, device = draw_platform_device(rng, n, site.platform_weights)
        habitual = logged_in & (rng.random(n) < HABIT_LOYALTY)
        platform = np.where(habitual, arrivals.platform, platform)
        device = np.where(habitual, arrivals.device, device)

        # The trip: product, destination (seasonal), dates, party; a returning user may go on with theirs.
        product_cdf = self.product_cdf / self.product_cdf[-1]
        product = pick(product_cdf, rng.random(n)).astype(np.int8)
        # A logged-in user's favourite product (drawn by the same shares, a hash of the user): some trips take it.
        favourite = pick(product_cdf, hash_unit(self.seed, 11, user)).astype(np.int8)
        product = np.where(logged_in & (rng.random(n) < PRODUCT_LOYALTY), favourite, product).astype(np.int8)
        month = (start.astype("datetime64[ms]").astype("datetime64[M]").astype(np.int64) % 12).astype(np.int64)
        dest = self._destinations(rng, month, city)
        # Nobody flies under MIN_FLIGHT_KM: a trip that near is a hotel stay or a car rental.
        cities = site.cities
        home_km = great_circle_km(
            cities.latitude[city], cities.longitude[city], self.dest_lat[dest], self.dest_lon[dest]
        )
        near = (product == FLIGHT) | (product == PACKAGE)
        near &= np.minimum(self.route_km[self.city_origin[city], dest], home_km) < s.min_flight_km
        product = np.where(near, np.where(rng.random(n) < SHORT_TRIP_CAR, CAR, HOTEL), product).astype(np.int8)
        lead = rng.gamma(LEAD_SHAPE, LEAD_SCALE, n)
        lead *= np.where(device == MOBILE, s.mobile_lead_factor, 1.0) * np.where(
            product == PACKAGE, LEAD_PACKAGE_FACTOR, 1
        )
        local = local_time(start, site.cities.timezone_code[city], site.cities.timezone_names)
        day = local // MS_PER_DAY
        template = cat.template_range[product, 0] + (
            rng.random(n) * (cat.template_range[product, 1] - cat.template_range[product, 0])
        ).astype(np.int64)
        # "Last minute" means within the week.
        lead = np.where(cat.template_last_minute[template], np.minimum(lead, rng.integers(0, 8, n)), lead)
        phone = device == MOBILE
        nights = _lognormal(rng, NIGHTS_MEDIAN, NIGHTS_SIGMA, n) * np.where(phone, PHONE_NIGHTS_FACTOR, 1.0)
        nights = np.maximum(np.round(nights), 1).astype(np.int64)
        # A month at most; the rare longer stays spread over one to four weeks rather than piling up at 30.
        nights = np.where(nights > 30, rng.integers(7, 31, n), nights)
        fresh = Trip(
            destination=dest,
            product=product,
            start_day=day + np.round(lead).astype(np.int64),
            nights=nights,
            travelers=(
                np.where(phone, pick(np.cumsum(PHONE_TRAVELERS), u := rng.random(n)), pick(np.cumsum(TRAVELERS), u)) + 1
            ).astype(np.int64),
            template=template,
        )
        trip, visits = journeys.assign(rng, member, day, fresh)
        dest, product, start_day = trip.destination, trip.product.astype(np.int8), trip.start_day
        nights, travelers, base_template = trip.nights, trip.travelers, trip.template
        utm = np.where(
            arrivals.returning, pick(cat.utm_returning_cdf, rng.random(n)), pick(cat.utm_new_cdf, rng.random(n))
        ).astype(np.int16)

        # Searches: 1 + geometric refinements, capped.
        if self.search_continue > 0:
            searches = np.minimum(rng.geometric(1 - self.search_continue, n), MAX_SEARCHES)
        else:
            searches = np.ones(n, dtype=np.int64)
        total = int(searches.sum())
        ss = np.repeat(np.arange(n), searches)  # session of each search
        j = _segment_positions(searches)
        later = j > 0
        template = np.where(
            later & (rng.random(total) < REPHRASE_RATE),
            cat.template_range[product[ss], 0]
            + (rng.random(total) * (cat.template_range[product[ss], 1] - cat.template_range[product[ss], 0])).astype(
                np.int64
            ),
            base_template[ss],
        )
        template = np.where(
            cat.template_last_minute[template] & (start_day[ss] - day[ss] > 7), base_template[ss], template
        )
        shift = np.where(later & (rng.random(total) < DATE_CHANGE_RATE), rng.integers(-3, 4, total), 0)
        s_start_day = start_day[ss] + shift
        s_start_day = np.maximum(s_start_day, day[ss])  # never before the local today
        # Trips end by the last date the settings allow: only a window's last months with a long lead reach it.
        s_start_day = np.minimum(s_start_day, LAST_TRIP_DAY - nights[ss])
        one_way = cat.template_one_way[template]
        s_end_day = np.where(one_way, -1, s_start_day + nights[ss])
        cheap = cat.template_cheap[template]
        # A traveller who filters hotels on 3 or 4 stars does so on every search of the session.
        session_stars = np.where(rng.random(n) < HOTEL_STAR_FILTER_RATE, rng.integers(3, 5, n), 0)
        # A logged-in user filters (or not) the same way every time: a hash of the user, at the same rate.
        user_stars = np.where(hash_unit(self.seed, 12, user) < HOTEL_STAR_FILTER_RATE,
                              3 + (hash_unit(self.seed, 13, user) < 0.5), 0)  # fmt: skip
        session_stars = np.where(logged_in, user_stars, session_stars)
        star_filter = np.where(cat.template_stars[template], 5, np.where(product[ss] == HOTEL, session_stars[ss], 0))
        # Next-page searches repeat the search before them, one page further.
        next_page = later & (rng.random(total) < NEXT_PAGE_RATE)
        source = np.maximum.accumulate(np.where(next_page, 0, np.arange(total)))
        template, s_start_day, s_end_day = template[source], s_start_day[source], s_end_day[source]
        star_filter, cheap = star_filter[source], cheap[source]

        # What each search finds in the inventory (the same whenever the same search is made), its
        # page, and the click: by rank and by what the page offers the user.
        s_city = city[ss]
        currency = site.cities.currency_code[s_city]
        asked = Searches(
            product=product[ss],
            destination=dest[ss],
            origin=self.city_airport[s_city],
            origin_index=self.city_origin[s_city],
            route_km=self.route_km[self.city_origin[s_city], dest[ss]],
            start_day=s_start_day,
            end_day=s_end_day,
            nights=nights[ss],
            travelers=travelers[ss],
            star_filter=star_filter,
            cheap=cheap,
            day=day[ss],
            rate=CURRENCY_RATE[currency],
        )
        found = self.results.find(asked)
        results, cap = found.count, found.cap
        pages = np.maximum(1, -(-results // s.page_size))
        page = np.minimum(np.arange(total) - source + 1, pages)
        shown = self.results.page(rng, asked, found, page)
        session_hex = _uint64(rng, n)
        price_sensitivity = (
            np.where(user >= 0, sensitivity(self.seed, s, 9, user), sensitivity(self.seed, s, 10, session_hex))
            * DEVICE_SENSITIVITY[device]
        )
        clicks = self.results.click(rng, asked, ss, shown, page, price_sensitivity[ss], s.attractiveness_strength)
        ci, position = clicks.search, clicks.position
        nc = len(ci)
        price = np.maximum(np.round(self.results.price(asked, found, ci, clicks.item) * asked.rate[ci], 2), 1.0)
        whole = WHOLE_UNITS[currency[ci]]
        price = np.where(whole, np.round(price), price)
        c_product = asked.product[ci]
        provider = np.empty(nc, dtype=np.int16)
        for p in range(len(PRODUCTS)):
            rows = c_product == p
            provider[rows] = self.inventory.products[p].provider[clicks.item[rows]]
        result_num = self._result_numbers(c_product, clicks.item, asked.origin[ci])
        impressions = self._result_numbers(asked.product, shown.items, asked.origin) if s.impressions else None

        # Conversions: at most one per session (it ends the session), none for a trip a later session goes on with.
        session_of_click = ss[ci]
        hour = (local // MS_PER_HOUR % 24)[session_of_click]
        chance = booking_chance(
            s.conversion_rate,
            session_of_click,
            booking_weights(
                visits.visit[session_of_click],
                visits.first_day[session_of_click],
                device[session_of_click],
                hour,
                s.journey_weights,
                self.device_weights,
                s.night_conversion_factor,
            )
            * (1.0 if booking_factor is None else booking_factor[session_of_click])
            * self._offer_weight(
                clicks, price_sensitivity[session_of_click], asked.start_day[ci] - day[session_of_click]
            )
            * np.where(device[session_of_click] == MOBILE, PHONE_PRODUCT_CONVERSION[c_product], 1.0)
            * ~visits.continued_later[session_of_click],
        )
        converted = rng.random(nc) < chance
        # The first booking of a session ends it: its later searches (and their clicks) are not made.
        first_booking = np.full(n, total, dtype=np.int64)
        np.minimum.at(first_booking, session_of_click[converted], ci[converted])
        kept_search = np.arange(total) <= first_booking[ss]
        kept_click = kept_search[ci]
        converted = converted[kept_click]
        ci = np.cumsum(kept_search)[ci[kept_click]] - 1
        position, price, provider, result_num = (a[kept_click] for a in (position, price, provider, result_num))
        c_product, whole, session_of_click = c_product[kept_click], whole[kept_click], session_of_click[kept_click]
        ss, j, template, s_start_day, s_end_day, results, page, star_filter, cap = (
            a[kept_search] for a in (ss, j, template, s_start_day, s_end_day, results, page, star_filter, cap)
        )
        total, nc = len(ss), len(ci)
        clicked = np.zeros(total, dtype=bool)
        clicked[ci] = True
        vi = np.flatnonzero(converted)
        # The booking: the clicked price plus taxes and fees; the site's commission is on the price.
        value = np.round(price[vi] * (1 + self.taxes[c_product[vi]]), 2)
        value = np.where(whole[vi], np.round(value), value)
        booking_session = session_of_click[vi]
        journeys.close(np.where(visits.last_of_user[booking_session], member[booking_session], -1))
        commission = np.round(price[vi] * self.commission[c_product[vi]], 2)
        commission = np.where(whole[vi], np.round(commission), commission)

        # Timeline: search, its click, its conversion, then the next search.
        per_search = 1 + clicked.astype(np.int64)
        per_search[ci[vi]] += 1
        kind = _segment_positions(per_search)  # 0 search, 1 click, 2 conversion
        ev_search = np.repeat(np.arange(total), per_search)
        ev_session = ss[ev_search]
        gap = np.zeros(len(kind), dtype=np.int64)
        is_search, is_click, is_conv = kind == 0, kind == 1, kind == 2
        gap[is_search] = np.where(j > 0, _gap_ms(rng, SEARCH_GAP, total), 0)
        gap[is_click] = _gap_ms(rng, CLICK_GAP, int(is_click.sum()))
        gap[is_conv] = _gap_ms(rng, CONVERSION_GAP, int(is_conv.sum()))
        elapsed = np.cumsum(gap)
        events_per_session = np.bincount(ev_session, minlength=n)
        session_first = np.cumsum(events_per_session) - events_per_session
        offset = elapsed - elapsed[session_first][ev_session]
        offset = _squeeze(rng, offset, ev_session, session_first, arrivals.finish_by - start)
        ts = start[ev_session] + offset

        event_hi, event_lo = _uint64(rng, len(kind)), _uint64(rng, len(kind))
        search_rows, click_rows, conv_rows = (np.flatnonzero(m) for m in (is_search, is_click, is_conv))
        outcome = Outcome(booked=np.bincount(booking_session, minlength=n) > 0)

        search = pl.DataFrame(
            {
                "ts": ts[search_rows],
                "id_hi": event_hi[search_rows],
                "id_lo": event_lo[search_rows],
                "user": user[ss],
                "session": session_hex[ss],
                "template": template.astype(np.int16),
                "dest": dest[ss],
                "origin": city[ss],
                "results": results,
                "page": page,
                "platform": platform[ss],
                "device": device[ss],
                "city": city[ss],
                "utm": utm[ss],
                "start_day": s_start_day.astype(np.int32),
                "end_day": s_end_day.astype(np.int32),
                "travelers": travelers[ss].astype(np.int8),
                "max_price": cap,
                "min_stars": star_filter.astype(np.int8),
            }
        )
        if impressions is not None:
            search = search.with_columns(pl.Series("shown", impressions[kept_search]))
        click = pl.DataFrame(
            {
                "ts": ts[click_rows],
                "id_hi": event_hi[click_rows],
                "id_lo": event_lo[click_rows],
                "user": user[ss[ci]],
                "session": session_hex[ss[ci]],
                "search_hi": event_hi[search_rows][ci],
                "search_lo": event_lo[search_rows][ci],
                "position": position,
                "result_num": result_num,
                "product": c_product,
                "price": price,
                "provider": provider,
                "dest": dest[ss[ci]],
            }
        )
        conversion = pl.DataFrame(
            {
                "ts": ts[conv_rows],
                "id_hi": event_hi[conv_rows],
                "id_lo": event_lo[conv_rows],
                "user": user[ss[ci[vi]]],
                "session": session_hex[ss[ci[vi]]],
                "click_hi": event_hi[click_rows][vi],
                "click_lo": event_lo[click_rows][vi],
                "value": value,
                "commission": commission,
                "currency": site.cities.currency_code[city[ss[ci[vi]]]],
                "product": c_product[vi],
                "provider": provider[vi],
            }
        )
        return EventTables(search, click, conversion), outcome


@dataclass
class Arrivals:
    """Sessions about to be simulated, sorted by start: who, from where, and by when they must end."""

    start: np.ndarray
    user: np.ndarray  # the n of user_<n>, or -1 for an anonymous session
    member: np.ndarray  # the user's number in their shard (given to the model: in the batch, from 0), or -1
    city: np.ndarray
    platform: np.ndarray  # the user's usual platform and device (anything for anonymous sessions)
    device: np.ndarray
    returning: np.ndarray  # not the visitor's first visit
    finish_by: np.ndarray  # the last millisecond a session may use

    def __len__(self) -> int:
        return len(self.start)

    @classmethod
    def concat(cls, parts: list[Arrivals]) -> Arrivals:
        """All parts' sessions, sorted by start (ties keep the order of the parts)."""
        merged = cls(*(np.concatenate([getattr(p, f.name) for p in parts]) for f in fields(cls)))
        order = np.argsort(merged.start, kind="stable")
        return cls(*(getattr(merged, f.name)[order] for f in fields(cls)))


@dataclass
class Outcome:
    """What each simulated session did that the users' lives depend on."""

    booked: np.ndarray
