"""Deterministic identifiers: hashed (Stripe-like base-62) and bijective (Adyen 16-digit references).

Every entity has a ``serial`` unique within its tenant and kind (creation day * 2^27 + index in the
day), so ids do not depend on how many days are generated. Stripe ids are two 64-bit hashes of
(tenant salt, id kind, serial); Adyen references encode a keyed permutation (Feistel network) of
[0, 10^14) over (kind, serial), hence are unique per tenant by construction.
"""
from __future__ import annotations

import zlib

import numpy as np
import pyarrow as pa

from jobs.generate.text import DIGITS, base62, from_matrix, put_digits

U64 = np.uint64
DAY_SHIFT = 27                      # serial = (day - SERIAL_EPOCH_DAY) << 27 | index_in_day
SERIAL_EPOCH_DAY = 18_262           # 2020-01-01; serials stay below 10^13 until about 2200
ADYEN_SPAN = 10**13                 # serials per Adyen reference kind (8 kinds: < 10^14 in all)


def text_key(text: str) -> int:
    return zlib.crc32(text.encode("utf-8"))


def serials(day: int, n: int, start: int = 0) -> np.ndarray:
    base = (int(day) - SERIAL_EPOCH_DAY) << DAY_SHIFT
    return base + start + np.arange(n, dtype=np.int64)


def mix64(x) -> np.ndarray:
    """splitmix64 finaliser, element-wise on uint64 (wrapping arithmetic)."""
    with np.errstate(over="ignore"):
        z = np.asarray(x, dtype=U64) + U64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> U64(30))) * U64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> U64(27))) * U64(0x94D049BB133111EB)
        return z ^ (z >> U64(31))


def hash64(salt: int, kind: str, serial: np.ndarray) -> np.ndarray:
    k = mix64(np.array([(salt << 20) ^ text_key(kind)], dtype=U64))[0]
    return mix64(np.asarray(serial, dtype=np.int64).astype(U64) ^ k)


def stripe_ids(salt: int, kind: str, serial: np.ndarray, prefix: str) -> pa.Array:
    """e.g. ``ch_3`` + 22 base-62 characters."""
    first = hash64(salt, kind, serial)
    second = mix64(first ^ U64(0x5851F42D4C957F2D))
    return base62([first, second], prefix)


def _feistel(x: np.ndarray, salt: int, rounds: int = 4) -> np.ndarray:
    """A keyed bijection of [0, 10^14) (balanced Feistel network on two 7-digit halves)."""
    half = U64(10**7)
    left, right = x // half, x % half
    for k in range(rounds):
        f = hash64(salt, f"feistel{k}", right.astype(np.int64)) % half
        left, right = right, (left + f) % half
    return left * half + right


def adyen_refs(salt: int, kind: int | np.ndarray, serial: np.ndarray) -> pa.Array:
    """16-digit references, unique per (tenant, kind, serial): two hash digits (the first 1-9) and the
    14 digits of a keyed permutation of kind * ADYEN_SPAN + serial."""
    serial = np.asarray(serial, dtype=np.int64)
    if serial.size and (serial.max() >= ADYEN_SPAN or serial.min() < 0):
        raise ValueError("serial out of range for an Adyen reference")
    y = _feistel((serial + np.asarray(kind, dtype=np.int64) * ADYEN_SPAN).astype(U64), salt)
    h = mix64(y ^ U64(salt))
    n = len(serial)
    mat = np.empty((n, 16), dtype=np.uint8)
    mat[:, 0] = DIGITS[(U64(1) + h % U64(9)).astype(np.intp)]
    mat[:, 1] = DIGITS[((h // U64(9)) % U64(10)).astype(np.intp)]
    put_digits(mat, 2, y, 14)
    return from_matrix(mat)


def digits_from_hash(h: np.ndarray, width: int) -> np.ndarray:
    """``width`` decimal digits (as an int array < 10^width) drawn from a hash."""
    return (np.asarray(h, dtype=U64) % U64(10**width)).astype(np.int64)
