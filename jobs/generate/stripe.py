"""Stripe balance transactions and automatic payouts (the content of the itemized payout reports).

Every balance transaction created on UTC day C is paid out in the automatic payout of its balance
currency effective on C + ``stripe_payout_lag_bd`` business days; Σ net of a payout's transactions
is the payout amount. Presentment currencies other than the balance currencies are converted to EUR
at the payment's rate (integers, rounded half up, never a tie).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from jobs.generate import noise as nz
from jobs.generate.dates import DAY, add_business_days, same_day_later
from jobs.generate.events import Disputes, Payments, Refunds, Table, convert
from jobs.generate.world import EUR, STRIPE, TenantWorld

CHARGE, REFUND, DISPUTE, FEE = range(4)
CATEGORIES = ["charge", "refund", "dispute", "fee"]
DISPUTE_FEE = 1500
FEE_TEXT = ["Card payments ({}): Transaction network costs", "Radar ({}): Standard, per screened charge"]


@dataclass
class StripeRows(Table):
    cat: np.ndarray
    pay: np.ndarray          # payment index (-1 for fee rows)
    ref: np.ndarray          # refund index for refunds, fee sub-kind for fee rows, else -1
    created: np.ndarray
    ccy: np.ndarray          # balance (settlement) currency
    gross: np.ndarray
    fee: np.ndarray
    net: np.ndarray
    cf_amt: np.ndarray       # customer-facing (presentment) amount, signed
    cf_ccy: np.ndarray       # -1: none
    fee_day: np.ndarray      # day named in a fee row's description
    payout: np.ndarray       # index into StripePayouts
    dup: np.ndarray          # a repeated copy of another row (same balance_transaction_id)
    sort_t: np.ndarray       # position key within the file


@dataclass
class StripePayouts(Table):
    ccy: np.ndarray
    day: np.ndarray          # automatic_payout_effective_at date = bank arrival = file delivery
    amount: np.ndarray       # Σ net (signed, minor)
    serial: np.ndarray
    style: np.ndarray        # 0 Dashboard (all quoted), 1 API (_utc columns, other order)


def _settle(w: TenantWorld, p: Payments, pay: np.ndarray, amt: np.ndarray):
    in_balance = np.isin(p.ccy[pay], w.stripe_balances)
    ccy = np.where(in_balance, p.ccy[pay], EUR)
    gross = np.where(in_balance, amt, convert(amt, p.ccy[pay], p.rate[pay])[0])
    return ccy, gross


def _rows(cat, pay, ref, created, ccy, gross, fee, cf_amt, cf_ccy, fee_day=None) -> StripeRows:
    n = len(pay)
    return StripeRows(cat=np.full(n, cat, np.int8), pay=pay, ref=ref, created=created, ccy=ccy.astype(np.int8),
                      gross=gross, fee=fee, net=gross - fee, cf_amt=cf_amt, cf_ccy=cf_ccy.astype(np.int8),
                      fee_day=np.full(n, -1) if fee_day is None else fee_day, payout=np.zeros(n, np.int64),
                      dup=np.zeros(n, bool), sort_t=created.copy())


def build(w: TenantWorld, prm: nz.NoiseParams, p: Payments, r: Refunds, d: Disputes, end_day: int):
    """Stripe rows of payouts effective on or before ``end_day`` (later ones are never delivered)."""
    rng = w.rng(3)
    pay = np.flatnonzero((p.psp == STRIPE) & (p.kind != nz.MISSING_PSP))
    ccy, gross = _settle(w, p, pay, p.amt[pay])
    fee = (gross * np.where(p.fx[pay], 25, 15) + 500) // 1000 + 25
    parts = [_rows(CHARGE, pay, np.full(len(pay), -1), p.cap_t[pay], ccy, gross, fee, p.amt[pay], p.ccy[pay])]
    rsel = np.flatnonzero(p.psp[r.pay] == STRIPE)
    rp = r.pay[rsel]
    ccy_r, gross_r = _settle(w, p, rp, r.amt[rsel])
    created_r = same_day_later(r.t[rsel], 1 + rsel % 59)
    parts.append(_rows(REFUND, rp, rsel, created_r, ccy_r, -gross_r, np.zeros(len(rsel), np.int64), -r.amt[rsel],
                       p.ccy[rp]))
    dp = d.pay[p.psp[d.pay] == STRIPE]
    dt = d.t[p.psp[d.pay] == STRIPE]
    ccy_d, gross_d = _settle(w, p, dp, p.amt[dp])
    parts.append(_rows(DISPUTE, dp, np.full(len(dp), -1), dt, ccy_d, -gross_d, np.full(len(dp), DISPUTE_FEE),
                       -p.amt[dp], p.ccy[dp]))
    parts.append(_fee_rows(parts[0]))
    rows = StripeRows.concat(parts)
    pday = add_business_days(rows.created // DAY, w.stripe_payout_lag_bd) if len(rows) else rows.created
    rows = rows.reorder(np.flatnonzero(pday <= end_day))
    pday = pday[pday <= end_day]
    rows, payouts = _payouts(w, rows, pday)
    rows = _duplicate(rng, prm, rows)
    order = np.lexsort((rows.dup, rows.cat, rows.sort_t, rows.payout))
    return rows.reorder(order), payouts


def _fee_rows(charges: StripeRows) -> StripeRows:
    """Stripe's own fees, billed per balance currency and charge day on the next day at 02:00 UTC."""
    day = charges.created // DAY
    key = day * 8 + charges.ccy
    uniq, inv = np.unique(key, return_inverse=True)
    order = np.argsort(inv, kind="stable")
    starts = np.searchsorted(inv[order], np.arange(len(uniq)))
    volume = np.add.reduceat(charges.gross[order], starts) if len(uniq) else np.zeros(0, np.int64)
    count = np.diff(np.append(starts, len(order)))
    fdays, fccy = uniq // 8, uniq % 8
    out = []
    for sub, amount in ((0, volume // 1000 + 1), (1, 5 * count)):
        created = (fdays + 1) * DAY + 7200 + 60 * sub
        out.append(_rows(FEE, np.full(len(uniq), -1), np.full(len(uniq), sub), created, fccy, -amount,
                         np.zeros(len(uniq), np.int64), np.zeros(len(uniq), np.int64), np.full(len(uniq), -1),
                         fee_day=fdays))
    return StripeRows.concat(out)


def _payouts(w: TenantWorld, rows: StripeRows, pday: np.ndarray):
    key = pday * 8 + rows.ccy
    uniq, inv = np.unique(key, return_inverse=True)
    rows.payout = inv.astype(np.int64)
    order = np.argsort(inv, kind="stable")
    starts = np.searchsorted(inv[order], np.arange(len(uniq)))
    amount = np.add.reduceat(rows.net[order], starts) if len(uniq) else np.zeros(0, np.int64)
    days, ccy = uniq // 8, uniq % 8
    serial = (days - 18_262) * 8 + ccy
    style = (serial * 2_654_435_761 + w.salt) % 7 % 2
    return rows, StripePayouts(ccy=ccy.astype(np.int8), day=days, amount=amount, serial=serial, style=style)


def _duplicate(rng: np.random.Generator, prm: nz.NoiseParams, rows: StripeRows) -> StripeRows:
    """Repeat a few charge/refund rows later in the same payout file (same balance_transaction_id)."""
    cand = np.flatnonzero(rows.cat <= REFUND)
    pick = cand[rng.random(len(cand)) < prm.stripe_duplicate_rate]
    if len(pick) == 0:
        return rows
    copies = rows.take(pick)
    copies.dup[:] = True
    copies.sort_t = copies.sort_t + rng.integers(60, 6 * 3600, len(pick))
    return StripeRows.concat([rows, copies])
