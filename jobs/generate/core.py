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

from jobs.generate import adyen, adyen_file, bank, book, camt_file, stripe, stripe_file, truth
from jobs.generate.dates import day_of, to_date
from jobs.generate.events import simulate
from jobs.generate.noise import params
from jobs.generate.world import ADYEN, PSPS, STRIPE, build_world


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


def generate_tenant(out: Path, tenant: str, *, seed: int, end_day: int, days: int, payments_per_day: int,
                    noise: str, psps: tuple[int, ...], report: GenerateReport) -> None:
    w, prm = build_world(tenant, seed), params(noise)
    window = list(range(end_day - days + 1, end_day + 1))
    p, r, d = simulate(w, prm, window, payments_per_day, psps)
    srows, spayouts = stripe.build(w, prm, p, r, d, end_day)
    arows, abatches = adyen.build(w, p, r, d, end_day)
    payouts = bank.plan_payouts(w, prm, spayouts, abatches, end_day)
    entries = bank.plan_entries(w, prm, payouts, window)
    brows = book.plan(w, prm, p, r, window)
    root = out / tenant
    files = Files(root)
    file_of = {"book": np.zeros(len(brows), np.int64), "stripe": np.zeros(len(srows), np.int64),
               "adyen": np.zeros(len(arows), np.int64), "bank": np.zeros(len(entries), np.int64)}
    psp_files: list[tuple[int, int]] = []            # (file id, delivery day) of PSP files
    for day, a, b in _slices(brows.day):
        jsonl = book.is_jsonl_day(w, day)
        fid, path = files.add(day, book.file_name(w, day))
        book.write(path, w, p, r, brows.rows(a, b), jsonl)
        file_of["book"][a:b] = fid
        report.files["book_jsonl" if jsonl else "book_csv"] += 1
        report.records["book_rows"] += b - a
    for i, a, b in _slices(srows.payout):
        fid, path = files.add(int(spayouts.day[i]), stripe_file.file_name(w, spayouts, i))
        stripe_file.write(path, w, p, r, srows.rows(a, b), spayouts, i)
        file_of["stripe"][a:b] = fid
        psp_files.append((fid, int(spayouts.day[i])))
        report.files["stripe_payout_reconciliation"] += 1
        report.records["stripe_rows"] += b - a
    for i, a, b in _slices(arows.batch):
        fid, path = files.add(int(abatches.close_day[i]), adyen_file.file_name(abatches, i))
        adyen_file.write(path, w, p, r, arows.rows(a, b), abatches, i)
        file_of["adyen"][a:b] = fid
        psp_files.append((fid, int(abatches.close_day[i])))
        report.files["adyen_settlement_detail"] += 1
        report.records["adyen_rows"] += b - a
    opening = {acct: a.opening_minor for acct, a in w.accounts.items()}
    for day in window:
        rows = np.flatnonzero(entries.day == day)
        fid, path = files.add(day, camt_file.file_name(day))
        opening = camt_file.write(path, w, day, entries, rows, opening, payouts, spayouts, abatches)
        file_of["bank"][rows] = fid
        report.files["camt053"] += 1
        report.records["bank_entries"] += len(rows)
    _redeliver(w, prm, files, psp_files, end_day, report)
    rec = _records(files, file_of, brows, srows, arows, entries)
    del file_of
    collected = truth.collect(p, r, brows, srows, arows, payouts, entries, rec, end_day)
    del p, r, d, brows, srows, arows                 # free the event tables before sorting the truth
    t = truth.finish(collected)
    del collected
    truth.write(root / "truth", tenant, t, rec, files.names)
    report.records["truth_group_rows"] += len(t.rec)
    report.records["truth_exception_rows"] += len(t.exc_rec)


def _records(files: Files, file_of: dict, brows, srows, arows, entries) -> truth.Records:
    fday = np.array(files.days, dtype=np.int64)
    parts = [file_of["book"], file_of["stripe"], file_of["adyen"], file_of["bank"]]
    ords = [_ordinals(brows.day), _ordinals(srows.payout), _ordinals(arows.batch), _ordinals(entries.day)]
    sizes = np.cumsum([0] + [len(x) for x in parts])
    f = np.concatenate(parts)
    return truth.Records(file=f.astype(np.int32), ordinal=np.concatenate(ords).astype(np.int32),
                         day=(fday[f] if len(f) else f).astype(np.int32),
                         b0=int(sizes[0]), s0=int(sizes[1]), a0=int(sizes[2]), e0=int(sizes[3]))


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
             psps: list[str] | tuple[str, ...] = ("stripe", "adyen")) -> GenerateReport:
    """Write landing files and truth for each tenant under ``out``; same arguments, same bytes."""
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
    codes = tuple(sorted({STRIPE if x == "stripe" else ADYEN for x in psps}))
    report = GenerateReport(out=out, tenants=list(tenants),
                            days=[to_date(x).isoformat() for x in range(end_day - days + 1, end_day + 1)])
    for tenant in tenants:
        _prepare(out / tenant)
    for tenant in tenants:
        generate_tenant(out, tenant, seed=seed, end_day=end_day, days=days, payments_per_day=payments_per_day,
                        noise=noise, psps=codes, report=report)
    report.elapsed_seconds = round(time.perf_counter() - started, 3)
    return report

