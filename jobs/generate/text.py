"""Columnar text building: numpy integers -> pyarrow string arrays -> file bytes, without row loops.

Fixed-width pieces (zero-padded numbers, ids, timestamps) are written straight into a ``uint8``
matrix and wrapped as an Arrow string array; variable-width ones use Arrow compute kernels. A file
is written chunk by chunk: the columns of a chunk are joined into lines and the Arrow data buffer is
written as is.
"""
from __future__ import annotations

from typing import BinaryIO, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

Col = pa.Array | pa.ChunkedArray | str
DIGITS = np.frombuffer(b"0123456789", dtype=np.uint8)
BASE62 = np.frombuffer(b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz", dtype=np.uint8)
CHUNK_ROWS = 200_000


def from_matrix(mat: np.ndarray) -> pa.StringArray:
    """An (n, w) uint8 ASCII matrix as n strings of width w (zero copy of the matrix bytes)."""
    mat = np.ascontiguousarray(mat, dtype=np.uint8)
    n, w = mat.shape
    if n * w >= 2**31:
        raise ValueError(f"{n} strings of width {w} exceed one Arrow string array; build them in chunks")
    offsets = np.arange(0, (n + 1) * w, w, dtype=np.int32)
    return pa.StringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(mat.reshape(-1)))


_QUADS = np.array([list(f"{i:04d}".encode()) for i in range(10_000)], dtype=np.uint8)      # "0000".."9999"
_PAIRS62 = np.array([[a, b] for b in BASE62 for a in BASE62], dtype=np.uint8)             # index = lo + 62*hi


def put_digits(mat: np.ndarray, start: int, values: np.ndarray, width: int) -> None:
    """Write ``values`` (non-negative ints) zero-padded to ``width`` into columns start..start+width."""
    v = np.asarray(values, dtype=np.uint64).copy()
    end = start + width
    while end - start >= 4:
        mat[:, end - 4: end] = _QUADS[(v % np.uint64(10_000)).astype(np.intp)]
        v //= np.uint64(10_000)
        end -= 4
    for pos in range(end - 1, start - 1, -1):
        mat[:, pos] = DIGITS[(v % np.uint64(10)).astype(np.intp)]
        v //= np.uint64(10)


def zpad(values: np.ndarray, width: int, prefix: str = "") -> pa.StringArray:
    """``prefix`` + values zero-padded to ``width`` digits."""
    n = len(values)
    mat = np.empty((n, len(prefix) + width), dtype=np.uint8)
    if prefix:
        mat[:, : len(prefix)] = np.frombuffer(prefix.encode(), dtype=np.uint8)
    put_digits(mat, len(prefix), values, width)
    return from_matrix(mat)


def base62(words: Sequence[np.ndarray], prefix: str = "") -> pa.StringArray:
    """``prefix`` + 11 base-62 characters per uint64 word (a deterministic, id-like string)."""
    n = len(words[0])
    p = len(prefix)
    mat = np.empty((n, p + 11 * len(words)), dtype=np.uint8)
    if prefix:
        mat[:, :p] = np.frombuffer(prefix.encode(), dtype=np.uint8)
    for k, word in enumerate(words):
        v = np.asarray(word, dtype=np.uint64).copy()
        pos = p + 11 * k
        for _ in range(5):
            mat[:, pos: pos + 2] = _PAIRS62[(v % np.uint64(3844)).astype(np.intp)]
            v //= np.uint64(3844)
            pos += 2
        mat[:, pos] = BASE62[(v % np.uint64(62)).astype(np.intp)]
    return from_matrix(mat)


def lookup(values: Sequence[str], index: np.ndarray) -> pa.Array:
    """values[index] as a string array (index: small ints)."""
    return pa.array(list(values), type=pa.string()).take(pa.array(np.asarray(index, dtype=np.int32)))


def const(text: str, n: int) -> pa.Array:
    return pa.array([text], type=pa.string()).take(pa.array(np.zeros(n, dtype=np.int32)))


def concat(*parts: Col) -> pa.Array:
    """Element-wise concatenation of string arrays and literal strings."""
    return pc.binary_join_element_wise(*parts, "")


def where(mask: np.ndarray, yes: Col, no: Col) -> pa.Array:
    return pc.if_else(pa.array(np.asarray(mask, dtype=bool)), yes, no)


def choose(selector: np.ndarray, builders: dict) -> pa.Array:
    """Per row, the string built by ``builders[selector[row]]``, each builder called once with the row
    indices of its category (a str builder is a constant); cheaper than nested ``where`` when every
    variant is expensive."""
    selector = np.asarray(selector)
    n = len(selector)
    parts, index = [], []
    for cat, build in builders.items():
        idx = np.flatnonzero(selector == cat)
        if len(idx) == 0:
            continue
        parts.append(const(build, len(idx)) if isinstance(build, str) else build(idx))
        index.append(idx)
    if not parts:
        return const("", n)
    position = np.empty(n, dtype=np.int64)
    position[np.concatenate(index)] = np.arange(n)
    return pa.concat_arrays([x.cast(pa.string()) for x in parts]).take(pa.array(position))


def _unsigned_amount(a: np.ndarray, exp: int, strip: bool) -> pa.Array:
    if exp == 0:
        return pc.cast(pa.array(a), pa.string())
    scale = 10 ** exp
    whole = pc.cast(pa.array(a // scale), pa.string())
    frac = pc.utf8_lpad(pc.cast(pa.array(a % scale), pa.string()), exp, "0")
    if not strip:
        return concat(whole, ".", frac)
    trimmed = pc.utf8_rtrim(frac, characters="0")
    return where(a % scale == 0, whole, concat(whole, ".", trimmed))


def amount(minor: np.ndarray, exp: int | np.ndarray, *, signed: bool = True, strip: bool = False) -> pa.Array:
    """Integer minor units -> major-unit decimal strings with '.' (exactly ``exp`` decimals, or trailing
    zeros stripped when ``strip``, as Adyen writes them). ``exp`` may vary per row."""
    minor = np.asarray(minor, dtype=np.int64)
    a = np.abs(minor)
    exps = np.broadcast_to(np.asarray(exp), minor.shape)
    distinct = np.unique(exps) if minor.size else np.array([2])
    out = _unsigned_amount(a, int(distinct[0]), strip)
    for e in distinct[1:]:
        out = where(exps == e, _unsigned_amount(a, int(e), strip), out)
    if signed and (minor < 0).any():
        out = where(minor < 0, concat("-", out), out)
    return out


def integers(values: np.ndarray) -> pa.Array:
    return pc.cast(pa.array(np.asarray(values, dtype=np.int64)), pa.string())


def csv_escape(col: pa.Array) -> pa.Array:
    """Quote a field only where needed (comma, quote, line break, surrounding spaces kept as is)."""
    needs = pc.match_substring_regex(col, '[",\n\r]')
    quoted = concat('"', pc.replace_substring(col, '"', '""'), '"')
    return pc.if_else(needs, quoted, col)


def json_escape(col: pa.Array) -> pa.Array:
    return pc.replace_substring(pc.replace_substring(col, "\\", "\\\\"), '"', '\\"')


def lines(cols: Sequence[Col], sep: str = ",", quote_all: bool = False) -> pa.Array:
    """One text line (with trailing newline) per row."""
    if quote_all:
        cols = [pc.replace_substring(c, '"', '""') if not isinstance(c, str) else c for c in cols]
        body = pc.binary_join_element_wise(*cols, '"' + sep + '"')
        return concat('"', body, '"\n')
    return concat(pc.binary_join_element_wise(*cols, sep), "\n")


def write_array(fh: BinaryIO, arr: pa.Array) -> int:
    """Write the concatenated strings of ``arr`` (no separator) and return the byte count."""
    if len(arr) == 0:
        return 0
    if isinstance(arr, pa.ChunkedArray):
        return sum(write_array(fh, c) for c in arr.chunks)
    width = np.int64 if pa.types.is_large_string(arr.type) else np.int32
    offsets = np.frombuffer(arr.buffers()[1], dtype=width, count=arr.offset + len(arr) + 1)[arr.offset:]
    data = memoryview(arr.buffers()[2])[offsets[0]: offsets[-1]]
    fh.write(data)
    return int(offsets[-1] - offsets[0])


def header_line(names: Sequence[str], quote_all: bool = False) -> bytes:
    if quote_all:
        return ("\"" + "\",\"".join(names) + "\"\n").encode()
    return (",".join(names) + "\n").encode()


def write_rows(fh: BinaryIO, n: int, build, *, chunk: int = CHUNK_ROWS) -> None:
    """Write ``n`` rows produced by ``build(start, stop) -> pa.Array of lines`` in chunks."""
    for start in range(0, n, chunk):
        write_array(fh, build(start, min(n, start + chunk)))
    pa.default_memory_pool().release_unused()        # hand chunk buffers back between files
