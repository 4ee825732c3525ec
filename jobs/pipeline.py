"""The reconciliation pipeline, stage by stage, and the one registry every route dispatches through.

land -> parse -> match -> ledger -> publish (-> erp_export in the DAG). Every stage is keyed to
(tenant, business date) and is idempotent: it replaces what it wrote before for that key, so any stage or the whole
run can be rerun. ``STAGES`` names them; ``run_stage(ctx, name)`` runs one for a ``RunContext`` and records the
run in ``recon_run`` (running / failed / succeeded): the DAG's tasks (``jobs.runner``), ``recon run``
(``run_all``), ``recon stage`` and the remote entry (which calls ``recon stage``) all go through it.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import date
from pathlib import Path
from typing import Any

from jobs.landing import LandResult, files_for_date, land_directory
from jobs.settings import Settings
from jobs.store.db import connect
from jobs.store.migrate import ensure_schema
from jobs.tenants import TenantConfig, load_tenant, record_tenant

log = logging.getLogger(__name__)


def prepare(settings: Settings, tenant_id: str) -> TenantConfig:
    """Schema up to date, tenant configuration loaded and recorded."""
    ensure_schema(settings)
    cfg = load_tenant(settings, tenant_id)
    with connect(settings, tenant_id) as conn:
        record_tenant(conn, cfg)
    return cfg


@dataclass(frozen=True)
class RunContext:
    """What every stage of a run is keyed to: one tenant's business date, in one run (Airflow's run id, or the
    CLI's); ``landing`` is the folder whose new files the land stage lands (else ``Settings.inbox``)."""
    settings: Settings
    tenant_id: str
    business_date: date
    run_id: str
    landing: Path | None = None


def mark_started(ctx: RunContext) -> None:
    """``recon_run`` says running from the start of any stage. A new run id starts the clock and clears the
    previous run's summary (its figures are not this run's); a retry within the run clears only the error."""
    with connect(ctx.settings, ctx.tenant_id) as conn:
        conn.execute(
            "INSERT INTO recon_run (tenant_id, business_date, run_id, status) VALUES (%s, %s, %s, 'running') "
            "ON CONFLICT (tenant_id, business_date) DO UPDATE SET status = 'running', finished_at = NULL, "
            "started_at = CASE WHEN recon_run.run_id = EXCLUDED.run_id THEN recon_run.started_at ELSE now() END, "
            "summary = CASE WHEN recon_run.run_id = EXCLUDED.run_id THEN recon_run.summary - 'error' - 'failed_stage' END, "
            "run_id = EXCLUDED.run_id",
            (ctx.tenant_id, ctx.business_date, ctx.run_id))


def mark_failed(ctx: RunContext, stage: str, error: BaseException) -> None:
    """``recon_run`` says failed, with the stage and the error (one line)."""
    text = f"{type(error).__name__}: {error}"
    with connect(ctx.settings, ctx.tenant_id) as conn:
        conn.execute("UPDATE recon_run SET status = 'failed', finished_at = now(), run_id = %s, summary = "
                     "coalesce(summary, '{}'::jsonb) || jsonb_build_object('error', %s::text, 'failed_stage', %s::text) "
                     "WHERE tenant_id = %s AND business_date = %s",
                     (ctx.run_id, " ".join(text.split())[:2000], stage, ctx.tenant_id, ctx.business_date))


def mark_succeeded_after_publish(ctx: RunContext) -> None:
    """A stage after publish (the ERP export) that succeeded leaves the run succeeded again (publish recorded the
    summary and set succeeded; this stage's start set running)."""
    with connect(ctx.settings, ctx.tenant_id) as conn:
        conn.execute("UPDATE recon_run SET status = 'succeeded', finished_at = now() WHERE tenant_id = %s AND "
                     "business_date = %s AND run_id = %s AND summary IS NOT NULL",
                     (ctx.tenant_id, ctx.business_date, ctx.run_id))


def stage_land(settings: Settings, tenant_id: str, business_date: date, landing: Path) -> list[LandResult]:
    with connect(settings, tenant_id) as conn:
        return land_directory(settings, conn, tenant_id, business_date, landing)


def stage_parse(spark, settings: Settings, tenant_id: str, business_date: date) -> list:
    from jobs.privacy import tenant_salt
    from jobs.stages.parse import parse_files

    with connect(settings, tenant_id) as conn:
        files = files_for_date(conn, tenant_id, business_date)
    summaries = parse_files(spark, settings, tenant_id, business_date, files, tenant_salt(settings, tenant_id))
    with connect(settings, tenant_id) as conn:
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


def stage_publish(spark, settings: Settings, cfg: TenantConfig, business_date: date, run_id: str) -> dict:
    from jobs.stages import summary as summary_stage
    from jobs.stages.publish import publish

    tenant_id = cfg.tenant_id
    summary, metrics = summary_stage.compute(spark, settings, tenant_id, business_date, cfg.lookback_days)
    summary["open_exceptions_published"] = publish(spark, settings, tenant_id, business_date, run_id, summary, metrics)
    return summary


def stage_alerts(settings: Settings, tenant_id: str, business_date: date) -> dict:
    """The run's outcome against the tenant's alert thresholds: alerts raised and resolved (jobs/alerts); its
    figures to StatsD when configured (jobs/metrics.py)."""
    from jobs import metrics
    from jobs.alerts.outcomes import check

    return {**check(settings, tenant_id, business_date),
            "metrics_sent": metrics.export(settings, tenant_id, business_date)}


def stage_report(settings: Settings, tenant_id: str, business_date: date) -> dict:
    """The day's HTML reconciliation report, from what publish recorded, into the lake's reports folder."""
    from jobs.daily_report import write

    return write(settings, tenant_id, business_date)


def stage_maintain(spark, settings: Settings, cfg: TenantConfig, business_date: date) -> dict:
    """The tenant's retention, compaction and VACUUM (jobs/maintenance.py), as of the business date."""
    from jobs.maintenance import maintain

    return maintain(spark, settings, cfg, business_date)


@dataclass(frozen=True)
class Stage:
    """One stage: ``run`` does the work (``spark`` is None for a stage that needs no Spark session) and
    returns what the stage reports; ``report`` makes that a small JSON-able dict (the DAG task's XCom)."""
    name: str
    spark: bool
    run: Callable[[RunContext, TenantConfig, Any], Any]
    report: Callable[[Any], dict]
    recorded: bool = True           # False: the stage observes the run, its start and end do not change recon_run


def _land(ctx: RunContext, cfg: TenantConfig, spark) -> list[LandResult]:
    folder = ctx.landing or ctx.settings.inbox_of(ctx.tenant_id)
    if folder is None or not folder.exists():
        log.info("no landing folder for %s (files arrive through the ingest DAG)", ctx.tenant_id)
        return []
    return stage_land(ctx.settings, ctx.tenant_id, ctx.business_date, folder)


def _publish_report(summary: dict) -> dict:
    return {k: v for k, v in summary.items() if k in ("book_match_rate", "ledger_balanced", "open_exceptions_published")}


STAGES: dict[str, Stage] = {s.name: s for s in (
    Stage("land", False, _land,
          lambda r: {"landed": sum(x.outcome == "landed" for x in r),
                     "already_landed": sum(x.outcome == "already_landed" for x in r)}),
    Stage("parse", True, lambda ctx, cfg, spark: stage_parse(spark, ctx.settings, ctx.tenant_id, ctx.business_date),
          lambda r: {"files": len(r), "records_loaded": sum(f.records_loaded for f in r),
                     "records_quarantined": sum(f.records_quarantined for f in r)}),
    Stage("match", True, lambda ctx, cfg, spark: stage_match(spark, ctx.settings, cfg, ctx.business_date, ctx.run_id),
          lambda r: {"matched_records": r.matched_records, "open_items": r.open_items}),
    Stage("ledger", True, lambda ctx, cfg, spark: stage_ledger(spark, ctx.settings, cfg, ctx.business_date, ctx.run_id),
          lambda r: {"posted": True, **r}),
    Stage("publish", True,
          lambda ctx, cfg, spark: stage_publish(spark, ctx.settings, cfg, ctx.business_date, ctx.run_id),
          _publish_report),
    Stage("erp_export", True,
          lambda ctx, cfg, spark: stage_erp_export(spark, ctx.settings, cfg, ctx.business_date, ctx.run_id),
          lambda r: {"erp": r}),
    Stage("alerts", False, lambda ctx, cfg, spark: stage_alerts(ctx.settings, ctx.tenant_id, ctx.business_date),
          lambda r: r, recorded=False),
    Stage("report", False, lambda ctx, cfg, spark: stage_report(ctx.settings, ctx.tenant_id, ctx.business_date),
          lambda r: r, recorded=False),
    Stage("maintain", True, lambda ctx, cfg, spark: stage_maintain(spark, ctx.settings, cfg, ctx.business_date),
          lambda r: r, recorded=False),
)}
AFTER_PUBLISH = ("erp_export",)


def run_stage(ctx: RunContext, name: str, spark=None, cfg: TenantConfig | None = None, record: bool = True):
    """Run stage ``name`` for ``ctx`` and return its result (``STAGES[name].report`` makes it an XCom). ``recon_run`` records it (``record``): running
    from its start, failed with the stage and the error if it raises; publish records the summary and succeeded.
    A Spark stage without ``spark`` gets this process's session."""
    stage = STAGES[name]
    cfg = cfg or prepare(ctx.settings, ctx.tenant_id)
    record = record and stage.recorded
    if record:
        mark_started(ctx)
    try:
        if stage.spark and spark is None:
            from jobs.spark import get_spark

            spark = get_spark(ctx.settings, app_name=f"recon-{name}-{ctx.tenant_id}-{ctx.business_date}")
        result = stage.run(ctx, cfg, spark)
    except Exception as exc:
        if record:
            mark_failed(ctx, name, exc)
        raise
    if record and name in AFTER_PUBLISH:
        mark_succeeded_after_publish(ctx)
    return result


def run_all(settings: Settings, tenant_id: str, business_date: date, landing: Path | None, run_id: str,
            spark=None) -> dict:
    """land, parse, match, ledger, publish and the outcome alerts in one process (one Spark session): what ``recon
    run`` does."""
    from jobs.spark import get_spark

    ctx = RunContext(settings, tenant_id, business_date, run_id, landing)
    cfg = prepare(settings, tenant_id)
    landed = run_stage(ctx, "land", cfg=cfg) if landing else []
    spark = spark or get_spark(settings, app_name=f"recon-{tenant_id}-{business_date}")
    files = run_stage(ctx, "parse", spark, cfg)
    matched = run_stage(ctx, "match", spark, cfg)
    run_stage(ctx, "ledger", spark, cfg)
    summary = run_stage(ctx, "publish", spark, cfg)
    summary["alerts"] = run_stage(ctx, "alerts", spark, cfg)
    summary["landed"] = [asdict(r) for r in landed]
    summary["files"] = [asdict(f) for f in files]
    summary["match"] = asdict(matched)
    return summary
