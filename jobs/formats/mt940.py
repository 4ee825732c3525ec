"""Bank: SWIFT MT940 customer statements, including the common bank variants.

Parsed on the driver (a text format of tagged lines, with continuation lines, that Spark cannot split
by record), one canonical event per ``:61:`` statement line; record ordinal = position of the ``:61:``
among all the file's statement lines. Accepted around the tags: the ``{1:..}{2:..}{4:`` block wrapper
and ``-}``/``-`` terminators, bank preamble lines (ABN AMRO ``ABNANL2A``/``940``, Rabobank ``:940:``),
blank lines, trailing spaces, several statements per file (split by ``-`` or a new ``:20:``), ``:28:``
or ``:28C:``, ``:60F:``/``:60M:`` and ``:62F:``/``:62M:`` page balances.

``:61:`` = value date YYMMDD, optional entry date MMDD, mark (C, D, RC reversal of a credit = money
out, RD reversal of a debit = money in, EC/ED expected), optional funds code (the R of ``CR300,``/
``DR800,``/``RCR204,88``), amount with a decimal comma (``9,`` ``107,`` zero-padded), transaction type
(``N``/``S``/``F`` + 3), the owner's reference (16x, ``NONREF`` when none), ``//`` bank reference, and
supplementary details on the next line. Old Rabobank files put the counterparty's name after the
16-character reference on the ``:61:`` line itself: it is kept only as a keyed hash.

``:86:`` lines (wrapped at 65 characters) become ``bank_text``. Structured variants are split: the
German/Triodos ``?xx``/``>xx`` subfields (``?00`` posting text, ``?20-29``/``?60-63`` purpose, the
counterparty name ``?32``/``?33`` hashed, not kept) and the Dutch ``/EREF/.../CNTP/iban/bic/name/``,
``/NAME/`` (name hashed and removed). Wrapped lines of structured text are joined without a separator
(the bank cut them mid-word), free text with a space unless the line was full.

Control total per statement page: opening (``:60F:``/``:60M:``) + statement lines = closing
(``:62F:``/``:62M:``). A file with a page that does not add up is held back whole; a page without a
closing balance (or with an unreadable line) cannot be verified.
"""
from __future__ import annotations

import re
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
from jobs.money import MoneyError, to_minor
from jobs.privacy import hash_pii
from jobs.settings import Settings

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
SUBFIELD = re.compile(r"[?>](\d{2})")
STRUCTURED_GVC = re.compile(r"^\s*\d{3}\s*[?>]\d{2}")
FULL_LINE = 65
PURPOSE = {f"{n:02d}" for n in [*range(20, 30), *range(60, 64)]}
NAME_FIELDS = ("32", "33")


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
    problem: str | None = None
    lines: list[_Line] = field(default_factory=list)


def _decimal(text: str) -> Decimal:
    try:
        return Decimal(text.replace(",", "."))
    except InvalidOperation:
        raise ValueError(f"not an amount: {text!r}") from None


def _amount(text: str, ccy: str | None) -> int:
    if not ccy:
        raise MoneyError("no currency: the statement has no opening balance")
    return to_minor(_decimal(text), ccy)


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


def info_text(parts: list[str]) -> tuple[str | None, str | None, str | None]:
    """(text, counterparty name, GVC code) of a statement line's ``:86:`` lines."""
    if not parts:
        return None, None, None
    first = parts[0].strip()
    if STRUCTURED_GVC.match(first):
        text = _join([p.rstrip("\r") for p in parts], structured=True).strip()
        gvc = text[:3]
        chunks = SUBFIELD.split(text[3:])
        fields: dict[str, list[str]] = {}
        for key, value in zip(chunks[1::2], chunks[2::2]):
            fields.setdefault(key, []).append(value)
        purpose = "".join("".join(fields[k]) for k in sorted(fields) if k in PURPOSE)
        posting = " ".join(fields.get("00", []))
        name = "".join("".join(fields.get(k, [])) for k in NAME_FIELDS).strip() or None
        return " ".join(filter(None, [posting.strip(), purpose.strip()])) or None, name, gvc
    if first.startswith("/"):
        text = _join([p.strip() for p in parts], structured=True)
        names = re.findall(r"/NAME/([^/]*)", text)
        cntp = re.search(r"/CNTP/([^/]*)/([^/]*)/([^/]*)/", text)
        if cntp:
            names.append(cntp.group(3))
        for n in names:
            if n:
                text = text.replace(n, "")
        return text, " ".join(n for n in names if n) or None, None
    return _join([p.rstrip() for p in parts], structured=False).strip() or None, None, None


def _decode(data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def read_pages(text: str) -> list[_Page]:
    """Statement pages (a :20: or 60M/62M page) with their :61: lines, in file order."""
    pages: list[_Page] = []
    page: _Page | None = None
    last: str | None = None
    ordinal = 0
    for raw_line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        line = raw_line.rstrip()
        stripped = line.strip()
        if stripped.startswith("{"):                         # {1:...}{2:...}{4:  block wrapper
            line = re.sub(r"^(\{[0-9]:[^{}]*\})*(\{4:)?", "", stripped)
            stripped = line.strip()
        if stripped in ("-", "-}") or stripped.startswith("-}") or stripped.startswith("{5:"):
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
            if tag == "60M" and (page.lines or page.closing is not None):
                page = _Page(stmt_ref=page.stmt_ref, account=page.account)
                pages.append(page)
            bal = BALANCE.match(value.strip())
            if not bal:
                page.problem = f"unreadable opening balance {value.strip()!r}"
            else:
                page.currency = bal.group("ccy")
                page.opening = (1 if bal.group("mark") == "C" else -1) * _decimal(bal.group("amount"))
        elif tag in ("62F", "62M"):
            bal = BALANCE.match(value.strip())
            if not bal:
                page.problem = f"unreadable closing balance {value.strip()!r}"
            else:
                page.closing = (1 if bal.group("mark") == "C" else -1) * _decimal(bal.group("amount"))
                if page.currency and bal.group("ccy") != page.currency:
                    page.problem = f"closing balance in {bal.group('ccy')}, opening in {page.currency}"
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


def parse_file(data: bytes, f: LandedFile, out: c.DriverRows) -> dict:
    pages = read_pages(_decode(data))
    if not pages:
        raise ValueError("no statement (:20:/:25:/:60F:) found")
    verdicts, problems = [], []
    for page in pages:
        movement, unreadable = Decimal(0), 0
        for line in page.lines:
            row = {"file_sha256": f.sha256, "file_name": f.file_name, "record_ordinal": line.ordinal,
                   "account_ref": page.account, "currency": page.currency}
            m = line.match
            try:
                if m is None:
                    raise ValueError("not a :61: statement line")
                major = SIGN[m.group("mark")] * _decimal(m.group("amount"))
                value = _yymmdd(m.group("value"))
                entry = _entry_date(value, m.group("entry"))
                movement += major
                amount = SIGN[m.group("mark")] * _amount(m.group("amount"), page.currency)
            except MoneyError as exc:
                reason = (c.UNKNOWN_CURRENCY if "currency" in str(exc) else
                          c.AMOUNT_PRECISION if "decimals" in str(exc) else c.BAD_AMOUNT)
                out.add(**row, _error=reason, _error_detail=str(exc), _raw=_raw(line), event_type="bank_credit")
                continue
            except ValueError as exc:
                unreadable += 1
                out.add(**row, _error=c.MALFORMED_ROW, _error_detail=str(exc), _raw=_raw(line),
                        event_type="bank_credit")
                continue
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
        if unreadable:
            verdicts.append(None)
            problems.append(f"{label}: {unreadable} unreadable statement line(s), balance not verifiable")
        elif page.problem or page.opening is None:
            verdicts.append(None)
            problems.append(f"{label}: {page.problem or 'no opening balance'}")
        elif page.closing is None:
            verdicts.append(None)
            problems.append(f"{label}: no closing balance (:62F:/:62M:), not verifiable")
        elif page.opening + movement != page.closing:
            verdicts.append(False)
            problems.append(f"{label}: opening {page.opening} + lines {movement} != closing {page.closing} "
                            f"{page.currency or ''}".rstrip())
        else:
            verdicts.append(True)
    ok = False if False in verdicts else (None if None in verdicts else True)
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
    return c.finish(parsed, spec, ctx, extra_stats=spark.createDataFrame(totals, TOTALS_SCHEMA), rejected=rejected,
                    files=files)
