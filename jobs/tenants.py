"""Tenant configuration: YAML files (one per tenant) loaded, validated and recorded in Postgres."""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import yaml

from jobs.settings import ConfigurationError, Settings

REQUIRED = ("tenant_id", "name", "config_version", "psps", "matching", "ageing", "ledger")


@dataclass(frozen=True)
class TenantConfig:
    raw: dict[str, Any]

    @property
    def tenant_id(self) -> str:
        return self.raw["tenant_id"]

    @property
    def version(self) -> int:
        return int(self.raw["config_version"])

    @cached_property
    def sha256(self) -> str:
        return hashlib.sha256(json.dumps(self.raw, sort_keys=True).encode()).hexdigest()

    @property
    def matching(self) -> dict[str, Any]:
        return self.raw["matching"]

    @property
    def ageing(self) -> dict[str, Any]:
        return self.raw["ageing"]

    @property
    def ledger(self) -> dict[str, Any]:
        return self.raw["ledger"]

    @property
    def weekend(self) -> list[str]:
        return self.raw.get("business_calendar", {}).get("weekend", ["Sat", "Sun"])

    @property
    def holidays(self) -> list[str]:
        return [str(d) for d in self.raw.get("business_calendar", {}).get("holidays", [])]

    def settlement_days(self, psp: str) -> int:
        return int(self.raw["psps"].get(psp, {}).get("settlement_business_days", 2))

    @property
    def minimum_lookback_days(self) -> int:
        """The shortest history (calendar days) the rules need: the L3 time window plus the longest
        settlement window and both ageing periods (business days as calendar days, x 7/5 rounded up),
        plus a week for holidays."""
        business = (max([self.settlement_days(p) for p in self.raw.get("psps", {})] or [2])
                    + int(self.ageing.get("book_psp_business_days", 3)) + int(self.ageing.get("payout_bank_business_days", 2)))
        return int(self.matching.get("date_window_days", 5)) + -(-business * 7 // 5) + 7

    @property
    def lookback_days(self) -> int:
        """``history.lookback_days``: how many calendar days before the business date a run reads (duplicate
        deliveries, payouts whose records arrive over several days, the amount population, settlement
        reports). What is still open when it falls out of the window is carried by the open-items table, so
        a day's cost does not grow with the tenant's history. Default 45; never below
        ``minimum_lookback_days``."""
        history = self.raw.get("history") or {}
        value = history.get("lookback_days", max(45, self.minimum_lookback_days)) if isinstance(history, dict) else None
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigurationError(f"tenant {self.tenant_id}: history.lookback_days must be a whole number of days, "
                                     f"got {value!r}")
        if value < self.minimum_lookback_days:
            raise ConfigurationError(f"tenant {self.tenant_id}: history.lookback_days {value} is shorter than the "
                                     f"{self.minimum_lookback_days} days its matching, settlement and ageing "
                                     "windows need")
        return value


def load_tenant(settings: Settings, tenant_id: str) -> TenantConfig:
    path = settings.tenant_config_dir / f"{tenant_id}.yaml"
    if not path.exists():
        known = ", ".join(sorted(p.stem for p in settings.tenant_config_dir.glob("*.yaml"))) or "none"
        raise ConfigurationError(f"unknown tenant {tenant_id!r}: no {path} (configured tenants: {known})")
    return parse_tenant(path.read_text(), str(path))


def load_recorded_tenant(settings: Settings, tenant_id: str) -> TenantConfig:
    """The tenant's configuration as last recorded in PostgreSQL (``record_tenant``): what a remote job runs with,
    the one the Airflow worker that submitted it recorded from its configuration folder."""
    from jobs.store.db import connect

    with connect(settings, tenant_id) as conn:
        row = conn.execute("SELECT config FROM tenant WHERE tenant_id = %s", (tenant_id,)).fetchone()
    if row is None or not row["config"]:
        raise ConfigurationError(f"tenant {tenant_id!r} has no configuration recorded in the database (the DAG's "
                                 "<stage>_job task records it before a remote job starts)")
    return parse_tenant(json.dumps(row["config"]), f"tenant {tenant_id} (recorded)")


def parse_tenant(text: str, origin: str = "<config>") -> TenantConfig:
    raw = yaml.safe_load(text)
    if not isinstance(raw, dict):
        raise ConfigurationError(f"{origin}: tenant configuration must be a mapping")
    missing = [k for k in REQUIRED if k not in raw]
    if missing:
        raise ConfigurationError(f"{origin}: missing required keys: {', '.join(missing)}")
    cfg = TenantConfig(raw)
    cfg.lookback_days                        # validated now, with the file named, not when a run reads it
    from jobs.alerts.outcomes import Thresholds
    from jobs.maintenance import Retention

    try:
        Thresholds.from_config(cfg.tenant_id, raw.get("alerts"))
        Retention.of(cfg.tenant_id, raw.get("retention"))
    except ConfigurationError as exc:
        raise ConfigurationError(f"{origin}: {exc}") from None
    return cfg


def list_tenants(settings: Settings) -> list[str]:
    return sorted(p.stem for p in settings.tenant_config_dir.glob("*.yaml"))


def record_tenant(conn, cfg: TenantConfig) -> None:
    """Upsert the tenant and keep every configuration version (refusing an edited old version)."""
    payload = json.dumps(cfg.raw, sort_keys=True)
    row = conn.execute(
        "SELECT config_sha256 FROM tenant_config_version WHERE tenant_id = %s AND config_version = %s",
        (cfg.tenant_id, cfg.version),
    ).fetchone()
    if row and row["config_sha256"] != cfg.sha256:
        raise ConfigurationError(
            f"tenant {cfg.tenant_id}: configuration changed but config_version is still {cfg.version}; "
            "bump config_version so matches and journals can tell the versions apart"
        )
    conn.execute(
        "INSERT INTO tenant (tenant_id, name, config, config_version, config_sha256) VALUES (%s, %s, %s, %s, %s) "
        "ON CONFLICT (tenant_id) DO UPDATE SET name = EXCLUDED.name, config = EXCLUDED.config, "
        "config_version = EXCLUDED.config_version, config_sha256 = EXCLUDED.config_sha256, updated_at = now() "
        "WHERE tenant.config_sha256 IS DISTINCT FROM EXCLUDED.config_sha256",
        (cfg.tenant_id, cfg.raw["name"], payload, cfg.version, cfg.sha256),
    )
    if not row:
        conn.execute(
            "INSERT INTO tenant_config_version (tenant_id, config_version, config, config_sha256) VALUES (%s, %s, %s, %s)",
            (cfg.tenant_id, cfg.version, payload, cfg.sha256),
        )
