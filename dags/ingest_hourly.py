"""
### Hourly ingestion: SFTP, e-mail, PSP APIs and webhooks into the raw zone

Every hour, for the hour that just ended (the run's data interval):

1. **due_connectors** / **delivery_windows**: the enabled connectors of every tenant (or of the
   `tenant` / `connector` parameters) whose schedule fires in this hour, and those with a delivery
   window to check;
2. **ingest** (one mapped task per connector, labelled `tenant/connector`): SFTP folders, IMAP
   mailboxes and PSP list APIs are read, and webhook events accepted by the receiver since the last
   run are batched; every file lands unchanged in the raw zone
   (`raw/tenant=/source=/received_date=/<sha256>-<name>`) with a manifest row, exactly once by content.
   A failing connector fails only its own task: it retries with exponential backoff, and alerts on
   its last try. Wrong credentials or a wrong configuration fail at once (no retries) and alert;
3. **check_delivery** (mapped): a connector whose files are missing past their delivery window
   raises an alert (once a day) and fails with a message saying what is missing;
4. **redetect**: files no parser recognised when they landed get their format if one does now.

The day a file is received under (`received_date`) is the date of the data interval's start, so a
rerun of an hour lands into the same day; the reconcile DAG parses the files received on its
business date. Connectors are configured per tenant with `recon connector add|update|disable` (see
the README); every run of every connector is in the `connector_run` table, every alert in `alert`.
A task that fails on its last try raises a P1 alert as well (`jobs.alerts.callbacks`), resolved when it succeeds.
"""
from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import CronDataIntervalTimetable, Param, TriggerRule, dag, get_current_context, task

from jobs.alerts.callbacks import default_callbacks
from jobs.runner import run_callbacks
from jobs.settings import load_settings

_SETTINGS = load_settings()
RETRIES = _SETTINGS.ingest_retries
RETRY_DELAY = timedelta(seconds=_SETTINGS.ingest_retry_delay_seconds)


def _window():
    from jobs.ingest.tasks import window_from_context

    return window_from_context(get_current_context())


def _plan() -> dict:
    from jobs.ingest.tasks import plan

    params = get_current_context()["params"]
    return plan(_window(), params.get("tenant"), params.get("connector"))


@dag(
    dag_id="ingest_hourly",
    schedule=CronDataIntervalTimetable("0 * * * *", timezone="UTC"),
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    tags=["recon", "ingest", "hourly"],
    doc_md=__doc__,
    default_args={"owner": "finance-ops", "retries": RETRIES, "retry_delay": RETRY_DELAY,
                  "retry_exponential_backoff": True, "max_retry_delay": timedelta(minutes=30), **default_callbacks()},
    **run_callbacks(),
    params={
        "tenant": Param(None, type=["null", "string"], description="only this tenant's connectors"),
        "connector": Param(None, type=["null", "string"],
                           description="only this connector id (runs it even if its schedule does not fire)"),
    },
)
def ingest_hourly():
    @task
    def due_connectors() -> list[dict]:
        return _plan()["due"]

    @task
    def delivery_windows() -> list[dict]:
        return _plan()["deadlines"]

    @task(map_index_template="{{ connector_label }}")
    def ingest(connector: dict) -> dict:
        from jobs.ingest.errors import ConnectorError
        from jobs.ingest.tasks import raise_for_airflow, run_connector

        ctx = get_current_context()
        ctx["connector_label"] = connector["label"]
        ti = ctx["ti"]
        try:
            return run_connector(connector, _window(), ti.try_number, last_try=ti.try_number > ti.max_tries)
        except ConnectorError as exc:
            raise_for_airflow(exc)

    @task(map_index_template="{{ connector_label }}", trigger_rule=TriggerRule.ALL_DONE)
    def check_delivery(connector: dict) -> dict:
        from jobs.ingest.errors import ConnectorError
        from jobs.ingest.tasks import check_delivery as check, raise_for_airflow

        get_current_context()["connector_label"] = connector["label"]
        try:
            return check(connector, _window())
        except ConnectorError as exc:
            raise_for_airflow(exc)

    @task(trigger_rule=TriggerRule.ALL_DONE)
    def redetect() -> int:
        from jobs.ingest.tasks import redetect as redetect_formats

        return redetect_formats(_plan()["tenants"], _window())

    ingested = ingest.expand(connector=due_connectors())
    checked = check_delivery.expand(connector=delivery_windows())
    ingested >> checked >> redetect()


ingest_hourly()
