"""What a DAG task of ``reconcile_daily`` runs in the Airflow worker: a stage in this process (``local`` mode, and
the stages that need no Spark in every mode), through the one registry (``jobs.pipeline.run_stage``), which records
the run in ``recon_run``. In a remote mode the DAG runs the Spark stages as EMR Serverless / EMR / Glue jobs through
the Amazon provider's operators instead (``jobs.remote``)."""
from __future__ import annotations

from datetime import date
from pathlib import Path

from jobs.settings import ConfigurationError, load_settings


def business_date_of(context) -> date:
    """The business date of a DAG run: its ``business_date`` parameter when given, else the start of the run's data
    interval (the logical date for ``airflow dags test``)."""
    explicit = context["params"].get("business_date")
    if explicit:
        return date.fromisoformat(explicit)
    start = context.get("data_interval_start") or context.get("logical_date")
    if start is None:
        raise ValueError("no business date: set the business_date parameter for a manual run")
    return start.date()


def run_stage(stage: str, tenant_id: str, business_date: date, run_id: str, landing: str | None = None) -> dict:
    """Run one stage for (tenant, date) in this process through the registry (``jobs.pipeline.STAGES``), recorded
    in ``recon_run``. Returns a small JSON-able result for the task's XCom."""
    from jobs import pipeline

    settings = load_settings()
    if stage not in pipeline.STAGES:
        raise ValueError(f"unknown stage {stage!r} (stages: {', '.join(pipeline.STAGES)})")
    if settings.spark_mode != "local" and pipeline.STAGES[stage].spark:
        raise ConfigurationError(f"stage {stage} needs Spark, which runs as a job in RECON_SPARK_MODE="
                                 f"{settings.spark_mode}: the DAG submits it (jobs.remote), not this task")
    from time import perf_counter

    from jobs import metrics

    ctx = pipeline.RunContext(settings, tenant_id, business_date, run_id, Path(landing) if landing else None)
    started = perf_counter()
    result = pipeline.run_stage(ctx, stage)
    metrics.stage_timing(settings, tenant_id, stage, (perf_counter() - started) * 1000)
    return pipeline.STAGES[stage].report(result)
