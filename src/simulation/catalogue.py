"""The site's catalogue flattened for the simulation: query templates, providers, channels, destinations.

Reference tables name things; here they become arrays indexed by integer codes, so the
simulation draws codes and the encoder turns them back into text.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..config import PRODUCTS
from ..reference import CHANNELS, PROVIDERS, QUERY_TEMPLATES, destinations, template_flags

# Monthly popularity of destinations by kind, January first (Kayak, Google Flights: winter sun
# for Cancun, Punta Cana, Orlando, Miami, Hawaii; summer for Seattle, Las Vegas, Vancouver).
SEASONS = {
    "beach": [1.5, 1.5, 1.4, 1.1, 0.8, 0.7, 0.7, 0.7, 0.7, 0.8, 1.0, 1.3],
    "summer": [0.6, 0.6, 0.7, 0.9, 1.1, 1.4, 1.6, 1.5, 1.1, 0.8, 0.6, 0.7],
    "ski": [1.6, 1.5, 1.2, 0.6, 0.4, 0.4, 0.5, 0.5, 0.5, 0.7, 1.1, 1.5],
    "city": [0.9, 0.9, 1.0, 1.0, 1.1, 1.1, 1.1, 1.0, 1.0, 1.1, 0.9, 1.0],
}


@dataclass(frozen=True)
class Catalogue:
    """Static tables flattened for lookups by integer code."""

    templates: tuple[str, ...]  # every query template, product after product
    template_range: np.ndarray  # [first, end) template code per product
    template_cheap: np.ndarray
    template_stars: np.ndarray
    template_one_way: np.ndarray
    template_last_minute: np.ndarray
    providers: tuple[str, ...]
    provider_cdf: list[np.ndarray]  # per product, over its providers
    provider_first: np.ndarray  # first provider code per product
    utm: tuple[tuple[str | None, str | None, str | None], ...]  # (source, medium, campaign) per code
    utm_new_cdf: np.ndarray
    utm_returning_cdf: np.ndarray
    destination_names: tuple[str, ...]
    destination_price: np.ndarray
    destination_country: np.ndarray  # ISO code per destination
    destination_weight_by_month: np.ndarray  # 12 x destinations, not normalised
    destination_season: np.ndarray  # 12 x destinations: the month's popularity against the year's (mean 1)


def build_catalogue(season_strength: float = 1.0) -> Catalogue:
    """Flatten the reference tables into arrays the simulation can index.

    ``season_strength`` scales how far each month's popularity of a destination departs from 1.
    """
    templates: list[str] = []
    ranges: list[tuple[int, int]] = []
    for product in PRODUCTS:
        ranges.append((len(templates), len(templates) + len(QUERY_TEMPLATES[product])))
        templates.extend(QUERY_TEMPLATES[product])
    flags = np.array([template_flags(t) for t in templates])
    providers: list[str] = []
    provider_cdf, provider_first = [], []
    for product in PRODUCTS:
        provider_first.append(len(providers))
        names, weights = zip(*PROVIDERS[product], strict=True)
        providers.extend(names)
        provider_cdf.append(np.cumsum(weights) / np.sum(weights))
    utm, new, returning = [], [], []
    for channel in CHANNELS:
        for campaign in channel.campaigns:
            utm.append((channel.source, channel.medium, campaign))
            new.append(channel.new_share / len(channel.campaigns))
            returning.append(channel.returning_share / len(channel.campaigns))
    dest = destinations()
    season = 1 + season_strength * (np.array([SEASONS[kind] for kind in dest["kind"]]).T - 1)  # 12 x destinations
    by_month = season * dest["weight"].to_numpy()[None, :]
    return Catalogue(
        templates=tuple(templates),
        template_range=np.array(ranges),
        template_cheap=flags[:, 0],
        template_stars=flags[:, 1],
        template_one_way=flags[:, 2],
        template_last_minute=np.array(["last minute" in t for t in templates]),
        providers=tuple(providers),
        provider_cdf=provider_cdf,
        provider_first=np.array(provider_first),
        utm=tuple(utm),
        utm_new_cdf=np.cumsum(new) / np.sum(new),
        utm_returning_cdf=np.cumsum(returning) / np.sum(returning),
        destination_names=tuple(dest["name"]),
        destination_price=dest["price_index"].to_numpy().astype(np.float64),
        destination_country=dest["country"].to_numpy().astype(str),
        destination_weight_by_month=by_month,
        destination_season=season,
    )
