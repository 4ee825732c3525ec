"""Spark stages as jobs on EMR Serverless, EMR or Glue: what each mode submits, rendered in one place, and the
Amazon provider's operators the DAG submits and waits with.

``RECON_SPARK_MODE`` (``Settings.spark_mode``) is the one switch, read when the DAG is parsed:

- ``local``: every stage runs in the Airflow worker's process (``jobs.runner.run_stage``);
- ``emr_serverless``: a Spark stage is a job run on an EMR Serverless application
  (``EmrServerlessStartJobOperator``);
- ``emr``: a step on a running EMR cluster (``EmrAddStepsOperator``, then ``EmrStepSensor``);
- ``glue``: a run of the Glue job whose script is the entry (``GlueJobOperator``).

Every remote job runs the same code the same way: ``make package`` builds the ``jobs`` archive
(``RECON_CODE_URI``), the entry script (``RECON_ENTRY_URI``, infra/emr/recon_entry.py) and the JVM functions jar the
parse stage calls (``RECON_UDF_JAR_URI``); the entry gets one argument, ``--recon_job '<JSON>'`` (``job_payload``:
``recon stage`` arguments and the settings the job runs with) and the Spark options of ``job_conf`` (Delta's SQL
extension and catalog, the session options of ``jobs.spark``). The waits are deferrable: a task waiting for a job
holds no worker slot. Each stage's job is prepared by a small task on the worker (``prepare_job``: schema, tenant
configuration, ``recon_run`` marked running) and a failed job, whatever the cause, marks the run failed with its stage
(``record_failure``, the operators' failure callback); the job itself runs ``recon stage ... --no-record``.
"""
from __future__ import annotations

import json
import math
from datetime import date

from jobs.settings import ConfigurationError, Settings, load_settings

REMOTE_MODES = ("emr_serverless", "emr", "glue")
# Delta as EMR 7.x and EMR Serverless 7.x ship it (docs: "Using Delta Lake OSS with EMR Serverless").
EMR_DELTA_JARS = ("/usr/share/aws/delta/lib/delta-spark.jar", "/usr/share/aws/delta/lib/delta-storage.jar")
REQUIRED = {
    "emr_serverless": ("emr_serverless_app_id", "emr_execution_role_arn"),
    "emr": ("emr_cluster_id",),
    "glue": ("glue_job_name",),
}
SETTING_ENV = {"emr_serverless_app_id": "RECON_EMR_SERVERLESS_APP_ID",
               "emr_execution_role_arn": "RECON_EMR_EXECUTION_ROLE_ARN", "emr_cluster_id": "RECON_EMR_CLUSTER_ID",
               "glue_job_name": "RECON_GLUE_JOB_NAME", "code_uri": "RECON_CODE_URI", "entry_uri": "RECON_ENTRY_URI",
               "udf_jar_uri": "RECON_UDF_JAR_URI", "pii_salt_secret_prefix": "RECON_PII_SALT_SECRET_PREFIX"}
# The Python packages a job's code imports besides the runtime's PySpark, py4j and Delta
# (tests/remote/test_job_dependencies.py keeps the list true): ``make package`` pins them to the lock's versions in
# dist/job-requirements.txt, which the EMR Serverless image installs (infra/emr/Dockerfile); Glue 5.0 has
# GLUE_PROVIDED and installs the rest per run (--additional-python-modules).
JOB_PACKAGES = ("boto3", "botocore", "lxml", "numpy", "pandas", "psycopg", "psycopg-binary", "pyarrow", "PyYAML")
GLUE_PROVIDED = ("boto3", "botocore", "numpy", "pandas", "pyarrow")
# EMR 7.x runs Python 3.9; the jobs need 3.11, which the image installs (infra/emr/Dockerfile).
JOB_PYTHON = "/usr/bin/python3.11"


def job_requirements() -> list[str]:
    """``name==version`` of every package a job imports, at the versions this environment runs (the lock's)."""
    from importlib.metadata import version

    return [f"{name}=={version(name)}" for name in JOB_PACKAGES]


# The settings a job runs with, from the submitting worker's: never a secret (the job reads those itself).
JOB_ENV = {"RECON_SPARK_MODE": "spark_mode", "RECON_LAKE": "lake", "RECON_PII_SALT_SECRET_PREFIX": "pii_salt_secret_prefix",
           "RECON_DATABASE_SECRET": "database_secret", "RECON_SMALL_RUN_ROWS": "small_run_rows",
           "RECON_SPARK_CONF": "spark_conf", "RECON_DELTA_SYMLINK_MANIFESTS": "delta_symlink_manifests"}


def check(settings: Settings) -> Settings:
    """``settings`` if everything its remote mode needs is set, else one ConfigurationError naming what is not."""
    if settings.spark_mode not in REMOTE_MODES:
        raise ConfigurationError(f"RECON_SPARK_MODE={settings.spark_mode} runs no remote job")
    needed = (*REQUIRED[settings.spark_mode], "code_uri", "entry_uri", "udf_jar_uri", "pii_salt_secret_prefix")
    missing = [SETTING_ENV[name] for name in needed if not getattr(settings, name)]
    if missing:
        raise ConfigurationError(f"RECON_SPARK_MODE={settings.spark_mode} needs {', '.join(missing)} (terraform "
                                 "output recon_environment; the PII salts and the database come from AWS Secrets "
                                 "Manager in a remote job)")
    if not settings.database_secret:
        raise ConfigurationError(f"RECON_SPARK_MODE={settings.spark_mode} needs RECON_DATABASE_SECRET: a job reads "
                                 "and writes the operational database with the credentials in that secret")
    if not settings.lake_is_s3:
        raise ConfigurationError(f"RECON_SPARK_MODE={settings.spark_mode} needs a lake on S3 (RECON_LAKE=s3://...), "
                                 f"not {settings.lake}: a job on EMR or Glue cannot see this machine's folders")
    return settings


def stage_argv(stage: str, tenant_id: str, business_date: date, run_id: str) -> list[str]:
    """``recon stage`` arguments of a remote job: it runs the stage without recording it (the DAG's tasks do), with
    the tenant configuration the submitting task recorded in PostgreSQL (a job has no configuration folder)."""
    return ["stage", stage, "--tenant", tenant_id, "--business-date", business_date.isoformat(), "--run-id", run_id,
            "--no-record", "--recorded-config"]


def job_payload(argv: list[str], settings: Settings) -> str:
    """The entry script's ``--recon_job`` value (infra/emr/recon_entry.py): the CLI's arguments and the settings the
    job runs with (``JOB_ENV``, from this worker's), as one JSON value: Glue passes a job's arguments as name/value
    pairs among its own. No secret travels in it: the job reads the PII salts and the database credentials from
    Secrets Manager itself."""
    if not settings.pii_salt_secret_prefix:
        raise ConfigurationError(f"RECON_SPARK_MODE={settings.spark_mode} needs RECON_PII_SALT_SECRET_PREFIX: a job on "
                                 "EMR or Glue reads each tenant's PII salt from AWS Secrets Manager")
    env = {}
    for key, name in JOB_ENV.items():
        value = getattr(settings, name)
        if value not in (None, ""):
            env[key] = ("true" if value else "false") if isinstance(value, bool) else str(value)
    return json.dumps({"argv": argv, "env": env}, separators=(",", ":"))


def job_conf(settings: Settings) -> dict[str, str]:
    """Spark options a job is submitted with: Delta's SQL extension and catalog must be set before the session
    starts, so they go on the submission (the job's session sets the rest again, ``jobs.spark.session_options``)."""
    from jobs.spark import COMMON_OPTIONS, DELTA_OPTIONS

    return {**DELTA_OPTIONS, **COMMON_OPTIONS, **settings.spark_conf_options()}


def render(settings: Settings, stage: str, tenant_id: str, business_date: date, run_id: str) -> dict:
    """The arguments of one stage's job in the settings' mode, as its operator takes them: ``job_driver`` (EMR
    Serverless), ``steps`` (EMR), ``script_args`` (Glue); ``name`` names the job run in every mode."""
    check(settings)
    payload = job_payload(stage_argv(stage, tenant_id, business_date, run_id), settings)
    name = f"recon-{stage}-{tenant_id}-{business_date.isoformat()}"
    conf = job_conf(settings)
    if settings.spark_mode == "glue":
        # Glue takes one --conf value; further options follow inside it as " --conf k=v" (AWS's Delta example).
        modules = ",".join(r for r in job_requirements() if r.split("==")[0] not in GLUE_PROVIDED)
        return {"name": name, "script_args": {
            "--recon_job": payload, "--extra-py-files": settings.code_uri, "--extra-jars": settings.udf_jar_uri,
            "--additional-python-modules": modules, "--datalake-formats": "delta",
            "--conf": " --conf ".join(f"{k}={v}" for k, v in conf.items())}}
    submit = ["--py-files", settings.code_uri, "--jars", ",".join((*EMR_DELTA_JARS, settings.udf_jar_uri))]
    if settings.spark_mode == "emr_serverless":        # the image's Python (EMR's own is 3.9)
        conf.update({"spark.emr-serverless.driverEnv.PYSPARK_DRIVER_PYTHON": JOB_PYTHON,
                     "spark.emr-serverless.driverEnv.PYSPARK_PYTHON": JOB_PYTHON,
                     "spark.executorEnv.PYSPARK_PYTHON": JOB_PYTHON})
    else:                                              # an EMR cluster bootstrapped with Python 3.11 and the packages
        conf.update({"spark.yarn.appMasterEnv.PYSPARK_PYTHON": JOB_PYTHON, "spark.executorEnv.PYSPARK_PYTHON": JOB_PYTHON})
    for key, value in conf.items():
        submit += ["--conf", f"{key}={value}"]
    if settings.spark_mode == "emr_serverless":
        return {"name": name, "job_driver": {"sparkSubmit": {
            "entryPoint": settings.entry_uri, "entryPointArguments": ["--recon_job", payload],
            "sparkSubmitParameters": " ".join(submit)}}}
    return {"name": name, "steps": [{"Name": name, "ActionOnFailure": "CONTINUE", "HadoopJarStep": {
        "Jar": "command-runner.jar",
        "Args": ["spark-submit", "--deploy-mode", "cluster", *submit, settings.entry_uri, "--recon_job", payload]}}]}


def prepare_job(stage: str, tenant_id: str, business_date: date, run_id: str) -> dict:
    """What the DAG's ``<stage>_job`` task does before a stage's job is submitted: the schema up to date, the tenant's
    configuration recorded, ``recon_run`` running; returns the job's operator arguments (``render``) and ``run``,
    the run's key, for the failure callback."""
    from jobs import pipeline

    settings = check(load_settings())
    pipeline.prepare(settings, tenant_id)
    if pipeline.STAGES[stage].recorded:                 # a stage of the daily run (not the weekly maintenance)
        pipeline.mark_started(pipeline.RunContext(settings, tenant_id, business_date, run_id))
    return {**render(settings, stage, tenant_id, business_date, run_id),
            "run": {"stage": stage, "tenant_id": tenant_id, "business_date": business_date.isoformat(),
                    "run_id": run_id}}


def _run_of(context, job_task_id: str):
    from jobs import pipeline

    run = context["ti"].xcom_pull(task_ids=job_task_id, key="run")
    if not run:
        return None, None
    ctx = pipeline.RunContext(load_settings(), run["tenant_id"], date.fromisoformat(run["business_date"]),
                              run["run_id"])
    return ctx, run["stage"]


def record_failure(context, job_task_id: str) -> None:
    """Failure callback of a stage's operators: ``recon_run`` failed, with the stage and the error (a job that
    failed, was cancelled or timed out, or a submission refused)."""
    from jobs import pipeline

    ctx, stage = _run_of(context, job_task_id)
    if ctx is not None:
        error = context.get("exception") or RuntimeError("the remote job failed")
        pipeline.mark_failed(ctx, stage, error if isinstance(error, BaseException) else RuntimeError(str(error)))


def record_success_after_publish(context, job_task_id: str) -> None:
    """Success callback of a stage after publish (the ERP export): the run is succeeded again."""
    from jobs import pipeline

    ctx, _ = _run_of(context, job_task_id)
    if ctx is not None:
        pipeline.mark_succeeded_after_publish(ctx)


def stage_tasks(stage: str, tenant, settings: Settings | None = None):
    """The tasks that run ``stage`` of one tenant's day as a remote job, inside the DAG being built: a
    ``<stage>_job`` task (``prepare_job``), then the mode's operator(s); the last task is named ``stage``. Returns
    (first, last) for chaining. ``tenant`` may be an XComArg (the DAG maps its task group over the tenants)."""
    from functools import partial

    from airflow.sdk import get_current_context, task

    from jobs.alerts.callbacks import default_callbacks
    from jobs.pipeline import AFTER_PUBLISH, STAGES
    from jobs.runner import business_date_of

    settings = check(settings or load_settings())

    @task(task_id=f"{stage}_job", multiple_outputs=True)
    def job(tenant: str) -> dict:
        context = get_current_context()
        return prepare_job(stage, tenant, business_date_of(context), context["run_id"])

    prepared = job(tenant)
    job_task_id = prepared.operator.task_id
    poll = max(1, settings.remote_poll_seconds)
    attempts = max(1, math.ceil(settings.remote_max_wait_minutes * 60 / poll))
    # the run's record and the alerts every task has (an operator's own callbacks replace the DAG's default_args)
    callbacks = default_callbacks(job_task_id)
    if STAGES[stage].recorded:
        callbacks["on_failure_callback"].insert(0, partial(record_failure, job_task_id=job_task_id))
    if stage in AFTER_PUBLISH:
        callbacks["on_success_callback"].insert(0, partial(record_success_after_publish, job_task_id=job_task_id))
    common = {"aws_conn_id": settings.aws_conn_id, **callbacks}
    if settings.spark_mode == "emr_serverless":
        from airflow.providers.amazon.aws.operators.emr import EmrServerlessStartJobOperator

        last = EmrServerlessStartJobOperator(
            task_id=stage, application_id=settings.emr_serverless_app_id,
            execution_role_arn=settings.emr_execution_role_arn, job_driver=prepared["job_driver"], name=prepared["name"],
            deferrable=True, waiter_delay=poll, waiter_max_attempts=attempts, **common)
        prepared >> last
        return prepared, last
    if settings.spark_mode == "glue":
        from airflow.providers.amazon.aws.operators.glue import GlueJobOperator

        last = GlueJobOperator(task_id=stage, job_name=settings.glue_job_name, script_args=prepared["script_args"],
                               deferrable=True, waiter_delay=poll, waiter_max_attempts=attempts, **common)
        prepared >> last
        return prepared, last
    from airflow.providers.amazon.aws.operators.emr import EmrAddStepsOperator
    from airflow.providers.amazon.aws.sensors.emr import EmrStepSensor

    add = EmrAddStepsOperator(task_id=f"{stage}_step", job_flow_id=settings.emr_cluster_id, steps=prepared["steps"],
                              wait_for_completion=False, **common)
    # The step id the add task returned, of this tenant's mapped instance (xcom_pull defaults to the same map index).
    last = EmrStepSensor(task_id=stage, job_flow_id=settings.emr_cluster_id,
                         step_id=f"{{{{ ti.xcom_pull(task_ids='{add.task_id}')[0] }}}}", deferrable=True,
                         poke_interval=poll, max_attempts=attempts, **common)
    prepared >> add >> last
    return prepared, last
