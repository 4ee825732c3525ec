"""One matching run for a tenant and business date: open items -> levels -> assignment -> status.

Writes ``gold/matches`` (one row per member of each match made by this run), ``gold/item_status``
(every item still open after it) and ``silver/open_items`` (the same items with the columns matching
reads, which the next run carries instead of reading old events again), each replacing the (tenant, run
date) partition, so a rerun of the same date gives the same result.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, timedelta

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from jobs import lake
from jobs.calendar import BusinessCalendar
from jobs.match import book_psp, payout_bank, settlement, status
from jobs.match.manual import ManualAction, revoked_match_ids
from jobs.match.prepare import events_of, open_items
from jobs.match.rules import BOOK_PSP, PAYOUT_BANK, PSP_SETTLEMENT, MatchRules
from jobs.schema import MATCH_COLUMNS, MATCH_SCHEMA, conform
from jobs.settings import Settings
from jobs.spark import local_frame
from jobs.tenants import TenantConfig


@dataclass(frozen=True)
class MatchSummary:
    previous_run_date: date | None
    matched_records: dict[str, int]     # "relation/L<level>" -> member records
    match_groups: dict[str, int]        # "relation/L<level>" -> groups
    open_items: dict[str, int]          # "EXPECTED" / reason code -> items


def run_match(spark: SparkSession, settings: Settings, cfg: TenantConfig, run_date: date, run_id: str,
              manual: list[ManualAction] | tuple = ()) -> MatchSummary:
    tenant = cfg.tenant_id
    rules = MatchRules.from_tenant(cfg)
    revoked = sorted(revoked_match_ids(list(manual)))
    reopen, forbidden_bp, forbidden_pb = _revoked(spark, settings, tenant, revoked, run_date)
    lookback = cfg.lookback_days
    items, prev = open_items(spark, settings, tenant, run_date, lookback, reopen, rules.notification_formats)
    if rules.notification_formats:
        events_upto = lake.read(spark, settings, "events", tenant, since=run_date - timedelta(days=lookback),
                                until=run_date)
        waiting = items.filter(F.col("relation") == PSP_SETTLEMENT)
        done = settlement.settled(waiting, events_upto, rules).withColumn("relation", F.lit(PSP_SETTLEMENT))
        items = items.join(done, ["event_id", "relation"], "left_anti")
    items = lake.materialize(items)
    # a day of a few thousand items keeps its intermediate results in the driver (``lake.small_data``),
    # the checkpointed items first
    small = items.count() <= settings.small_run_rows
    with lake.small_data(small):
        if small:
            items = lake.materialize(items)
        manual_members = _manual_groups(spark, items,
                                        [a for a in manual if a.action == "match" and a.match_id not in revoked])
        active = items.filter(~F.col("is_duplicate")).join(
            manual_members.select("event_id", "relation"), ["event_id", "relation"], "left_anti")
        recent = (lake.read(spark, settings, "events", tenant, since=run_date - timedelta(days=rules.date_window_days),
                            until=run_date)
                  .filter(F.col("source_kind").isin("book", "psp")
                          & F.col("event_type").isin("payment", "capture", "refund")))
        population = book_psp.population_amounts(recent)
        bp = book_psp.match(active.filter(F.col("relation") == BOOK_PSP), rules, population, forbidden_bp)
        pb, open_payouts = payout_bank.match(active.filter(F.col("relation") == PAYOUT_BANK), rules, forbidden_pb)
        members = bp.matches.unionByName(pb.matches).unionByName(manual_members.select(*bp.matches.columns))
        lineage = (items.select("event_id", "relation", "file_name", "record_ordinal", "ingest_date")
                   .dropDuplicates(["event_id", "relation"]))
        matches = (members.join(lineage, ["event_id", "relation"], "inner")
                   .withColumn("tenant_id", F.lit(tenant)).withColumn("run_date", F.lit(run_date))
                   .withColumn("rule_version", F.lit(rules.version)).withColumn("run_id", F.lit(run_id)))
        # computed once: written, counted and subtracted from the open items
        written = lake.materialize(conform(matches, MATCH_SCHEMA))
        lake.replace_partition(spark, settings, "matches", written, tenant, run_date)

        # computed once: the item status and the carried open items are both written from it
        unmatched = lake.materialize(items.join(written.select("event_id", "relation"), ["event_id", "relation"],
                                                "left_anti"))
        cal = BusinessCalendar(cfg.weekend, cfg.holidays)
        flags = bp.flags.unionByName(pb.flags)
        state = (status.compute(spark, unmatched, flags, open_payouts, rules, cal, run_date, items=items)
                 .withColumn("tenant_id", F.lit(tenant)).withColumn("run_date", F.lit(run_date))
                 .withColumn("run_id", F.lit(run_id)))
        lake.replace_partition(spark, settings, "item_status", state, tenant, run_date)
        # what the next run matches these items on, so that it need not read the events of their days again
        kept = unmatched.select(*MATCH_COLUMNS, "relation").withColumn("tenant_id", F.lit(tenant)) \
                        .withColumn("run_date", F.lit(run_date))
        lake.replace_partition(spark, settings, "open_items", kept, tenant, run_date)
        summary = _summarise(spark, settings, tenant, run_date, written, prev)
        spark.catalog.clearCache()
        return summary


def _revoked(spark: SparkSession, settings: Settings, tenant: str, revoked: list[str],
             run_date: date) -> tuple[DataFrame | None, DataFrame | None, DataFrame | None]:
    """For groups people unmatched: records to reopen (those not in another active group of an earlier
    run) and the pairs never to propose again, per relation. Only then are the tenant's matches of every
    day read (an unmatched group can be of any earlier run)."""
    if not revoked:
        return None, None, None
    all_matches = lake.read(spark, settings, "matches", tenant)
    gone = all_matches.filter(F.col("match_id").isin(revoked))
    earlier_active = all_matches.filter((F.col("run_date") < F.lit(run_date)) & ~F.col("match_id").isin(revoked))
    reopen = (gone.select("event_id", "relation", "ingest_date").dropDuplicates(["event_id", "relation"])
              .join(earlier_active.select("event_id", "relation"), ["event_id", "relation"], "left_anti"))
    role = lambda r, name: gone.filter(F.col("role") == r).select("match_id", F.col("event_id").alias(name))  # noqa
    forbidden_bp = (role("book", "b_id").join(role("psp", "p_id"), "match_id")
                    .join(gone.filter(F.col("relation") == BOOK_PSP).select("match_id").distinct(), "match_id")
                    .select("b_id", "p_id").distinct())
    events = events_of(spark, settings, tenant, gone.filter(F.col("role") == "psp")).select(
        "event_id", F.concat_ws("|", "source", "payout_ref").alias("p_id"))
    forbidden_pb = (role("bank", "b_id").join(role("psp", "event_id"), "match_id").join(events, "event_id")
                    .select("b_id", "p_id").distinct())
    return lake.materialize(reopen), lake.materialize(forbidden_bp), lake.materialize(forbidden_pb)


def _manual_groups(spark: SparkSession, items: DataFrame, actions: list[ManualAction]) -> DataFrame:
    """Member rows (level 0, rule ``manual``) for manual groups whose records are all open now."""
    member_cols = ["match_id", "relation", "level", "rule_id", "score", "evidence", "event_id", "role"]
    rows = [(a.match_id, a.relation, e, json.dumps({"level": 0, "manual_match_id": a.action_id}))
            for a in actions for e in a.event_ids]
    schema = "match_id string, relation string, event_id string, evidence string"
    wanted = local_frame(spark, rows, schema)
    open_now = wanted.join(items.select("event_id", "relation", "source_kind"), ["event_id", "relation"], "left")
    complete = (open_now.groupBy("match_id").agg(F.count(F.lit(1)).alias("n"), F.count("source_kind").alias("k"))
                .filter("n = k").select("match_id"))
    fields = {f.name: f.dataType for f in MATCH_SCHEMA.fields}
    return (open_now.join(complete, "match_id")
            .select("match_id", "relation", F.lit(0).cast("int").alias("level"), F.lit("manual").alias("rule_id"),
                    F.lit(1).cast(fields["score"]).alias("score"), "evidence", "event_id",
                    F.col("source_kind").alias("role"))
            .select(*member_cols))


def _summarise(spark: SparkSession, settings: Settings, tenant: str, run_date: date, written: DataFrame,
               prev: date | None) -> MatchSummary:
    by_level = written.groupBy("relation", "level").agg(F.count(F.lit(1)).alias("records"),
                                                         F.countDistinct("match_id").alias("groups")).collect()
    state = lake.read(spark, settings, "item_status", tenant, since=run_date, until=run_date)
    by_status = (state.withColumn("k", F.coalesce("reason_code", "status"))
                 .groupBy("k").agg(F.countDistinct("event_id").alias("n")).collect())
    return MatchSummary(
        previous_run_date=prev,
        matched_records={f"{r['relation']}/L{r['level']}": r["records"] for r in by_level},
        match_groups={f"{r['relation']}/L{r['level']}": r["groups"] for r in by_level},
        open_items={r["k"]: r["n"] for r in by_status},
    )
