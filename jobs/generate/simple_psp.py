"""PayPal, Braintree and Checkout.com: what each records for the payments routed to it, and its payouts.

No FX (these PSPs get EUR/USD payments and settle them in that currency). Rows reuse ``StripeRows``
(category, payment, refund, creation instant, currency, signed gross/fee/net, payout index) with one more
category, ``PAYOUT_ROW``: a row in the PSP's own report that restates a payout (PayPal's T0400
withdrawal). Per PSP:

* PayPal: fee 2.9 % + 0.35 on payments, none on refunds; a chargeback (T1201) comes with a 20.00
  chargeback fee row (T0106). The day's rows of a currency are withdrawn to the bank at 23:30 UTC on
  the same day (T0400, when the day's net is positive; otherwise the balance stays at PayPal) and the
  bank books it one business day later. The STL of day C is delivered on C + 1.
* Braintree: gross settlement (fees billed monthly, not in the report), no disputes in the
  transaction search; each (day, currency) is one settlement batch, disbursed one business day later.
  The day's export is delivered on C + 1.
* Checkout.com: processing 0.9 %, scheme 0.3 %, interchange 0.5 % on payments, 0.10 on refunds, 15.00
  on chargebacks (all negative deductions in the report); each (day, currency) is paid out one
  business day later, when the settlement breakdown and the payouts report are delivered.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from jobs.generate import noise as nz
from jobs.generate.dates import DAY, add_business_days, same_day_later
from jobs.generate.events import Disputes, Payments, Refunds
from jobs.generate.stripe import CHARGE, DISPUTE, FEE, REFUND, StripePayouts, StripeRows, _rows
from jobs.generate.world import BRAINTREE, CHECKOUT, PAYPAL, TenantWorld

PAYOUT_ROW = 4
PAYPAL_CHARGEBACK_FEE = 2000
CHECKOUT_CHARGEBACK_FEE = 1500
CHECKOUT_REFUND_FEE = 10
WITHDRAWAL_TIME = 23 * 3600 + 1800


@dataclass
class Plan:
    """Rows and payouts of one PSP, with each row's file key (the delivery unit) and the delivery day."""
    rows: StripeRows
    payouts: StripePayouts
    file_key: np.ndarray       # rows with the same key share a file, in row order
    file_day: np.ndarray       # delivery day of each row's file
    arrival: np.ndarray        # per payout: the day the bank books it


def _fees(code: int, gross: np.ndarray) -> np.ndarray:
    if code == PAYPAL:
        return (gross * 29 + 500) // 1000 + 35
    if code == CHECKOUT:
        return (gross * 9 + 500) // 1000 + (gross * 3 + 500) // 1000 + (gross * 5 + 500) // 1000
    return np.zeros(len(gross), np.int64)


def checkout_fee_parts(gross: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(processing, scheme, interchange) of a Checkout.com payment: the parts of ``_fees``."""
    return (gross * 9 + 500) // 1000, (gross * 3 + 500) // 1000, (gross * 5 + 500) // 1000


def _transactions(code: int, p: Payments, r: Refunds, d: Disputes) -> StripeRows:
    pay = np.flatnonzero((p.psp == code) & (p.kind != nz.MISSING_PSP))
    gross = p.amt[pay]
    parts = [_rows(CHARGE, pay, np.full(len(pay), -1), p.cap_t[pay], p.ccy[pay], gross, _fees(code, gross), gross,
                   p.ccy[pay])]
    rsel = np.flatnonzero(p.psp[r.pay] == code)
    rp = r.pay[rsel]
    refund_fee = np.full(len(rsel), CHECKOUT_REFUND_FEE if code == CHECKOUT else 0)
    parts.append(_rows(REFUND, rp, rsel, same_day_later(r.t[rsel], 1 + rsel % 59), p.ccy[rp], -r.amt[rsel],
                       refund_fee, -r.amt[rsel], p.ccy[rp]))
    if code != BRAINTREE:
        sel = p.psp[d.pay] == code
        dp, dt = d.pay[sel], d.t[sel]
        fee = CHECKOUT_CHARGEBACK_FEE if code == CHECKOUT else 0
        parts.append(_rows(DISPUTE, dp, np.full(len(dp), -1), dt, p.ccy[dp], -p.amt[dp], np.full(len(dp), fee),
                           -p.amt[dp], p.ccy[dp]))
        if code == PAYPAL:                          # the chargeback fee is its own row (T0106)
            parts.append(_rows(FEE, dp, np.full(len(dp), -1), dt + 1, p.ccy[dp],
                               np.full(len(dp), -PAYPAL_CHARGEBACK_FEE), np.zeros(len(dp), np.int64),
                               np.zeros(len(dp), np.int64), p.ccy[dp]))
    return StripeRows.concat(parts)


def _group(keys: np.ndarray, values: np.ndarray):
    uniq, inv = np.unique(keys, return_inverse=True)
    order = np.argsort(inv, kind="stable")
    starts = np.searchsorted(inv[order], np.arange(len(uniq)))
    sums = np.add.reduceat(values[order], starts) if len(uniq) else np.zeros(0, np.int64)
    return uniq, inv, sums


def build(w: TenantWorld, p: Payments, r: Refunds, d: Disputes, end_day: int, code: int) -> Plan:
    rows = _transactions(code, p, r, d)
    day = rows.created // DAY
    delivered = day + 1 <= end_day if code != CHECKOUT else add_business_days(day, 1) <= end_day
    rows = rows.reorder(np.flatnonzero(delivered))
    day = rows.created // DAY
    uniq, inv, net = _group(day * 8 + rows.ccy, rows.net)
    pdays, pccy = uniq // 8, uniq % 8
    serial = (pdays - 18_262) * 8 + pccy
    if code == PAYPAL:                              # withdraw a positive day balance; else it stays
        has_payout = net > 0
        pay_day, arrival = pdays, add_business_days(pdays, 1) if len(pdays) else pdays
    else:
        has_payout = net != 0
        pay_day = add_business_days(pdays, 1) if len(pdays) else pdays
        arrival = pay_day
    index = np.cumsum(has_payout) - 1
    rows.payout = np.where(has_payout[inv], index[inv], -1).astype(np.int64)
    keep = np.flatnonzero(has_payout)
    payouts = StripePayouts(ccy=pccy[keep].astype(np.int8), day=pay_day[keep], amount=net[keep], serial=serial[keep],
                            style=np.zeros(len(keep), np.int64))
    payouts_arrival = arrival[keep]
    if code == PAYPAL and len(keep):
        t = pdays[keep] * DAY + WITHDRAWAL_TIME
        z = np.zeros(len(keep), np.int64)
        out = _rows(PAYOUT_ROW, np.full(len(keep), -1), np.arange(len(keep)), t, pccy[keep], -net[keep], z, -net[keep],
                    np.full(len(keep), -1))
        out.payout = np.arange(len(keep), dtype=np.int64)
        rows = StripeRows.concat([rows, out])
    if code == CHECKOUT:                            # a breakdown exists per payout only
        rows = rows.reorder(np.flatnonzero(rows.payout >= 0))
    day = rows.created // DAY
    if code == CHECKOUT:
        file_key = np.where(rows.payout >= 0, rows.payout, -1)
        file_day = np.where(rows.payout >= 0, payouts.day[np.maximum(rows.payout, 0)], add_business_days(day, 1))
    else:
        file_key, file_day = day, day + 1
    order = np.lexsort((rows.ref, rows.cat, rows.created, rows.cat == PAYOUT_ROW, file_key))
    rows = rows.reorder(order)
    return Plan(rows=rows, payouts=payouts, file_key=file_key[order], file_day=file_day[order],
                arrival=payouts_arrival)
