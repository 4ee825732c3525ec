"""The packaged job runs a real stage the way EMR starts it: ``make package``'s archive, entry script and JVM functions
jar through ``spark-submit``, with the arguments ``jobs.remote`` renders for an EMR step (only what differs on this
machine changed: the local master and client mode, Delta's jars from the local jar folder instead of the runtime's,
this machine's Python instead of the image's, no Spark UI), reading its PII salt and its database URL from Secrets
Manager (moto) and nothing else from this process (its tenant configuration is the one recorded in PostgreSQL), on S3
(moto, through s3a). Its output equals the in-process parse of the same files. A remote job is never given a local
lake (it would write to the cluster's disks): refused before it is submitted."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
from datetime import date
from pathlib import Path

import pytest

from conftest import DATA, use_s3a, write_tenant_config
from jobs import lake, remote
from jobs.landing import land_file
from jobs.pipeline import prepare, stage_parse
from jobs.settings import ConfigurationError
from jobs.store.db import connect, connect_platform

pytestmark = [pytest.mark.spark, pytest.mark.postgres]
DAY = date(2026, 11, 20)
SLICE = DATA / "slice"
SALT_PREFIX = "psp-recon-test/pii-salt/"
BUCKET = "psp-recon-job-lake"


@pytest.fixture(scope="module")
def package(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    subprocess.run([sys.executable, str(Path(__file__).parents[2] / "infra" / "emr" / "build_package.py"), "--out",
                    str(out)], check=True, capture_output=True)
    return out


@pytest.fixture(scope="module")
def aws(aws_endpoint, migrated_db):
    import boto3

    boto3.client("s3", endpoint_url=aws_endpoint).create_bucket(Bucket=BUCKET)
    secrets = boto3.client("secretsmanager", endpoint_url=aws_endpoint)
    secrets.create_secret(Name="psp-recon-test/database", SecretString=migrated_db)
    return {"endpoint": aws_endpoint, "secrets": secrets}


def spark_submit(settings, package: Path, tenant: str, run_id: str) -> list[str]:
    """The EMR step's spark-submit command for parsing ``tenant``'s day, as ``jobs.remote.render`` writes it."""
    emr = settings.with_(spark_mode="emr", emr_cluster_id="j-local", code_uri=str(package / "psp_recon_jobs.zip"),
                         entry_uri=str(package / "recon_entry.py"), udf_jar_uri=str(package / "psp-recon-udf.jar"),
                         database_secret="psp-recon-test/database", pii_salt_secret_prefix=SALT_PREFIX,
                         database_url=None)
    args = remote.render(emr, "parse", tenant, DAY, run_id)["steps"][0]["HadoopJarStep"]["Args"]
    assert args[:3] == ["spark-submit", "--deploy-mode", "cluster"]
    args = args[3:]
    jars = args.index("--jars") + 1
    runtime = [str(p) for p in sorted(settings.jars_dir.glob("*.jar")) if "psp-recon-udf" not in p.name]
    args[jars] = ",".join([j for j in args[jars].split(",") if j not in remote.EMR_DELTA_JARS] + runtime)
    args = [a.replace(remote.JOB_PYTHON, sys.executable) for a in args]     # this machine's Python, not the image's
    return [str(Path(sys.executable).with_name("spark-submit")), "--master", "local[2]", "--conf",
            "spark.ui.enabled=false", "--conf", "spark.driver.bindAddress=127.0.0.1", *args]


def land_slice(settings, tenant: str) -> None:
    write_tenant_config(settings.tenant_config_dir, tenant)
    prepare(settings, tenant)
    with connect(settings, tenant) as conn:
        for path in sorted(SLICE.iterdir()):
            assert land_file(settings, conn, tenant, DAY, path).outcome == "landed"


def table_rows(spark, settings, name: str, tenant: str) -> list[tuple]:
    df = spark.read.format("delta").load(lake.table_path(settings, name))
    cols = [c for c in df.columns if c != "tenant_id"]
    return sorted(tuple(str(r[c]) for c in cols) for r in df.where(f"tenant_id = '{tenant}'").collect())


def test_a_job_on_a_lake_it_cannot_see_is_refused_before_it_is_submitted(settings, tmp_path):
    """A remote job runs on the cluster's machines: a local lake would be written to their disks, not this one's."""
    emr = settings.with_(spark_mode="emr", emr_cluster_id="j-1", code_uri="s3://c/a.zip", entry_uri="s3://c/e.py",
                         udf_jar_uri="s3://c/u.jar", pii_salt_secret_prefix=SALT_PREFIX, database_secret="d",
                         database_url=None, lake=str(tmp_path / "lake"))
    refused = re.escape(f"RECON_SPARK_MODE=emr needs a lake on S3 (RECON_LAKE=s3://...), not {tmp_path}/lake: "
                        "a job on EMR or Glue cannot see")
    with pytest.raises(ConfigurationError, match=refused):
        remote.render(emr, "parse", "acme", DAY, "r")
    assert remote.render(emr.with_(lake="s3a://bucket/lake"), "parse", "acme", DAY, "r")["steps"]


def test_the_packaged_job_parses_as_the_in_process_stage_does(spark, settings, tmp_path, package, aws):
    salt = "0123456789abcdef-s3"
    job_tenant, local_tenant = f"jobs3{os.getpid() % 1000}", f"inps3{os.getpid() % 1000}"
    for tenant in (job_tenant, local_tenant):
        aws["secrets"].create_secret(Name=SALT_PREFIX + tenant, SecretString=salt)
    base = settings.with_(tenant_config_dir=tmp_path / "tenants", aws_endpoint_url=aws["endpoint"],
                          pii_salt_secret_prefix=SALT_PREFIX)
    base = base.with_(lake=f"s3://{BUCKET}/lake", s3_endpoint_url=aws["endpoint"])
    use_s3a(spark, base)
    land_slice(base, job_tenant)
    land_slice(base, local_tenant)

    # The job: its environment is the cluster's (AWS credentials and endpoints), its settings come from --recon_job.
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECON_")}
    env.update({"RECON_AWS_ENDPOINT_URL": aws["endpoint"], "SPARK_LOCAL_IP": "127.0.0.1",
                "PYSPARK_PYTHON": sys.executable})            # no configuration folder: the recorded configuration
    env["RECON_S3_ENDPOINT_URL"] = aws["endpoint"]
    command = spark_submit(base, package, job_tenant, "manual__packaged")
    job = json.loads(command[command.index("--recon_job") + 1])
    assert job["env"]["RECON_LAKE"] == base.lake and "RECON_DATABASE_URL" not in job["env"]
    run = subprocess.run(command, env=env, capture_output=True, text=True, cwd=tmp_path, timeout=900)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-6000:]
    log = run.stdout + run.stderr                  # spark-submit merges the Python driver's stderr into its stdout
    origin = log.split("psp-recon: jobs from ", 1)[1].splitlines()[0] if "psp-recon: jobs from " in log else ""
    assert origin.startswith(tempfile.gettempdir()) and "psp-recon-" in origin, "the job ran the archive's code"
    report = json.loads([line for line in run.stdout.splitlines() if line.startswith("{")][-1])
    assert report["files"] == len(list(SLICE.iterdir())) and report["records_loaded"] > 0

    stage_parse(spark, base, local_tenant, DAY)                   # the same files, in this process
    for name in ("events", "quarantine", "file_stats"):
        ours, theirs = table_rows(spark, base, name, job_tenant), table_rows(spark, base, name, local_tenant)
        assert ours == theirs and (ours or name == "quarantine"), name
    with connect_platform(base) as conn:                          # two tenants: the cross-tenant reader
        parsed = conn.execute("SELECT tenant_id, count(*) FILTER (WHERE parsed_at IS NOT NULL) AS parsed, "
                              "sum(records_loaded) AS loaded FROM raw_file WHERE tenant_id IN (%s, %s) "
                              "GROUP BY tenant_id", (job_tenant, local_tenant)).fetchall()
    assert len(parsed) == 2 and parsed[0]["parsed"] == parsed[1]["parsed"] == len(list(SLICE.iterdir()))
    assert parsed[0]["loaded"] == parsed[1]["loaded"] > 0
