"""Bank: SWIFT MT940 customer statements, including the common bank variants.

Parsed on the driver (a text format of tagged lines, with continuation lines, that Spark cannot split
by record), one canonical event per ``:61:`` statement line; record ordinal = position of the ``:61:``
among all the file's statement lines (1-based). Accepted around the tags: the ``{1:..}{2:..}{3:{..}}{4:``
block wrapper (headers on one line or several, the first tag on the ``{4:`` line or the next) and its
``-}``/``-}{5:{..}}`` trailer, several messages per file (one after the other, or a trailer and the next
header on one line), RJE ``$`` separator lines, bank preamble lines (ABN AMRO ``ABNANL2A``/``940``,
Rabobank ``:940:``), blank lines, trailing spaces, CR LF / LF / CR line ends, several statements per
message or file (split by ``-`` or a new ``:20:``), ``:28:`` or ``:28C:``, ``:60F:``/``:60M:`` and
``:62F:``/``:62M:`` page balances (a new opening balance starts a new page).

``:61:`` = value date YYMMDD, optional entry date MMDD, mark (C, D, RC reversal of a credit = money
out, RD reversal of a debit = money in, EC/ED expected), optional funds code (the third letter of the
currency: the R of ``CR300,``/``DR800,``/``RCR204,88``), amount with a decimal comma (``9,`` ``107,``
zero-padded), transaction type (``N``/``S``/``F`` + 3), the owner's reference (16x, ``NONREF`` when
none), ``//`` bank reference, and supplementary details on the next line. Old Rabobank files put the
counterparty's name after the 16-character reference on the ``:61:`` line itself: it is kept only as a
keyed hash.

``:86:`` lines (6 x 65 characters, so wrapped, CR LF or LF) are joined and become ``bank_text``.
Structured variants are split: the German/Triodos ``?xx``/``>xx`` subfields after the 3-digit GVC
(``?00`` posting text, ``?20-29``/``?60-63`` purpose with the SEPA ``EREF+``/``KREF+``/``MREF+``/
``SVWZ+``... parts, the counterparty name ``?32``/``?33`` hashed, not kept) and the Dutch
``/EREF/.../CNTP/iban/bic/name/city/.../REMI/USTD//text/`` (``/NAME/`` and the CNTP name hashed and
cut out, every reference kept). Wrapped lines of structured text are joined without a separator (the
bank cut them mid-word), purpose subfields too unless the previous one was not full (27 characters) or
the next starts a SEPA keyword; free text lines with a space unless the line was full (65).

Amounts become integer minor units of the statement's currency (the opening balance's). A line in a
withdrawn ISO 4217 currency (DEM, FRF, XEU...) is quarantined as WITHDRAWN_CURRENCY, one in a code that
never existed as UNKNOWN_CURRENCY, an unreadable one as MALFORMED_ROW; the rest of the statement goes on.

Control total per statement page: opening (``:60F:``/``:60M:``) + statement lines = closing
(``:62F:``/``:62M:``), in major units. A file with a page that does not add up is held back whole; a page
without a closing balance, or with a quarantined line, cannot be verified (``control_totals_ok`` null,
the reason in the detail).
"""
from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation

from pyspark.sql import SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import (BooleanType, DateType, IntegerType, LongType, StringType, StructField, StructType,
                               TimestampType)

from jobs import storage
from jobs.formats import common as c
from jobs.formats.registry import FormatSpec
from jobs.landing import LandedFile
from jobs.money import CURRENCY_EXPONENTS, WITHDRAWN_CURRENCIES, MoneyError, to_minor
from jobs.privacy import hash_pii
from jobs.settings import Settings
from jobs.spark import local_frame

ROW_SCHEMA = StructType([
    StructField("file_sha256", StringType()), StructField("file_name", StringType()),
    StructField("record_ordinal", IntegerType()), StructField("_raw", StringType()),
    StructField("_error", StringType()), StructField("_error_detail", StringType()),
    StructField("event_type", StringType()), StructField("amount_minor", LongType()),
    StructField("currency", StringType()), StructField("bank_ref", StringType()),
    StructField("bank_text", StringType()), StructField("account_ref", StringType()),
    StructField("booked_at", TimestampType()), StructField("value_date", DateType()),
    StructField("payment_method", StringType()), StructField("_counterparty", StringType()),
])
TOTALS_SCHEMA = StructType([StructField("file_sha256", StringType()), StructField("control_totals_ok", BooleanType()),
                            StructField("detail", StringType())])
TAG = re.compile(r"^:(\d{2}[A-Z]?):(.*)$")
LINE61 = re.compile(r"^(?P<value>\d{6})(?P<entry>\d{4})?(?P<mark>RC|RD|EC|ED|C|D)(?P<funds>[A-Z])?"
                    r"(?P<amount>\d[\d,]*)(?P<ttype>[NSF][A-Z0-9]{3})(?P<rest>.*)$")
BALANCE = re.compile(r"^(?P<mark>[CD])(?P<date>\d{6})(?P<ccy>[A-Z]{3})(?P<amount>\d[\d,]*)$")
SIGN = {"C": 1, "D": -1, "RC": -1, "RD": 1, "EC": 1, "ED": -1}
# one complete block of the SWIFT envelope: {1:...} {2:...} {3:{108:...}} {5:{MAC:...}{CHK:...}}
BLOCK = re.compile(r"\{[0-9A-Z]{1,3}:(?:[^{}]|\{[^{}]*\})*\}")
FRAMING = "\x01\x03\x1a"                        # SOH / ETX / SUB around messages in some transfer files
GVC = re.compile(r"^(\d{3})\s*([?>])\d{2}")       # German GVC + first subfield, Triodos 000>10
SEPA_KEYWORD = re.compile(r"^\s*(EREF|KREF|MREF|CRED|DEBT|SVWZ|ABWA|ABWE|IBAN|BIC|COAM|OAMT|SQTP|PURP)\+")
SUBFIELD_WIDTH = 27
FULL_LINE = 65
PURPOSE = {f"{n:02d}" for n in [*range(20, 30), *range(60, 64)]}
NAME_FIELDS = ("32", "33")
NAME_SEGMENT = re.compile(r"(/NAME/)([^/]*)")
CNTP_NAME = re.compile(r"(/CNTP/[^/]*/[^/]*/)([^/]*)")


@dataclass
class _Line:
    ordinal: int
    raw: str
    match: re.Match | None
    supplementary: list[str] = field(default_factory=list)
    info: list[str] = field(default_factory=list)


@dataclass
class _Page:
    stmt_ref: str | None = None
    account: str | None = None
    currency: str | None = None
    opening: Decimal | None = None            # balances in major units: verifiable whatever the currency
    closing: Decimal | None = None
    opened: bool = False                      # a :60F:/:60M: was read for this page
    problem: str | None = None
    lines: list[_Line] = field(default_factory=list)


def _decimal(text: str) -> Decimal:
    try:
        return Decimal(text.replace(",", "."))
    except InvalidOperation:
        raise ValueError(f"not an amount: {text!r}") from None


def _yymmdd(text: str) -> date:
    yy, mm, dd = int(text[:2]), int(text[2:4]), int(text[4:6])
    return date(2000 + yy if yy < 80 else 1900 + yy, mm, dd)


def _entry_date(value: date, mmdd: str | None) -> date:
    if not mmdd:
        return value
    month, day = int(mmdd[:2]), int(mmdd[2:])
    year = value.year + (1 if value.month == 12 and month == 1 else -1 if value.month == 1 and month == 12 else 0)
    return date(year, month, day)


def _join(parts: list[str], structured: bool) -> str:
    out = ""
    for i, part in enumerate(parts):
        if i and not structured and len(parts[i - 1]) < FULL_LINE:
            out += " "
        out += part
    return out


def _purpose(values: list[str]) -> str:
    """Purpose subfields joined: without a separator after a full (27-character) subfield, which the bank
    cut mid-word, with a space after a shorter one or before a SEPA keyword (``SVWZ+``...)."""
    out = ""
    for i, value in enumerate(values):
        if i and out and not out.endswith(" ") and (len(values[i - 1]) < SUBFIELD_WIDTH or SEPA_KEYWORD.match(value)):
            out += " "
        out += value
    return out


def info_text(parts: list[str]) -> tuple[str | None, str | None, str | None]:
    """(text, counterparty name, GVC code) of a statement line's ``:86:`` lines."""
    if not parts:
        return None, None, None
    structured = "".join(p.rstrip("\r") for p in parts).strip()
    gvc = GVC.match(structured)
    if gvc:
        separator = gvc.group(2)
        chunks = re.split(re.escape(separator) + r"(\d{2})", structured[gvc.start(2):])
        fields = list(zip(chunks[1::2], chunks[2::2]))
        purpose = _purpose([v for k, v in fields if k in PURPOSE]).strip()
        posting = " ".join(v.strip() for k, v in fields if k == "00" and v.strip())
        name = "".join(v for k, v in fields if k in NAME_FIELDS).strip() or None
        return " ".join(filter(None, [posting, purpose])) or None, name, gvc.group(1)
    if parts[0].strip().startswith("/"):
        text = _join([p.strip() for p in parts], structured=True)
        names: list[str] = []

        def cut(m: re.Match) -> str:                 # the name out of its own segment only
            names.append(m.group(2).strip())
            return m.group(1)

        text = NAME_SEGMENT.sub(cut, CNTP_NAME.sub(cut, text))
        return text, " ".join(n for n in names if n) or None, None
    return _join([p.rstrip() for p in parts], structured=False).strip() or None, None, None


def _balance(value: str) -> tuple[str, Decimal] | None:
    """(currency, signed major-unit amount) of a :60x:/:62x: balance; None when unreadable."""
    bal = BALANCE.match(value.strip())
    if not bal:
        return None
    try:
        amount = _decimal(bal.group("amount"))
        _yymmdd(bal.group("date"))
    except ValueError:
        return None
    return bal.group("ccy"), (1 if bal.group("mark") == "C" else -1) * amount


def _decode(data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def _unwrap(line: str) -> tuple[bool, str]:
    """(a message ended on this line, what is left of it) once the SWIFT envelope is taken off: the
    ``{1:..}{2:..}{3:{..}}`` headers, the ``{4:`` opening, the ``-}`` end and the ``{5:{..}}`` trailer."""
    rest, ended = line.strip(), False
    while rest:
        if rest.startswith("-}"):
            ended, rest = True, rest[2:].lstrip()
        elif (block := BLOCK.match(rest)) is not None:
            rest = rest[block.end():].lstrip()
        elif rest.startswith("{4:"):
            rest = rest[3:].lstrip()
        else:
            break
    return ended, rest


def read_pages(text: str) -> list[_Page]:
    """Statement pages (a :20: or a new opening balance starts one) with their :61: lines, in file order."""
    pages: list[_Page] = []
    page: _Page | None = None
    last: str | None = None
    ordinal = 0
    for raw_line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        line = raw_line.strip(FRAMING).rstrip()
        stripped = line.strip()
        if stripped.startswith(("{", "-}")):
            ended, line = _unwrap(stripped)
            stripped = line.strip()
            if ended:
                last = None
            if not stripped:
                continue
        if stripped in ("-", "$"):                           # end of a statement / RJE message separator
            last = None
            continue
        m = TAG.match(line)
        if not m:
            if not stripped or page is None:
                continue                                     # blank lines, bank preamble (ABNANL2A, :940:)
            if last == "61" and page.lines:
                page.lines[-1].supplementary.append(stripped)
            elif last == "86" and page.lines:
                page.lines[-1].info.append(line)
            continue
        tag, value = m.group(1), m.group(2)
        if tag == "20":
            page = _Page(stmt_ref=value.strip())
            pages.append(page)
        elif page is None:
            page = _Page()
            pages.append(page)
        if tag == "25":
            page.account = value.strip()
        elif tag in ("60F", "60M"):
            if page.opened or page.lines or page.closing is not None:
                page = _Page(stmt_ref=page.stmt_ref, account=page.account)
                pages.append(page)
            page.opened = True
            balance = _balance(value)
            if balance is None:
                page.problem = f"unreadable opening balance {value.strip()!r}"
            else:
                page.currency, page.opening = balance
        elif tag in ("62F", "62M"):
            balance = _balance(value)
            if balance is None:
                page.problem = f"unreadable closing balance {value.strip()!r}"
            else:
                ccy, page.closing = balance
                if page.currency and ccy != page.currency:
                    page.problem = f"closing balance in {ccy}, opening in {page.currency}"
        elif tag == "61":
            ordinal += 1
            page.lines.append(_Line(ordinal, line, LINE61.match(value.strip())))
        elif tag == "86":
            if page.lines and last in ("61", "86"):
                page.lines[-1].info.append(value)            # Rabobank: several :86: lines per :61:
                last = "86"
            else:
                last = "86-statement"                        # information about the whole statement
            continue
        last = tag
    return pages


def _minor(major: Decimal, ccy: str | None) -> tuple[int | None, str | None, str | None]:
    """(minor units, reason code, detail) of a statement line amount in the statement's currency."""
    if not ccy:
        return None, c.UNKNOWN_CURRENCY, "no currency: the statement has no opening balance"
    if ccy in WITHDRAWN_CURRENCIES:
        return None, c.WITHDRAWN_CURRENCY, f"{ccy} is a withdrawn ISO 4217 currency, no longer in use"
    if ccy not in CURRENCY_EXPONENTS:
        return None, c.UNKNOWN_CURRENCY, f"unknown currency {ccy!r} (not an ISO 4217 code)"
    try:
        minor = to_minor(major, ccy)
    except MoneyError as exc:
        return None, (c.AMOUNT_PRECISION if "decimals" in str(exc) else c.BAD_AMOUNT), str(exc)
    if abs(minor) >= 10 ** c.MAX_MINOR_DIGITS:
        return None, c.BAD_AMOUNT, f"{major} {ccy} is too large"
    return minor, None, None


def parse_statements(data: bytes, f: LandedFile, out: c.DriverRows) -> list[tuple[bool | None, str | None]]:
    """Every statement line of one file into ``out``; returns (balance verdict, problem) per statement page:
    True adds up, False does not, None cannot be verified."""
    pages = read_pages(_decode(data))
    if not pages:
        raise ValueError("no statement (:20:/:25:/:60F:) found")
    results = []
    for page in pages:
        movement, quarantined = Decimal(0), Counter()
        for line in page.lines:
            row = {"file_sha256": f.sha256, "file_name": f.file_name, "record_ordinal": line.ordinal,
                   "account_ref": page.account, "currency": page.currency}
            m = line.match
            try:
                if m is None:
                    raise ValueError("not a :61: statement line (value date, D/C mark, amount, type)")
                major = SIGN[m.group("mark")] * _decimal(m.group("amount"))
                value = _yymmdd(m.group("value"))
                entry = _entry_date(value, m.group("entry"))
            except ValueError as exc:
                quarantined[c.MALFORMED_ROW] += 1
                out.add(**row, _error=c.MALFORMED_ROW, _error_detail=str(exc), _raw=_raw(line),
                        event_type="bank_credit")
                continue
            amount, reason, detail = _minor(major, page.currency)
            if reason:
                quarantined[reason] += 1
                out.add(**row, _error=reason, _error_detail=detail, _raw=_raw(line),
                        event_type="bank_credit" if major > 0 else "bank_debit")
                continue
            movement += major
            rest = m.group("rest")
            customer_ref, _, bank_ref = rest.partition("//")
            name = None
            if not bank_ref and len(customer_ref) > 16 and customer_ref[16:].strip():
                customer_ref, name = customer_ref[:16], customer_ref[16:].strip()
            customer_ref = customer_ref.strip()
            text, info_name, gvc = info_text(line.info)
            refs = [r for r in (customer_ref,) if r and r.upper() != "NONREF"]
            bank_text = " | ".join(filter(None, [*refs, " ".join(line.supplementary).strip() or None, text]))
            method = m.group("ttype") + (f"/{gvc}" if gvc else "")
            out.add(**row, event_type="bank_credit" if amount > 0 else "bank_debit", amount_minor=amount,
                    bank_ref=bank_ref.strip() or (customer_ref if refs else None), bank_text=bank_text or None,
                    booked_at=datetime(entry.year, entry.month, entry.day), value_date=value,
                    payment_method=method, _counterparty=info_name or name)
        label = f"statement {page.stmt_ref or '?'}"
        if quarantined:
            why = ", ".join(f"{n} {reason}" for reason, n in sorted(quarantined.items()))
            results.append((None, f"{label}: statement line(s) quarantined ({why}), balance not verifiable"))
        elif page.problem or page.opening is None:
            results.append((None, f"{label}: {page.problem or 'no opening balance'}"))
        elif page.closing is None:
            results.append((None, f"{label}: no closing balance (:62F:/:62M:), not verifiable"))
        elif page.opening + movement != page.closing:
            results.append((False, f"{label}: opening {page.opening} + lines {movement} != closing {page.closing} "
                                   f"{page.currency or ''}".rstrip()))
        else:
            results.append((True, None))
    return results


def parse_file(data: bytes, f: LandedFile, out: c.DriverRows) -> dict:
    """One file into ``out``; returns its control-total row."""
    results = parse_statements(data, f, out)
    verdicts = [ok for ok, _ in results]
    ok = False if False in verdicts else (None if None in verdicts else True)
    problems = [problem for _, problem in results if problem]
    return {"file_sha256": f.sha256, "control_totals_ok": ok, "detail": "; ".join(problems) or None}


def _raw(line: _Line) -> str:
    return "\n".join([line.raw, *line.supplementary, *(":86:" + x if i == 0 else x for i, x in enumerate(line.info))])


def parse_mt940(spark: SparkSession, settings: Settings, spec: FormatSpec, files: list[LandedFile],
                ctx: c.ParseContext) -> c.ParseOutput:
    out, totals, rejected = c.DriverRows(ROW_SCHEMA), [], {}
    for f in files:
        mark = out.count
        try:
            total = parse_file(storage.read_bytes(settings, f.raw_uri), f, out)
        except ValueError as exc:
            rejected[f.sha256] = (c.MALFORMED_ROW, f"not a readable MT940 statement: {exc}")
            total = None
        if total is not None and total["control_totals_ok"] is False:
            rejected[f.sha256] = (c.CONTROL_TOTAL_MISMATCH, total["detail"])
        if f.sha256 in rejected:
            for values in out.columns.values():
                del values[mark:]
            out.count = mark
            continue
        totals.append(total)
    parsed = (out.to_df(spark)
              .withColumn("psp", F.lit(None).cast("string"))
              .withColumn("fee_minor", F.lit(0).cast("long"))
              .withColumn("net_minor", F.col("amount_minor"))
              .withColumn("counterparty_name_hash", hash_pii(F.col("_counterparty"), ctx.pii_salt)))
    return c.finish(parsed, spec, ctx, extra_stats=local_frame(spark, totals, TOTALS_SCHEMA), rejected=rejected,
                    files=files)
