"""Format detection by content, and the registry of versioned parsers.

Detection looks only at the first bytes of a file (its header or root element), never at its name,
so a file landed under any name is recognised. It imports nothing heavy: landing tasks in Airflow
call it. Each format names the module and function that parses it in Spark; the parse stage imports
that lazily. A file no sniffer recognises is ``UNKNOWN_FORMAT`` and is quarantined whole.
"""
from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import dataclass
from typing import Callable

BOM = b"\xef\xbb\xbf"


def delimiter_of(text: str) -> str:
    """``;`` for a CSV whose first non-blank line (its header) holds more semicolons than commas outside
    quotes (a European ERP's export), else ``,``."""
    line = next((ln for ln in text.replace("\r", "\n").split("\n") if ln.strip()), "")
    outside = re.sub(r'"[^"]*"', "", line)
    return ";" if outside.count(";") > outside.count(",") else ","


@dataclass(frozen=True)
class FormatSpec:
    format_id: str            # e.g. "stripe.payout_reconciliation_itemized"
    version: str              # parser version, recorded with every row it produces
    source: str               # stripe | adyen | ... | bank | book
    source_kind: str          # psp | bank | book
    sniff: Callable[["Head"], bool]
    parser: str               # "module:function", imported by the parse stage


@dataclass(frozen=True)
class Head:
    """The first bytes of a file, decoded once for all sniffers."""
    raw: bytes

    @property
    def text(self) -> str:
        return self.raw.removeprefix(BOM).decode("utf-8", errors="replace")

    @property
    def first_line(self) -> str:
        return self.text.lstrip().split("\n", 1)[0].rstrip("\r")

    @property
    def delimiter(self) -> str:
        return delimiter_of(self.text[:65536])

    @property
    def csv_header(self) -> list[str]:
        """The first non-blank CSV record (any line end; a quoted name may span lines)."""
        try:
            for row in csv.reader(io.StringIO(self.text, newline=""), delimiter=self.delimiter):
                if any(c.strip() for c in row):
                    return [c.strip() for c in row]
        except csv.Error:
            pass
        return []

    @property
    def header_set(self) -> set[str]:
        """The header's names as the parsers key them: any case and spacing (``Order Id`` = ``order_id``)."""
        return {_norm(c) for c in self.csv_header}


def _has_all(head: Head, *names: str) -> bool:
    return {_norm(n) for n in names} <= head.header_set


BOOK_FIELDS = ("payment_id", "order_id", "psp", "psp_reference", "type", "amount", "currency", "created_at")


def sniff_stripe_itemized(head: Head) -> bool:
    hs = head.header_set
    return "balance_transaction_id" in hs and "reporting_category" in hs and (
        "automatic_payout_id" in hs or "automatic_payout_effective_at" in hs or "automatic_payout_effective_at_utc" in hs
    )


def sniff_stripe_balance_report(head: Head) -> bool:
    """Balance report (``balance_change_from_activity.itemized.*``, ``payouts.itemized.*``): the itemized
    columns without the automatic payout ones."""
    hs = head.header_set
    return ("balance_transaction_id" in hs and "reporting_category" in hs and {"gross", "net", "currency"} <= hs
            and not any(h.startswith("automatic_payout") for h in hs))


def _norm(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", name.strip().lower()).strip("_")


def sniff_stripe_balance_history(head: Head) -> bool:
    """The Dashboard's legacy balance history export: ``id,Type,Source,Amount,Fee,Net,Currency,Created (UTC)``
    (amount headers may carry the currency: ``Amount (MYR)``)."""
    names = {re.sub(r"_[a-z]{3}$", "", _norm(h)) if _norm(h).startswith(("amount_", "fee_", "net_")) else _norm(h)
             for h in head.csv_header}
    return {"id", "type", "source", "amount", "fee", "net"} <= names and bool(
        names & {"created_utc", "created"}) and "balance_transaction_id" not in names


_STRIPE_EVENT = re.compile(r'"object"\s*:\s*"event"')
_STRIPE_EVENT_TYPE = re.compile(r'"type"\s*:\s*"[a-z_]+(\.[a-z_]+)+"')


def sniff_stripe_events(head: Head) -> bool:
    """Stripe webhook Event objects: one per line, a JSON array of them, or a single (pretty) event."""
    text = head.text.lstrip()
    return text[:1] in ("{", "[") and bool(_STRIPE_EVENT.search(text[:65536])) and bool(
        _STRIPE_EVENT_TYPE.search(text[:65536])) and '"pending_webhooks"' in text[:65536]


def sniff_adyen_sdr(head: Head) -> bool:
    return _has_all(head, "merchant account", "psp reference", "type", "net currency") and (
        "batch_number" in head.header_set
    )


def sniff_book_csv(head: Head) -> bool:
    return _has_all(head, *BOOK_FIELDS)


def sniff_book_jsonl(head: Head) -> bool:
    line = head.first_line.strip()
    if not line.startswith("{"):
        return False
    try:
        obj = json.loads(line)
    except json.JSONDecodeError:
        return False
    return isinstance(obj, dict) and set(BOOK_FIELDS) <= set(obj)


_CAMT053 = re.compile(r"urn:iso:std:iso:20022:tech:xsd:camt\.053\.001\.(\d{2})")


def sniff_camt053(head: Head) -> bool:
    text = head.text.lstrip()
    return text.startswith("<") and bool(_CAMT053.search(text[:4096])) and "BkToCstmrStmt" in text[:8192]


PAYPAL_RECORDS = ("RH", "FH", "SH", "CH", "SB", "SF", "SC", "RF", "RC", "FF")


def paypal_column_header(head: Head) -> list[str] | None:
    """The ``CH`` record of a PayPal STL/TRR file (its column names), when the file is one."""
    lines = [ln for ln in head.text.splitlines()[:50] if ln.strip()]
    if not lines:
        return None
    try:
        first = next(csv.reader(io.StringIO(lines[0])))
    except (csv.Error, StopIteration):
        return None
    if not first or first[0].strip() not in PAYPAL_RECORDS:
        return None
    for line in lines:
        try:
            row = next(csv.reader(io.StringIO(line)))
        except (csv.Error, StopIteration):
            return None
        if row and row[0].strip() == "CH":
            return [c.strip() for c in row[1:]]
    return None


def _paypal_names(head: Head) -> set[str]:
    """The CH record's column names as the parser keys them (any case and spacing)."""
    return {_norm(c) for c in paypal_column_header(head) or ()}


def sniff_paypal_stl(head: Head) -> bool:
    names = _paypal_names(head)
    return {"transaction_id", "transaction_event_code"} <= names and "transactional_status" not in names


def sniff_paypal_trr(head: Head) -> bool:
    return {"transaction_id", "transaction_event_code", "transactional_status"} <= _paypal_names(head)


def sniff_braintree(head: Head) -> bool:
    hs = head.header_set
    return {"transaction_id", "transaction_type", "transaction_status", "currency_iso_code"} <= hs and bool(
        hs & {"amount_submitted_for_settlement", "settlement_amount", "amount_authorized"})


def sniff_checkout_breakdown(head: Head) -> bool:
    return _has_all(head, "payout id", "holding currency", "net in holding currency", "type", "payment id")


def sniff_checkout_payouts(head: Head) -> bool:
    return _has_all(head, "payout id", "payout amount", "holding currency", "payout date")


_MT940_TAGS = re.compile(r"(?:^|\{4:):(20|25|28C?|60[FM]|61|62[FM]):", re.MULTILINE)   # :20: may follow {4:


def sniff_mt940(head: Head) -> bool:
    """SWIFT MT940: the statement tags (``:20:``, ``:25:``, ``:60F:``, ``:61:``...), optionally inside the
    ``{1:...}{2:...}{4:`` block or after a bank's preamble lines."""
    tags = {m.group(1) for m in _MT940_TAGS.finditer(head.text[:65536])}
    return "20" in tags and "25" in tags and bool(tags & {"60F", "60M"})


_BAI2_HEADER = re.compile(r"^01,[^,\n]*,[^,\n]*,\d{6},\d{2,4},")
_BAI2_GROUP = re.compile(r"(?:\n|/\s*)02,")


def sniff_bai2(head: Head) -> bool:
    """BAI2: a ``01`` file header (sender, receiver, YYMMDD, HHMM) followed by a ``02`` group header."""
    text = head.text.lstrip()
    return bool(_BAI2_HEADER.match(text)) and bool(_BAI2_GROUP.search(text[:65536]))


def sniff_xlsx(head: Head) -> bool:
    """An Office Open XML workbook (a ZIP whose parts live under ``xl/``); its first sheet is then read as
    a table and recognised by the sniffers above."""
    return head.raw.startswith(b"PK\x03\x04") and (b"xl/workbook.xml" in head.raw or b"xl/worksheets/" in head.raw)


REGISTRY: tuple[FormatSpec, ...] = (
    FormatSpec("stripe.payout_reconciliation_itemized", "1.1", "stripe", "psp", sniff_stripe_itemized,
               "jobs.formats.stripe:parse_itemized"),
    FormatSpec("stripe.balance_report_itemized", "1.0", "stripe", "psp", sniff_stripe_balance_report,
               "jobs.formats.stripe:parse_itemized"),
    FormatSpec("stripe.balance_history", "1.0", "stripe", "psp", sniff_stripe_balance_history,
               "jobs.formats.stripe_history:parse_balance_history"),
    FormatSpec("stripe.events", "1.0", "stripe", "psp", sniff_stripe_events, "jobs.formats.stripe_events:parse_events"),
    FormatSpec("adyen.settlement_details", "1.1", "adyen", "psp", sniff_adyen_sdr,
               "jobs.formats.adyen:parse_settlement_details"),
    FormatSpec("paypal.stl", "1.0", "paypal", "psp", sniff_paypal_stl, "jobs.formats.paypal:parse_stl"),
    FormatSpec("paypal.trr", "1.0", "paypal", "psp", sniff_paypal_trr, "jobs.formats.paypal:parse_trr"),
    FormatSpec("braintree.transactions", "1.0", "braintree", "psp", sniff_braintree,
               "jobs.formats.braintree:parse_transactions"),
    FormatSpec("checkout.settlement_breakdown", "1.0", "checkout", "psp", sniff_checkout_breakdown,
               "jobs.formats.checkout:parse_settlement_breakdown"),
    FormatSpec("checkout.payouts", "1.0", "checkout", "psp", sniff_checkout_payouts,
               "jobs.formats.checkout:parse_payouts"),
    FormatSpec("book.csv", "1.1", "book", "book", sniff_book_csv, "jobs.formats.book:parse_book_csv"),
    FormatSpec("book.jsonl", "1.1", "book", "book", sniff_book_jsonl, "jobs.formats.book:parse_book_jsonl"),
    FormatSpec("bank.camt053", "1.2", "bank", "bank", sniff_camt053, "jobs.formats.camt053:parse_camt053"),
    FormatSpec("bank.mt940", "1.1", "bank", "bank", sniff_mt940, "jobs.formats.mt940:parse_mt940"),
    FormatSpec("bank.bai2", "1.1", "bank", "bank", sniff_bai2, "jobs.formats.bai2:parse_bai2"),
    FormatSpec("tabular.xlsx", "1.0", "xlsx", "psp", sniff_xlsx, "jobs.formats.xlsx:parse_xlsx"),
)
UNKNOWN_FORMAT = "unknown"


def detect(head_bytes: bytes, exclude: tuple[str, ...] = ()) -> FormatSpec | None:
    head = Head(head_bytes)
    matches = [spec for spec in REGISTRY if spec.format_id not in exclude and spec.sniff(head)]
    # Two sniffers claiming one file would be a guess: treat it as unknown rather than pick one.
    return matches[0] if len(matches) == 1 else None


def by_id(format_id: str) -> FormatSpec:
    for spec in REGISTRY:
        if spec.format_id == format_id:
            return spec
    raise KeyError(f"no parser registered for format {format_id!r}")
