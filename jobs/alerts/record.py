"""Raising and resolving alerts: always recorded in PostgreSQL (``alert``) and logged as errors, then delivered
through the channels of their priority.

Channels are Airflow connection ids (``jobs.alerts.channels`` says which types): a connector's ``alert_conn_ids``
for its own alerts, else the tenant's ``alerts.channels.<priority>`` (its recorded configuration, so a callback
needs no configuration folder), else ``RECON_ALERT_CONN_IDS``. A channel that fails does not stop the others;
its error is stored on the alert. With no channel the alert is still recorded and logged, never dropped.

One open alert per condition (its ``dedupe_key``): raising it again while it is open sends nothing and counts
it. P2 and P3 alerts skip a channel that already carried ``alerts.rate_limit_per_hour`` of the tenant's alerts
in the last hour (default 10); P1 alerts always go out. Resolving sends the all-clear through the channels that
carried the alert.
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import date
from typing import Any

from jobs.alerts.channels import SEVERITY, Alert, deliver

log = logging.getLogger(__name__)
ALERT_CONN_IDS_ENV = "RECON_ALERT_CONN_IDS"
PRIORITIES = tuple(SEVERITY)
DEFAULT_RATE_LIMIT_PER_HOUR = 10


@dataclass(frozen=True)
class Routing:
    """Where a tenant's alerts go: connection ids per priority, and the hourly limit per channel."""
    channels: dict[str, tuple[str, ...]]
    rate_limit_per_hour: int = DEFAULT_RATE_LIMIT_PER_HOUR

    @classmethod
    def of(cls, conn, tenant_id: str) -> "Routing":
        """The tenant's recorded ``alerts`` configuration over ``RECON_ALERT_CONN_IDS``."""
        from jobs.settings import load_settings

        default = tuple(load_settings().alert_conn_ids)
        row = conn.execute("SELECT config -> 'alerts' AS alerts FROM tenant WHERE tenant_id = %s",
                           (tenant_id,)).fetchone()
        configured = (row and row["alerts"]) or {}
        per_priority = configured.get("channels") or {}
        channels = {p: tuple(per_priority.get(p, default)) for p in PRIORITIES}
        return cls(channels, int(configured.get("rate_limit_per_hour", DEFAULT_RATE_LIMIT_PER_HOUR)))


def raise_alert(conn, tenant_id: str, kind: str, message: str, dedupe_key: str, priority: str = "P2",
                detail: dict[str, Any] | None = None, connector_id: str | None = None,
                connector_channels: list[str] | None = None, business_date: date | None = None) -> Alert | None:
    """Record, log and deliver an alert. Returns None when the same condition is already open (then it is only
    counted: ``seen_count``, ``last_seen_at``)."""
    if priority not in PRIORITIES:
        raise ValueError(f"alert priority must be one of {', '.join(PRIORITIES)}, got {priority!r}")
    detail = detail or {}
    row = conn.execute(
        "INSERT INTO alert (tenant_id, connector_id, kind, severity, priority, dedupe_key, message, detail, "
        "business_date) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) "
        "ON CONFLICT (dedupe_key) WHERE resolved_at IS NULL DO UPDATE SET seen_count = alert.seen_count + 1, "
        "last_seen_at = now() RETURNING alert_id, seen_count",
        (tenant_id, connector_id, kind, SEVERITY[priority], priority, dedupe_key, message,
         json.dumps(detail, default=str), business_date)).fetchone()
    conn.commit()
    if row["seen_count"] > 1:
        log.error("%s (alert %s still open, seen %d times)", message, dedupe_key, row["seen_count"])
        return None
    alert = Alert(row["alert_id"], tenant_id, kind, priority, dedupe_key, message, detail, connector_id,
                  business_date)
    log.error("ALERT %s [%s %s] %s", alert.alert_id, priority, kind, message)
    routing = Routing.of(conn, tenant_id)
    channels = list(connector_channels) if connector_channels else list(routing.channels[priority])
    if not channels:
        log.error("no alert channel configured (tenant alerts.channels.%s, connector alert_conn_ids or %s): "
                  "alert %s is recorded in the alert table only", priority, ALERT_CONN_IDS_ENV, alert.alert_id)
    delivered, limited, errors = [], [], []
    for conn_id in channels:
        if priority != "P1" and _sent_last_hour(conn, tenant_id, conn_id) >= routing.rate_limit_per_hour:
            log.error("alert %s: not sent through %r, which carried %d alerts of %s in the last hour", alert.alert_id,
                      conn_id, routing.rate_limit_per_hour, tenant_id)
            limited.append(conn_id)
            continue
        try:
            deliver(conn_id, alert)
            delivered.append(conn_id)
        except Exception as exc:  # one broken channel must not hide the alert from the others
            log.exception("alert %s: delivery through connection %r failed", alert.alert_id, conn_id)
            errors.append(f"{conn_id}: {type(exc).__name__}: {exc}")
    conn.execute("UPDATE alert SET delivered_via = %s, rate_limited_via = %s, delivery_errors = %s "
                 "WHERE alert_id = %s", (delivered, limited, "; ".join(errors) or None, alert.alert_id))
    conn.commit()
    return alert


def _sent_last_hour(conn, tenant_id: str, conn_id: str) -> int:
    return conn.execute("SELECT count(*) AS n FROM alert WHERE tenant_id = %s AND raised_at > now() - interval '1 hour' "
                        "AND %s = ANY(delivered_via)", (tenant_id, conn_id)).fetchone()["n"]


def resolve_alerts(conn, tenant_id: str, kind: str, dedupe_prefix: str, resolved_by: str,
                   connector_id: str | None = None, keep: set[str] | frozenset = frozenset()) -> list[Alert]:
    """Resolve the open alerts of ``kind`` whose dedupe key starts with ``dedupe_prefix`` (those in ``keep``
    excepted) and send each one's all-clear through the channels that carried it. Returns them."""
    rows = conn.execute(
        "UPDATE alert SET resolved_at = now(), resolved_by = %s WHERE tenant_id = %s AND kind = %s "
        "AND dedupe_key LIKE %s AND resolved_at IS NULL AND (%s::text IS NULL OR connector_id = %s) "
        "AND NOT dedupe_key = ANY(%s) RETURNING *",
        (resolved_by, tenant_id, kind, _like_prefix(dedupe_prefix), connector_id, connector_id,
         sorted(keep))).fetchall()
    conn.commit()
    cleared = []
    for r in rows:
        alert = Alert(r["alert_id"], r["tenant_id"], r["kind"], r["priority"], r["dedupe_key"], r["message"],
                      r["detail"] or {}, r["connector_id"], r["business_date"])
        log.warning("alert %s resolved (%s): %s", alert.alert_id, resolved_by, alert.message)
        sent = []
        for conn_id in r["delivered_via"]:
            try:
                deliver(conn_id, alert, resolved=True)
                sent.append(conn_id)
            except Exception:  # the alert is resolved all the same; the channel's error is logged
                log.exception("alert %s: the all-clear through connection %r failed", alert.alert_id, conn_id)
        conn.execute("UPDATE alert SET resolved_via = %s WHERE alert_id = %s", (sent, alert.alert_id))
        conn.commit()
        cleared.append(alert)
    return cleared


def _like_prefix(prefix: str) -> str:
    return prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
