"""A history run: consecutive business days of one tenant through the pipeline, one cold process per day on
one lake and one database, as the daily DAG runs them. It shows whether a day's cost grows with the
tenant's history (it must not: every read of earlier days is bounded by ``history.lookback_days``).

``python bench/history.py --days 30 --payments-per-day 100000`` (``make bench-history``) writes
``bench/results/history.json`` and ``history.md``: per day the records landed, the wall time of the
process and of each stage (``bench/ours.py``: land, JVM start, parse, match, ledger), and day 1 / day 10 /
the last day side by side (target: the last day within 10 % of day 10).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from datetime import date, datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.day import DATA, TENANT  # noqa: E402
from bench.run import GIB, PY, RESULTS, Measured, _env, admin_url, drop_database, fresh_database, machine, spark_settings  # noqa: E402

END = date(2026, 11, 30)


def generate(days: int, payments: int, seed: int, log=print) -> Path:
    """The generated days (cached by seed, days and size): ``<folder>/<tenant>/landing/<date>/``."""
    from jobs.generate.core import generate as gen

    folder = DATA / f"history-{seed}-{days}-{payments}"
    done = folder / "done"
    if not done.exists():
        shutil.rmtree(folder, ignore_errors=True)
        log(f"[history] generating {days} days x {payments:,} payments into {folder} ...")
        gen(folder, seed=seed, end_date=END, days=days, payments_per_day=payments, tenants=[TENANT], noise="low")
        done.write_text("ok\n")
    return folder / TENANT / "landing"


def run(days: int, payments: int, seed: int, log=print) -> dict:
    landing = generate(days, payments, seed, log)
    work = DATA / "runs" / f"history-{days}-{payments}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    started = datetime.now(timezone.utc).isoformat(timespec="seconds")
    admin = admin_url()
    db = fresh_database(admin, f"history{days}")
    rows = []
    try:
        for i, folder in enumerate(sorted(p for p in landing.iterdir() if p.is_dir()), start=1):
            day = date.fromisoformat(folder.name)
            out = work / f"{day}.json"
            argv = [PY, "-m", "bench.ours", "--tenant", TENANT, "--business-date", day.isoformat(), "--landing",
                    str(folder), "--lake", str(work / "lake"), "--database-url", db, "--out", str(out),
                    "--run-id", f"history-{day}"]
            env = {**spark_settings(payments, work), "RECON_SPARK_CONF": os.environ.get("RECON_SPARK_CONF", "")}
            measured = Measured(argv, work / f"{day}.log", _env(**{k: v for k, v in env.items() if v}), None).run()
            o = json.loads(out.read_text()) if out.exists() else {}
            row = {"day": i, "business_date": day.isoformat(), "exit": measured.returncode,
                   "wall_s": round(measured.ended - measured.started, 2), "stages": o.get("stages", {}),
                   "records_loaded": o.get("records_loaded"), "peak_rss_gib": round(measured.peak_rss / GIB, 2),
                   "matched_records": sum((o.get("matched_records") or {}).values())}
            rows.append(row)
            log(f"[history] day {i} {day}: {row['wall_s']} s, {row['records_loaded']} records, stages {row['stages']}")
            if measured.returncode != 0:
                log(f"[history] day {i} failed:\n{measured.tail()}")
                break
    finally:
        drop_database(admin, db)
    return {"days": days, "payments_per_day": payments, "seed": seed, "machine": machine(),
            "started": started, "rows": rows,
            "compare": compare(rows)}


def compare(rows: list[dict]) -> dict:
    """Day 1, day 10 and the last day; the last day's wall time against day 10's."""
    ok = [r for r in rows if r["exit"] == 0]
    if len(ok) < 10:
        return {"complete": False}
    tenth, last = ok[9], ok[-1]
    return {"complete": len(ok) == len(rows), "day_1_s": ok[0]["wall_s"], "day_10_s": tenth["wall_s"],
            "last_day": last["day"], "last_day_s": last["wall_s"],
            "last_vs_day_10": round(last["wall_s"] / tenth["wall_s"], 3),
            "within_10_percent": last["wall_s"] <= 1.10 * tenth["wall_s"]}


def markdown(result: dict) -> str:
    c = result["compare"]
    out = [f"# History run: {result['days']} consecutive days x {result['payments_per_day']:,} book payments",
           "", f"Written by `bench/history.py` ({result['started']}); one cold `bench/ours.py` process per day "
           "(land, parse, match, ledger) on one lake and one database. Machine: "
           f"{result['machine'].get('cpus')} CPUs, {result['machine'].get('memory_gib')} GiB.", ""]
    if c.get("complete") is not False or "day_10_s" in c:
        out += [f"Day 1: {c.get('day_1_s')} s; day 10: {c.get('day_10_s')} s; day {c.get('last_day')}: "
                f"{c.get('last_day_s')} s ({c.get('last_vs_day_10')} x day 10; within 10 %: "
                f"{'yes' if c.get('within_10_percent') else '**no**'}).", ""]
    out += ["| day | date | records | wall s | JVM start | parse | match | ledger | peak GiB |",
            "| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in result["rows"]:
        s = r["stages"]
        out.append(f"| {r['day']} | {r['business_date']} | {r['records_loaded'] or 0:,} | {r['wall_s']} | "
                   f"{s.get('jvm_start', '')} | {s.get('parse', '')} | {s.get('match', '')} | {s.get('ledger', '')} | "
                   f"{r['peak_rss_gib']} |")
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--days", type=int, default=30)
    ap.add_argument("--payments-per-day", type=int, default=100_000)
    ap.add_argument("--seed", type=int, default=20261130)
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args(argv)
    result = run(args.days, args.payments_per_day, args.seed)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "history.json").write_text(json.dumps(result, indent=2) + "\n")
    (args.out / "history.md").write_text(markdown(result))
    print(markdown(result))
    return 0 if result["compare"].get("complete") else 1


if __name__ == "__main__":
    sys.exit(main())
