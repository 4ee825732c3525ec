"""The DuckDB baseline: the simplest alternative an engineer would write for the same job.

Same files, same rules, one process and plain SQL: read the day's delivered files (book CSV / JSON Lines,
Stripe itemized payout reconciliation, Adyen settlement details, camt.053), normalise them to canonical
events in integer minor units (``bench/baseline/normalise.py``), de-duplicate, match book <-> PSP at L1
(PSP id) and L2 (merchant reference) and payouts <-> bank entries (``match.py``), and compute the day's
journal legs with our posting rules, fees against the rate card and FX included (``ledger.py``).

It is straightforward, not tuned: every step is one SQL statement over whole tables, no hand-made
partitioning, no hints. What it leaves out on purpose: L3 (tolerance, amount + time) and L4 (split
captures) of book <-> PSP, which only match what L1 and L2 left and do not change a posting; exception
reason codes and ageing; writing anything anywhere (the results stay in memory, where ours are written
as Delta tables and PostgreSQL rows).

``python -m bench.baseline_duckdb --landing DIR [--tenant acme] [--out result.json]``
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import yaml

from bench.baseline.ledger import post
from bench.baseline.match import masked_id_duplicates, match
from bench.baseline.normalise import normalise

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_TENANT_DIR = ROOT / "jobs" / "conf" / "tenants"


def load_config(tenant: str, config_dir: Path = DEFAULT_TENANT_DIR) -> dict:
    path = config_dir / f"{tenant}.yaml"
    if not path.exists():
        raise FileNotFoundError(f"tenant configuration {path} not found (set --tenant-config-dir)")
    return yaml.safe_load(path.read_text())


def run(landing: Path, cfg: dict, threads: int | None = None, memory_limit: str | None = None,
        temp_dir: Path | None = None) -> dict:
    """Normalise, match and post the files of ``landing``; returns stage times, pair counts and ledger totals."""
    import duckdb

    files = sorted(p for p in Path(landing).iterdir() if p.is_file() and not p.name.startswith("."))
    if not files:
        raise FileNotFoundError(f"no files in {landing}")
    con = duckdb.connect(":memory:")
    con.execute("SET TimeZone = 'UTC'")
    if threads:
        con.execute(f"SET threads = {int(threads)}")
    if memory_limit:
        con.execute(f"SET memory_limit = '{memory_limit}'")
    if temp_dir:
        con.execute(f"SET temp_directory = '{temp_dir}'")
    marks = [time.time()]
    kinds = normalise(con, files)
    marks.append(time.time())
    pairs = match(con, cfg["matching"])
    marks.append(time.time())
    totals = post(con, cfg["ledger"])
    marks.append(time.time())
    records = dict(con.execute("SELECT source, count(*) FROM ev GROUP BY source ORDER BY source").fetchall())
    result = {
        "stages": {name: round(b - a, 3) for name, a, b in zip(("normalise", "match", "ledger"), marks, marks[1:])},
        "seconds": round(marks[-1] - marks[0], 3), "files": kinds, "records_loaded": records,
        "pairs": {"L1": pairs["L1"], "L2": pairs["L2"]}, "payout_bank_pairs": pairs["payout_bank"],
        "duplicates": pairs["duplicates"], "masked_id_duplicates": masked_id_duplicates(con),
        "ledger": [dict(zip(("account_key", "psp", "currency", "lines", "debit", "credit"), (*row[:3], *map(int, row[3:]))))
                   for row in totals],
        "threads": con.execute("SELECT current_setting('threads')").fetchone()[0],
    }
    con.close()
    return result


def main(argv: list[str] | None = None) -> int:
    started = time.time()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--landing", required=True, type=Path)
    parser.add_argument("--tenant", default="acme")
    parser.add_argument("--tenant-config-dir", type=Path, default=DEFAULT_TENANT_DIR)
    parser.add_argument("--threads", type=int)
    parser.add_argument("--memory-limit")
    parser.add_argument("--temp-dir", type=Path)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    result = run(args.landing, load_config(args.tenant, args.tenant_config_dir), args.threads, args.memory_limit,
                 args.temp_dir)
    result.update(started_at=started, done_at=time.time())
    text = json.dumps(result, indent=2) + "\n"
    if args.out:
        args.out.write_text(text)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
