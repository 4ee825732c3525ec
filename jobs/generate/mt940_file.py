"""Writer: SWIFT MT940 statement, one file per delivery day with one statement per account, in the
``{1:..}{2:..}{4:`` block wrapper. Balances chain day to day like the camt.053 ones; each bank entry is a
``:61:`` line (value date, entry date, C/D, amount with a decimal comma, NTRF/NDDT, the end-to-end id as
the owner's reference and the bank's reference after ``//``) with a Dutch structured ``:86:``
(``/EREF/.../CNTP/iban/bic/name/.../REMI/USTD//text/``) wrapped at 65 characters. Entries are written in
the order of the camt.053 ``Ntry`` elements, so record ordinals are the same.

With ``wrapped_86`` (noise level ``high``) the ``:86:`` is written the German way instead: a GVC (166 SEPA
credit, 105 SEPA direct debit), ``?00`` posting text, ``?10`` prima nota, the purpose in 27-character
``?20``-``?29`` subfields (``EREF+`` end-to-end id, ``SVWZ+`` remittance text, each keyword opening a
subfield, text cut mid-word), ``?30`` BIC, ``?31`` IBAN, ``?32``/``?33`` name, and the whole field wrapped at
65 characters per line (``:86:`` included), up to the 6 lines SWIFT allows. A line never ends in a space
(readers strip trailing blanks) nor starts with ``:`` or ``-`` (which would read as a tag or an end).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from jobs.generate.adyen import AdyenBatches
from jobs.generate.bank import BankEntries, Payouts
from jobs.generate.camt_file import _entry_texts
from jobs.generate.dates import to_date
from jobs.generate.ids import digits_from_hash, hash64
from jobs.generate.stripe import StripePayouts
from jobs.generate.world import TenantWorld
from jobs.money import format_minor

WIDTH = 65
SUBFIELD = 27
MAX_LINES = 6


def file_name(day: int) -> str:
    return f"mt940_{to_date(day).isoformat()}.sta"


def _amount(minor: int, ccy: str) -> str:
    return format_minor(abs(int(minor)), ccy, decimal_separator=",")


def _wrap(text: str) -> list[str]:
    first, rest = text[: WIDTH - 4], text[WIDTH - 4:]
    return [first] + [rest[i: i + WIDTH] for i in range(0, len(rest), WIDTH)]


def _subfields(first: int, texts: list[str]) -> list[str]:
    """``?NN`` purpose subfields from ``first`` on: each text opens a new subfield, cut every 27 characters."""
    out, key = [], first
    for text in texts:
        for i in range(0, len(text), SUBFIELD):
            out.append(f"?{key:02d}{text[i: i + SUBFIELD]}")
            key += 1
    return out


def german_86(credit: bool, name: str, iban: str, bic: str, e2e: str, ustrd: str) -> str:
    """A German SEPA ``:86:`` field (without the tag): GVC, posting text, purpose, counterparty. A ``?`` in a
    text would open a subfield: it is written as ``.``, as banks do."""
    e2e, ustrd, name = (x.replace("?", ".") for x in (e2e, ustrd, name))
    gvc, posting = ("166", "SEPA-GUTSCHRIFT") if credit else ("105", "SEPA-BASISLASTSCHRIFT")
    purpose = [*([f"EREF+{e2e}"] if e2e != "NOTPROVIDED" else []), f"SVWZ+{ustrd}"]
    parts = [f"{gvc}?00{posting}?10931", *_subfields(20, purpose)[:10]]
    if iban:
        parts += [f"?30{bic}", f"?31{iban}"]
    parts += [f"?32{name[:SUBFIELD]}"] + ([f"?33{name[SUBFIELD: 2 * SUBFIELD]}"] if len(name) > SUBFIELD else [])
    return "".join(parts).replace("\r", " ").replace("\n", " ")


def wrap_86(text: str) -> list[str]:
    """``:86:`` field text as lines of at most 65 characters (the first one after the tag), at most 6 lines.
    A cut is moved back so that no line ends in a space or starts with ``:`` or ``-``."""
    lines, rest, width = [], text, WIDTH - 4
    while rest and len(lines) < MAX_LINES:
        cut = min(width, len(rest))
        while cut < len(rest) and cut > 1 and (rest[cut - 1] == " " or rest[cut] in ":-"):
            cut -= 1
        lines.append(rest[:cut])
        rest, width = rest[cut:], WIDTH
    return lines


def bic_of(iban: str) -> str:
    """The counterparty bank's BIC as German statements show it (bank code of the IBAN + country + XXX)."""
    return f"{iban[4:8]}{iban[:2]}2AXXX" if iban else ""


def bank_reference(w: TenantWorld, day: int, seq: int) -> str:
    key = np.array([int(day) * 1000 + seq])
    return f"{to_date(day).strftime('%y%m%d')}{int(digits_from_hash(hash64(w.salt, 'mt940ref', key), 10)[0]):010d}"


def write(path: Path, w: TenantWorld, day: int, e: BankEntries, rows: np.ndarray, opening: dict[int, int],
          payouts: Payouts, sp: StripePayouts, ab: AdyenBatches, others: dict | None = None,
          wrapped_86: bool = False) -> dict[int, int]:
    d = to_date(day)
    yymmdd, mmdd = d.strftime("%y%m%d"), d.strftime("%m%d")
    out, closing, seq = [], {}, 0
    for acct, account in sorted(w.accounts.items()):
        mine = rows[e.acct[rows] == acct]
        ccy = account.currency
        close = opening[acct] + int(e.amount[mine].sum())
        closing[acct] = close
        mark = lambda v: "C" if v >= 0 else "D"  # noqa: E731
        out += ["{1:F01ABNANL2AXXX0000000000}{2:O940" + f"0600{yymmdd}ABNANL2AXXX00000000000{yymmdd}0600N" + "}{4:",
                f":20:{w.tenant.upper()[:8]}{yymmdd}{acct}", f":25:{account.iban}{ccy}",
                f":28C:{day - 18_262:05d}/1", f":60F:{mark(opening[acct])}{yymmdd}{ccy}{_amount(opening[acct], ccy)}"]
        for i in mine:
            seq += 1
            name, iban, e2e, ustrd, addtl = _entry_texts(w, e, int(i), payouts, sp, ab, others)
            amount = int(e.amount[i])
            kind = "NTRF" if amount > 0 else "NDDT"
            owner_ref = e2e if e2e != "NOTPROVIDED" else "NONREF"
            out.append(f":61:{yymmdd}{mmdd}{mark(amount)}{_amount(amount, ccy)}{kind}{owner_ref[:16]}"
                       f"//{bank_reference(w, day, seq)}")
            if wrapped_86:
                lines = wrap_86(german_86(amount > 0, name, iban, bic_of(iban), e2e, ustrd))
            else:
                info = (f"/EREF/{e2e}//CNTP/{iban}/ABNANL2A/{name}///REMI/USTD//{ustrd}/" if iban
                        else f"/CNTP///{name}///REMI/USTD//{ustrd}/")
                lines = _wrap(info)
            out.append(f":86:{lines[0]}")
            out += lines[1:]
        out += [f":62F:{mark(close)}{yymmdd}{ccy}{_amount(close, ccy)}",
                f":64:{mark(close)}{yymmdd}{ccy}{_amount(close, ccy)}", "-}"]
    path.write_text("\r\n".join(out) + "\r\n", encoding="ascii", errors="replace")
    return closing



