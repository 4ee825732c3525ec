"""What a DAG task of ``reconcile_daily`` runs in the Airflow worker: a stage in this process (``local`` mode, and
the stages that need no Spark in every mode), through the one registry (``jobs.pipeline.run_stage``), which records
the run in ``recon_run``. In a remote mode the DAG runs the Spark stages as EMR Serverless / EMR / Glue jobs through
the Amazon provider's operators instead (``jobs.remote``)."""
from __future__ import annotations

from datetime import date
from pathlib import Path

from jobs.settings import ConfigurationError, load_settings


def reconcile_defaults(settings) -> dict:
    """``default_args`` of the DAGs that run stages (``reconcile_daily``, ``lake_maintenance``): owner, retries with
    exponential backoff, and every task's alert callbacks."""
    from datetime import timedelta

    from jobs.alerts.callbacks import default_callbacks

    return {"owner": "finance-ops", "retries": settings.reconcile_retries,
            "retry_delay": timedelta(seconds=settings.reconcile_retry_delay_seconds),
            "retry_exponential_backoff": True, **default_callbacks()}


def run_callbacks() -> dict:
    """A DAG's own callbacks: an alert when a run fails, resolved when a later run of the date succeeds."""
    from jobs.alerts.callbacks import RunFailed, RunSucceeded

    return {"on_failure_callback": RunFailed(), "on_success_callback": RunSucceeded()}


def tenants_of_run(context) -> list[str]:
    """The tenants a run covers: its ``tenant`` parameter (refused when not configured), else every configured one."""
    from jobs.tenants import list_tenants

    chosen = context["params"].get("tenant")
    configured = list_tenants(load_settings())
    if chosen and chosen not in configured:
        raise ValueError(f"tenant {chosen!r} is not configured (configured: {', '.join(configured)})")
    return [chosen] if chosen else configured


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
