"""``generate``: simulate each tenant's world, write the delivered files day by day, then the truth.

Only files delivered on the window's days (end_date - days + 1 .. end_date) are written; events whose
files would arrive later are simulated but not delivered, and the truth is relative to what was.
"""
from __future__ import annotations

import re
import shutil
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import numpy as np

from jobs.generate import (adyen, adyen_file, bai2_file, bank, book, braintree_file, camt_file, checkout_file,
                           mt940_file, paypal_file, simple_psp, stripe, stripe_file, stripe_variants, truth, xlsx_file)
from jobs.generate import noise as nz
from jobs.generate.dates import DAY, day_of, to_date
from jobs.generate.events import NORMAL_MAX, Payments, simulate
from jobs.generate.noise import params
from jobs.generate.world import ADYEN, BRAINTREE, CHECKOUT, EUR, JPY, PAYPAL, PSPS, STRIPE, USD, build_world


@dataclass
class GenerateReport:
    out: Path
    tenants: list[str]
    days: list[str]
    files: Counter = field(default_factory=Counter)      # per file type
    records: Counter = field(default_factory=Counter)    # data records per file type, truth rows
    elapsed_seconds: float = 0.0


def _ordinals(groups: np.ndarray) -> np.ndarray:
    """1-based position of each row within its (sorted, contiguous) group."""
    if len(groups) == 0:
        return np.zeros(0, np.int64)
    starts = np.r_[0, np.flatnonzero(np.diff(groups)) + 1]
    first = np.repeat(starts, np.diff(np.r_[starts, len(groups)]))
    return np.arange(len(groups)) - first + 1


class Files:
    def __init__(self, root: Path):
        self.root, self.names, self.days = root, [], []

    def add(self, day: int, name: str) -> tuple[int, Path]:
        folder = self.root / "landing" / to_date(day).isoformat()
        folder.mkdir(parents=True, exist_ok=True)
        self.names.append(name)
        self.days.append(day)
        return len(self.names) - 1, folder / name


def _slices(keys: np.ndarray):
    """(key, start, stop) of each run of equal keys in a sorted array."""
    if len(keys) == 0:
        return
    starts = np.r_[0, np.flatnonzero(np.diff(keys)) + 1]
    stops = np.r_[starts[1:], len(keys)]
    for a, b in zip(starts, stops):
        yield int(keys[a]), int(a), int(b)


def _prepare(root: Path) -> None:
    """Start from an empty tenant folder; replace only a previous generator output (it has a truth)."""
    landing, truth_dir = root / "landing", root / "truth"
    if (landing.exists() and any(landing.iterdir())) or truth_dir.exists():
        if not (truth_dir / "README.md").exists():
            raise ValueError(f"{root} holds files this generator did not write; choose an empty --out")
        shutil.rmtree(landing, ignore_errors=True)
        shutil.rmtree(truth_dir)


@dataclass(frozen=True)
class Formats:
    """Which delivery format each party uses (the defaults are the original generator's)."""
    stripe: str = "itemized"          # itemized | balance_history | events
    paypal: str = "stl"               # stl | trr
    bank: str = "camt053"             # camt053 | mt940 | bai2
    xlsx: tuple[str, ...] = ()        # tabular kinds written as XLSX: stripe, adyen, braintree, checkout, book

    def validate(self) -> None:
        choices = {"stripe": STRIPE_FORMATS, "paypal": PAYPAL_FORMATS, "bank": BANK_FORMATS}
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise ValueError(f"unknown {name} format {getattr(self, name)!r}; choose from {allowed}")
        bad = set(self.xlsx) - set(XLSX_KINDS)
        if bad:
            raise ValueError(f"cannot write {sorted(bad)} as XLSX; choose from {XLSX_KINDS}")


STRIPE_FORMATS = ("itemized", "balance_history", "events")
PAYPAL_FORMATS = ("stl", "trr")
BANK_FORMATS = ("camt053", "mt940", "bai2")
XLSX_KINDS = ("stripe", "adyen", "braintree", "checkout", "book")
BANK_WRITERS = {"camt053": camt_file, "mt940": mt940_file, "bai2": bai2_file}


def _as_xlsx(path: Path, kind: str, fmt: Formats) -> Path:
    """Where to write a CSV: ``path`` itself, or a temporary file when it is delivered as a workbook."""
    return path.with_suffix(".tmp.csv") if kind in fmt.xlsx else path


def _finish_xlsx(tmp: Path, final: Path, kind: str, fmt: Formats) -> None:
    if kind in fmt.xlsx:
        xlsx_file.from_csv(tmp, final)
        tmp.unlink()


def _name(name: str, kind: str, fmt: Formats) -> str:
    return name.rsplit(".", 1)[0] + ".xlsx" if kind in fmt.xlsx and name.endswith(".csv") else name


def _stripe_variant_rows(srows, spayouts, fmt: Formats):
    """Balance history / events: a payout row per payout; events carry no Stripe fee rows; in file order."""
    n = len(spayouts)
    t = spayouts.day * DAY + (0 if fmt.stripe == "balance_history" else 6 * 3600)
    z = np.zeros(n, np.int64)
    rows = stripe.StripeRows(cat=np.full(n, simple_psp.PAYOUT_ROW, np.int8), pay=np.full(n, -1), ref=z.copy(),
                             created=t, ccy=spayouts.ccy.astype(np.int8), gross=-spayouts.amount, fee=z.copy(),
                             net=-spayouts.amount, cf_amt=z.copy(), cf_ccy=np.full(n, -1, np.int8), fee_day=z - 1,
                             payout=np.arange(n, dtype=np.int64), dup=np.zeros(n, bool), sort_t=t.copy())
    srows = stripe.StripeRows.concat([srows, rows])
    if fmt.stripe == "events":
        srows = srows.reorder(np.flatnonzero(srows.cat != stripe.FEE))
        order = np.lexsort((srows.dup, srows.cat, srows.sort_t, srows.sort_t // DAY))
    else:
        order = np.lexsort((srows.dup, srows.cat, srows.sort_t, srows.cat == simple_psp.PAYOUT_ROW, srows.payout))
    return srows.reorder(order)


def _refunded_before(r, srows) -> np.ndarray:
    """Per Stripe refund row: the customer-currency amount of its payment refunded by earlier refunds."""
    out = np.zeros(len(srows), np.int64)
    is_ref = np.flatnonzero(srows.cat == stripe.REFUND)
    if len(is_ref) == 0:
        return out
    ref = srows.ref[is_ref]
    order = np.lexsort((r.no[ref], r.t[ref], r.pay[ref]))
    pay, amt = r.pay[ref][order], r.amt[ref][order]
    cum = np.cumsum(amt) - amt
    starts = np.r_[0, np.flatnonzero(np.diff(pay)) + 1]
    base = np.repeat(cum[starts], np.diff(np.r_[starts, len(pay)]))
    before = np.empty(len(ref), np.int64)
    before[order] = cum - base
    out[is_ref] = before
    return out


def _orders_in_text(p: Payments, fmt: Formats) -> None:
    """The ``ref_in_text`` kinds (noise.py), in place. The PSP report must have a free-text column for the
    order: Stripe's itemized payout reconciliation (description) and PayPal's reports (Custom Field,
    Transaction Subject); on the other PSPs and Stripe formats the kinds become their plain variants
    (empty_ref, amount_mismatch, currency_mismatch). The book row carries no PSP id, so the pair can
    meet only on the order reference; the mismatch kinds change the book's amount or currency as their
    plain kinds do (events.py)."""
    text_psps = [PAYPAL] + ([STRIPE] if fmt.stripe == "itemized" else [])
    drawn = p.kind.copy()
    elsewhere = ~np.isin(p.psp, text_psps)
    for kind, plain in ((nz.REF_IN_TEXT, nz.EMPTY_REF), (nz.TEXT_AMOUNT_MISMATCH, nz.AMOUNT_MISMATCH),
                        (nz.TEXT_CURRENCY_MISMATCH, nz.CURRENCY_MISMATCH)):
        p.kind[(drawn == kind) & elsewhere] = plain
    p.ref_mode[np.isin(p.kind, nz.ORDER_IN_TEXT) | ((drawn == nz.REF_IN_TEXT) & elsewhere)] = 1
    amount = drawn == nz.TEXT_AMOUNT_MISMATCH
    delta = np.maximum(np.where(p.ccy == JPY, 500, 100), p.amt // 10)
    p.book_amt[amount] = np.where(p.amt + delta > NORMAL_MAX, p.amt - delta, p.amt + delta)[amount]
    currency = drawn == nz.TEXT_CURRENCY_MISMATCH
    p.book_ccy[currency] = np.where(p.ccy == EUR, USD, EUR)[currency]


def generate_tenant(out: Path, tenant: str, *, seed: int, end_day: int, days: int, payments_per_day: int,
                    noise: str, psps: tuple[int, ...], report: GenerateReport, fmt: Formats = Formats()) -> None:
    w, prm = build_world(tenant, seed), params(noise)
    window = list(range(end_day - days + 1, end_day + 1))
    p, r, d = simulate(w, prm, window, payments_per_day, psps)
    _orders_in_text(p, fmt)
    srows, spayouts = stripe.build(w, prm, p, r, d, end_day)
    if fmt.stripe != "itemized":
        srows = _stripe_variant_rows(srows, spayouts, fmt)
    arows, abatches = adyen.build(w, p, r, d, end_day)
    plans = {code: simple_psp.build(w, p, r, d, end_day, code) for code in (PAYPAL, BRAINTREE, CHECKOUT)
             if code in psps}
    others = tuple((code, plan.payouts, plan.arrival, code != BRAINTREE) for code, plan in plans.items())
    payouts = bank.plan_payouts(w, prm, spayouts, abatches, end_day, others, stripe_has_row=fmt.stripe != "itemized")
    entries = bank.plan_entries(w, prm, payouts, window)
    brows = book.plan(w, prm, p, r, window)
    root = out / tenant
    files = Files(root)
    file_of = {"book": np.zeros(len(brows), np.int64), "stripe": np.zeros(len(srows), np.int64),
               "adyen": np.zeros(len(arows), np.int64), "bank": np.zeros(len(entries), np.int64)}
    psp_files: list[tuple[int, int]] = []            # (file id, delivery day) of PSP files
    for day, a, b in _slices(brows.day):
        jsonl = book.is_jsonl_day(w, day)
        kind = "book_jsonl" if jsonl else "book"
        fid, path = files.add(day, _name(book.file_name(w, day), kind, fmt))
        target = _as_xlsx(path, kind, fmt)
        book.write(target, w, p, r, brows.rows(a, b), jsonl, prm.book_note_rate)
        _finish_xlsx(target, path, kind, fmt)
        file_of["book"][a:b] = fid
        report.files["book_jsonl" if jsonl else ("book_xlsx" if "book" in fmt.xlsx else "book_csv")] += 1
        report.records["book_rows"] += b - a
    _write_stripe(w, p, r, srows, spayouts, files, file_of, psp_files, fmt, report)
    if fmt.stripe == "events":                       # webhook charge events carry no payout link
        srows.payout = np.where(srows.cat == simple_psp.PAYOUT_ROW, srows.payout, -1)
    for i, a, b in _slices(arows.batch):
        fid, path = files.add(int(abatches.close_day[i]), _name(adyen_file.file_name(abatches, i), "adyen", fmt))
        target = _as_xlsx(path, "adyen", fmt)
        adyen_file.write(target, w, p, r, arows.rows(a, b), abatches, i)
        _finish_xlsx(target, path, "adyen", fmt)
        file_of["adyen"][a:b] = fid
        psp_files.append((fid, int(abatches.close_day[i])))
        report.files["adyen_settlement_detail" + ("_xlsx" if "adyen" in fmt.xlsx else "")] += 1
        report.records["adyen_rows"] += b - a
    tables, extra_files = _write_others(w, p, r, plans, payouts, files, psp_files, fmt, report)
    opening = {acct: a.opening_minor for acct, a in w.accounts.items()}
    writer = BANK_WRITERS[fmt.bank]
    other_payouts = {code: plan.payouts for code, plan in plans.items()}
    for day in window:
        rows = np.flatnonzero(entries.day == day)
        fid, path = files.add(day, writer.file_name(day))
        if fmt.bank == "camt053":
            opening = writer.write(path, w, day, entries, rows, opening, payouts, spayouts, abatches,
                                   other_payouts or None)
        elif fmt.bank == "bai2":
            opening = writer.write(path, w, day, entries, rows, opening, payouts, spayouts, abatches, other_payouts,
                                   packed_wrapped=prm.bai2_packed_wrapped)
        elif fmt.bank == "mt940":
            opening = writer.write(path, w, day, entries, rows, opening, payouts, spayouts, abatches, other_payouts,
                                   wrapped_86=prm.mt940_wrapped_86)
        else:
            opening = writer.write(path, w, day, entries, rows, opening, payouts, spayouts, abatches, other_payouts)
        file_of["bank"][rows] = fid
        report.files[fmt.bank] += 1
        report.records["bank_entries"] += len(rows)
    _redeliver(w, prm, files, psp_files, end_day, report)
    rec = _records(files, file_of, brows, srows, arows, entries, extra_files)
    del file_of
    psp_tables = tuple(make(rec) for make in tables)
    collected = truth.collect(p, r, brows, srows, arows, payouts, entries, rec, end_day, psp_tables)
    del p, r, d, brows, srows, arows                 # free the event tables before sorting the truth
    t = truth.finish(collected)
    del collected
    truth.write(root / "truth", tenant, t, rec, files.names)
    if fmt != Formats() or set(psps) - {STRIPE, ADYEN}:
        with (root / "truth" / "README.md").open("a") as fh:
            fh.write(truth.FORMATS_NOTE)
    report.records["truth_group_rows"] += len(t.rec)
    report.records["truth_exception_rows"] += len(t.exc_rec)


def _write_stripe(w, p, r, srows, spayouts, files, file_of, psp_files, fmt: Formats, report) -> None:
    xlsx = "_xlsx" if "stripe" in fmt.xlsx and fmt.stripe != "events" else ""
    if fmt.stripe == "events":
        before = _refunded_before(r, srows)
        for day, a, b in _slices(srows.sort_t // DAY):
            fid, path = files.add(day, stripe_variants.events_name(day))
            stripe_variants.write_events(path, w, p, r, srows.rows(a, b), spayouts, before[a:b])
            file_of["stripe"][a:b] = fid
            psp_files.append((fid, day))
            report.files["stripe_events"] += 1
            report.records["stripe_rows"] += b - a
        return
    for i, a, b in _slices(srows.payout):
        if fmt.stripe == "balance_history":
            name, kind_name = stripe_variants.history_name(w, spayouts, i), "stripe_balance_history"
        else:
            name, kind_name = stripe_file.file_name(w, spayouts, i), "stripe_payout_reconciliation"
        fid, path = files.add(int(spayouts.day[i]), _name(name, "stripe", fmt))
        target = _as_xlsx(path, "stripe", fmt)
        if fmt.stripe == "balance_history":
            stripe_variants.write_history(target, w, p, r, srows.rows(a, b), spayouts, i)
        else:
            stripe_file.write(target, w, p, r, srows.rows(a, b), spayouts, i)
        _finish_xlsx(target, path, "stripe", fmt)
        file_of["stripe"][a:b] = fid
        psp_files.append((fid, int(spayouts.day[i])))
        report.files[kind_name + xlsx] += 1
        report.records["stripe_rows"] += b - a


def _write_others(w, p, r, plans: dict, payouts, files, psp_files, fmt: Formats, report):
    """PayPal, Braintree, Checkout.com files; returns (PspTable builders, extra record tables)."""
    tables, extra = [], []
    base = {code: int(np.flatnonzero(payouts.psp == code)[0]) if (payouts.psp == code).any() else 0
            for code in (PAYPAL, BRAINTREE, CHECKOUT)}
    for code, plan in plans.items():
        rows = plan.rows
        file_of = np.zeros(len(rows), np.int64)
        if code == PAYPAL:
            trr = fmt.paypal == "trr"
            balance: dict[int, int] = {}
            for day, a, b in _slices(plan.file_key):
                fid, path = files.add(day + 1, paypal_file.file_name(day, trr))
                balance = paypal_file.write(path, w, day, p, r, rows.rows(a, b), plan.payouts, balance, trr)
                file_of[a:b] = fid
                psp_files.append((fid, day + 1))
                report.files["paypal_" + fmt.paypal] += 1
        elif code == BRAINTREE:
            for day, a, b in _slices(plan.file_key):
                fid, path = files.add(day + 1, _name(braintree_file.file_name(day), "braintree", fmt))
                target = _as_xlsx(path, "braintree", fmt)
                braintree_file.write(target, w, p, r, rows.rows(a, b), plan.payouts)
                _finish_xlsx(target, path, "braintree", fmt)
                file_of[a:b] = fid
                psp_files.append((fid, day + 1))
                report.files["braintree" + ("_xlsx" if "braintree" in fmt.xlsx else "")] += 1
        else:
            for i, a, b in _slices(plan.file_key):
                day = int(plan.payouts.day[i])
                fid, path = files.add(day, _name(checkout_file.breakdown_name(w, plan.payouts, i), "checkout", fmt))
                target = _as_xlsx(path, "checkout", fmt)
                checkout_file.write_breakdown(target, w, p, rows.rows(a, b), plan.payouts, i)
                _finish_xlsx(target, path, "checkout", fmt)
                file_of[a:b] = fid
                psp_files.append((fid, day))
                report.files["checkout_breakdown" + ("_xlsx" if "checkout" in fmt.xlsx else "")] += 1
        report.records[f"{PSPS[code]}_rows"] += len(rows)
        extra.append((PSPS[code], file_of))
        tables.append(_row_table(PSPS[code], rows, base[code], code == CHECKOUT))
        if code == CHECKOUT:
            po_file = np.zeros(len(plan.payouts), np.int64)
            for day, a, b in _slices(plan.payouts.day):
                fid, path = files.add(day, _name(checkout_file.payouts_name(w, day), "checkout", fmt))
                target = _as_xlsx(path, "checkout", fmt)
                checkout_file.write_payouts(target, w, rows, plan.payouts, np.arange(a, b))
                _finish_xlsx(target, path, "checkout", fmt)
                po_file[a:b] = fid
                psp_files.append((fid, day))
                report.files["checkout_payouts" + ("_xlsx" if "checkout" in fmt.xlsx else "")] += 1
            extra.append(("checkout_payouts", po_file))
            tables.append(_payout_table("checkout_payouts", len(plan.payouts), base[code]))
    return tables, extra


def _row_table(name: str, rows, base: int, level2_refunds: bool):
    def make(rec):
        tx = (rows.cat == stripe.CHARGE) | (rows.cat == stripe.REFUND)
        is_ref = rows.cat == stripe.REFUND
        return truth.PspTable(recs=rec.extra[name] + np.arange(len(rows)), tx=tx, is_ref=is_ref,
                              ent=np.where(is_ref, rows.ref, np.where(tx, rows.pay, -1)),
                              payout=np.where(rows.payout >= 0, base + rows.payout, -1),
                              payout_row=rows.cat == simple_psp.PAYOUT_ROW, level2_refunds=level2_refunds)
    return make


def _payout_table(name: str, n: int, base: int):
    def make(rec):
        z = np.zeros(n, bool)
        return truth.PspTable(recs=rec.extra[name] + np.arange(n), tx=z, is_ref=z, ent=np.full(n, -1),
                              payout=base + np.arange(n), payout_row=np.ones(n, bool))
    return make


def _records(files: Files, file_of: dict, brows, srows, arows, entries, extra: list) -> truth.Records:
    fday = np.array(files.days, dtype=np.int64)
    parts = [file_of["book"], file_of["stripe"], file_of["adyen"], *[f for _, f in extra], file_of["bank"]]
    variant = len(srows) and int(srows.cat.max()) >= simple_psp.PAYOUT_ROW
    ords = [_ordinals(brows.day), _ordinals(file_of["stripe"]) if variant else _ordinals(srows.payout),
            _ordinals(arows.batch), *[_ordinals(f) for _, f in extra], _ordinals(entries.day)]
    sizes = np.cumsum([0] + [len(x) for x in parts])
    f = np.concatenate(parts)
    return truth.Records(file=f.astype(np.int32), ordinal=np.concatenate(ords).astype(np.int32),
                         day=(fday[f] if len(f) else f).astype(np.int32),
                         b0=int(sizes[0]), s0=int(sizes[1]), a0=int(sizes[2]), e0=int(sizes[-2]),
                         extra={name: int(sizes[3 + k]) for k, (name, _) in enumerate(extra)})


def _redeliver(w, prm, files: Files, psp_files: list, end_day: int, report: GenerateReport) -> None:
    """Deliver a few whole PSP files again, byte for byte, under another name on a later day."""
    cands = [(fid, day) for fid, day in psp_files if day < end_day]
    if not cands or prm.file_redeliveries == 0:
        return
    rng = w.rng(7)
    for k in rng.permutation(len(cands))[: prm.file_redeliveries]:
        fid, day = cands[int(k)]
        later = min(end_day, day + 1 + int(rng.integers(0, 2)))
        src = files.root / "landing" / to_date(day).isoformat() / files.names[fid]
        stem, dot, ext = files.names[fid].rpartition(".")
        dst = files.root / "landing" / to_date(later).isoformat() / f"{stem}(1).{ext}"
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dst)
        report.files["redelivered"] += 1


def generate(out: Path, *, seed: int = 42, end_date: date, days: int = 3, payments_per_day: int = 1000,
             tenants: list[str] | tuple[str, ...] = ("acme",), noise: str = "medium",
             psps: list[str] | tuple[str, ...] = ("stripe", "adyen"), stripe_format: str = "itemized",
             paypal_format: str = "stl", bank_format: str = "camt053",
             xlsx: list[str] | tuple[str, ...] = ()) -> GenerateReport:
    """Write landing files and truth for each tenant under ``out``; same arguments, same bytes.

    ``psps``: any of stripe, adyen, paypal, braintree, checkout. ``stripe_format``: itemized (payout
    reconciliation report), balance_history (Dashboard export) or events (webhook JSON Lines);
    ``paypal_format``: stl or trr; ``bank_format``: camt053, mt940 or bai2; ``xlsx``: tabular kinds
    (stripe, adyen, braintree, checkout, book) delivered as Excel workbooks instead of CSV."""
    fmt = Formats(stripe=stripe_format, paypal=paypal_format, bank=bank_format, xlsx=tuple(sorted(set(xlsx))))
    fmt.validate()
    if days < 1 or payments_per_day < 0:
        raise ValueError("days must be >= 1 and payments_per_day >= 0")
    bad = [t for t in tenants if not re.fullmatch(r"[a-z0-9][a-z0-9_-]{0,39}", t)]
    if bad or not tenants or len(set(tenants)) != len(tenants):
        raise ValueError(f"tenant ids must be distinct, lower-case letters, digits, '_' or '-': {list(tenants)}")
    params(noise)
    unknown = set(psps) - set(PSPS)
    if unknown or not psps:
        raise ValueError(f"unknown PSP(s) {sorted(unknown)}; choose from {PSPS}")
    started = time.perf_counter()
    out = Path(out)
    end_day = day_of(end_date)
    codes = tuple(sorted({PSPS.index(x) for x in psps}))
    report = GenerateReport(out=out, tenants=list(tenants),
                            days=[to_date(x).isoformat() for x in range(end_day - days + 1, end_day + 1)])
    for tenant in tenants:
        _prepare(out / tenant)
    for tenant in tenants:
        generate_tenant(out, tenant, seed=seed, end_day=end_day, days=days, payments_per_day=payments_per_day,
                        noise=noise, psps=codes, report=report, fmt=fmt)
    report.elapsed_seconds = round(time.perf_counter() - started, 3)
    return report

