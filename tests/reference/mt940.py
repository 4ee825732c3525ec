"""An independent reader of SWIFT MT940 customer statements, for the tests. Written from the message layout
(SWIFT MT940: fields 20, 21, 25, 28C, 60F/60M, 61, 86, 62F/62M, 64, 65), it shares no code with the parser
in ``jobs/formats/mt940.py``: the envelope is taken off the whole text first, lines are grouped into fields,
a ``:61:`` is read with a cursor along its layout ``6!n[4!n]2a[1!a]15d1!a3!c16x[//16x]`` and the currency
table below is its own.

What it returns per file: every ``:61:`` (ordinal = its 1-based position among the file's ``:61:``
fields) with its amount in signed minor units (money in > 0), the statement's currency and, when the
parse stage should quarantine it, the reason code; per statement page (a ``:20:`` or a new opening
balance starts one) the balance verdict: True when opening + lines = closing, False when not, None when
it cannot be checked (no opening or closing balance, an unreadable one, a closing balance in another
currency, or a line that is not loaded). And per line the references its ``:86:`` carries, which
``bank_text`` must keep, and the counterparty name, which it must not.

Conventions the reader shares with the parse stage because the format leaves them open: YY below 80 is
20YY; an entry date MMDD takes the value date's year, one more or less across a new year; trailing
blanks of a line are not content; a continuation line of a structured ``:86:`` (German ``?NN``, Triodos
``>NN``, Dutch ``/TAG/``) continues the previous one without a separator.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, InvalidOperation

# ISO 4217 (list one) exponents of the currencies the tests use, and codes withdrawn from use (list three).
EXPONENT = {**dict.fromkeys("EUR USD GBP CHF SEK NOK DKK PLN CZK HUF RON BGN CAD AUD NZD SGD HKD CNY INR ZAR MXN "
                            "BRL TRY ILS AED SAR THB MYR PHP".split(), 2),
            **dict.fromkeys("JPY KRW ISK CLP VND XOF XAF".split(), 0),
            **dict.fromkeys("KWD BHD JOD OMR TND".split(), 3)}
WITHDRAWN = set("DEM FRF NLG ITL ESP BEF ATS PTE FIM IEP GRD LUF XEU VEB CYP MTL SIT SKK EEK LVL LTL HRK ECS VEF "
                "TRL ROL".split())
SEPA_KEYS = ("EREF", "KREF", "MREF", "CRED", "DEBT", "SVWZ", "ABWA", "ABWE")
DUTCH_REFERENCES = ("EREF", "KREF", "PREF", "MARF")
FIELD_START = re.compile(r":(\d\d[A-Z]?):")
ENVELOPE_BLOCK = re.compile(r"\{[1235]:(?:\{[^{}]*\}|[^{}])*\}")


@dataclass
class Entry:
    ordinal: int
    amount_minor: int | None
    currency: str | None
    reason: str | None = None                       # quarantine reason code; None when it loads
    references: list[str] = field(default_factory=list)
    name: str | None = None


@dataclass
class Page:
    opening: Decimal | None = None
    currency: str | None = None
    closing: Decimal | None = None
    broken: bool = False                            # an unreadable balance, or closing in another currency
    has_opening: bool = False
    entries: list[Entry] = field(default_factory=list)
    majors: list[Decimal] = field(default_factory=list)

    @property
    def verdict(self) -> bool | None:
        if any(e.reason for e in self.entries) or self.broken or self.opening is None or self.closing is None:
            return None
        return self.opening + sum(self.majors, Decimal(0)) == self.closing


@dataclass
class Reading:
    is_statement: bool                              # :20:, :25: and an opening balance were found
    entries: list[Entry]
    verdicts: list[bool | None]

    @property
    def verdict(self) -> bool | None:
        return False if False in self.verdicts else (None if None in self.verdicts else True)


def _text(data: bytes) -> str:
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def fields_of(text: str) -> list[tuple[str, list[str]]]:
    """(tag, lines) of every field, in order; the envelope and the separators between statements removed."""
    text = ENVELOPE_BLOCK.sub("\n", text)            # {1:..}{2:..}{3:{..}}{5:{..}}
    text = text.replace("{4:", "\n").replace("-}", "\n-\n")
    out: list[tuple[str, list[str]]] = []
    open_field = False
    for physical in re.split(r"\r\n|\r|\n", text):
        line = physical.strip("\x01\x03\x1a").rstrip()
        if line.strip() in ("-", "$"):               # end of a statement / of an RJE message
            open_field = False
            continue
        start = FIELD_START.match(line)
        if start:
            out.append((start.group(1), [line[start.end():]]))
            open_field = True
        elif line.strip() and open_field:
            out[-1][1].append(line)                  # continuation line of the open field
    return out


def _amount(text: str) -> Decimal | None:
    """A SWIFT ``15d`` amount: digits with one decimal comma."""
    if not re.fullmatch(r"\d+,\d*", text):
        return None
    try:
        return Decimal(text.replace(",", "."))
    except InvalidOperation:
        return None


def _date(yymmdd: str) -> date | None:
    try:
        year = int(yymmdd[:2])
        return date(2000 + year if year < 80 else 1900 + year, int(yymmdd[2:4]), int(yymmdd[4:6]))
    except ValueError:
        return None


def _balance(lines: list[str]) -> tuple[str, Decimal] | None:
    """``1!a6!n3!a15d``: D/C mark, date, currency, amount -> (currency, signed amount)."""
    value = lines[0].strip()
    if len(value) < 11 or value[0] not in "CD" or not _date(value[1:7]) or not re.fullmatch("[A-Z]{3}", value[7:10]):
        return None
    amount = _amount(value[10:])
    if amount is None:
        return None
    return value[7:10], amount if value[0] == "C" else -amount


def statement_line(value: str) -> tuple[Decimal, str, str | None] | None:
    """The signed major-unit amount, the owner's reference and a counterparty name written after it, of a
    ``:61:`` first line read along its layout; None when the line does not follow it."""
    s, i = value.strip(), 6
    if len(s) < 6 or not s[:6].isdigit():
        return None
    value_date = _date(s[:6])
    if value_date is None:
        return None
    if s[6:10].isdigit() and len(s[6:10]) == 4:      # optional entry date MMDD
        month, day = int(s[6:8]), int(s[8:10])
        year = value_date.year
        if value_date.month == 12 and month == 1:
            year += 1
        elif value_date.month == 1 and month == 12:
            year -= 1
        try:
            date(year, month, day)
        except ValueError:
            return None
        i = 10
    if s[i:i + 2] in ("RC", "RD", "EC", "ED"):
        mark, i = s[i:i + 2], i + 2
    elif s[i:i + 1] in ("C", "D"):
        mark, i = s[i], i + 1
    else:
        return None
    if s[i:i + 1].isalpha():                         # funds code: third letter of the currency
        i += 1
    j = i
    while j < len(s) and (s[j].isdigit() or s[j] == ","):
        j += 1
    amount = _amount(s[i:j])
    if amount is None:
        return None
    if not re.fullmatch(r"[NSF][A-Z0-9]{3}", s[j:j + 4]):     # transaction type, e.g. NTRF, S103
        return None
    owner, slashes, _ = s[j + 4:].partition("//")
    credit = mark in ("C", "RD", "EC")
    # 16x reference; old Rabobank files write the counterparty's name right after it, without "//"
    name = owner[16:].strip() if not slashes else ""
    return (amount if credit else -amount), owner[:16].strip(), name or None


def _split_sepa(purpose: str) -> list[str]:
    """German SEPA purpose ``EREF+..KREF+..SVWZ+..`` -> the value of each keyword (or the whole text)."""
    parts = re.split(r"(?:" + "|".join(SEPA_KEYS) + r")\+", purpose)
    return [p.strip() for p in parts if p.strip()]


def information(lines: list[str]) -> tuple[list[str], str | None]:
    """(references that must reach bank_text, counterparty name) of one ``:86:`` field's lines."""
    whole = "".join(lines).strip()
    german = re.match(r"(\d{3})\s*([?>])(\d\d)", whole)
    if german:
        sep = german.group(2)
        pieces = whole[german.start(2):].split(sep)
        subfields = [(p[:2], p[2:]) for p in pieces if len(p) >= 2 and p[:2].isdigit()]
        purpose = "".join(v for k, v in subfields if "20" <= k <= "29" or "60" <= k <= "63")
        posting = [v.strip() for k, v in subfields if k == "00" and v.strip()]
        name = "".join(v for k, v in subfields if k in ("32", "33")).strip() or None
        return posting + _split_sepa(purpose), name
    if lines[0].strip().startswith("/"):
        text = "".join(line.strip() for line in lines)
        refs = [m.group(2) for m in re.finditer(r"/(" + "|".join(DUTCH_REFERENCES) + r")/([^/]+)", text)]
        refs += [m.group(1) for m in re.finditer(r"/REMI/(?:USTD//)?([^/]+)", text)]
        names = [m.group(1) for m in re.finditer(r"/NAME/([^/]+)", text)]
        names += [m.group(1) for m in re.finditer(r"/CNTP/[^/]*/[^/]*/([^/]+)", text)]
        return [r.strip() for r in refs if r.strip()], " ".join(n.strip() for n in names) or None
    return [" ".join(line.strip() for line in lines)], None


def read(data: bytes) -> Reading:
    fields = fields_of(_text(data))
    tags = {tag for tag, _ in fields}
    is_statement = "20" in tags and "25" in tags and bool(tags & {"60F", "60M"})
    pages: list[Page] = []
    entries: list[Entry] = []
    page: Page | None = None
    described: Entry | None = None                  # the :61: a following :86: belongs to
    for tag, lines in fields:
        if tag == "20" or page is None:
            page = Page()
            pages.append(page)
        if tag == "86":
            if described is not None:               # several :86: fields after one :61: (Rabobank) add up
                refs, name = information(lines)
                described.references += refs
                described.name = name or described.name
            continue
        described = None
        if tag in ("60F", "60M"):
            if page.has_opening or page.entries or page.closing is not None:
                page = Page()
                pages.append(page)
            page.has_opening = True
            balance = _balance(lines)
            if balance is None:
                page.broken = True
            else:
                page.currency, page.opening = balance
        elif tag in ("62F", "62M"):
            balance = _balance(lines)
            if balance is None:
                page.broken = True
            else:
                ccy, page.closing = balance
                if page.currency and ccy != page.currency:
                    page.broken = True
        elif tag == "61":
            entry = described = Entry(len(entries) + 1, None, page.currency)
            entries.append(entry)
            page.entries.append(entry)
            read_line = statement_line(lines[0])
            if read_line is None:
                entry.reason = "MALFORMED_ROW"
                continue
            major, owner, entry.name = read_line
            if owner and owner.upper() != "NONREF":
                entry.references.append(owner)
            details = " ".join(line.strip() for line in lines[1:]).strip()
            if details:                             # supplementary details (34x) on the next line
                entry.references.append(details)
            entry.reason, entry.amount_minor = _minor(major, page.currency)
            if entry.reason is None:
                page.majors.append(major)
    return Reading(is_statement, entries, [p.verdict for p in pages])


def _minor(major: Decimal, currency: str | None) -> tuple[str | None, int | None]:
    if currency is None:
        return "UNKNOWN_CURRENCY", None
    if currency in WITHDRAWN:
        return "WITHDRAWN_CURRENCY", None
    if currency not in EXPONENT:
        return "UNKNOWN_CURRENCY", None
    scaled = major * (10 ** EXPONENT[currency])
    if scaled != int(scaled):
        return "AMOUNT_PRECISION", None
    return None, int(scaled)
