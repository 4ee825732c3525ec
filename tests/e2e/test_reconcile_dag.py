"""End to end: generated days through the real pipeline, the last day through Airflow's reconcile_daily
DAG (`airflow dags test`), scored against the generator's ground truth; a rerun changes nothing."""
import json
from datetime import date, timedelta
from pathlib import Path

import pytest

from airflow_cli import AirflowCli, airflow_env
from analyst_views import assert_views_agree
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


def counts(spark, settings, tenant) -> dict:
    out = {name: lake.read(spark, settings, name, tenant).count() for name in lake.TABLES}
    with connect(settings, tenant) as conn:
        for table in ("raw_file", "raw_file_delivery", "recon_run", "run_metric", "exception_item", "dispute",
                      "dispute_event", "erp_export_batch"):
            out[table] = conn.execute(f"SELECT count(*) AS n FROM {table} WHERE tenant_id = %s", (tenant,)).fetchone()["n"]
    return out


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
    with connect(settings, tenant_id) as conn:
        run = conn.execute("SELECT status, summary, run_id FROM recon_run WHERE tenant_id = %s AND business_date = %s",
                           (tenant_id, END)).fetchone()
    assert run["status"] == "succeeded" and run["run_id"].startswith("manual__") and run["summary"]["ledger_balanced"]
    # ... and its erp_export task wrote one batch per configured ERP for the day, with the day's journals.
    with connect(settings, tenant_id) as conn:
        erps = conn.execute("SELECT erp, period, documents FROM erp_export_batch WHERE tenant_id = %s ORDER BY erp",
                            (tenant_id,)).fetchall()
    assert [(b["erp"], b["period"]) for b in erps] == [(e, END.isoformat()) for e in ("netsuite", "quickbooks", "sap")]
    assert all(b["documents"] > 100 for b in erps), erps

    # The analysts' views (sql/athena, as Athena would run them) give the run's figures over this lake.
    assert_views_agree(settings, tenant_id, END)

    # Real Delta tables: another Delta reader (delta-rs) sees the same rows as Spark.
    from deltalake import DeltaTable

    events = DeltaTable(lake.table_path(settings, "events"))
    assert events.to_pyarrow_table().num_rows == lake.read(spark, settings, "events").count()

    before = counts(spark, settings, tenant_id)
    run_dag(cli, tenant_id, END, landing / END.isoformat())         # the DAG again, same date and files
    assert counts(spark, settings, tenant_id) == before
