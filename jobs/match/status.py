"""What every open item is after a run: EXPECTED (still inside its window) or an EXCEPTION with a
reason code, and when an expected item will become one (``due_date``)."""
from __future__ import annotations

from datetime import date

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from jobs.calendar import BusinessCalendar
from jobs.match.rules import (BOOK_PSP, DUPLICATE, LATE_SETTLEMENT, MISSING_IN_BANK, MISSING_IN_BOOK,
                              MISSING_IN_PSP, PAYOUT_BANK, PSP_SETTLEMENT, MatchRules)

REASON_PRIORITY = ["DUPLICATE", "CURRENCY_MISMATCH", "AMOUNT_MISMATCH", "PAYOUT_MISMATCH", "AMBIGUOUS"]


def _date_map(spark: SparkSession, dates: DataFrame, column: str, days: int, cal: BusinessCalendar) -> Column:
    """A literal map date -> date + ``days`` business days, for the few distinct dates present."""
    distinct = [r[0] for r in dates.select(column).distinct().collect() if r[0] is not None]
    pairs = [x for d in sorted(distinct) for x in (F.lit(d), F.lit(cal.add_business_days(d, days)))]
    return F.create_map(*pairs) if pairs else F.create_map().cast("map<date,date>")


def _settlement_due(items: DataFrame, rules: MatchRules, cal: BusinessCalendar) -> Column:
    """'psp|booking date' -> the day a notified payment still unsettled becomes LATE_SETTLEMENT."""
    waiting = items.filter(F.col("relation") == PSP_SETTLEMENT).select("psp", F.to_date("booked_at").alias("d"))
    pairs = []
    for r in waiting.distinct().collect():
        if r.d is not None:
            days = rules.settlement_days.get(r.psp, 2) + rules.ageing_payout_days
            pairs += [F.lit(f"{r.psp}|{r.d.isoformat()}"), F.lit(cal.add_business_days(r.d, days))]
    return F.create_map(*pairs) if pairs else F.create_map().cast("map<string,date>")


def compute(spark: SparkSession, unmatched: DataFrame, flags: DataFrame, open_payouts: DataFrame, rules: MatchRules,
            cal: BusinessCalendar, run_date: date, items: DataFrame) -> DataFrame:
    """``unmatched``: open items not matched by this run (with is_duplicate, original_event_id). ``items``:
    the run's open items before matching (a superset of ``unmatched``, materialized): the date maps are
    built from it and from ``open_payouts``, so that reading their few distinct dates does not compute
    the joins below three more times (a map with dates no row looks up gives the same result)."""
    keyed = unmatched.withColumn("po_key", F.when(F.col("relation") == PAYOUT_BANK,
                                                  F.concat_ws("|", "source", "payout_ref")))
    priority = F.create_map(*[x for i, r in enumerate(REASON_PRIORITY) for x in (F.lit(r), F.lit(i))])
    ranked_flags = (flags.withColumn("_prio", F.coalesce(priority[F.col("reason_code")], F.lit(len(REASON_PRIORITY))))
                    .groupBy("event_id", "relation")
                    .agg(F.min_by(F.struct("reason_code", "reason_detail"), "_prio").alias("flag")))
    joined = (keyed.join(ranked_flags, ["event_id", "relation"], "left")
              .join(open_payouts, "po_key", "left"))
    ingest_due = _date_map(spark, items, "ingest_date", rules.ageing_book_psp_days, cal)
    payout_due = _date_map(spark, open_payouts, "po_expected", rules.ageing_payout_days, cal)
    settlement_due = _settlement_due(items, rules, cal)
    kind, rel = F.col("source_kind"), F.col("relation")
    carries_missing_in_bank = ((F.col("po_has_row") == 0) | (F.col("event_type") == "payout")) & ~F.coalesce(
        F.col("po_mismatched"), F.lit(False))
    missing_reason = (F.when(rel == PSP_SETTLEMENT, F.lit(LATE_SETTLEMENT))
                      .when(rel == BOOK_PSP, F.when(kind == "book", F.lit(MISSING_IN_PSP)).otherwise(MISSING_IN_BOOK))
                      .when(kind == "bank", F.lit(MISSING_IN_PSP))
                      .when(F.col("po_expected").isNotNull() & carries_missing_in_bank, F.lit(MISSING_IN_BANK)))
    due = (F.when(rel == PSP_SETTLEMENT, settlement_due[F.concat_ws("|", "psp", F.to_date("booked_at").cast("string"))])
           .when((rel == BOOK_PSP) | (kind == "bank"), ingest_due[F.col("ingest_date")])
           .when(missing_reason.isNotNull(), payout_due[F.col("po_expected")]))
    immediate = F.when(F.col("is_duplicate"), F.lit(DUPLICATE)).otherwise(F.col("flag.reason_code"))
    immediate_detail = F.when(F.col("is_duplicate"), F.concat(F.lit("repeats event "),
                                                              F.coalesce("original_event_id", F.lit("delivered earlier")))
                              ).otherwise(F.col("flag.reason_detail"))
    aged = due.isNotNull() & (F.lit(run_date) >= due)
    reason = F.coalesce(immediate, F.when(aged, missing_reason))
    detail = F.coalesce(immediate_detail, F.when(aged, F.concat(F.lit("unmatched since "), F.col("ingest_date")
                                                                .cast("string"))))
    return joined.select(
        "event_id", "relation",
        F.when(reason.isNotNull(), F.lit("EXCEPTION")).otherwise(F.lit("EXPECTED")).alias("status"),
        reason.alias("reason_code"), detail.alias("reason_detail"),
        F.when(immediate.isNull(), due).alias("due_date"),
        "source", "event_type", "amount_minor", "currency", "file_name", "record_ordinal",
    )
