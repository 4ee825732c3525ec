"""Bank: BAI2 (BAI Cash Management Balance Reporting Specifications, Version 2; X9.121).

Parsed on the driver. Records: ``01`` file header, ``02`` group header (as-of date, currency, default
USD), ``03`` account identifier with status/summary amounts, ``16`` transaction detail, ``88``
continuation of the record before it, ``49``/``98``/``99`` account/group/file trailers with control
totals and record counts. One canonical event per ``16``; record ordinal = position of the ``16`` among
the file's ``16`` records; type code 890 (information only) is read and skipped.

Records and physical lines. Fields are separated by ``,``; ``/`` ends a record that does not end in
text. A physical line holds any number of records (``01,.../ 02,.../``). A physical line that does not
start with a record code (two digits and a comma) continues the record before it: the bank wrapped the
record; the break is no field separator (inside text it reads as one space). The text of a ``16`` is
its last field and is not ended by ``/`` (it may contain ``,`` and ``/``): it runs to the next record,
i.e. to the next line that starts with a record code or, on a packed line, to a ``/`` followed by
blanks and a record code; a trailing ``/`` is dropped. An ``88`` continues the fields of the record
before it where they stopped: the text when that record stopped inside its text, else the next field.

A ``16`` is ``type code, amount, funds type [+ its fields], bank reference, customer reference, text``:
the amount is unsigned (``+`` allowed) with implied decimals = the currency's exponent, i.e. already in
minor units; the type code gives the direction (101-399 and 920-959 credits, 401-699 and 960-999
debits). Funds types: ``0``/``1``/``2``/``Z``/empty carry nothing more, ``S`` three availability
amounts, ``V`` a value date and time, ``D`` a count and that many (days, amount) pairs. An ``03``
repeats ``type code, amount (status amounts signed), item count, funds type [+ its fields]``.

Control totals: a ``49`` is the algebraic sum of the account's ``03`` and ``16`` amounts (not funds-type
amounts nor item counts) and counts the account's records, ``03`` to ``49``, each ``88`` a record of its
own (a wrapped physical line is not a record); ``98`` sums its accounts and counts the group's records
with the ``02`` and ``98``; ``99`` sums the groups and counts every record of the file. A file whose
totals disagree is held back whole; one with an unreadable amount cannot be checked (verdict None).
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
from jobs.spark import local_frame

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
RECORD_CODES = ("01", "02", "03", "16", "49", "88", "98", "99")
_CODES = "|".join(RECORD_CODES)
LINE_BREAK = re.compile(r"\r\n|\r|\n")
RECORD_START = re.compile(rf"(?:{_CODES}),")                  # a physical line that begins a record
NEXT_RECORD = re.compile(rf"[ \t\n]*({_CODES}),")
REST_BLANK = re.compile(r"[ \t\n]*\Z")
TEXT_END = re.compile(rf"/[ \t\n]+(?=(?:{_CODES}),)")         # a record packed after a text on one line
RECORD_END = re.compile(rf"/(?=[ \t\n]*(?:(?:{_CODES}),|\Z))")     # a "/" elsewhere is data (seen in references)
FIELD_END = re.compile(rf",|{RECORD_END.pattern}")
WRAP_IN_FIELD = re.compile(r"[ \t]*\n[ \t]*")
WRAP_IN_WORD = re.compile(r"(?<=\S)\n(?=\S)")
AMOUNT = re.compile(r"[+-]?[0-9]+")
COUNT = re.compile(r"[0-9]{1,9}")
INFORMATION_ONLY = "890"
PLAIN_FUNDS = ("", "0", "1", "2", "Z")
FUNDS_WIDTH = {"S": 3, "V": 2}


def direction(type_code: str) -> int | None:
    """+1 credit, -1 debit, 0 information only, None unknown."""
    if not re.fullmatch(r"[0-9]{3}", type_code):
        return None
    n = int(type_code)
    if type_code == INFORMATION_ONLY:
        return 0
    if 101 <= n <= 399 or 920 <= n <= 959:
        return 1
    if 401 <= n <= 699 or 960 <= n <= 999:
        return -1
    return None


def _amount(text: str) -> int | None:
    """A signed or unsigned integer (minor units); None when it is not one or does not fit a long."""
    if not AMOUNT.fullmatch(text) or len(text.lstrip("+-").lstrip("0")) > c.MAX_MINOR_DIGITS:
        return None
    return int(text)


def funds_width(fields: list[str], i: int) -> tuple[int, str | None]:
    """How many fields follow the funds type at ``fields[i]``, and what is wrong with it (None: nothing)."""
    funds = fields[i].upper() if i < len(fields) else ""
    if funds in PLAIN_FUNDS:
        return 0, None
    if funds in FUNDS_WIDTH:
        return FUNDS_WIDTH[funds], None
    if funds == "D":
        count = fields[i + 1] if i + 1 < len(fields) else ""
        return (1 + 2 * int(count), None) if COUNT.fullmatch(count) else (1, f"funds type D count {count!r}")
    return 0, f"funds type {fields[i]!r}"


@dataclass
class _Record:
    """A logical record: the record and its 88 continuations; a 16's text kept apart from its fields."""
    code: str
    fields: list[str] = field(default_factory=list)
    text: list[str] = field(default_factory=list)
    raw: list[str] = field(default_factory=list)          # one entry per physical record (the record, each 88)

    def in_text(self) -> bool:
        """A 16 whose fields before the text are all read: what follows is text."""
        return self.code == "16" and len(self.fields) >= 3 and len(self.fields) >= 5 + funds_width(self.fields, 2)[0]


def _runs(text: str) -> list[str]:
    """Physical lines -> runs that each begin with a record code: a line that does not continues the run
    before it (a wrapped record), joined with a newline that marks the break."""
    runs: list[list[str]] = []
    for number, line in enumerate(LINE_BREAK.split(text), 1):
        if not line.strip():
            continue
        if RECORD_START.match(line):
            runs.append([line])
        elif runs:
            runs[-1].append(line)
        else:
            raise ValueError(f"line {number} does not start with a record code")
    return ["\n".join(lines) for lines in runs]


def _text_piece(piece: str) -> str:
    """Text as read: a line break inside a word reads as a space; a trailing ``/`` is dropped."""
    piece = WRAP_IN_WORD.sub(" ", piece).replace("\n", "").strip()
    return piece[:-1].rstrip() if piece.endswith("/") else piece


def _read_physical(run: str, pos: int, rec: _Record) -> int:
    """Read one physical record's fields into ``rec`` from ``run[pos:]``; the position after its end."""
    while True:
        if rec.in_text():
            if RECORD_END.match(run, pos):                    # text defaulted (a text never begins with "/")
                return pos + 1
            end = TEXT_END.search(run, pos)
            stop = end.start() if end else len(run)
            rec.text.append(_text_piece(run[pos:stop]))
            return stop + 1 if end else stop
        end = FIELD_END.search(run, pos)
        stop = end.start() if end else len(run)
        rec.fields.append(WRAP_IN_FIELD.sub("", run[pos:stop]).strip())
        if end is None or end.group() == "/":
            return stop + 1
        pos = stop + 1


def logical_records(text: str) -> list[_Record]:
    """The file's logical records, 88 continuations folded into the record they continue."""
    records: list[_Record] = []
    for run in _runs(text):
        pos = 0
        while not REST_BLANK.match(run, pos):
            m = NEXT_RECORD.match(run, pos)
            if m is None:
                raise ValueError(f"{run[pos:pos + 40].strip()!r} follows the end of a record")
            if m.group(1) == "88":
                if not records:
                    raise ValueError("88 continuation without a record before it")
                rec = records[-1]
            else:
                rec = _Record(m.group(1))
                records.append(rec)
            pos = _read_physical(run, m.end(), rec)
            rec.raw.append(run[m.start(1):pos].strip())
    return records


def summary_total(fields: list[str]) -> tuple[int, list[str]]:
    """Sum of an 03's (type code, amount, item count, funds type [+ its fields]) amounts; problems found."""
    total, problems, i = 0, [], 0
    while i < len(fields):
        amount_text = fields[i + 1] if i + 1 < len(fields) else ""
        if amount_text:
            amount = _amount(amount_text)
            if amount is None:
                problems.append(f"amount {amount_text!r}")
            else:
                total += amount
        width, problem = funds_width(fields, i + 3)
        if problem:
            problems.append(problem)
        i += 4 + width
    return total, problems


@dataclass
class _Detail:
    type_code: str
    amount_text: str
    funds_problem: str | None
    value_date: str | None
    bank_ref: str | None
    customer_ref: str | None
    text: str | None


def detail(rec: _Record) -> _Detail:
    def get(i: int) -> str:
        return rec.fields[i] if i < len(rec.fields) else ""
    width, problem = funds_width(rec.fields, 2)
    return _Detail(get(0), get(1), problem, get(3) if get(2).upper() == "V" else None, get(3 + width) or None,
                   get(4 + width) or None, " ".join(p for p in rec.text if p) or None)


def _yymmdd(text: str | None) -> date | None:
    if not text or not re.fullmatch(r"[0-9]{6}", text):
        return None
    try:
        return date(2000 + int(text[:2]), int(text[2:4]), int(text[4:6]))
    except ValueError:
        return None


@dataclass
class _Level:
    """An open account, group or the file: what its trailer must state (total, record count) as read."""
    name: str
    trailer: str
    currency: str = "USD"
    as_of: date | None = None
    records: int = 0
    total: int = 0
    children: int = 0
    ref: str = ""


def _check(level: _Level, total_text: str, counts: dict[str, tuple[str, int]], problems: list[str]) -> None:
    """Compare a trailer's control total and counts with what was read; name each difference."""
    stated = _amount(total_text)
    if stated is None:
        problems.append(f"{level.name}: {level.trailer} total {total_text!r} is not a number, records sum to "
                        f"{level.total}")
    elif stated != level.total:
        problems.append(f"{level.name}: {level.trailer} total {stated} != records {level.total} "
                        f"(difference {stated - level.total:+d})")
    for what, (text, found) in counts.items():
        if _amount(text) != found:
            problems.append(f"{level.name}: {level.trailer} counts {text or 'no'} {what}, found {found}")


def _close_account(account: _Level | None, group: _Level, problems: list[str]) -> None:
    if account is not None:
        problems.append(f"{account.name} has no 49 trailer")
        group.total += account.total


def parse_file(data: bytes, f: LandedFile, out: c.DriverRows) -> dict:
    records = logical_records(data.decode("utf-8-sig", errors="replace"))
    if not records or records[0].code != "01":
        raise ValueError("no 01 file header")
    problems: list[str] = []
    whole = _Level("file", "99")
    group: _Level | None = None
    account: _Level | None = None
    ordinal, verifiable, headers, ended = 0, True, 0, False
    for rec in records:
        if ended:
            problems.append(f"{rec.code} record after the 99 file trailer")
            ended = False
        physical = len(rec.raw)
        for level in (whole, group, account):
            if level is not None:
                level.records += physical
        fields = rec.fields + [""] * 6
        if rec.code == "01":
            headers += 1
            if headers > 1:
                problems.append("a second 01 file header")
        elif rec.code == "02":
            if group is not None:
                problems.append(f"{group.name} has no 98 trailer")
                whole.total += group.total
            whole.children += 1
            group = _Level(f"group {whole.children}", "98", fields[5].upper() or "USD", _yymmdd(fields[3]), physical)
        elif rec.code == "03":
            if group is None:
                raise ValueError("03 account record outside a group")
            _close_account(account, group, problems)
            group.children += 1
            account = _Level(f"account {fields[0]}", "49", fields[1].upper() or group.currency, group.as_of, physical,
                             ref=fields[0])
            account.total, bad = summary_total(rec.fields[2:])
            if bad:
                verifiable = False
                problems.append(f"{account.name}: unreadable {', '.join(bad)}")
        elif rec.code == "16":
            if account is None:
                raise ValueError("16 detail record outside an account")
            ordinal += 1
            verifiable &= _detail_row(rec, ordinal, account, f, out)
        elif rec.code == "49":
            if account is None:
                problems.append("49 account trailer without an account")
                continue
            _check(account, fields[0], {"records": (fields[1], account.records)}, problems)
            if group is not None:
                group.total += account.total
            account = None
        elif rec.code == "98":
            if group is None:
                problems.append("98 group trailer without a group")
                continue
            _close_account(account, group, problems)
            account = None
            _check(group, fields[0], {"accounts": (fields[1], group.children), "records": (fields[2], group.records)},
                   problems)
            whole.total += group.total
            group = None
        elif rec.code == "99":
            if group is not None:
                problems.append(f"{group.name} has no 98 trailer")
            _check(whole, fields[0], {"groups": (fields[1], whole.children), "records": (fields[2], whole.records)},
                   problems)
            ended = True
    if records[-1].code != "99":
        problems.append("no 99 file trailer")
    ok = None if not verifiable else not problems
    return {"file_sha256": f.sha256, "control_totals_ok": ok, "detail": "; ".join(problems) or None}


def _detail_row(rec: _Record, ordinal: int, account: _Level, f: LandedFile, out: c.DriverRows) -> bool:
    """Add the event (or quarantine row) of one 16 record; False when its amount cannot be read."""
    d = detail(rec)
    amount = _amount(d.amount_text)
    readable = amount is not None and not d.amount_text.startswith("-")
    if readable:
        account.total += amount
    sign = direction(d.type_code)
    as_of = account.as_of
    row = {"file_sha256": f.sha256, "file_name": f.file_name, "record_ordinal": ordinal,
           "account_ref": account.ref, "currency": account.currency, "bank_ref": d.bank_ref,
           "bank_text": " | ".join(filter(None, [d.customer_ref, d.text])) or None,
           "payment_method": f"BAI{d.type_code}", "value_date": _yymmdd(d.value_date) or as_of,
           "booked_at": datetime(as_of.year, as_of.month, as_of.day) if as_of else None}
    error = None
    if sign == 0:
        pass                                                 # 890: information only, read and skipped
    elif not readable:
        error = (c.BAD_AMOUNT, f"amount {d.amount_text!r} (a 16 amount is unsigned digits)" if d.amount_text
                 else "16 record without an amount")
    elif account.currency not in CURRENCY_EXPONENTS:
        error = (c.UNKNOWN_CURRENCY, f"currency {account.currency!r}")
    elif sign is None:
        error = (c.UNKNOWN_TYPE, f"type code {d.type_code!r} has no direction")
    elif d.funds_problem:
        error = (c.MALFORMED_ROW, f"unknown {d.funds_problem}")
    if error:
        out.add(**row, _error=error[0], _error_detail=error[1], _raw="\n".join(rec.raw), event_type="bank_credit")
    elif sign == 0:
        out.add(**row, event_type="bank_credit", _skip=True)
    else:                                                    # implied decimals = the currency's exponent
        out.add(**row, event_type="bank_credit" if sign > 0 else "bank_debit", amount_minor=sign * amount)
    return readable or not d.amount_text


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
    return c.finish(parsed, spec, ctx, extra_stats=local_frame(spark, totals, TOTALS_SCHEMA), rejected=rejected,
                    files=files)
