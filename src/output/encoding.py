"""Turn column tables into JSON lines: codes become text only here, a whole batch at a time.

Each line is assembled by polars from literal pieces and columns, in the field order of
the event's model in ``models.py``. Text that comes from a fixed table (cities, query
templates, channels) is JSON-escaped once, when the encoder is built, and then gathered
by code, so no row is ever escaped or serialised one at a time. The tests parse every
line and check it against the JSON Schemas.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

import numpy as np
import polars as pl

from ..config import DEVICES, PLATFORMS, PRODUCTS
from ..reference import CURRENCIES, RESULT_PREFIX, CityTable
from ..simulation.catalogue import Catalogue
from ..simulation.faults import written_time
from ..simulation.tables import EventTables
from .arrow import ArrowEncoder
from .ascii import fixed_text, hex_chars, timestamp_chars, uuid_chars
from .batch import EncodedBatch, Lines
from .faults import UTF8_AT, bad_bytes, damage, records, with_bad_bytes


def _json(value: str | None) -> str:
    # Line and paragraph separators are legal inside JSON strings, but readers that split text into
    # lines (Python's str.splitlines among them) would break a line there: escape them.
    return json.dumps(value, ensure_ascii=False).replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")


def _escaped(values: list[str]) -> pl.Series:
    """Strings JSON-escaped but without their quotes, for splicing inside a JSON string."""
    return pl.Series([_json(v)[1:-1] for v in values], dtype=pl.String)


def _date_values(name: str, days: pl.Series) -> pl.Series:
    """JSON values of days since the epoch: ``"YYYY-MM-DD"``, or null for a negative day."""
    unique_days, day_index = np.unique(days.to_numpy(), return_inverse=True)
    text = [
        f'"{d}"' if n >= 0 else "null" for n, d in zip(unique_days, unique_days.astype("datetime64[D]"), strict=True)
    ]
    return pl.Series(name, text, dtype=pl.String).gather(day_index)


def uuid_series(name: str, hi: pl.Series, lo: pl.Series) -> pl.Series:
    """Version-4 UUID text from two columns of random 64-bit words."""
    return fixed_text(name, [uuid_chars(hi, lo)], len(hi))


# In each XADD command, what comes between the line and its event_id (a line cannot hold a raw CRLF).
XADD_EVENT_ID = b"\r\n$8\r\nevent_id\r\n$36\r\n"


def _bulk(text: str) -> str:
    """A Redis protocol bulk string: its length in bytes, then the text."""
    return f"${len(text.encode())}\r\n{text}\r\n"


def _nullable(expr: pl.Expr, present: pl.Expr) -> pl.Expr:
    """``expr`` where ``present``, else the JSON literal null."""
    return pl.when(present).then(expr).otherwise(pl.lit("null"))


def _money(column: str) -> pl.Expr:
    return pl.col(column).round(2).cast(pl.String)


def _lines(frame: pl.DataFrame) -> Lines:
    """The text of a one-column frame as one buffer and its n + 1 offsets (Arrow's own, not copied)."""
    array = frame.to_series().to_arrow(compat_level=pl.CompatLevel.oldest())  # large_string
    _, offsets_buffer, data = array.buffers()
    offsets = np.frombuffer(offsets_buffer, dtype=np.int64)[array.offset : array.offset + len(array) + 1]
    return Lines(memoryview(data)[offsets[0] : offsets[-1]], offsets - offsets[0])


class Encoder:
    """Encodes event tables into JSONL bytes for one run's catalogue and city table."""

    def __init__(
        self,
        catalogue: Catalogue,
        cities: CityTable,
        streams: Mapping[str, str] | None = None,
        lines: bool = True,
        parquet: bool = False,
        parquet_nulls: bool = False,
    ) -> None:
        """Render every fixed piece of text once: cities, channels, templates, providers.

        With ``streams`` (the Redis stream of each event type) every batch is also encoded as
        XADD commands; with ``parquet``, also as typed Arrow tables (``parquet_nulls``: with the
        missing-field faults as nulls); without ``lines`` it is encoded only so (no JSON lines
        when neither Redis nor files of lines need them).
        """
        self.streams = dict(streams) if streams else None
        self.lines = lines or (not streams and not parquet)
        self.arrow = ArrowEncoder(catalogue, cities, nulls=parquet_nulls) if parquet else None
        names, countries = cities.name.to_list(), cities.country.to_list()
        self.geo = pl.Series(
            [f'"geo":{{"country":{_json(c)},"city":{_json(n)}}}' for c, n in zip(countries, names, strict=True)]
        )
        self.city_names = _escaped(names)
        self.utm = pl.Series(
            [f'"utm_source":{_json(s)},"utm_medium":{_json(m)},"utm_campaign":{_json(c)}' for s, m, c in catalogue.utm]
        )
        self.platform_device = pl.Series([f'"platform":"{p}","device_type":"{d}"' for p in PLATFORMS for d in DEVICES])
        self.templates = _escaped(list(catalogue.templates))
        self.destinations = _escaped(list(catalogue.destination_names))
        self.providers = _escaped(list(catalogue.providers))
        self.products = pl.Series(PRODUCTS)
        self.prefixes = pl.Series([RESULT_PREFIX[p] for p in PRODUCTS])
        # The result_id prefix of each query template's product (templates come product after product).
        template_product = np.searchsorted(catalogue.template_range[:, 1], np.arange(len(catalogue.templates)), "right")
        self.template_prefixes = self.prefixes.gather(template_product)
        self.currencies = pl.Series(CURRENCIES)

    def encode(self, event_type: str, table: pl.DataFrame) -> tuple[Lines, Lines | None]:
        """JSON lines of one event type, and the same events as XADD commands if streams were given.

        Lines end in a newline. A command is one XADD in Redis protocol, adding the line (without
        its newline) as ``data``, with ``event_id`` and ``event_type``, to the type's stream.
        The bytes are the Arrow buffers polars built the text in: no copy is made for writing.
        """
        if table.height == 0:
            return Lines.empty(), (Lines.empty() if self.streams else None)
        columns, pieces = getattr(self, f"_{event_type}")(table)
        rows = table.height
        ids = uuid_chars(table["id_hi"], table["id_lo"])
        # The start of every line has a fixed width: built as one block of bytes, not piece by piece.
        head: list[str | np.ndarray] = [
            '{"event_id":"',
            ids,
            f'","event_type":"{event_type}","timestamp":"',
            timestamp_chars(written_time(table).to_numpy()),
            '","user_id":',
        ]
        session: list[str | np.ndarray] = [',"session_id":"sess_', hex_chars(table["session"].to_numpy()), '",']
        common = [
            pl.col("f_head"),
            _nullable(pl.format('"user_{}"', pl.col("user")), pl.col("user") >= 0),
            pl.col("f_session"),
        ]
        frame = pl.DataFrame(
            [fixed_text("f_head", head, rows), fixed_text("f_session", session, rows), *columns]
        ).hstack(table)
        faulty = "fault" in table.columns
        if not self.streams:
            text = frame.select(pl.concat_str([*common, *pieces, pl.lit("}\n")]))
            return _lines(damage(event_type, text.to_series(), table, "\n").to_frame() if faulty else text), None
        json = frame.select(pl.concat_str([*common, *pieces, pl.lit("}")]).alias("json"))
        if faulty:
            # Redis' commands are built from text: the damaged lines, and their bad bytes put in after.
            json = damage(event_type, json.to_series(), table, bad_bytes_in=False).cast(pl.String).to_frame("json")
        lines = _lines(json.select(pl.col("json") + "\n")) if self.lines else Lines.empty()
        bad = bad_bytes(table) if faulty else np.zeros(0, dtype=np.int64)
        if len(bad) and self.lines:
            lines = Lines(with_bad_bytes(lines.data, lines.offsets[bad] + UTF8_AT), lines.offsets)
        # XADD <stream> * data <line> event_id <id> event_type <type>: nine bulk strings.
        start = "*9\r\n" + _bulk("XADD") + _bulk(self.streams[event_type]) + _bulk("*") + _bulk("data") + "$"
        middle = XADD_EVENT_ID.decode()
        end = "\r\n" + _bulk("event_type") + _bulk(event_type)
        tail = fixed_text("f_tail", [middle, ids, end], rows)
        xadd = json.hstack([tail]).select(
            pl.concat_str([pl.lit(start), pl.col("json").str.len_bytes().cast(pl.String), pl.lit("\r\n"),
                           pl.col("json"), pl.col("f_tail")])
        )  # fmt: skip
        commands = _lines(xadd)
        if len(bad):
            # The line starts after the command's head and the line's length in digits, then CRLF.
            digits = json["json"].str.len_bytes().cast(pl.String).str.len_bytes().to_numpy()[bad]
            at = commands.offsets[bad] + len(start.encode()) + digits + 2 + UTF8_AT
            commands = Lines(with_bad_bytes(commands.data, at), commands.offsets)
        return lines, commands

    def __call__(self, tables: EventTables) -> EncodedBatch:
        """``encode_all``: an encoder is what a worker encodes its slices with."""
        return self.encode_all(tables)

    def encode_all(self, tables: EventTables) -> EncodedBatch:
        """JSON lines per event type, with counts and times for the publishers."""
        nothing = (Lines.empty(), None)
        json = self.lines or self.streams
        encoded = {t: self.encode(t, table) if json else nothing for t, table in tables.items()}
        shows = "shown" in tables.search.columns and self.lines
        return EncodedBatch(
            lines={event_type: lines.data for event_type, (lines, _) in encoded.items()},
            offsets={event_type: lines.offsets for event_type, (lines, _) in encoded.items()},
            counts=tables.counts(),
            stamps={event_type: table["ts"].to_numpy() for event_type, table in tables.items()},
            xadds={event_type: xadds for event_type, (_, xadds) in encoded.items() if xadds is not None},
            impressions=self.impressions(tables.search) if shows else None,
            tables=self.arrow(tables) if self.arrow else None,
            faults={t: records(t, table) for t, table in tables.items()} if "fault" in tables.search.columns else None,
        )

    def impressions(self, search: pl.DataFrame) -> Lines:
        """One line per search, in the order of its lines: its event_id and the result_ids on its page, in order.

        ``{"search_event_id": "...", "result_ids": ["htl_1000004", ...]}``; a search that found
        nothing shows an empty list. ``search`` carries ``shown``, the result numbers (-1: none).
        """
        if search.height == 0:
            return Lines.empty()
        places = search["shown"].dtype.size  # type: ignore[attr-defined]
        prefix = self.template_prefixes.gather(search["template"].cast(pl.Int64)).alias("f_prefix")
        number = [pl.col("shown").arr.get(k) for k in range(places)]
        ids = [
            pl.when(n >= 0).then(
                pl.concat_str([pl.lit('"'), pl.col("f_prefix"), pl.lit("_"), n.cast(pl.String), pl.lit('"')])
            )
            for n in number
        ]
        head = fixed_text("f_head", ['{"search_event_id":"', uuid_chars(search["id_hi"], search["id_lo"]),
                                 '","result_ids":['], search.height)  # fmt: skip
        frame = pl.DataFrame([head, prefix, search["shown"]])
        line = pl.concat_str([pl.col("f_head"), pl.concat_str(ids, separator=",", ignore_nulls=True), pl.lit("]}\n")])
        return _lines(frame.select(line))

    def _search(self, t: pl.DataFrame) -> tuple[list[pl.Series], list[pl.Expr]]:
        columns = [
            _date_values("f_start", t["start_day"]),
            _date_values("f_end", t["end_day"]),
            self.templates.gather(t["template"].cast(pl.Int64)).alias("q_template"),
            self.destinations.gather(t["dest"].cast(pl.Int64)).alias("q_dest"),
            self.city_names.gather(t["origin"].cast(pl.Int64)).alias("q_origin"),
            self.geo.gather(t["city"].cast(pl.Int64)).alias("f_geo"),
            self.utm.gather(t["utm"].cast(pl.Int64)).alias("f_utm"),
            self.platform_device.gather(t["platform"].cast(pl.Int64) * 3 + t["device"].cast(pl.Int64)).alias("f_pd"),
        ]
        query = (
            pl.col("q_template")
            .str.replace("{dest}", pl.col("q_dest"), literal=True)
            .str.replace("{origin}", pl.col("q_origin"), literal=True)
        )
        pieces: list[pl.Expr] = [
            pl.lit('"query":"'),
            query,
            pl.lit('","results_count":'),
            pl.col("results").cast(pl.String),
            pl.lit(',"page":'),
            pl.col("page").cast(pl.String),
            pl.lit(","),
            pl.col("f_pd"),
            pl.lit(","),
            pl.col("f_geo"),
            pl.lit(","),
            pl.col("f_utm"),
            pl.lit(',"filters":{"start_date":'),
            pl.col("f_start"),
            pl.lit(',"end_date":'),
            pl.col("f_end"),
            pl.lit(',"travelers":'),
            pl.col("travelers").cast(pl.String),
            pl.lit(',"max_price":'),
            _nullable(_money("max_price"), pl.col("max_price").is_not_nan()),
            pl.lit(',"min_stars":'),
            _nullable(pl.col("min_stars").cast(pl.String), pl.col("min_stars") > 0),
            pl.lit("}"),
        ]
        return columns, pieces

    def _click(self, t: pl.DataFrame) -> tuple[list[pl.Series], list[pl.Expr]]:
        product = t["product"].cast(pl.Int64)
        columns = [
            uuid_series("search_event_id", t["search_hi"], t["search_lo"]),
            self.prefixes.gather(product).alias("f_prefix"),
            self.products.gather(product).alias("f_product"),
            self.providers.gather(t["provider"].cast(pl.Int64)).alias("f_provider"),
            self.destinations.gather(t["dest"].cast(pl.Int64)).alias("f_dest"),
        ]
        pieces: list[pl.Expr] = [
            pl.lit('"search_event_id":"'),
            pl.col("search_event_id"),
            pl.lit('","result_position":'),
            pl.col("position").cast(pl.String),
            pl.lit(',"result_id":"'),
            pl.col("f_prefix"),
            pl.lit("_"),
            pl.col("result_num").cast(pl.String),
            pl.lit('","result_type":"'),
            pl.col("f_product"),
            pl.lit('","result_price":'),
            _money("price"),
            pl.lit(',"result_provider":"'),
            pl.col("f_provider"),
            pl.lit('","result_destination":"'),
            pl.col("f_dest"),
            pl.lit('"'),
        ]
        return columns, pieces

    def _conversion(self, t: pl.DataFrame) -> tuple[list[pl.Series], list[pl.Expr]]:
        columns = [
            uuid_series("click_event_id", t["click_hi"], t["click_lo"]),
            self.currencies.gather(t["currency"].cast(pl.Int64)).alias("f_currency"),
            self.products.gather(t["product"].cast(pl.Int64)).alias("f_product"),
            self.providers.gather(t["provider"].cast(pl.Int64)).alias("f_provider"),
        ]
        pieces: list[pl.Expr] = [
            pl.lit('"click_event_id":"'),
            pl.col("click_event_id"),
            pl.lit('","booking_value":'),
            _money("value"),
            pl.lit(',"commission":'),
            _money("commission"),
            pl.lit(',"currency":"'),
            pl.col("f_currency"),
            pl.lit('","product_type":"'),
            pl.col("f_product"),
            pl.lit('","provider":"'),
            pl.col("f_provider"),
            pl.lit('"'),
        ]
        return columns, pieces
