"""``make demo``: generate a small day, run the real ``reconcile_daily`` DAG on it through Airflow,
and print the run summary as stored in PostgreSQL.

Deterministic: the same seed and date give the same files, and the DAG replaces its own output, so
running the demo again for the same day changes no row count.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

from jobs.settings import LOCAL_DIR, load_settings

DEFAULT_DATE = "2026-11-20"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tenant", default="acme")
    parser.add_argument("--business-date", default=os.environ.get("DEMO_DATE", DEFAULT_DATE))
    parser.add_argument("--payments-per-day", type=int, default=int(os.environ.get("DEMO_PAYMENTS", "1000")))
    parser.add_argument("--days", type=int, default=3, help="days of history delivered up to the business date")
    parser.add_argument("--noise", default="medium")
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args(argv)
    day = date.fromisoformat(args.business_date)
    settings = load_settings()
    data = LOCAL_DIR / "demo" / "data"

    from jobs.generate.core import generate

    started = time.monotonic()
    report = generate(data, seed=args.seed, end_date=day, days=args.days, payments_per_day=args.payments_per_day,
                      tenants=[args.tenant], noise=args.noise)
    landing = data / args.tenant / "landing"
    print(f"[demo] generated {sum(report.files.values())} files for {args.tenant} "
          f"({args.days} days up to {day}, {args.payments_per_day} payments/day) in {landing}", flush=True)

    conf = {"tenant": args.tenant, "business_date": day.isoformat(), "landing": str(landing)}
    airflow = Path(sys.executable).with_name("airflow")
    print(f"[demo] running the reconcile_daily DAG for {day} through Airflow (airflow dags test) ...", flush=True)
    log_path = LOCAL_DIR / "demo" / f"reconcile_daily_{day}.log"
    with log_path.open("w") as log:
        proc = subprocess.run([str(airflow), "dags", "test", "reconcile_daily", day.isoformat(), "-c", json.dumps(conf)],
                              stdout=log, stderr=subprocess.STDOUT, env=os.environ.copy())
    state = _dag_state(log_path)
    if proc.returncode != 0 or state != "success":
        print(f"[demo] the DAG run did not succeed (exit {proc.returncode}, state {state}); log: {log_path}",
              file=sys.stderr)
        return 1
    print(f"[demo] DAG run succeeded in {time.monotonic() - started:.0f} s (log: {log_path})\n", flush=True)

    from jobs.report import load_run, render

    run = load_run(settings, args.tenant, day)
    print(render(run))
    print(f"\nMore: .venv/bin/recon export --tenant {args.tenant} --what exceptions --out exceptions.csv "
          "(also matches, files, quarantine, journals); `make airflow` opens the Airflow UI.")
    return 0


def _dag_state(log_path: Path) -> str | None:
    for line in reversed(log_path.read_text(errors="replace").splitlines()):
        if "DagRun Finished" in line and "state=" in line:
            return line.split("state=", 1)[1].split(",", 1)[0]
    return None


if __name__ == "__main__":
    sys.exit(main())
