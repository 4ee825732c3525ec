"""The benchmarked business day: generated once per (seed, scale) and cached in ``bench/data/<seed>-<scale>/``.

A realistic single business day D needs the PSP files delivered on D (Stripe payouts and Adyen batches
settle the payments booked two business days earlier) and the book records they settle. So the
generator writes three delivery days (D-2 .. D) with ``scale`` book payments a day, and the day's
landing folder gets:

* the book file of D-2 (the payments the day's PSP files settle: in a steady-state run these are the
  open book items carried into D; here they are parsed in the same run, like a day's own book file),
* every PSP file delivered on D (Stripe itemized payout reconciliation, Adyen settlement details,
  including a PSP file delivered a second time under another name when the generator chose D),
* the bank statement (camt.053) of D.

So one run parses about ``scale`` book records, about as many PSP records and the day's bank entries,
and the matching and ledger see the volume of a steady-state day. ``n`` in the results is the number
of book payment records (type ``payment``) in the landed book file, counted exactly.
"""
from __future__ import annotations

import json
import os
import shutil
from dataclasses import asdict, dataclass
from datetime import date, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "bench" / "data"
TENANT = "acme"
BUSINESS_DATE = date(2026, 11, 20)      # a Friday: D-2 is a Wednesday, so T+2 settlement lands on D
NOISE = "medium"
GENERATED_DAYS = 3
LAYOUT_VERSION = 1                      # bump when the selection below changes (invalidates the cache)


@dataclass(frozen=True)
class BenchDay:
    scale: int
    seed: int
    tenant: str
    business_date: str
    landing: str                        # folder with the day's files (landed by the pipeline, read by DuckDB)
    files: dict[str, list[str]]         # kind -> file names: book, psp, bank
    book_payments: int                  # records of type payment in the book file
    book_records: int                   # all book records (payments, refunds, repeated records)
    psp_records: int
    bank_entries: int
    bytes: int
    generate_seconds: float
    layout_version: int = LAYOUT_VERSION

    @property
    def landing_path(self) -> Path:
        return Path(self.landing)

    @property
    def records(self) -> int:
        return self.book_records + self.psp_records + self.bank_entries


def _kind(name: str) -> str:
    if name.startswith("book_payments_"):
        return "book"
    if name.startswith("camt053_"):
        return "bank"
    return "psp"


def _select(generated: Path, tenant: str, day: date) -> list[tuple[str, Path]]:
    landing = generated / tenant / "landing"
    book_day = (day - timedelta(days=2)).isoformat()
    chosen = [("book", p) for p in sorted((landing / book_day).glob("book_payments_*"))]
    chosen += [(_kind(p.name), p) for p in sorted((landing / day.isoformat()).iterdir())
               if _kind(p.name) != "book"]
    kinds = {k for k, _ in chosen}
    if kinds != {"book", "psp", "bank"}:
        raise RuntimeError(f"generated data in {landing} lacks {sorted({'book', 'psp', 'bank'} - kinds)} files for "
                           f"the business day {day} (book from {book_day}); generate at least {GENERATED_DAYS} days")
    return chosen


def _count(kind: str, path: Path) -> tuple[int, int]:
    """(records, payment records) of one delivered file, counted from its bytes."""
    import duckdb

    if kind == "bank":
        return path.read_bytes().count(b"<Ntry>"), 0
    con = duckdb.connect()
    if kind == "book" and path.suffix == ".jsonl":
        source = f"read_json('{path}', format='newline_delimited', columns={{'type': 'VARCHAR'}})"
    else:
        source = f"read_csv('{path}', header=true, all_varchar=true)"
    if kind == "book":
        rows, payments = con.execute(f"SELECT count(*), count(*) FILTER (WHERE lower(trim(type)) = 'payment') "
                                     f"FROM {source}").fetchone()
        return rows, payments
    return con.execute(f"SELECT count(*) FROM {source}").fetchone()[0], 0


def prepare_day(scale: int, seed: int, data_dir: Path = DATA, log=print) -> BenchDay:
    """The cached day for (seed, scale), generating it first when needed."""
    import time

    work = data_dir / f"{seed}-{scale}"
    meta = work / "day.json"
    if meta.exists():
        day = BenchDay(**json.loads(meta.read_text()))
        if day.layout_version == LAYOUT_VERSION and day.landing_path.is_dir():
            return day
    from jobs.generate.core import generate

    shutil.rmtree(work, ignore_errors=True)
    generated = work / "generated"
    log(f"[bench] generating {GENERATED_DAYS} days x {scale:,} payments (seed {seed}) into {generated} ...")
    started = time.perf_counter()
    generate(generated, seed=seed, end_date=BUSINESS_DATE, days=GENERATED_DAYS, payments_per_day=scale,
             tenants=[TENANT], noise=NOISE)
    elapsed = time.perf_counter() - started
    landing = work / "day" / BUSINESS_DATE.isoformat()
    landing.mkdir(parents=True)
    files: dict[str, list[str]] = {"book": [], "psp": [], "bank": []}
    counts = {"book": 0, "psp": 0, "bank": 0}
    payments, size = 0, 0
    for kind, path in _select(generated, TENANT, BUSINESS_DATE):
        target = landing / path.name
        os.link(path, target)
        files[kind].append(path.name)
        records, paid = _count(kind, target)
        counts[kind] += records
        payments += paid
        size += target.stat().st_size
    shutil.rmtree(generated)                 # the other days and the truth are not needed
    day = BenchDay(scale=scale, seed=seed, tenant=TENANT, business_date=BUSINESS_DATE.isoformat(),
                   landing=str(landing), files=files, book_payments=payments, book_records=counts["book"],
                   psp_records=counts["psp"], bank_entries=counts["bank"], bytes=size,
                   generate_seconds=round(elapsed, 1))
    meta.write_text(json.dumps(asdict(day), indent=2) + "\n")
    return day
