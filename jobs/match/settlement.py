"""PSP notifications (webhook events) waiting for their settlement: the source of LATE_SETTLEMENT.

A tenant can mark a PSP's event feed as notifications (``psps.<psp>.notification_formats``, e.g.
``stripe.events``): those events announce a charge or refund but are not what gets matched or posted;
the settlement reports are. Each notified payment/refund stays open in relation ``psp_settlement``
until a settlement-report row of the same PSP with the same PSP id and kind is in the lake. One that
is still unsettled after the PSP's settlement window (``settlement_business_days``) plus the payout
ageing is a ``LATE_SETTLEMENT`` exception: the PSP took the money but has not paid it out.
"""
from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from jobs.match.rules import MatchRules


def _kind(col: str = "event_type"):
    return F.when(F.col(col).isin("payment", "capture"), "payment").otherwise(F.col(col))


def settled(waiting: DataFrame, events: DataFrame, rules: MatchRules) -> DataFrame:
    """event_id of the waiting notifications that a settlement row now covers."""
    reports = (events.filter((F.col("source_kind") == "psp") & ~F.col("format").isin(*rules.notification_formats)
                             & F.col("psp_ref").isNotNull())
               .select(F.col("source").alias("r_source"), F.col("psp_ref").alias("r_ref"), _kind().alias("r_kind"))
               .distinct())
    cond = ((F.col("source") == F.col("r_source")) & (F.col("psp_ref") == F.col("r_ref"))
            & (_kind() == F.col("r_kind")))
    return waiting.join(reports, cond, "left_semi").select("event_id").distinct()
