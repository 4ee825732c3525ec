"""Adyen settlement batches (the content of the settlement details reports).

A capture, refund or chargeback processed at Amsterdam local time L goes into the batch closing on
L's date + 1 (before 12:00) or + 2 (from 12:00), one day later for late settlements. A batch closes
daily, its report is delivered on the close date, and its payout reaches the bank
``adyen_payout_lag_bd`` business days later (the expected arrival, for ageing, is the close date).
Net currency EUR; Gross×rate is rounded half up to the cent (never a tie) and
``round(gross × rate) − fees = net`` per row.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from jobs.generate import noise as nz
from jobs.generate.dates import DAY, add_business_days, amsterdam_offset, same_day_later
from jobs.generate.events import Disputes, Payments, Refunds, Table, convert
from jobs.generate.ids import SERIAL_EPOCH_DAY
from jobs.generate.world import ADYEN, TenantWorld

SETTLED, REFUNDED, CHARGEBACK, FEE, PAYOUT = range(5)
TYPES = ["Settled", "Refunded", "Chargeback", "Fee", "MerchantPayout"]
REFUND_COMMISSION = 10
CHARGEBACK_COMMISSION = 750
CLOSE_TIME = 2798                   # batches close at 00:46:38 local time
BOOK_AGEING_BD = 3                  # an unmatched book record becomes MISSING_IN_PSP after 3 business days


@dataclass
class AdyenRows(Table):
    typ: np.ndarray
    pay: np.ndarray          # payment index (-1 for Fee / MerchantPayout)
    no: np.ndarray           # capture number / refund number
    ref: np.ndarray          # refund index for Refunded rows, else -1
    t: np.ndarray            # creation instant
    gross: np.ndarray        # presentment minor, unsigned (0 for Fee / MerchantPayout)
    rate: np.ndarray
    net: np.ndarray          # EUR minor, unsigned
    credit: np.ndarray       # net is a credit (Settled, or a negative MerchantPayout)
    commission: np.ndarray
    markup: np.ndarray
    scheme: np.ndarray
    interchange: np.ndarray
    batch: np.ndarray        # index into AdyenBatches


@dataclass
class AdyenBatches(Table):
    close_day: np.ndarray
    number: np.ndarray
    amount: np.ndarray       # Σ NC − Σ ND of the batch's other rows (signed)
    arrival_day: np.ndarray  # expected bank credit
    style: np.ndarray        # 0 classic 30 columns, 1 2021 layout


def close_day(t: np.ndarray, extra: np.ndarray | int = 0) -> np.ndarray:
    local = t + amsterdam_offset(t)
    hour = (local % DAY) // 3600
    return local // DAY + 1 + (hour >= 12) + extra


def _captures(p: Payments) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    pay = np.flatnonzero((p.psp == ADYEN) & (p.kind != nz.MISSING_PSP))
    k = p.ncap[pay].astype(np.int64)
    rep = np.repeat(pay, k)
    no = np.arange(len(rep)) - np.repeat(np.cumsum(k) - k, k)
    amt = p.amt[rep].copy()
    split = p.ncap[rep] > 1
    first = (p.amt[rep] * (20 + p.serial[rep] % 41)) // 100
    second = ((p.amt[rep] - first) * (30 + p.serial[rep] % 37)) // 100
    n3 = p.ncap[rep] == 3
    amt = np.where(split & (no == 0), first, amt)
    amt = np.where(split & (no == 1), np.where(n3, second, p.amt[rep] - first), amt)
    amt = np.where(split & (no == 2), p.amt[rep] - first - second, amt)
    return rep, no, amt


def _fees(p: Payments, pay: np.ndarray, g: np.ndarray):
    method = p.method[pay]
    card = method <= 1
    zero = np.zeros(len(pay), np.int64)
    interchange = np.where(card, (g * 3 + 500) // 1000, zero)
    scheme = np.where(card, (g * 2 + 500) // 1000 + 1, zero)
    markup = np.where(card, (g * 6 + 500) // 1000 + 10, zero)
    commission = np.where(method == 2, (g * 29 + 500) // 1000 + 10, np.where(method == 3, 29, zero))
    too_much = interchange + scheme + markup + commission >= g       # never a zero or negative net
    for fee in (interchange, scheme, markup):
        fee[too_much] = 0
    commission[too_much] = g[too_much] // 10
    return commission, markup, scheme, interchange


def _rows(typ, pay, no, t, gross, rate, net, credit, fees, ref=None) -> AdyenRows:
    n = len(pay)
    z = np.zeros(n, np.int64)
    c, m, s, i = fees if fees is not None else (z, z, z, z)
    ref = np.full(n, -1, np.int64) if ref is None else ref
    return AdyenRows(typ=np.full(n, typ, np.int8), pay=pay, no=no, ref=ref, t=t, gross=gross, rate=rate, net=net,
                     credit=np.full(n, credit), commission=c, markup=m, scheme=s, interchange=i, batch=z.copy())


def build(w: TenantWorld, p: Payments, r: Refunds, d: Disputes, end_day: int):
    """Adyen rows of batches closing on or before ``end_day`` (later ones are never delivered)."""
    pay, no, amt = _captures(p)
    t = p.cap_t[pay] + 900 * no
    g = convert(amt, p.ccy[pay], p.rate[pay])[0]
    fees = _fees(p, pay, g)
    net = g - sum(fees)
    # all captures of a (split) payment go into the batch of its first capture; a late settlement
    # one batch later, yet always before the book record would age into MISSING_IN_PSP
    close = close_day(p.cap_t[pay])
    late = (p.kind[pay] == nz.LATE_SETTLEMENT) & (close + 1 < add_business_days(p.day[pay], BOOK_AGEING_BD))
    parts = [(_rows(SETTLED, pay, no, t, amt, p.rate[pay], net, True, fees), close + late)]
    rsel = np.flatnonzero(p.psp[r.pay] == ADYEN)
    rp = r.pay[rsel]
    rt = same_day_later(r.t[rsel], 1 + rsel % 59)
    gr = convert(r.amt[rsel], p.ccy[rp], p.rate[rp])[0]
    comm = np.full(len(rsel), REFUND_COMMISSION)
    z = np.zeros(len(rsel), np.int64)
    parts.append((_rows(REFUNDED, rp, r.no[rsel], rt, r.amt[rsel], p.rate[rp], gr + comm, False, (comm, z, z, z),
                        ref=rsel), close_day(rt)))
    dp = d.pay[p.psp[d.pay] == ADYEN]
    dt = d.t[p.psp[d.pay] == ADYEN]
    gd = convert(p.amt[dp], p.ccy[dp], p.rate[dp])[0]
    comm = np.full(len(dp), CHARGEBACK_COMMISSION)
    z = np.zeros(len(dp), np.int64)
    parts.append((_rows(CHARGEBACK, dp, np.zeros(len(dp), np.int64), dt, p.amt[dp], p.rate[dp], gd + comm, False,
                        (comm, z, z, z)), close_day(dt)))
    rows = AdyenRows.concat([x for x, _ in parts])
    close = np.concatenate([c for _, c in parts])
    keep = close <= end_day
    rows, close = rows.reorder(np.flatnonzero(keep)), close[keep]
    return _batches(w, rows, close)


def _batches(w: TenantWorld, rows: AdyenRows, close: np.ndarray):
    days, inv = np.unique(close, return_inverse=True)
    nb = len(days)
    signed = np.where(rows.credit, rows.net, -rows.net)
    order = np.argsort(inv, kind="stable")
    starts = np.searchsorted(inv[order], np.arange(nb))
    settled_net = np.where(rows.typ == SETTLED, rows.net, 0)
    total = np.add.reduceat(signed[order], starts) if nb else np.zeros(0, np.int64)
    volume = np.add.reduceat(settled_net[order], starts) if nb else np.zeros(0, np.int64)
    fee = volume // 2000 + 100
    payout = total - fee
    t_close = days * DAY + CLOSE_TIME
    t_close = t_close - amsterdam_offset(t_close)
    z = np.zeros(nb, np.int64)
    b = np.arange(nb)
    fee_rows = _rows(FEE, b * 0 - 1, z, t_close, z, z, fee, False, None)
    pay_rows = _rows(PAYOUT, b * 0 - 1, z, t_close + 2, z, z, np.abs(payout), False, None)
    pay_rows.credit = payout < 0
    fee_rows.batch, pay_rows.batch = b.copy(), b.copy()
    rows.batch = inv.astype(np.int64)
    all_rows = AdyenRows.concat([rows, fee_rows, pay_rows])
    order = np.lexsort((all_rows.no, all_rows.pay, all_rows.t, all_rows.typ >= FEE, all_rows.typ == PAYOUT,
                        all_rows.batch))
    number = w.adyen_batch_base + (days - SERIAL_EPOCH_DAY)
    batches = AdyenBatches(close_day=days, number=number, amount=payout,
                           arrival_day=add_business_days(days, w.adyen_payout_lag_bd) if nb else days,
                           style=(number * 40_503 + w.salt) % 5 % 2)
    return all_rows.reorder(order), batches
