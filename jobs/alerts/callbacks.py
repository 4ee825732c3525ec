"""Failure alerts from Airflow's callbacks, on every DAG: ``default_args`` give every task
``on_failure_callback=TaskFailed()`` and ``on_success_callback=TaskSucceeded()``, the DAG itself
``on_failure_callback=RunFailed()`` and ``on_success_callback=RunSucceeded()``. They are ``BaseNotifier``s, so Airflow runs them where it runs callbacks (the
task's process; the DAG processor for a DAG's).

A task that fails on its last try raises a ``task_failed`` alert (P1 by default) for its tenant (the ``tenant``
argument of a reconcile task, the ``connector``'s tenant of an ingest task, the run's ``tenant`` parameter, else
``*``: the platform), its DAG, business date and task; the same task succeeding later (cleared, rerun) resolves it,
and for the daily chain up to publish so does the outcome check of the tenant's run of that date
(``jobs.alerts.outcomes``). A failed run raises one ``run_failed`` alert (``on_failure_callback=RunFailed()``),
resolved by a later successful run of the same date (``on_success_callback=RunSucceeded()``). A callback never fails
the task: what goes wrong in it is logged.
"""
from __future__ import annotations

import logging
from datetime import date
from typing import Any

from airflow.providers.common.compat.notifier import BaseNotifier

log = logging.getLogger(__name__)
PLATFORM = "*"                  # the tenant of an alert about no tenant in particular
RECONCILE_DAG = "reconcile_daily"


def tenant_of(context: dict[str, Any]) -> str:
    task = context.get("task")
    kwargs = getattr(task, "op_kwargs", None) or {}
    tenant = kwargs.get("tenant")
    if isinstance(tenant, str) and tenant:
        return tenant
    connector = kwargs.get("connector")
    if isinstance(connector, dict) and connector.get("tenant_id"):
        return connector["tenant_id"]
    params = context.get("params") or {}
    return params.get("tenant") or PLATFORM


def day_of(context: dict[str, Any]) -> date | None:
    """The run's business date: its ``business_date`` parameter, else the start of its data interval, else its
    logical date (``None`` for a manual run without one)."""
    params = context.get("params") or {}
    if params.get("business_date"):
        return date.fromisoformat(params["business_date"])
    run = context.get("dag_run")
    for name in ("data_interval_start", "logical_date"):
        value = context.get(name) or getattr(run, name, None)
        if value is not None:
            return value.date()
    return None


def _who(context: dict[str, Any], job_task_id: str | None) -> tuple[str, date | None]:
    """(tenant, business date) of a task: for a remote stage's operator, from its ``<stage>_job`` task's XCom."""
    if job_task_id:
        run = context["ti"].xcom_pull(task_ids=job_task_id, key="run")
        if run:
            return run["tenant_id"], date.fromisoformat(run["business_date"])
    return tenant_of(context), day_of(context)


def task_key(tenant: str, dag_id: str, day: date | None, task_id: str, map_index: int | None = None) -> str:
    index = "" if map_index is None or map_index < 0 else f"[{map_index}]"
    return f"task_failed:{tenant}:{dag_id}:{day}:{task_id}{index}"


def _settings():
    from jobs.settings import load_settings

    return load_settings()


class _Notifier(BaseNotifier):
    """Our callbacks template nothing: Airflow renders a notifier's template fields with the context's DAG first,
    and a DAG callback's context holds the serialized DAG, which has no template environment (``dags test``)."""

    template_fields = ()

    def render_template_fields(self, context, jinja_env=None) -> None:
        return None


class TaskFailed(_Notifier):
    """``on_failure_callback`` of a task: a ``task_failed`` alert naming the task, its try and its error.
    ``job_task_id``: a remote stage's operator, whose tenant and date its ``<stage>_job`` task knows."""

    def __init__(self, priority: str = "P1", job_task_id: str | None = None):
        super().__init__()
        self.priority, self.job_task_id = priority, job_task_id

    def notify(self, context) -> None:
        try:
            from jobs.alerts.record import raise_alert
            from jobs.store.db import connect

            ti = context["ti"]
            tenant, day = _who(context, self.job_task_id)
            error = context.get("exception")
            message = (f"{tenant}: task {ti.dag_id}.{ti.task_id} failed for {day} (run {ti.run_id}, try "
                       f"{ti.try_number}): {type(error).__name__ + ': ' if error else ''}{error or 'no error recorded'}")
            detail = {"dag_id": ti.dag_id, "task_id": ti.task_id, "map_index": ti.map_index, "run_id": ti.run_id,
                      "try_number": ti.try_number, "business_date": day.isoformat() if day else None}
            with connect(_settings(), tenant) as conn:
                raise_alert(conn, tenant, "task_failed", message[:2000],
                            task_key(tenant, ti.dag_id, day, ti.task_id, ti.map_index), self.priority, detail,
                            business_date=day)
        except Exception:  # noqa: BLE001 - a callback must not hide the task's own failure
            log.exception("the failure alert of this task could not be raised")


class TaskSucceeded(_Notifier):
    """``on_success_callback`` of a task: resolves the alert of its earlier failure for the same date, if any."""

    def __init__(self, job_task_id: str | None = None):
        super().__init__()
        self.job_task_id = job_task_id

    def notify(self, context) -> None:
        try:
            from jobs.alerts.record import resolve_alerts
            from jobs.store.db import connect

            ti = context["ti"]
            tenant, day = _who(context, self.job_task_id)
            key = task_key(tenant, ti.dag_id, day, ti.task_id, ti.map_index)
            with connect(_settings(), tenant) as conn:
                if conn.execute("SELECT 1 FROM alert WHERE dedupe_key = %s AND resolved_at IS NULL",
                                (key,)).fetchone():
                    resolve_alerts(conn, tenant, "task_failed", key, resolved_by=f"{ti.task_id} succeeded in "
                                                                                 f"{ti.run_id}")
        except Exception:  # noqa: BLE001
            log.exception("the alert of this task's earlier failure could not be resolved")


class RunFailed(_Notifier):
    """``on_failure_callback`` of a DAG: one ``run_failed`` alert for the run."""

    def __init__(self, priority: str = "P1"):
        super().__init__()
        self.priority = priority

    def notify(self, context) -> None:
        try:
            from jobs.alerts.record import raise_alert
            from jobs.store.db import connect

            run = context.get("dag_run")
            dag = context.get("dag")
            dag_id = getattr(dag, "dag_id", None) or getattr(run, "dag_id", "?")
            run_id = context.get("run_id") or getattr(run, "run_id", "?")
            tenant, day = tenant_of(context), day_of(context)
            reason = context.get("reason") or "a task failed"
            with connect(_settings(), tenant) as conn:
                raise_alert(conn, tenant, "run_failed", f"{tenant}: run {run_id} of {dag_id} for {day} failed: {reason}",
                            f"run_failed:{tenant}:{dag_id}:{day}", self.priority,
                            {"dag_id": dag_id, "run_id": run_id, "business_date": day.isoformat() if day else None},
                            business_date=day)
        except Exception:  # noqa: BLE001
            log.exception("the failure alert of this run could not be raised")


class RunSucceeded(_Notifier):
    """``on_success_callback`` of a DAG: resolves the alert of an earlier failed run of the same date, if any."""

    def notify(self, context) -> None:
        try:
            from jobs.alerts.record import resolve_alerts
            from jobs.store.db import connect

            run, dag = context.get("dag_run"), context.get("dag")
            dag_id = getattr(dag, "dag_id", None) or getattr(run, "dag_id", "?")
            tenant, day = tenant_of(context), day_of(context)
            with connect(_settings(), tenant) as conn:
                resolve_alerts(conn, tenant, "run_failed", f"run_failed:{tenant}:{dag_id}:{day}",
                               resolved_by=f"run {context.get('run_id') or getattr(run, 'run_id', '?')} succeeded")
        except Exception:  # noqa: BLE001
            log.exception("the alert of this run's earlier failure could not be resolved")


# the daily chain up to publish: the outcome check runs only when all of it succeeded for the tenant and date
CHAIN_TO_PUBLISH = ("land", "parse", "match", "ledger", "publish")


def resolve_run_failures(conn, tenant_id: str, business_date: date) -> list:
    """The tenant's run of ``business_date`` got through publish: the alerts of earlier failures of those tasks (in
    the worker, or a remote stage's ``_job`` / ``_step`` / job task) are resolved. The tasks beside the check (the ERP
    export, the report) resolve their own when they succeed."""
    from jobs.alerts.record import resolve_alerts

    by = f"the run of {business_date} got through publish"
    prefix = f"task_failed:{tenant_id}:{RECONCILE_DAG}:{business_date}:reconcile."
    return [a for stage in CHAIN_TO_PUBLISH for task in (stage, f"{stage}_job", f"{stage}_step")
            for a in resolve_alerts(conn, tenant_id, "task_failed", f"{prefix}{task}[", resolved_by=by)]


def default_callbacks(job_task_id: str | None = None) -> dict[str, list]:
    """The callbacks every task of every DAG gets (``default_args``; a remote stage's operators add their own)."""
    return {"on_failure_callback": [TaskFailed(job_task_id=job_task_id)],
            "on_success_callback": [TaskSucceeded(job_task_id=job_task_id)]}
