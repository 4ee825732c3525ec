"""``make bench``: end-to-end throughput of our pipeline against a DuckDB baseline on the same files.

For each scale (book payments a day; default 100k, 1M and 10M):

1. the day is generated once and cached by (seed, scale) under ``bench/data/<seed>-<scale>/`` (``day.py``);
2. **ours**: ``bench/ours.py`` in a cold process (Python imports, JVM start) on a fresh lake and a fresh
   PostgreSQL database: land -> parse -> match -> ledger into Delta; then the publish stage, timed apart;
3. **DuckDB**: ``bench/baseline_duckdb.py`` in a cold process on the same files: normalise + dedupe +
   L1/L2 + payout <-> bank + journal legs, same rules;
4. both must agree: L1 and L2 pairs book <-> PSP, payout <-> bank pairs, and the ledger totals
   (lines, debit and credit per account key, PSP and currency) read back from our Delta tables;
5. peak resident memory of each process tree (the Python driver, its JVM and the JVM's Python workers),
   sampled from /proc every 0.5 s as PSS (shared pages split among the processes mapping them).

Then the PostgreSQL publish figures (``publish.py``: COPY into the staging table, set-based upsert
into the indexed ``exception_item``) and, at 1M, the whole ``reconcile_daily`` DAG through
``airflow dags test`` (task time vs orchestration overhead, from Airflow's own task instance records).

Results: ``bench/results/latest.json`` and ``latest.md`` (a run with a subset of the scales keeps the
other scales' figures from the previous file). Targets are reported, never asserted; a miss says by how
much.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import secrets
import shutil
import signal
import subprocess
import sys
import threading
import time
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.day import DATA, BenchDay, prepare_day  # noqa: E402

RESULTS = ROOT / "bench" / "results"
RUNS = DATA / "runs"
PY = sys.executable
DEFAULT_SCALES = (100_000, 1_000_000, 10_000_000)
GIB = 1024 ** 3
TARGETS = {   # reported, never asserted; issue 16's (ratios, 1M <= 120 s, a 1k day <= 20 s, DAG <= 240 s) and earlier ones
    "ratio_10m": ("<=", 2.5), "peak_rss_10m_gib": ("<=", 12.0), "ratio_1m": ("<=", 2.5), "ours_1m_s": ("<=", 120.0),
    "ratio_100k": ("<=", 3.0), "ours_1k_s": ("<=", 20.0), "dag_1m_s": ("<=", 240.0), "ours_10m_s": ("<=", 90.0),
    "publish_staging_rows_per_s": (">=", 500_000), "publish_effective_rows_per_s": (">=", 200_000),
}
TARGET_SCALE = {"ratio_10m": "10000000", "peak_rss_10m_gib": "10000000", "ours_10m_s": "10000000",
                "ratio_1m": "1000000", "ours_1m_s": "1000000", "ratio_100k": "100000", "ours_1k_s": "1000"}


# ---------------------------------------------------------------------------------------- processes
def descendants(pid: int) -> list[int]:
    """``pid`` and every process below it, from the parent ids in /proc."""
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat") as fh:
                ppid = int(fh.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry.name))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def tree_rss(pids: list[int]) -> int:
    """RSS in bytes summed over ``pids`` (cheap: /proc/<pid>/statm)."""
    total, page = 0, os.sysconf("SC_PAGE_SIZE")
    for p in pids:
        try:
            with open(f"/proc/{p}/statm") as fh:
                total += int(fh.read().split()[1]) * page
        except (OSError, IndexError, ValueError):
            pass
    return total


def tree_pss(pids: list[int]) -> int:
    """PSS in bytes summed over ``pids``: each shared page split among the processes that map it, so the
    JVM's forked Python workers are not counted twice. Costly on a large JVM (~0.1 s: it walks the page
    tables), so it is read only near a new RSS peak and at most ~5 % of the time."""
    total = 0
    for p in pids:
        try:
            with open(f"/proc/{p}/smaps_rollup") as fh:
                total += next(int(line.split()[1]) * 1024 for line in fh if line.startswith("Pss:"))
        except (OSError, StopIteration, ValueError):
            pass
    return total


class Measured:
    """A child process in its own session, with its wall time and peak process-tree RSS."""

    def __init__(self, argv: list[str], log: Path, env: dict | None = None, timeout: float | None = None,
                 interval: float = 0.5):
        self.argv, self.log, self.env, self.timeout, self.interval = argv, log, env, timeout, interval
        self.peak_rss = 0                       # peak PSS of the process tree (read near RSS peaks)
        self.peak_rss_sum = 0                   # peak of the plain RSS sum (counts shared pages once per process)
        self.timed_out = False

    def run(self) -> "Measured":
        self.started = time.time()
        with self.log.open("w") as out:
            proc = subprocess.Popen(self.argv, stdout=out, stderr=subprocess.STDOUT, env=self.env, cwd=ROOT,
                                    start_new_session=True)
            done = threading.Event()

            def sample() -> None:      # the process list is refreshed every 4th sample: reading /proc is not free
                pids, n, next_pss = [proc.pid], 0, 0.0
                while not done.is_set():
                    if n % 4 == 0:
                        pids = descendants(proc.pid)
                    n += 1
                    rss = tree_rss(pids)
                    if rss >= 0.97 * self.peak_rss_sum and time.monotonic() >= next_pss:
                        t = time.monotonic()
                        self.peak_rss = max(self.peak_rss, tree_pss(pids) or rss)
                        next_pss = time.monotonic() + 20 * (time.monotonic() - t)   # at most ~5 % of a core
                    self.peak_rss_sum = max(self.peak_rss_sum, rss)
                    done.wait(self.interval)

            sampler = threading.Thread(target=sample, daemon=True)
            sampler.start()
            try:
                self.returncode = proc.wait(timeout=self.timeout)
            except subprocess.TimeoutExpired:
                self.timed_out = True
                os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()
                self.returncode = proc.returncode
            finally:
                done.set()
                sampler.join()
        self.ended = time.time()
        return self

    def tail(self, lines: int = 30) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


def default_timeout(scale: int) -> float:
    """Seconds a process of the run at ``scale`` may take before it is stopped and reported unfinished."""
    return max(2400.0, 0.0009 * scale)


def spark_settings(scale: int, work: Path) -> dict[str, str]:
    """The Spark environment of our run at ``scale``: the project defaults (driver 6g, 8 shuffle partitions)
    up to 1M; at 10M a 12g driver, 64 partitions (a 10M day shuffles ~7 GB a pass: 8 partitions of ~1 GB
    would spill every wide stage; AQE coalesces small ones again) and ``spark.memory.fraction`` 0.5 (half
    the heap left to what Spark does not account, like the collected member list of a payout with ~4M
    records: the run that completed match and ledger at 10M used these). Spark's event log goes to
    ``work/eventlog`` (``bench/eventlog.py`` reads it). RECON_SPARK_DRIVER_MEMORY /
    RECON_SPARK_SHUFFLE_PARTITIONS set in the environment win; RECON_SPARK_CONF entries are kept."""
    big = scale > 2_000_000
    folder = work / "eventlog"
    folder.mkdir(parents=True, exist_ok=True)
    conf = [os.environ.get("RECON_SPARK_CONF"), "spark.memory.fraction=0.5" if big else None,
            f"spark.eventLog.enabled=true,spark.eventLog.dir={folder.as_uri()}"]
    return {"RECON_SPARK_DRIVER_MEMORY": os.environ.get("RECON_SPARK_DRIVER_MEMORY") or ("12g" if big else "6g"),
            "RECON_SPARK_SHUFFLE_PARTITIONS": os.environ.get("RECON_SPARK_SHUFFLE_PARTITIONS") or ("64" if big else "8"),
            "RECON_SPARK_CONF": ",".join(filter(None, conf))}


def _env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW__")}
    env.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env.update({k: str(v) for k, v in extra.items()})
    return env


# ---------------------------------------------------------------------------------------- PostgreSQL
def admin_url() -> str:
    """The server's owner (creates databases, migrates): ``RECON_DATABASE_ADMIN_URL``, else the project's server."""
    if os.environ.get("RECON_DATABASE_ADMIN_URL"):
        return os.environ["RECON_DATABASE_ADMIN_URL"]
    from jobs.localenv.postgres import LocalPostgres

    return LocalPostgres().start()


def _app_url() -> str:
    """The application's login on the same server (row-level security applies to it)."""
    if os.environ.get("RECON_DATABASE_URL"):
        return os.environ["RECON_DATABASE_URL"]
    from jobs.localenv.postgres import LocalPostgres

    return LocalPostgres().url_file.read_text().strip()


def fresh_database(admin: str, label: str) -> str:
    """A new database on the server of ``admin``, migrated by its owner; the application's URL of it (dropped
    again by ``drop_database``)."""
    import psycopg

    from jobs.settings import Settings
    from jobs.store.migrate import migrate

    name = f"bench_{label}_{secrets.token_hex(3)}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    migrate(Settings(database_admin_url=urlunsplit(urlsplit(admin)._replace(path=f"/{name}"))))
    return urlunsplit(urlsplit(_app_url())._replace(path=f"/{name}"))


def drop_database(admin: str, url: str) -> None:
    import psycopg

    name = urlsplit(url).path.lstrip("/")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# ---------------------------------------------------------------------------------------- our results
def lake_figures(lake: str, tenant: str) -> dict:
    """Pairs per level and relation and the ledger totals, read from our Delta tables (delta-rs + DuckDB)."""
    import duckdb
    from deltalake import DeltaTable

    con = duckdb.connect()
    matches = DeltaTable(f"{lake}/gold/matches").to_pyarrow_dataset()         # noqa: F841 (read by DuckDB)
    journal = DeltaTable(f"{lake}/gold/journal_entries").to_pyarrow_dataset()  # noqa: F841
    groups = con.execute(f"""SELECT relation, level, count(DISTINCT match_id) FROM matches
                             WHERE tenant_id = '{tenant}' GROUP BY ALL ORDER BY ALL""").fetchall()
    ledger = con.execute(f"""SELECT account_key, coalesce(psp, '') AS psp, currency, count(*) AS lines,
                                    sum(debit_minor)::BIGINT, sum(credit_minor)::BIGINT FROM journal
                             WHERE tenant_id = '{tenant}' GROUP BY ALL ORDER BY ALL""").fetchall()
    by = {(r, lvl): n for r, lvl, n in groups}
    return {
        "pairs": {"L1": by.get(("book_psp", 1), 0), "L2": by.get(("book_psp", 2), 0)},
        "payout_bank_pairs": sum(n for (r, _), n in by.items() if r == "payout_bank"),
        "groups": {f"{r}.L{lvl}": n for (r, lvl), n in sorted(by.items())},
        "ledger": [dict(zip(("account_key", "psp", "currency", "lines", "debit", "credit"), row)) for row in ledger],
    }


def _ledger_key(rows: list[dict]) -> dict:
    return {(r["account_key"], r["psp"], r["currency"]): (int(r["lines"]), int(r["debit"]), int(r["credit"]))
            for r in rows}


def compare(ours: dict, duck: dict) -> dict:
    """Same matched counts and ledger totals? With the differences when not."""
    out = {"L1": ours["pairs"]["L1"] == duck["pairs"]["L1"], "L2": ours["pairs"]["L2"] == duck["pairs"]["L2"],
           "payout_bank": ours["payout_bank_pairs"] == duck["payout_bank_pairs"]}
    a, b = _ledger_key(ours["ledger"]), _ledger_key(duck["ledger"])
    diffs = [{"key": list(k), "ours": a.get(k), "duckdb": b.get(k)} for k in sorted(set(a) | set(b), key=str)
             if a.get(k) != b.get(k)]
    out["ledger"] = not diffs
    out["all"] = all(out.values())
    if diffs:
        out["ledger_differences"] = diffs[:20]
    for name in ("L1", "L2"):
        if not out[name]:
            out[f"{name}_counts"] = {"ours": ours["pairs"][name], "duckdb": duck["pairs"][name]}
    if not out["payout_bank"]:
        out["payout_bank_counts"] = {"ours": ours["payout_bank_pairs"], "duckdb": duck["payout_bank_pairs"]}
    return out


def ledger_totals(rows: list[dict]) -> dict:
    """Debit and credit per currency (each currency balances when debit == credit)."""
    out: dict[str, dict] = {}
    for r in rows:
        t = out.setdefault(r["currency"], {"debit": 0, "credit": 0, "lines": 0})
        t["debit"] += int(r["debit"])
        t["credit"] += int(r["credit"])
        t["lines"] += int(r["lines"])
    return dict(sorted(out.items()))


def spark_profile(folder: Path, ours: dict) -> dict:
    """Per stage of our run: Spark jobs, time with no job running, task time, shuffle, spill, the longest
    jobs and skewed stages, from the run's event log (``bench/eventlog.py``)."""
    from bench import eventlog

    path = eventlog.find_log(folder)
    if path is None:
        return {"error": f"no Spark event log in {folder}"}
    try:
        return eventlog.profile(eventlog.load(path), eventlog.phases_from_marks(ours))
    except (OSError, KeyError, ValueError) as exc:      # the figures stand without the profile
        return {"error": f"event log {path.name} not read: {exc}"}


# ---------------------------------------------------------------------------------------- one scale
def resumable(previous: dict, work: Path) -> bool:
    """An earlier run of this scale stopped after its parse stage, and its lake is still there."""
    return ("ours_s" not in previous and "parse" in previous.get("stages", {})
            and (work / "lake" / "silver" / "events" / "_delta_log").is_dir())


def run_scale(day: BenchDay, admin: str, timeout: float | None, publish: bool = True, log=print,
              duckdb_memory_limit: str | None = None, resume_from: dict | None = None) -> dict:
    """Ours then DuckDB at one scale. ``resume_from``: the results entry of an earlier run of this scale that
    stopped after parse (``resumable``): its lake is kept, ours runs match and ledger on it, and the figures
    are stitched (land ... parse from the earlier run, the rest from this one; said so in ``stitched``)."""
    work = RUNS / str(day.scale)
    if resume_from is None:
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
    else:
        for name in ("ours.json", "ours.log", "eventlog"):
            if (work / name).exists():
                (work / name).rename(work / f"{name}.parse-run")
    lake = work / "lake"
    db = fresh_database(admin, str(day.scale))
    entry = {"book_payments": day.book_payments, "records": day.records, "book_records": day.book_records,
             "psp_records": day.psp_records, "bank_entries": day.bank_entries, "input_mb": round(day.bytes / 1e6, 1),
             "files": sum(len(v) for v in day.files.values()), "load_average_at_start": list(os.getloadavg()),
             "started": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    try:
        log(f"[bench] {day.scale:,}: ours (cold process, " + ("resumed on the earlier run's lake after its parse, fresh "
            "database) ..." if resume_from is not None else "fresh lake + database) ..."))
        argv = [PY, "-m", "bench.ours", "--tenant", day.tenant, "--business-date", day.business_date,
                "--landing", day.landing, "--lake", str(lake), "--database-url", db, "--out", str(work / "ours.json")]
        argv += ["--resume"] if resume_from else []
        ours = Measured(argv + (["--publish"] if publish else []), work / "ours.log",
                        _env(**spark_settings(day.scale, work)),
                        timeout).run()
        o = json.loads((work / "ours.json").read_text()) if (work / "ours.json").exists() else {}
        entry["peak_rss_gib"] = round(ours.peak_rss / GIB, 2)
        entry["peak_rss_sum_gib"] = round(ours.peak_rss_sum / GIB, 2)
        entry["stages"] = ({"process_start": round(o["started_at"] - ours.started, 3), **o.get("stages", {})}
                           if o else {})
        if resume_from is not None:
            entry["stages"] = stitch(resume_from, entry)
        if ours.timed_out or ours.returncode != 0 or "ledger_done_at" not in o:
            entry["ours_error"] = (f"stopped by the time limit of {timeout:.0f} s" if ours.timed_out
                                   else f"exit code {ours.returncode}")
            entry["ours_reached"] = list(entry["stages"])
            entry["ours_elapsed_s"] = round(ours.ended - ours.started, 1)
            entry["ours_log_tail"] = ours.tail(15)
        finished = "ledger_done_at" in o
        if finished:
            entry["ours_s"] = round(o["ledger_done_at"] - ours.started if resume_from is None   # stitched: the
                                    else sum(entry["stages"].values()), 2)                    # sum of its stages
            entry["ours_process_s"] = round(ours.ended - ours.started, 2)
            entry["records_loaded"] = o["records_loaded"]
            entry["records_quarantined"] = o["records_quarantined"]
            entry["rows_per_s"] = round(day.records / entry["ours_s"])
            entry["spark"] = o.get("spark")
            if o.get("publish"):
                entry["publish_stage"] = o["publish"]
            log(f"[bench] {day.scale:,}: ours {entry['ours_s']} s, peak memory {entry['peak_rss_gib']} GiB")
        else:
            log(f"[bench] {day.scale:,}: ours did not finish: {entry['ours_error']}")

        if o:
            entry["profile"] = spark_profile(work / "eventlog", o)
            earlier_marks = work / "ours.json.parse-run"
            if resume_from is not None and earlier_marks.exists():      # its parse, this run's match and ledger
                earlier = spark_profile(work / "eventlog.parse-run", json.loads(earlier_marks.read_text()))
                if "error" not in earlier and "error" not in entry["profile"]:
                    entry["profile"] = {**earlier, **entry["profile"]}

        if resume_from is not None and resume_from.get("duckdb_s") and (work / "duckdb.json").exists():
            log(f"[bench] {day.scale:,}: DuckDB's figures of the earlier run are kept (same files, same code)")
            return finish_with_duckdb(entry, day, resume_from, lake, finished, log)
        log(f"[bench] {day.scale:,}: DuckDB baseline (cold process, same files) ...")
        tmp = work / "duckdb-tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        duck = Measured([PY, "-m", "bench.baseline_duckdb", "--landing", day.landing, "--tenant", day.tenant,
                         "--temp-dir", str(tmp), "--out", str(work / "duckdb.json")]
                        + (["--memory-limit", duckdb_memory_limit] if duckdb_memory_limit else []), work / "duckdb.log", _env(),
                        timeout).run()
        if duck.returncode != 0 or not (work / "duckdb.json").exists():
            entry["duckdb_error"] = ("time limit" if duck.timed_out else f"exit code {duck.returncode}")
            entry["duckdb_log_tail"] = duck.tail(15)
            return entry
        d = json.loads((work / "duckdb.json").read_text())
        entry["duckdb_s"] = round(d["done_at"] - duck.started, 2)
        entry["duckdb_peak_rss_gib"] = round(duck.peak_rss / GIB, 2)
        entry["duckdb_stages"] = {"startup": round(d["started_at"] - duck.started, 3), **d["stages"]}
        return finish_with_duckdb(entry, day, None, lake, finished, log)
    finally:
        entry["lake"] = str(lake.relative_to(ROOT)) if lake.is_relative_to(ROOT) else str(lake)
        drop_database(admin, db)


def stitch(earlier: dict, entry: dict) -> dict:
    """Stage times of a resumed run: the earlier run's up to and including parse, then this run's match and
    ledger from ``entry["stages"]`` (its own process start, imports, land and JVM start are overhead of
    resuming, not counted). Also records in ``entry`` how it was stitched and the higher peak memory."""
    names = list(earlier["stages"])
    stages = {k: earlier["stages"][k] for k in names[: names.index("parse") + 1]}
    stages.update({k: v for k, v in entry["stages"].items() if k in ("match", "ledger")})
    entry["stitched"] = {
        "parse_run_started": earlier.get("started"), "parse_run_peak_rss_gib": earlier.get("peak_rss_gib"),
        "parse_run_spark": earlier.get("spark"),
        "resume_overhead_s": {k: v for k, v in entry["stages"].items() if k not in ("match", "ledger")},
        "note": "land .. parse timed in the earlier run (which stopped later, in match); match and ledger in a "
                "run resumed on its lake; ours_s is the sum of these stage times"}
    entry["peak_rss_gib"] = max(entry.get("peak_rss_gib") or 0, earlier.get("peak_rss_gib") or 0)
    return stages


def finish_with_duckdb(entry: dict, day: BenchDay, earlier: dict | None, lake: Path, finished: bool, log) -> dict:
    """Ratio and agreement, with DuckDB's figures in ``entry`` (or kept from ``earlier``)."""
    work = lake.parent
    d = json.loads((work / "duckdb.json").read_text())
    if earlier is not None:
        for key in ("duckdb_s", "duckdb_peak_rss_gib", "duckdb_stages"):
            entry[key] = earlier[key]
        entry["duckdb_note"] = f"DuckDB measured in the earlier run ({earlier.get('started')}), not again"
    entry["duckdb_rows_per_s"] = round(day.records / entry["duckdb_s"])
    entry["duckdb_pairs"] = {**d["pairs"], "payout_bank": d["payout_bank_pairs"]}
    if not finished:
        entry["ratio_at_least"] = round(entry["ours_elapsed_s"] / entry["duckdb_s"], 1)
        log(f"[bench] {day.scale:,}: DuckDB {entry['duckdb_s']} s; ours stopped after {entry['ours_elapsed_s']} s")
        return entry
    entry["ratio"] = round(entry["ours_s"] / entry["duckdb_s"], 2)
    log(f"[bench] {day.scale:,}: DuckDB {entry['duckdb_s']} s -> ratio {entry['ratio']}")

    figures = lake_figures(str(lake), day.tenant)
    entry["matched"] = {"L1": figures["pairs"]["L1"], "L2": figures["pairs"]["L2"],
                        "payout_bank": figures["payout_bank_pairs"], "ours_groups": figures["groups"]}
    entry["ledger_totals"] = ledger_totals(figures["ledger"])
    entry["agree"] = compare(figures, d)
    log(f"[bench] {day.scale:,}: ours and DuckDB agree: {entry['agree']['all']}")
    return entry


# ---------------------------------------------------------------------------------------- Airflow
def dag_run(day: BenchDay, admin: str, timeout: float | None, log=print) -> dict:
    """The whole reconcile_daily DAG for the day via ``airflow dags test`` on a fresh lake and database."""
    import sqlite3

    work = RUNS / f"dag-{day.scale}"
    shutil.rmtree(work, ignore_errors=True)
    home = work / "airflow"
    home.mkdir(parents=True)
    airflow = str(Path(PY).with_name("airflow"))
    env = _env(AIRFLOW_HOME=home, AIRFLOW__CORE__DAGS_FOLDER=ROOT / "dags",
               AIRFLOW__CORE__PLUGINS_FOLDER=ROOT / "plugins", AIRFLOW__CORE__LOAD_EXAMPLES="False",
               RECON_LAKE=work / "lake")
    t = time.time()
    subprocess.run([airflow, "db", "migrate"], env=env, check=True, capture_output=True, cwd=ROOT)
    migrate_s = round(time.time() - t, 1)
    db = fresh_database(admin, f"dag_{day.scale}")
    env["RECON_DATABASE_URL"] = db
    conf = {"tenant": day.tenant, "landing": day.landing}
    log(f"[bench] {day.scale:,}: reconcile_daily through airflow dags test ...")
    try:
        run = Measured([airflow, "dags", "test", "reconcile_daily", day.business_date, "-c", json.dumps(conf)],
                       work / "dag.log", env, timeout).run()
    finally:
        drop_database(admin, db)
    wall = round(run.ended - run.started, 2)
    text = run.log.read_text(errors="replace")
    finished = [line for line in text.splitlines() if "DagRun Finished" in line]
    out = {"dag_s": wall, "airflow_db_migrate_s_excluded": migrate_s, "peak_rss_gib": round(run.peak_rss / GIB, 2),
           "succeeded": run.returncode == 0 and bool(finished) and "state=success" in finished[-1]}
    if run.timed_out:
        out["error"] = f"stopped by the time limit of {timeout:.0f} s"
    tasks = []
    with sqlite3.connect(home / "airflow.db") as con:
        for task_id, map_index, start, end, state in con.execute(
                "SELECT task_id, map_index, start_date, end_date, state FROM task_instance "
                "WHERE dag_id = 'reconcile_daily' ORDER BY start_date"):
            seconds = None
            if start and end:
                seconds = (datetime.fromisoformat(str(end)) - datetime.fromisoformat(str(start))).total_seconds()
            tasks.append({"task_id": task_id, "map_index": map_index, "state": state,
                          "seconds": round(seconds, 2) if seconds is not None else None})
    task_s = round(sum(t["seconds"] or 0 for t in tasks), 2)
    out.update(tasks=tasks, task_s=task_s, orchestration_overhead_s=round(wall - task_s, 2))
    if not out["succeeded"]:
        out["log_tail"] = run.tail(20)
    return out


# ---------------------------------------------------------------------------------------- results
def machine() -> dict:
    mem = None
    try:
        with open("/proc/meminfo") as fh:
            mem = round(int(fh.readline().split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    import duckdb
    import pyspark

    cpu = platform.processor()
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return {"platform": platform.platform(), "cpu": cpu, "cpus": os.cpu_count(), "memory_gib": mem,
            "python": platform.python_version(), "pyspark": pyspark.__version__, "duckdb": duckdb.__version__,
            "load_average_at_start": list(os.getloadavg())}


def evaluate_targets(result: dict) -> list[dict]:
    scales = result.get("scales", {})
    s10, s1, s100k = scales.get("10000000", {}), scales.get("1000000", {}), scales.get("100000", {})
    pub = result.get("postgres_publish") or {}
    measured = {"ours_10m_s": s10.get("ours_s"), "ratio_10m": s10.get("ratio"), "ours_1m_s": s1.get("ours_s"),
                "ratio_1m": s1.get("ratio"), "ratio_100k": s100k.get("ratio"),
                "ours_1k_s": scales.get("1000", {}).get("ours_s"),     # a small day, one cold process
                "peak_rss_10m_gib": s10.get("peak_rss_gib") if s10.get("ours_s") else None,
                "publish_staging_rows_per_s": pub.get("staging_rows_per_s"),
                "publish_effective_rows_per_s": pub.get("effective_rows_per_s"), "dag_1m_s": result.get("dag_1m_s")}
    out = []
    for name, (op, target) in TARGETS.items():
        value = measured.get(name)
        row = {"name": name, "target": f"{op} {target:g}", "measured": value}
        unfinished = {"ours_10m_s": s10, "ratio_10m": s10, "ours_1m_s": s1}.get(name, {})
        if value is None and unfinished.get("ours_elapsed_s") and op == "<=":
            bound = unfinished["ours_elapsed_s"] if name != "ratio_10m" else unfinished.get("ratio_at_least")
            row["met"] = False if bound and bound > target else None
            row["measured"] = f"> {bound}" if bound else None
            row["note"] = f"not finished ({unfinished.get('ours_error')})"
            if row["met"] is False:
                row["missed_by"] = f"more than {bound / target:.1f}x the target; {row['note']}"
        elif value is None:
            row["met"] = None
            scale = TARGET_SCALE.get(name)
            not_run = ((scale and scale not in scales) or (name.startswith("publish") and not pub)
                       or (name == "dag_1m_s" and (result.get("dag") or {}).get("scale") != 1_000_000))
            row["note"] = "not run in this benchmark" if not_run else "not measured (see the scale's error)"
        else:
            row["met"] = value <= target if op == "<=" else value >= target
            if not row["met"]:
                row["missed_by"] = (f"{value / target:.2f}x the target (+{value - target:,.1f})" if op == "<="
                                    else f"{value / target:.2f}x the target ({value - target:,.0f})")
        out.append(row)
    return out


def _fmt(value, unit: str = "") -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.1f}{unit}" if value >= 10 else f"{value:,.2f}{unit}"
    if isinstance(value, int):
        return f"{value:,}{unit}"
    return str(value)


STAGES = ("process_start", "imports", "prepare", "land", "jvm_start", "parse", "match", "ledger")


def markdown(result: dict) -> str:
    m = result["machine"]
    lines = ["# End-to-end benchmark: our pipeline vs a DuckDB baseline", "",
             f"Written by `make bench` ({result['written']}). Machine: {m['cpus']} CPUs ({m['cpu']}), "
             f"{m['memory_gib']} GiB, Python {m['python']}, PySpark {m['pyspark']}, DuckDB {m['duckdb']} "
             "(Spark driver memory and shuffle partitions per scale in the stage table). "
             f"Load average at start {', '.join(f'{x:.2f}' for x in m['load_average_at_start'])}"
             + (" (the machine was shared with other work: figures are pessimistic)."
                if m["load_average_at_start"][0] > (m["cpus"] or 1) else "."), "",
             "Ours: one cold process (Python imports + JVM start included): land, parse, match, ledger into Delta. "
             "DuckDB: one cold process, same files, same rules (normalise, dedupe, L1/L2, payout <-> bank, journal "
             "legs), results kept in memory. n = book payment records of the day; rows = all records parsed "
             "(book + PSP + bank). Peak memory: PSS of the whole process tree (driver, JVM, Python workers), "
             "sampled every 0.5 s.", "",
             "| n (book payments) | rows | ours s | DuckDB s | ours / DuckDB | ours rows/s | DuckDB rows/s "
             "| peak memory ours GiB | peak memory DuckDB GiB | same matches + ledger |",
             "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |"]
    for n, s in sorted(result["scales"].items(), key=lambda kv: int(kv[0])):
        agree = s.get("agree", {}).get("all")
        lines.append(f"| {s.get('book_payments', int(n)):,} | {_fmt(s.get('records'))} | "
                     f"{_fmt(s.get('ours_s')) if s.get('ours_s') else 'not finished: ' + s.get('ours_error', '?')} | "
                     f"{_fmt(s.get('duckdb_s'))} | {_fmt(s.get('ratio')) if s.get('ratio') else ('> ' + str(s['ratio_at_least']) if s.get('ratio_at_least') else '-')} | {_fmt(s.get('rows_per_s'))} | "
                     f"{_fmt(s.get('duckdb_rows_per_s'))} | {_fmt(s.get('peak_rss_gib'))} | "
                     f"{_fmt(s.get('duckdb_peak_rss_gib'))} | "
                     f"{'yes' if agree else ('NO' if agree is False else '-')} |")
    lines += ["", "Wall time per stage (seconds):", "",
              "| n | Spark driver / shuffle partitions | " + " | ".join(STAGES) + " | publish (apart) | DuckDB startup "
              "| DuckDB normalise | DuckDB match | DuckDB ledger |", "| ---: | --- |" + " ---: |" * (len(STAGES) + 5)]
    for n, s in sorted(result["scales"].items(), key=lambda kv: int(kv[0])):
        st, ds = s.get("stages", {}), s.get("duckdb_stages", {})
        sp = s.get("spark") or {}
        conf = f"{sp['driver_memory']} / {sp['shuffle_partitions']}" if sp else "-"
        lines.append(f"| {int(n):,} | {conf} | " + " | ".join(_fmt(st.get(k)) for k in STAGES) + " | "
                     f"{_fmt((s.get('publish_stage') or {}).get('seconds'))} | "
                     + " | ".join(_fmt(ds.get(k)) for k in ("startup", "normalise", "match", "ledger")) + " |")
    for n, s in sorted(result["scales"].items(), key=lambda kv: int(kv[0])):
        if s.get("ours_error"):
            lines += ["", f"**{int(n):,}**: ours {s['ours_error']} after {s.get('ours_elapsed_s')} s; stages "
                      f"finished: {', '.join(s.get('ours_reached') or []) or 'none'}."]
        if s.get("stitched"):
            st = s["stitched"]
            lines += ["", f"**{int(n):,}**: stitched from two runs: land to parse timed in the run started "
                      f"{st.get('parse_run_started')} (which then stopped in match), match and ledger in a run resumed "
                      f"on its lake; ours = the sum of the stage times (the resumed process's own start, "
                      f"{_fmt(sum(st.get('resume_overhead_s', {}).values()))} s, not counted)."
                      + (f" {s['duckdb_note']}." if s.get("duckdb_note") else "")]
        if s.get("agree") and not s["agree"].get("all"):
            lines += ["", f"**{int(n):,}**: ours and DuckDB differ: "
                      + json.dumps({k: v for k, v in s["agree"].items() if k != 'all'})]
    profiled = [(n, s["profile"]) for n, s in sorted(result["scales"].items(), key=lambda kv: int(kv[0]))
                if isinstance(s.get("profile"), dict) and "error" not in s["profile"]]
    if profiled:
        lines += ["", "Where our time goes (Spark event log, `bench/eventlog.py`): Spark jobs per stage, wall time "
                  "with a job running, wall time with none (driver: planning, Delta commits and snapshots, Python, "
                  "PostgreSQL), executor task time, shuffle written and spilled to disk; the longest job:", "",
                  "| n | stage | wall s | jobs | job s | driver s | task s | shuffle GB | spill GB | longest job |",
                  "| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |"]
        for n, prof in profiled:
            for stage, f in prof.items():
                top = f["top_jobs"][0] if f.get("top_jobs") else None
                longest = f"{top['s']} s: `{top['site']}`" if top else "-"
                lines.append(f"| {int(n):,} | {stage} | {_fmt(f['wall_s'])} | {f['jobs']:,} | {_fmt(f['job_s'])} | "
                             f"{_fmt(f['driver_s'])} | {_fmt(f['task_s'])} | {f['shuffle_write_gb']} | "
                             f"{f['spill_disk_gb']} | {longest} |")
        for n, prof in profiled:
            for stage, f in prof.items():
                for k in f.get("skewed", [])[:2]:
                    lines.append(f"\nSkew at {int(n):,} in {stage}: stage {k['stage_id']} ({k['name']}), longest "
                                 f"task {k['max_task_s']} s against a median of {k['median_task_s']} s over "
                                 f"{k['tasks']} tasks.")
    pub = result.get("postgres_publish")
    if pub:
        lines += ["", "PostgreSQL publish (exceptions queue: psycopg COPY into the staging table, then the set-based "
                  "upsert into `exception_item`, primary key + index):", "",
                  "| rows | COPY into staging s | staging rows/s | upsert s | effective rows/s (COPY + upsert) "
                  "| rerun upsert s (all rows known) |", "| ---: | ---: | ---: | ---: | ---: | ---: |",
                  f"| {pub['rows']:,} | {pub['copy_s']} | {pub['staging_rows_per_s']:,} | {pub['upsert_s']} | "
                  f"{pub['effective_rows_per_s']:,} | {pub.get('rerun_upsert_s', '-')} |", "", pub.get("note", "")]
    dag = result.get("dag")
    if dag:
        lines += ["", f"`reconcile_daily` via `airflow dags test` at {dag.get('scale', 0):,}: "
                  f"{_fmt(dag.get('dag_s'))} s wall ({'succeeded' if dag.get('succeeded') else 'FAILED'}), of which "
                  f"tasks {_fmt(dag.get('task_s'))} s and orchestration {_fmt(dag.get('orchestration_overhead_s'))} s; "
                  "tasks: " + ", ".join(f"{t['task_id']} {_fmt(t['seconds'])}" for t in dag.get("tasks", [])) + "."]
    lines += ["", "Targets (reported, not asserted):", "", "| target | wanted | measured | met | missed by |",
              "| --- | --- | ---: | --- | --- |"]
    for t in result.get("targets", []):
        met = {True: "yes", False: "**no**", None: "-"}[t["met"]]
        lines.append(f"| {t['name']} | {t['target']} | {_fmt(t['measured'])} | {met} | {t.get('missed_by', t.get('note', ''))} |")
    if result.get("notes"):
        lines += ["", "Notes:", ""] + [f"* {n}" for n in result["notes"]]
    return "\n".join(lines) + "\n"


def write(result: dict, out_dir: Path = RESULTS) -> None:
    result["targets"] = evaluate_targets(result)
    out_dir.mkdir(parents=True, exist_ok=True)
    tmp = out_dir / "latest.json.tmp"
    tmp.write_text(json.dumps(result, indent=2, default=str) + "\n")
    tmp.replace(out_dir / "latest.json")
    (out_dir / "latest.md").write_text(markdown(result))


def load_previous(out_dir: Path = RESULTS) -> dict:
    try:
        return json.loads((out_dir / "latest.json").read_text())
    except (OSError, ValueError):
        return {}


# ---------------------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scales", default=",".join(map(str, DEFAULT_SCALES)), help="book payments a day, comma-separated")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--timeout", type=float, help="seconds per process (ours, DuckDB, the DAG); default by scale: "
                    "40 min up to 2.6M book payments, 0.9 ms per payment above (2.5 h at 10M)")
    ap.add_argument("--dag-scale", type=int, default=1_000_000, help="scale of the airflow dags test run (0: skip)")
    ap.add_argument("--publish-rows", type=int, default=1_000_000, help="rows of the PostgreSQL publish benchmark (0: skip)")
    ap.add_argument("--duckdb-memory-limit", help="DuckDB memory_limit (default: DuckDB's, 80%% of RAM)")
    ap.add_argument("--out", type=Path, default=RESULTS)
    ap.add_argument("--resume", action="store_true",
                    help="a scale whose last run stopped after parse (its lake kept) goes on from match; the figures "
                         "are stitched and say so")
    args = ap.parse_args(argv)
    scales = [int(s) for s in args.scales.split(",") if s.strip()]
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    previous = load_previous(args.out)
    result = {"machine": machine(), "written": datetime.now(timezone.utc).isoformat(timespec="seconds"),
              "seed": args.seed, "scales": dict(previous.get("scales", {})), "notes": list(previous.get("notes", [])),
              "postgres_publish_rows_per_s": previous.get("postgres_publish_rows_per_s"),
              "postgres_publish": previous.get("postgres_publish"), "dag_1m_s": previous.get("dag_1m_s"),
              "dag": previous.get("dag")}
    admin = admin_url()
    for scale in scales:
        day = prepare_day(scale, args.seed)
        earlier = result["scales"].get(str(scale)) or {}
        resume_from = earlier if args.resume and resumable(earlier, RUNS / str(scale)) else None
        result["scales"][str(scale)] = {"scale": scale, **run_scale(day, admin, args.timeout or default_timeout(scale),
                                                                        duckdb_memory_limit=args.duckdb_memory_limit,
                                                                        resume_from=resume_from)}
        write(result, args.out)
    if args.publish_rows:
        from bench.publish import publish_benchmark

        lakes = [s["lake"] for _, s in sorted(result["scales"].items(), key=lambda kv: -int(kv[0]))
                 if s.get("ours_s") and (ROOT / s.get("lake", "-")).exists()]
        if lakes:
            print(f"[bench] PostgreSQL publish: {args.publish_rows:,} exception rows ...", flush=True)
            pub = publish_benchmark(str(ROOT / lakes[0]), admin, args.publish_rows)
            result["postgres_publish"] = pub
            result["postgres_publish_rows_per_s"] = {"staging": pub["staging_rows_per_s"],
                                                     "effective": pub["effective_rows_per_s"]}
            write(result, args.out)
    if args.dag_scale:
        day = prepare_day(args.dag_scale, args.seed)
        dag = {"scale": args.dag_scale, "load_average_at_start": list(os.getloadavg()),
               **dag_run(day, admin, args.timeout or default_timeout(args.dag_scale))}
        result["dag"] = dag
        if args.dag_scale == 1_000_000:
            result["dag_1m_s"] = dag["dag_s"] if dag["succeeded"] else None
        write(result, args.out)
    print((args.out / "latest.md").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
