"""One matching run for a tenant and business date: open items -> levels -> assignment -> status.

Writes ``gold/matches`` (one row per member of each match made by this run) and ``gold/item_status``
(every item still open after it), both replacing the (tenant, run date) partition, so a rerun of the
same date gives the same result.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from jobs import lake
from jobs.calendar import BusinessCalendar
from jobs.match import book_psp, payout_bank, status
from jobs.match.prepare import open_items
from jobs.match.rules import BOOK_PSP, PAYOUT_BANK, MatchRules
from jobs.settings import Settings
from jobs.tenants import TenantConfig


@dataclass(frozen=True)
class MatchSummary:
    previous_run_date: date | None
    matched_records: dict[str, int]     # "relation/L<level>" -> member records
    match_groups: dict[str, int]        # "relation/L<level>" -> groups
    open_items: dict[str, int]          # "EXPECTED" / reason code -> items


def run_match(spark: SparkSession, settings: Settings, cfg: TenantConfig, run_date: date, run_id: str) -> MatchSummary:
    tenant = cfg.tenant_id
    rules = MatchRules.from_tenant(cfg)
    items, prev = open_items(spark, settings, tenant, run_date)
    items = lake.materialize(items)
    active = items.filter(~F.col("is_duplicate"))
    recent = (lake.read(spark, settings, "events", tenant)
              .filter(F.col("ingest_date").between(F.date_sub(F.lit(run_date), rules.date_window_days), F.lit(run_date)))
              .filter(F.col("source_kind").isin("book", "psp") & F.col("event_type").isin("payment", "capture", "refund")))
    population = lake.materialize(book_psp.population_amounts(recent))
    bp = book_psp.match(active.filter(F.col("relation") == BOOK_PSP), rules, population)
    pb, open_payouts = payout_bank.match(active.filter(F.col("relation") == PAYOUT_BANK), rules)
    members = bp.matches.unionByName(pb.matches)
    lineage = items.select("event_id", "relation", "file_name", "record_ordinal").dropDuplicates(["event_id", "relation"])
    matches = (members.join(lineage, ["event_id", "relation"], "inner")
               .withColumn("tenant_id", F.lit(tenant)).withColumn("run_date", F.lit(run_date))
               .withColumn("rule_version", F.lit(rules.version)).withColumn("run_id", F.lit(run_id)))
    lake.replace_partition(spark, settings, "matches", matches, tenant, run_date)
    written = lake.materialize(lake.read(spark, settings, "matches", tenant)
                               .filter(F.col("run_date") == F.lit(run_date)))

    unmatched = items.join(written.select("event_id", "relation"), ["event_id", "relation"], "left_anti")
    cal = BusinessCalendar(cfg.weekend, cfg.holidays)
    flags = bp.flags.unionByName(pb.flags)
    state = (status.compute(spark, unmatched, flags, open_payouts, rules, cal, run_date)
             .withColumn("tenant_id", F.lit(tenant)).withColumn("run_date", F.lit(run_date))
             .withColumn("run_id", F.lit(run_id)))
    lake.replace_partition(spark, settings, "item_status", state, tenant, run_date)
    summary = _summarise(spark, settings, tenant, run_date, written, prev)
    spark.catalog.clearCache()
    return summary


def _summarise(spark: SparkSession, settings: Settings, tenant: str, run_date: date, written: DataFrame,
               prev: date | None) -> MatchSummary:
    by_level = written.groupBy("relation", "level").agg(F.count(F.lit(1)).alias("records"),
                                                         F.countDistinct("match_id").alias("groups")).collect()
    state = lake.read(spark, settings, "item_status", tenant).filter(F.col("run_date") == F.lit(run_date))
    by_status = (state.withColumn("k", F.coalesce("reason_code", "status"))
                 .groupBy("k").agg(F.countDistinct("event_id").alias("n")).collect())
    return MatchSummary(
        previous_run_date=prev,
        matched_records={f"{r['relation']}/L{r['level']}": r["records"] for r in by_level},
        match_groups={f"{r['relation']}/L{r['level']}": r["groups"] for r in by_level},
        open_items={r["k"]: r["n"] for r in by_status},
    )
