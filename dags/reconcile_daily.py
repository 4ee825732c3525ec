"""
### Daily reconciliation

For each tenant (or the one given in the `tenant` parameter), for the business date of the run:

1. **land**: files dropped in the landing folder (parameter `landing`, else `$RECON_INBOX/<tenant>`)
   go to the raw zone once each (files from SFTP / email / APIs were landed by the ingest DAG);
2. **parse**: the day's files are parsed into the canonical events; bad rows go to quarantine;
3. **match**: book <-> PSP and payout <-> bank, levels L1-L4; open items carry over;
4. **ledger**: balanced double-entry journals for the day, fees checked against the rate card, the
   day's chargebacks and disputes applied to their lifecycle;
5. **publish**: the exceptions queue, the run summary and its figures go to PostgreSQL;
6. **erp_export**: the day's journals not sent yet, as one import file per ERP the tenant uses
   (NetSuite, SAP, QuickBooks) in the lake's outbox, with a manifest; a batch is recorded once;
7. **alerts** (beside the export, after publish): the run's figures against the tenant's thresholds
   (`alerts` in its configuration: match rate and its drop, open exceptions, unreconciled amount per
   currency, SLA breaches, missing files, the ledger's balance); an alert per condition that holds, routed
   by priority to the tenant's channels; those that cleared are resolved;
8. **report** (beside them): the day's reconciliation report, one self-contained HTML page in the lake's
   `reports` folder, linked from the Reconciliation page's run list.

Every task that fails on its last try raises a P1 alert (`jobs.alerts.callbacks`), resolved when it
succeeds later; a failed run raises one more.

Where Spark runs is chosen once, by `RECON_SPARK_MODE` when the DAG is parsed: `local` runs every stage in the
worker's process (`jobs.pipeline.run_stage`); `emr_serverless`, `emr` and `glue` run parse, match, ledger, publish and
the ERP export as jobs through the Amazon provider's operators (deferrable: a waiting task holds no worker slot),
each after a `<stage>_job` task that prepares it (`jobs.remote`). Either way `recon_run` records the run (running,
failed with the stage and the error, succeeded), what the Reconciliation page shows.
Every task is keyed to (tenant, business date) and is safe to clear and rerun, alone or with the
whole run: the Spark stages replace their own output, and the ERP export creates a batch only for
journals not sent yet (a re-send is an operator's `recon erp resend`). The business date is the `business_date` parameter when given,
else the start of the run's data interval (the logical date for `airflow dags test`).
"""
from __future__ import annotations

import pendulum
from airflow.sdk import Param, dag, get_current_context, task, task_group

from jobs.runner import reconcile_defaults, run_callbacks
from jobs.settings import load_settings
from jobs.stages import DAILY_SPARK_STAGES

_SETTINGS = load_settings()
SPARK_MODE = _SETTINGS.spark_mode                # the one switch: where the Spark stages run


def _run(stage: str, tenant: str) -> dict:
    from jobs.runner import business_date_of, run_stage

    ctx = get_current_context()
    return run_stage(stage, tenant, business_date_of(ctx), ctx["run_id"], landing=ctx["params"].get("landing"))


@dag(
    dag_id="reconcile_daily",
    schedule="@daily",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    tags=["recon", "daily"],
    doc_md=__doc__,
    default_args=reconcile_defaults(_SETTINGS),
    **run_callbacks(),
    params={
        "tenant": Param(None, type=["null", "string"], description="only this tenant (default: all configured)"),
        "business_date": Param(None, type=["null", "string"], format="date",
                               description="YYYY-MM-DD (default: the run's data interval start)"),
        "landing": Param(None, type=["null", "string"], description="folder whose new files are landed first"),
    },
)
def reconcile_daily():
    @task
    def tenants() -> list[str]:
        from jobs.runner import tenants_of_run

        return tenants_of_run(get_current_context())

    @task_group
    def reconcile(tenant: str):
        @task
        def land(tenant: str) -> dict:
            return _run("land", tenant)

        @task
        def in_process(stage: str, tenant: str) -> dict:
            return _run(stage, tenant)

        previous = land(tenant)
        published = None
        for stage in DAILY_SPARK_STAGES:              # parse, match, ledger, publish, erp_export
            if SPARK_MODE == "local":
                first = last = in_process.override(task_id=stage)(stage, tenant)
            else:
                from jobs.remote import stage_tasks

                first, last = stage_tasks(stage, tenant)
            previous >> first
            previous = last
            if stage == "publish":
                published = last
        for stage in ("alerts", "report"):                                         # beside the ERP export
            published >> in_process.override(task_id=stage)(stage, tenant)

    reconcile.expand(tenant=tenants())


reconcile_daily()
