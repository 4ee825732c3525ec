"""An independent reader of delivered CSV files, for the tests: Python's ``csv`` module (RFC 4180 in C),
sharing no code with the Spark reader in ``jobs/formats/csvread.py``.

It reads a file the way the reading contract says a file is meant (README, "Files it reads"): UTF-8
with or without a byte order mark, any line end, quoted fields with delimiters, quotes and line breaks
inside, blank or whitespace-only lines are not records, the first record is the header. A record's
ordinal is its 1-based index among the data records.
"""
from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

EXPONENTS = {"JPY": 0, "KRW": 0, "CLP": 0, "ISK": 0, "HUF": 2, "KWD": 3, "BHD": 3, "JOD": 3, "OMR": 3, "TND": 3,
             "EUR": 2, "USD": 2, "GBP": 2, "CHF": 2, "SEK": 2, "NOK": 2, "DKK": 2, "PLN": 2, "CZK": 2, "AUD": 2,
             "CAD": 2, "NZD": 2, "SGD": 2, "HKD": 2, "MXN": 2, "BRL": 2, "ZAR": 2, "INR": 2, "CNY": 2, "AED": 2}


@dataclass(frozen=True)
class Record:
    ordinal: int
    fields: dict[str, str]          # header name (lower case, non-alphanumerics -> _) -> value as written
    width: int                      # number of fields the record has


def header_key(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", name.strip().lower()).strip("_")


def sniff_delimiter(text: str) -> str:
    """The contract: ``;`` when the header line has more semicolons than commas, else ``,``."""
    header = next(csv.reader(io.StringIO(text, newline="")), [""])
    joined = ",".join(header)                      # read as comma-separated: commas are the separators
    return ";" if joined.count(";") > len(header) - 1 else ","


def rows(data: bytes, delimiter: str | None = None) -> list[list[str]]:
    """Every non-blank record of the file, the header first."""
    text = data.decode("utf-8-sig", errors="replace").lstrip("\r\n")
    delimiter = delimiter or sniff_delimiter(text)
    return [row for row in csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=False)
            if any(cell.strip() for cell in row)]


def records(data: bytes, delimiter: str | None = None) -> list[Record]:
    every = rows(data, delimiter)
    if not every:
        return []
    header = [header_key(h) for h in every[0]]
    return [Record(i, dict(zip(header, row)), len(row)) for i, row in enumerate(every[1:], start=1)]


def minor_units(major: str, currency: str, decimal_comma: bool = False) -> int | None:
    """A major-unit decimal string in the currency's minor units; None when it is not one exactly.
    ``decimal_comma``: ``12,34`` is twelve point three four (a ``;``-separated export)."""
    exp = EXPONENTS.get((currency or "").strip().upper())
    major = (major or "").strip()
    if decimal_comma:
        if "," in major and "." in major:
            return None
        major = major.replace(",", ".")
    if not re.fullmatch(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)", major):
        return None
    try:
        value = Decimal(major)
    except InvalidOperation:
        return None
    if exp is None or not value.is_finite():
        return None
    scaled = value.scaleb(exp)
    return int(scaled) if scaled == scaled.to_integral_value() else None
