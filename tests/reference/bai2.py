"""An independent reader of BAI2 files, for the tests: written from the specification (BAI "Cash
Management Balance Reporting Specifications", Version 2), sharing no code with ``jobs/formats/bai2.py``.
Plain Python, one character at a time; slow and small on purpose.

What it reads, per the specification and the deviations real banks' files show:
- Records ``01 02 03 16 49 88 98 99``; fields separated by ``,``; a ``/`` ends a record that does not end
  in text when only blanks and then a record code (or the end of the line) follow it; a ``/`` anywhere
  else is data.
- A physical line that starts with a record code begins a record; one that does not continues the record
  before it (the bank wrapped it): outside text the break joins the two halves of a field, inside text
  it reads as one space (none when a blank is next to it). Several records may share a line.
- A ``16``'s text is its last field, after ``type, amount, funds type [+ its fields], bank reference,
  customer reference``; it may hold ``,`` and ``/`` and ends where the next record starts: the next line
  with a record code, or ``/``, one or more blanks and a record code. A trailing ``/`` is not text.
- An ``88`` continues the record before it where it stopped: inside the text, or with the next field.
- Funds types ``0 1 2 Z`` and empty carry nothing more; ``S`` three amounts; ``V`` date and time; ``D``
  a count and that many (days, amount) pairs. Funds-type amounts and item counts are not in the totals.
- Amounts are integers in the currency's minor units (no decimal point). A ``16`` amount is unsigned or
  ``+``; ``03`` status amounts and trailer totals may be signed.
- Control totals: ``49`` = algebraic sum of the account's ``03`` and ``16`` amounts and its number of
  records (``03`` through ``49``, every ``88`` counted, wrapped lines not); ``98`` = sum of its accounts,
  number of ``03``, records ``02`` through ``98``; ``99`` = sum of the groups, number of ``02``, every
  record of the file.
"""
from __future__ import annotations

from dataclasses import dataclass, field

CODES = ("01", "02", "03", "16", "49", "88", "98", "99")
BLANKS = " \t\n"
SIGNIFICANT_DIGITS = 18                 # an amount must fit a signed 64-bit integer
COUNT_DIGITS = 9                        # a longer D count cannot be meant


@dataclass(frozen=True)
class Detail:
    """One ``16``: amount in minor units, + credit / - debit, None when it cannot be loaded (no or bad
    amount, a type code without a direction, a malformed funds type); ``info_only`` for type 890."""
    ordinal: int
    type_code: str
    amount: int | None
    currency: str
    info_only: bool
    bank_ref: str | None
    customer_ref: str | None
    text: str | None


@dataclass
class Level:
    """An account, group or the file: what its trailer states and what its records add up to."""
    kind: str
    label: str
    computed_total: int = 0
    computed_records: int = 0
    computed_children: int = 0          # groups in the file, accounts in a group
    stated_total: int | None = None
    stated_records: int | None = None
    stated_children: int | None = None
    closed: bool = False

    def agrees(self) -> bool:
        children = self.kind == "account" or self.stated_children == self.computed_children
        return (self.closed and children and self.stated_total == self.computed_total
                and self.stated_records == self.computed_records)


@dataclass
class Reading:
    details: list[Detail] = field(default_factory=list)
    levels: list[Level] = field(default_factory=list)
    verdict: bool | None = None         # control totals: True agree, False disagree, None cannot be checked
    error: str | None = None            # not a readable BAI2 file
    physical_records: int = 0


@dataclass
class _Logical:
    code: str
    fields: list[str] = field(default_factory=list)
    text: list[str] = field(default_factory=list)
    physical: int = 0


def _number(text: str, signed: bool = True) -> int | None:
    body = text[1:] if text[:1] == "+" or (signed and text[:1] == "-") else text
    if not body or not all("0" <= ch <= "9" for ch in body) or len(body.lstrip("0")) > SIGNIFICANT_DIGITS:
        return None
    return int(text)


def _extra_fields(funds: str, count: str | None) -> tuple[int, bool]:
    """Fields after a funds type, and whether the funds type is well formed."""
    kind = funds.upper()
    if kind in ("", "0", "1", "2", "Z"):
        return 0, True
    if kind == "S":
        return 3, True
    if kind == "V":
        return 2, True
    if kind == "D":
        if count and len(count) <= COUNT_DIGITS and all("0" <= ch <= "9" for ch in count):
            return 1 + 2 * int(count), True
        return 1, False
    return 0, False


def _text_index(rec: _Logical) -> int | None:
    if rec.code != "16" or len(rec.fields) < 3:
        return None
    count = rec.fields[3] if len(rec.fields) > 3 else None
    return 5 + _extra_fields(rec.fields[2], count)[0]


def _starts_record(s: str, i: int) -> bool:
    return s[i:i + 2] in CODES and s[i + 2:i + 3] == ","


def _split_lines(text: str) -> list[str]:
    lines, current, i = [], [], 0
    while i < len(text):
        ch = text[i]
        if ch == "\r" or ch == "\n":
            lines.append("".join(current))
            current = []
            if ch == "\r" and text[i + 1:i + 2] == "\n":
                i += 1
        else:
            current.append(ch)
        i += 1
    lines.append("".join(current))
    return lines


class _Scanner:
    """Reads one run (a line that starts a record plus the lines that continue it, joined by newlines)."""

    def __init__(self, s: str, records: list[_Logical]):
        self.s, self.i, self.records = s, 0, records

    def _after_blanks(self, j: int) -> int:
        while j < len(self.s) and self.s[j] in BLANKS:
            j += 1
        return j

    def _slash_ends_record(self, j: int) -> bool:
        k = self._after_blanks(j + 1)
        return k == len(self.s) or _starts_record(self.s, k)

    def _slash_ends_text(self, j: int) -> bool:
        k = self._after_blanks(j + 1)
        return k > j + 1 and k < len(self.s) and _starts_record(self.s, k)

    def run(self) -> None:
        while True:
            self.i = self._after_blanks(self.i)
            if self.i >= len(self.s):
                return
            if not _starts_record(self.s, self.i):
                raise ValueError(f"no record code at {self.s[self.i:self.i + 20]!r}")
            code = self.s[self.i:self.i + 2]
            self.i += 3
            if code == "88":
                if not self.records:
                    raise ValueError("88 first")
                rec = self.records[-1]
            else:
                rec = _Logical(code)
                self.records.append(rec)
            rec.physical += 1
            self._physical(rec)

    def _physical(self, rec: _Logical) -> None:
        s = self.s
        while True:
            at = _text_index(rec)
            if at is not None and len(rec.fields) >= at:
                if self.i < len(s) and s[self.i] == "/" and self._slash_ends_record(self.i):
                    self.i += 1
                    return
                rec.text.append(self._text())
                return
            chars: list[str] = []
            while self.i < len(s):
                ch = s[self.i]
                if ch == "," or (ch == "/" and self._slash_ends_record(self.i)):
                    break
                if ch == "\n":                           # a wrapped field: its halves join
                    while chars and chars[-1] in " \t":
                        chars.pop()
                    self.i += 1
                    while self.i < len(s) and s[self.i] in " \t":
                        self.i += 1
                    continue
                chars.append(ch)
                self.i += 1
            rec.fields.append("".join(chars).strip())
            if self.i >= len(s):
                return
            self.i += 1
            if s[self.i - 1] == "/":
                return

    def _text(self) -> str:
        s, chars = self.s, []
        while self.i < len(s):
            ch = s[self.i]
            if ch == "/" and self._slash_ends_text(self.i):
                self.i += 1
                break
            if ch == "\n":
                before = chars[-1] if chars else " "
                after = s[self.i + 1] if self.i + 1 < len(s) else " "
                if not before.isspace() and not after.isspace():
                    chars.append(" ")
            else:
                chars.append(ch)
            self.i += 1
        text = "".join(chars).strip()
        if text.endswith("/"):
            text = text[:-1].rstrip()
        return text


def _logical_records(text: str) -> list[_Logical]:
    runs: list[str] = []
    for n, line in enumerate(_split_lines(text), 1):
        if line.strip() == "":
            continue
        if _starts_record(line, 0):
            runs.append(line)
        elif runs:
            runs[-1] += "\n" + line
        else:
            raise ValueError(f"line {n} is no record")
    records: list[_Logical] = []
    for run in runs:
        _Scanner(run, records).run()
    return records


def _summary(fields: list[str]) -> tuple[int, bool]:
    """Total of an 03's amounts (fields after account and currency); False when one cannot be read."""
    total, ok, i = 0, True, 0
    while i < len(fields):
        amount = fields[i + 1] if i + 1 < len(fields) else ""
        if amount != "":
            value = _number(amount)
            ok = ok and value is not None
            total += value or 0
        funds = fields[i + 3] if i + 3 < len(fields) else ""
        extra, well_formed = _extra_fields(funds, fields[i + 4] if i + 4 < len(fields) else None)
        ok = ok and well_formed
        i += 4 + extra
    return total, ok


def _direction(type_code: str) -> int | None:
    if len(type_code) != 3 or not all("0" <= ch <= "9" for ch in type_code):
        return None
    n = int(type_code)
    if n == 890:
        return 0
    if n in range(101, 400) or n in range(920, 960):
        return 1
    if n in range(401, 700) or n in range(960, 1000):
        return -1
    return None


def read(data: bytes) -> Reading:
    out = Reading()
    try:
        records = _logical_records(data.decode("utf-8-sig", errors="replace"))
        if not records or records[0].code != "01":
            raise ValueError("no 01 first")
        _walk(records, out)
    except ValueError as exc:
        return Reading(error=str(exc))
    return out


def _walk(records: list[_Logical], out: Reading) -> None:
    readable, sound = True, True
    whole = Level("file", "file")
    out.levels.append(whole)
    group = account = None
    group_currency = currency = "USD"
    finished, headers = False, 0
    for rec in records:
        out.physical_records += rec.physical
        sound = sound and not finished
        f = rec.fields + [""] * 6
        for level in (whole, group, account):
            if level is not None:
                level.computed_records += rec.physical
        if rec.code == "01":
            headers += 1
            sound = sound and headers == 1
        elif rec.code == "02":
            sound = sound and group is None
            if group is not None:
                whole.computed_total += group.computed_total
            group = Level("group", f"group {whole.computed_children + 1}", computed_records=rec.physical)
            whole.computed_children += 1
            out.levels.append(group)
            group_currency = f[5].upper() or "USD"
        elif rec.code == "03":
            if group is None:
                raise ValueError("03 outside a group")
            if account is not None:
                sound = False
                group.computed_total += account.computed_total
            account = Level("account", f"account {f[0]}", computed_records=rec.physical)
            out.levels.append(account)
            group.computed_children += 1
            currency = f[1].upper() or group_currency
            account.computed_total, ok = _summary(rec.fields[2:])
            readable = readable and ok
        elif rec.code == "16":
            if account is None:
                raise ValueError("16 outside an account")
            detail, amount, ok = _detail(rec, len(out.details) + 1, currency)
            out.details.append(detail)
            account.computed_total += amount
            readable = readable and ok
        elif rec.code == "49":
            if account is None:
                sound = False
                continue
            account.stated_total, account.stated_records = _number(f[0]), _number(f[1])
            account.closed = True
            if group is not None:
                group.computed_total += account.computed_total
            account = None
        elif rec.code == "98":
            if group is None:
                sound = False
                continue
            if account is not None:
                sound = False
                group.computed_total += account.computed_total
                account = None
            group.stated_total, group.stated_children, group.stated_records = (_number(x) for x in f[:3])
            group.closed = True
            whole.computed_total += group.computed_total
            group = None
        elif rec.code == "99":
            sound = sound and group is None
            whole.stated_total, whole.stated_children, whole.stated_records = (_number(x) for x in f[:3])
            whole.closed = True
            finished = True
    sound = sound and records[-1].code == "99"
    if not readable:
        out.verdict = None
    else:
        out.verdict = sound and all(level.agrees() for level in out.levels)


def _detail(rec: _Logical, ordinal: int, currency: str) -> tuple[Detail, int, bool]:
    """The 16 as a Detail, what it adds to the account total, and whether its amount could be read."""
    f = rec.fields
    get = (lambda k: f[k] if k < len(f) else "")
    type_code, amount_text = get(0), get(1)
    extra, well_formed = _extra_fields(get(2), get(3) if len(f) > 3 else None)
    value = _number(amount_text, signed=False) if amount_text else None
    readable = amount_text == "" or value is not None
    sign = _direction(type_code)
    text = " ".join(t for t in rec.text if t) or None
    amount = None
    if value is not None and sign and well_formed:
        amount = sign * value
    detail = Detail(ordinal, type_code, amount, currency, sign == 0, get(3 + extra) or None, get(4 + extra) or None,
                    text)
    return detail, value or 0, readable
