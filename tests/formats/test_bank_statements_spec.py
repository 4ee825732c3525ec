"""MT940 and camt.053 against their layouts: the real parsers and independent readers
(``tests/reference/mt940.py``, from the SWIFT MT940 layout; ``tests/reference/camt053.py``, lxml by local
name; no code shared) must agree on every file, entry by entry (ordinal, amount in signed minor units,
currency; loaded, quarantined with which reason, or skipped) and on the balance verdict (a statement that
does not add up holds its file back, one with a quarantined entry cannot be verified).

The files:
(a) every MT940 and camt.053 sample in ``tests/data/samples`` (wolph/mt940 and genkgo/camt test files)
    and ``tests/data/formats/mt940``;
(b) the generator's statements: MT940 at noise ``high`` (German ``?NN`` :86: wrapped over lines) and
    ``low`` (Dutch structured :86:, as before), camt.053 at ``high``;
(c) files made from a model of each format by ``make_mt940`` / ``make_camt``: MT940 with or without the
    ``{1:}{2:}{3:}{4:`` envelope, several messages and statements (and 60M/62M pages) per file, :61: with and
    without entry date and funds code, reversals, :86: German (``?NN`` with ``EREF+``/``KREF+``/``SVWZ+``),
    Dutch (``/EREF/../CNTP/../REMI/``) or free text wrapped over lines, several :86: per line (Rabobank),
    CRLF/LF line ends and trailing blanks; camt.053 001.02 to 001.08 (prefixed or default namespace), several
    statements, batch bookings (``Btch`` + several ``TxDtls``), ``Ustrd``/``Strd``, ``EndToEndId``,
    reversals, pending entries; both with withdrawn (DEM, FRF, XEU...) and unknown (XXY) currencies,
    unreadable or too precise amounts and statements that do not add up. A seeded batch goes through the
    real parse stage in the shared format run (one Spark job for all); the same makers, drawn by
    hypothesis, feed property tests of the driver-side parsers (``parse_statements``) without Spark. For
    the model's files its own truth is checked as well.
"""
from __future__ import annotations

import hashlib
import re
import shutil
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import formats.test_bank_formats  # noqa: F401  (registers the MT940 and camt.053 samples in the shared run)
from formats.conftest import COMPOSED, SAMPLES, files
from formats.picks import DrawPick, RandomPick
from reference import camt053 as ref_camt
from reference import mt940 as ref_mt940

MT940_SAMPLES = sorted(p for p in (SAMPLES / "mt940").glob("*.sta")) + sorted((COMPOSED / "mt940").glob("*.sta"))
CAMT_SAMPLES = sorted((SAMPLES / "camt053").glob("*.xml"))
REGISTERED_BY_TEST_BANK_FORMATS = {       # psp_payouts.sta under the name mt940_swift_block.sta
    "betterplace-sepa_mt9401.sta", "cmxl-mt940.sta", "self-provided-gv_codes.sta", "jejik-abnamro.sta",
    "jejik-rabobank.sta", "jejik-triodos.sta", "psp_payouts.sta", *(p.name for p in CAMT_SAMPLES)}
MODEL_MT940 = 45
MODEL_CAMT = 30
MODEL_SEED = 20261120
GENERATED: dict[str, Path] = {}                  # file name in the run -> generator file
MADE: dict[str, "Made"] = {}                     # file name in the run -> model file with its truth

EXPONENT = {"EUR": 2, "USD": 2, "GBP": 2, "CHF": 2, "PLN": 2, "SEK": 2, "JPY": 0, "KWD": 3}
ACTIVE = ("EUR", "EUR", "EUR", "USD", "GBP", "CHF", "PLN", "JPY", "KWD")
WITHDRAWN = ("DEM", "FRF", "NLG", "ITL", "ESP", "BEF", "ATS", "PTE", "FIM", "IEP", "GRD", "LUF", "XEU", "VEB")
UNKNOWN = ("XXY", "QQQ")
NAMES = ("MUSTERMANN GMBH", "ACME LOGISTICS B.V.", "JANSSEN EN ZONEN", "OXFORD TRADING LTD",
         "PAYPAL (EUROPE) S.A R.L. ET CIE, S.C.A.", "STRIPE PAYMENTS EUROPE LTD", "HUTA SZKLA TOPIC UL PRZEMYSLOWA")
WORDS = ("INVOICE", "PAYOUT", "BATCH", "REFUND", "ORDER", "SETTLEMENT", "FEE", "RENT", "NOVEMBER", "CUSTOMER",
         "TRANSFER", "NR.", "412,", "2026-11-19", "DEPOSIT", "CREDIT", "NOTE", "(PART)", "1/2", "+", "'", "CHARGES",
         "GEBÜHR", "ZAHLUNGSEINGÄNGE")
ID_CHARS = "ABCDEFGHJKLMNPQRSTUVWXYZ0123456789"


def ws(text: str | None) -> str:
    return re.sub(r"\s+", "", text or "")


def tokens(text: str | None) -> set[str]:
    from jobs.match.payout_bank import TOKEN_SPLIT

    return set(re.split(TOKEN_SPLIT, (text or "").upper()))


# ---------------------------------------------------------------------------------------- choices
def an_id(pick, lo: int = 8, hi: int = 16) -> str:
    """A reference as PSPs and banks write them: letters and digits, never a run of digits a card number
    could hide in."""
    length = pick.integer(lo, hi)
    text = pick.choice("ABCDEFGHJKLMNPQRSTUVWXYZ") + "".join(pick.choice(ID_CHARS) for _ in range(length - 1))
    return re.sub(r"(\d{6})(?=\d)", r"\1X", text)


def words(pick, lo: int, hi: int) -> str:
    return " ".join(pick.choice(WORDS) for _ in range(pick.integer(lo, hi)))


def amount_text(minor: int, ccy: str, separator: str) -> str:
    exp = EXPONENT.get(ccy, 2)
    digits = str(abs(minor)).rjust(exp + 1, "0")
    return digits[:-exp] + separator + digits[-exp:] if exp else digits + (separator if separator == "," else "")


@dataclass
class Expected:
    ordinal: int
    amount_minor: int | None
    currency: str | None
    reason: str | None = None
    booked: bool = True
    ids: list[str] = field(default_factory=list)       # must appear as written in bank_text
    texts: list[str] = field(default_factory=list)     # must appear, blanks aside
    name: str | None = None                            # must not appear


@dataclass
class Made:
    data: bytes
    entries: list[Expected]
    verdicts: list[bool | None]

    @property
    def verdict(self) -> bool | None:
        return False if False in self.verdicts else (None if None in self.verdicts else True)


# ------------------------------------------------------------------------------ MT940, a model
def _cut_ok(rest: str, cut: int) -> bool:
    """A wrapped line may not start with ':' or '-' (it would read as a tag or an end) nor be a lone '$', and
    does not end in a blank (readers drop trailing blanks, as banks pad lines with them)."""
    return rest[cut] not in ":-$" and rest[cut - 1] != " " and rest[:cut].strip() not in ("", "-", "$")


def _wrap(pick, text: str, mode: str) -> list[str]:
    """:86: field text as lines: ``full`` = 65 characters each (the bank cut mid-word), ``total`` = 65 with
    the tag on the first line, ``words`` = cut at a blank, so shorter than a full line, ``random`` = anywhere
    (a cut is moved back where ``_cut_ok`` says so)."""
    lines, rest, first = [], text, True
    while rest:
        width = 61 if first and mode == "total" else 65
        if len(rest) <= width:
            lines.append(rest)
            break
        if mode == "words":
            cut = rest.rfind(" ", 1, width)
            if cut <= 0:
                cut = width
            lines.append(rest[:cut])
            rest = rest[cut + 1:] if rest[cut:cut + 1] == " " else rest[cut:]
        else:
            cut = pick.integer(12, width) if mode == "random" else width
            while cut > 1 and not _cut_ok(rest, cut):
                cut -= 1
            lines.append(rest[:cut])
            rest = rest[cut:]
        first = False
    return lines


def _german_86(pick, e: Expected, credit: bool) -> list[str]:
    sep = ">" if pick.chance(0.1) else "?"
    gvc = "000" if sep == ">" else pick.choice(("166", "105", "116", "177", "835", "051", "020"))
    parts = [f"{gvc}{sep}00{pick.choice(('SEPA-GUTSCHRIFT', 'LASTSCHRIFT', 'UEBERWEISUNG'))}",
             f"{sep}10{pick.integer(100, 9999)}"]
    purpose = []
    for key in ("EREF", "KREF", "MREF"):
        if pick.chance(0.45):
            value = an_id(pick, 8, 30)
            purpose.append(f"{key}+{' ' if pick.chance(0.2) else ''}{value}")
            e.ids.append(value)
    if pick.chance(0.85) or not purpose:
        text = words(pick, 1, 6)
        keyword = purpose or pick.chance(0.7)
        purpose.append(f"SVWZ+{text}" if keyword else text)
        e.texts.append(text)
    subfields = []
    for text in purpose:                             # each SEPA keyword opens a subfield, 27 characters each
        subfields += [text[i:i + 27] for i in range(0, len(text), 27)]
    keys = [*range(20, 30), *range(60, 64)]
    parts += [f"{sep}{keys[i]}{value}" for i, value in enumerate(subfields[:len(keys)])]
    if pick.chance(0.7):
        parts += [f"{sep}30ABNANL2A", f"{sep}31NL91ABNA0417164300"]
    if pick.chance(0.8):
        e.name = pick.choice(NAMES)
        parts.append(f"{sep}32{e.name[:27]}" + (f"{sep}33{e.name[27:]}" if len(e.name) > 27 else ""))
    if pick.chance(0.2):
        parts.append(f"{sep}34{pick.integer(100, 999)}")
    text = "".join(parts)
    if pick.chance(0.3):                             # one subfield to a line, as many German banks write
        return [p for p in re.split(r"(?=\?\d\d)", text) if p] if sep == "?" else _wrap(pick, text, "full")
    return _wrap(pick, text, pick.choice(("full", "total", "random")))


def _dutch_86(pick, e: Expected) -> list[str]:
    segments = []
    for tag in ("EREF", "KREF", "PREF"):
        if pick.chance(0.5):
            value = an_id(pick, 8, 30)
            segments.append(f"/{tag}/{value}/")
            e.ids.append(value)
    if pick.chance(0.8):
        e.name = pick.choice(NAMES)
        segments.append(f"/CNTP/NL91ABNA0417164300/ABNANL2A/{e.name}/AMSTERDAM/")
    if pick.chance(0.2) and e.name is None:
        e.name = pick.choice(NAMES)
        segments.append(f"/ORDP//NAME/{e.name}/ADDR/KERKSTRAAT 1 AMSTERDAM/")
    text = words(pick, 1, 8).replace("/", " ")
    segments.append(f"/REMI/USTD//{text}/")
    e.texts.append(text)
    return _wrap(pick, "".join(segments), pick.choice(("full", "total", "random")))


def _free_86(pick, e: Expected) -> list[str]:
    parts = []
    for _ in range(pick.integer(1, 12)):
        if pick.chance(0.25):
            value = an_id(pick)
            parts.append(value)
            e.ids.append(value)
        else:
            parts.append(pick.choice(WORDS))
    text = " ".join(parts)
    if not text[0].isalpha():
        text = "TEXT " + text
    e.texts.append(text)
    return _wrap(pick, text, pick.choice(("full", "words")))


def _line61(pick, e: Expected, ccy: str, day: date) -> tuple[list[str], int]:
    """The :61: (with its supplementary line) of one entry; returns (lines, signed minor units)."""
    credit = pick.chance(0.55)
    reversal = pick.chance(0.08)
    mark = ("RD" if credit else "RC") if reversal else ("C" if credit else "D")
    funds = ccy[2] if pick.chance(0.3) else ""
    minor = pick.integer(0, 5_000_000) if pick.chance(0.9) else pick.integer(0, 99)
    amount = amount_text(minor, ccy, ",")
    if amount.endswith(",00") and pick.chance(0.5):
        amount = amount[:-2]                                   # "300," as German banks write
    if pick.chance(0.1):
        amount = amount.rjust(15, "0")
    entry = ""
    if pick.chance(0.6):
        entry = (day + timedelta(days=pick.integer(-3, 3))).strftime("%m%d")
    kind = pick.choice(("NTRF", "NCHG", "NMSC", "NDDT", "S103", "FCHK", "N541", "NSTO"))
    owner = "NONREF" if pick.chance(0.4) else an_id(pick, 6, 16)
    if owner != "NONREF":
        e.ids.append(owner)
    value = day.strftime("%y%m%d")
    if pick.chance(0.03):                                      # unreadable: no such day, or two decimal commas
        e.reason = "MALFORMED_ROW"
        if pick.chance(0.5):
            value = value[:4] + "32"
        else:
            amount = amount.rstrip(",") + ",5,0"
    elif EXPONENT.get(ccy, 2) < 3 and pick.chance(0.02):       # more decimals than the currency has
        e.reason = "AMOUNT_PRECISION"
        base = amount.rstrip(",")
        amount = base + ("005" if "," in base else ",005")
    line = f":61:{value}{entry}{mark}{funds}{amount}{kind}{owner}"
    if pick.chance(0.6):
        line += "//" + an_id(pick, 8, 16)
    lines = [line]
    if pick.chance(0.25):
        details = words(pick, 1, 4)[:34].strip()
        if details and details[0] not in ":-$":
            lines.append(details)
            e.texts.append(details)
    signed = minor if mark in ("C", "RD") else -minor
    return lines, signed


def _balance(tag: str, minor: int, ccy: str, day: date) -> str:
    return f":{tag}:{'C' if minor >= 0 else 'D'}{day.strftime('%y%m%d')}{ccy}{amount_text(minor, ccy, ',')}"


def make_mt940(pick, file_id: int) -> Made:
    entries: list[Expected] = []
    verdicts: list[bool | None] = []
    out: list[str] = []
    day = date(2024, 12, 28) + timedelta(days=pick.integer(0, 700))
    for message in range(pick.integer(1, 3)):
        wrapped = pick.chance(0.5)
        if wrapped:
            head = ["{1:F01ABNANL2AXXX0000000000}", "{2:O9400600" + day.strftime("%y%m%d") + "ABNANL2AXXX00000N}"]
            if pick.chance(0.3):
                head.append("{3:{108:MUR" + str(file_id) + "}}")
            head.append("{4:")
            if pick.chance(0.3):
                out += head                                    # one header block to a line
            else:
                out.append("".join(head))
        elif pick.chance(0.2):
            out += ["ABNANL2A", "940", "ABNANL2A"]                # ABN AMRO preamble
        statements = pick.integer(1, 3)
        for s in range(statements):
            ref = f":20:F{file_id}M{message}S{s}"
            if wrapped and s == 0 and message and out[-1].endswith("{4:") and pick.chance(0.3):
                out[-1] += ref                                 # the first tag on the {4: line (not in the
                                                               # first message: the format sniffer wants one :20:
                                                               # at the start of a line)
            else:
                out.append(ref)
            out += [f":25:NL91ABNA0417164300{'' if pick.chance(0.5) else 'EUR'}", f":28C:{file_id:05d}/{s + 1}"]
            kind = pick.integer(0, 99)
            ccy = (pick.choice(WITHDRAWN) if kind < 6 else pick.choice(UNKNOWN) if kind < 9 else pick.choice(ACTIVE))
            balance = pick.integer(-9_000_000, 90_000_000)
            pages = pick.integer(1, 2)
            for page in range(pages):
                out.append(_balance("60F" if page == 0 else "60M", balance, ccy, day))
                page_entries, movement = [], 0
                for _ in range(pick.integer(0, 5)):
                    e = Expected(len(entries) + 1, None, ccy)
                    lines, signed = _line61(pick, e, ccy, day)
                    out += lines
                    if e.reason != "MALFORMED_ROW":            # the currency is looked at before the decimals
                        if ccy in WITHDRAWN:
                            e.reason = "WITHDRAWN_CURRENCY"
                        elif ccy in UNKNOWN:
                            e.reason = "UNKNOWN_CURRENCY"
                        elif e.reason is None:
                            e.amount_minor = signed
                    movement += signed
                    style = pick.choice(("german", "dutch", "free", "rabo", "none"))
                    if style == "german":
                        info = _german_86(pick, e, signed > 0)
                    elif style == "dutch":
                        info = _dutch_86(pick, e)
                    elif style in ("free", "rabo"):
                        info = _free_86(pick, e)
                    else:
                        info = []
                    if style == "rabo":
                        out += [f":86:{line}" for line in info]
                    elif info:
                        out += [f":86:{info[0]}", *info[1:]]
                    entries.append(e)
                    page_entries.append(e)
                closing = balance + movement
                verdict = None if any(e.reason for e in page_entries) else True
                if pick.chance(0.08):
                    closing += 1
                    verdict = None if verdict is None else False
                last = page == pages - 1
                closed = not (last and pick.chance(0.04))
                if not closed:
                    verdict = None                             # no closing balance: not verifiable
                else:
                    out.append(_balance("62F" if last else "62M", closing, ccy, day))
                verdicts.append(verdict)
                balance = closing
            if pick.chance(0.3):
                out.append(_balance("64", balance, ccy, day))
            if closed and pick.chance(0.15):                   # information about the whole statement (after a
                out.append(":86:" + words(pick, 1, 5))          # :86: of a line it would read as more of that)
            if not wrapped and pick.chance(0.7):
                out.append("-")
            elif not wrapped:
                out.append("")                                 # Rabobank: a blank line between statements
        if wrapped:
            trailer = "-}" + ("{5:{CHK:1A2B3C4D5E6F}}" if pick.chance(0.5) else "")
            out.append(trailer)
        if pick.chance(0.1):
            out.append("$")                                    # RJE separator between messages
    out = [line + " " * pick.integer(1, 3) if line and pick.chance(0.05) else line for line in out]
    eol = pick.choice(("\r\n", "\n", "mixed"))
    text = "".join(line + (pick.choice(("\r\n", "\n")) if eol == "mixed" else eol) for line in out)
    return Made(text.encode("latin-1" if pick.chance(0.2) else "utf-8"), entries, verdicts)


# ---------------------------------------------------------------------------- camt.053, a model
def make_camt(pick, file_id: int) -> Made:
    version = pick.choice(("02", "03", "04", "05", "06", "07", "08"))
    ns = f"urn:iso:std:iso:20022:tech:xsd:camt.053.001.{version}"
    p = pick.choice(("", "", "camt:"))
    nl = "\n" if pick.chance(0.5) else ""
    entries: list[Expected] = []
    verdicts: list[bool | None] = []
    day = date(2024, 12, 28) + timedelta(days=pick.integer(0, 700))
    xmlns = f'xmlns:{p[:-1]}="{ns}"' if p else f'xmlns="{ns}"'
    out = ['<?xml version="1.0" encoding="UTF-8"?>',
           f"<{p}Document {xmlns} xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\"><{p}BkToCstmrStmt>",
           f"<{p}GrpHdr><{p}MsgId>MSG{file_id}</{p}MsgId><{p}CreDtTm>{day}T18:00:00</{p}CreDtTm></{p}GrpHdr>"]

    def el(name: str, inner: str, attrs: str = "") -> str:
        return f"<{p}{name}{attrs}>{inner}</{p}{name}>{nl}"

    def amt(minor: int, ccy: str, text: str | None = None, name: str = "Amt") -> str:
        return el(name, text if text is not None else amount_text(minor, ccy, "."), f' Ccy="{ccy}"')

    for s in range(pick.integer(1, 3)):
        ccy = pick.choice(ACTIVE)
        opening = pick.integer(-5_000_000, 50_000_000)
        body, movement, currencies, not_loaded = [], 0, {ccy}, False
        for _ in range(pick.integer(0, 6)):
            e = Expected(len(entries) + 1, None, ccy)
            entries.append(e)
            kind = pick.integer(0, 99)
            e_ccy = (pick.choice(WITHDRAWN) if kind < 5 else pick.choice(UNKNOWN) if kind < 8
                     else pick.choice(("USD", "GBP", "JPY")) if kind < 11 else ccy)
            e.currency = e_ccy
            minor = pick.integer(1, 3_000_000)
            text = amount_text(minor, e_ccy, ".")
            if kind in (11, 12):
                text, e.reason = text.replace(".", ",") if "." in text else text + ",5", "BAD_AMOUNT"
            elif kind == 13 and EXPONENT.get(e_ccy, 2) < 3:
                text, e.reason = text + ("5" if "." in text else ".5"), "AMOUNT_PRECISION"
            if e.reason is None and e_ccy in WITHDRAWN:
                e.reason = "WITHDRAWN_CURRENCY"
            elif e.reason is None and e_ccy in UNKNOWN:
                e.reason = "UNKNOWN_CURRENCY"
            credit = pick.chance(0.55)
            signed = minor if credit else -minor
            status = "PDNG" if pick.chance(0.1) else "BOOK"
            e.booked = status == "BOOK"
            sts = el("Sts", el("Cd", status)) if version == "08" else el("Sts", status)
            if e.booked and pick.chance(0.03):
                booking = ""
                e.reason = e.reason or "BAD_TIMESTAMP"
            elif not e.booked and pick.chance(0.5):
                booking = ""                                   # pending entries often have no booking date
            elif pick.chance(0.5):
                booking = el("BookgDt", el("Dt", day.isoformat()))
            else:
                booking = el("BookgDt", el("DtTm", f"{day}T{pick.integer(0, 23):02d}:15:00+01:00"))
            if e.reason:
                not_loaded = True
            else:
                e.amount_minor = signed
                if e.booked:
                    movement += signed
                    currencies.add(e_ccy)
            tx = []
            parts = pick.integer(2, 4) if pick.chance(0.25) else 1
            for _ in range(parts):
                refs = el("AcctSvcrRef", an_id(pick))
                if pick.chance(0.8):
                    e2e = an_id(pick, 8, 30) if pick.chance(0.8) else "NOTPROVIDED"
                    refs += el("EndToEndId", e2e)
                    if e2e != "NOTPROVIDED":
                        e.ids.append(e2e)
                rmt = ""
                if pick.chance(0.7):
                    ustrd = words(pick, 1, 8)
                    rmt += el("Ustrd", ustrd)
                    e.texts.append(ustrd)
                if pick.chance(0.3):
                    creditor_ref = "RF18" + an_id(pick, 8, 12)
                    kind_of_ref = el("Tp", el("CdOrPrtry", el("Cd", "SCOR")))
                    rmt += el("Strd", el("CdtrRefInf", kind_of_ref + el("Ref", creditor_ref)))
                    e.ids.append(creditor_ref)
                party = "Dbtr" if credit else "Cdtr"
                name = pick.choice(NAMES)
                party_el = el(party, el("Pty", el("Nm", name)) if version == "08" else el("Nm", name))
                amounts = el("AmtDtls", el("TxAmt", amt(minor, e_ccy, text))) if parts == 1 else ""
                tx.append(el("TxDtls", el("Refs", refs) + amounts + el("RltdPties", party_el)
                             + (el("RmtInf", rmt) if rmt else "")))
            batch = el("Btch", el("PmtInfId", an_id(pick)) + el("NbOfTxs", str(len(tx)))) if len(tx) > 1 else ""
            addtl = el("AddtlNtryInf", words(pick, 1, 5)) if pick.chance(0.4) else ""
            rvsl = el("RvslInd", "true" if pick.chance(0.1) else "false") if pick.chance(0.3) else ""
            body.append(el("Ntry", el("NtryRef", f"{s}-{e.ordinal}") + amt(minor, e_ccy, text)
                           + el("CdtDbtInd", "CRDT" if credit else "DBIT") + rvsl + sts + booking
                           + el("ValDt", el("Dt", day.isoformat())) + el("AcctSvcrRef", an_id(pick))
                           + el("BkTxCd", el("Domn", el("Cd", "PMNT")
                                             + el("Fmly", el("Cd", "RCDT") + el("SubFmlyCd", "ESCT"))))
                           + el("NtryDtls", batch + "".join(tx)) + addtl))
        closing = opening + movement
        verdict = None if not_loaded else (True if len(currencies) == 1 else None)
        if pick.chance(0.08):
            closing += 1
            verdict = None if verdict is None else False

        def bal(code: str, minor: int) -> str:
            return el("Bal", el("Tp", el("CdOrPrtry", el("Cd", code))) + amt(abs(minor), ccy)
                      + el("CdtDbtInd", "CRDT" if minor >= 0 else "DBIT") + el("Dt", el("Dt", day.isoformat())))

        balances = bal("PRCD" if pick.chance(0.15) else "OPBD", opening)
        if pick.chance(0.04):
            verdict = None                                     # no closing booked balance
        else:
            balances += bal("CLBD", closing)
        if pick.chance(0.3):
            balances += bal("CLAV", closing)
        verdicts.append(verdict)
        out.append(el("Stmt", el("Id", f"STMT-{file_id}-{s}") + el("CreDtTm", f"{day}T18:00:00")
                      + el("Acct", el("Id", el("IBAN", "NL91ABNA0417164300")) + el("Ccy", ccy))
                      + balances + "".join(body)))
    out.append(f"</{p}BkToCstmrStmt></{p}Document>")
    return Made("\n".join(out).encode(), entries, verdicts)


# --------------------------------------------------------------------------------------- comparing
def parse_on_driver(kind: str, data: bytes, name: str = "file"):
    """The parser's driver-side function: (rows, per-statement verdicts) or (rows, error text)."""
    from jobs.formats import camt053, common, mt940
    from jobs.landing import LandedFile

    module = mt940 if kind == "mt940" else camt053
    rows = common.DriverRows(module.ROW_SCHEMA)
    f = LandedFile("t", hashlib.sha256(data).hexdigest(), name, name, f"bank.{kind}", "2.0", "bank", date(2026, 11, 20))
    try:
        return rows, module.parse_statements(data, f, rows)
    except ValueError as exc:
        return rows, str(exc)


def _view(entries) -> dict[int, tuple]:
    """ordinal -> (what happens to it, amount, currency) from reference or model entries."""
    view = {}
    for e in entries:
        if e.reason:
            view[e.ordinal] = (e.reason, None)
        elif not getattr(e, "booked", True):
            view[e.ordinal] = ("skipped", None)
        else:
            view[e.ordinal] = ("loaded", e.amount_minor, e.currency)
    return view


def _driver_view(rows) -> dict[int, tuple]:
    cols = rows.columns
    view = {}
    for i, ordinal in enumerate(cols["record_ordinal"]):
        if cols["_error"][i]:
            view[ordinal] = (cols["_error"][i], None)
        elif cols.get("_skip", [False] * rows.count)[i]:
            view[ordinal] = ("skipped", None)
        else:
            view[ordinal] = ("loaded", cols["amount_minor"][i], cols["currency"][i])
    return view


def check_texts(entries, bank_text: dict[int, str | None], stored: bool = False) -> None:
    """Every reference an entry carries reaches its bank_text (ids as written, texts blanks aside); the
    counterparty's name does not (unless it is also in the remittance text). ``stored``: the text as the
    parse stage stored it, where a number that could be a card number is masked."""
    from jobs.formats.common import mask_text

    for e in entries:
        if e.ordinal not in bank_text:
            continue
        text = bank_text[e.ordinal] or ""
        for ref in getattr(e, "ids", []):
            ref = mask_text(ref) if stored else ref
            assert ref in text, (e.ordinal, ref, text)
            assert tokens(ref) <= tokens(text), (e.ordinal, ref, text)
        for ref in [*getattr(e, "texts", []), *getattr(e, "references", [])]:
            ref = mask_text(ref) if stored else ref
            assert ws(ref) in ws(text), (e.ordinal, ref, text)
        name = getattr(e, "name", None)
        if name and not any(name in t for t in [*getattr(e, "texts", []), *getattr(e, "references", [])]):
            assert name not in text, (e.ordinal, name, text)


def read_reference(kind: str, data: bytes):
    return (ref_mt940 if kind == "mt940" else ref_camt).read(data)


def assert_driver_agrees(kind: str, data: bytes, reading) -> None:
    rows, result = parse_on_driver(kind, data)
    if not reading.is_statement:
        return
    assert not isinstance(result, str), result
    assert [ok for ok, _ in result] == reading.verdicts, ([p for _, p in result], reading.verdicts)
    assert _driver_view(rows) == _view(reading.entries)
    texts = {o: rows.columns["bank_text"][i] for i, o in enumerate(rows.columns["record_ordinal"])
             if not rows.columns["_error"][i]}
    check_texts(reading.entries, texts)


def assert_model_agrees(kind: str, made: Made) -> None:
    """The model's truth = the reference reader = the driver-side parser."""
    reading = read_reference(kind, made.data)
    assert reading.is_statement
    assert reading.verdicts == made.verdicts
    assert _view(reading.entries) == _view(made.entries)
    assert_driver_agrees(kind, made.data, reading)
    rows, _ = parse_on_driver(kind, made.data)
    texts = {o: rows.columns["bank_text"][i] for i, o in enumerate(rows.columns["record_ordinal"])
             if not rows.columns["_error"][i]}
    check_texts(made.entries, texts)


def assert_lake_agrees(run, kind: str, name: str, reading) -> None:
    """What the real parse stage stored for ``name`` is what the reference reader read."""
    if not reading.is_statement:
        assert run.landed[name] != f"bank.{kind}" or name in run.rejected, name
        assert not run.of(name), name
        return
    assert run.landed[name] == f"bank.{kind}", (name, run.landed[name])
    if reading.verdict is False:
        reason, detail = run.rejected[name]
        assert reason == "CONTROL_TOTAL_MISMATCH" and detail, name
        assert not run.of(name) and not run.reasons(name), name
        return
    assert name not in run.rejected, (name, run.rejected.get(name))
    stats = run.stats[name]
    assert stats.control_totals_ok is reading.verdict, (name, stats.detail, reading.verdicts)
    assert stats.records_read == len(reading.entries), name
    events = {e.record_ordinal: e for e in run.of(name)}
    quarantined = run.reasons(name)
    view = {}
    for ordinal in range(1, stats.records_read + 1):
        if ordinal in events:
            e = events[ordinal]
            view[ordinal] = ("loaded", e.amount_minor, e.currency)
            assert e.event_type == ("bank_credit" if e.amount_minor > 0 else "bank_debit"), (name, ordinal)
        elif ordinal in quarantined:
            view[ordinal] = (quarantined[ordinal], None)
        else:
            view[ordinal] = ("skipped", None)
    assert view == _view(reading.entries), name


# ------------------------------------------------------------------------------- the shared run
@files
def bank_statement_spec_files(work: Path) -> list[Path]:
    from jobs.generate import generate

    out = [p for p in MT940_SAMPLES + CAMT_SAMPLES if p.name not in REGISTERED_BY_TEST_BANK_FORMATS]
    seen: set[str | None] = set()
    variants = {"spec_gen_mt940_high": ("mt940", "high"), "spec_gen_mt940_low": ("mt940", "low"),
                "spec_gen_camt_high": ("camt053", "high")}
    for variant, (bank_format, noise) in variants.items():
        generate(work / variant, seed=31, end_date=date(2026, 11, 20), days=3, payments_per_day=25, tenants=["acme"],
                 noise=noise, psps=["stripe", "adyen", "paypal", "braintree", "checkout"], bank_format=bank_format)
        for path in sorted((work / variant / "acme" / "landing").rglob("*")):
            digest = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None
            if digest in seen:                           # a day without entries reads the same at any noise
                continue
            seen.add(digest)
            if path.is_file() and path.name.startswith(("mt940_", "camt053_")):
                target = work / f"{variant}_{path.name}"
                shutil.copyfile(path, target)
                GENERATED[target.name] = target
                out.append(target)
    for i in range(MODEL_MT940):
        made = make_mt940(RandomPick(f"{MODEL_SEED}-mt940-{i}"), i)
        MADE[f"spec_model_{i:03d}.sta"] = made
    for i in range(MODEL_CAMT):
        made = make_camt(RandomPick(f"{MODEL_SEED}-camt-{i}"), i)
        MADE[f"spec_model_{i:03d}.xml"] = made
    for name, made in MADE.items():
        (work / name).write_bytes(made.data)
        out.append(work / name)
    return out


def _kind(name: str) -> str:
    return "mt940" if name.endswith(".sta") else "camt053"


def _run_name(run, path: Path) -> str:
    """The name a sample went through the run under (test_bank_formats may have registered it under another)."""
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    names = [name for name, s in run.stats.items() if s.file_sha256 == sha]
    assert names, f"{path.name} was not part of the shared parse run"
    return names[0]


@pytest.mark.spark
@pytest.mark.parametrize("path", MT940_SAMPLES + CAMT_SAMPLES, ids=lambda p: p.name)
def test_every_sample_agrees_with_the_reference_reader(formats_run, path):
    kind = _kind(path.name)
    reading = read_reference(kind, path.read_bytes())
    assert_lake_agrees(formats_run, kind, _run_name(formats_run, path), reading)
    assert_driver_agrees(kind, path.read_bytes(), reading)


def test_sample_verdicts_are_the_known_ones():
    """Checked by hand against the files (tests/data/samples/README.md): the reference reader says so too."""
    verdicts = {p.name: read_reference(_kind(p.name), p.read_bytes()) for p in MT940_SAMPLES + CAMT_SAMPLES}
    assert verdicts["betterplace-sepa_mt9401.sta"].verdicts == [True] * 26
    assert verdicts["jejik-rabobank.sta"].verdicts == [False, True, False, True]
    assert verdicts["jejik-abnamro.sta"].verdict is False and verdicts["jejik-triodos.sta"].verdict is False
    cmxl = verdicts["cmxl-mt940.sta"]
    assert cmxl.verdicts == [None, True, True] and {e.reason for e in cmxl.entries[:11]} == {"WITHDRAWN_CURRENCY"}
    assert not verdicts["cmxl-statement_line.sta"].is_statement
    assert verdicts["camt053.v2.multi.statement.xml"].verdicts == [True, True]
    assert [e.amount_minor for e in verdicts["camt053.v2.multi.statement.xml"].entries] == [885, -700]


@pytest.mark.spark
def test_german_blocks_dutch_pages_and_withdrawn_currencies_in_one_file(formats_run):
    """tests/data/formats/mt940/sepa_blocks_and_withdrawn.sta (composed, CR LF): three {1:}{2:}({3:{108:}}){4:
    messages (German ?NN :86:, a Dutch one over a 62M/60M page split), then two bare statements in FRF
    (withdrawn) and XXY (never a currency)."""
    name = "sepa_blocks_and_withdrawn.sta"
    adyen, fee, reversal, stripe, charge = formats_run.of(name)
    assert [(e.record_ordinal, e.amount_minor, e.currency) for e in (adyen, fee, reversal, stripe, charge)] == [
        (1, 1189700, "EUR"), (2, -9500, "EUR"), (3, 2550, "EUR"), (4, 30025, "USD"), (5, -25, "USD")]
    assert {"TX991230411XT", "412", "ACMEEU"} <= tokens(adyen.bank_text) and "ADYEN" not in adyen.bank_text
    assert (adyen.bank_ref, adyen.payment_method) == ("DB2611200001", "NTRF/166")
    assert "PO_1QAZ2WSX3EDC" in tokens(reversal.bank_text) and reversal.event_type == "bank_credit"   # RD
    assert "PO_1QAZ2WSX3EDC" in tokens(stripe.bank_text) and "STRIPE PAYMENTS" not in stripe.bank_text
    assert stripe.bank_text.startswith("ST-Q4R8 | Card payout | /EREF/ST-Q4R8//CNTP/")
    assert formats_run.reasons(name) == {6: "WITHDRAWN_CURRENCY", 7: "WITHDRAWN_CURRENCY", 8: "UNKNOWN_CURRENCY"}
    stats = formats_run.stats[name]
    assert stats.control_totals_ok is None and "2 WITHDRAWN_CURRENCY" in stats.detail
    assert "1 UNKNOWN_CURRENCY" in stats.detail and "statement DB261120EUR" not in stats.detail


@pytest.mark.spark
def test_generator_statements_agree_with_the_reference_reader(formats_run):
    assert {n.split("_2026")[0] for n in GENERATED} == {
        "spec_gen_mt940_high_mt940", "spec_gen_mt940_low_mt940", "spec_gen_camt_high_camt053"}
    loaded = 0
    for name, path in sorted(GENERATED.items()):
        reading = read_reference(_kind(name), path.read_bytes())
        assert reading.verdict is True, name
        assert_lake_agrees(formats_run, _kind(name), name, reading)
        events = {e.record_ordinal: e.bank_text for e in formats_run.of(name)}
        check_texts(reading.entries, events, stored=True)
        loaded += len(events)
    assert loaded > 20


def test_generator_mt940_at_high_noise_wraps_german_86_deterministically(tmp_path):
    from jobs.generate import generate

    def mt940(name: str, noise: str) -> dict[str, bytes]:
        generate(tmp_path / name, seed=5, end_date=date(2026, 11, 20), days=2, payments_per_day=15, tenants=["acme"],
                 noise=noise, psps=["stripe", "adyen", "paypal"], bank_format="mt940")
        return {p.name: p.read_bytes() for p in sorted((tmp_path / name).rglob("mt940_*.sta"))}

    high, again, low = mt940("a", "high"), mt940("b", "high"), mt940("c", "low")
    assert high == again and high.keys() == low.keys()
    infos = []
    for data in high.values():
        lines = data.decode("ascii").split("\r\n")
        assert all(len(line) <= 65 for line in lines if not line.startswith("{1:")), lines
        for i, line in enumerate(lines):
            if line.startswith(":86:"):
                block = [line[4:]]
                while not lines[i + len(block)].startswith((":", "-")):
                    block.append(lines[i + len(block)])
                infos.append(block)
    assert infos and all(re.match(r"(166|105)\?00SEPA-", b[0]) for b in infos)
    assert sum(len(b) > 1 for b in infos) > len(infos) // 2          # most :86: fields run over several lines
    assert all(not line.endswith(" ") and line[:1] not in ":-" for b in infos for line in b)
    low_text = b"".join(low.values())
    assert b"/REMI/USTD//" in low_text and b"?20" not in low_text    # lower levels keep the Dutch :86:


@pytest.mark.spark
def test_generator_high_mt940_bank_texts_carry_what_the_camt053_of_the_same_day_carries(formats_run):
    """Same seed and noise, two bank formats: the same entries in the same order. Every token the matching
    could use (six characters or more) of the camt.053 entry's end-to-end id and remittance text is a token
    of the MT940 entry's bank text as the parse stage stored it: the German :86: loses no reference."""
    from jobs.formats.common import mask_text

    pairs = 0
    for name in sorted(n for n in GENERATED if n.startswith("spec_gen_mt940_high")):
        camt_name = name.replace("spec_gen_mt940_high_mt940", "spec_gen_camt_high_camt053").replace(".sta", ".xml")
        camt = ref_camt.read(GENERATED[camt_name].read_bytes())
        events = formats_run.of(name)
        assert [e.amount_minor for e in events] == [e.amount_minor for e in camt.entries], name
        for event, entry in zip(events, camt.entries):
            wanted = {t for t in tokens(mask_text(" ".join(entry.references))) if len(t) >= 6}
            assert wanted <= tokens(event.bank_text), (name, event.record_ordinal, wanted, event.bank_text)
            pairs += bool(wanted)
    assert pairs >= 10


# -------------------------------------------------------------------------------- model files
@pytest.mark.spark
def test_model_files_through_the_parse_stage_agree_with_the_reference_and_the_model(formats_run):
    assert len(MADE) == MODEL_MT940 + MODEL_CAMT
    seen = {"verdicts": set(), "reasons": set(), "rejected": 0}
    for name, made in sorted(MADE.items()):
        kind = _kind(name)
        reading = read_reference(kind, made.data)
        assert reading.verdicts == made.verdicts and _view(reading.entries) == _view(made.entries), name
        assert_lake_agrees(formats_run, kind, name, reading)
        if reading.verdict is not False:
            bank_text = {e.record_ordinal: e.bank_text for e in formats_run.of(name)}
            check_texts(made.entries, bank_text, stored=True)
        seen["verdicts"] |= set(made.verdicts)
        seen["reasons"] |= {e.reason for e in made.entries}
        seen["rejected"] += name in formats_run.rejected
    assert seen["verdicts"] == {True, False, None}
    assert {"WITHDRAWN_CURRENCY", "UNKNOWN_CURRENCY", "MALFORMED_ROW", "BAD_AMOUNT", "AMOUNT_PRECISION",
            "BAD_TIMESTAMP", None} <= seen["reasons"]
    assert seen["rejected"] >= 3


@pytest.mark.spark
def test_withdrawn_and_unknown_currencies_are_named_and_the_rest_goes_on(formats_run):
    checked = {"WITHDRAWN_CURRENCY": 0, "UNKNOWN_CURRENCY": 0}
    for name, made in MADE.items():
        if made.verdict is False:
            continue
        reasons = formats_run.reasons(name)
        for e in made.entries:
            if e.reason in checked:
                assert reasons[e.ordinal] == e.reason, (name, e.ordinal)
                q = formats_run.quarantine[(name, e.ordinal)]
                assert e.currency in q.reason_detail and ("withdrawn" in q.reason_detail) == (
                    e.reason == "WITHDRAWN_CURRENCY"), q.reason_detail
                checked[e.reason] += 1
        loaded = [e for e in made.entries if e.reason is None and e.booked]
        if any(e.reason in checked for e in made.entries) and loaded:
            assert {e.record_ordinal for e in formats_run.of(name)} == {e.ordinal for e in loaded}, name
            stats = formats_run.stats[name]
            assert stats.control_totals_ok is None and "not verifiable" in stats.detail, (name, stats.detail)
    assert min(checked.values()) >= 3, checked


def test_model_batch_is_deterministic():
    for i in (0, 1, 7):
        assert make_mt940(RandomPick(f"{MODEL_SEED}-mt940-{i}"), i).data == make_mt940(
            RandomPick(f"{MODEL_SEED}-mt940-{i}"), i).data
        assert make_camt(RandomPick(f"{MODEL_SEED}-camt-{i}"), i).data == make_camt(
            RandomPick(f"{MODEL_SEED}-camt-{i}"), i).data


# ------------------------------------------------------------------- property tests, no Spark
PROPERTY = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                            HealthCheck.data_too_large])


@PROPERTY
@given(st.data())
def test_mt940_driver_parser_agrees_with_the_reference_reader_and_the_model(data):
    assert_model_agrees("mt940", make_mt940(DrawPick(data), 1))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.data())
def test_camt053_driver_parser_agrees_with_the_reference_reader_and_the_model(data):
    assert_model_agrees("camt053", make_camt(DrawPick(data), 1))


@settings(max_examples=300, deadline=None)
@given(e2e=st.text(alphabet=ID_CHARS + "_-", min_size=1, max_size=35),
       ustrd=st.text(alphabet=ID_CHARS + "abcdefghijklmnopqrstuvwxyz _-.,/()+:'", min_size=1, max_size=140),
       name=st.sampled_from(NAMES), credit=st.booleans())
def test_generator_german_86_keeps_every_reference_token(e2e, ustrd, name, credit):
    """The high-noise :86: writer and the parser together: every token of the end-to-end id and of the
    remittance text that the matching could use is a token of the parsed bank text; the name is not in it."""
    from jobs.formats.mt940 import info_text
    from jobs.generate.mt940_file import german_86, wrap_86

    ustrd = ustrd.strip() or "X"
    e2e = e2e.strip("-") or "E2E"
    lines = wrap_86(german_86(credit, name, "NL91ABNA0417164300", "ABNANL2AXXX", e2e, ustrd))
    assert 1 <= len(lines) <= 6 and len(":86:" + lines[0]) <= 65 and all(len(line) <= 65 for line in lines[1:])
    assert all(not line.endswith(" ") and line[:1] not in ":-" for line in lines[1:])
    text, counterparty, gvc = info_text(lines)
    wanted = {t for t in tokens(f"{e2e} {ustrd}") if len(t) >= 6}
    assert wanted <= tokens(text), (lines, text)
    assert counterparty == name and gvc in ("166", "105") and name not in text
