"""Writer: a delivered CSV re-written as an Excel workbook (one sheet), as PSP dashboards export it.

Numbers up to 15 significant digits become numeric cells (Excel's precision; longer ids, like Adyen's
16-digit references, and zero-led ids stay text), everything else inline strings. The sheet is streamed
into the ZIP, so a million rows need no more memory than one row.
"""
from __future__ import annotations

import csv
import io
import re
import zipfile
from pathlib import Path
from xml.sax.saxutils import escape

NUMBER = re.compile(r"-?(0|[1-9][0-9]{0,14})(\.[0-9]{1,9})?")
CONTENT_TYPES = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
    '<Default Extension="xml" ContentType="application/xml"/>'
    '<Override PartName="/xl/workbook.xml" '
    'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
    '<Override PartName="/xl/worksheets/sheet1.xml" '
    'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>'
    '</Types>')
ROOT_RELS = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" '
    'Target="xl/workbook.xml"/></Relationships>')
WORKBOOK = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    '<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
    'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships">'
    '<sheets><sheet name="Report" sheetId="1" r:id="rId1"/></sheets></workbook>')
WORKBOOK_RELS = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" '
    'Target="worksheets/sheet1.xml"/></Relationships>')


def _cell(value: str) -> str:
    if value == "":
        return "<c/>"
    if NUMBER.fullmatch(value):
        return f"<c><v>{value}</v></c>"
    return f'<c t="inlineStr"><is><t xml:space="preserve">{escape(value)}</t></is></c>'


# Every entry's time in the ZIP: the earliest a ZIP can record, not the time of writing, so that the same CSV always
# gives the same workbook bytes (the generator is deterministic; two runs a second apart differed before).
ENTRY_TIME = (1980, 1, 1, 0, 0, 0)


def _entry(name: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=ENTRY_TIME)
    info.compress_type = zipfile.ZIP_DEFLATED
    info._compresslevel = 1         # the fastest level (Python 3.11 has no public per-entry level; 3.13: compress_level)
    return info


def from_csv(src: Path, dst: Path) -> None:
    """Write ``src`` (a CSV with a header) as the first sheet of the workbook ``dst``."""
    with zipfile.ZipFile(dst, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        for name, text in (("[Content_Types].xml", CONTENT_TYPES), ("_rels/.rels", ROOT_RELS),
                           ("xl/workbook.xml", WORKBOOK), ("xl/_rels/workbook.xml.rels", WORKBOOK_RELS)):
            zf.writestr(_entry(name), text)
        with zf.open(_entry("xl/worksheets/sheet1.xml"), "w", force_zip64=True) as sheet, src.open(newline="") as fh:
            out = io.TextIOWrapper(sheet, encoding="utf-8", newline="")
            out.write('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
                      '<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>')
            for i, row in enumerate(csv.reader(fh)):
                cells = "".join(_cell(v) if i else f'<c t="inlineStr"><is><t>{escape(v)}</t></is></c>' for v in row)
                out.write(f"<row>{cells}</row>")
            out.write("</sheetData></worksheet>")
            out.flush()
            out.detach()
