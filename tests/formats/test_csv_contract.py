"""The CSV reading contract, checked against an independent reader (Python's ``csv`` module,
``tests/reference/csvfile.py``) on files no one on the team wrote by hand: hypothesis builds book exports
that vary every shape real ERPs and shops write (line breaks, quotes and commas inside quoted fields,
``;``-separated exports with decimal commas, a byte order mark, CRLF / LF / CR line ends, blank and
whitespace-only lines, trailing empty lines, no line end after the last record, header names in any
case and spacing, stray quotes in unquoted fields), the real parse stage loads them in one batch with
every other format's test files, and the record count, ordinals, ids, amounts in minor units and
descriptions must agree record by record. Every other CSV file of the run (samples, composed files,
the generator's files) is checked for record count and ordinals the same way."""
from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from formats.conftest import files
from reference import cards, csvfile

pytestmark = pytest.mark.spark

FIELDS = ["payment_id", "order_id", "psp", "psp_reference", "type", "amount", "currency", "created_at",
          "customer_email", "description"]
CURRENCIES = {"EUR": 2, "USD": 2, "JPY": 0, "KWD": 3}
LINE_ENDS = ["\r\n", "\n", "\r"]
# Free text as customers and clerks type it: separators, quotes and every kind of line break.
TEXT = st.lists(st.sampled_from(list("abcxyz ABC019éß€-:;#/") + [",", '"', "\n", "\r\n", "\r", '""', " , "]),
                max_size=12).map("".join)


@dataclass
class BookFile:
    name: str
    data: bytes


@st.composite
def header_names(draw) -> list[str]:
    order = draw(st.permutations(FIELDS))
    styles = st.sampled_from(["plain", "upper", "spaced", "title"])
    out = []
    for name in order:
        style = draw(styles)
        out.append({"plain": name, "upper": name.upper(), "spaced": f"  {name} ",
                    "title": name.replace("_", " ").title()}[style])
    return out


@st.composite
def amount_text(draw, currency: str, mark: str) -> str:
    exp = CURRENCIES[currency]
    units = draw(st.integers(min_value=0, max_value=10**9))
    text = str(units) if exp == 0 else f"{units // 10**exp}{mark}{units % 10**exp:0{exp}d}"
    if draw(st.integers(0, 9)) == 0:             # one too many decimals: quarantined (AMOUNT_PRECISION)
        text += "1" if exp else f"{mark}5"
    return text


@st.composite
def book_record(draw, n: int, mark: str = ".") -> dict[str, str]:
    currency = draw(st.sampled_from(sorted(CURRENCIES)))
    return {
        "payment_id": f"pay_{n:05d}",
        "order_id": draw(st.sampled_from([f"ORD-{n:06d}", f"ord {n}", ""])),
        "psp": draw(st.sampled_from(["stripe", "adyen"])),
        "psp_reference": draw(st.sampled_from([f"ch_{n:08d}", ""])),
        "type": draw(st.sampled_from(["payment", "refund"])),
        "amount": draw(amount_text(currency, mark)),
        "currency": currency,
        "created_at": f"2026-11-{draw(st.integers(10, 19))}T{draw(st.integers(0, 23)):02d}:15:00+01:00",
        "customer_email": draw(st.sampled_from(["anna@example.com", ""])),
        "description": draw(TEXT),
    }


@st.composite
def book_file(draw) -> bytes:
    """One book export: header, 1-8 records, written the way the drawn tool would write it (one in four
    the way a European ERP does: ``;``-separated, amounts mostly with a decimal comma)."""
    header = draw(header_names())
    eol = draw(st.sampled_from(LINE_ENDS))
    quote_all = draw(st.booleans())
    sep = draw(st.sampled_from([",", ",", ",", ";"]))
    mark = draw(st.sampled_from([",", ",", "."])) if sep == ";" else "."
    start = draw(st.integers(0, 10**5)) * 10
    records = [draw(book_record(start + i, mark)) for i in range(draw(st.integers(1, 8)))]
    out = io.StringIO(newline="")
    writer = csv.writer(out, delimiter=sep, lineterminator=eol,
                        quoting=csv.QUOTE_ALL if quote_all else csv.QUOTE_MINIMAL)
    writer.writerow(header)
    keys = [csvfile.header_key(h) for h in header]
    for rec in records:
        if draw(st.integers(0, 7)) == 0:                          # a blank or whitespace-only line
            out.write(draw(st.sampled_from(["", "   ", "\t"])) + eol)
        stray = not quote_all and draw(st.integers(0, 7)) == 0
        if stray:                                                  # a quote inside an unquoted field
            rec = {**rec, "description": '5" screen'}
            row = [rec[k] if k != "description" else "\x00" for k in keys]
            buf = io.StringIO(newline="")
            csv.writer(buf, delimiter=sep, lineterminator=eol).writerow(row)
            out.write(buf.getvalue().replace("\x00", rec["description"]))
        else:
            writer.writerow([rec[k] for k in keys])
    text = out.getvalue()
    if draw(st.booleans()):
        text += eol * draw(st.integers(1, 3))                      # trailing empty lines
    elif draw(st.booleans()):
        text = text[: -len(eol)]                                   # no line end after the last record
    bom = b"\xef\xbb\xbf" if draw(st.booleans()) else b""
    return bom + text.encode()


GENERATED: list[BookFile] = []


@files
def book_exports(work: Path) -> list[Path]:
    """40 hypothesis-drawn exports (derandomized: the same files on every run)."""
    drawn: list[bytes] = []

    @settings(max_examples=40, derandomize=True, database=None, deadline=None,
              suppress_health_check=list(HealthCheck))
    @given(book_file())
    def collect(data: bytes) -> None:
        drawn.append(data)

    collect()
    paths, seen = [], set()
    for i, data in enumerate(drawn):
        if data in seen or not csvfile.records(data):
            continue
        seen.add(data)
        path = work / f"hyp_book_{i:03d}.csv"
        path.write_bytes(data)
        GENERATED.append(BookFile(path.name, data))
        paths.append(path)
    assert len(paths) >= 30, "hypothesis drew too few distinct files"
    return paths


def _breaks(text: str | None) -> str | None:
    """A text with each run of line-break characters as one LF: the multi-line reader stores the file's
    own line separator inside a field as LF (univocity's normalisation; a CR-separated file's ``\\r\\n``
    is two breaks to it), so fields are compared modulo how their line breaks are encoded."""
    return None if text is None else re.sub(r"[\r\n]+", "\n", text)


def test_hypothesis_book_exports_agree_with_python_csv_record_by_record(formats_run):
    shapes = {"quoted line break": 0, "byte order mark": 0, "CR line ends": 0, "stray quote": 0, "blank line": 0,
              "semicolons": 0}
    for f in GENERATED:
        expected = csvfile.records(f.data)
        semicolons = csvfile.sniff_delimiter(f.data.decode("utf-8-sig")) == ";"
        shapes["semicolons"] += semicolons
        assert formats_run.landed[f.name] == "book.csv", f.name
        stats = formats_run.stats[f.name]
        assert stats.records_read == len(expected), (f.name, stats.records_read, len(expected))
        for rec in expected:
            key = (f.name, rec.ordinal)
            event, bad = formats_run.events.get(key), formats_run.quarantine.get(key)
            assert (event is None) != (bad is None), f"{key}: exactly one outcome per record"
            amount = csvfile.minor_units(rec.fields["amount"], rec.fields["currency"], decimal_comma=semicolons)
            if amount is None:
                assert bad is not None and bad.reason_code == "AMOUNT_PRECISION", key
                continue
            assert event is not None, (key, bad and bad.reason_code, bad and bad.raw)
            sign = 1 if rec.fields["type"] == "payment" else -1
            assert (event.merchant_payment_id, event.amount_minor, event.currency) == (
                rec.fields["payment_id"], sign * amount, rec.fields["currency"]), key
            # the parser trims surrounding spaces (only spaces) of a text field
            assert _breaks(event.description) == (_breaks(rec.fields["description"]).strip(" ") or None), key
        shapes["quoted line break"] += any("\n" in r.fields["description"] or "\r" in r.fields["description"]
                                           for r in expected)
        shapes["byte order mark"] += f.data.startswith(b"\xef\xbb\xbf")
        header_end = re.search(rb"[\r\n]+", f.data)                  # the header holds no line break
        shapes["CR line ends"] += header_end is not None and header_end.group().startswith(b"\r") and (
            not header_end.group().startswith(b"\r\n"))
        shapes["stray quote"] += b'5" screen' in f.data
        shapes["blank line"] += len(csvfile.rows(f.data)) < len(list(csv.reader(io.StringIO(
            f.data.decode("utf-8-sig"), newline=""), delimiter=";" if semicolons else ",")))
    assert all(n > 0 for n in shapes.values()), f"every shape drawn at least once: {shapes}"


CSV_FORMATS = ("book.csv", "stripe.payout_reconciliation_itemized", "stripe.balance_report_itemized",
               "stripe.balance_history", "adyen.", "braintree.", "checkout.")


def test_every_csv_file_of_the_run_has_the_records_python_csv_reads(formats_run):
    """Samples, composed files and the generator's files (book exports with quoted line breaks at the high
    noise level): every data record is read once, at its ordinal, as an event, a quarantined row or a
    record without money movement."""
    checked = 0
    for name, fmt in sorted(formats_run.landed.items()):
        if not fmt.startswith(CSV_FORMATS) or name in formats_run.rejected:
            continue
        expected = csvfile.records(formats_run.paths[name].read_bytes())
        stats = formats_run.stats[name]
        assert stats.records_read == len(expected), (name, stats.records_read, len(expected))
        seen = {o for (f, o) in formats_run.events if f == name} | {o for (f, o) in formats_run.quarantine if f == name}
        assert seen <= set(range(1, len(expected) + 1)), name
        assert len(seen) == stats.records_loaded + stats.records_quarantined, name
        if fmt == "book.csv":
            for rec in expected:
                event = formats_run.events.get((name, rec.ordinal))
                if event is not None:
                    # an id whose digits pass as a card number is stored masked, as every card number is
                    assert event.merchant_payment_id == cards.masked(rec.fields["payment_id"].strip()), (
                        name, rec.ordinal)
        checked += 1
    assert checked >= 10
