"""The ledger's exceptions, in the shape of ``gold/item_status`` exceptions so that publish and the
exceptions export treat them alike:

* ``UNEXPECTED_FEE`` (relation ``fee_check``): one per record whose fee differs from the rate card
  beyond tolerance, from ``gold/fee_checks`` of the run date (open ones carried from earlier runs);
  ``amount_minor`` is the total fee variance (charged - rate card), the detail names each component;
* ``DISPUTE_TRANSITION`` (relation ``dispute``): refused dispute lifecycle steps not yet acknowledged
  (PostgreSQL ``dispute_event``; staged by ``sql/queries/exceptions_stage_disputes.sql``).
"""
from __future__ import annotations

from datetime import date

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from jobs import lake
from jobs.ledger.fees import UNEXPECTED_FEE
from jobs.settings import Settings
from jobs.store.db import connect

FEE_RELATION, DISPUTE_RELATION = "fee_check", "dispute"


def fee_exceptions(spark: SparkSession, settings: Settings, tenant: str, run_date: date) -> DataFrame:
    checks = lake.read(spark, settings, "fee_checks", tenant, since=run_date, until=run_date).filter(
        F.col("status") == UNEXPECTED_FEE)
    return (checks.groupBy("event_id", "psp", "event_type", "currency", "file_name", "record_ordinal")
            .agg(F.sum("variance_minor").alias("amount_minor"),
                 F.concat_ws("; ", F.array_sort(F.collect_list("reason_detail"))).alias("reason_detail"))
            .select("event_id", F.lit(FEE_RELATION).alias("relation"), F.lit(UNEXPECTED_FEE).alias("reason_code"),
                    "reason_detail", F.col("psp").alias("source"), "event_type", "amount_minor", "currency",
                    "file_name", "record_ordinal"))


def dispute_exception_records(settings: Settings, tenant: str) -> list[tuple[str, int, str]]:
    """(file_name, record_ordinal, 'DISPUTE_TRANSITION') of the open refused transitions."""
    with connect(settings, tenant) as conn:
        rows = conn.execute("SELECT DISTINCT file_name, record_ordinal FROM dispute_event WHERE tenant_id = %s AND "
                            "outcome = 'refused' AND acknowledged_at IS NULL AND file_name IS NOT NULL",
                            (tenant,)).fetchall()
    return [(r["file_name"], r["record_ordinal"], "DISPUTE_TRANSITION") for r in rows]
