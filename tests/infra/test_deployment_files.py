"""Deployment artefacts: the EMR / Glue job archive runs the CLI, docker-compose is consistent with the repository
(Terraform: test_terraform.py)."""
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).parents[2]


def test_job_archive_runs_the_cli_from_an_unpacked_copy(tmp_path):
    build = subprocess.run([sys.executable, str(ROOT / "infra" / "emr" / "build_package.py"), "--out", str(tmp_path)],
                           capture_output=True, text=True, check=True)
    assert Path(build.stdout.strip()).name == "psp_recon_jobs.zip"
    import zipfile

    names = zipfile.ZipFile(tmp_path / "psp_recon_jobs.zip").namelist()
    assert "jobs/cli.py" in names and "sql/migrations/V001__core.sql" in names and "jobs/conf/tenants/acme.yaml" in names
    assert not any("__pycache__" in n for n in names)
    jars = list(tmp_path.glob("*.jar"))                           # the JVM functions the parse stage calls
    assert [j.name for j in jars] == ["psp-recon-udf.jar"]
    assert "psp/recon/MaskCardNumbers.class" in zipfile.ZipFile(jars[0]).namelist()
    # Run the entry script without site-packages (-S: no editable install), so only the archive provides the code.
    run = subprocess.run([sys.executable, "-S", str(tmp_path / "recon_entry.py"), "stage", "--help"], cwd=tmp_path,
                         capture_output=True, text=True, env={"PATH": "/usr/bin:/bin", "PYTHONPATH": ""})
    assert run.returncode == 0, run.stderr
    assert "parse" in run.stdout and "--business-date" in run.stdout

    # As Glue starts it: its own job arguments around ours, the CLI's arguments in one JSON value (job_payload)
    from jobs.remote import job_payload
    from jobs.settings import Settings

    payload = job_payload(["stage", "--help"], Settings(spark_mode="glue", pii_salt_secret_prefix="recon/salt/"))
    glue = ["--JOB_ID", "j_1", "--recon_job", payload, "--JOB_RUN_ID", "jr_1", "--job-bookmark-option",
            "job-bookmark-disable", "--JOB_NAME", "psp-recon"]
    run = subprocess.run([sys.executable, "-S", str(tmp_path / "recon_entry.py"), *glue], cwd=tmp_path,
                         capture_output=True, text=True, env={"PATH": "/usr/bin:/bin", "PYTHONPATH": ""})
    assert run.returncode == 0, run.stderr
    assert "parse" in run.stdout and "--business-date" in run.stdout


def test_the_entry_reads_the_job_and_its_settings_from_one_json_argument():
    import importlib.util

    from jobs.remote import job_payload, stage_argv
    from jobs.settings import ConfigurationError, Settings

    spec = importlib.util.spec_from_file_location("recon_entry", ROOT / "infra" / "emr" / "recon_entry.py")
    entry = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(entry)
    from datetime import date

    for mode in ("emr_serverless", "emr", "glue"):
        settings = Settings(spark_mode=mode, lake="s3://lake/x", pii_salt_secret_prefix="recon/salt/",
                            database_secret="recon/db", database_url="postgresql://worker@127.0.0.1/recon", spark_conf="")
        argv = stage_argv("parse", "acme", date(2026, 11, 20), "manual__2026-11-20 run")
        env, cli = entry.job_arguments(["--JOB_ID", "j", f"--recon_job={job_payload(argv, settings)}", "--x", "y"])
        assert cli == argv and "manual__2026-11-20 run" in cli           # an argument with a space stays whole
        assert env == {"RECON_SPARK_MODE": mode, "RECON_LAKE": "s3://lake/x", "RECON_PII_SALT_SECRET_PREFIX": "recon/salt/",
                       "RECON_DATABASE_SECRET": "recon/db", "RECON_SMALL_RUN_ROWS": "25000",
                       "RECON_DELTA_SYMLINK_MANIFESTS": "false"}   # no URL, no secret
        with pytest.raises(ConfigurationError, match="needs RECON_PII_SALT_SECRET_PREFIX"):
            job_payload(argv, settings.with_(pii_salt_secret_prefix=None))
    assert entry.job_arguments(["stage", "parse", "--tenant", "acme"]) == ({}, ["stage", "parse", "--tenant", "acme"])
    for bad in ('{"argv": "stage"}', '{"argv": [], "env": {"PATH": "/tmp"}}', "not json"):
        with pytest.raises(SystemExit):
            entry.job_arguments(["--recon_job", bad])


def test_docker_compose_services_point_at_files_that_exist():
    compose = yaml.safe_load((ROOT / "docker-compose.yaml").read_text())
    assert {"postgres", "airflow", "webhooks"} <= set(compose["services"])
    for name, service in compose["services"].items():
        if "build" in service:
            assert (ROOT / service["build"]["context"] / service["build"]["dockerfile"]).exists(), name
        for volume in service.get("volumes", []):
            host = volume.split(":")[0]
            if host.startswith("./"):
                assert (ROOT / host).exists(), volume
        for port in service.get("ports", []):
            assert port.startswith("127.0.0.1:"), f"{name} publishes {port} beyond localhost"
