"""Fixed-width ASCII built a whole column at a time: hex digits and UUIDs as (n, width) uint8 arrays.

The JSON encoder splices these into its lines and the Arrow encoder wraps them as string
arrays; either way no row is formatted on its own.
"""

from __future__ import annotations

import numpy as np
import polars as pl

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
