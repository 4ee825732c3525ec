"""The ledger stage of a business date (DAG task ``ledger``) and the ERP export stage (``erp_export``).

ledger:      fee checks + balanced journals (``postings.post_day``), then the day's chargeback /
             dispute records applied to the dispute lifecycle and missed evidence deadlines expired.
erp_export:  one batch per ERP the tenant exports to (``erp.targets``) with the journals of the date
             not sent yet (``erp/outbox.py``).
"""
from __future__ import annotations

from datetime import date

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from jobs import lake
from jobs.ledger import disputes
from jobs.ledger.postings import post_day
from jobs.ledger.rules import DISPUTE_TYPES
from jobs.settings import Settings
from jobs.tenants import TenantConfig

DISPUTE_FIELDS = ["event_id", "source", "psp", "event_type", "psp_ref", "psp_payment_ref", "amount_minor", "currency",
                  "booked_at", "file_name", "record_ordinal"]


def dispute_records(spark: SparkSession, settings: Settings, tenant: str, day: date) -> list[dict]:
    """The day's PSP records that move a dispute, from every format (webhooks included)."""
    moving = tuple(t for t in DISPUTE_TYPES if t in disputes.PSP_ACTIONS)
    events = lake.read(spark, settings, "events", tenant, since=day, until=day)
    day_rows = events.filter((F.col("source_kind") == "psp") & F.col("event_type").isin(*moving))
    return [r.asDict() for r in day_rows.select(*DISPUTE_FIELDS).collect()]


def run_ledger(spark: SparkSession, settings: Settings, cfg: TenantConfig, day: date, run_id: str) -> dict:
    post_day(spark, settings, cfg, day, run_id)
    return {"disputes": disputes.sync(settings, cfg, day, dispute_records(spark, settings, cfg.tenant_id, day))}


def run_erp_export(spark: SparkSession, settings: Settings, cfg: TenantConfig, day: date, actor: str,
                   erps: list[str] | None = None) -> dict:
    """The day's journals not sent yet, one outbox batch per ERP (``erps``, default the tenant's ``erp.targets``):
    for each ERP its batch (period, id, documents, lines, file, whether it was created now), None without journals."""
    from jobs.ledger.erp.outbox import DayJournals, export_period, targets

    out, journals = {}, DayJournals(spark, settings, cfg.tenant_id, day)
    for erp in erps or targets(cfg):
        batch = export_period(spark, settings, cfg, erp, day, actor, journals)
        out[erp] = None if batch is None else {"period": batch.period, "batch_id": batch.batch_id,
                                               "documents": batch.documents, "lines": batch.lines,
                                               "uri": batch.uri, "created": batch.created}
    return out
