"""Connector configuration per tenant: validated, versioned in PostgreSQL, no secrets.

A connector is ``(tenant_id, connector_id)`` with a kind (sftp, imap, api, webhook) and a JSON
configuration. Every change (config, enable, disable) writes a new row in ``connector_version`` with
who and when; ``connector`` holds the current version. Credentials are never part of the
configuration: it names Airflow connection ids (``conn_id``, ``secret_conn_id``, ``alert_conn_ids``),
resolved at run time through Airflow's connections or its configured secrets backend. Keys that look
like secrets are refused.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import time
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from jobs.ingest.errors import ConnectorConfigError

KINDS = ("sftp", "imap", "api", "webhook")
WEBHOOK_PROVIDERS = ("stripe", "adyen")
API_FLAVOURS = ("stripe_list",)
_CONNECTOR_ID = re.compile(r"^[a-z][a-z0-9_-]{1,62}$")
_SECRET_LOOKING = re.compile(r"(password|passwd|secret|token|api_?key|private_?key|hmac_?key)$", re.IGNORECASE)
_HHMM = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")

# Per kind: key -> (type(s), default). A default of REQUIRED means the key must be given.
REQUIRED = object()
COMMON: dict[str, tuple[Any, Any]] = {
    "source": (str, REQUIRED),                 # raw-zone source when no parser recognises a file yet
    "schedule": (str, "0 * * * *"),            # cron, in `timezone`: when the hourly DAG runs this connector
    "timezone": (str, "UTC"),
    "delivery_window": ((dict, type(None)), None),
    "alert_conn_ids": (list, []),              # Airflow connection ids (Slack webhook, PagerDuty, SNS, SMTP, HTTP)
}
KIND_KEYS: dict[str, dict[str, tuple[Any, Any]]] = {
    "sftp": {
        "conn_id": (str, REQUIRED),            # Airflow SFTP connection
        "remote_path": (str, REQUIRED),
        "patterns": (list, ["*"]),             # fnmatch patterns on the file name
        "archive_path": ((str, type(None)), None),   # move landed files there on the server
    },
    "imap": {
        "conn_id": (str, REQUIRED),            # Airflow IMAP connection
        "folder": (str, "INBOX"),
        "sender": ((str, type(None)), None),
        "subject": ((str, type(None)), None),
        "attachment_patterns": (list, ["*"]),  # fnmatch patterns on the attachment name
        "unseen_only": (bool, True),
        "processed_folder": ((str, type(None)), None),   # move processed mail there (else: flag \Seen)
        "max_mails": (int, 200),
    },
    "api": {
        "conn_id": (str, REQUIRED),            # Airflow HTTP connection (base URL + API key)
        "flavour": (str, "stripe_list"),
        "endpoint": (str, "/v1/balance_transactions"),
        "page_size": (int, 100),
        "overlap_minutes": (int, 60),          # re-read this much before the watermark (late-visible objects)
        "initial_lookback_hours": (int, 24),   # first run: how far back to start
        "max_attempts": (int, 6),              # per request, on 429 / 5xx / connection errors
        "backoff_seconds": ((int, float), 1.0),
        "max_backoff_seconds": ((int, float), 60.0),
        "objects_per_file": (int, 10000),
    },
    "webhook": {
        "provider": (str, REQUIRED),           # stripe | adyen
        "secret_conn_id": (str, REQUIRED),     # Airflow connection whose password is the signing secret
        "tolerance_seconds": (int, 300),       # Stripe: max age of the signed timestamp
        "basic_auth_conn_id": ((str, type(None)), None),   # Adyen: optional basic auth (login/password)
        "batch_max_events": (int, 5000),
    },
}
WINDOW_KEYS = {"expected_by": str, "min_files": int, "weekdays": list}


@dataclass(frozen=True)
class Connector:
    tenant_id: str
    connector_id: str
    kind: str
    version: int
    enabled: bool
    config: dict[str, Any]

    @property
    def label(self) -> str:
        return f"{self.tenant_id}/{self.connector_id}"

    @property
    def source(self) -> str:
        return self.config["source"]

    def to_dict(self) -> dict[str, Any]:
        """The JSON-able form passed between Airflow tasks."""
        return {"tenant_id": self.tenant_id, "connector_id": self.connector_id, "kind": self.kind,
                "version": self.version, "enabled": self.enabled, "config": self.config, "label": self.label}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Connector":
        return cls(d["tenant_id"], d["connector_id"], d["kind"], int(d["version"]), bool(d["enabled"]), d["config"])


def _type_name(t) -> str:
    names = [x.__name__ for x in (t if isinstance(t, tuple) else (t,)) if x is not type(None)]
    return " or ".join(names)


def _is_type(value: Any, types) -> bool:
    allowed = types if isinstance(types, tuple) else (types,)
    is_bool = isinstance(value, bool)
    return isinstance(value, allowed) and (not is_bool or bool in allowed)


def _find_secret_keys(value: Any, path: str = "") -> list[str]:
    found = []
    if isinstance(value, dict):
        for k, v in value.items():
            if _SECRET_LOOKING.search(str(k)):
                found.append(f"{path}{k}")
            found += _find_secret_keys(v, f"{path}{k}.")
    return found


def validate(kind: str, config: dict[str, Any], where: str = "connector") -> dict[str, Any]:
    """The configuration with defaults filled in; ConnectorConfigError naming every problem."""
    if kind not in KINDS:
        raise ConnectorConfigError(f"{where}: kind {kind!r} is not one of {', '.join(KINDS)}")
    if not isinstance(config, dict):
        raise ConnectorConfigError(f"{where}: configuration must be a JSON object")
    spec = {**COMMON, **KIND_KEYS[kind]}
    problems = [f"{k!r} looks like a secret: put it in an Airflow connection and name its id instead"
                for k in _find_secret_keys(config)]
    problems += [f"unknown key {k!r} (known for {kind}: {', '.join(sorted(spec))})" for k in config if k not in spec]
    out: dict[str, Any] = {}
    for key, (types, default) in spec.items():
        if key not in config:
            if default is REQUIRED:
                problems.append(f"missing required key {key!r}")
            else:
                out[key] = json.loads(json.dumps(default))
            continue
        value = config[key]
        if not _is_type(value, types):
            problems.append(f"{key!r} must be {_type_name(types)}, not {type(value).__name__}")
            continue
        out[key] = value
    if not problems:
        problems += _check_values(kind, out)
    if problems:
        raise ConnectorConfigError(f"{where}: " + "; ".join(problems))
    return out


def _check_values(kind: str, cfg: dict[str, Any]) -> list[str]:
    from croniter import croniter

    problems = []
    if not croniter.is_valid(cfg["schedule"]):
        problems.append(f"schedule {cfg['schedule']!r} is not a valid cron expression")
    try:
        ZoneInfo(cfg["timezone"])
    except (ZoneInfoNotFoundError, ValueError):
        problems.append(f"timezone {cfg['timezone']!r} is not an IANA time zone (e.g. Europe/Berlin)")
    if not all(isinstance(c, str) and c for c in cfg["alert_conn_ids"]):
        problems.append("alert_conn_ids must be a list of Airflow connection ids")
    if cfg["delivery_window"] is not None:
        problems += _check_window(cfg["delivery_window"])
    for key in ("patterns", "attachment_patterns"):
        if key in cfg and (not cfg[key] or not all(isinstance(p, str) and p for p in cfg[key])):
            problems.append(f"{key} must be a non-empty list of file name patterns")
    if kind == "webhook" and cfg["provider"] not in WEBHOOK_PROVIDERS:
        problems.append(f"provider {cfg['provider']!r} is not one of {', '.join(WEBHOOK_PROVIDERS)}")
    if kind == "api":
        if cfg["flavour"] not in API_FLAVOURS:
            problems.append(f"flavour {cfg['flavour']!r} is not one of {', '.join(API_FLAVOURS)}")
        if not 1 <= cfg["page_size"] <= 100:
            problems.append("page_size must be between 1 and 100 (Stripe's limit)")
        if not cfg["endpoint"].startswith("/"):
            problems.append("endpoint must start with / (it is appended to the connection's base URL)")
    if kind == "sftp" and not cfg["remote_path"].startswith("/"):
        problems.append("remote_path must be absolute (start with /)")
    return problems


def _check_window(window: dict[str, Any]) -> list[str]:
    problems = [f"delivery_window: unknown key {k!r} (known: {', '.join(WINDOW_KEYS)})" for k in window if k not in WINDOW_KEYS]
    if not _HHMM.match(str(window.get("expected_by", ""))):
        problems.append("delivery_window.expected_by must be HH:MM (local time in the connector's timezone)")
    if not isinstance(window.get("min_files", 1), int) or window.get("min_files", 1) < 1:
        problems.append("delivery_window.min_files must be a positive integer")
    days = window.get("weekdays", [1, 2, 3, 4, 5])
    if not isinstance(days, list) or not days or not all(isinstance(d, int) and 1 <= d <= 7 for d in days):
        problems.append("delivery_window.weekdays must list ISO weekdays 1 (Monday) .. 7 (Sunday)")
    return problems


def window_of(connector: Connector) -> tuple[time, int, list[int]] | None:
    """(expected_by, min_files, ISO weekdays) of the connector's delivery window, if it has one."""
    w = connector.config.get("delivery_window")
    if not w:
        return None
    hh, mm = (int(x) for x in w["expected_by"].split(":"))
    return time(hh, mm), int(w.get("min_files", 1)), list(w.get("weekdays", [1, 2, 3, 4, 5]))


# --- the versioned store -------------------------------------------------------------------------

_COLUMNS = "tenant_id, connector_id, kind, version, enabled, config"


def _row(r) -> Connector:
    return Connector(r["tenant_id"], r["connector_id"], r["kind"], r["version"], r["enabled"], r["config"])


def _require_tenant(conn, tenant_id: str) -> None:
    if conn.execute("SELECT 1 FROM tenant WHERE tenant_id = %s", (tenant_id,)).fetchone() is None:
        raise ConnectorConfigError(
            f"tenant {tenant_id!r} is not recorded in the database: add its configuration "
            f"(jobs/conf/tenants/{tenant_id}.yaml) and record it (`recon connector add` does so)")


def _write_version(conn, c: Connector, actor: str, note: str | None) -> None:
    conn.execute(
        "INSERT INTO connector_version (tenant_id, connector_id, version, kind, enabled, config, changed_by, change_note) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
        (c.tenant_id, c.connector_id, c.version, c.kind, c.enabled, json.dumps(c.config), actor, note))


def add_connector(conn, tenant_id: str, connector_id: str, kind: str, config: dict[str, Any], actor: str,
                  note: str | None = None, enabled: bool = True) -> Connector:
    """Create a connector (version 1). Commits."""
    if not _CONNECTOR_ID.match(connector_id):
        raise ConnectorConfigError(f"connector id {connector_id!r}: use 2-63 of a-z 0-9 _ -, starting with a letter")
    _require_tenant(conn, tenant_id)
    cfg = validate(kind, config, f"{tenant_id}/{connector_id}")
    c = Connector(tenant_id, connector_id, kind, 1, enabled, cfg)
    inserted = conn.execute(
        "INSERT INTO connector (tenant_id, connector_id, kind, version, enabled, config, updated_by) "
        "VALUES (%s, %s, %s, 1, %s, %s, %s) ON CONFLICT DO NOTHING RETURNING version",
        (tenant_id, connector_id, kind, enabled, json.dumps(cfg), actor)).fetchone()
    if inserted is None:
        conn.rollback()
        raise ConnectorConfigError(f"connector {c.label} already exists: use update to change it")
    _write_version(conn, c, actor, note)
    conn.commit()
    return c


def update_connector(conn, tenant_id: str, connector_id: str, actor: str, config: dict[str, Any] | None = None,
                     enabled: bool | None = None, note: str | None = None) -> Connector:
    """Write a new version with the given config and/or enabled flag (no-op if nothing changes). Commits."""
    row = conn.execute(f"SELECT {_COLUMNS} FROM connector WHERE tenant_id = %s AND connector_id = %s FOR UPDATE",
                       (tenant_id, connector_id)).fetchone()
    if row is None:
        conn.rollback()
        raise ConnectorConfigError(f"no connector {tenant_id}/{connector_id}: add it first")
    current = _row(row)
    cfg = validate(current.kind, config, current.label) if config is not None else current.config
    new_enabled = current.enabled if enabled is None else enabled
    if cfg == current.config and new_enabled == current.enabled:
        conn.rollback()
        return current
    c = Connector(tenant_id, connector_id, current.kind, current.version + 1, new_enabled, cfg)
    conn.execute("UPDATE connector SET version = %s, enabled = %s, config = %s, updated_by = %s, updated_at = now() "
                 "WHERE tenant_id = %s AND connector_id = %s",
                 (c.version, c.enabled, json.dumps(cfg), actor, tenant_id, connector_id))
    _write_version(conn, c, actor, note)
    conn.commit()
    return c


def get_connector(conn, tenant_id: str, connector_id: str, version: int | None = None) -> Connector:
    if version is None:
        row = conn.execute(f"SELECT {_COLUMNS} FROM connector WHERE tenant_id = %s AND connector_id = %s",
                           (tenant_id, connector_id)).fetchone()
    else:
        row = conn.execute(f"SELECT {_COLUMNS} FROM connector_version WHERE tenant_id = %s AND connector_id = %s "
                           "AND version = %s", (tenant_id, connector_id, version)).fetchone()
    if row is None:
        what = f"{tenant_id}/{connector_id}" + (f" version {version}" if version else "")
        raise ConnectorConfigError(f"no connector {what}")
    return _row(row)


def list_connectors(conn, tenant_id: str | None = None, enabled_only: bool = False) -> list[Connector]:
    rows = conn.execute(
        f"SELECT {_COLUMNS} FROM connector WHERE (%s::text IS NULL OR tenant_id = %s) AND (enabled OR NOT %s) "
        "ORDER BY tenant_id, connector_id", (tenant_id, tenant_id, enabled_only)).fetchall()
    return [_row(r) for r in rows]


def history(conn, tenant_id: str, connector_id: str) -> list[dict[str, Any]]:
    return conn.execute(
        "SELECT version, enabled, config, changed_by, changed_at, change_note FROM connector_version "
        "WHERE tenant_id = %s AND connector_id = %s ORDER BY version", (tenant_id, connector_id)).fetchall()
