"""Alerts: always recorded in PostgreSQL (``alert``) and logged as errors, then delivered through the
Airflow connections configured for them.

Channels are Airflow connection ids, from the connector's ``alert_conn_ids`` or else the
comma-separated ``RECON_ALERT_CONN_IDS``; the connection's type picks the provider hook:

| connection type    | delivery                                     | connection holds                      |
|--------------------|----------------------------------------------|---------------------------------------|
| slackwebhook       | Slack incoming webhook (SlackWebhookHook)    | webhook token/URL as password         |
| pagerduty_events   | PagerDuty Events v2 (PagerdutyEventsHook)    | integration key as password           |
| aws                | SNS publish (SnsHook)                        | extra ``sns_topic_arn``               |
| smtp / email       | e-mail (SmtpHook)                            | extra ``to`` (comma-separated)        |
| http               | JSON POST (HttpHook)                         | base URL; extra ``endpoint``          |

A channel that fails does not stop the others; its error is stored on the alert row. With no channel
configured the alert is still recorded and logged (never silently dropped). The same
``dedupe_key`` is raised once: an hourly check of a late file alerts once per day.
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

from jobs.ingest.config import Connector

log = logging.getLogger(__name__)
ALERT_CONN_IDS_ENV = "RECON_ALERT_CONN_IDS"


@dataclass(frozen=True)
class Alert:
    alert_id: int
    tenant_id: str
    connector_id: str | None
    kind: str
    severity: str
    dedupe_key: str
    message: str
    detail: dict[str, Any]


def channels_for(connector: Connector | None) -> list[str]:
    configured = connector.config.get("alert_conn_ids") if connector else None
    if configured:
        return list(configured)
    from jobs.settings import load_settings

    return list(load_settings().alert_conn_ids)


def raise_alert(conn, tenant_id: str, connector: Connector | None, kind: str, message: str, dedupe_key: str,
                severity: str = "error", detail: dict[str, Any] | None = None) -> Alert | None:
    """Record (once per dedupe_key), log and deliver an alert. Returns None when already raised."""
    detail = detail or {}
    row = conn.execute(
        "INSERT INTO alert (tenant_id, connector_id, kind, severity, dedupe_key, message, detail) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT (dedupe_key) DO NOTHING RETURNING alert_id",
        (tenant_id, connector.connector_id if connector else None, kind, severity, dedupe_key, message,
         json.dumps(detail, default=str))).fetchone()
    conn.commit()
    if row is None:
        log.error("%s (alert %s already raised)", message, dedupe_key)
        return None
    alert = Alert(row["alert_id"], tenant_id, connector.connector_id if connector else None, kind, severity,
                  dedupe_key, message, detail)
    log.error("ALERT %s [%s] %s", alert.alert_id, kind, message)
    channels = channels_for(connector)
    if not channels:
        log.error("no alert channel configured (connector alert_conn_ids or %s): alert %s is recorded in the "
                  "alert table only", ALERT_CONN_IDS_ENV, alert.alert_id)
    delivered, errors = [], []
    for conn_id in channels:
        try:
            deliver(conn_id, alert)
            delivered.append(conn_id)
        except Exception as exc:  # one broken channel must not hide the alert from the others
            log.exception("alert %s: delivery through connection %r failed", alert.alert_id, conn_id)
            errors.append(f"{conn_id}: {type(exc).__name__}: {exc}")
    conn.execute("UPDATE alert SET delivered_via = %s, delivery_errors = %s WHERE alert_id = %s",
                 (delivered, "; ".join(errors) or None, alert.alert_id))
    conn.commit()
    return alert


def resolve_alerts(conn, tenant_id: str, connector_id: str, kind: str, dedupe_prefix: str) -> int:
    n = conn.execute("UPDATE alert SET resolved_at = now() WHERE tenant_id = %s AND connector_id = %s AND kind = %s "
                     "AND dedupe_key LIKE %s AND resolved_at IS NULL",
                     (tenant_id, connector_id, kind, dedupe_prefix + "%")).rowcount
    conn.commit()
    return n


def _text(alert: Alert) -> str:
    """The alert as one line; messages start with ``tenant/connector`` (see jobs.ingest.errors)."""
    who = f"{alert.tenant_id}/{alert.connector_id}" if alert.connector_id else alert.tenant_id
    message = alert.message if alert.message.startswith(who) else f"{who}: {alert.message}"
    return f"[psp-recon {alert.severity}] {message}"


def deliver(conn_id: str, alert: Alert) -> None:
    """Send one alert through the Airflow connection ``conn_id`` (its type picks the hook)."""
    from airflow.sdk import BaseHook

    connection = BaseHook.get_connection(conn_id)
    conn_type = (connection.conn_type or "").lower()
    extra = connection.extra_dejson
    text = _text(alert)
    if conn_type == "slackwebhook":
        from airflow.providers.slack.hooks.slack_webhook import SlackWebhookHook

        SlackWebhookHook(slack_webhook_conn_id=conn_id).send_text(text)
    elif conn_type == "pagerduty_events":
        from airflow.providers.pagerduty.hooks.pagerduty_events import PagerdutyEventsHook

        PagerdutyEventsHook(pagerduty_events_conn_id=conn_id).send_event(
            summary=text[:1024], severity=alert.severity, source="psp-recon", dedup_key=alert.dedupe_key,
            custom_details=alert.detail, component=alert.connector_id, group=alert.tenant_id, class_type=alert.kind)
    elif conn_type == "aws":
        from airflow.providers.amazon.aws.hooks.sns import SnsHook

        topic = extra.get("sns_topic_arn")
        if not topic:
            raise ValueError(f"connection {conn_id!r} (aws) needs extra sns_topic_arn to deliver alerts")
        SnsHook(aws_conn_id=conn_id).publish_to_target(target_arn=topic, message=text,
                                                        subject=f"psp-recon alert: {alert.kind}"[:100])
    elif conn_type in ("smtp", "email"):
        from airflow.providers.smtp.hooks.smtp import SmtpHook

        to = extra.get("to")
        if not to:
            raise ValueError(f"connection {conn_id!r} (smtp) needs extra 'to' to deliver alerts")
        with SmtpHook(smtp_conn_id=conn_id) as hook:
            hook.send_email_smtp(to=to, subject=f"psp-recon alert: {alert.kind} {alert.tenant_id}",
                                 html_content=f"<pre>{text}</pre>")
    elif conn_type == "http":
        from airflow.providers.http.hooks.http import HttpHook

        HttpHook(method="POST", http_conn_id=conn_id).run(
            extra.get("endpoint", ""), json={"text": text, "alert_id": alert.alert_id, "kind": alert.kind,
                                            "tenant_id": alert.tenant_id, "connector_id": alert.connector_id,
                                            "severity": alert.severity, "detail": alert.detail},
            headers={"Content-Type": "application/json"})
    else:
        raise ValueError(f"connection {conn_id!r} has type {conn_type!r}: alert channels are slackwebhook, "
                         "pagerduty_events, aws (SNS), smtp or http connections")
