"""``make bench-quality``: matching quality against the generator's ground truth at several noise levels.

For each noise level: generate N days (deterministic), run the pipeline day by day (land, parse,
match, post, publish) into a fresh lake and a fresh PostgreSQL database, export matches and
exceptions after the last day, and score them (``jobs.evaluate``): precision and recall of pairs per
relation and level, and reason-code accuracy. Writes ``bench/results/quality.json`` and ``quality.md``.
Targets (issue): precision 100.00 %, recall >= 99.5 % of matchable pairs, >= 98 % right reason codes,
on the hardest noise level.
"""
from __future__ import annotations

import argparse
import json
import platform
import shutil
import time
from datetime import date, timedelta
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
TARGETS = {"precision": 1.0, "recall": 0.995, "reason_accuracy": 0.98}


def fresh_database(name: str) -> str:
    from urllib.parse import urlparse, urlunparse

    from jobs.settings import load_settings

    admin = load_settings().require_database_url()
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    return urlunparse(urlparse(admin)._replace(path=f"/{name}"))


def run_level(noise: str, args, spark) -> dict:
    from jobs.evaluate import evaluate
    from jobs.export import export
    from jobs.generate.core import generate
    from jobs.pipeline import run_all
    from jobs.settings import load_settings

    work = ROOT / "bench" / "data" / f"quality-{noise}"
    shutil.rmtree(work, ignore_errors=True)
    end = date.fromisoformat(args.end_date)
    days = [end - timedelta(days=i) for i in reversed(range(args.days))]
    generate(work / "generated", seed=args.seed, end_date=end, days=args.days,
             payments_per_day=args.payments_per_day, tenants=["acme"], noise=noise)
    settings = load_settings(lake=str(work / "lake")).with_(database_url=fresh_database(f"recon_quality_{noise}"))
    started = time.monotonic()
    for day in days:
        run_all(settings, "acme", day, work / "generated" / "acme" / "landing" / day.isoformat(), f"quality-{day}",
                spark=spark)
    elapsed = time.monotonic() - started
    export(settings, "acme", "matches", work / "matches.csv")
    export(settings, "acme", "exceptions", work / "exceptions.csv")
    score = evaluate(work / "generated" / "acme" / "truth", work / "matches.csv", work / "exceptions.csv", end)
    result = score.as_dict()
    result.update(noise=noise, days=args.days, payments_per_day=args.payments_per_day, seed=args.seed,
                  pipeline_seconds=round(elapsed, 1), false_pairs=[list(map(str, p)) for p in score.false_pairs[:20]],
                  missed_pairs=[list(map(str, p)) for p in score.missed_pairs[:20]])
    rel = result["relations"]
    result["meets_targets"] = all(r["precision"] >= TARGETS["precision"] and r["recall"] >= TARGETS["recall"]
                                  for r in rel.values()) and result["reason_accuracy"] >= TARGETS["reason_accuracy"]
    return result


def markdown(report: dict) -> str:
    lines = ["# Matching quality (generated data scored against its ground truth)", "",
             f"Machine: {report['machine']}. Command: `make bench-quality`. Targets: precision 100.00 %, "
             "recall >= 99.50 %, reason codes >= 98.00 %.", "",
             "| noise | relation | pairs made | correct | available | precision | recall |", "|---|---|---|---|---|---|---|"]
    for lvl in report["levels"]:
        for name, r in lvl["relations"].items():
            lines.append(f"| {lvl['noise']} | {name} | {r['pairs_made']} | {r['pairs_correct']} | {r['pairs_available']} "
                         f"| {100 * r['precision']:.2f} % | {100 * r['recall']:.2f} % |")
    lines += ["", "| noise | level | pairs made | correct | available | precision | recall |", "|---|---|---|---|---|---|---|"]
    for lvl in report["levels"]:
        for name, r in lvl["levels"].items():
            lines.append(f"| {lvl['noise']} | {name} | {r['pairs_made']} | {r['pairs_correct']} | {r['pairs_available']} "
                         f"| {100 * r['precision']:.2f} % | {100 * r['recall']:.2f} % |")
    lines += ["", "| noise | reason accuracy | by code (found / expected) | unexpected exceptions | meets targets |",
              "|---|---|---|---|---|"]
    for lvl in report["levels"]:
        codes = ", ".join(f"{k} {v['found']}/{v['expected']}" for k, v in lvl["reasons_by_code"].items())
        extra = ", ".join(f"{k} {v}" for k, v in lvl["unexpected_exceptions"].items()) or "none"
        lines.append(f"| {lvl['noise']} | {100 * lvl['reason_accuracy']:.2f} % | {codes} | {extra} | "
                     f"{'yes' if lvl['meets_targets'] else 'NO'} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--noise", default="low,medium,high")
    parser.add_argument("--days", type=int, default=6)
    parser.add_argument("--payments-per-day", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=20261124)
    parser.add_argument("--end-date", default="2026-11-20")
    args = parser.parse_args(argv)
    from jobs.settings import load_settings
    from jobs.spark import get_spark

    spark = get_spark(load_settings(), app_name="bench-quality")
    levels = [run_level(noise, args, spark) for noise in args.noise.split(",")]
    report = {"machine": f"{platform.node()} {platform.machine()}, {__import__('os').cpu_count()} cores, "
                         f"Python {platform.python_version()}",
              "generated": {"days": args.days, "payments_per_day": args.payments_per_day, "seed": args.seed},
              "targets": TARGETS, "levels": levels,
              "hardest_level_meets_targets": levels[-1]["meets_targets"]}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "quality.json").write_text(json.dumps(report, indent=2) + "\n")
    (RESULTS / "quality.md").write_text(markdown(report))
    print(markdown(report))
    return 0 if report["hardest_level_meets_targets"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
