"""The inventory's answer key: every item the site sells for a seed, with what the click model knows of it.

Written as ``items.jsonl`` beside the event files, one JSON object per item, products in
:data:`~src.config.PRODUCTS` order and each product's items by destination and number. A
click's ``result_id`` joins to it: hotels and cars by ``result_id``; flights and packages,
whose id also names the origin airport (``<prefix>_<origin * 1,000,000 + item_number>``, the
origin decoded by the manifest's ``parameters.origin_airports``), by ``type`` and
``item_number``. The file depends on the seed alone (and the settings that shape the
catalogue), not on the count, window or markets.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl

from ..config import PRODUCTS
from ..reference import RESULT_PREFIX
from ..simulation.inventory import CAR, CAR_CLASSES, FLIGHT, HOTEL, PACKAGE, Inventory, item_numbers
from .answer_key import KeyWritten, write_key

ITEMS_FILE = "items.jsonl"

# The fields of a line, in order, and their types: null where a field does not apply to the item's type.
SCHEMA = {
    "seed": pl.Int64,
    "type": pl.String,
    "item_number": pl.Int64,
    "result_id": pl.String,  # hotels and cars; a flight's or package's depends on the origin
    "destination": pl.String,
    "provider": pl.String,
    "rank": pl.Int64,  # from 1, in the destination's unfiltered ranked list of the product
    "base_price_usd": pl.Float64,  # hotel: a room night; car: a day
    "fare_factor": pl.Float64,  # flight: the multiplier on the route's typical fare
    "discount": pl.Float64,  # package: the multiplier on its flight and stay together
    "quality": pl.Float64,  # standardised per destination, as the click and booking models see it
    "popularity": pl.Float64,
    "stars": pl.Int64,
    "review_score": pl.Float64,
    "car_class": pl.String,
    "seats": pl.Int64,
    "stops": pl.Int64,
    "hotel_item_number": pl.Int64,
    "flight_item_number": pl.Int64,
}


def _product_columns(inventory: Inventory, product: int) -> dict[str, np.ndarray | pl.Series]:
    """What only items of ``product`` have, as whole columns."""
    items = inventory.products[product]
    if product == HOTEL:
        return {"base_price_usd": items.base.round(2), "stars": items.feature, "review_score": inventory.hotel_review}
    if product == CAR:
        names = pl.Series([name for name, *_ in CAR_CLASSES])
        return {
            "base_price_usd": items.base.round(2),
            "car_class": names.gather(inventory.car_class.astype(np.int64)),
            "seats": items.feature,
        }
    if product == FLIGHT:
        return {"fare_factor": items.base.round(4), "stops": items.feature}
    hotel, flight = inventory.hotel, inventory.flight
    h, f = inventory.package_hotel, inventory.package_flight
    return {
        "discount": inventory.package_discount.round(4),
        "hotel_item_number": item_numbers(hotel.destination[h], hotel.number[h]),
        "flight_item_number": item_numbers(flight.destination[f], flight.number[f]),
    }


def items_frame(seed: int, inventory: Inventory) -> pl.DataFrame:
    """Every item of ``inventory`` (the seed's) in the form it is written: a block of whole columns per product."""
    destinations = pl.Series(inventory.catalogue.destination_names)
    providers = pl.Series(inventory.catalogue.providers)
    blocks = []
    for product, name in enumerate(PRODUCTS):
        items = inventory.products[product]
        number = item_numbers(items.destination, items.number)
        columns: dict[str, np.ndarray | pl.Series] = {
            "item_number": number,
            "destination": destinations.gather(items.destination.astype(np.int64)),
            "provider": providers.gather(items.provider.astype(np.int64)),
            "rank": items.ranks(),
            "quality": items.quality.round(4),
            "popularity": items.popularity.round(4),
            **_product_columns(inventory, product),
        }
        frame = pl.DataFrame(columns).with_columns(pl.lit(seed).alias("seed"), pl.lit(name).alias("type"))
        if product not in (FLIGHT, PACKAGE):
            frame = frame.with_columns(pl.format(f"{RESULT_PREFIX[name]}_{{}}", "item_number").alias("result_id"))
        blocks.append(
            frame.select(
                (pl.col(c) if c in frame.columns else pl.lit(None)).cast(kind).alias(c) for c, kind in SCHEMA.items()
            )
        )
    return pl.concat(blocks)


def write_items(directory: Path, seed: int, inventory: Inventory, overwrite: bool) -> KeyWritten | None:
    """Write (or, appending a run, add to) ``items.jsonl`` with the items of ``seed``'s ``inventory``.

    See :func:`~src.output.answer_key.write_key` for a failed write (WriteFailed naming the
    file, whole lines left).
    """
    return write_key(directory, ITEMS_FILE, items_frame(seed, inventory), overwrite)
