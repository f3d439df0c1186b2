"""What a search finds and what a user clicks on it: matching items, their ranking, a click model with features.

A search looks in its destination's ranked list of the product (``inventory``), with its
filters applied: stars, seats for the party, a price cap, the route's service. The matching
items on the dates, less those sold out, are ``results_count``: the same whenever the same
search is made again. A page shows the next ``PAGE_SIZE`` of them in rank order, shuffled a
little for each search (``PAGE_JITTER``): sites vary their ranking to learn from clicks, and
the same item seen at different places is what lets an analyst tell position from appeal.

Clicks follow a position-based model: the user examines place k of the page with probability
``k^-CLICK_POSITION_DECAY`` and clicks an examined item with a probability that grows with its
attractiveness: its price against the rest of the page (weighed by the user's own price
sensitivity), and its quality. Both are scaled over each batch so that clicks / searches reads
``CLICK_THROUGH_RATE``; a search is clicked once at most.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..config import Settings
from .inventory import FLIGHT, NO_SERVICE, PACKAGE, ROUTE_SHARE, Inventory, TripTerms, hash_unit, round_trip_fare

BLOCK = 65_536  # searches whose pages are built and weighed at a time (arrays that stay in cache)
CHEAP_CAP = 0.75  # a "cheap" search caps the price at this share of the typical price on its list
# Each search's page is ordered by place + PAGE_JITTER * a standard normal (its own draw): an item
# moves a few places up or down from search to search, and stays on its page.
PAGE_JITTER = 2.0
AVAILABILITY = (0.6, 1.0)  # share of matching items still bookable on the dates (a hash of the dates)

# Attractiveness: logistic in the item's log price relative to the page's mean (times the user's
# price sensitivity) and its quality (standardised per destination).
ATTRACTION = {"intercept": -1.0, "price": 2.0, "quality": 0.6}
# A user's price sensitivity: PRICE_SENSITIVITY times exp(SPREAD * logistic noise), the same in
# every session of the user (a hash of the seed and the user).
SENSITIVITY_SPREAD = 0.3  # logistic noise cut at +-4: a user is at most e^1.2 = 3.3 times the mean
# A booking ends its session, and bookings come more from sessions whose searches are clicked more
# (good offers, near trips): in setting the click scale, a search's earlier clicks are counted as
# booking at this many times CONVERSION_RATE. Measured on seeded runs: at 1 clicks / searches read
# 0.2989 for 0.30 and 0.4955 for 0.50; at 1.6, 0.3007 and 0.4980 (200,000 events, CVR 0.2).
BOOKING_SURVIVAL = 1.6
# A booking: the click's chance grows for a cheaper price against the page and better quality
# (the exponent bounded at +-offer_bound, so no user books again and again on price alone), and
# for a trip that leaves soon (a near trip is a decided trip): times 1 + near_trip * exp(-days ahead / near_trip_days).
BOOKING = {"price": 3.0, "quality": 0.5, "offer_bound": 2.0, "near_trip": 2.5, "near_trip_days": 10.0}


def zero_result_share(settings: Settings) -> float:
    """The share of searches that find nothing: ZERO_RESULT_RATE, or less where the click-through rate leaves no room.

    Zero-result searches get no click, so a click-through rate of 1 allows none.
    """
    return min(settings.zero_result_rate, 1.0 - settings.click_through_rate)


def sensitivity(seed: int, settings: Settings, kind: int, key: np.ndarray) -> np.ndarray:
    """Price sensitivity of users (or, by another ``kind``, anonymous sessions): the same for the same key."""
    u = hash_unit(seed, kind, key)
    logit = np.clip(np.log(np.maximum(u, 1e-12) / np.maximum(1 - u, 1e-12)), -4.0, 4.0)  # within 1 in 55 either way
    return settings.price_sensitivity * np.exp(SENSITIVITY_SPREAD * logit)


@dataclass
class Searches:
    """A batch of searches' terms, one value per search."""

    product: np.ndarray
    destination: np.ndarray
    origin: np.ndarray  # the home city's airport (row of reference.airports())
    origin_index: np.ndarray  # the same airport among the run's origins
    route_km: np.ndarray
    start_day: np.ndarray
    end_day: np.ndarray  # -1 for one way
    nights: np.ndarray
    travelers: np.ndarray
    star_filter: np.ndarray
    cheap: np.ndarray
    day: np.ndarray  # the searcher's local day
    rate: np.ndarray  # units of the searcher's currency per US dollar


@dataclass
class Found:
    """What each search found: its count, the ranked list it read, its price cap and how it applies."""

    count: np.ndarray  # results_count
    row: np.ndarray  # the ranked list (a row of the product's lists) the search looked in
    cap: np.ndarray  # the price cap in the searcher's currency, NaN for none
    level: np.ndarray  # the list's price step a cap rounds down to (hotels, cars, flights), -1 for none
    factor: np.ndarray  # US dollars per unit of base price (hotels, cars, flights)
    capped: np.ndarray  # capped package searches: their matching items in rank order (-1 after)
    capped_rows: np.ndarray  # the row of ``capped`` of each capped package search
    terms: TripTerms  # what prices each search's results


@dataclass
class Shown:
    """Each search's page: the items at each place (-1 for none), and what users see of them."""

    items: np.ndarray
    shown: np.ndarray  # an item is at the place
    log_price: np.ndarray  # the log of its price, up to a constant per search (which the page's mean takes out)
    quality: np.ndarray


@dataclass
class Clicks:
    """The click of each clicked search: which search, at which rank, on which item, at what price."""

    search: np.ndarray
    position: np.ndarray  # rank, from 1
    item: np.ndarray
    relative_price: np.ndarray  # log price against the mean log price of its page
    quality: np.ndarray


class ResultModel:
    """Finds results and draws clicks for one run's inventory."""

    def __init__(self, seed: int, settings: Settings, inventory: Inventory, fare_scale: float,
                 origins: np.ndarray) -> None:  # fmt: skip
        """Keep what the draws need; ``origins`` are the airports (rows of ``airports()``) users fly from.

        Each route (origin, destination) flies a share of the destination's offers, or none: a
        hash of the seed and the route, so the same for any markets.
        """
        self.seed = seed
        self.settings = settings
        self.inventory = inventory
        self.fare_scale = fare_scale
        destinations = np.arange(len(inventory.catalogue.destination_names))[None, :]
        low, high = ROUTE_SHARE
        self.route_share = low + (high - low) * hash_unit(seed, 3, origins[:, None], destinations)
        self.route_served = hash_unit(seed, 4, origins[:, None], destinations) >= NO_SERVICE

    def terms(self, s: Searches) -> TripTerms:
        """The terms that price a search's results."""
        return TripTerms(
            destination=s.destination,
            start_day=s.start_day,
            nights=s.nights,
            travelers=s.travelers,
            one_way=s.end_day < 0,
            fare=round_trip_fare(s.route_km, self.fare_scale),
            day=s.day,
        )

    def find(self, s: Searches) -> Found:
        """What each search finds: the same whenever the same search is made (within a batch)."""
        n = len(s.product)
        found = Found(
            count=np.zeros(n, dtype=np.int64),
            row=np.zeros(n, dtype=np.int64),
            cap=np.full(n, np.nan),
            level=np.full(n, -1, dtype=np.int64),
            factor=np.zeros(n),
            capped=np.zeros((0, 0), dtype=np.int64),
            capped_rows=np.zeros(n, dtype=np.int64),
            terms=self.terms(s),
        )
        zero_rate = zero_result_share(self.settings)
        packages: list[tuple[np.ndarray, np.ndarray]] = []
        for product in range(4):
            sub = np.flatnonzero(s.product == product)
            if len(sub):
                packages += self._match(s, sub, product, False, found)
        natural = found.count == 0
        z0 = float(natural.mean()) if n else 0.0
        if z0 > zero_rate:
            # More searches find nothing by their filters than ZERO_RESULT_RATE allows: the site
            # shows near matches (filters dropped) for a share of them, the same for the same search.
            same = hash_unit(self.seed, 6, s.product, s.destination, s.origin, s.start_day, s.end_day,
                             s.travelers, s.star_filter, s.cheap)  # fmt: skip
            relax = natural & (same < (z0 - zero_rate) / z0)
            for product in range(4):
                sub = np.flatnonzero(relax & (s.product == product))
                if len(sub):
                    packages += self._match(s, sub, product, True, found)
        # Dates sold out at a destination (the whole product), so that zero results average the setting.
        # The dates sold out are those with the lowest hash, as many as make the share exact in the batch.
        missing = round(zero_rate * n) - int((found.count == 0).sum())
        if missing > 0:
            date_hash = hash_unit(self.seed, 5, s.product, s.destination, s.start_day)
            date_hash[found.count == 0] = 2.0
            threshold = np.partition(date_hash, missing - 1)[missing - 1]
            found.count[date_hash <= threshold] = 0
        if packages:
            rows = np.concatenate([r for r, _ in packages])
            found.capped = np.concatenate([m for _, m in packages])
            found.capped_rows[rows] = np.arange(len(rows))
        return found

    def _match(self, s: Searches, sub: np.ndarray, product: int, relaxed: bool,
               found: Found) -> list[tuple[np.ndarray, np.ndarray]]:  # fmt: skip
        """Fill ``found`` for searches ``sub`` of one product; capped package searches' matches are returned."""
        inv = self.inventory
        items = inv.products[product]
        found.cap[sub], found.level[sub] = np.nan, -1
        stars = np.zeros(len(sub), dtype=np.int64) if relaxed else s.star_filter[sub]
        party = np.minimum(s.travelers[sub], 4) if relaxed else s.travelers[sub]
        row = inv.list_row(product, s.destination[sub], stars, party)
        length = items.lengths[row]
        if product in (FLIGHT, PACKAGE):
            # A route flies a share of the destination's offers (the best ranked); a few have no service.
            origin, dest = s.origin_index[sub], s.destination[sub]
            served = relaxed | self.route_served[origin, dest]
            length = np.where(served, np.ceil(length * self.route_share[origin, dest]), 0).astype(np.int64)
        matching = length.copy()
        terms = found.terms.take(sub)
        extra: list[tuple[np.ndarray, np.ndarray]] = []
        cheap = s.cheap[sub] & ~relaxed
        if product != PACKAGE:
            factor = inv.search_factor(self.seed, product, terms)
            found.factor[sub] = factor
        if cheap.any():
            c = np.flatnonzero(cheap)
            rate = s.rate[sub[c]]
            if product == PACKAGE:
                lists = items.lists[row[c]]
                valid = np.arange(lists.shape[1])[None, :] < length[c][:, None]
                local = inv.package_prices(self.seed, lists, terms.take(c)) * rate[:, None]
                typical = np.exp(np.where(valid, np.log(local), 0).sum(1) / np.maximum(valid.sum(1), 1))
                limit = np.maximum(np.round(typical * CHEAP_CAP, -1), 10.0)
                ok = valid & (local <= limit[:, None])
                order = np.argsort(~ok, axis=1, kind="stable")
                extra.append(
                    (sub[c], np.where(np.take_along_axis(ok, order, 1), np.take_along_axis(lists, order, 1), -1))
                )
                matching[c] = ok.sum(1)
            else:
                # The cap: CHEAP_CAP of the list's typical price; the site filters in price steps, so the
                # items shown are those at or under the highest step within the cap.
                local_factor = factor[c] * rate
                limit = np.maximum(np.round(items.typical[row[c]] * local_factor * CHEAP_CAP, -1), 10.0)
                steps = items.thresholds[row[c]] * local_factor[:, None]
                level = (steps <= limit[:, None]).sum(1) - 1
                ranks = items.levels[row[c], np.maximum(level, 0)]
                matching[c] = np.where(level >= 0, (ranks < length[c][:, None]).sum(1), 0)
                found.level[sub[c]] = level
            found.cap[sub[c]] = limit
        low, high = AVAILABILITY
        available = low + (high - low) * hash_unit(self.seed, 2, product, s.destination[sub], s.start_day[sub],
                                                   s.end_day[sub])  # fmt: skip
        found.count[sub] = np.floor(matching * available).astype(np.int64)  # the last few can sell out
        found.row[sub] = row
        return extra

    def page(self, rng: np.random.Generator, s: Searches, found: Found, page: np.ndarray) -> Shown:
        """The items each search shows on its page ((n, PAGE_SIZE), -1 after), and what users see.

        Best first, up to each search's own jitter (``PAGE_JITTER``).
        """
        size = self.settings.page_size
        n = len(page)
        ranks = ((page - 1) * size)[:, None] + np.arange(size)[None, :]
        shown = ranks < found.count[:, None]
        shown_rows = found.count > 0
        items = np.full((n, size), -1, dtype=np.int64)
        log_price = np.zeros((n, size))
        quality = np.zeros((n, size))
        for first, product in ((f, p) for f in range(0, n, BLOCK) for p in range(4)):
            block = slice(first, first + BLOCK)
            sub = first + np.flatnonzero((s.product[block] == product) & shown_rows[block])
            if not len(sub):
                continue
            stock = self.inventory.products[product]
            rank = ranks[sub]
            capped = ~np.isnan(found.cap[sub])
            longest = stock.lists.shape[1]
            list_rank = np.minimum(rank, longest - 1)
            if product == PACKAGE:
                picked = stock.lists.ravel()[found.row[sub][:, None] * longest + list_rank]
                if capped.any():
                    matches = found.capped[found.capped_rows[sub[capped]]]
                    picked[capped] = np.take_along_axis(matches, np.minimum(rank[capped], matches.shape[1] - 1), 1)
                picked[~shown[sub]] = -1
                prices = self.inventory.package_prices(self.seed, picked, found.terms.take(sub))
                log_price[sub] = np.log(prices)
            else:
                if capped.any():
                    c = sub[capped]
                    steps = stock.levels[found.row[c], np.maximum(found.level[c], 0)]
                    list_rank[capped] = np.minimum(np.take_along_axis(steps, list_rank[capped], 1), longest - 1)
                picked = stock.lists.ravel()[found.row[sub][:, None] * longest + list_rank]
                picked[~shown[sub]] = -1
                # Within a search these prices are their base prices times one factor: the log of the
                # base stands for the log of the price wherever only prices against each other count.
                log_price[sub] = stock.log_base[picked]
            items[sub] = picked
            quality[sub] = stock.quality[picked]
        for first in range(0, n, BLOCK):
            block = slice(first, first + BLOCK)
            key = np.arange(size, dtype=np.float32) + PAGE_JITTER * rng.standard_normal(
                (len(items[block]), size), dtype=np.float32
            )
            key[~shown[block]] = np.inf  # places with no item stay at the end
            order = np.argsort(key, axis=1)
            for values in (items, log_price, quality):
                values[block] = np.take_along_axis(values[block], order, 1)
        return Shown(items, shown, log_price, quality)

    def price(self, s: Searches, found: Found, search: np.ndarray, item: np.ndarray) -> np.ndarray:
        """The US-dollar price of one shown ``item`` for each of the searches ``search``."""
        usd = np.zeros(len(search))
        for product in range(4):
            rows = np.flatnonzero(s.product[search] == product)
            chosen, at = item[rows], search[rows]
            if product == PACKAGE:
                usd[rows] = self.inventory.package_prices(self.seed, chosen[:, None], found.terms.take(at))[:, 0]
            else:
                usd[rows] = self.inventory.products[product].base[chosen] * found.factor[at]
        return usd

    def click(
        self,
        rng: np.random.Generator,
        s: Searches,
        session: np.ndarray,
        shown: Shown,
        page: np.ndarray,
        sensitivity: np.ndarray,
        strength: float,
    ) -> Clicks:
        """At most one click per search, by position and attractiveness, scaled so clicks / searches reads the rate.

        ``session`` numbers each search's session (searches come grouped by session, in order).
        """
        size = self.settings.page_size
        # A user examines a page from its top: a next page asked for is looked at as the first was.
        examined = np.arange(1, size + 1, dtype=np.float64) ** -self.settings.click_position_decay
        mean_log = (shown.log_price * shown.shown).sum(1) / np.maximum(shown.shown.sum(1), 1)

        def weights(rows: slice | np.ndarray) -> np.ndarray:
            """The click weight of each place on some searches' pages: examined / (1 + exp(-logit)).

            The logit: intercept + strength * (-price * sensitivity * (log price - page mean) + quality * quality).
            """
            weight = shown.log_price[rows] - mean_log[rows, None]
            weight *= (ATTRACTION["price"] * strength * sensitivity[rows])[:, None]
            weight -= (ATTRACTION["quality"] * strength) * shown.quality[rows]
            weight -= ATTRACTION["intercept"]
            np.exp(weight, out=weight)
            weight += 1.0
            np.divide(examined, weight, out=weight)
            weight *= shown.shown[rows]
            return weight

        # In blocks of searches: a live run's first batch (its minute of warm-up) is large.
        blocks = [weights(slice(f, f + BLOCK)).sum(1) for f in range(0, len(mean_log), BLOCK)]
        total = np.concatenate(blocks) if blocks else np.zeros(0)
        # A booking ends its session, so a search is made only if no earlier one of its session booked:
        # the scale is set over the searches weighted by their chance of being made (two rounds).
        rate, booking = self.settings.click_through_rate, min(BOOKING_SURVIVAL * self.settings.conversion_rate, 0.999)
        made = np.ones(len(total))
        runs = session_runs(session)
        for _ in range(2):
            chance = np.minimum(1.0, scale_to_rate(total, rate, made) * total)
            made = chance_made(np.log1p(-chance * booking), runs)
        chance = np.minimum(1.0, scale_to_rate(total, rate, made) * total)
        clicked = np.flatnonzero(rng.random(len(total)) < chance)
        cdf = np.cumsum(weights(clicked), axis=1)
        k = (rng.random(len(clicked)) * cdf[:, -1])[:, None] >= cdf
        column = np.minimum(k.sum(1), shown.shown[clicked].sum(1) - 1)
        return Clicks(
            search=clicked,
            position=(page[clicked] - 1) * size + column + 1,
            item=shown.items[clicked, column],
            relative_price=shown.log_price[clicked, column] - mean_log[clicked],
            quality=shown.quality[clicked, column],
        )


def scale_to_rate(weight: np.ndarray, rate: float, share: np.ndarray) -> float:
    """The factor that makes the mean of min(1, factor * weight), each counted ``share`` times, read ``rate``.

    Or come as near as it can: with too few weights above 0, every one of them becomes certain.
    """
    if not len(weight) or weight.max() <= 0:
        return 0.0
    target = rate * share.sum()
    if target >= share[weight > 0].sum():
        return float(1.0 / weight[weight > 0].min())
    # f(x) = sum(share * min(1, x * weight)) is concave and f(0) = 0, so x * target / f(x) rises
    # towards the answer from below without passing it; few weights are capped, so it is there fast.
    weighted = share * weight
    scale = target / float(weighted.sum())
    for _ in range(100):
        reached = float(np.minimum(share, scale * weighted).sum())
        if reached >= target * (1 - 1e-9):
            break
        scale *= target / reached
    return scale


def session_runs(session: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Where each session's rows start, and how many they are (rows grouped by session, in order)."""
    if not len(session):
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    first = np.flatnonzero(np.r_[True, session[1:] != session[:-1]])
    return first, np.diff(np.r_[first, len(session)])


def chance_made(log_not_booked: np.ndarray, runs: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """Each row's chance that no earlier row of its session booked, from the log of each row's chance of not booking.

    ``runs`` are the sessions' rows (:func:`session_runs`).
    """
    first, lengths = runs
    if not len(first):
        return np.ones(0)
    before = np.cumsum(log_not_booked) - log_not_booked
    return np.exp(before - np.repeat(before[first], lengths))
