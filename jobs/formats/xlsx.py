"""XLSX: any tabular format delivered as an Excel workbook (Adyen, Stripe, Braintree, Checkout.com, book...).

The first worksheet is streamed on the driver (stdlib ``zipfile`` + lxml ``iterparse``: shared and
inline strings, numbers, booleans, dates by their number format, the 1900 and 1904 date systems) into
CSV text exactly like the CSV the PSP would have delivered: the first non-empty row is the header,
empty rows are dropped, rows are padded to the header's width (Excel omits trailing empty cells) and a
row wider than the header stays wider (it is then a malformed row). The CSV is stored in the raw zone
(``raw/tenant=<t>/_sheets/``, named by the workbook's sha256 so lineage is unchanged), recognised by the same
content sniffers as a delivered CSV and parsed by that format's parser; its rows are recorded with the
format id ``<format>.xlsx``. Numbers are written as Excel shows them (15 significant digits), dates as
``YYYY-MM-DD HH:MM:SS``. A workbook whose first sheet no parser recognises is ``UNKNOWN_FORMAT``.
"""
from __future__ import annotations

import csv
import dataclasses
import io
import re
import zipfile
import zlib
from collections import defaultdict
from datetime import datetime, timedelta
from functools import reduce

from lxml import etree
from pyspark.sql import SparkSession

from jobs import storage
from jobs.formats import common as c
from jobs.formats.registry import FormatSpec, by_id, detect
from jobs.landing import LandedFile
from jobs.settings import Settings

NS = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"
REL_NS = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}"
PKG_REL = "{http://schemas.openxmlformats.org/package/2006/relationships}"
DATE_FORMAT_IDS = set(range(14, 23)) | {45, 46, 47}
_DATE_CODE = re.compile(r"[dmyhs]", re.IGNORECASE)
_CELL_REF = re.compile(r"([A-Z]+)(\d+)")


class XlsxError(ValueError):
    pass


# What a damaged workbook raises while it is read: a broken ZIP (bad CRC, header, compression method, a
# member flagged encrypted: RuntimeError), a broken deflate stream, a truncated member, a shared string
# index or date serial out of range.
UNREADABLE = (XlsxError, etree.XMLSyntaxError, KeyError, ValueError, IndexError, OverflowError, EOFError,
              RuntimeError, zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, NotImplementedError)


def _column_index(ref: str | None, fallback: int) -> int:
    if not ref:
        return fallback
    m = _CELL_REF.match(ref)
    if not m:
        return fallback
    n = 0
    for ch in m.group(1):
        n = n * 26 + ord(ch) - 64
    return n - 1


def _text_of(el) -> str:
    """Text of a shared/inline string: its ``t`` runs (phonetic ``rPh`` runs excluded)."""
    parts = []
    for node in el.iter(f"{NS}t"):
        parent = node.getparent()
        if parent is not None and parent.tag == f"{NS}rPh":
            continue
        parts.append(node.text or "")
    return "".join(parts)


def _shared_strings(zf: zipfile.ZipFile) -> list[str]:
    if "xl/sharedStrings.xml" not in zf.namelist():
        return []
    out = []
    with zf.open("xl/sharedStrings.xml") as fh:
        for _, el in etree.iterparse(fh, events=("end",), tag=f"{NS}si"):
            out.append(_text_of(el))
            el.clear()
    return out


def _date_styles(zf: zipfile.ZipFile) -> tuple[set[int], set[int]]:
    """(style indexes formatted as dates, of those: the ones showing a time)."""
    if "xl/styles.xml" not in zf.namelist():
        return set(), set()
    root = etree.fromstring(zf.read("xl/styles.xml"))
    custom = {}
    for fmt in root.iter(f"{NS}numFmt"):
        code = re.sub(r'"[^"]*"|\[[^\]]*\]|\\.', "", fmt.get("formatCode", ""))
        custom[int(fmt.get("numFmtId"))] = code
    dates, times = set(), set()
    xfs = root.find(f"{NS}cellXfs")
    for i, xf in enumerate(xfs if xfs is not None else []):
        fid = int(xf.get("numFmtId", "0"))
        code = custom.get(fid)
        if fid in DATE_FORMAT_IDS or (code is not None and _DATE_CODE.search(code)):
            dates.add(i)
            if fid in (18, 19, 20, 21, 22, 45, 46, 47) or (code is not None and re.search(r"[hs]", code, re.I)):
                times.add(i)
    return dates, times


def _first_sheet(zf: zipfile.ZipFile) -> tuple[str, bool]:
    """(part name of the first worksheet, whether the workbook uses the 1904 date system)."""
    names = set(zf.namelist())
    if "xl/workbook.xml" not in names:
        raise XlsxError("not a workbook: xl/workbook.xml is missing")
    wb = etree.fromstring(zf.read("xl/workbook.xml"))
    pr = wb.find(f"{NS}workbookPr")
    date1904 = pr is not None and pr.get("date1904", "false").lower() in ("1", "true")
    sheet = wb.find(f"{NS}sheets/{NS}sheet")
    if sheet is not None and "xl/_rels/workbook.xml.rels" in names:
        rid = sheet.get(f"{REL_NS}id")
        rels = etree.fromstring(zf.read("xl/_rels/workbook.xml.rels"))
        for rel in rels.iter(f"{PKG_REL}Relationship"):
            if rel.get("Id") == rid:
                target = rel.get("Target").lstrip("/")
                target = target if target.startswith("xl/") else f"xl/{target}"
                if target in names:
                    return target, date1904
    for fallback in ("xl/worksheets/sheet1.xml", "xl/worksheets/sheet.xml"):
        if fallback in names:
            return fallback, date1904
    raise XlsxError("the workbook has no worksheet")


def _number(text: str) -> str:
    text = text.strip()
    if re.fullmatch(r"-?\d+", text):
        return text
    value = float(text)
    shown = f"{value:.15g}"
    return text if "e" in shown else shown


def _excel_date(text: str, date1904: bool, with_time: bool) -> str:
    serial = float(text)
    base = datetime(1904, 1, 1) if date1904 else datetime(1899, 12, 30)
    moment = base + timedelta(days=serial)
    moment = (moment + timedelta(microseconds=500_000)).replace(microsecond=0)   # to the second
    if with_time or moment.time() != datetime.min.time():
        return moment.strftime("%Y-%m-%d %H:%M:%S")
    return moment.strftime("%Y-%m-%d")


def rows(data: bytes):
    """The first worksheet's rows as lists of strings ('' for an empty cell), in sheet order."""
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile as exc:
        raise XlsxError(f"not a ZIP archive: {exc}") from None
    with zf:
        part, date1904 = _first_sheet(zf)
        shared = _shared_strings(zf)
        dates, times = _date_styles(zf)
        with zf.open(part) as fh:
            for _, row in etree.iterparse(fh, events=("end",), tag=f"{NS}row", huge_tree=True):
                values: dict[int, str] = {}
                for i, cell in enumerate(row.iterchildren(f"{NS}c")):
                    idx = _column_index(cell.get("r"), max(values, default=-1) + 1 if values else i)
                    kind = cell.get("t", "n")
                    v = cell.find(f"{NS}v")
                    raw = v.text if v is not None and v.text is not None else None
                    if kind == "s" and raw is not None:
                        values[idx] = shared[int(raw)]
                    elif kind == "inlineStr":
                        is_ = cell.find(f"{NS}is")
                        values[idx] = _text_of(is_) if is_ is not None else ""
                    elif kind == "b" and raw is not None:
                        values[idx] = "TRUE" if raw.strip() == "1" else "FALSE"
                    elif raw is None:
                        values[idx] = ""
                    elif kind in ("str", "e"):
                        values[idx] = raw
                    elif int(cell.get("s", "0")) in dates:
                        values[idx] = _excel_date(raw, date1904, int(cell.get("s", "0")) in times)
                    else:
                        values[idx] = _number(raw)
                row.clear()
                while row.getprevious() is not None:
                    del row.getparent()[0]
                if values:
                    width = max(values) + 1
                    yield [values.get(i, "") for i in range(width)]


def to_csv(data: bytes) -> bytes:
    """The first worksheet as CSV text: header = first non-empty row, data rows padded to its width."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    width = None
    for values in rows(data):
        if not any(v.strip() for v in values):
            continue
        if width is None:
            while values and not values[-1].strip():
                values.pop()
            width = len(values)
        elif len(values) < width:
            values = values + [""] * (width - len(values))
        else:
            while len(values) > width and not values[-1].strip():
                values.pop()
        writer.writerow(values)
    if width is None:
        raise XlsxError("the first worksheet is empty")
    return out.getvalue().encode("utf-8")


def derived_uri(settings: Settings, f: LandedFile) -> str:
    """Inside the raw zone (the sheet is the delivered content in another encoding: same access rules and
    retention as the workbook itself), named by the workbook's sha256 so lineage is unchanged."""
    safe = re.sub(r"[^A-Za-z0-9._()+=-]+", "_", f.file_name)[:120]
    return storage.join(settings.lake, "raw", f"tenant={f.tenant_id}", "_sheets", f"{f.sha256}-{safe}.csv")


def parse_xlsx(spark: SparkSession, settings: Settings, spec: FormatSpec, files: list[LandedFile],
               ctx: c.ParseContext) -> c.ParseOutput:
    rejected: dict[str, tuple[str, str]] = {}
    groups: dict[str, list[LandedFile]] = defaultdict(list)
    for f in files:
        try:
            text = to_csv(storage.read_bytes(settings, f.raw_uri))
        except UNREADABLE as exc:
            why = str(exc) if isinstance(exc, XlsxError) else f"{type(exc).__name__}: {exc}"
            rejected[f.sha256] = (c.MALFORMED_ROW, f"unreadable workbook: {why}")
            continue
        inner = detect(text[:65536], exclude=(spec.format_id,))
        if inner is None:
            rejected[f.sha256] = (c.UNKNOWN_FORMAT, "the first worksheet's header is not a known format")
            continue
        uri = derived_uri(settings, f)
        storage.put_bytes(settings, text, uri)
        groups[inner.format_id].append(dataclasses.replace(f, raw_uri=uri, format=inner.format_id))
    outputs = []
    for format_id, group in sorted(groups.items()):
        inner = by_id(format_id)
        view = dataclasses.replace(inner, format_id=f"{inner.format_id}.xlsx",
                                   version=f"{inner.version}+xlsx.{spec.version}")
        module, func = inner.parser.split(":")
        import importlib

        outputs.append(getattr(importlib.import_module(module), func)(spark, settings, view, group, ctx))
    if not outputs:
        return c.nothing_parsed(spark, rejected)
    merged = c.ParseOutput(
        events=reduce(lambda a, b: a.unionByName(b), [o.events for o in outputs]),
        quarantine=reduce(lambda a, b: a.unionByName(b), [o.quarantine for o in outputs]),
        stats=reduce(lambda a, b: a.unionByName(b), [o.stats for o in outputs]),
    )
    for o in outputs:
        merged.rejected.update(o.rejected)
        merged.notes.update(o.notes)
    merged.rejected.update({sha: (r, c.mask_text(d)) for sha, (r, d) in rejected.items()})
    return merged
