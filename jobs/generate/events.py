"""Business events of one tenant: payments (book view and PSP view), refunds, chargebacks.

One ``Payments`` row is one customer payment: its true amount/currency (what the PSP sees), the
merchant's book view of it (after noise), and its noise kind. Arrays only; every draw comes from a
per-(tenant, day, stream) generator, so a day's events do not depend on the other days.
"""
from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from jobs.generate import noise as nz
from jobs.generate.dates import DAY, same_day_later, to_date
from jobs.generate.ids import serials
from jobs.generate.world import (ADYEN, EUR, EXPS, GBP, JPY, OFFSET_WEIGHTS, PSP_SHARE, RATE_SCALE, STRIPE, USD,
                                 TenantWorld)

AMOUNT_TIME_BASE = 500_000          # reference-less payments get unique amounts >= 5000.00
NORMAL_MAX = 489_999                # every other payment stays below 4900.00
CLEAN_FOR_FOLLOW_UPS = (nz.EXACT, nz.EMPTY_REF, nz.MANGLED_REF, nz.PADDED_REF, nz.LATE_SETTLEMENT)


def gather(arr: np.ndarray, idx: np.ndarray, mask: np.ndarray | None = None, fill=0) -> np.ndarray:
    """arr[idx] where ``mask`` (default: idx >= 0), ``fill`` elsewhere; safe on empty ``arr``."""
    idx = np.asarray(idx)
    mask = idx >= 0 if mask is None else np.asarray(mask, dtype=bool)
    out = np.full(len(idx), fill, dtype=arr.dtype)
    out[mask] = arr[idx[mask]]
    return out


@dataclass
class Table:
    """Columns of equal length; helpers copy one column at a time to keep peak memory low."""

    def take(self, idx: np.ndarray):
        return type(self)(**{f.name: getattr(self, f.name)[idx] for f in fields(self)})

    def reorder(self, idx: np.ndarray):
        """Replace every column by column[idx], in place."""
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name)[idx])
        return self

    def rows(self, start: int, stop: int):
        """A view of rows start..stop (no copy)."""
        return type(self)(**{f.name: getattr(self, f.name)[start:stop] for f in fields(self)})

    @classmethod
    def concat(cls, parts: list):
        """Concatenate, releasing each part's column as soon as it is copied."""
        out = {}
        for f in fields(cls):
            out[f.name] = np.concatenate([getattr(p, f.name) for p in parts])
            for p in parts:
                setattr(p, f.name, None)
        parts.clear()
        return cls(**out)

    def __len__(self) -> int:
        return len(getattr(self, fields(self)[0].name))


@dataclass
class Payments(Table):
    day: np.ndarray          # UTC creation day (= book delivery day)
    serial: np.ndarray
    code: np.ndarray         # yymmdd * 10^8 + index: order/payment number
    t: np.ndarray            # book created_at instant
    cap_t: np.ndarray        # PSP capture instant (first capture)
    psp: np.ndarray
    ccy: np.ndarray          # true presentment currency
    amt: np.ndarray          # true presentment amount (minor)
    rate: np.ndarray         # presentment -> EUR, micro units (1e6 when not converted)
    fx: np.ndarray
    kind: np.ndarray
    book_ccy: np.ndarray
    book_amt: np.ndarray
    order_mode: np.ndarray   # 0 as is, 1 lower case, 2 surrounding spaces, 3 '#', 4 'ORDER ', 5 unrelated id
    ref_mode: np.ndarray     # 0 as is, 1 empty, 2 surrounding spaces
    tz: np.ndarray
    method: np.ndarray       # 0 visa, 1 mc, 2 amex, 3 ideal
    ncap: np.ndarray         # number of Adyen captures (split capture: 2-3)
    person: np.ndarray       # fake customer (for the e-mail)


@dataclass
class Refunds(Table):
    pay: np.ndarray          # index into Payments
    no: np.ndarray           # 0..2 within the payment
    t: np.ndarray
    amt: np.ndarray          # presentment minor, positive
    partial: np.ndarray


@dataclass
class Disputes(Table):
    pay: np.ndarray
    t: np.ndarray


def convert(amount: np.ndarray, ccy: np.ndarray, rate: np.ndarray,
            target_exp: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """Presentment minor -> target minor, rounded half up; also returns where the exact value was a tie."""
    num = np.asarray(amount, dtype=np.int64) * rate * 10 ** np.maximum(target_exp - EXPS[ccy], 0)
    den = RATE_SCALE * 10 ** np.maximum(EXPS[ccy] - target_exp, 0)
    return (2 * num + den) // (2 * den), (2 * num) % (2 * den) == den


def _amounts(rng: np.random.Generator, n: int) -> np.ndarray:
    tier = rng.choice(3, size=n, p=[0.7, 0.25, 0.05])
    lo = np.array([1, 100, 1000])[tier]
    hi = np.array([100, 1000, 4900])[tier]
    major = lo + (rng.integers(0, 1 << 30, n) % (hi - lo))
    cents = rng.integers(0, 100, n)
    cents = np.where(rng.random(n) < 0.35, np.where(rng.random(n) < 0.5, 99, 0), cents)
    return major * 100 + cents


def _kinds(rng, n_book: int, prm: nz.NoiseParams) -> np.ndarray:
    rates = {k: v for k, v in prm.kind_rates.items() if k != nz.MISSING_BOOK}
    codes = np.array([*rates, nz.EXACT], dtype=np.int64)      # u in [cum[k-1], cum[k]) -> kind k; beyond: exact
    cum = np.cumsum(list(rates.values()) or [0.0])
    kind = codes[np.searchsorted(cum, rng.random(n_book), side="right")] if rates else np.zeros(n_book, np.int64)
    extra = rng.binomial(n_book, prm.kind_rates.get(nz.MISSING_BOOK, 0.0)) if n_book else 0
    return rng.permutation(np.concatenate([kind, np.full(extra, nz.MISSING_BOOK)]))


def payments_for_day(w: TenantWorld, prm: nz.NoiseParams, day: int, n_book: int, psps: tuple[int, ...],
                     amount_time_start: int) -> Payments:
    rng = w.rng(1, day)
    kind = _kinds(rng, n_book, prm)
    m = len(kind)
    t = day * DAY + np.sort(rng.integers(0, DAY, m))
    if set(psps) <= {STRIPE, ADYEN}:
        psp = np.where(rng.random(m) < w.stripe_share, STRIPE, ADYEN) if len(psps) == 2 else np.full(m, psps[0])
    else:                                            # PayPal, Braintree, Checkout.com: no FX, EUR or USD
        share = np.array([PSP_SHARE[x] for x in psps])
        psp = np.asarray(psps)[np.minimum(np.searchsorted(np.cumsum(share / share.sum()), rng.random(m)),
                                          len(psps) - 1)]
    adyen_only = (kind == nz.SPLIT_CAPTURE) | (kind == nz.LATE_SETTLEMENT)
    if ADYEN in psps:
        psp[adyen_only] = ADYEN
    else:
        kind[adyen_only] = nz.EXACT
    fx = rng.random(m) < prm.fx_share
    fx |= kind == nz.FX_ROUNDING
    fx &= ~np.isin(kind, (nz.AMOUNT_TIME, nz.CURRENCY_MISMATCH, nz.SPLIT_CAPTURE))
    fx &= np.isin(psp, (STRIPE, ADYEN))
    u = rng.random(m)
    stripe_ccy = np.where(fx, np.where(u < 0.6, GBP, JPY), np.where(u < 0.65, EUR, USD))
    adyen_ccy = np.where(fx, np.where(u < 0.6, USD, GBP), EUR)
    ccy = np.where(psp == STRIPE, stripe_ccy, np.where(psp == ADYEN, adyen_ccy, np.where(u < 0.65, EUR, USD)))
    amt = _amounts(rng, m)
    amt = np.where(ccy == JPY, (amt // 100) * 150 + 50, amt)
    is_at = kind == nz.AMOUNT_TIME
    amt[is_at] = AMOUNT_TIME_BASE + 97 * (amount_time_start + np.arange(is_at.sum())) + rng.integers(0, 90, is_at.sum())
    rate = np.where(fx, w.rates_to_eur(ccy, np.full(m, day)), RATE_SCALE).astype(np.int32)
    for _ in range(8):                       # no rounding ties, so any round-to-nearest agrees
        tie = convert(amt, ccy, rate)[1] & fx
        if not tie.any():
            break
        amt[tie] += 1
    code = (_yymmdd(day) * 10**8) + np.arange(m)
    book_amt, book_ccy = amt.copy(), ccy.copy()
    rnd = rng.integers(0, 2, m) * 2 - 1
    fxr = kind == nz.FX_ROUNDING
    book_amt[fxr] = np.maximum(amt[fxr] + rnd[fxr], 1)
    mism = kind == nz.AMOUNT_MISMATCH
    delta = np.maximum(np.where(ccy == JPY, 500, 100), amt // 10)
    book_amt[mism] = np.where(amt[mism] + delta[mism] > NORMAL_MAX, amt[mism] - delta[mism], amt[mism] + delta[mism])
    cm = kind == nz.CURRENCY_MISMATCH
    book_ccy[cm] = np.where(ccy[cm] == EUR, USD, EUR)
    order_mode = np.zeros(m, dtype=np.int8)
    order_mode[kind == nz.MANGLED_REF] = rng.integers(1, 5, int((kind == nz.MANGLED_REF).sum()))
    order_mode[is_at] = 5
    ref_mode = np.zeros(m, dtype=np.int8)
    ref_mode[np.isin(kind, (nz.EMPTY_REF, nz.MANGLED_REF, nz.AMOUNT_TIME))] = 1
    ref_mode[kind == nz.PADDED_REF] = 2
    method = np.where(rng.random(m) < 0.5, 0, np.where(rng.random(m) < 0.75, 1, 2))
    method = np.where((ccy == EUR) & (psp == ADYEN) & (rng.random(m) < 0.25), 3, method)
    split = kind == nz.SPLIT_CAPTURE                 # card payments of at least 25.00, captured in 2-3 parts
    ncap = np.where(split, rng.integers(2, 4, m), 1)
    method = np.where(split, method % 2, method)
    amt[split] = np.maximum(amt[split], 2500)
    book_amt[split] = amt[split]
    return Payments(
        day=np.full(m, day, dtype=np.int32), serial=serials(day, m), code=code, t=t,
        cap_t=same_day_later(t, rng.integers(2, 180, m)), psp=psp.astype(np.int8), ccy=ccy.astype(np.int8),
        amt=amt, rate=rate,
        fx=fx, kind=kind.astype(np.int8), book_ccy=book_ccy.astype(np.int8), book_amt=book_amt,
        order_mode=order_mode, ref_mode=ref_mode,
        tz=rng.choice(len(OFFSET_WEIGHTS), m, p=OFFSET_WEIGHTS).astype(np.int8),
        method=method.astype(np.int8), ncap=ncap.astype(np.int8), person=rng.integers(0, 1 << 20, m, dtype=np.int32),
    )


def _yymmdd(day: int) -> int:
    d = to_date(day)
    return (d.year % 100) * 10_000 + d.month * 100 + d.day


def follow_ups(w: TenantWorld, prm: nz.NoiseParams, p: Payments, day: int) -> tuple[Refunds, Disputes]:
    """Refunds and chargebacks of the payments ``p`` created on ``day``."""
    rng = w.rng(2, day)
    idx = np.arange(len(p))
    clean = np.isin(p.kind[idx], CLEAN_FOR_FOLLOW_UPS)
    u = rng.random(len(idx))
    full = idx[clean & (u < prm.refund_rate)]
    partial = idx[clean & (u >= prm.refund_rate) & (u < prm.refund_rate + prm.partial_refund_rate)]
    disputed = idx[clean & (u >= 0.5) & (u < 0.5 + prm.chargeback_rate)]
    refunds = [Refunds(pay=full, no=np.zeros(len(full), np.int64), t=p.t[full] + rng.integers(3600, 3 * DAY, len(full)),
                       amt=p.amt[full], partial=np.zeros(len(full), bool))]
    count = rng.integers(2, 4, len(partial))
    gap = rng.integers(3600, 30 * 3600, len(partial))
    for k in range(3):
        sel = count > k
        pay = partial[sel]
        share = rng.integers(10, 31, len(pay))
        amt = np.maximum(p.amt[pay] * share // 100, 1)
        for _ in range(8):
            tie = convert(amt, p.ccy[pay], p.rate[pay])[1] & p.fx[pay]
            if not tie.any():
                break
            amt[tie] -= 1
        refunds.append(Refunds(pay=pay, no=np.full(len(pay), k), t=p.t[pay] + (k + 1) * gap[sel], amt=amt,
                               partial=np.ones(len(pay), bool)))
    disputes = Disputes(pay=disputed, t=p.t[disputed] + rng.integers(2 * DAY, 6 * DAY, len(disputed)))
    return Refunds.concat(refunds), disputes


def simulate(w: TenantWorld, prm: nz.NoiseParams, days: list[int], per_day: int, psps: tuple[int, ...]):
    """All payments, refunds and chargebacks created on the window's days."""
    pays, refs, disps = [], [], []
    offset, at_count = 0, 0
    for day in days:
        p = payments_for_day(w, prm, day, per_day, psps, at_count)
        at_count += int((p.kind == nz.AMOUNT_TIME).sum())
        r, d = follow_ups(w, prm, p, day)
        r.pay += offset
        d.pay += offset
        pays.append(p)
        refs.append(r)
        disps.append(d)
        offset += len(p)
    payments = Payments.concat(pays)
    refunds = Refunds.concat(refs)
    order = np.lexsort((refunds.no, refunds.pay, refunds.t))
    return payments, refunds.reorder(order), Disputes.concat(disps)
