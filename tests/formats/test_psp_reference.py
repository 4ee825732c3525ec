"""Every PSP report read from CSV (and every workbook holding one) agrees with an independent reader.

The reference (``tests/reference/psp_csv.py``: Python's ``csv`` module or openpyxl, and a small rule per
format written from the format's documentation) says for each data record whether it moved money (its
amount and net in minor units, signed from the merchant's view, and its currency), moved none (skipped)
or should be quarantined, and per file whether it is refused by its header and what its control-total
verdict is. The parse stage's output must agree, record by record, on:

- every PSP file of the shared parse run, whichever module registered it: the composed samples in
  ``tests/data/formats`` and their broken variants (``test_psp_formats``), the generator's files at the
  high noise level (``test_generated_files``, CSV and XLSX), the PAN-planted copies, the workbooks of
  ``test_xlsx``... (run with the other format modules, as the suite does, to check them all);
- files hypothesis builds from a sample's header and rows, per format, varying the shapes real exports
  have: quoted line breaks, commas and quotes in free text, a byte order mark, CRLF / LF / CR line ends,
  blank and whitespace-only lines, trailing empty lines or no final line end, header names in any case and
  spacing, columns in another order (Stripe and Adyen, whose column order is configurable), fields quoted
  or not, a stray quote inside an unquoted field; plus an invalid record now and then and a file whose
  control totals do not add up; and workbooks of these (typed numbers and dates, empty rows, a header
  below empty rows, a second sheet).
"""
from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from formats.conftest import COMPOSED, DATA, files
from reference import csvfile, psp_csv

pytestmark = pytest.mark.spark

LINE_ENDS = ["\r\n", "\n", "\r"]
# Free text as merchants and PSPs write it: separators, quotes and every kind of line break.
TEXT = st.lists(st.sampled_from(list("abcxyz ABC019éß€-:;#/") + [",", '"', "\n", "\r\n", "\r", '""', " , "]),
                max_size=12).map("".join)
STYLES = ("plain", "upper", "lower", "spaced", "snake")


def _styled(name: str, style: str) -> str:
    return {"plain": name, "upper": name.upper(), "lower": name.lower(), "spaced": f"  {name} ",
            "snake": csvfile.header_key(name)}[style]


def _cents(text: str, delta: str = "0.01") -> str:
    return str(Decimal(text or "0") + Decimal(delta))


# ------------------------------------------------------------------------------------- what to vary
@dataclass
class Source:
    """A sample file and how its rows may be varied."""
    fmt: str
    path: Path
    text: tuple[str, ...]                              # free-text columns (normalised names)
    reorder: bool = False                              # the format's column order is configurable
    keep_all: bool = False                             # the rows belong together (a batch with its total)
    spoil: Callable[[list[str], list[list[str]], int], str] | None = None         # -> what it did
    unbalance: Callable[[list[str], list[list[str]]], None] | None = None
    text_rows: Callable[[list[str], list[str]], bool] = lambda keys, row: True   # rows whose text may vary

    def table(self) -> tuple[list[str], list[list[str]]]:
        rows = list(csv.reader(io.StringIO(self.path.read_text(encoding="utf-8-sig"), newline="")))
        return rows[0], [r for r in rows[1:] if r]


def _set(keys: list[str], row: list[str], name: str, value: str) -> None:
    row[keys.index(name)] = value


def _get(keys: list[str], row: list[str], name: str) -> str:
    return row[keys.index(name)]


def _spoil_stripe(gross: str, net: str):
    def spoil(keys, rows, choice):
        row = rows[0]
        if choice % 2:
            _set(keys, row, gross, _get(keys, row, gross) + "1")              # a decimal too many
            return "precision"
        _set(keys, row, net, _cents(_get(keys, row, net)))                    # net != gross - fee
        return "inconsistent"
    return spoil


def _spoil_adyen(keys, rows, choice):
    row = rows[0]
    if choice % 2:                                                             # a third decimal
        _set(keys, row, "markup_nc", str(Decimal(_get(keys, row, "markup_nc") or "0").quantize(Decimal("0.001"))
                                         + Decimal("0.001")))
        return "precision"
    _set(keys, row, "type", "Mystery")
    return "unknown type"


def _unbalance_adyen(keys, rows):
    payout = next(r for r in rows if _get(keys, r, "type") == "MerchantPayout")
    _set(keys, payout, "net_debit_nc", _cents(_get(keys, payout, "net_debit_nc")))


def _spoil_braintree(keys, rows, choice):
    row = next((r for r in rows if _get(keys, r, "transaction_status") == "settled"), None)
    if row is not None and choice % 2:
        for name in ("amount_submitted_for_settlement", "settlement_amount"):
            _set(keys, row, name, _get(keys, row, name).replace("0", "O", 1))
        return "letter in amount"
    _set(keys, rows[0], "transaction_type", "mystery")
    return "unknown type"


def _spoil_breakdown(keys, rows, choice):
    _set(keys, rows[0], "net_in_holding_currency", _cents(_get(keys, rows[0], "net_in_holding_currency")))
    return "inconsistent"


def _spoil_payouts(keys, rows, choice):
    _set(keys, rows[0], "payout_amount", _get(keys, rows[0], "payout_amount") + "1")
    return "precision"


def _unbalance_payouts(keys, rows):
    _set(keys, rows[0], "payments", _cents(_get(keys, rows[0], "payments")))


SOURCES = [
    Source("stripe.payout_reconciliation_itemized",
           COMPOSED / "stripe" / "payout_reconciliation_itemized_po_1PqR8s.csv", ("description",), reorder=True,
           spoil=_spoil_stripe("gross", "net")),
    Source("stripe.balance_report_itemized", COMPOSED / "stripe" / "balance_report_payouts_itemized.csv",
           ("description",), reorder=True, spoil=_spoil_stripe("gross", "net")),
    Source("stripe.balance_history", COMPOSED / "stripe" / "balance_history_2024-06.csv", ("description",),
           spoil=_spoil_stripe("amount", "net")),
    Source("adyen.settlement_details", COMPOSED / "adyen" / "settlement_detail_report_batch_412.csv",
           ("merchant_reference", "modification_reference"), reorder=True, keep_all=True, spoil=_spoil_adyen,
           unbalance=_unbalance_adyen,
           text_rows=lambda keys, row: _get(keys, row, "type") in ("Fee", "Balancetransfer")),
    Source("braintree.transactions", COMPOSED / "braintree" / "transaction_search_2024-06-10.csv",
           ("descriptor_name", "customer_last_name", "cardholder_name"), spoil=_spoil_braintree),
    Source("checkout.settlement_breakdown",
           COMPOSED / "checkout" / "settlement-breakdown_ent_acme_20240611_0000000K3P9Q_1.csv",
           ("reference", "processing_channel_name", "client_entity_name"), spoil=_spoil_breakdown),
    Source("checkout.payouts", COMPOSED / "checkout" / "payouts_ent_acme_20240611_20240612_1.csv",
           ("client_entity_name", "currency_account_name", "sub_entity_name"), spoil=_spoil_payouts,
           unbalance=_unbalance_payouts),
]
PAYPAL = {"paypal.stl": (COMPOSED / "paypal" / "STL-20240610.01.009.CSV", ("custom_field",)),
          "paypal.trr": (COMPOSED / "paypal" / "TRR-20240610.01.008.CSV",
                         ("transaction_subject", "transaction_note", "item_name"))}
PER_FORMAT = 8
WORKBOOKS = 6


# --------------------------------------------------------------------------------------- writing
@dataclass
class Drawn:
    fmt: str
    data: bytes
    shapes: set[str] = field(default_factory=set)
    name: str = ""


def _field(value: str, quote_all: bool) -> str:
    """RFC 4180: a field with a delimiter, a quote or a line break is quoted, its quotes doubled."""
    if quote_all or any(ch in value for ch in ',"\r\n'):
        return '"' + value.replace('"', '""') + '"'
    return value


@st.composite
def write(draw, header: list[str] | None, rows: list[list[str]], shapes: set[str],
          stray: tuple[int, int] | None = None) -> bytes:
    """The records written the way the drawn tool would: quoting, line ends, blank lines, BOM, last line.
    ``stray``: (row, column) of a field written ``5" screen`` without quotes (only when quoting is minimal)."""
    eol = draw(st.sampled_from(LINE_ENDS))
    quote_all = draw(st.booleans())
    lines = [] if header is None else [",".join(_field(h, quote_all) for h in header)]
    for i, row in enumerate(rows):
        if draw(st.integers(0, 6)) == 0:                          # a blank or whitespace-only line
            lines.append(draw(st.sampled_from(["", "   ", "\t"])))
            shapes.add("blank line")
        fields = [_field(v, quote_all) for v in row]
        if stray and stray[0] == i and stray[1] < len(row) and not quote_all:
            fields[stray[1]] = '5" screen'                        # a quote inside an unquoted field
            shapes.add("stray quote")
        lines.append(",".join(fields))
    text = eol.join(lines) + eol
    if draw(st.booleans()):
        text += eol * draw(st.integers(1, 3))                     # trailing empty lines
        shapes.add("trailing empty lines")
    elif draw(st.booleans()):
        text = text[: -len(eol)]                                  # no line end after the last record
        shapes.add("no final line end")
    shapes.add({"\r\n": "CRLF", "\n": "LF", "\r": "CR"}[eol])
    shapes.add("all quoted" if quote_all else "minimal quoting")
    bom = draw(st.booleans())
    if bom:
        shapes.add("byte order mark")
    if any(ch in value for row in rows for value in row for ch in "\r\n"):
        shapes.add("quoted line break")
        if "blank line" in shapes:                                # read by the multi-line reader
            shapes.add("blank line in a multi-line file")
    return (b"\xef\xbb\xbf" if bom else b"") + text.encode()


@st.composite
def csv_report(draw, src: Source, fault: int | None = None) -> Drawn:
    """One report of ``src``'s format built from its header and rows; ``fault``: the content fault (0, 1:
    an invalid record, 2: the control totals off, 3: a field short; other: none), else drawn."""
    shapes: set[str] = set()
    header, body = src.table()
    keys = [csvfile.header_key(h) for h in header]
    rows = [r[:] for r in body] if src.keep_all else [body[i][:] for i in draw(
        st.lists(st.integers(0, len(body) - 1), min_size=1, max_size=6))]
    for row in rows:
        if src.text_rows(keys, row):
            for name in src.text:
                if draw(st.booleans()):
                    _set(keys, row, name, draw(TEXT))
    mode = draw(st.integers(0, 7)) if fault is None else fault    # one content fault now and then
    if mode < 2 and src.spoil:
        shapes.add("invalid record: " + src.spoil(keys, rows, mode))
    elif mode == 2 and src.unbalance:
        src.unbalance(keys, rows)
        shapes.add("control total off")
    elif mode == 3:                                               # a field short
        rows[-1] = rows[-1][:-1]
        shapes.add("row too short")
    names = [_styled(h, draw(st.sampled_from(STYLES))) for h in header]
    if any(n != h for n, h in zip(names, header)):
        shapes.add("header case/spacing")
    if src.reorder and draw(st.booleans()):
        order = draw(st.permutations(range(len(header))))
        names = [names[i] for i in order]
        rows = [[row[i] for i in order if i < len(row)] for row in rows]
        keys = [keys[i] for i in order]
        shapes.add("columns reordered")
    stray = (len(rows) - 1, keys.index(src.text[0])) if draw(st.integers(0, 5)) == 0 else None
    data = draw(write(names, rows, shapes, stray))
    return Drawn(src.fmt, data, shapes)


@st.composite
def paypal_report(draw, fmt: str, fault: int | None = None) -> Drawn:
    """An STL / TRR: every record kept (the footers count and sum the SB rows), text and shape varied."""
    path, text = PAYPAL[fmt]
    shapes: set[str] = set()
    rows = [r for r in csv.reader(io.StringIO(path.read_text(encoding="utf-8-sig"), newline="")) if r]
    ch = next(r for r in rows if r[0] == "CH")
    keys = ["record_type", *(csvfile.header_key(h) for h in ch[1:])]
    body = [r for r in rows if r[0] == "SB"]
    for row in body:
        for name in text:
            if draw(st.booleans()):
                _set(keys, row, name, draw(TEXT))
    if draw(st.booleans()):                                       # PayPal's names, spaced out
        ch[1:] = [f" {h}  " if draw(st.booleans()) else h for h in ch[1:]]
        shapes.add("header case/spacing")
    mode = draw(st.integers(0, 7)) if fault is None else fault
    row = body[draw(st.integers(0, len(body) - 1))]
    if mode == 0:
        _set(keys, row, "gross_transaction_amount", _get(keys, row, "gross_transaction_amount")[:-2] + "O0")
        shapes.add("invalid record: letter in amount")
    elif mode == 1:
        _set(keys, row, "transaction_event_code", "TX999")
        shapes.add("invalid record: unknown event code")
    elif mode == 2:
        sf = next(r for r in rows if r[0] == "SF")
        sf[2] = str(int(sf[2]) + 1)
        shapes.add("control total off")
    stray = (rows.index(body[-1]), keys.index(text[0])) if draw(st.integers(0, 5)) == 0 else None
    data = draw(write(None, rows, shapes, stray))
    return Drawn(fmt, data, shapes)


TIMESTAMP = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d"
NUMBER = r"-?(0|[1-9]\d{0,11})(\.\d+)?"


@st.composite
def workbook(draw) -> Drawn:
    """A workbook whose first sheet holds one of the reports: amounts as number cells, timestamps as date
    cells (or both as text), text with line breaks, empty rows, the header below empty rows, a second
    sheet the reader must not read."""
    from openpyxl import Workbook

    src = draw(st.sampled_from(SOURCES))
    shapes: set[str] = {"workbook"}
    header, body = src.table()
    keys = [csvfile.header_key(h) for h in header]
    rows = [r[:] for r in body] if src.keep_all else [body[i][:] for i in draw(
        st.lists(st.integers(0, len(body) - 1), min_size=1, max_size=5))]
    for row in rows:
        if src.text_rows(keys, row):
            for name in src.text:
                if draw(st.booleans()):
                    _set(keys, row, name, draw(TEXT))
    typed = draw(st.booleans())
    shapes.add("typed cells" if typed else "text cells")
    wb = Workbook()
    ws = wb.active
    for _ in range(draw(st.integers(0, 2))):
        ws.append([])
        shapes.add("header below empty rows")
    ws.append([_styled(h, draw(st.sampled_from(STYLES))) for h in header])
    for row in rows:
        if draw(st.integers(0, 5)) == 0:
            ws.append([None] * len(header))
            shapes.add("empty row")
        cells = []
        for value in row:
            if typed and re.fullmatch(TIMESTAMP, value):
                cells.append(datetime.fromisoformat(value))
            elif typed and re.fullmatch(NUMBER, value):
                cells.append(Decimal(value) if "." in value else int(value))   # a number cell, no float
            else:
                cells.append(value if value != "" else None)
        ws.append(cells)
    wb.create_sheet("Notes").append(["not", "the", "report"])
    buf = io.BytesIO()
    wb.save(buf)
    if any(ch in value for row in rows for value in row for ch in "\r\n"):
        shapes.add("quoted line break")
    return Drawn(src.fmt, buf.getvalue(), shapes)


GENERATED: list[Drawn] = []


def _draw(strategy, n: int) -> list[Drawn]:
    drawn: list[Drawn] = []

    @settings(max_examples=n, derandomize=True, database=None, deadline=None,
              suppress_health_check=list(HealthCheck))
    @given(strategy)
    def collect(d: Drawn) -> None:
        drawn.append(d)

    collect()
    return drawn


@files
def psp_reference_files(work: Path) -> list[Path]:
    """The composed Stripe itemized report (registered nowhere else), and per format about ``PER_FORMAT``
    hypothesis-drawn reports (three of them with a given content fault: an invalid record of each kind,
    the control totals off where the format has them; duplicates dropped) plus ``WORKBOOKS`` workbooks;
    derandomized: the same files on every run."""
    paths = [COMPOSED / "stripe" / "payout_reconciliation_itemized_po_1PqR8s.csv"]
    known = {p.read_bytes() for p in COMPOSED.rglob("*") if p.is_file()} | {
        p.read_bytes() for p in (DATA / "slice").glob("*") if p.is_file()}
    GENERATED.clear()
    # per format: drawn files, and one with each content fault the format has (so that each occurs)
    batches = [_draw(csv_report(src), PER_FORMAT - 3) + [
        d for fault in (0, 1, 2) if fault < 2 or src.unbalance for d in _draw(csv_report(src, fault), 1)]
        for src in SOURCES]
    batches += [_draw(paypal_report(fmt), PER_FORMAT - 3) + [d for fault in (0, 1, 2)
                                                             for d in _draw(paypal_report(fmt, fault), 1)]
                for fmt in PAYPAL]
    batches.append(_draw(workbook(), WORKBOOKS))
    seen: set[bytes] = set()
    for batch in batches:
        for i, d in enumerate(batch):
            if d.data in seen or d.data in known:
                continue
            seen.add(d.data)
            suffix = "xlsx" if "workbook" in d.shapes else "csv"
            d.name = f"hyp_{d.fmt.replace('.', '_')}_{'wb_' if suffix == 'xlsx' else ''}{i:02d}.{suffix}"
            (work / d.name).write_bytes(d.data)
            GENERATED.append(d)
            paths.append(work / d.name)
    return paths


# ------------------------------------------------------------------------------------------- checks
def _reference(run, name: str):
    data = run.paths[name].read_bytes()
    return psp_csv.expect_workbook(data) if run.landed[name] == "tabular.xlsx" else psp_csv.expect(data)


def _agree(run, name: str, tally: dict) -> list[str]:
    """What the parse stage did with one file, against the reference: the disagreements."""
    landed = run.landed[name]
    exp = _reference(run, name)
    rejected = run.rejected.get(name)
    if exp is None:
        if landed == "tabular.xlsx":                   # a workbook of another format, or of none
            stats = run.stats.get(name)
            parsed_as = getattr(stats, "format", None) or ""
            return [] if rejected or (parsed_as and not parsed_as.startswith(psp_csv.FORMATS)) else [
                f"{name}: the reference reads no PSP report in this workbook, the parser read {parsed_as or '?'}"]
        return [f"{name}: landed as {landed}, the reference does not recognise it"]
    fmt = exp.format + (".xlsx" if landed == "tabular.xlsx" else "")
    tally.setdefault(exp.format, []).append(name)
    if landed != "tabular.xlsx" and landed != exp.format:
        return [f"{name}: landed as {landed}, the reference reads {exp.format}"]
    if exp.refused:
        ok = rejected is not None and rejected[0] == "SCHEMA_DRIFT"
        return [] if ok else [f"{name}: the reference refuses it ({exp.refused}), the parser: {rejected}"]
    if rejected:
        if rejected[0] == "CONTROL_TOTAL_MISMATCH" and (exp.control is False or not exp.control_known):
            tally.setdefault("held back", []).append(name)
            return []
        return [f"{name}: refused {rejected}, the reference reads it (control total {exp.control})"]
    if exp.control is False and exp.control_known:
        return [f"{name}: its control totals do not add up, the parser loaded it"]
    stats = run.stats[name]
    problems = []
    if stats.format != fmt:
        problems.append(f"{name}: parsed as {stats.format}, the reference reads {fmt}")
    if exp.control_known and stats.control_totals_ok != exp.control:
        problems.append(f"{name}: control_totals_ok {stats.control_totals_ok}, the reference {exp.control}")
    if stats.records_read != len(exp.outcomes):
        problems.append(f"{name}: records_read {stats.records_read}, the reference reads {len(exp.outcomes)}")
    ordinals = {o for (f, o) in run.events if f == name} | {o for (f, o) in run.quarantine if f == name}
    if not ordinals <= set(range(1, len(exp.outcomes) + 1)):
        problems.append(f"{name}: ordinals {sorted(ordinals)} beyond the {len(exp.outcomes)} records")
    for o in exp.outcomes:
        event, bad = run.events.get((name, o.ordinal)), run.quarantine.get((name, o.ordinal))
        where = f"{name}#{o.ordinal}"
        tally.setdefault(o.kind, []).append(where)
        if event is not None and bad is not None:
            problems.append(f"{where}: both an event and quarantined")
        elif o.kind == psp_csv.EVENT:
            if event is None:
                problems.append(f"{where}: the reference reads {o.amount} {o.currency}, the parser "
                                f"{'quarantined it: ' + bad.reason_code if bad else 'skipped it'}")
            elif (event.amount_minor, event.net_minor, event.currency) != (o.amount, o.net, o.currency):
                problems.append(f"{where}: amount/net/currency {event.amount_minor}/{event.net_minor}/"
                                f"{event.currency}, the reference {o.amount}/{o.net}/{o.currency}")
        elif o.kind == psp_csv.INVALID and bad is None:
            problems.append(f"{where}: the reference quarantines it ({o.why}), the parser "
                            f"{'loaded it' if event else 'skipped it'}")
        elif o.kind == psp_csv.SKIPPED and (event is not None or bad is not None):
            problems.append(f"{where}: moves no money, the parser "
                            f"{'loaded it' if event else 'quarantined it: ' + bad.reason_code}")
    expected_loaded = sum(o.kind == psp_csv.EVENT for o in exp.outcomes)
    expected_bad = sum(o.kind == psp_csv.INVALID for o in exp.outcomes)
    if not exp.count(psp_csv.UNCHECKED) and (stats.records_loaded, stats.records_quarantined) != (
            expected_loaded, expected_bad):
        problems.append(f"{name}: loaded/quarantined {stats.records_loaded}/{stats.records_quarantined}, "
                        f"the reference {expected_loaded}/{expected_bad}")
    return problems


def _psp_files(run) -> list[str]:
    return sorted(n for n, fmt in run.landed.items() if fmt in psp_csv.FORMATS or fmt == "tabular.xlsx")


def test_every_psp_report_of_the_run_agrees_with_the_reference(formats_run):
    tally: dict[str, list[str]] = {}
    problems = [p for name in _psp_files(formats_run) for p in _agree(formats_run, name, tally)]
    # every format is compared, on real, generated and varied files, and every kind of outcome occurs
    assert {f for f in psp_csv.FORMATS if len(tally.get(f, [])) >= 3} == set(psp_csv.FORMATS), {
        f: len(tally.get(f, [])) for f in psp_csv.FORMATS}
    compared = {n for f in psp_csv.FORMATS for n in tally.get(f, [])}
    generated = {n for n, fmt in formats_run.landed.items() if n.startswith(("g1_", "g2_", "g3_"))
                 and (fmt in psp_csv.FORMATS or fmt == "tabular.xlsx")}
    assert generated - compared <= {n for n in generated if not formats_run.stats[n].format.startswith(
        psp_csv.FORMATS)}, "every PSP report of the generator is compared"
    assert all(tally.get(k) for k in (psp_csv.EVENT, psp_csv.SKIPPED, psp_csv.INVALID, "held back")), {
        k: len(v) for k, v in tally.items()}
    assert not problems, f"{len(problems)} disagreement(s):\n" + "\n".join(problems[:60])


def test_hypothesis_reports_cover_every_format_and_shape(formats_run):
    """The drawn files reached the parser as the format they were built as, and between them every shape
    was drawn (the agreement itself is checked with every other file above)."""
    per_format: dict[str, int] = {}
    shapes: set[str] = set()
    for d in GENERATED:
        landed = formats_run.landed[d.name]
        assert landed == ("tabular.xlsx" if "workbook" in d.shapes else d.fmt), (d.name, landed)
        exp = psp_csv.expect_workbook(d.data) if "workbook" in d.shapes else psp_csv.expect(d.data)
        assert exp is not None and exp.format == d.fmt, d.name
        per_format[d.fmt] = per_format.get(d.fmt, 0) + ("workbook" not in d.shapes)
        shapes |= d.shapes
    assert all(per_format.get(f, 0) >= PER_FORMAT - 4 for f in psp_csv.FORMATS), per_format
    wanted = {"quoted line break", "blank line in a multi-line file", "byte order mark", "CR", "CRLF", "LF",
              "blank line", "trailing empty lines", "no final line end", "header case/spacing", "columns reordered",
              "stray quote", "all quoted", "minimal quoting", "row too short", "control total off", "workbook",
              "typed cells", "text cells", "header below empty rows", "empty row"}
    assert wanted <= shapes, sorted(wanted - shapes)
    assert any(s.startswith("invalid record") for s in shapes)
