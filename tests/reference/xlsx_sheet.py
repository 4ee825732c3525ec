"""An independent reader of delivered XLSX workbooks, for the tests: openpyxl (not the streaming lxml
reader in ``jobs/formats/xlsx.py``) reads the first worksheet, and each cell becomes the text the PSP
would have written in its CSV: text as is, a number as its shortest decimal (no exponent), a date-time
cell as ``YYYY-MM-DD HH:MM:SS``, a boolean as ``TRUE``/``FALSE``, an empty cell as ''.

As for a CSV delivery: the first row with any value is the header (its trailing empty cells are not
columns), rows without any value are not records, and a record is as wide as the header unless it has a
value beyond the header's last column (then it is as wide as its last value reaches: malformed).
"""
from __future__ import annotations

import io
from datetime import date, datetime, time
from decimal import Decimal


def _text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        # A number cell is a binary double; repr gives the shortest decimal that reads back as it, which
        # is the decimal that was typed or written for any value of up to 15 significant digits.
        return format(Decimal(repr(value)), "f")
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, date):
        return value.strftime("%Y-%m-%d")
    if isinstance(value, time):
        return value.strftime("%H:%M:%S")
    return str(value)


def _trimmed(cells: list[str]) -> list[str]:
    while cells and not cells[-1].strip():
        cells = cells[:-1]
    return cells


def rows(data: bytes) -> list[list[str]]:
    """The first worksheet's records, header first, as text."""
    from openpyxl import load_workbook

    wb = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    try:
        sheet = wb.worksheets[0]
        out: list[list[str]] = []
        width = None
        for values in sheet.iter_rows(values_only=True):
            cells = _trimmed([_text(v) for v in values])
            if not any(c.strip() for c in cells):
                continue
            if width is None:
                width = len(cells)
            out.append(cells + [""] * (width - len(cells)) if len(cells) < width else cells)
        return out
    finally:
        wb.close()
