"""Fixed-width ASCII built a whole column at a time: hex digits and UUIDs as (n, width) uint8 arrays.

The JSON encoder splices these into its lines and the Arrow encoder wraps them as string
arrays; either way no row is formatted on its own.
"""

from __future__ import annotations

import numpy as np
import polars as pl
import pyarrow as pa

# Two lowercase hex digits for every byte value, as one uint16 each (in memory order).
HEX_PAIRS = np.frombuffer(b"".join(f"{b:02x}".encode() for b in range(256)), dtype=np.uint16)


def hex_chars(words: np.ndarray) -> np.ndarray:
    """Lowercase hex digits of uint64 words, big-endian: an (n, 16) uint8 array of ASCII."""
    raw = np.ascontiguousarray(words.astype(">u8")).view(np.uint8).reshape(len(words), 8)
    return HEX_PAIRS[raw].view(np.uint8).reshape(len(words), 16)


def column(rows: int, text: str) -> np.ndarray:
    """The same ASCII text on every row, as an (n, len) view."""
    return np.broadcast_to(np.frombuffer(text.encode(), dtype=np.uint8), (rows, len(text)))


def uuid_chars(hi: pl.Series, lo: pl.Series) -> np.ndarray:
    """Version-4 UUIDs as (n, 36) ASCII from two columns of random 64-bit words (version and variant set here)."""
    hi_hex = hex_chars((hi.to_numpy() & np.uint64(0xFFFFFFFFFFFF0FFF)) | np.uint64(0x4000))
    lo_hex = hex_chars((lo.to_numpy() & np.uint64(0x3FFFFFFFFFFFFFFF)) | np.uint64(0x8000000000000000))
    dash = column(len(hi), "-")
    return np.hstack(
        [hi_hex[:, :8], dash, hi_hex[:, 8:12], dash, hi_hex[:, 12:], dash, lo_hex[:, :4], dash, lo_hex[:, 4:]]
    )


def date_chars(days: np.ndarray) -> np.ndarray:
    """Days since the epoch as ``YYYY-MM-DD``, (n, 10) ASCII; each distinct day is formatted once."""
    unique_days, day_index = np.unique(days, return_inverse=True)
    dates = np.array(unique_days, dtype="datetime64[D]").astype(str)
    return np.frombuffer("".join(dates).encode(), dtype=np.uint8).reshape(len(dates), 10)[day_index]


def timestamp_chars(ms: np.ndarray) -> np.ndarray:
    """ISO 8601 UTC times with milliseconds (``2026-01-31T12:00:00.000Z``) as (n, 24) ASCII."""
    days, in_day = np.divmod(ms, 86_400_000)
    day_chars = date_chars(days)
    hours, rest = np.divmod(in_day, 3_600_000)
    minutes, rest = np.divmod(rest, 60_000)
    seconds, millis = np.divmod(rest, 1000)
    digits = [hours // 10, hours % 10, minutes // 10, minutes % 10, seconds // 10, seconds % 10,
              millis // 100, millis // 10 % 10, millis % 10]  # fmt: skip
    d = np.stack(digits, axis=1).astype(np.uint8) + ord("0")
    n = len(ms)
    t, colon, dot, z = (column(n, c) for c in "T:.Z")
    return np.hstack([day_chars, t, d[:, 0:2], colon, d[:, 2:4], colon, d[:, 4:6], dot, d[:, 6:], z])


def fixed_text(name: str, parts: list[str | np.ndarray], rows: int) -> pl.Series:
    """A string Series of rows that all have the same width: literal text and (n, w) ASCII blocks side by side."""
    chars = np.ascontiguousarray(np.hstack([column(rows, p) if isinstance(p, str) else p for p in parts]))
    # Handed to polars as an Arrow string array over the same bytes: three times faster than from
    # NumPy's fixed-width bytes, which polars converts holding the GIL the other workers wait for.
    count, width = chars.shape
    offsets = np.arange(count + 1, dtype=np.int64) * width
    return pl.Series(name, pa.LargeStringArray.from_buffers(count, pa.py_buffer(offsets), pa.py_buffer(chars)))
