"""Delivering an alert: one Airflow notifier per channel, picked by the type of the channel's Airflow connection.

| connection type    | notifier                                           | connection holds                            |
|--------------------|----------------------------------------------------|---------------------------------------------|
| slackwebhook       | ``SlackWebhookNotifier`` (Slack provider)          | webhook token/URL as password               |
| pagerduty_events   | ``EventsV2Notifier`` (``PagerdutyNotifier`` with   | integration key as password; host: the      |
|                    | the connection's host as the Events API's address) | service region's Events API (default US)    |
| aws                | ``SnsNotifier`` (Amazon provider)                  | extra ``sns_topic_arn``                     |
| smtp / email       | ``SmtpNotifier`` (SMTP provider)                   | extra ``to`` (comma-separated), from_email  |
| http               | ``JsonPostNotifier`` (a JSON POST via ``HttpHook``)| base URL; extra ``endpoint``                |

An alert that clears sends its all-clear through the channels that carried it: PagerDuty resolves the incident of
the same dedup key, the others get a ``[resolved]`` message.
"""
from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass, field
from datetime import date
from functools import cached_property
from typing import Any

from airflow.providers.common.compat.notifier import BaseNotifier

SEVERITY = {"P1": "critical", "P2": "error", "P3": "warning"}
CHANNEL_TYPES = ("slackwebhook", "pagerduty_events", "aws", "smtp", "email", "http")


@dataclass(frozen=True)
class Alert:
    alert_id: int
    tenant_id: str
    kind: str
    priority: str
    dedupe_key: str
    message: str
    detail: dict[str, Any] = field(default_factory=dict)
    connector_id: str | None = None
    business_date: date | None = None

    @property
    def severity(self) -> str:
        return SEVERITY[self.priority]

    def text(self, resolved: bool = False) -> str:
        """The alert as one line; messages start with ``tenant`` or ``tenant/connector``."""
        who = f"{self.tenant_id}/{self.connector_id}" if self.connector_id else self.tenant_id
        message = self.message if self.message.startswith(who) else f"{who}: {self.message}"
        state = "resolved" if resolved else f"{self.priority} {self.severity}"
        return f"[psp-recon {state}] {message}"

    def subject(self, resolved: bool = False) -> str:
        return (f"psp-recon {'resolved' if resolved else self.priority}: {self.kind} {self.tenant_id}"
                + (f" {self.business_date}" if self.business_date else ""))[:100]


class EventsV2Notifier(BaseNotifier):
    """PagerDuty Events API v2 through the provider's notifier, at the connection's host when it names one (the EU
    service region is ``https://events.eu.pagerduty.com``; the provider's synchronous client knows only the US one):
    trigger, or resolve the incident of the same dedup key."""

    def __init__(self, *, conn_id: str, summary: str, severity: str, action: str, dedup_key: str, group: str,
                 component: str | None, class_type: str, custom_details: dict[str, Any]):
        from airflow.providers.pagerduty.notifications.pagerduty import PagerdutyNotifier

        super().__init__()
        self.conn_id = conn_id
        self.inner = PagerdutyNotifier(summary=summary, severity=severity, source="psp-recon", action=action,
                                       dedup_key=dedup_key, custom_details=custom_details, group=group,
                                       component=component, class_type=class_type, pagerduty_events_conn_id=conn_id)

    @cached_property
    def base_url(self) -> str:
        from airflow.sdk import BaseHook

        host = (BaseHook.get_connection(self.conn_id).host or "").rstrip("/")
        return host or "https://events.pagerduty.com"

    def notify(self, context) -> None:
        self.inner.hook_async.base_url = self.base_url
        _run_coroutine(self.inner.async_notify(context))


class JsonPostNotifier(BaseNotifier):
    """The alert as JSON, POSTed to an HTTP connection (a webhook of any chat or incident tool)."""

    def __init__(self, *, conn_id: str, endpoint: str, payload: dict[str, Any]):
        super().__init__()
        self.conn_id, self.endpoint, self.payload = conn_id, endpoint, payload

    def notify(self, context) -> None:
        from airflow.providers.http.hooks.http import HttpHook

        HttpHook(method="POST", http_conn_id=self.conn_id).run(
            self.endpoint, json=self.payload, headers={"Content-Type": "application/json"})


def _run_coroutine(coro) -> None:
    """Run ``coro`` to its end from synchronous code, also when this thread already runs an event loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        asyncio.run(coro)
        return
    failure: list[BaseException] = []

    def target():
        try:
            asyncio.run(coro)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the calling thread
            failure.append(exc)

    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    if failure:
        raise failure[0]


def notifier_for(conn_id: str, alert: Alert, resolved: bool = False) -> BaseNotifier:
    """The notifier that sends ``alert`` (or its all-clear) through the Airflow connection ``conn_id``."""
    from airflow.sdk import BaseHook

    connection = BaseHook.get_connection(conn_id)
    conn_type = (connection.conn_type or "").lower()
    extra = connection.extra_dejson
    text = alert.text(resolved)
    if conn_type == "slackwebhook":
        from airflow.providers.slack.notifications.slack_webhook import SlackWebhookNotifier

        return SlackWebhookNotifier(slack_webhook_conn_id=conn_id, text=text)
    if conn_type == "pagerduty_events":
        return EventsV2Notifier(conn_id=conn_id, summary=text[:1024], severity=alert.severity,
                                action="resolve" if resolved else "trigger", dedup_key=alert.dedupe_key,
                                group=alert.tenant_id, component=alert.connector_id, class_type=alert.kind,
                                custom_details={**alert.detail, "priority": alert.priority,
                                                "alert_id": alert.alert_id})
    if conn_type == "aws":
        from airflow.providers.amazon.aws.notifications.sns import SnsNotifier

        topic = extra.get("sns_topic_arn")
        if not topic:
            raise ValueError(f"connection {conn_id!r} (aws) needs extra sns_topic_arn to deliver alerts")
        attributes = {"priority": alert.priority, "kind": alert.kind, "tenant_id": alert.tenant_id,
                      "state": "resolved" if resolved else "open"}       # for subscription filter policies
        return SnsNotifier(aws_conn_id=conn_id, target_arn=topic, message=text, subject=alert.subject(resolved),
                           message_attributes=attributes)
    if conn_type in ("smtp", "email"):
        from airflow.providers.smtp.notifications.smtp import SmtpNotifier

        to = extra.get("to")
        if not to:
            raise ValueError(f"connection {conn_id!r} (smtp) needs extra 'to' to deliver alerts")
        return SmtpNotifier(to=to, from_email=extra.get("from_email"), smtp_conn_id=conn_id,
                            subject=alert.subject(resolved), html_content=_html(alert, text))
    if conn_type == "http":
        return JsonPostNotifier(conn_id=conn_id, endpoint=extra.get("endpoint", ""), payload={
            "text": text, "alert_id": alert.alert_id, "kind": alert.kind, "priority": alert.priority,
            "severity": alert.severity, "tenant_id": alert.tenant_id, "connector_id": alert.connector_id,
            "business_date": alert.business_date.isoformat() if alert.business_date else None,
            "resolved": resolved, "detail": alert.detail})
    raise ValueError(f"connection {conn_id!r} has type {conn_type!r}: alert channels are slackwebhook, "
                     "pagerduty_events, aws (SNS), smtp or http connections")


def _html(alert: Alert, text: str) -> str:
    from html import escape

    rows = "".join(f"<tr><th align='left'>{escape(str(k))}</th><td>{escape(str(v))}</td></tr>"
                   for k, v in sorted(alert.detail.items()))
    return f"<p>{escape(text)}</p><table>{rows}</table>"


def deliver(conn_id: str, alert: Alert, resolved: bool = False) -> None:
    """Send one alert (or its all-clear) through the Airflow connection ``conn_id``; raises when it fails."""
    notifier_for(conn_id, alert, resolved).notify({})
