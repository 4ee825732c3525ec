"""Our pipeline on one business day in a cold process: land -> parse -> match -> ledger into Delta.

``python -m bench.ours --tenant T --business-date D --landing DIR --lake L --database-url URL --out F``

Run by ``bench/run.py`` as a subprocess with a fresh lake and database, so the time includes the
Python imports and the JVM start. Every stage is timed separately with ``time.time()`` (wall clock,
comparable with the parent's clock); the JSON written to ``--out`` (rewritten after every stage) holds
the stage times and the absolute time the ledger finished. With ``--publish`` the publish stage
(summary + exceptions to PostgreSQL) runs after the ledger and is timed apart. Nothing is read back
here: the parent reads the lake.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import date
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    t_start = time.time()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tenant", required=True)
    parser.add_argument("--business-date", required=True, type=date.fromisoformat)
    parser.add_argument("--landing", required=True, type=Path)
    parser.add_argument("--lake", required=True)
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--run-id", default="bench")
    parser.add_argument("--publish", action="store_true",
                        help="after the ledger, also run the publish stage (timed apart, not part of the total)")
    parser.add_argument("--resume", action="store_true",
                        help="the lake already holds the day's parsed events (an earlier run stopped after parse): "
                             "land (for the manifest) and go on with match and ledger")
    args = parser.parse_args(argv)

    from jobs import pipeline
    from jobs.settings import load_settings

    settings = load_settings(lake=args.lake).with_(database_url=args.database_url, database_admin_url=None)
    day, tenant = args.business_date, args.tenant
    marks: list[tuple[str, float]] = [("imports", time.time())]

    def mark(name: str) -> None:
        marks.append((name, time.time()))
        _write(args.out, {"started_at": t_start, "stages": _stages(t_start, marks), "running": True})

    spark, landed, files, match = run_day(settings, tenant, day, args.landing, args.run_id, mark, resume=args.resume)

    ledger_done_at = marks[-1][1]
    result = {
        "started_at": t_start, "ledger_done_at": ledger_done_at, "stages": _stages(t_start, marks),
        "landed": sum(r.outcome == "landed" for r in landed),
        "records_loaded": sum(f.records_loaded for f in files),
        "records_quarantined": sum(f.records_quarantined for f in files),
        "files": [{"file_name": f.file_name, "format": f.format, "records_loaded": f.records_loaded,
                   "records_quarantined": f.records_quarantined, "control_totals_ok": f.control_totals_ok,
                   "detail": f.detail} for f in files],
        "matched_records": match.matched_records, "match_groups": match.match_groups,
        "spark": {"master": spark.sparkContext.master, "driver_memory": spark.conf.get("spark.driver.memory"),
                  "shuffle_partitions": spark.conf.get("spark.sql.shuffle.partitions"),
                  "memory_fraction": spark.conf.get("spark.memory.fraction", "0.6")},
    }
    _write(args.out, {**result, "running": args.publish})
    if args.publish:
        started = time.time()
        summary = pipeline.run_stage(pipeline.RunContext(settings, tenant, day, args.run_id), "publish", spark)
        result["publish"] = {"seconds": round(time.time() - started, 3),
                             "open_exceptions_published": summary.get("open_exceptions_published")}
    _write(args.out, result)
    spark.stop()
    return 0


def run_day(settings, tenant: str, day: date, landing: Path, run_id: str, mark=lambda name: None, spark=None,
            resume: bool = False):
    """land -> parse -> match -> ledger for one day, calling ``mark(stage)`` after each; (spark, landed, files,
    match summary). ``spark``: an existing session (tests), else a new one (its start timed as ``jvm_start``).
    ``resume``: the parse is skipped (the lake holds its output from an earlier run)."""
    from jobs import pipeline
    from jobs.spark import get_spark

    ctx = pipeline.RunContext(settings, tenant, day, run_id, landing)
    cfg = pipeline.prepare(settings, tenant)
    mark("prepare")
    landed = pipeline.run_stage(ctx, "land", cfg=cfg)             # records the run as running
    mark("land")
    spark = spark or get_spark(settings, app_name=f"bench-{tenant}-{day}")
    spark.range(1).count()                       # the JVM and the session are up and have run a job
    mark("jvm_start")
    files = [] if resume else pipeline.run_stage(ctx, "parse", spark, cfg)
    if not resume:
        mark("parse")
    match = pipeline.run_stage(ctx, "match", spark, cfg)
    mark("match")
    pipeline.run_stage(ctx, "ledger", spark, cfg)
    mark("ledger")
    return spark, landed, files, match


def _stages(t_start: float, marks: list[tuple[str, float]]) -> dict[str, float]:
    stages, previous = {}, t_start
    for name, at in marks:
        stages[name] = round(at - previous, 3)
        previous = at
    return stages


def _write(out: Path, result: dict) -> None:
    """Written after every stage, so a run stopped by the parent's time limit still says how far it got."""
    tmp = out.with_suffix(".tmp")
    tmp.write_text(json.dumps(result, indent=2, default=str) + "\n")
    tmp.replace(out)


if __name__ == "__main__":
    sys.exit(main())
