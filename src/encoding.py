"""Turn column tables into JSON lines: codes become text only here, a whole batch at a time.

The column order of each output frame is the field order of its model in ``models.py``;
polars writes the frame as newline-delimited JSON in native code.
"""

from __future__ import annotations

import io

import numpy as np
import polars as pl

from .config import DEVICES, PLATFORMS, PRODUCTS
from .models import EVENT_MODELS
from .reference import CURRENCIES, RESULT_PREFIX, CityTable
from .sessions import Catalogue
from .tables import EncodedBatch, EventTables

_HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
_TIMESTAMP = "%Y-%m-%dT%H:%M:%S%.3fZ"


def _hex_bytes(words: np.ndarray) -> np.ndarray:
    """Lowercase hex digits of big-endian uint64 words: an (n, 16 * words) uint8 array of ASCII."""
    raw = np.ascontiguousarray(words.astype(">u8")).view(np.uint8).reshape(len(words), -1)
    out = np.empty((raw.shape[0], raw.shape[1] * 2), dtype=np.uint8)
    out[:, 0::2] = _HEX[raw >> 4]
    out[:, 1::2] = _HEX[raw & 15]
    return out


def _ascii_series(name: str, chars: np.ndarray) -> pl.Series:
    """A string Series from an (n, width) array of ASCII bytes."""
    width = chars.shape[1]
    return pl.Series(name, np.ascontiguousarray(chars).view(f"S{width}").ravel()).cast(pl.String)


def uuid_series(name: str, hi: pl.Series, lo: pl.Series) -> pl.Series:
    """Version-4 UUID text from two columns of random 64-bit words (version and variant bits set here)."""
    hi_words = (hi.to_numpy() & np.uint64(0xFFFFFFFFFFFF0FFF)) | np.uint64(0x4000)
    lo_words = (lo.to_numpy() & np.uint64(0x3FFFFFFFFFFFFFFF)) | np.uint64(0x8000000000000000)
    digits = _hex_bytes(np.stack([hi_words, lo_words], axis=1).ravel()).reshape(len(hi), 32)
    out = np.full((len(hi), 36), ord("-"), dtype=np.uint8)
    for start, end, at in ((0, 8, 0), (8, 12, 9), (12, 16, 14), (16, 20, 19), (20, 32, 24)):
        out[:, at : at + end - start] = digits[:, start:end]
    return _ascii_series(name, out)


def session_series(words: pl.Series) -> pl.Series:
    """``sess_`` and 16 hex digits per session word."""
    prefix = np.broadcast_to(np.frombuffer(b"sess_", dtype=np.uint8), (len(words), 5))
    return _ascii_series("session_id", np.hstack([prefix, _hex_bytes(words.to_numpy())]))


def _timestamps(ts: pl.Series) -> pl.Series:
    return ts.cast(pl.Datetime("ms")).dt.to_string(_TIMESTAMP).alias("timestamp")


def _user_ids(user: pl.Series) -> pl.Series:
    return (
        pl.DataFrame({"u": user})
        .select(pl.when(pl.col("u") >= 0).then(pl.format("user_{}", pl.col("u"))).alias("user_id"))
        .to_series()
    )


def _lookup(name: str, values: tuple[str | None, ...] | pl.Series, codes: pl.Series) -> pl.Series:
    table = values if isinstance(values, pl.Series) else pl.Series(values, dtype=pl.String)
    return table.gather(codes.cast(pl.Int64)).alias(name)


class Encoder:
    """Encodes event tables into JSONL bytes for one run's catalogue and city table."""

    def __init__(self, catalogue: Catalogue, cities: CityTable) -> None:
        """Keep the lookup tables that turn codes into text."""
        self.catalogue = catalogue
        self.cities = cities
        self.utm = [pl.Series([row[i] for row in catalogue.utm], dtype=pl.String) for i in range(3)]
        self.prefixes = tuple(RESULT_PREFIX[p] for p in PRODUCTS)

    def frame(self, event_type: str, table: pl.DataFrame) -> pl.DataFrame:
        """The output columns of one event type, in the model's field order."""
        common = [
            uuid_series("event_id", table["id_hi"], table["id_lo"]),
            pl.repeat(event_type, table.height, eager=True, dtype=pl.String).alias("event_type"),
            _timestamps(table["ts"]),
            _user_ids(table["user"]),
            session_series(table["session"]),
        ]
        columns = common + getattr(self, f"_{event_type}")(table)
        frame = pl.DataFrame(columns)
        assert frame.columns == list(EVENT_MODELS[event_type].model_fields), frame.columns
        return frame

    def encode(self, event_type: str, table: pl.DataFrame) -> bytes:
        """JSON lines of one event type, each ending in a newline; empty bytes for no rows."""
        if table.height == 0:
            return b""
        buffer = io.BytesIO()
        self.frame(event_type, table).write_ndjson(buffer)
        return buffer.getvalue()

    def encode_all(self, tables: EventTables) -> EncodedBatch:
        """JSON lines per event type, with counts and times for the publishers."""
        return EncodedBatch(
            lines={event_type: self.encode(event_type, table) for event_type, table in tables.items()},
            counts=tables.counts(),
            stamps={event_type: table["ts"].to_numpy() for event_type, table in tables.items()},
        )

    def _search(self, t: pl.DataFrame) -> list[pl.Series]:
        cat, cities = self.catalogue, self.cities
        query = (
            pl.DataFrame(
                [
                    _lookup("t", cat.templates, t["template"]),
                    _lookup("d", cat.destination_names, t["dest"]),
                    cities.name.gather(t["origin"].cast(pl.Int64)).alias("o"),
                ]
            )
            .select(
                pl.col("t")
                .str.replace("{dest}", pl.col("d"), literal=True)
                .str.replace("{origin}", pl.col("o"), literal=True)
                .alias("query")
            )
            .to_series()
        )
        city = t["city"].cast(pl.Int64)
        geo = pl.DataFrame([cities.country.gather(city).alias("country"), cities.name.gather(city).alias("city")])
        filters = t.select(
            pl.col("start_day").cast(pl.Date).dt.to_string("%Y-%m-%d").alias("start_date"),
            pl.when(pl.col("end_day") >= 0)
            .then(pl.col("end_day").cast(pl.Date).dt.to_string("%Y-%m-%d"))
            .alias("end_date"),
            pl.col("travelers").cast(pl.Int64),
            pl.col("max_price").fill_nan(None),
            pl.when(pl.col("min_stars") > 0).then(pl.col("min_stars").cast(pl.Int64)).alias("min_stars"),
        )
        return [
            query,
            t["results"].alias("results_count"),
            t["page"].alias("page"),
            _lookup("platform", PLATFORMS, t["platform"]),
            _lookup("device_type", DEVICES, t["device"]),
            geo.to_struct("geo"),
            self.utm[0].gather(t["utm"].cast(pl.Int64)).alias("utm_source"),
            self.utm[1].gather(t["utm"].cast(pl.Int64)).alias("utm_medium"),
            self.utm[2].gather(t["utm"].cast(pl.Int64)).alias("utm_campaign"),
            filters.to_struct("filters"),
        ]

    def _click(self, t: pl.DataFrame) -> list[pl.Series]:
        cat = self.catalogue
        result_id = (
            pl.DataFrame([_lookup("p", self.prefixes, t["product"]), t["result_num"]])
            .select(pl.format("{}_{}", pl.col("p"), pl.col("result_num")).alias("result_id"))
            .to_series()
        )
        return [
            uuid_series("search_event_id", t["search_hi"], t["search_lo"]),
            t["position"].alias("result_position"),
            result_id,
            _lookup("result_type", PRODUCTS, t["product"]),
            t["price"].alias("result_price"),
            _lookup("result_provider", cat.providers, t["provider"]),
            _lookup("result_destination", cat.destination_names, t["dest"]),
        ]

    def _conversion(self, t: pl.DataFrame) -> list[pl.Series]:
        return [
            uuid_series("click_event_id", t["click_hi"], t["click_lo"]),
            t["value"].alias("booking_value"),
            t["commission"].alias("commission"),
            _lookup("currency", CURRENCIES, t["currency"]),
            _lookup("product_type", PRODUCTS, t["product"]),
            _lookup("provider", self.catalogue.providers, t["provider"]),
        ]
