"""Writer: SWIFT MT940 statement, one file per delivery day with one statement per account, in the
``{1:..}{2:..}{4:`` block wrapper. Balances chain day to day like the camt.053 ones; each bank entry is a
``:61:`` line (value date, entry date, C/D, amount with a decimal comma, NTRF/NDDT, the end-to-end id as
the owner's reference and the bank's reference after ``//``) with a Dutch structured ``:86:``
(``/EREF/.../CNTP/iban/bic/name/.../REMI/USTD//text/``) wrapped at 65 characters. Entries are written in
the order of the camt.053 ``Ntry`` elements, so record ordinals are the same.
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


def file_name(day: int) -> str:
    return f"mt940_{to_date(day).isoformat()}.sta"


def _amount(minor: int, ccy: str) -> str:
    return format_minor(abs(int(minor)), ccy, decimal_separator=",")


def _wrap(text: str) -> list[str]:
    first, rest = text[: WIDTH - 4], text[WIDTH - 4:]
    return [first] + [rest[i: i + WIDTH] for i in range(0, len(rest), WIDTH)]


def bank_reference(w: TenantWorld, day: int, seq: int) -> str:
    key = np.array([int(day) * 1000 + seq])
    return f"{to_date(day).strftime('%y%m%d')}{int(digits_from_hash(hash64(w.salt, 'mt940ref', key), 10)[0]):010d}"


def write(path: Path, w: TenantWorld, day: int, e: BankEntries, rows: np.ndarray, opening: dict[int, int],
          payouts: Payouts, sp: StripePayouts, ab: AdyenBatches, others: dict | None = None) -> dict[int, int]:
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
            info = (f"/EREF/{e2e}//CNTP/{iban}/ABNANL2A/{name}///REMI/USTD//{ustrd}/" if iban
                    else f"/CNTP///{name}///REMI/USTD//{ustrd}/")
            lines = _wrap(info)
            out.append(f":86:{lines[0]}")
            out += lines[1:]
        out += [f":62F:{mark(close)}{yymmdd}{ccy}{_amount(close, ccy)}",
                f":64:{mark(close)}{yymmdd}{ccy}{_amount(close, ccy)}", "-}"]
    path.write_text("\r\n".join(out) + "\r\n", encoding="ascii", errors="replace")
    return closing



