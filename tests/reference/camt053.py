"""An independent reader of ISO 20022 camt.053 bank statements, for the tests: lxml's tree and XPath by
local name (so any ``camt.053.001.NN`` namespace and any prefix), sharing no code with the streaming
parser in ``jobs/formats/camt053.py``; its currency table is its own.

What it returns per document: every ``Ntry`` of every ``Stmt`` (ordinal = its 1-based position among all
the document's entries, in document order) with its amount in signed minor units (``CdtDbtInd`` CRDT > 0,
DBIT < 0; the indicator already is the booking's direction, a reversal included), its currency, whether
it is booked (``Sts`` or, from version 8, ``Sts/Cd``; none = booked) and, when the parse stage should
quarantine it, the reason code; per ``Stmt`` the balance verdict: True when the opening booked balance
(``OPBD``, else ``PRCD``) + booked entries = the closing booked balance (``CLBD``), False when not, None
when it cannot be checked (a balance missing or unreadable, balances and entries in more than one
currency, or an entry that is not loaded). And per entry the references that ``bank_text`` must keep:
``EndToEndId`` (but ``NOTPROVIDED``), ``Ustrd`` and the structured creditor reference ``Strd/CdtrRefInf/Ref``.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime

from lxml import etree

EXPONENT = {**dict.fromkeys("EUR USD GBP CHF SEK NOK DKK PLN CZK HUF RON BGN CAD AUD NZD SGD HKD CNY INR ZAR MXN "
                            "BRL TRY ILS AED SAR THB MYR PHP".split(), 2),
            **dict.fromkeys("JPY KRW ISK CLP VND XOF XAF".split(), 0),
            **dict.fromkeys("KWD BHD JOD OMR TND".split(), 3)}
WITHDRAWN = set("DEM FRF NLG ITL ESP BEF ATS PTE FIM IEP GRD LUF XEU VEB CYP MTL SIT SKK EEK LVL LTL HRK ECS VEF "
                "TRL ROL".split())


def _path(*names: str) -> str:
    return "/".join(f"*[local-name()='{n}']" for n in names)


def _first(el, *names: str) -> str | None:
    found = el.xpath(_path(*names))
    text = found[0].text if found else None
    return text.strip() if text and text.strip() else None


@dataclass
class Entry:
    ordinal: int
    amount_minor: int | None
    currency: str
    booked: bool
    reason: str | None = None
    references: list[str] = field(default_factory=list)


@dataclass
class Reading:
    is_statement: bool
    entries: list[Entry]
    verdicts: list[bool | None]

    @property
    def verdict(self) -> bool | None:
        return False if False in self.verdicts else (None if None in self.verdicts else True)


def minor_units(text: str | None, currency: str) -> tuple[str | None, int | None]:
    """(reason code, minor units) of an ISO 20022 amount: an unsigned decimal in the currency's exponent."""
    text = (text or "").strip()
    if not text:
        return "BAD_AMOUNT", None
    if currency in WITHDRAWN:
        return "WITHDRAWN_CURRENCY", None
    if currency not in EXPONENT:
        return "UNKNOWN_CURRENCY", None
    if not re.fullmatch(r"\d+(\.\d*)?|\.\d+", text):
        return "BAD_AMOUNT", None
    whole, _, fraction = text.partition(".")
    fraction = fraction.rstrip("0")
    if len(fraction) > EXPONENT[currency]:
        return "AMOUNT_PRECISION", None
    minor = int((whole or "0") + fraction.ljust(EXPONENT[currency], "0"))
    return (None, minor) if minor < 10 ** 18 else ("BAD_AMOUNT", None)     # the largest a signed 64-bit column holds


def _booking_date(entry) -> bool:
    """Whether the entry has a readable booking date (``BookgDt/Dt`` or ``BookgDt/DtTm``)."""
    when = _first(entry, "BookgDt", "DtTm")
    if when:
        try:
            datetime.fromisoformat(when.replace("Z", "+00:00"))
            return True
        except ValueError:
            return False
    day = _first(entry, "BookgDt", "Dt")
    try:
        return bool(day) and bool(date.fromisoformat(day[:10]))
    except ValueError:
        return False


def read(data: bytes) -> Reading:
    root = etree.fromstring(data, etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=True))
    statements = root.xpath("//*[local-name()='Stmt']")
    entries: list[Entry] = []
    verdicts: list[bool | None] = []
    for stmt in statements:
        account_ccy = (_first(stmt, "Acct", "Ccy") or "").upper()
        balances: dict[str, tuple[int, str]] = {}
        broken = False
        for bal in stmt.xpath(_path("Bal")):
            code = _first(bal, "Tp", "CdOrPrtry", "Cd")
            amounts = bal.xpath(_path("Amt"))
            if code not in ("OPBD", "PRCD", "CLBD") or not amounts:
                continue
            ccy = (amounts[0].get("Ccy") or "").strip().upper()
            reason, minor = minor_units(amounts[0].text, ccy)
            if reason:
                broken = True
                continue
            sign = -1 if _first(bal, "CdtDbtInd") == "DBIT" else 1
            balances.setdefault(code, (sign * minor, ccy))
        movement, currencies, not_loaded = 0, set(), False
        for ntry in stmt.xpath(_path("Ntry")):
            amt = ntry.xpath(_path("Amt"))
            ccy = ((amt[0].get("Ccy") if amt else None) or account_ccy).strip().upper()
            status = (_first(ntry, "Sts") or _first(ntry, "Sts", "Cd") or "BOOK").upper()
            entry = Entry(len(entries) + 1, None, ccy, status == "BOOK")
            entries.append(entry)
            entry.reason, minor = minor_units(amt[0].text if amt else None, ccy)
            if entry.reason is None and entry.booked and not _booking_date(ntry):
                entry.reason = "BAD_TIMESTAMP"
            if entry.reason:
                not_loaded = True
                continue
            entry.amount_minor = minor if _first(ntry, "CdtDbtInd") == "CRDT" else -minor
            if entry.booked:
                movement += entry.amount_minor
                currencies.add(ccy)
            refs = [t for t in ntry.xpath(".//*[local-name()='EndToEndId']/text()") if t.strip() != "NOTPROVIDED"]
            refs += ntry.xpath(".//*[local-name()='RmtInf']/*[local-name()='Ustrd']/text()")
            refs += ntry.xpath(".//*[local-name()='Strd']/*[local-name()='CdtrRefInf']/*[local-name()='Ref']/text()")
            entry.references = [r.strip() for r in refs if r.strip()]
        opening = balances.get("OPBD") or balances.get("PRCD")
        closing = balances.get("CLBD")
        if not_loaded or broken or opening is None or closing is None:
            verdicts.append(None)
        elif len({opening[1], closing[1], *currencies, *([account_ccy] if account_ccy else [])}) > 1:
            verdicts.append(None)
        else:
            verdicts.append(opening[0] + movement == closing[0])
    return Reading(bool(statements), entries, verdicts)
