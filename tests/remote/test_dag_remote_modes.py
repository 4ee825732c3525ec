"""``airflow dags test reconcile_daily`` in each remote mode (EMR Serverless, EMR, Glue) against moto in server mode:
the Amazon provider's operators start one job per Spark stage, deferred (the triggers poll moto through
aiobotocore), each with the entry, the job archive, the JVM functions jar, Delta's settings and the ``recon stage``
arguments of its stage, tenant, day and run; ``recon_run`` says running while the jobs run and failed with the stage
when one fails. moto runs no Spark: it records the job runs and reports their state (an EMR cluster's steps are
finished here, by ``StepFinisher``, as the cluster would)."""
from __future__ import annotations

import json
import threading
from datetime import date

import pytest

from airflow_cli import AirflowCli, airflow_env
from conftest import write_tenant_config
from jobs.settings import Settings
from jobs.store.db import connect

pytestmark = pytest.mark.postgres
DAY = date(2026, 11, 20)
SPARK_STAGES = ["parse", "match", "ledger", "publish", "erp_export"]
CODE = "s3://recon-code/code"
REGION = "us-east-1"


class StepFinisher:
    """The EMR cluster's side in moto: a step that is pending or running is completed (or failed, for the steps
    named in ``fail``) three seconds later, the way a cluster would end it. moto keeps the state in this process."""

    def __init__(self, fail: tuple[str, ...] = ()):
        self.fail, self.stop = fail, threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        import time

        from moto.emr.models import emr_backends

        seen: dict[str, float] = {}
        while not self.stop.wait(0.5):
            for account in list(emr_backends):
                for cluster in list(emr_backends[account][REGION].clusters.values()):
                    for step in cluster.steps:
                        if step.state not in ("PENDING", "RUNNING"):
                            continue
                        # a step runs a few seconds: the sensor's first look finds it running and defers
                        if time.monotonic() - seen.setdefault(step.id, time.monotonic()) >= 3:
                            step.state = "FAILED" if any(f in step.name for f in self.fail) else "COMPLETED"

    def close(self) -> None:
        self.stop.set()
        self.thread.join()


@pytest.fixture(scope="module")
def aws(aws_endpoint):
    """An EMR Serverless application, an EMR cluster, a Glue job and the secrets, in moto."""
    import boto3

    def client(name):
        return boto3.client(name, endpoint_url=aws_endpoint, region_name=REGION)

    app = client("emr-serverless").create_application(name="psp-recon", releaseLabel="emr-7.5.0", type="SPARK")
    cluster = client("emr").run_job_flow(
        Name="psp-recon", ReleaseLabel="emr-7.5.0", JobFlowRole="EMR_EC2_DefaultRole", ServiceRole="EMR_DefaultRole",
        Instances={"MasterInstanceType": "m5.xlarge", "SlaveInstanceType": "m5.xlarge", "InstanceCount": 3,
                   "KeepJobFlowAliveWhenNoSteps": True})
    client("glue").create_job(Name="psp-recon", Role="arn:aws:iam::123456789012:role/psp-recon-job",
                              Command={"Name": "glueetl", "ScriptLocation": f"{CODE}/recon_entry.py",
                                       "PythonVersion": "3"}, GlueVersion="5.0")
    client("secretsmanager").create_secret(Name="psp-recon/database", SecretString="postgresql://job@db:5432/recon")
    client("s3").create_bucket(Bucket="recon-lake")                 # the worker writes the day's report there
    return {"endpoint": aws_endpoint, "app_id": app["applicationId"], "cluster_id": cluster["JobFlowId"],
            "client": client}


@pytest.fixture(scope="module")
def cli(airflow_home, aws, migrated_db, tmp_path_factory):
    env = airflow_env(airflow_home, RECON_DATABASE_URL=migrated_db)
    process = AirflowCli(env)
    yield process
    process.close()


def run_in_mode(cli, aws, mode: str, tenant: str, tenants_dir) -> tuple[int, str]:
    conn = {"conn_type": "aws", "login": "testing", "password": "testing",
            "extra": {"endpoint_url": aws["endpoint"], "region_name": REGION}}
    env = {
        "RECON_SPARK_MODE": mode, "RECON_TENANT_CONFIG_DIR": str(tenants_dir), "RECON_LAKE": "s3://recon-lake/lake",
        "RECON_CODE_URI": f"{CODE}/psp_recon_jobs.zip", "RECON_ENTRY_URI": f"{CODE}/recon_entry.py",
        "RECON_UDF_JAR_URI": f"{CODE}/psp-recon-udf.jar", "RECON_PII_SALT_SECRET_PREFIX": "psp-recon/pii-salt/",
        "RECON_DATABASE_SECRET": "psp-recon/database", "RECON_EMR_SERVERLESS_APP_ID": aws["app_id"],
        "RECON_EMR_EXECUTION_ROLE_ARN": "arn:aws:iam::123456789012:role/psp-recon-job",
        "RECON_EMR_CLUSTER_ID": aws["cluster_id"], "RECON_GLUE_JOB_NAME": "psp-recon",
        "RECON_REMOTE_POLL_SECONDS": "1", "RECON_REMOTE_MAX_WAIT_MINUTES": "2", "RECON_RECONCILE_RETRIES": "0",
        "AIRFLOW_CONN_AWS_DEFAULT": json.dumps(conn), "RECON_S3_ENDPOINT_URL": aws["endpoint"],
    }
    return cli.run("dags", "test", "reconcile_daily", DAY.isoformat(), "-c", json.dumps({"tenant": tenant}), env=env,
                   timeout=600)


def recon_job(args: list[str]) -> dict:
    return json.loads(args[args.index("--recon_job") + 1])


def assert_stage_job(job: dict, stage: str, tenant: str, mode: str) -> None:
    argv = job["argv"]
    assert argv[:2] == ["stage", stage] and argv[argv.index("--tenant") + 1] == tenant
    assert argv[argv.index("--business-date") + 1] == DAY.isoformat() and argv[-2:] == ["--no-record", "--recorded-config"]
    assert argv[argv.index("--run-id") + 1].startswith("manual__")
    assert job["env"]["RECON_SPARK_MODE"] == mode and job["env"]["RECON_LAKE"] == "s3://recon-lake/lake"
    assert job["env"]["RECON_DATABASE_SECRET"] == "psp-recon/database"
    assert job["env"]["RECON_PII_SALT_SECRET_PREFIX"] == "psp-recon/pii-salt/"
    assert "postgresql://" not in json.dumps(job)                 # the credentials stay in the secret


def assert_submit_parameters(args: list[str]) -> None:
    """spark-submit arguments of EMR / EMR Serverless: the archive, Delta's and our jars, Delta's SQL settings."""
    assert args[args.index("--py-files") + 1] == f"{CODE}/psp_recon_jobs.zip"
    jars = args[args.index("--jars") + 1].split(",")
    assert "/usr/share/aws/delta/lib/delta-spark.jar" in jars and f"{CODE}/psp-recon-udf.jar" in jars
    confs = [args[i + 1] for i, a in enumerate(args) if a == "--conf"]
    assert "spark.sql.extensions=io.delta.sql.DeltaSparkSessionExtension" in confs
    assert "spark.sql.catalog.spark_catalog=org.apache.spark.sql.delta.catalog.DeltaCatalog" in confs


def recorded(migrated_db, tenant: str) -> dict:
    from jobs.settings import Settings

    with connect(Settings(database_url=migrated_db), tenant) as conn:
        return conn.execute("SELECT status, run_id, summary FROM recon_run WHERE tenant_id = %s AND business_date = %s",
                            (tenant, DAY)).fetchone()


def finished_state(out: str) -> str:
    finished = [line for line in out.splitlines() if "DagRun Finished" in line]
    assert finished, out[-4000:]
    return finished[-1]


@pytest.mark.parametrize("mode", ["emr_serverless", "glue", "emr"])
def test_each_remote_mode_starts_one_job_per_spark_stage(cli, aws, migrated_db, tmp_path, mode):
    tenant = f"r{mode.replace('_', '')[:8]}"
    write_tenant_config(tmp_path / "tenants", tenant)
    finisher = StepFinisher() if mode == "emr" else None
    try:
        status, out = run_in_mode(cli, aws, mode, tenant, tmp_path / "tenants")
    finally:
        if finisher:
            finisher.close()
    assert status == 0 and "state=success" in finished_state(out), out[-4000:]
    assert "DEFERRED" in out or "Trigger completed" in out, "the waits ran as triggers"

    if mode == "emr_serverless":
        client = aws["client"]("emr-serverless")
        runs = [client.get_job_run(applicationId=aws["app_id"], jobRunId=r["id"])["jobRun"]
                for r in client.list_job_runs(applicationId=aws["app_id"])["jobRuns"]]
        ours = {r["name"]: r for r in runs if tenant in r["name"]}
        assert sorted(ours) == sorted(f"recon-{s}-{tenant}-{DAY}" for s in SPARK_STAGES)
        for stage in SPARK_STAGES:
            run = ours[f"recon-{stage}-{tenant}-{DAY}"]
            driver = run["jobDriver"]["sparkSubmit"]
            assert driver["entryPoint"] == f"{CODE}/recon_entry.py" and run["state"] == "SUCCESS"
            assert run["executionRole"] == "arn:aws:iam::123456789012:role/psp-recon-job"
            assert_submit_parameters(driver["sparkSubmitParameters"].split())
            assert_stage_job(recon_job(driver["entryPointArguments"]), stage, tenant, mode)
    elif mode == "glue":
        runs = aws["client"]("glue").get_job_runs(JobName="psp-recon")["JobRuns"]
        ours = {json.loads(r["Arguments"]["--recon_job"])["argv"][1]: r for r in runs
                if f'"{tenant}"' in r["Arguments"]["--recon_job"]}
        assert sorted(ours) == sorted(SPARK_STAGES)
        for stage, run in ours.items():
            args = run["Arguments"]
            assert run["JobRunState"] == "SUCCEEDED"
            assert args["--extra-py-files"] == f"{CODE}/psp_recon_jobs.zip"
            assert args["--extra-jars"] == f"{CODE}/psp-recon-udf.jar" and args["--datalake-formats"] == "delta"
            assert "spark.sql.extensions=io.delta.sql.DeltaSparkSessionExtension --conf " in args["--conf"]
            from importlib.metadata import version

            assert f"psycopg-binary=={version('psycopg-binary')}" in args["--additional-python-modules"].split(",")
            assert_stage_job(json.loads(args["--recon_job"]), stage, tenant, mode)
    else:
        steps = aws["client"]("emr").list_steps(ClusterId=aws["cluster_id"])["Steps"]
        ours = [s for s in reversed(steps) if tenant in s["Name"]]          # list_steps: newest first
        assert [s["Name"] for s in ours] == [f"recon-{s}-{tenant}-{DAY}" for s in SPARK_STAGES]
        for step, stage in zip(ours, SPARK_STAGES):
            args = step["Config"]["Args"]
            assert step["Status"]["State"] == "COMPLETED"
            assert args[:3] == ["spark-submit", "--deploy-mode", "cluster"] and f"{CODE}/recon_entry.py" in args
            assert_submit_parameters(args)
            assert_stage_job(recon_job(args), stage, tenant, mode)
    # The jobs ran nothing here (moto): the run is recorded as started by the DAG's tasks and never failed.
    run = recorded(migrated_db, tenant)
    assert run["status"] == "running" and run["run_id"].startswith("manual__") and not (run["summary"] or {}).get("error")
    # the worker's tasks beside the jobs: the outcome check and the report (on the S3 lake), in every mode
    page = aws["client"]("s3").get_object(Bucket="recon-lake", Key=f"lake/reports/tenant={tenant}/business_date={DAY}/"
                                                                     "reconciliation.html")["Body"].read()
    assert f"Reconciliation of {tenant} for {DAY}".encode() in page


def test_a_failed_step_marks_the_run_failed_with_its_stage(cli, aws, migrated_db, tmp_path):
    tenant = "remfail"
    write_tenant_config(tmp_path / "tenants", tenant)
    finisher = StepFinisher(fail=(f"recon-match-{tenant}",))
    try:
        status, out = run_in_mode(cli, aws, "emr", tenant, tmp_path / "tenants")
    finally:
        finisher.close()
    assert "state=failed" in finished_state(out), out[-4000:]
    run = recorded(migrated_db, tenant)
    assert run["status"] == "failed" and run["summary"]["failed_stage"] == "match", run
    steps = aws["client"]("emr").list_steps(ClusterId=aws["cluster_id"])["Steps"]
    assert not any(f"recon-ledger-{tenant}" in s["Name"] for s in steps)   # nothing after the failed stage started
    # the failed step's sensor alerted, with the tenant and date its job task knew; the failed run once more
    with connect(Settings(database_url=migrated_db), tenant) as conn:
        alerts = conn.execute("SELECT kind, priority, dedupe_key FROM alert WHERE tenant_id = %s ORDER BY alert_id",
                              (tenant,)).fetchall()
    assert [(a["kind"], a["priority"], a["dedupe_key"]) for a in alerts] == [
        ("task_failed", "P1", f"task_failed:{tenant}:reconcile_daily:{DAY}:reconcile.match[0]"),
        ("run_failed", "P1", f"run_failed:{tenant}:reconcile_daily:{DAY}")]
