"""End to end: generated days through the real pipeline, the last day through Airflow's reconcile_daily
DAG (`airflow dags test`), scored against the generator's ground truth; a rerun changes nothing."""
import json
import os
import queue
import subprocess
import sys
import threading
import time
from datetime import date, timedelta
from pathlib import Path

import pytest

from jobs import lake
from jobs.evaluate import evaluate
from jobs.export import export
from jobs.generate.core import generate
from jobs.pipeline import run_all
from jobs.store.db import connect

pytestmark = [pytest.mark.e2e, pytest.mark.spark, pytest.mark.postgres]
END = date(2026, 11, 20)
DAYS = [END - timedelta(days=2), END - timedelta(days=1), END]
REPO = Path(__file__).parents[2]


@pytest.fixture(scope="module")
def airflow_home(tmp_path_factory):
    home = tmp_path_factory.mktemp("airflow_home")
    env = airflow_env(home)
    subprocess.run([str(Path(sys.executable).with_name("airflow")), "db", "migrate"], env=env, check=True,
                   capture_output=True)
    return home


def airflow_env(home: Path, **extra) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW__")}
    env.update({"AIRFLOW_HOME": str(home), "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
                "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO / "plugins"), "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                **extra})
    return env


def counts(spark, settings, tenant) -> dict:
    out = {name: lake.read(spark, settings, name, tenant).count() for name in lake.TABLES}
    with connect(settings) as conn:
        for table in ("raw_file", "raw_file_delivery", "recon_run", "run_metric", "exception_item", "dispute",
                      "dispute_event", "erp_export_batch"):
            out[table] = conn.execute(f"SELECT count(*) AS n FROM {table} WHERE tenant_id = %s", (tenant,)).fetchone()["n"]
    return out


# Airflow's own command-line entry point, called once per line of JSON arguments read from stdin: the DAG run and
# its rerun are two `airflow dags test` commands of one process, so the rerun finds the Spark session the first
# run started (a second cold process cost the test about a minute of JVM start and JIT warm-up).
CLI_LOOP = r"""
import json, sys, traceback
from airflow.__main__ import main
for line in sys.stdin:
    sys.argv = ["airflow", *json.loads(line)]
    status = 0
    try:
        main()
    except SystemExit as exc:
        status = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BaseException:
        traceback.print_exc()
        status = 1
    print(f"\n{MARK} {status}", flush=True)
"""
MARK = "@@ airflow command exited with"


class AirflowCli:
    """One Airflow CLI process (``airflow.__main__.main``) that runs the commands it is given in turn."""

    def __init__(self, env: dict):
        self.proc = subprocess.Popen([sys.executable, "-c", f"MARK = {MARK!r}\n" + CLI_LOOP], env=env,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     text=True)
        self.lines: queue.Queue = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        """Every output line into the queue (read by a thread, so that the pipe never fills), then None."""
        for line in self.proc.stdout:
            self.lines.put(line)
        self.lines.put(None)

    def run(self, *args: str, timeout: float = 1200) -> tuple[int, str]:
        """(exit status, output) of ``airflow <args>``."""
        self.proc.stdin.write(json.dumps(list(args)) + "\n")
        self.proc.stdin.flush()
        out, deadline = [], time.monotonic() + timeout
        while True:
            try:
                line = self.lines.get(timeout=max(1.0, deadline - time.monotonic()))
            except queue.Empty:
                self.proc.kill()
                raise AssertionError(f"airflow {' '.join(args[:3])} still running after {timeout:.0f} s: "
                                     + "".join(out)[-4000:]) from None
            if line is None:
                raise AssertionError("the Airflow CLI process ended: " + "".join(out)[-4000:])
            if line.startswith(MARK):
                return int(line[len(MARK):]), "".join(out)
            out.append(line)

    def close(self) -> None:
        self.proc.stdin.close()
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def run_dag(cli: AirflowCli, tenant: str, day: date, landing: Path) -> str:
    conf = {"tenant": tenant, "landing": str(landing)}
    status, out = cli.run("dags", "test", "reconcile_daily", day.isoformat(), "-c", json.dumps(conf))
    finished = [line for line in out.splitlines() if "DagRun Finished" in line]
    assert status == 0 and finished and "state=success" in finished[-1], out[-4000:]
    return finished[-1]


def test_generated_days_through_the_dag_match_the_ground_truth(spark, settings, tenant_id, tmp_path, airflow_home,
                                                                 request):
    data = tmp_path / "generated"
    generate(data, seed=7, end_date=END, days=len(DAYS), payments_per_day=250, tenants=[tenant_id], noise="high")
    landing = data / tenant_id / "landing"
    for day in DAYS[:-1]:
        run_all(settings, tenant_id, day, landing / day.isoformat(), f"pytest-{day}", spark=spark)
    cli = AirflowCli(airflow_env(airflow_home, RECON_LAKE=settings.lake, RECON_DATABASE_URL=settings.database_url,
                                 RECON_TENANT_CONFIG_DIR=str(settings.tenant_config_dir)))
    request.addfinalizer(cli.close)
    run_dag(cli, tenant_id, END, landing / END.isoformat())

    export(settings, tenant_id, "matches", tmp_path / "matches.csv")
    export(settings, tenant_id, "exceptions", tmp_path / "exceptions.csv")
    score = evaluate(data / tenant_id / "truth", tmp_path / "matches.csv", tmp_path / "exceptions.csv", END)
    report = json.dumps(score.as_dict(), indent=1)
    assert score.relations["book_psp"].made > 250, report
    assert score.relations["book_psp"].precision == 1.0, (score.false_pairs[:5], report)
    assert score.relations["payout_bank"].precision == 1.0, (score.false_pairs[:5], report)
    assert score.relations["book_psp"].recall >= 0.995, (score.missed_pairs[:5], report)
    assert score.relations["payout_bank"].recall >= 0.995, (score.missed_pairs[:5], report)
    assert score.reasons_expected > 10 and score.reason_accuracy >= 0.98, report

    # The summary an operator sees is the one stored in PostgreSQL by the DAG's publish task.
    with connect(settings) as conn:
        run = conn.execute("SELECT status, summary, run_id FROM recon_run WHERE tenant_id = %s AND business_date = %s",
                           (tenant_id, END)).fetchone()
    assert run["status"] == "succeeded" and run["run_id"].startswith("manual__") and run["summary"]["ledger_balanced"]
    # ... and its erp_export task wrote one batch per configured ERP for the day, with the day's journals.
    with connect(settings) as conn:
        erps = conn.execute("SELECT erp, period, documents FROM erp_export_batch WHERE tenant_id = %s ORDER BY erp",
                            (tenant_id,)).fetchall()
    assert [(b["erp"], b["period"]) for b in erps] == [(e, END.isoformat()) for e in ("netsuite", "quickbooks", "sap")]
    assert all(b["documents"] > 100 for b in erps), erps

    # Real Delta tables: another Delta reader (delta-rs) sees the same rows as Spark.
    from deltalake import DeltaTable

    events = DeltaTable(lake.table_path(settings, "events"))
    assert events.to_pyarrow_table().num_rows == lake.read(spark, settings, "events").count()

    before = counts(spark, settings, tenant_id)
    run_dag(cli, tenant_id, END, landing / END.isoformat())         # the DAG again, same date and files
    assert counts(spark, settings, tenant_id) == before
