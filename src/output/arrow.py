"""Turn column tables into typed Arrow tables, for Parquet: codes become values, nothing goes through JSON.

The Arrow schema of each event type is derived from its model in ``models.py``: the same
fields in the same order, ``geo`` and ``filters`` as structs, the timestamp as a UTC
timestamp, money as a two-decimal ``decimal128(18, 2)`` (exact, as in the JSON text),
dates as ``date32`` and whole numbers as ``int32``. Strings that come from a fixed list
(enums, countries, cities, channels, providers, destinations, currencies) are gathered
from it by code; the Parquet writer stores them in dictionary pages. The values are those
of the JSON lines, field for field.
"""

from __future__ import annotations

import types
import typing
from datetime import date
from functools import cache
from typing import Any, Literal, get_args, get_origin

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import BaseModel

from ..config import DEVICES, PLATFORMS, PRODUCTS
from ..models import EVENT_MODELS, EVENT_TYPES
from ..reference import CURRENCIES, RESULT_PREFIX, CityTable
from ..simulation.catalogue import Catalogue
from ..simulation.faults import FAULT_CODES, MISSING_FIELDS, written_time
from ..simulation.tables import EventTables
from .ascii import column, hex_chars, uuid_chars

MONEY = pa.decimal128(18, 2)  # 18 digits fit a 64-bit integer: warehouses store them as such
TIMESTAMP = pa.timestamp("us", tz="UTC")  # Spark's and Snowflake's own precision; the values are whole milliseconds
# Fields whose text is drawn from a fixed table by code: gathered from it as the enums (Literal fields) are.
CODED = {"country", "city", "utm_source", "utm_medium", "utm_campaign", "result_provider", "result_destination",
         "currency", "provider"}  # fmt: skip
# Ids with (nearly) a value per row: dictionary pages would only cost time before the writer falls back from them.
HIGH_CARDINALITY = {"event_id", "session_id", "search_event_id", "click_event_id"}
_MONEY_NAMES = {"max_price", "result_price", "booking_value", "commission"}


def _arrow_type(name: str, annotation: Any) -> tuple[pa.DataType, bool]:
    """The Arrow type of one model field and whether it may be null."""
    nullable = False
    if get_origin(annotation) is typing.Annotated:
        annotation = get_args(annotation)[0]
    if get_origin(annotation) in (typing.Union, types.UnionType):
        args = [a for a in get_args(annotation) if a is not type(None)]
        nullable, annotation = len(args) < len(get_args(annotation)), args[0]
    if get_origin(annotation) is Literal or name in CODED:
        return pa.string(), nullable
    if name == "timestamp":
        return TIMESTAMP, nullable
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return pa.struct(_fields(annotation)), nullable
    if name in _MONEY_NAMES:
        return MONEY, nullable
    simple = {str: pa.string(), int: pa.int32(), float: pa.float64(), date: pa.date32()}
    return simple[annotation], nullable


def _fields(model: type[BaseModel]) -> list[pa.Field]:
    fields = []
    for name, info in model.model_fields.items():
        annotation = info.annotation if not info.metadata else typing.Annotated[info.annotation, *info.metadata]
        arrow_type, nullable = _arrow_type(name, annotation)
        fields.append(pa.field(name, arrow_type, nullable=nullable))
    return fields


@cache
def arrow_schema(event_type: str, nulls: bool = False) -> pa.Schema:
    """The Arrow schema of one event type, field for field from its model.

    With ``nulls`` (a run with missing-field faults), the fields such a fault may leave null are nullable.
    """
    fields = _fields(EVENT_MODELS[event_type])
    if nulls:
        missing = {name for name, _ in MISSING_FIELDS[event_type]}
        fields = [_nullable(f) if f.name in missing else f for f in fields]
    return pa.schema(fields)


def _nullable(field: pa.Field) -> pa.Field:
    """``field`` nullable, and its children too (Parquet sees a null struct's children as null)."""
    if pa.types.is_struct(field.type):
        field = field.with_type(pa.struct([child.with_nullable(True) for child in field.type]))
    return field.with_nullable(True)


def dictionary_columns(event_type: str) -> list[str]:
    """The column paths (``geo.city``) worth dictionary pages in Parquet: all but the ids."""
    paths = []
    for field in arrow_schema(event_type):
        if pa.types.is_struct(field.type):
            paths += [f"{field.name}.{child.name}" for child in field.type]
        elif field.name not in HIGH_CARDINALITY:
            paths.append(field.name)
    return paths


def _text(chars: np.ndarray) -> pa.Array:
    """Rows of fixed-width ASCII, an (n, w) uint8 array, as a string array sharing no Python objects."""
    rows, width = chars.shape
    offsets = np.arange(rows + 1, dtype=np.int32) * width
    return pa.StringArray.from_buffers(rows, pa.py_buffer(offsets), pa.py_buffer(np.ascontiguousarray(chars)))


def _string_array(values: list[str] | tuple[str, ...]) -> pa.Array:
    """Python strings as an Arrow array, through polars (pyarrow's own conversion imports pandas where installed)."""
    return _strings(pl.Series(list(values), dtype=pl.String))


def _strings(series: pl.Series) -> pa.Array:
    return series.to_arrow(compat_level=pl.CompatLevel.oldest()).cast(pa.string())


def _coded(codes: np.ndarray, values: pa.Array, valid: np.ndarray | None = None) -> pa.Array:
    """The text of ``values`` at ``codes`` (null where ``valid`` is False).

    Plain strings, not Arrow dictionaries: the Parquet writer dictionary-encodes them itself,
    page by page, and handed Arrow dictionaries it wrote different bytes for the same table
    from one write to the next (pyarrow 26), where a seed's files must be the same bytes.
    """
    return values.take(_numeric(codes, pa.int32(), valid))


def _money(values: np.ndarray, valid: np.ndarray | None = None) -> pa.Array:
    """Amounts as the JSON writes them (rounded to cents), exact decimals: the cents, as 128-bit integers."""
    rounded = pl.Series(values).round(2).to_numpy()
    cents = np.rint(np.where(np.isnan(rounded), 0.0, rounded) * 100).astype(np.int64)
    words = np.zeros((len(cents), 2), dtype=np.int64)
    words[:, 0], words[:, 1] = cents, cents >> 63  # little-endian two's complement
    return pa.Array.from_buffers(MONEY, len(cents), [_validity(valid), pa.py_buffer(words)], null_count=-1)


def _validity(valid: np.ndarray | None) -> pa.Buffer | None:
    return None if valid is None else pa.py_buffer(np.packbits(valid, bitorder="little"))


def _numeric(values: np.ndarray, arrow_type: pa.DataType, valid: np.ndarray | None = None) -> pa.Array:
    """A NumPy column as an Arrow array of a 32- or 64-bit type (int32, date32, timestamp), null where not ``valid``.

    Built from the buffers: ``pa.array`` would import pandas, where installed, to look for its types.
    """
    data = np.ascontiguousarray(values, dtype=np.int64 if arrow_type.bit_width == 64 else np.int32)
    return pa.Array.from_buffers(arrow_type, len(data), [_validity(valid), pa.py_buffer(data)], null_count=-1)


class ArrowEncoder:
    """Builds the Arrow table of each event type from column tables, for one run's catalogue and cities."""

    def __init__(self, catalogue: Catalogue, cities: CityTable, nulls: bool = False) -> None:
        """Hold every fixed list of text once, as Arrow arrays the codes index.

        With ``nulls``, rows marked with a missing-field fault have that field null (schema ``arrow_schema(t, True)``).
        """
        self.nulls = nulls
        self.city_names = _string_array(cities.name.to_list())
        countries = sorted(set(cities.country.to_list()))
        self.countries = _string_array(countries)
        self.city_country = np.searchsorted(np.array(countries), np.array(cities.country.to_list()))
        self.utm: list[tuple[pa.Array, np.ndarray]] = []
        for part in range(3):
            values = sorted({str(u[part]) for u in catalogue.utm if u[part] is not None})
            codes = np.array([values.index(str(u[part])) if u[part] is not None else -1 for u in catalogue.utm])
            self.utm.append((_string_array(values), codes))
        self.templates = pl.Series(list(catalogue.templates), dtype=pl.String)
        self.destinations = _string_array(list(catalogue.destination_names))
        self.destination_text = pl.Series(list(catalogue.destination_names), dtype=pl.String)
        self.origin_text = cities.name
        self.providers = _string_array(list(catalogue.providers))
        self.products = _string_array(list(PRODUCTS))
        self.prefixes = pl.Series([RESULT_PREFIX[p] for p in PRODUCTS])
        self.currencies = _string_array(list(CURRENCIES))
        self.platforms = _string_array(list(PLATFORMS))
        self.devices = _string_array(list(DEVICES))
        self.event_types = {t: _string_array([t]) for t in EVENT_TYPES}

    def __call__(self, tables: EventTables) -> dict[str, pa.Table]:
        """The Arrow table of every event type, rows in the order of ``tables``."""
        return {event_type: self.table(event_type, table) for event_type, table in tables.items()}

    def table(self, event_type: str, t: pl.DataFrame) -> pa.Table:
        """One event type's rows as an Arrow table of its schema."""
        rows = t.height
        user_id = t.select(pl.when(pl.col("user") >= 0).then(pl.format("user_{}", pl.col("user")))).to_series()
        common = {
            "event_id": _text(uuid_chars(t["id_hi"], t["id_lo"])),
            "event_type": _coded(np.zeros(rows, dtype=np.int32), self.event_types[event_type]),
            "timestamp": _numeric(written_time(t).to_numpy() * 1000, TIMESTAMP),
            "user_id": _strings(user_id),
            "session_id": _text(np.hstack([column(rows, "sess_"), hex_chars(t["session"].to_numpy())])),
        }
        columns = {**common, **getattr(self, f"_{event_type}")(t)}
        schema = arrow_schema(event_type, self.nulls)
        if self.nulls and "fault" in t.columns:
            missing = t["fault"].to_numpy() == FAULT_CODES["missing"]
            for way, (name, _) in enumerate(MISSING_FIELDS[event_type]):
                rows = missing & (t["fault_value"].to_numpy() == way)
                if rows.any():
                    whole = columns[name]
                    columns[name] = pc.if_else(pa.array(rows), pa.nulls(rows.size, whole.type), whole)
        return pa.Table.from_arrays([columns[name] for name in schema.names], schema=schema)

    def _search(self, t: pl.DataFrame) -> dict[str, pa.Array]:
        query = (
            pl.DataFrame(
                [
                    self.templates.gather(t["template"].cast(pl.Int64)).alias("template"),
                    self.destination_text.gather(t["dest"].cast(pl.Int64)).alias("dest"),
                    self.origin_text.gather(t["origin"].cast(pl.Int64)).alias("origin"),
                ]
            )
            .select(
                pl.col("template")
                .str.replace("{dest}", pl.col("dest"), literal=True)
                .str.replace("{origin}", pl.col("origin"), literal=True)
            )
            .to_series()
        )
        city = t["city"].to_numpy()
        geo_type = arrow_schema("search").field("geo").type
        geo = pa.StructArray.from_arrays(
            [_coded(self.city_country[city], self.countries), _coded(city, self.city_names)],
            fields=list(geo_type),
        )
        utm = t["utm"].to_numpy()
        end_day, max_price, stars = t["end_day"].to_numpy(), t["max_price"].to_numpy(), t["min_stars"].to_numpy()
        filters_type = arrow_schema("search").field("filters").type
        filters = pa.StructArray.from_arrays(
            [
                _numeric(t["start_day"].to_numpy(), pa.date32()),
                _numeric(end_day, pa.date32(), end_day >= 0),
                _numeric(t["travelers"].to_numpy(), pa.int32()),
                _money(max_price, ~np.isnan(max_price)),
                _numeric(stars, pa.int32(), stars > 0),
            ],
            fields=list(filters_type),
        )
        columns: dict[str, pa.Array] = {
            "query": _strings(query),
            "results_count": _numeric(t["results"].to_numpy(), pa.int32()),
            "page": _numeric(t["page"].to_numpy(), pa.int32()),
            "platform": _coded(t["platform"].to_numpy(), self.platforms),
            "device_type": _coded(t["device"].to_numpy(), self.devices),
            "geo": geo,
            "filters": filters,
        }
        for name, (values, codes) in zip(("utm_source", "utm_medium", "utm_campaign"), self.utm, strict=True):
            code = codes[utm]
            columns[name] = _coded(np.maximum(code, 0), values, code >= 0)
        return columns

    def _click(self, t: pl.DataFrame) -> dict[str, pa.Array]:
        product = t["product"].cast(pl.Int64)
        result_id = pl.DataFrame([self.prefixes.gather(product).alias("prefix"), t["result_num"]]).select(
            pl.concat_str([pl.col("prefix"), pl.lit("_"), pl.col("result_num").cast(pl.String)])
        )
        return {
            "search_event_id": _text(uuid_chars(t["search_hi"], t["search_lo"])),
            "result_position": _numeric(t["position"].to_numpy(), pa.int32()),
            "result_id": _strings(result_id.to_series()),
            "result_type": _coded(product.to_numpy(), self.products),
            "result_price": _money(t["price"].to_numpy()),
            "result_provider": _coded(t["provider"].to_numpy(), self.providers),
            "result_destination": _coded(t["dest"].to_numpy(), self.destinations),
        }

    def _conversion(self, t: pl.DataFrame) -> dict[str, pa.Array]:
        return {
            "click_event_id": _text(uuid_chars(t["click_hi"], t["click_lo"])),
            "booking_value": _money(t["value"].to_numpy()),
            "commission": _money(t["commission"].to_numpy()),
            "currency": _coded(t["currency"].to_numpy(), self.currencies),
            "product_type": _coded(t["product"].to_numpy(), self.products),
            "provider": _coded(t["provider"].to_numpy(), self.providers),
        }
