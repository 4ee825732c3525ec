"""Run one pipeline stage where the configuration says Spark runs: the one switch.

``RECON_SPARK_MODE``:
  local           in this process, with the project's local Spark (laptop, CI, small deployments);
  emr_serverless  a job run on an EMR Serverless application (RECON_EMR_SERVERLESS_APP_ID,
                  RECON_EMR_EXECUTION_ROLE_ARN);
  emr             a step on a running EMR cluster (RECON_EMR_CLUSTER_ID);
  glue            a run of a Glue job (RECON_GLUE_JOB_NAME).
The remote modes run the same code: ``RECON_CODE_URI`` (s3://.../psp_recon_jobs.zip, built by
``make package``) holds the ``jobs`` package and ``RECON_ENTRY_URI`` the entry script that calls
``jobs.cli.main(["stage", ...])``; every mode passes the entry one ``--recon_job`` JSON value
(``job_payload``: the CLI's arguments and the settings the job runs with, the mode among them).
Submission uses the Amazon provider's hooks, and the task waits for the run to finish so Airflow shows
its outcome.
"""
from __future__ import annotations

import json
import logging
import os
from datetime import date
from pathlib import Path

from jobs.settings import ConfigurationError, Settings, load_settings

log = logging.getLogger(__name__)


def stage_argv(stage: str, tenant_id: str, business_date: date, run_id: str, settings: Settings) -> list[str]:
    """``recon stage`` arguments of a remote job: it runs the stage without recording it (the submitting task does)."""
    return ["stage", stage, "--tenant", tenant_id, "--business-date", business_date.isoformat(),
            "--run-id", run_id, "--lake", settings.lake, "--no-record"]


def job_payload(argv: list[str], settings: Settings) -> str:
    """The entry script's ``--recon_job`` value (infra/emr/recon_entry.py): the CLI's arguments and the settings
    the job runs with, from this worker's (the mode it is submitted in, the name prefix of the PII salts' secrets,
    the small-run threshold), as one JSON value: Glue passes a job's arguments as name/value pairs among its own.
    No secret travels in it: the job reads the salt from Secrets Manager itself (``jobs.privacy.tenant_salt``)."""
    if not settings.pii_salt_secret_prefix:
        raise ConfigurationError(f"RECON_SPARK_MODE={settings.spark_mode} needs RECON_PII_SALT_SECRET_PREFIX: a job on "
                                 "EMR or Glue reads each tenant's PII salt from AWS Secrets Manager")
    env = {"RECON_SPARK_MODE": settings.spark_mode, "RECON_PII_SALT_SECRET_PREFIX": settings.pii_salt_secret_prefix,
           "RECON_SMALL_RUN_ROWS": str(settings.small_run_rows)}
    return json.dumps({"argv": argv, "env": env}, separators=(",", ":"))


def _require(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        raise ConfigurationError(f"{name} must be set when RECON_SPARK_MODE={os.environ.get('RECON_SPARK_MODE')}")
    return value


def submit_emr_serverless(job: str, name: str) -> str:
    from airflow.providers.amazon.aws.hooks.emr import EmrServerlessHook

    hook = EmrServerlessHook(aws_conn_id=os.environ.get("RECON_AWS_CONN_ID", "aws_default"))
    app_id = _require("RECON_EMR_SERVERLESS_APP_ID")
    response = hook.conn.start_job_run(
        applicationId=app_id, executionRoleArn=_require("RECON_EMR_EXECUTION_ROLE_ARN"), name=name,
        jobDriver={"sparkSubmit": {"entryPoint": _require("RECON_ENTRY_URI"),
                                   "entryPointArguments": ["--recon_job", job],
                                   "sparkSubmitParameters": f"--py-files {_require('RECON_CODE_URI')}"}},
    )
    job_id = response["jobRunId"]
    hook.get_waiter("serverless_job_completed").wait(applicationId=app_id, jobRunId=job_id)
    state = hook.conn.get_job_run(applicationId=app_id, jobRunId=job_id)["jobRun"]["state"]
    if state != "SUCCESS":
        raise RuntimeError(f"EMR Serverless job run {job_id} ended {state}")
    return job_id


def submit_glue(job: str, name: str) -> str:
    from airflow.providers.amazon.aws.hooks.glue import GlueJobHook

    job_name = _require("RECON_GLUE_JOB_NAME")
    hook = GlueJobHook(job_name=job_name, aws_conn_id=os.environ.get("RECON_AWS_CONN_ID", "aws_default"))
    run = hook.initialize_job({"--recon_job": job, "--extra-py-files": _require("RECON_CODE_URI")})
    run_id = run["JobRunId"]
    state = hook.job_completion(job_name, run_id)["JobRunState"]
    if state != "SUCCEEDED":
        raise RuntimeError(f"Glue job {job_name} run {run_id} ended {state}")
    return run_id


def submit_emr_step(job: str, name: str) -> str:
    from airflow.providers.amazon.aws.hooks.emr import EmrHook

    hook = EmrHook(aws_conn_id=os.environ.get("RECON_AWS_CONN_ID", "aws_default"))
    cluster = _require("RECON_EMR_CLUSTER_ID")
    step = {"Name": name, "ActionOnFailure": "CONTINUE", "HadoopJarStep": {
        "Jar": "command-runner.jar",
        "Args": ["spark-submit", "--py-files", _require("RECON_CODE_URI"), _require("RECON_ENTRY_URI"),
                 "--recon_job", job]}}
    step_id = hook.add_job_flow_steps(job_flow_id=cluster, steps=[step], wait_for_completion=True)[0]
    return step_id


def run_stage(stage: str, tenant_id: str, business_date: date, run_id: str, landing: str | None = None) -> dict:
    """Run one stage for (tenant, date) through the registry (``jobs.pipeline.STAGES``): in this process, or, in a
    remote mode, its Spark stages as a job on EMR Serverless / EMR / Glue, recorded in ``recon_run`` here (the job
    itself does not record). Returns a small JSON-able result for the task's XCom."""
    from jobs import pipeline

    settings = load_settings()
    if stage not in pipeline.STAGES:
        raise ValueError(f"unknown stage {stage!r} (stages: {', '.join(pipeline.STAGES)})")
    ctx = pipeline.RunContext(settings, tenant_id, business_date, run_id, Path(landing) if landing else None)
    if settings.spark_mode == "local" or not pipeline.STAGES[stage].spark:
        return pipeline.STAGES[stage].report(pipeline.run_stage(ctx, stage))
    pipeline.prepare(settings, tenant_id)
    job = job_payload(stage_argv(stage, tenant_id, business_date, run_id, settings), settings)
    name = f"recon-{stage}-{tenant_id}-{business_date}"
    submit = {"emr_serverless": submit_emr_serverless, "glue": submit_glue, "emr": submit_emr_step}
    pipeline.mark_started(ctx)
    try:
        remote_run = submit[settings.spark_mode](job, name)
    except Exception as exc:
        pipeline.mark_failed(ctx, stage, exc)
        raise
    if stage in pipeline.AFTER_PUBLISH:
        pipeline.mark_succeeded_after_publish(ctx)
    return {"remote_run": remote_run, "mode": settings.spark_mode}
