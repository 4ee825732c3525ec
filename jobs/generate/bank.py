"""Bank side: which payouts reach the merchant's accounts, when, for how much; plus unrelated credits.

Stripe payouts arrive on their effective date on the account of their currency, Adyen payouts on the
EUR account ``adyen_payout_lag_bd`` business days after the batch closed. Payout-level noise: a payout
with no bank entry (MISSING_IN_BANK) or with a different amount (PAYOUT_MISMATCH).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from jobs.generate import noise as nz
from jobs.generate.adyen import AdyenBatches
from jobs.generate.dates import add_business_days
from jobs.generate.events import Table
from jobs.generate.stripe import StripePayouts
from jobs.generate.world import ADYEN, EUR, STRIPE, TenantWorld

PAYOUT, UNRELATED = 0, 1
UNRELATED_PARTIES = ["J. DE VRIES", "BOL.COM B.V.", "BELASTINGDIENST", "M. JANSEN", "CITY OF AMSTERDAM",
                     "INSURANCE COMPANY TESTX", "A. MUELLER GMBH", "GOOGLE IRELAND LTD"]
UNRELATED_TEXT = ["INVOICE {n}", "REFUND DEPOSIT {n}", "CREDIT NOTE {n}", "SETTLEMENT CLAIM {n}"]


@dataclass
class Payouts(Table):
    """Stripe payouts and Adyen batch payouts side by side."""
    psp: np.ndarray
    index: np.ndarray        # into StripePayouts / AdyenBatches
    ccy: np.ndarray
    file_day: np.ndarray     # PSP file delivery = the expected arrival the PSP states (Stripe effective
                             # date, Adyen batch close / MerchantPayout date); MISSING_IN_BANK ages from it
    arrival: np.ndarray      # when the bank books it (Adyen: one business day after the close)
    amount: np.ndarray       # signed: >0 credit to the merchant, <0 a debit
    missing: np.ndarray      # no bank entry
    bank_amount: np.ndarray  # what the bank books (differs when mismatched)
    has_row: np.ndarray      # the PSP's report has a row restating the payout (MISSING_IN_BANK goes there)


@dataclass
class BankEntries(Table):
    day: np.ndarray
    acct: np.ndarray         # currency code of the account (EUR / USD)
    amount: np.ndarray       # signed
    source: np.ndarray       # PAYOUT / UNRELATED
    payout: np.ndarray       # index into Payouts (-1 for unrelated)
    party: np.ndarray        # unrelated: counterparty index
    number: np.ndarray       # unrelated: invoice-like number


def plan_payouts(w: TenantWorld, prm: nz.NoiseParams, sp: StripePayouts, ab: AdyenBatches, end_day: int,
                 others: tuple = (), stripe_has_row: bool = False) -> Payouts:
    """Stripe payouts, Adyen batches, then ``others``: (PSP code, StripePayouts, arrival days, has a payout
    row) of PayPal, Braintree, Checkout.com, in that order."""
    rng = w.rng(5)
    n_s, n_a = len(sp), len(ab)
    extra = [(np.full(len(po), code), np.arange(len(po)), po.ccy, po.day, arrival, po.amount, np.full(len(po), row))
             for code, po, arrival, row in others]
    n = n_s + n_a + sum(len(x[0]) for x in extra)
    amount = np.concatenate([sp.amount, ab.amount, *[x[5] for x in extra]])
    p = Payouts(
        psp=np.concatenate([np.full(n_s, STRIPE), np.full(n_a, ADYEN), *[x[0] for x in extra]]).astype(np.int8),
        index=np.concatenate([np.arange(n_s), np.arange(n_a), *[x[1] for x in extra]]),
        ccy=np.concatenate([sp.ccy, np.full(n_a, EUR), *[x[2] for x in extra]]).astype(np.int8),
        file_day=np.concatenate([sp.day, ab.close_day, *[x[3] for x in extra]]),
        arrival=np.concatenate([sp.day, ab.arrival_day, *[x[4] for x in extra]]),
        amount=amount,
        missing=np.zeros(n, bool),
        bank_amount=amount.copy(),
        has_row=np.concatenate([np.full(n_s, stripe_has_row), np.ones(n_a, bool), *[x[6] for x in extra]]),
    )
    # prefer payouts whose exception falls due inside the window (a missing credit is due 2 business
    # days after the expected arrival), so a run on end_date sees it
    eligible = np.flatnonzero((add_business_days(p.file_day, 2) <= end_day) & (p.arrival <= end_day)
                              & (p.amount != 0))
    if len(eligible) < 3:
        eligible = np.flatnonzero((p.arrival <= end_day) & (p.amount != 0))
    n = len(eligible)
    k_missing = int(rng.binomial(n, prm.payout_missing_rate)) if n else 0
    k_mismatch = int(rng.binomial(n, prm.payout_mismatch_rate)) if n else 0
    if n >= 3:
        k_missing = max(k_missing, prm.payout_noise_minimum)
        k_mismatch = max(k_mismatch, prm.payout_noise_minimum)
    k_missing = min(k_missing, n)
    k_mismatch = min(k_mismatch, n - k_missing)
    chosen = rng.permutation(eligible)
    p.missing[chosen[:k_missing]] = True
    mism = chosen[k_missing: k_missing + k_mismatch]
    delta = 100 + rng.integers(0, 2000, len(mism))
    amt = p.amount[mism]
    p.bank_amount[mism] = np.where(amt > 2 * delta, amt - delta, np.where(amt > 0, amt + delta, amt - delta))
    return p


def plan_entries(w: TenantWorld, prm: nz.NoiseParams, payouts: Payouts, days: list[int]) -> BankEntries:
    start, end = days[0], days[-1]
    booked = np.flatnonzero(~payouts.missing & (payouts.amount != 0) & (payouts.arrival >= start)
                            & (payouts.arrival <= end))
    rng = w.rng(6)
    n_unrel = rng.poisson(prm.unrelated_bank_per_day, len(days))
    if prm.unrelated_bank_per_day > 0 and n_unrel.sum() == 0:
        n_unrel[len(days) // 2] = 1
    uday = np.repeat(np.array(days), n_unrel)
    nu = len(uday)
    entries = BankEntries(
        day=np.concatenate([payouts.arrival[booked], uday]),
        acct=np.concatenate([payouts.ccy[booked], np.where(rng.random(nu) < 0.8, EUR, 1)]).astype(np.int8),
        amount=np.concatenate([payouts.bank_amount[booked], 1000 + rng.integers(0, 500_000, nu)]),
        source=np.concatenate([np.full(len(booked), PAYOUT), np.full(nu, UNRELATED)]).astype(np.int8),
        payout=np.concatenate([booked, np.full(nu, -1)]),
        party=np.concatenate([np.full(len(booked), -1), rng.integers(0, len(UNRELATED_PARTIES), nu)]),
        number=np.concatenate([np.full(len(booked), -1), rng.integers(10_000, 99_999, nu)]),
    )
    # document order: by day, account (EUR statement first), payouts before other entries, then PSP/index
    psp = np.full(len(entries), 9, np.int64)
    linked = entries.payout >= 0
    psp[linked] = payouts.psp[entries.payout[linked]]
    order = np.lexsort((entries.number, entries.payout, psp, entries.source, entries.acct, entries.day))
    return entries.reorder(order)
