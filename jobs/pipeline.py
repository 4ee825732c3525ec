"""The reconciliation pipeline, stage by stage: the same functions the DAG's tasks and ``recon run`` call.

land -> parse -> match -> ledger -> publish (-> erp_export in the DAG). Every stage is keyed to
(tenant, business date) and is idempotent: it replaces what it wrote before for that key, so any stage or the whole run can be rerun.
"""
from __future__ import annotations

import logging
from dataclasses import asdict
from datetime import date
from pathlib import Path

from jobs.landing import LandResult, files_for_date, land_directory
from jobs.settings import Settings
from jobs.store.db import connect
from jobs.store.migrate import migrate
from jobs.tenants import TenantConfig, load_tenant, record_tenant

log = logging.getLogger(__name__)


def prepare(settings: Settings, tenant_id: str) -> TenantConfig:
    """Schema up to date, tenant configuration loaded and recorded."""
    migrate(settings)
    cfg = load_tenant(settings, tenant_id)
    with connect(settings) as conn:
        record_tenant(conn, cfg)
    return cfg


def mark_running(settings: Settings, tenant_id: str, business_date: date, run_id: str) -> None:
    with connect(settings) as conn:
        conn.execute(
            "INSERT INTO recon_run (tenant_id, business_date, run_id, status) VALUES (%s, %s, %s, 'running') "
            "ON CONFLICT (tenant_id, business_date) DO UPDATE SET run_id = EXCLUDED.run_id, status = 'running', "
            "started_at = now(), finished_at = NULL",
            (tenant_id, business_date, run_id))


def mark_failed(settings: Settings, tenant_id: str, business_date: date, error: str) -> None:
    with connect(settings) as conn:
        conn.execute("UPDATE recon_run SET status = 'failed', finished_at = now(), summary = jsonb_build_object("
                     "'error', %s::text) WHERE tenant_id = %s AND business_date = %s",
                     (error[:2000], tenant_id, business_date))


def stage_land(settings: Settings, tenant_id: str, business_date: date, landing: Path) -> list[LandResult]:
    with connect(settings) as conn:
        return land_directory(settings, conn, tenant_id, business_date, landing)


def stage_parse(spark, settings: Settings, tenant_id: str, business_date: date) -> list:
    from jobs.privacy import tenant_salt
    from jobs.stages.parse import parse_files

    with connect(settings) as conn:
        files = files_for_date(conn, tenant_id, business_date)
    summaries = parse_files(spark, settings, tenant_id, business_date, files, tenant_salt(settings, tenant_id))
    with connect(settings) as conn:
        for s in summaries:
            conn.execute(
                "UPDATE raw_file SET records_read = %s, records_loaded = %s, records_quarantined = %s, "
                "control_totals_ok = %s, parse_detail = %s, parsed_at = now() WHERE tenant_id = %s AND sha256 = %s",
                (s.records_read, s.records_loaded, s.records_quarantined, s.control_totals_ok, s.detail, tenant_id,
                 s.sha256))
    return summaries


def stage_match(spark, settings: Settings, cfg: TenantConfig, business_date: date, run_id: str):
    from jobs.match.engine import run_match
    from jobs.match.manual import load_actions

    return run_match(spark, settings, cfg, business_date, run_id, load_actions(settings, cfg.tenant_id))


def stage_ledger(spark, settings: Settings, cfg: TenantConfig, business_date: date, run_id: str) -> dict:
    from jobs.ledger.stage import run_ledger

    return run_ledger(spark, settings, cfg, business_date, run_id)


def stage_erp_export(spark, settings: Settings, cfg: TenantConfig, business_date: date, actor: str) -> dict:
    """The day's journals not yet sent, one outbox batch per ERP in ``erp.targets`` (see jobs/ledger/erp)."""
    from jobs.ledger.stage import run_erp_export

    return run_erp_export(spark, settings, cfg, business_date, actor)


def stage_publish(spark, settings: Settings, tenant_id: str, business_date: date, run_id: str) -> dict:
    from jobs.stages import summary as summary_stage
    from jobs.stages.publish import publish

    lookback = load_tenant(settings, tenant_id).lookback_days
    summary, metrics = summary_stage.compute(spark, settings, tenant_id, business_date, lookback)
    summary["open_exceptions_published"] = publish(spark, settings, tenant_id, business_date, run_id, summary, metrics)
    return summary


def run_all(settings: Settings, tenant_id: str, business_date: date, landing: Path | None, run_id: str,
            spark=None) -> dict:
    """All stages in one process (one Spark session): what ``recon run`` does."""
    from jobs.spark import get_spark

    cfg = prepare(settings, tenant_id)
    mark_running(settings, tenant_id, business_date, run_id)
    try:
        landed = stage_land(settings, tenant_id, business_date, landing) if landing else []
        spark = spark or get_spark(settings, app_name=f"recon-{tenant_id}-{business_date}")
        files = stage_parse(spark, settings, tenant_id, business_date)
        matched = stage_match(spark, settings, cfg, business_date, run_id)
        stage_ledger(spark, settings, cfg, business_date, run_id)
        summary = stage_publish(spark, settings, tenant_id, business_date, run_id)
    except Exception as exc:
        mark_failed(settings, tenant_id, business_date, f"{type(exc).__name__}: {exc}")
        raise
    summary["landed"] = [asdict(r) for r in landed]
    summary["files"] = [asdict(f) for f in files]
    summary["match"] = asdict(matched)
    return summary
