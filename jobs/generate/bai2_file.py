"""Writer: BAI2 balance report, one file per delivery day: one group (as-of the day), one account per
currency (status 010 opening ledger and 015 closing ledger, summary 100/400 totals), a ``16`` detail per
bank entry (type 142 ACH credit / 451 ACH debit, amount in minor units, funds type 0, the bank reference
and the end-to-end id as customer reference, the remittance text), ``49``/``98``/``99`` control totals
and record counts computed from the records. Entries keep the camt.053 order (same record ordinals).

``packed_wrapped`` (noise level ``high``): laid out as some banks do, every other day's file packs two to
four records on a physical line (separated by ``/`` and blanks; a ``16`` still begins its line), and about
a quarter of the ``16`` records with a multi-word text wrap it onto the next physical line, which starts
with a blank (no ``88``). Records, totals and counts are the same as without it.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from jobs.generate.adyen import AdyenBatches
from jobs.generate.bank import BankEntries, Payouts
from jobs.generate.camt_file import _entry_texts
from jobs.generate.dates import to_date
from jobs.generate.mt940_file import bank_reference
from jobs.generate.stripe import StripePayouts
from jobs.generate.world import TenantWorld

CREDIT, DEBIT = "142", "451"
LAYOUT_STREAM = 0xBA12                 # the random stream of the packed / wrapped layout
WRAP_SHARE = 0.25


def file_name(day: int) -> str:
    return f"bai2_{to_date(day).isoformat()}.bai"


def _signed(v: int) -> str:
    return f"+{v}" if v >= 0 else str(v)


def write(path: Path, w: TenantWorld, day: int, e: BankEntries, rows: np.ndarray, opening: dict[int, int],
          payouts: Payouts, sp: StripePayouts, ab: AdyenBatches, others: dict | None = None, *,
          packed_wrapped: bool = False) -> dict[int, int]:
    d = to_date(day)
    yymmdd = d.strftime("%y%m%d")
    bank = "021000021"
    receiver = w.tenant.upper()[:15]
    lines = [f"01,{bank},{receiver},{to_date(day + 1).strftime('%y%m%d')},0600,{day - 18_262},,,2/",
             f"02,{receiver},{bank},1,{yymmdd},2400,,2/"]
    closing, group_total, seq = {}, 0, 0
    group_records = 1
    for acct, account in sorted(w.accounts.items()):
        mine = rows[e.acct[rows] == acct]
        amounts = e.amount[mine].astype(np.int64)
        credits, debits = int(amounts[amounts > 0].sum()), int(-amounts[amounts < 0].sum())
        close = opening[acct] + credits - debits
        closing[acct] = close
        account_lines = [f"03,{account.iban},{account.currency},010,{_signed(opening[acct])},,,015,{_signed(close)},,,"
                         f"100,{credits},{int((amounts > 0).sum())},,400,{debits},{int((amounts < 0).sum())},/"]
        total = opening[acct] + close + credits + debits
        for i in mine:
            seq += 1
            name, _, e2e, ustrd, _ = _entry_texts(w, e, int(i), payouts, sp, ab, others)
            amount = int(e.amount[i])
            customer = e2e if e2e != "NOTPROVIDED" else ""
            account_lines.append(f"16,{CREDIT if amount > 0 else DEBIT},{abs(amount)},0,"
                                 f"{bank_reference(w, day, seq)},{customer},{name} {ustrd}")
            total += abs(amount)
        account_lines.append(f"49,{_signed(total)},{len(account_lines) + 1}/")
        lines += account_lines
        group_total += total
        group_records += len(account_lines)
    group_records += 1
    lines.append(f"98,{_signed(group_total)},{len(w.accounts)},{group_records}/")
    lines.append(f"99,{_signed(group_total)},1,{len(lines) + 1}/")
    if packed_wrapped:
        lines = _packed_wrapped(lines, w.rng(LAYOUT_STREAM, day), pack=day % 2 == 1)
    path.write_text("\n".join(lines) + "\n", encoding="ascii", errors="replace")
    return closing


def _packed_wrapped(records: list[str], rng: np.random.Generator, pack: bool) -> list[str]:
    """Physical lines for ``records`` as some banks write them: a 16's text wrapped at a blank onto a line
    of its own (one record still), and with ``pack`` two to four records to a line (a 16 begins a line)."""
    lines: list[str] = []
    on_line, room = 0, 0
    for rec in records:
        if pack and lines and on_line < room and not rec.startswith("16,"):
            lines[-1] += ("  " if lines[-1].endswith("/") else "/  ") + rec   # a text ends at "/" + blanks
            on_line += 1
            continue
        pieces = [rec]
        text_from = _text_start(rec)
        if text_from is not None and rng.random() < WRAP_SHARE:
            blanks = [k for k in range(text_from + 1, len(rec) - 1) if rec[k] == " " and rec[k - 1] != " "]
            if blanks:
                k = blanks[int(rng.integers(0, len(blanks)))]
                pieces = [rec[:k], rec[k:]]                  # the continuation starts with the blank
        lines += pieces
        on_line, room = 1, int(rng.integers(2, 5))
    return lines


def _text_start(rec: str) -> int | None:
    """Where a 16's text begins (after type, amount, funds type 0, bank and customer reference)."""
    if not rec.startswith("16,"):
        return None
    at = 0
    for _ in range(6):
        at = rec.find(",", at) + 1
        if at == 0:
            return None
    return at
