"""``python bench/parse_bench.py``: parsing throughput per format at a million data records.

For every format: a delivery of about 1M data records (CSV rows, JSON lines, PayPal SB rows, camt.053
entries, MT940 statement lines, BAI2 16 records, workbook rows) is made once with the synthetic
generator (``jobs.generate``; bank statements and the Checkout.com payouts report, which hold one record
per payout, are written with the generator's writers from synthetic entries) and cached under
``bench/data/parse/``. Each is then landed in a scratch lake and parsed by its real registered parser
in local Spark, forcing every output (events and quarantine to Spark's ``noop`` sink, the file stats
collected). The JVM start and a warm-up parse are timed apart and excluded. Results:
``bench/results/parse.json`` and ``bench/results/parse.md`` (rows/s per format, machine info).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DATA = ROOT / "bench" / "data" / "parse"
RESULTS = ROOT / "bench" / "results"
TENANT = "bench"
SEED = 42
FRIDAY = date(2026, 11, 20)          # Wed 18, Thu 19, Fri 20: T+2 Stripe payouts of Wednesday are delivered
CSV_BOOK_DAY = date(2026, 11, 19)    # jobs.generate.book.is_jsonl_day is False for tenant "bench", seed 42
JSONL_BOOK_DAY = date(2026, 11, 18)  # ... and True


def _generate(out: Path, **kw) -> Path:
    from jobs.generate import generate

    generate(out, seed=SEED, tenants=[TENANT], noise="low", **kw)
    return out / TENANT / "landing"


def _pick(landing: Path, format_id: str, dest: Path) -> None:
    """Keep the delivered files of ``format_id`` (first deliveries), move them to ``dest``."""
    import hashlib

    from jobs.formats.registry import detect

    dest.mkdir(parents=True, exist_ok=True)
    seen = set()
    for path in sorted(p for p in landing.rglob("*") if p.is_file()):
        with path.open("rb") as fh:
            spec = detect(fh.read(65536))
        if not spec or spec.format_id != format_id:
            continue
        with path.open("rb") as fh:
            digest = hashlib.file_digest(fh, "sha256").hexdigest()
        if spec and spec.format_id == format_id and digest not in seen:
            seen.add(digest)
            shutil.move(str(path), dest / path.name)


def _bank(dest: Path, writer_name: str, n: int) -> None:
    """One statement day with ``n`` unrelated bank credits/debits, written by the generator's writer."""
    import numpy as np

    from jobs.generate import bai2_file, camt_file, mt940_file
    from jobs.generate.adyen import AdyenBatches
    from jobs.generate.bank import UNRELATED, UNRELATED_PARTIES, BankEntries, Payouts
    from jobs.generate.dates import day_of
    from jobs.generate.stripe import StripePayouts
    from jobs.generate.world import build_world

    writer = {"camt053": camt_file, "mt940": mt940_file, "bai2": bai2_file}[writer_name]
    w = build_world(TENANT, SEED)
    rng = np.random.default_rng(SEED)
    day = day_of(FRIDAY)
    amount = rng.integers(100, 5_000_000, n) * np.where(rng.random(n) < 0.7, 1, -1)
    e = BankEntries(day=np.full(n, day), acct=np.where(rng.random(n) < 0.8, 0, 1).astype(np.int8), amount=amount,
                    source=np.full(n, UNRELATED, np.int8), payout=np.full(n, -1),
                    party=rng.integers(0, len(UNRELATED_PARTIES), n), number=rng.integers(10_000, 99_999, n))
    order = np.lexsort((np.arange(n), e.acct))
    e = e.reorder(order)
    empty = np.zeros(0, np.int64)
    payouts = Payouts(psp=empty, index=empty, ccy=empty, file_day=empty, arrival=empty, amount=empty,
                      missing=empty.astype(bool), bank_amount=empty, has_row=empty.astype(bool))
    sp = StripePayouts(ccy=empty, day=empty, amount=empty, serial=empty, style=empty)
    ab = AdyenBatches(close_day=empty, number=empty, amount=empty, arrival_day=empty, style=empty)
    dest.mkdir(parents=True, exist_ok=True)
    opening = {acct: a.opening_minor for acct, a in w.accounts.items()}
    writer.write(dest / writer.file_name(day), w, day, e, np.arange(n), opening, payouts, sp, ab, {})


def _checkout_payouts(dest: Path, n: int) -> None:
    """A payouts report with ``n`` rows: the generator's row repeated with distinct payout ids/amounts."""
    import csv

    landing = _generate(DATA / "tmp-checkout-payouts", end_date=FRIDAY, days=2, payments_per_day=2000,
                        psps=["checkout"])
    reports = sorted(landing.rglob("payouts_*.csv"))
    header, row = list(csv.reader(reports[0].open()))[:2]
    dest.mkdir(parents=True, exist_ok=True)
    i_id = header.index("Payout ID")
    with (dest / "payouts_ent_bench_20261120_20261121_1.csv").open("w", newline="") as fh:
        out = csv.writer(fh, lineterminator="\n")
        out.writerow(header)
        for k in range(n):
            row[i_id] = f"{k:012X}"
            out.writerow(row)
    shutil.rmtree(DATA / "tmp-checkout-payouts", ignore_errors=True)


def _book_with_notes(dest: Path, rows: int) -> None:
    """The book CSV case with a customer note holding quoted line breaks in every 20th description (as
    the generator writes at the high noise level): the file is then read by the multi-line reader."""
    import csv

    source = prepare("book.csv", rows)
    dest.mkdir(parents=True, exist_ok=True)
    for path in sorted(p for p in source.iterdir() if p.is_file() and not p.name.startswith(".")):
        with path.open(newline="", encoding="utf-8") as src, (dest / path.name).open("w", newline="",
                                                                                    encoding="utf-8") as out:
            reader, writer = csv.reader(src), csv.writer(out, lineterminator="\n")
            writer.writerow(next(reader))
            for i, row in enumerate(reader):
                if i % 20 == 0:
                    row[-1] += "\nNote: leave at reception,\nring twice"
                writer.writerow(row)


# format id -> how to make its files (generator options or a writer), in a folder of its own
CASES: dict[str, dict] = {
    "stripe.payout_reconciliation_itemized": dict(psps=["stripe"], days=3, end_date=FRIDAY),
    "stripe.balance_history": dict(psps=["stripe"], days=3, end_date=FRIDAY, stripe_format="balance_history"),
    "stripe.events": dict(psps=["stripe"], days=3, end_date=FRIDAY, stripe_format="events"),
    "adyen.settlement_details": dict(psps=["adyen"], days=3, end_date=FRIDAY, scale=0.7),
    "paypal.stl": dict(psps=["paypal"], days=2, end_date=FRIDAY),
    "paypal.trr": dict(psps=["paypal"], days=2, end_date=FRIDAY, paypal_format="trr"),
    "braintree.transactions": dict(psps=["braintree"], days=2, end_date=FRIDAY),
    "checkout.settlement_breakdown": dict(psps=["checkout"], days=2, end_date=FRIDAY),
    "checkout.payouts": dict(writer="checkout_payouts"),
    "book.csv": dict(psps=["stripe"], days=1, end_date=CSV_BOOK_DAY),
    "book.csv (quoted line breaks)": dict(writer="book_with_notes", format="book.csv"),
    "book.jsonl": dict(psps=["stripe"], days=1, end_date=JSONL_BOOK_DAY),
    "bank.camt053": dict(writer="camt053"),
    "bank.mt940": dict(writer="mt940"),
    "bank.bai2": dict(writer="bai2"),
    "tabular.xlsx": dict(psps=["adyen"], days=3, end_date=FRIDAY, xlsx=["adyen"], scale=0.7),
}


def prepare(format_id: str, rows: int) -> Path:
    """The cached delivery of ``format_id`` (made on first use)."""
    dest = DATA / format_id
    marker = dest / ".done"
    if marker.exists() and json.loads(marker.read_text()).get("rows") == rows:
        return dest
    shutil.rmtree(dest, ignore_errors=True)
    case = dict(CASES[format_id])
    started = time.perf_counter()
    writer = case.pop("writer", None)
    case.pop("format", None)
    if writer == "checkout_payouts":
        _checkout_payouts(dest, rows)
    elif writer == "book_with_notes":
        _book_with_notes(dest, rows)
    elif writer:
        _bank(dest, writer, rows)
    else:
        scale = case.pop("scale", 1.0)
        work = DATA / f"tmp-{format_id}"
        shutil.rmtree(work, ignore_errors=True)
        landing = _generate(work, payments_per_day=int(rows * scale), **case)
        _pick(landing, format_id, dest)
        shutil.rmtree(work, ignore_errors=True)
    dest.mkdir(parents=True, exist_ok=True)
    marker.write_text(json.dumps({"rows": rows, "seconds": round(time.perf_counter() - started, 1)}))
    return dest


def machine() -> dict:
    import pyspark

    mem = None
    try:
        with open("/proc/meminfo") as fh:
            mem = round(int(fh.readline().split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    return {"platform": platform.platform(), "python": platform.python_version(), "cpus": os.cpu_count(),
            "memory_gib": mem, "pyspark": pyspark.__version__, "load_average": list(os.getloadavg()),
            "spark_master": os.environ.get("RECON_SPARK_MASTER", "local[*]")}


def land_local(settings, tenant: str, path: Path, received_date):
    """The file in the raw zone the way landing puts it there (without the PostgreSQL manifest)."""
    from jobs import storage
    from jobs.formats.registry import detect
    from jobs.landing import LandedFile, raw_uri_for, sha256_file

    sha = sha256_file(path)
    with path.open("rb") as fh:
        spec = detect(fh.read(65536))
    source = spec.source if spec else "unknown"
    uri = raw_uri_for(settings, tenant, source, received_date, sha, path.name)
    storage.put_file(settings, path, uri)
    return LandedFile(tenant, sha, path.name, uri, spec.format_id if spec else "unknown",
                      spec.version if spec else None, source, received_date)


def run_one(spark, settings, format_id: str, folder: Path) -> dict:
    from datetime import date as d

    from jobs.formats import common as c
    from jobs.formats.registry import by_id
    from jobs.stages.parse import _parser

    paths = sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))
    files = [land_local(settings, TENANT, p, d(2026, 11, 21)) for p in paths]
    formats = {f.format for f in files}
    expected = CASES[format_id].get("format", format_id)
    assert formats == {expected}, (format_id, formats)
    ctx = c.ParseContext(TENANT, d(2026, 11, 21), "bench-salt")
    started = time.perf_counter()
    out = _parser(expected)(spark, settings, by_id(expected), files, ctx)
    out.events.write.format("noop").mode("overwrite").save()
    out.quarantine.write.format("noop").mode("overwrite").save()
    stats = out.stats.collect()
    seconds = time.perf_counter() - started
    spark.catalog.clearCache()
    read = sum(s.records_read for s in stats)
    return {"format": format_id, "files": len(files), "bytes": sum(p.stat().st_size for p in paths),
            "records_read": read, "records_loaded": sum(s.records_loaded for s in stats),
            "records_quarantined": sum(s.records_quarantined for s in stats),
            "rejected_files": len(out.rejected), "seconds": round(seconds, 2),
            "rows_per_second": round(read / seconds) if seconds else None}


def write_results(result: dict) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "parse.json").write_text(json.dumps(result, indent=2) + "\n")
    m = result["machine"]
    lines = ["# Parse throughput per format", "",
             f"Machine: {m['cpus']} CPUs, {m['memory_gib']} GiB, {m['platform']}, Python {m['python']}, "
             f"PySpark {m['pyspark']} ({m['spark_master']}); load average at start {m['load_average']}.",
             f"JVM start {result['jvm_start_seconds']} s and a warm-up parse {result['warmup_seconds']} s, "
             "both excluded. Each format: one delivery of ~1M data records parsed by its registered parser, "
             "every output forced (events and quarantine to Spark's noop sink, file stats collected).", "",
             "| format | files | MB | records read | loaded | quarantined | seconds | records/s |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in result["formats"]:
        lines.append(f"| `{r['format']}` | {r['files']} | {r['bytes'] / 1e6:.0f} | {r['records_read']:,} | "
                     f"{r['records_loaded']:,} | {r['records_quarantined']:,} | {r['seconds']} | "
                     f"{r['rows_per_second']:,} |")
    (RESULTS / "parse.md").write_text("\n".join(lines) + "\n")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000, help="data records per format (default 1M)")
    ap.add_argument("--formats", default="", help="comma-separated format ids (default: all)")
    args = ap.parse_args(argv)
    selected = [f for f in CASES if not args.formats or f in args.formats.split(",")]
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    for format_id in selected:
        t = time.perf_counter()
        prepare(format_id, args.rows)
        print(f"data for {format_id}: ready ({time.perf_counter() - t:.0f}s)", flush=True)
    from jobs.settings import Settings
    from jobs.spark import get_spark

    info = machine()
    lake = DATA.parent / "parse-lake"
    shutil.rmtree(lake, ignore_errors=True)
    settings = Settings(lake=str(lake))
    t = time.perf_counter()
    spark = get_spark(settings, app_name="parse-bench")
    jvm = round(time.perf_counter() - t, 1)
    t = time.perf_counter()
    run_one(spark, settings, "stripe.payout_reconciliation_itemized", _warmup_folder())
    warm = round(time.perf_counter() - t, 1)
    # a run of some formats keeps the figures of the others from the previous run (their own machine line)
    previous = json.loads((RESULTS / "parse.json").read_text()) if (RESULTS / "parse.json").exists() else {}
    kept = [dict(r, machine=r.get("machine") or previous.get("machine"))
            for r in previous.get("formats", []) if r["format"] not in selected]
    results = list(kept)
    for format_id in selected:
        r = {**run_one(spark, settings, format_id, DATA / format_id), "machine": info}
        print(json.dumps(r), flush=True)
        results.append(r)
        write_results({"machine": info, "jvm_start_seconds": jvm, "warmup_seconds": warm, "formats": results})
        shutil.rmtree(lake / "raw", ignore_errors=True)
    spark.stop()
    return 0


def _warmup_folder() -> Path:
    folder = DATA.parent / "parse-warmup"
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(ROOT / "tests" / "data" / "slice" / "stripe_payout_po_TEST1.csv", folder / "po_TEST1.csv")
    return folder


if __name__ == "__main__":
    sys.exit(main())
