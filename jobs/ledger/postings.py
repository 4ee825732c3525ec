"""The ledger of one business date: balanced double-entry journals for everything that moved money.

What the run of date D posts (``jobs/ledger/rules.py`` has the accounts):
  * every PSP record ingested on D, once: a record delivered again (same PSP line id) is a duplicate
    and posts nothing, and notification formats (webhooks, ``psps.<psp>.notification_formats``) feed the
    dispute lifecycle only, since the settlement reports carry the same money movements;
  * its fee components, checked against the rate card (``jobs/ledger/fees.py``, ``gold/fee_checks``);
  * one payout journal per payout / batch whose records arrived on D (what the payout moves as known
    on D, less what earlier dates moved for it);
  * every bank entry ingested on D (against the matched payout, else suspense) and the
    reclassification of earlier bank entries the run of D matched;
  * the approved adjustments whose post date is D.
Each journal is balanced per currency (checked as its lines are written: an unbalanced one fails the
write), carries its records (lineage) and the match that justified it, and has an id derived from what
it posts, so rerunning D writes the same journals (the partition of D is replaced; frozen journals are
kept, see ``restate.py``). Postings of a date in a closed period go to the next open date (``periods.py``).
"""
from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, timedelta

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from jobs import lake
from jobs.ledger import fees, periods, restate, rules
from jobs.ledger.adjustments import Adjustment, approved_for, cleared_event_ids
from jobs.ledger.chart import Chart
from jobs.ledger.fx import DEFAULT_MAX_DIFFERENCE_BPS
from jobs.match.prepare import duplicates, events_of, repeated_deliveries
from jobs.match.rules import BOOK_PSP, PAYOUT_BANK
from jobs.settings import Settings
from jobs.spark import local_frame
from jobs.tenants import TenantConfig

# one row per journal: these columns and its ``legs`` (``rules.LEG``), numbered into lines by ``to_lines``
JOURNAL_COLUMNS = ["journal_id", "journal_type", "event_id", "match_id", "source_file_name", "source_record_ordinal",
                   "psp", "memo", "source_event_ids"]


class LedgerError(RuntimeError):
    pass


@dataclass(frozen=True)
class LedgerOptions:
    notification_formats: tuple[str, ...]
    max_fx_difference_bps: int

    @classmethod
    def from_tenant(cls, cfg: TenantConfig) -> "LedgerOptions":
        """Notification formats: ``psps.<psp>.notification_formats``, the very setting matching reads, so
        the records matching treats as the settlement of a money movement are the ones posted (a tenant
        whose only Stripe feed is the webhook events leaves it unset, and those events post)."""
        configured = tuple(f for p in cfg.raw.get("psps", {}).values() if isinstance(p, dict)
                           for f in p.get("notification_formats", []))
        return cls(configured, int(cfg.ledger.get("max_fx_difference_bps", DEFAULT_MAX_DIFFERENCE_BPS)))


def journal_id(*parts: Column | str) -> Column:
    """32 hex characters of sha256 over the parts (column names or literal columns), ':'-joined."""
    return F.substring(F.sha2(F.concat_ws(":", *parts), 256), 1, 32)


def posted_events(events: DataFrame, day: date, kind: str, notification_formats: tuple[str, ...],
                  repeated: DataFrame | None = None) -> DataFrame:
    """Records of ``kind`` ingested on ``day`` that post: not a repeat delivery, not a notification.
    ``repeated``: ``repeated_deliveries`` of the events up to ``day``, when the caller computed it."""
    upto = events.filter(F.col("ingest_date") <= F.lit(day))
    new = events.filter((F.col("ingest_date") == F.lit(day)) & (F.col("source_kind") == kind))
    if kind == "psp":
        new = new.filter(F.col("event_type").isin(*rules.POSTED_TYPES))
        if notification_formats:
            new = new.filter(~F.col("format").isin(*notification_formats))
    return new.join(duplicates(upto, new, repeated).select("event_id"), "event_id", "left_anti")


def _psp_journal_columns(df: DataFrame) -> DataFrame:
    memo = F.concat_ws(" ", "source", "event_type", F.coalesce("psp_ref", "psp_line_id"), "merchant_ref")
    return df.select("*", journal_id("event_id", F.lit("post")).alias("journal_id"),
                     F.concat(F.lit("psp_"), "event_type").alias("journal_type"),
                     F.col("file_name").alias("source_file_name"), F.col("record_ordinal").alias("source_record_ordinal"),
                     memo.alias("memo"), F.array("event_id").alias("source_event_ids"))


PAYOUT_KEY = ["source", "psp", "payout_ref", "currency"]


def payout_journal_id(business_date: Column) -> Column:
    """The id of the payout journal of a (``source``, ``payout_ref``, ``currency``) for the records of it
    posted on ``business_date`` (ISO text): what a trace computes from a payout's record."""
    return journal_id("source", "payout_ref", "currency", business_date, F.lit("payout"))


def _payout_amount() -> Column:
    """What a payout moves out of the receivable, from its records: the net of its member records, or
    minus its payout row(s) while no member record is known (a payout row restates its members)."""
    member = F.col("event_type") != "payout"
    return F.when(F.max(member.cast("int")) == 1, F.sum(F.when(member, F.col("net_minor")).otherwise(0))) \
        .otherwise(-F.sum(F.when(~member, F.col("net_minor")).otherwise(0)))


def payouts_of(events: DataFrame, posted: DataFrame, pb_match: DataFrame, day: date,
               notification_formats: tuple[str, ...], repeated: DataFrame | None = None) -> DataFrame:
    """One row per (payout, currency) with records posted on ``day``: what the payout moves as known on
    ``day`` minus what the runs of earlier dates moved for it, so a payout whose records arrive on
    different days (a payouts report a day after the transactions) is moved once in total. ``repeated``: as
    for ``posted_events``."""
    key = F.concat_ws("|", *[F.coalesce(F.col(c), F.lit("")) for c in PAYOUT_KEY])
    today = posted.filter(F.col("payout_ref").isNotNull()).withColumn("_payout", key)
    upto = events.filter(F.col("ingest_date") <= F.lit(day))
    candidates = (upto.filter((F.col("source_kind") == "psp") & F.col("event_type").isin(*rules.POSTED_TYPES)
                              & F.col("payout_ref").isNotNull())
                  .withColumn("_payout", key).join(today.select("_payout").distinct(), "_payout", "left_semi"))
    if notification_formats:
        candidates = candidates.filter(~F.col("format").isin(*notification_formats))
    history = candidates.join(duplicates(upto, candidates, repeated).select("event_id"), "event_id", "left_anti")
    moved = history.groupBy("_payout").agg(_payout_amount().alias("now"))
    earlier = history.filter(F.col("ingest_date") < F.lit(day)).groupBy("_payout").agg(_payout_amount().alias("before"))
    member = F.col("event_type") != "payout"
    first = F.min_by(F.struct("event_id", "file_name", "record_ordinal"),
                     F.struct(member.cast("int"), F.col("file_name"), F.col("record_ordinal")))
    # no list of the payout's records in the journal (one payout can hold millions of a day's records: a
    # row of ~150 MB that one task wrote for minutes); they are the payout's records posted on the day,
    # found by the journal's id (``payout_journal_id``) or through its match
    grouped = (today.join(pb_match, "event_id", "left").groupBy("_payout", *PAYOUT_KEY)
               .agg(first.alias("first"), F.max("match_id").alias("match_id"))
               .join(moved, "_payout").join(earlier, "_payout", "left"))
    return grouped.select(
        payout_journal_id(F.lit(day.isoformat())).alias("journal_id"),
        F.lit("psp_payout").alias("journal_type"), F.col("first.event_id").alias("event_id"), "match_id",
        F.col("first.file_name").alias("source_file_name"), F.col("first.record_ordinal").alias("source_record_ordinal"),
        "psp", F.concat_ws(" ", "source", F.lit("payout"), "payout_ref").alias("memo"),
        F.lit(None).cast("array<string>").alias("source_event_ids"), "currency",
        (F.col("now") - F.coalesce("before", F.lit(0))).alias("payout_minor"))


def bank_postings(events: DataFrame, bank_today: DataFrame, pb: DataFrame, day: date) -> DataFrame:
    """Bank entries to post on ``day`` with the payout each is matched to (amount, currency, PSP)."""
    members = (pb.filter(F.col("role") == "psp").select("match_id", "event_id")
               .join(events.select("event_id", "psp", "currency", "net_minor", "event_type"), "event_id"))
    is_member = F.col("event_type") != "payout"
    payout = members.groupBy("match_id").agg(
        F.when(F.max(is_member.cast("int")) == 1, F.sum(F.when(is_member, F.col("net_minor"))))
         .otherwise(-F.sum("net_minor")).alias("po_amount"),
        F.first("currency").alias("po_currency"), F.first("psp", ignorenulls=True).alias("payout_psp"))
    bank_match = pb.filter(F.col("role") == "bank").select("event_id", "match_id", "run_date")
    today = F.lit(day)
    first = bank_today.join(bank_match, "event_id", "left").select(
        "*", F.lit("bank").alias("first_component"), F.lit("bank").alias("first_account"),
        F.col("run_date").isNotNull().alias("matched"), F.lit("bank").alias("_kind"))
    earlier = (events.filter((F.col("source_kind") == "bank") & (F.col("ingest_date") < today))
               .join(bank_match.filter(F.col("run_date") == today), "event_id", "inner"))
    reclass = earlier.select("*", F.lit("bank.reclass").alias("first_component"),
                             F.lit("suspense").alias("first_account"), F.lit(True).alias("matched"),
                             F.lit("reclass").alias("_kind"))
    both = first.unionByName(reclass).join(payout, "match_id", "left").drop("psp")
    journal_type = (F.when(F.col("_kind") == "reclass", F.lit("suspense_reclass"))
                    .when(F.col("matched"), F.lit("bank_payout")).otherwise(F.lit("bank_unmatched")))
    return both.select(
        "*", journal_id("event_id", "_kind").alias("journal_id"), journal_type.alias("journal_type"),
        F.col("file_name").alias("source_file_name"), F.col("record_ordinal").alias("source_record_ordinal"),
        F.when(F.col("matched"), F.col("payout_psp")).alias("psp"),
        F.concat_ws(" ", F.lit("bank entry"), F.coalesce("bank_ref", "event_id")).alias("memo"),
        F.array("event_id").alias("source_event_ids"))


def adjustment_lines(spark: SparkSession, chart: Chart, adjustments: list[Adjustment]) -> DataFrame:
    """One journal row (``JOURNAL_COLUMNS`` + ``legs``) per approved adjustment."""
    rows = []
    for a in adjustments:
        for key in (a.debit_key, a.credit_key):
            chart.key_for(key)                       # raises with the tenant and key when unknown
        memo = f"adjustment #{a.adjustment_id}: {a.reason}"[:200]
        lineage = [a.event_id] if a.event_id else []
        rows.append((f"adjustment:{a.adjustment_id}", "adjustment", a.event_id, None, None, None, a.psp, memo, lineage,
                     [(1, "adjustment", a.debit_key, a.amount_minor, a.currency),
                      (2, "adjustment", a.credit_key, -a.amount_minor, a.currency)]))
    schema = ("journal_id string, journal_type string, event_id string, match_id string, source_file_name string, "
              f"source_record_ordinal int, psp string, memo string, source_event_ids array<string>, legs array<{rules.LEG}>")
    df = local_frame(spark, rows, schema)
    return df.withColumn("journal_id", F.substring(F.sha2("journal_id", 256), 1, 32))


def to_lines(journals: DataFrame, chart: Chart) -> DataFrame:
    """Journal lines from one row per journal (``JOURNAL_COLUMNS`` + ``legs``): its legs in entry order
    (``rules.in_entry_order``), numbered by position, accounts resolved, debit/credit split. Row by row: no
    shuffle, no sort of the day's lines."""
    lines = journals.select(*JOURNAL_COLUMNS, F.posexplode(rules.in_entry_order(F.col("legs"))).alias("_pos", "_leg"))
    lines = lines.select(*JOURNAL_COLUMNS, (F.col("_pos") + 1).alias("entry_no"), "_leg.*")
    key = chart.resolved_key(F.col("account_key"))
    amount = F.col("leg_amount")
    return lines.select(
        "journal_id", F.col("entry_no").cast("int").alias("entry_no"), "journal_type",
        chart.account_text(key, F.col("psp")).alias("account"),
        F.greatest(amount, F.lit(0)).alias("debit_minor"), F.greatest(-amount, F.lit(0)).alias("credit_minor"),
        F.col("leg_currency").alias("currency"), "event_id", "match_id", "source_file_name", "source_record_ordinal",
        key.alias("account_key"), "psp", F.col("leg_component").alias("component"), "memo", "source_event_ids")


@contextmanager
def unbalanced_as_ledger_error(tenant: str, day: date) -> Iterator[None]:
    """A query failing on ``rules.balanced_or_fail`` inside the block raises ``LedgerError`` naming the
    tenant, the business date and the journal."""
    try:
        yield
    except Exception as exc:             # Spark wraps the error of the failed task (a Py4J or captured error)
        found = re.search(rf"{rules.UNBALANCED} [^\n]*", str(exc))
        if found is None:
            raise
        raise LedgerError(f"tenant {tenant}, business date {day}: {found.group(0).strip()}") from None


def build_lines(events: DataFrame, matches: DataFrame, adjustments: DataFrame, day: date, chart: Chart,
                card: fees.RateCard, opts: LedgerOptions) -> tuple[DataFrame, DataFrame]:
    """(journal lines of ``day``, fee checks of the records posted) from the tenant's events, its active
    matches up to ``day`` and the day's adjustment lines (``adjustment_lines``). Pure: no I/O. A query of the
    lines fails if a journal does not balance per currency (``rules.balanced_or_fail``)."""
    bp = matches.filter(F.col("relation") == BOOK_PSP).groupBy("event_id").agg(F.min("match_id").alias("match_id"))
    pb = matches.filter(F.col("relation") == PAYOUT_BANK)
    # the repeat deliveries up to the day, computed once for the three sets of records that exclude them
    repeated = lake.materialize(repeated_deliveries(events.filter(F.col("ingest_date") <= F.lit(day))))
    posted = lake.materialize(posted_events(events, day, "psp", opts.notification_formats, repeated)
                              .join(bp, "event_id", "left"))
    checks = lake.materialize(fees.check(posted, card))
    fee_components = (fees.posted_fee_components(checks).groupBy("event_id")
                      .agg(F.collect_list(F.struct("component", "charged_minor", "ordinary_minor")).alias("_fees")))
    psp = _psp_journal_columns(posted).join(fee_components, "event_id", "left")
    pb_match = pb.filter(F.col("role") == "psp").groupBy("event_id").agg(F.max("match_id").alias("match_id"))
    bank = bank_postings(events, posted_events(events, day, "bank", (), repeated), pb, day)
    bps = opts.max_fx_difference_bps
    journals = [psp.select(*JOURNAL_COLUMNS, F.concat(rules.psp_gross_legs(bps), rules.psp_fee_legs(F.col("_fees")))
                           .alias("legs")),
                payouts_of(events, posted.drop("match_id"), pb_match, day, opts.notification_formats, repeated)
                .select(*JOURNAL_COLUMNS, rules.payout_legs().alias("legs")),
                bank.select(*JOURNAL_COLUMNS, rules.bank_legs(bps).alias("legs")),
                adjustments.select(*JOURNAL_COLUMNS, "legs")]
    union = journals[0]
    for part in journals[1:]:
        union = union.unionByName(part)
    return to_lines(union.filter(rules.balanced_or_fail(F.col("journal_id"), F.col("legs"))), chart), checks


LINES_PER_RECORD = 4           # journal lines per posted record, about: gross, fee(s), payout, bank


def post_day(spark: SparkSession, settings: Settings, cfg: TenantConfig, business_date: date, run_id: str) -> None:
    from jobs.ledger.erp.outbox import exported_documents
    from jobs.match.manual import active_matches

    tenant, day = cfg.tenant_id, business_date
    chart, card, opts = Chart.from_tenant(cfg), fees.RateCard.from_tenant(cfg), LedgerOptions.from_tenant(cfg)
    # the day's journals need the matches the run of the day made (a record ingested on D is matched by the
    # run of D at the earliest) and the events of the lookback window plus those of the matches' members
    matches = active_matches(spark, settings, tenant, since=day, until=day)
    events = events_of(spark, settings, tenant, matches, since=day - timedelta(days=cfg.lookback_days), until=day)
    # a day whose journal lines (about four per record) are a few thousand keeps its intermediate results in
    # the driver (``lake.small_data``)
    today = events.filter(F.col("ingest_date") == F.lit(day)).count()
    with lake.small_data(today * LINES_PER_RECORD <= settings.small_run_rows):
        adjustments = adjustment_lines(spark, chart, approved_for(settings, tenant, day))
        # the lines are computed once, by the journal's write (or the restatement's merge), which fails on an
        # unbalanced journal before anything is committed
        lines, checks = build_lines(events, matches, adjustments, day, chart, card, opts)
        closed = periods.closed_periods(settings, tenant)
        post_on, ref = periods.posting_date(day, closed)
        exported = exported_documents(spark, settings, tenant, day)
        if exported is not None or any(p.end >= day for p in closed):
            old = lake.read(spark, settings, "journal", tenant, since=day, until=day)
            closed_day = F.lit(False)
            for p in closed:
                closed_day = closed_day | F.col("posting_date").between(F.lit(p.start), F.lit(p.end))
            if exported is not None:                 # a journal with any document sent is frozen whole
                sent = exported.select("journal_id").distinct().withColumn("_sent", F.lit(True))
                old = old.join(sent, "journal_id", "left")
                closed_day = closed_day | F.col("_sent").isNotNull()
            frozen = old.filter(closed_day).drop("_sent")
            with unbalanced_as_ledger_error(tenant, day):
                final = lake.materialize(restate.merge(lines, frozen, post_on, ref))  # reads the partition it replaces
        else:
            final = lines.withColumn("posting_date", F.lit(post_on)).withColumn("period_ref", F.lit(ref))
        keep = lambda name, value: F.coalesce(F.col(name), F.lit(value)) if name in final.columns else F.lit(value)  # noqa
        journal = (final.withColumn("tenant_id", F.lit(tenant)).withColumn("business_date", F.lit(day))
                   .withColumn("chart_version", keep("chart_version", chart.version))    # frozen lines keep theirs
                   .withColumn("run_id", keep("run_id", run_id)))
        with unbalanced_as_ledger_error(tenant, day):
            lake.replace_partition(spark, settings, "journal", journal, tenant, day)
        _write_fee_checks(spark, settings, tenant, day, run_id, checks, cfg.lookback_days)


def _write_fee_checks(spark: SparkSession, settings: Settings, tenant: str, day: date, run_id: str,
                      checks: DataFrame, lookback_days: int) -> None:
    """The run's checks plus the exceptions still open from the previous run (``fees.with_carried``)."""
    last = lake.latest_date(spark, settings, "fee_checks", tenant, day, lookback_days)
    previous = (lake.read(spark, settings, "fee_checks", tenant, since=last, until=last) if last
                else lake.empty(spark, "fee_checks"))
    carried = fees.with_carried(checks, previous,
                                cleared_event_ids(settings, tenant, day), day)
    lake.replace_partition(spark, settings, "fee_checks", carried.withColumn("tenant_id", F.lit(tenant))
                           .withColumn("run_date", F.lit(day)).withColumn("run_id", F.lit(run_id)), tenant, day)
