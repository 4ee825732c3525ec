"""``airflow dags test ingest_hourly`` against the real servers, into a lake on S3 (moto), then the
reconcile DAG on the files it landed.

One tenant with six connectors: SFTP (one download cut off on the first try: Airflow retries it),
SFTP with wrong credentials (fails alone, visible as a failed mapped task labelled with the connector,
alerted through a Slack webhook connection), IMAP, the PSP list API (with 429s) and Stripe webhooks
received by the receiver process before the run.
"""
from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import pytest

from conftest import DATA, write_tenant_config
from .conftest import BUCKET, DAY, WHSEC
from .webhook_client import stripe_event, stripe_headers

pytestmark = pytest.mark.postgres
SLICE = DATA / "slice"
PROJECT = Path(__file__).resolve().parents[2]
AIRFLOW = Path(sys.executable).with_name("airflow")
LOGICAL = "2026-11-20T23:00:00+00:00"   # covers [22:00, 23:00): apart from the other API tests


@pytest.fixture(scope="module")
def airflow_env(tmp_path_factory, migrated_db, connections, s3_endpoint):
    """A throwaway AIRFLOW_HOME (migrated once) and the environment the DAGs run with."""
    home = tmp_path_factory.mktemp("airflow_home")
    env = {**os.environ, **connections,
           "AIRFLOW_HOME": str(home), "AIRFLOW__CORE__DAGS_FOLDER": str(PROJECT / "dags"),
           "AIRFLOW__CORE__LOAD_EXAMPLES": "False", "AIRFLOW__CORE__PLUGINS_FOLDER": str(PROJECT / "plugins"),
           "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
           "RECON_DATABASE_URL": migrated_db, "RECON_S3_ENDPOINT_URL": s3_endpoint, "RECON_S3_CONN_ID": "recon_s3",
           "RECON_INGEST_RETRIES": "2", "RECON_INGEST_RETRY_DELAY_SECONDS": "1",
           "RECON_ALERT_CONN_IDS": "recon_alert_slack"}
    subprocess.run([str(AIRFLOW), "db", "migrate"], env=env, check=True, capture_output=True, timeout=300)
    return env


@pytest.fixture(scope="module")
def ingest_run(airflow_env, tmp_path_factory, migrated_db, sftp_server, mail_server, psp_api, receiver):
    """Set up a tenant's connectors and sources, run the ingest DAG once; what the tests inspect."""
    from jobs.ingest.config import add_connector
    from jobs.pipeline import prepare
    from jobs.settings import Settings
    from jobs.store.db import connect

    tenant = f"dag{os.getpid() % 10000}{int(time.time()) % 100000}"
    config_dir = tmp_path_factory.mktemp("tenants")
    write_tenant_config(config_dir, tenant)
    settings = Settings(lake=f"s3://{BUCKET}/lake-{tenant}", database_url=migrated_db, tenant_config_dir=config_dir,
                        s3_endpoint_url=airflow_env["RECON_S3_ENDPOINT_URL"])
    env = {**airflow_env, "RECON_LAKE": settings.lake, "RECON_TENANT_CONFIG_DIR": str(config_dir)}
    prepare(settings, tenant)

    remote = sftp_server.root / tenant
    (remote / "archive").mkdir(parents=True)
    for name in ("stripe_payout_po_TEST1.csv", "settlement_detail_report_batch_7.csv",
                 "book_payments_2026-11-19.csv"):
        shutil.copy(SLICE / name, remote / name)
    sftp_server.cut_next_download("settlement_detail_report_batch_7.csv", after_bytes=500)
    mail_server.send("statements@bank.test", f"Statement {tenant}", {"camt053_2026-11-20.xml":
                                                                    (SLICE / "camt053_2026-11-20.xml").read_bytes()})
    end = int(datetime.fromisoformat(LOGICAL).timestamp())    # a manual run at 23:00 covers [22:00, 23:00)
    api_objects = psp_api.add_transactions(tenant, [end - 3000 + 100 * i for i in range(15)])
    psp_api.rate_limit_every = 3
    with connect(settings, tenant) as db:
        add = lambda cid, kind, **cfg: add_connector(db, tenant, cid, kind, cfg, actor="dag-test")  # noqa: E731
        add("psp-sftp", "sftp", source="stripe", conn_id="recon_sftp", remote_path=f"/{tenant}",
            patterns=["*.csv"], archive_path=f"/{tenant}/archive")
        add("old-sftp", "sftp", source="adyen", conn_id="recon_sftp_wrong", remote_path=f"/{tenant}")
        add("bank-mail", "imap", source="bank", conn_id="recon_imap", sender="statements@bank.test",
            subject=f"Statement {tenant}", attachment_patterns=["*.xml"])
        add("stripe-api", "api", source="stripe", conn_id="recon_psp_api", page_size=5, backoff_seconds=0.05,
            max_backoff_seconds=0.1, initial_lookback_hours=1)   # reads [21:00, 23:00)
        add("stripe-hooks", "webhook", source="stripe", provider="stripe", secret_conn_id="recon_stripe_whsec")
    import requests

    events = [stripe_event(f"evt_D{tenant[-6:]}{i:03d}", amount=1000 + i) for i in range(3)]
    for body in events:
        resp = requests.post(receiver.endpoint(tenant, "stripe-hooks"), data=body,
                             headers=stripe_headers(body, WHSEC), timeout=30)
        assert resp.status_code == 200, resp.text

    posts_before = len(psp_api.posts)
    started = time.monotonic()
    try:
        proc = subprocess.run([str(AIRFLOW), "dags", "test", "ingest_hourly", LOGICAL, "-c",
                               json.dumps({"tenant": tenant})], env=env, capture_output=True, text=True, timeout=600)
    finally:
        psp_api.rate_limit_every = 0
    output = proc.stdout + proc.stderr
    (tmp_path_factory.getbasetemp() / "ingest_hourly.log").write_text(output)
    with sqlite3.connect(Path(env["AIRFLOW_HOME"]) / "airflow.db") as adb:
        tis = adb.execute("SELECT task_id, map_index, rendered_map_index, state, try_number FROM task_instance "
                          "WHERE dag_id = 'ingest_hourly'").fetchall()
    return {"tenant": tenant, "settings": settings, "env": env, "output": output, "returncode": proc.returncode,
            "tis": tis, "events": events, "api_objects": api_objects, "alert_posts": psp_api.posts[posts_before:],
            "seconds": time.monotonic() - started}


def test_dag_run_lands_every_source_and_shows_the_failing_connector(ingest_run):
    from jobs import storage
    from jobs.landing import files_for_date
    from jobs.store.db import connect

    tenant, settings, output = ingest_run["tenant"], ingest_run["settings"], ingest_run["output"]
    states = {(task, label): (state, tries) for task, _, label, state, tries in ingest_run["tis"]}
    assert states[("ingest", f"{tenant}/old-sftp")][0] == "failed", output[-3000:]
    for connector in ("psp-sftp", "bank-mail", "stripe-api", "stripe-hooks"):
        assert states[("ingest", f"{tenant}/{connector}")][0] == "success", (connector, output[-5000:])
    assert states[("ingest", f"{tenant}/psp-sftp")][1] == 2                  # the cut-off download, retried
    assert states[("ingest", f"{tenant}/old-sftp")][1] == 1                  # wrong credentials: no retries
    assert "the SFTP server refused the credentials of Airflow connection 'recon_sftp_wrong'" in output
    assert "DagRun Finished" in output and "state=failed" in output

    with connect(settings, tenant) as db:
        landed = files_for_date(db, tenant, DAY)
        runs = db.execute("SELECT connector_id, try_number, status, error FROM connector_run WHERE tenant_id = %s "
                          "ORDER BY run_pk", (tenant,)).fetchall()
        alerts = db.execute("SELECT connector_id, kind, priority, delivered_via, message, detail FROM alert "
                            "WHERE tenant_id = %s ORDER BY alert_id", (tenant,)).fetchall()
    by_name = {f.file_name: f for f in landed}
    stripe_events = [n for n in by_name if n.startswith("stripe_events_")]
    assert set(by_name) == {"stripe_payout_po_TEST1.csv", "settlement_detail_report_batch_7.csv",
                            "book_payments_2026-11-19.csv", "camt053_2026-11-20.xml",
                            "stripe_balance_transactions_20261120T230000Z_001.jsonl", *stripe_events}
    assert len(stripe_events) == 1
    assert {f.received_date for f in landed} == {DAY}
    assert all(f.raw_uri.startswith(f"s3://{BUCKET}/lake-{tenant}/raw/tenant={tenant}/source=") for f in landed)
    assert by_name["camt053_2026-11-20.xml"].format == "bank.camt053"
    assert storage.read_bytes(settings, by_name["settlement_detail_report_batch_7.csv"].raw_uri) == \
        (SLICE / "settlement_detail_report_batch_7.csv").read_bytes()
    event_lines = storage.read_bytes(settings, by_name[stripe_events[0]].raw_uri).decode().splitlines()
    assert [json.loads(line)["id"] for line in event_lines] == [json.loads(e)["id"] for e in ingest_run["events"]]
    api_lines = storage.read_bytes(settings, by_name["stripe_balance_transactions_20261120T230000Z_001.jsonl"].raw_uri)
    assert sorted(json.loads(line)["id"] for line in api_lines.decode().splitlines()) == \
        sorted(o["id"] for o in ingest_run["api_objects"])

    assert [(r["connector_id"], r["try_number"], r["status"]) for r in runs if r["connector_id"] == "psp-sftp"] == [
        ("psp-sftp", 1, "failed"), ("psp-sftp", 2, "succeeded")]
    # the connector's alert, and the failed task's from its on_failure_callback (with the connector's tenant, read
    # from the mapped task's argument)
    assert [(a["connector_id"], a["kind"], a["priority"], a["delivered_via"]) for a in alerts] == [
        ("old-sftp", "connector_failed", "P2", ["recon_alert_slack"]),
        (None, "task_failed", "P1", ["recon_alert_slack"])]
    failed = alerts[1]
    assert failed["message"].startswith(f"{tenant}: task ingest_hourly.ingest failed for {DAY} (run manual__")
    assert "AirflowFailException: " in failed["message"] and "recon_sftp_wrong" in failed["message"]
    assert (failed["detail"]["task_id"], failed["detail"]["try_number"]) == ("ingest", 1)
    assert any(b"old-sftp" in body for _, body in ingest_run["alert_posts"])
    print(f"ingest_hourly ran in {ingest_run['seconds']:.0f} s")


@pytest.mark.e2e
def test_the_reconcile_dag_parses_what_the_ingest_dag_landed(ingest_run):
    """reconcile_daily for the business date, on the S3 lake: its land and parse tasks run for real (Spark
    reading s3a://, Delta on S3); match, ledger and publish are marked done to keep the test short (they
    have their own end-to-end test on a local lake)."""
    from jobs.store.db import connect

    tenant, settings = ingest_run["tenant"], ingest_run["settings"]
    conf = {"tenant": tenant, "business_date": DAY.isoformat()}
    proc = subprocess.run([str(AIRFLOW), "dags", "test", "reconcile_daily", DAY.isoformat(), "-c", json.dumps(conf),
                           "--mark-success-pattern", r"reconcile\.(match|ledger|publish)"],
                          env=ingest_run["env"], capture_output=True, text=True, timeout=900)
    output = proc.stdout + proc.stderr
    assert "DagRun Finished" in output and "state=success" in output, output[-5000:]
    with connect(settings, tenant) as db:
        files = {r["file_name"]: r for r in db.execute(
            "SELECT file_name, format, records_loaded, records_quarantined, parsed_at FROM raw_file "
            "WHERE tenant_id = %s", (tenant,)).fetchall()}
    assert all(f["parsed_at"] is not None for f in files.values()), files
    assert files["stripe_payout_po_TEST1.csv"]["records_loaded"] == 5
    assert files["book_payments_2026-11-19.csv"]["records_loaded"] == 7
    assert files["settlement_detail_report_batch_7.csv"]["records_loaded"] > 0
    assert files["camt053_2026-11-20.xml"]["records_loaded"] > 0
