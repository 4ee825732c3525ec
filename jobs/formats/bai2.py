"""Bank: BAI2 (Cash Management Balance Reporting Specifications, Version 2).

Parsed on the driver: comma-delimited records ``01`` file header, ``02`` group header (as-of date,
currency, default USD), ``03`` account identifier with status/summary amounts, ``16`` transaction detail,
``88`` continuation of the previous record, ``49``/``98``/``99`` account/group/file trailers with
control totals and record counts. One canonical event per ``16`` record; record ordinal = position of
the ``16`` among the file's ``16`` records.

A ``16`` is ``type code, amount, funds type [+ its extra fields], bank reference, customer reference,
text``: the amount is unsigned with implied decimals (the account's currency exponent: 150000 USD =
1500.00); the type code gives the direction (101-399 and 920-959 credits, 401-699 and 960-999 debits;
890 is information only: read and skipped). Funds type ``S`` carries three availability amounts, ``V``
a value date and time, ``D`` a count of (days, amount) pairs. The text runs to the end of the record
(it may contain commas) and continues over ``88`` records; a trailing ``/`` ends a record. Several
records on one physical line (separated by ``/ ``) are split.

Control totals: each ``49`` equals the sum of the account's ``03`` amounts and ``16`` amounts, and
counts the account's records (``03`` to ``49`` including ``88``); ``98`` sums its ``49`` totals and
counts the group's records, ``99`` the file's. A file that does not add up is held back whole.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime

from pyspark.sql import SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import (BooleanType, DateType, IntegerType, LongType, StringType, StructField, StructType,
                               TimestampType)

from jobs import storage
from jobs.formats import common as c
from jobs.formats.registry import FormatSpec
from jobs.landing import LandedFile
from jobs.money import CURRENCY_EXPONENTS
from jobs.settings import Settings

ROW_SCHEMA = StructType([
    StructField("file_sha256", StringType()), StructField("file_name", StringType()),
    StructField("record_ordinal", IntegerType()), StructField("_raw", StringType()),
    StructField("_error", StringType()), StructField("_error_detail", StringType()),
    StructField("_skip", BooleanType()),
    StructField("event_type", StringType()), StructField("amount_minor", LongType()),
    StructField("currency", StringType()), StructField("bank_ref", StringType()),
    StructField("bank_text", StringType()), StructField("account_ref", StringType()),
    StructField("booked_at", TimestampType()), StructField("value_date", DateType()),
    StructField("payment_method", StringType()),
])
TOTALS_SCHEMA = StructType([StructField("file_sha256", StringType()), StructField("control_totals_ok", BooleanType()),
                            StructField("detail", StringType())])
RECORD_SPLIT = re.compile(r"/\s+(?=(?:01|02|03|16|49|88|98|99),)")
AMOUNT = re.compile(r"^[+-]?\d{1,18}$")
INFORMATION_ONLY = ("890",)


def direction(type_code: str) -> int | None:
    """+1 credit, -1 debit, 0 information only, None unknown."""
    if not type_code.isdigit() or len(type_code) != 3:
        return None
    n = int(type_code)
    if type_code in INFORMATION_ONLY:
        return 0
    if 101 <= n <= 399 or 920 <= n <= 959:
        return 1
    if 401 <= n <= 699 or 960 <= n <= 999:
        return -1
    return None


@dataclass
class _Record:
    code: str
    fields: list[str]                 # after the record code, continuations appended
    raw: list[str]
    text_started: bool = False        # a 16 whose text field has begun (88s continue the text)


@dataclass
class _Account:
    number: str
    currency: str
    records: int = 0
    total: int = 0


@dataclass
class _Group:
    currency: str
    as_of: date | None
    as_of_time: str | None
    records: int = 0
    total: int = 0
    accounts: int = 0
    account_totals: list[int] = field(default_factory=list)


def _logical_records(text: str) -> list[_Record]:
    """Physical lines -> records (88 continuations folded into the record they continue)."""
    records: list[_Record] = []
    for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        line = line.strip()
        if not line:
            continue
        for piece in RECORD_SPLIT.split(line):
            piece = piece.strip()
            code, _, body = piece.partition(",")
            if code == "88" and records:
                prev = records[-1]
                prev.raw.append(piece)
                prev.fields.append("\x00")                   # continuation marker (text joins with a space)
                prev.fields.extend(_split(body, prev.code == "16"))
                continue
            records.append(_Record(code, _split(body, code == "16"), [piece]))
    return records


def _split(body: str, keep_text: bool) -> list[str]:
    if not keep_text and body.endswith("/"):
        body = body[:-1]
    return body.split(",")


def _amount(text: str) -> int | None:
    text = text.strip()
    return int(text) if AMOUNT.match(text) else None


def _funds_extra(fields: list[str], i: int) -> int:
    """Index after the funds-type-specific fields starting at ``fields[i]`` (the funds type)."""
    funds = fields[i].strip().upper() if i < len(fields) else ""
    if funds == "S":
        return i + 4
    if funds == "V":
        return i + 3
    if funds == "D":
        count = int(fields[i + 1]) if i + 1 < len(fields) and fields[i + 1].strip().isdigit() else 0
        return i + 2 + 2 * count
    return i + 1


def summary_amounts(fields: list[str]) -> tuple[int, list[str]]:
    """Sum of the 03 record's (type, amount, count, funds...) groups; problems found."""
    values = [f for f in fields if f != "\x00"]
    total, problems, i = 0, [], 0
    while i < len(values):
        code = values[i].strip()
        if code == "":
            i += 1
            continue
        amount_text = values[i + 1].strip() if i + 1 < len(values) else ""
        if amount_text:
            amount = _amount(amount_text)
            if amount is None:
                problems.append(f"summary amount {amount_text!r}")
            else:
                total += amount
        i = _funds_extra(values, i + 3)
    return total, problems


@dataclass
class _Detail:
    type_code: str
    amount_text: str
    funds: str
    value_date: str | None
    bank_ref: str | None
    customer_ref: str | None
    text: str | None


def detail_fields(fields: list[str]) -> _Detail:
    values, continuation_at = [], set()
    for f in fields:
        if f == "\x00":
            continuation_at.add(len(values))
        else:
            values.append(f)
    after = _funds_extra(values, 2)
    funds = values[2].strip().upper() if len(values) > 2 else ""
    value_date = values[3].strip() if funds == "V" and len(values) > 3 else None
    bank_ref = values[after].strip() if after < len(values) else None
    customer_ref = values[after + 1].strip() if after + 1 < len(values) else None
    text_parts = []
    for k in range(after + 2, len(values)):
        sep = " " if k in continuation_at and text_parts else ("," if text_parts else "")
        text_parts.append(sep + values[k])
    text = "".join(text_parts).strip()
    if text.endswith("/"):
        text = text[:-1].rstrip()
    return _Detail(values[0].strip() if values else "", values[1].strip() if len(values) > 1 else "", funds,
                   value_date, (bank_ref or "").removesuffix("/") or None,
                   (customer_ref or "").removesuffix("/") or None, text or None)


def _yymmdd(text: str | None) -> date | None:
    if not text or not re.fullmatch(r"\d{6}", text.strip()):
        return None
    t = text.strip()
    return date(2000 + int(t[:2]), int(t[2:4]), int(t[4:6]))


def parse_file(data: bytes, f: LandedFile, out: c.DriverRows) -> dict:
    text = data.decode("utf-8-sig", errors="replace")
    records = _logical_records(text)
    if not records or records[0].code != "01":
        raise ValueError("no 01 file header")
    problems: list[str] = []
    group: _Group | None = None
    account: _Account | None = None
    file_records, file_total, groups, ordinal = 0, 0, 0, 0
    verifiable = True
    for rec in records:
        physical = len(rec.raw)
        file_records += physical
        if group is not None:
            group.records += physical
        if account is not None:
            account.records += physical
        fields = [x for x in rec.fields if x != "\x00"]
        if rec.code == "02":
            group = _Group(currency=(fields[5].strip() if len(fields) > 5 else "") or "USD",
                           as_of=_yymmdd(fields[3] if len(fields) > 3 else None),
                           as_of_time=fields[4].strip() if len(fields) > 4 else None, records=physical)
            groups += 1
        elif rec.code == "03":
            if group is None:
                raise ValueError("03 account record outside a group")
            account = _Account(number=fields[0].strip() if fields else "",
                               currency=(fields[1].strip() if len(fields) > 1 else "") or group.currency,
                               records=physical)
            group.accounts += 1
            total, bad = summary_amounts(fields[2:])
            account.total += total
            if bad:
                verifiable = False
                problems.append(f"account {account.number}: unreadable {', '.join(bad)}")
        elif rec.code == "16":
            if account is None:
                raise ValueError("16 detail record outside an account")
            ordinal += 1
            d = detail_fields(rec.fields)
            amount = _amount(d.amount_text)
            sign = direction(d.type_code)
            exp = CURRENCY_EXPONENTS.get(account.currency.upper())
            row = {"file_sha256": f.sha256, "file_name": f.file_name, "record_ordinal": ordinal,
                   "account_ref": account.number, "currency": account.currency.upper(), "bank_ref": d.bank_ref,
                   "bank_text": " | ".join(filter(None, [d.customer_ref, d.text])) or None,
                   "payment_method": f"BAI{d.type_code}",
                   "value_date": _yymmdd(d.value_date) or (group.as_of if group else None)}
            if group and group.as_of:
                row["booked_at"] = datetime(group.as_of.year, group.as_of.month, group.as_of.day)
            error = None
            if amount is None or amount < 0 or d.amount_text.startswith(("+", "-")):
                error = (c.BAD_AMOUNT, f"amount {d.amount_text!r} (16 amounts are unsigned digits)")
                verifiable = False
            elif exp is None:
                error = (c.UNKNOWN_CURRENCY, f"currency {account.currency!r}")
            elif sign is None:
                error = (c.UNKNOWN_TYPE, f"type code {d.type_code!r} has no direction")
            if amount is not None and amount >= 0:
                account.total += amount
            if error:
                out.add(**row, _error=error[0], _error_detail=error[1], _raw="\n".join(rec.raw),
                        event_type="bank_credit")
                continue
            minor = amount                                   # implied decimals = the currency's exponent
            out.add(**row, event_type="bank_credit" if sign >= 0 else "bank_debit", amount_minor=sign * minor,
                    _skip=sign == 0)
        elif rec.code == "49":
            stated, count = _amount(fields[0]) if fields else None, _amount(fields[1]) if len(fields) > 1 else None
            if account is None:
                problems.append("49 account trailer without an account")
            else:
                if stated != account.total:
                    problems.append(f"account {account.number}: 49 total {stated} != records {account.total}")
                if count != account.records:
                    problems.append(f"account {account.number}: 49 counts {count} records, found {account.records}")
                if group is not None:
                    group.account_totals.append(stated if stated is not None else 0)
                    group.total += account.total
            account = None
        elif rec.code == "98":
            stated = _amount(fields[0]) if fields else None
            accounts = _amount(fields[1]) if len(fields) > 1 else None
            count = _amount(fields[2]) if len(fields) > 2 else None
            if group is None:
                problems.append("98 group trailer without a group")
            else:
                if stated != group.total:
                    problems.append(f"group {groups}: 98 total {stated} != accounts {group.total}")
                if accounts != group.accounts:
                    problems.append(f"group {groups}: 98 counts {accounts} accounts, found {group.accounts}")
                if count != group.records:
                    problems.append(f"group {groups}: 98 counts {count} records, found {group.records}")
                file_total += group.total
            group = None
        elif rec.code == "99":
            stated = _amount(fields[0]) if fields else None
            n_groups = _amount(fields[1]) if len(fields) > 1 else None
            count = _amount(fields[2]) if len(fields) > 2 else None
            if stated != file_total:
                problems.append(f"99 file total {stated} != groups {file_total}")
            if n_groups != groups:
                problems.append(f"99 counts {n_groups} groups, found {groups}")
            if count != file_records:
                problems.append(f"99 counts {count} records, found {file_records}")
        elif rec.code not in ("01",):
            problems.append(f"unknown record code {rec.code!r}")
    if records[-1].code != "99":
        problems.append("no 99 file trailer")
    if not verifiable:
        return {"file_sha256": f.sha256, "control_totals_ok": None, "detail": "; ".join(problems)}
    return {"file_sha256": f.sha256, "control_totals_ok": not problems, "detail": "; ".join(problems) or None}


def parse_bai2(spark: SparkSession, settings: Settings, spec: FormatSpec, files: list[LandedFile],
               ctx: c.ParseContext) -> c.ParseOutput:
    out, totals, rejected = c.DriverRows(ROW_SCHEMA), [], {}
    for f in files:
        mark = out.count
        try:
            total = parse_file(storage.read_bytes(settings, f.raw_uri), f, out)
        except ValueError as exc:
            rejected[f.sha256] = (c.MALFORMED_ROW, f"not a readable BAI2 file: {exc}")
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
              .withColumn("net_minor", F.col("amount_minor")))
    return c.finish(parsed, spec, ctx, extra_stats=spark.createDataFrame(totals, TOTALS_SCHEMA), rejected=rejected,
                    files=files)
