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
    def csv_header(self) -> list[str]:
        try:
            row = next(csv.reader(io.StringIO(self.first_line)))
        except (StopIteration, csv.Error):
            return []
        return [c.strip() for c in row]

    @property
    def header_set(self) -> set[str]:
        return {c.lower() for c in self.csv_header}


def _has_all(head: Head, *names: str) -> bool:
    return set(names) <= head.header_set


BOOK_FIELDS = ("payment_id", "order_id", "psp", "psp_reference", "type", "amount", "currency", "created_at")


def sniff_stripe_itemized(head: Head) -> bool:
    hs = head.header_set
    return "balance_transaction_id" in hs and "reporting_category" in hs and (
        "automatic_payout_id" in hs or "automatic_payout_effective_at" in hs or "automatic_payout_effective_at_utc" in hs
    )


def sniff_adyen_sdr(head: Head) -> bool:
    return _has_all(head, "merchant account", "psp reference", "type", "net currency") and (
        "batch number" in head.header_set
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


REGISTRY: tuple[FormatSpec, ...] = (
    FormatSpec("stripe.payout_reconciliation_itemized", "1.0", "stripe", "psp", sniff_stripe_itemized,
               "jobs.formats.stripe:parse_itemized"),
    FormatSpec("adyen.settlement_details", "1.0", "adyen", "psp", sniff_adyen_sdr,
               "jobs.formats.adyen:parse_settlement_details"),
    FormatSpec("book.csv", "1.0", "book", "book", sniff_book_csv, "jobs.formats.book:parse_book_csv"),
    FormatSpec("book.jsonl", "1.0", "book", "book", sniff_book_jsonl, "jobs.formats.book:parse_book_jsonl"),
    FormatSpec("bank.camt053", "1.0", "bank", "bank", sniff_camt053, "jobs.formats.camt053:parse_camt053"),
)
UNKNOWN_FORMAT = "unknown"


def detect(head_bytes: bytes) -> FormatSpec | None:
    head = Head(head_bytes)
    matches = [spec for spec in REGISTRY if spec.sniff(head)]
    # Two sniffers claiming one file would be a guess: treat it as unknown rather than pick one.
    return matches[0] if len(matches) == 1 else None


def by_id(format_id: str) -> FormatSpec:
    for spec in REGISTRY:
        if spec.format_id == format_id:
            return spec
    raise KeyError(f"no parser registered for format {format_id!r}")
