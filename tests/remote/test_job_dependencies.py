"""What a remote job needs besides the runtime's PySpark, py4j and Delta: every third-party package the job code
imports (module level or inside a function) is in ``jobs.remote.JOB_PACKAGES``, which the EMR Serverless image
installs (``make package``: dist/job-requirements.txt, pinned to this environment's versions, and the Dockerfile)
and Glue installs per run (what Glue 5.0 lacks). The code only the Airflow worker runs is not job code."""
from __future__ import annotations

import ast
import subprocess
import sys
from importlib.metadata import packages_distributions, version
from pathlib import Path

from jobs import remote

ROOT = Path(__file__).parents[2]
# Worker-only code: ingestion (Airflow hooks), the generator, the local environment, the demo, the DAGs' helpers,
# the alerts (Airflow notifiers; the thresholds jobs.tenants validates, alerts/outcomes.py, import nothing else), the
# evidence packs, the daily report and the StatsD export (the worker's, or an operator's command).
NOT_JOB_CODE = ("ingest", "generate", "localenv", "demo.py", "runner.py", "remote.py", "catalog.py", "evaluate.py",
                "alerts", "evidence.py", "daily_report.py", "metrics.py")
RUNTIME = {"pyspark", "py4j", "delta-spark"}
# Imports a job never reaches: storage.py uses the Amazon provider's S3Hook only when RECON_S3_CONN_ID names an Airflow
# connection (the worker; a job gets boto3's default credentials). lake.py uses delta-rs only for a local lake's tables
# (a job on EMR or Glue works on an S3 lake, whose tables Spark creates).
WORKER_ONLY = {("storage.py", "airflow"), ("lake.py", "deltalake")}


def job_imports() -> dict[str, set[str]]:
    """Distribution -> the job modules that import it."""
    dists = packages_distributions()
    found: dict[str, set[str]] = {}
    for path in (ROOT / "jobs").rglob("*.py"):
        rel = path.relative_to(ROOT / "jobs")
        if rel.parts[0] in NOT_JOB_CODE:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module] if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module else [])
            for name in names:
                top = name.split(".")[0]
                if top in sys.stdlib_module_names or top == "jobs" or (str(rel), top) in WORKER_ONLY:
                    continue
                for dist in dists.get(top, [top]):
                    found.setdefault(dist, set()).add(str(rel))
    return found


def test_every_package_the_job_code_imports_is_installed_for_the_jobs():
    imported = job_imports()
    assert {"psycopg", "PyYAML", "pyarrow", "boto3"} <= set(imported)           # the scan sees lazy imports too
    missing = {d: sorted(w) for d, w in imported.items() if d not in RUNTIME and d not in remote.JOB_PACKAGES}
    assert not missing, f"imported by job code but not in jobs.remote.JOB_PACKAGES: {missing}"
    unused = set(remote.JOB_PACKAGES) - set(imported) - {"psycopg-binary", "botocore"}   # psycopg's C build; boto3's
    assert not unused, f"in JOB_PACKAGES but imported by no job code: {unused}"


def test_the_package_pins_them_for_the_image_and_glue_installs_what_it_lacks(tmp_path):
    subprocess.run([sys.executable, str(ROOT / "infra" / "emr" / "build_package.py"), "--out", str(tmp_path)],
                   check=True, capture_output=True)
    pinned = (tmp_path / "job-requirements.txt").read_text().split()
    assert pinned == [f"{name}=={version(name)}" for name in remote.JOB_PACKAGES]
    dockerfile = (tmp_path / "Dockerfile").read_text()
    assert "python3.11 -m pip install --no-cache-dir -r /tmp/job-requirements.txt" in dockerfile
    from datetime import date

    from jobs.settings import Settings

    glue = remote.render(Settings(spark_mode="glue", lake="s3://l/lake", glue_job_name="j", code_uri="s3://c/a.zip",
                                  entry_uri="s3://c/e.py", udf_jar_uri="s3://c/u.jar", pii_salt_secret_prefix="p/",
                                  database_secret="d"),
                         "parse", "acme", date(2026, 11, 20), "r")["script_args"]["--additional-python-modules"]
    assert sorted(glue.split(",")) == sorted(p for p in pinned if p.split("==")[0] not in remote.GLUE_PROVIDED)
    serverless = remote.render(Settings(spark_mode="emr_serverless", lake="s3://l/lake", emr_serverless_app_id="a",
                                        emr_execution_role_arn="r", code_uri="s3://c/a.zip", entry_uri="s3://c/e.py",
                                        udf_jar_uri="s3://c/u.jar", pii_salt_secret_prefix="p/", database_secret="d"),
                               "parse", "acme", date(2026, 11, 20), "r")["job_driver"]["sparkSubmit"]
    assert f"spark.emr-serverless.driverEnv.PYSPARK_PYTHON={remote.JOB_PYTHON}" in serverless["sparkSubmitParameters"]
