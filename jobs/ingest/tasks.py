"""What the ``ingest_hourly`` DAG's tasks do (the DAG file stays a thin shell over these).

- ``plan``: the enabled connectors, those due in this run (their cron fires inside the interval),
  and those with a delivery window to check;
- ``run_connector``: one connector for one run, recorded in ``connector_run``; on its last try (or
  at once for a permanent error: wrong credentials, bad configuration) it raises an alert;
- ``check_delivery``: a connector past its delivery window without its files raises an alert
  (once per day) and fails with a message saying what is missing;
- ``redetect``: files no parser recognised when they landed get their format if one does now.
"""
from __future__ import annotations

import importlib
import logging
from typing import Callable

from jobs.alerts.record import raise_alert, resolve_alerts
from jobs.ingest.config import Connector, get_connector, list_connectors, window_of
from jobs.ingest.errors import PERMANENT_ERRORS, ConnectorConfigError, ConnectorError, FileLateError
from jobs.ingest.runs import IngestResult, deliveries_on, fail_run, finish_run, start_run
from jobs.ingest.window import RunWindow, delivery_deadline, is_due
from jobs.settings import Settings, load_settings
from jobs.store.db import connect, connect_platform
from jobs.store.migrate import ensure_schema

log = logging.getLogger(__name__)
RUNNERS = {
    "sftp": "jobs.ingest.sftp:ingest_sftp",
    "imap": "jobs.ingest.imap:ingest_imap",
    "api": "jobs.ingest.api:ingest_api",
    "webhook": "jobs.ingest.webhooks.inbox:drain_webhooks",
}


def runner_for(kind: str) -> Callable:
    module, func = RUNNERS[kind].split(":")
    return getattr(importlib.import_module(module), func)


def plan(window: RunWindow, tenant_id: str | None = None, connector_id: str | None = None,
         settings: Settings | None = None) -> dict[str, list[dict]]:
    settings = settings or load_settings()
    ensure_schema(settings)
    with connect(settings, tenant_id) if tenant_id else connect_platform(settings) as db:     # every tenant's
        connectors = list_connectors(db, tenant_id, enabled_only=True)
    if connector_id:
        connectors = [c for c in connectors if c.connector_id == connector_id]
        if not connectors:
            raise ConnectorConfigError(f"no enabled connector {connector_id!r}"
                                       + (f" for tenant {tenant_id!r}" if tenant_id else ""))
    due = connectors if connector_id else [c for c in connectors if is_due(c, window)]
    checks = [c for c in connectors if window_of(c) is not None]
    log.info("run %s (%s .. %s): %d enabled connector(s), %d due, %d delivery window(s) to check", window.run_id,
             window.start, window.end, len(connectors), len(due), len(checks))
    return {"due": [c.to_dict() for c in due], "deadlines": [c.to_dict() for c in checks],
            "tenants": sorted({c.tenant_id for c in connectors})}


def run_connector(spec: dict, window: RunWindow, try_number: int = 1, last_try: bool = True,
                  settings: Settings | None = None) -> dict:
    """Run one connector (at the version the plan saw). Raises ConnectorError with a clear message."""
    settings = settings or load_settings()
    with connect(settings, spec["tenant_id"]) as db:
        c = get_connector(db, spec["tenant_id"], spec["connector_id"], version=int(spec["version"]))
        run_pk = start_run(db, c, window, try_number)
        result = IngestResult()
        try:
            runner_for(c.kind)(settings, db, c, window, result)
        except Exception as exc:
            db.rollback()
            message = str(exc) if isinstance(exc, ConnectorError) else f"{c.label}: {type(exc).__name__}: {exc}"
            fail_run(db, run_pk, message, result)
            if isinstance(exc, PERMANENT_ERRORS) or last_try:
                raise_alert(db, c.tenant_id, "connector_failed", message,
                            dedupe_key=f"connector_failed:{c.label}:{window.run_id}", priority="P2",
                            detail={"try_number": try_number, "run_id": window.run_id, "kind": c.kind,
                                    "version": c.version, "landed_before_failure": len(result.landed)},
                            connector_id=c.connector_id, connector_channels=c.config.get("alert_conn_ids"))
            if isinstance(exc, ConnectorError):
                raise
            raise ConnectorError(message) from exc
        finish_run(db, run_pk, result)
    summary = result.summary()
    log.info("%s: %s", c.label, summary)
    return summary


def check_delivery(spec: dict, window: RunWindow, settings: Settings | None = None) -> dict:
    """Alert (once per day) and fail when the connector's files are missing past their deadline."""
    settings = settings or load_settings()
    c = Connector.from_dict(spec)
    day = window.received_date
    deadline = delivery_deadline(c, day)
    if deadline is None or window.end < deadline:
        return {"connector": c.label, "status": "not yet due", "deadline": deadline and deadline.isoformat()}
    _, min_files, _ = window_of(c)
    with connect(settings, c.tenant_id) as db:
        delivered = deliveries_on(db, c, day)
        if delivered >= min_files:
            resolve_alerts(db, c.tenant_id, "file_late", f"file_late:{c.label}:{day}",
                           resolved_by=f"{delivered} file(s) delivered", connector_id=c.connector_id)
            return {"connector": c.label, "status": "delivered", "files": delivered}
        message = (f"{c.label}: {delivered} of {min_files} expected file(s) for {day} delivered by "
                   f"{c.config['delivery_window']['expected_by']} {c.config['timezone']} (checked at the end of "
                   f"interval {window.end.isoformat()}); check the {c.kind} source and the connector's last runs")
        raise_alert(db, c.tenant_id, "file_late", message, dedupe_key=f"file_late:{c.label}:{day}", priority="P3",
                    detail={"received_date": day.isoformat(), "delivered": delivered, "expected": min_files,
                            "deadline": deadline.isoformat()}, connector_id=c.connector_id,
                    connector_channels=c.config.get("alert_conn_ids"), business_date=day)
    raise FileLateError(message)


def redetect(tenants: list[str], window: RunWindow, settings: Settings | None = None) -> int:
    from jobs.landing import redetect_unknown

    settings = settings or load_settings()
    found = 0
    with connect(settings) as db:
        for t in tenants:
            db.use_tenant(t)
            found += redetect_unknown(settings, db, t, window.received_date)
    return found


# --- Airflow glue: context in, clear failures out (imported only inside tasks) --------------------

def window_from_context(ctx) -> RunWindow:
    return RunWindow.from_interval(ctx.get("data_interval_start") or ctx.get("logical_date"),
                                   ctx.get("data_interval_end"), ctx["run_id"])


def raise_for_airflow(exc: ConnectorError):
    """Permanent errors fail the task without retries; others let Airflow retry with backoff."""
    from airflow.sdk.exceptions import AirflowFailException

    if isinstance(exc, PERMANENT_ERRORS):
        raise AirflowFailException(str(exc)) from exc
    raise exc
