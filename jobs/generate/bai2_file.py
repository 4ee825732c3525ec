"""Writer: BAI2 balance report, one file per delivery day: one group (as-of the day), one account per
currency (status 010 opening ledger and 015 closing ledger, summary 100/400 totals), a ``16`` detail per
bank entry (type 142 ACH credit / 451 ACH debit, amount in minor units, funds type 0, the bank reference
and the end-to-end id as customer reference, the remittance text), ``49``/``98``/``99`` control totals
and record counts computed from the records. Entries keep the camt.053 order (same record ordinals).
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


def file_name(day: int) -> str:
    return f"bai2_{to_date(day).isoformat()}.bai"


def _signed(v: int) -> str:
    return f"+{v}" if v >= 0 else str(v)


def write(path: Path, w: TenantWorld, day: int, e: BankEntries, rows: np.ndarray, opening: dict[int, int],
          payouts: Payouts, sp: StripePayouts, ab: AdyenBatches, others: dict | None = None) -> dict[int, int]:
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
    path.write_text("\n".join(lines) + "\n", encoding="ascii", errors="replace")
    return closing
