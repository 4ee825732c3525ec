"""
### Weekly lake maintenance

For each tenant (or the one given in the `tenant` parameter), as of the run's date (the `business_date` parameter,
else the start of the run's data interval), one task `maintain` (`jobs.maintenance`):

1. **retention**: raw files received more than the tenant's `retention.raw_days` ago are deleted from the raw zone
   (their manifest rows stay, marked purged), quarantine rows older than `retention.quarantine_days` are deleted;
   both audited. Events, matches and journals are the books: never deleted here;
2. **compaction**: `OPTIMIZE` of the tenant's partitions of every Delta table;
3. **VACUUM** of every table, keeping what any version of the last `RECON_TIME_TRAVEL_DAYS` (30) days needs:
   time travel works that far back.

In a remote Spark mode the task runs as an EMR Serverless / EMR / Glue job like the daily stages (a `maintain_job`
task prepares it). Safe to rerun: a second run finds nothing more to purge, compact or vacuum. A failed task raises
a P1 alert (`jobs.alerts.callbacks`).
"""
from __future__ import annotations

import pendulum
from airflow.sdk import Param, dag, get_current_context, task

from jobs.runner import reconcile_defaults, run_callbacks
from jobs.settings import load_settings

_SETTINGS = load_settings()
SPARK_MODE = _SETTINGS.spark_mode


@dag(
    dag_id="lake_maintenance",
    schedule="@weekly",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    tags=["recon", "maintenance", "weekly"],
    doc_md=__doc__,
    default_args=reconcile_defaults(_SETTINGS),
    **run_callbacks(),
    params={
        "tenant": Param(None, type=["null", "string"], description="only this tenant (default: all configured)"),
        "business_date": Param(None, type=["null", "string"], format="date",
                               description="YYYY-MM-DD: retention counts back from it (default: the run's date)"),
    },
)
def lake_maintenance():
    @task
    def tenants() -> list[str]:
        from jobs.runner import tenants_of_run

        return tenants_of_run(get_current_context())

    if SPARK_MODE == "local":
        @task
        def maintain(tenant: str) -> dict:
            from jobs.runner import business_date_of, run_stage

            ctx = get_current_context()
            return run_stage("maintain", tenant, business_date_of(ctx), ctx["run_id"])

        maintain.expand(tenant=tenants())
    else:
        from airflow.sdk import task_group

        from jobs.remote import stage_tasks

        @task_group
        def maintain_remote(tenant: str):
            stage_tasks("maintain", tenant)

        maintain_remote.expand(tenant=tenants())


lake_maintenance()
