"""Journals that may no longer change, and how a rerun books a change to them.

A journal is *frozen* once its posting date lies in a closed period or once it was sent to an ERP.
A rerun of its business date keeps every frozen line exactly as it is. For each original journal J
(``coalesce(restates_journal_id, journal_id)``) the rerun compares what the books hold for J (all its
frozen lines, earlier restatements included) with what J is now, per account and currency; a
difference is booked as one restatement journal of the delta, dated on the next open date and
pointing at J. The delta of two journals balanced per currency is balanced per currency, so the
books stay balanced, and rerunning again finds nothing left to restate.
"""
from __future__ import annotations

from datetime import date

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

KEY = ["J", "account_key", "account", "psp", "currency"]


def _net(lines: DataFrame, key: str) -> DataFrame:
    return (lines.withColumn("J", F.col(key)).withColumn("psp", F.coalesce("psp", F.lit("")))   # null-safe key
            .groupBy(*KEY).agg(F.sum(F.col("debit_minor") - F.col("credit_minor")).alias("net")))


def merge(new: DataFrame, frozen: DataFrame, post_on: date, period_ref: str | None) -> DataFrame:
    """``new``: the rerun's journal lines (posting metadata unset); ``frozen``: the partition's frozen
    lines. Returns frozen + new journals unknown to the books + restatement deltas."""
    booked = _net(frozen.withColumn("_j", F.coalesce("restates_journal_id", "journal_id")), "_j")
    target = _net(new, "journal_id")
    delta = (target.join(booked.withColumnRenamed("net", "booked"), KEY, "full")
             .select(*KEY, (F.coalesce("net", F.lit(0)) - F.coalesce("booked", F.lit(0))).alias("d"))
             .filter(F.col("d") != 0))
    frozen_keys = booked.select("J").distinct()
    fresh = new.join(frozen_keys.withColumnRenamed("J", "journal_id"), "journal_id", "left_anti")
    fresh = fresh.withColumn("posting_date", F.lit(post_on)).withColumn("period_ref", F.lit(period_ref))
    restating = delta.join(frozen_keys, "J", "inner")
    digest = (restating.groupBy("J").agg(F.sha2(F.to_json(F.array_sort(F.collect_list(
        F.struct("account_key", "account", "psp", "currency", "d")))), 256).alias("_digest")))
    context = (new.withColumn("J", F.col("journal_id")).unionByName(
        frozen.withColumn("J", F.coalesce("restates_journal_id", "journal_id")), allowMissingColumns=True)
        .groupBy("J").agg(F.first(F.struct("event_id", "match_id", "source_file_name", "source_record_ordinal",
                                           "memo", "source_event_ids")).alias("ctx")))
    order = Window.partitionBy("J").orderBy("currency", "account_key", "account", "psp")
    ref = F.concat(F.lit("restates journal "), F.col("J"), F.lit(" (booked in a closed period or sent to an ERP)"))
    restatements = (restating.join(digest, "J").join(context, "J", "left").select(
        F.substring(F.sha2(F.concat_ws(":", "J", F.lit("restated"), "_digest"), 256), 1, 32).alias("journal_id"),
        F.row_number().over(order).cast("int").alias("entry_no"), F.lit("restatement").alias("journal_type"),
        "account_key", "account", F.when(F.col("psp") != "", F.col("psp")).alias("psp"), "currency",
        F.greatest("d", F.lit(0)).alias("debit_minor"), F.greatest(-F.col("d"), F.lit(0)).alias("credit_minor"),
        "ctx.*", F.lit("restatement").alias("component"), F.col("J").alias("restates_journal_id"),
        F.lit(post_on).alias("posting_date"),
        (F.concat(ref, F.lit("; "), F.lit(period_ref)) if period_ref else ref).alias("period_ref")))
    return frozen.unionByName(fresh, allowMissingColumns=True).unionByName(restatements, allowMissingColumns=True)
