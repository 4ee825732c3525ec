"""The open items a run matches: what the previous run left open plus what arrived since, deduplicated.

Carry-over: ``gold/item_status`` of the latest earlier run holds every (event, relation) still open
after it. Run D matches those together with the events ingested after that run up to D. Rerunning D
reads the same two inputs, so it produces the same result; nothing is matched twice because a
matched item is no longer in the carried set.

Duplicates: the same record delivered twice (in one file or two) has the same natural key (book:
payment id + type; PSP: its ledger line id; bank: account + bank reference + amount + value date). The
first delivery (by ingest date, file name, record ordinal) is the original; later copies are
``DUPLICATE`` exceptions and never take part in matching.
"""
from __future__ import annotations

from datetime import date, timedelta

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from jobs import lake
from jobs.match.rules import BOOK_PSP, PAYOUT_BANK, PSP_SETTLEMENT
from jobs.schema import MATCH_COLUMNS
from jobs.settings import Settings

BOOK_TYPES = ("payment", "refund")
PSP_TRANSACTION_TYPES = ("payment", "capture", "refund")


def relations_of(notification_formats: tuple[str, ...] = ()) -> Column:
    """The relations an event takes part in. Events of a PSP's notification formats (webhooks) only wait
    for their settlement row (``psp_settlement``); the settlement reports are what gets matched."""
    kind, etype = F.col("source_kind"), F.col("event_type")
    notification = F.col("format").isin(*notification_formats) if notification_formats else F.lit(False)
    settled_psp = (kind == "psp") & ~notification
    in_book_psp = ((kind == "book") & etype.isin(*BOOK_TYPES)) | (settled_psp & etype.isin(*PSP_TRANSACTION_TYPES))
    in_payout_bank = (settled_psp & F.col("payout_ref").isNotNull()) | (kind == "bank")
    waits_for_settlement = notification & etype.isin(*PSP_TRANSACTION_TYPES)
    return F.filter(F.array(F.when(in_book_psp, F.lit(BOOK_PSP)), F.when(in_payout_bank, F.lit(PAYOUT_BANK)),
                            F.when(waits_for_settlement, F.lit(PSP_SETTLEMENT))), lambda r: r.isNotNull())


def dedupe_key() -> Column:
    kind = F.col("source_kind")
    return (F.when(kind == "book", F.concat_ws("|", F.lit("book"), F.col("merchant_payment_id"), F.col("event_type")))
            .when((kind == "psp") & F.col("psp_line_id").isNotNull(),
                  F.concat_ws("|", F.col("source"), F.col("psp_line_id")))
            .when((kind == "bank") & F.col("bank_ref").isNotNull(),
                  F.concat_ws("|", F.lit("bank"), F.col("account_ref"), F.col("bank_ref"),
                              F.col("amount_minor").cast("string"), F.col("value_date").cast("string"))))


def previous_run_date(spark: SparkSession, settings: Settings, tenant_id: str, run_date: date,
                      lookback_days: int) -> date | None:
    return lake.latest_date(spark, settings, "item_status", tenant_id, run_date, lookback_days)


def events_of(spark: SparkSession, settings: Settings, tenant_id: str, rows: DataFrame, since: date | None = None,
              until: date | None = None) -> DataFrame:
    """The events of the days of ``rows`` (with ``ingest_date``, e.g. match members; a few distinct dates,
    collected), plus those of ``since`` .. ``until`` when given: only those partitions are read; every day's
    up to ``until`` when a row has no ingest date (match rows written before matches recorded it)."""
    dates = [r[0] for r in rows.select("ingest_date").distinct().collect()]
    if None in dates:
        return lake.read(spark, settings, "events", tenant_id, until=until)
    if since is None and until is None and not dates:
        return lake.empty(spark, "events")
    return lake.read(spark, settings, "events", tenant_id, since=since, until=until, also=dates)


def repeated_deliveries(events_upto: DataFrame) -> DataFrame:
    """(_key, original_event_id) for the natural keys delivered more than once: a count per key, then for
    those few keys the first delivery (by ingest date, file name, record ordinal); no window over the
    history. The count is a hash aggregate; the first delivery (a minimum of a struct with text, which Spark
    can only aggregate by sorting) is taken over the repeated keys' records alone, not over every record.
    Few rows: a caller asking ``duplicates`` of several sets of events computes it once."""
    first = F.struct("ingest_date", "file_name", "record_ordinal", "event_id")
    keyed = (events_upto.select("event_id", dedupe_key().alias("_key"), first.alias("_first"))
             .filter(F.col("_key").isNotNull()))
    repeated_keys = keyed.groupBy("_key").agg(F.count(F.lit(1)).alias("_n")).filter(F.col("_n") > 1).select("_key")
    return (keyed.join(repeated_keys, "_key", "left_semi")
            .groupBy("_key").agg(F.min("_first").alias("_first"))
            .select("_key", F.col("_first.event_id").alias("original_event_id")))


def duplicates(events_upto: DataFrame, new: DataFrame, repeated: DataFrame | None = None) -> DataFrame:
    """(event_id, original_event_id) for new events that repeat an earlier delivery: their natural keys
    joined with ``repeated_deliveries(events_upto)`` (``repeated``, when the caller computed it already)."""
    repeated = repeated_deliveries(events_upto) if repeated is None else repeated
    return (new.select("event_id", dedupe_key().alias("_key")).filter(F.col("_key").isNotNull())
            .join(repeated, "_key", "inner")
            .filter(F.col("event_id") != F.col("original_event_id"))
            .select("event_id", "original_event_id"))


def open_items(spark: SparkSession, settings: Settings, tenant_id: str, run_date: date, lookback_days: int,
               reopen: DataFrame | None = None, notification_formats: tuple[str, ...] = ()) -> tuple[DataFrame, date | None]:
    """Every open (event, relation) for the run, with ``is_duplicate``/``original_event_id`` and the
    carried ``prior_reason``. ``reopen`` (event_id, relation, ingest_date): records of groups a person
    unmatched. Returns the rows and the previous run date (None on the first run).

    Reads only: the events ingested since the previous run and those of the ``lookback_days`` before
    ``run_date`` (for repeat deliveries), the previous run's open items (``open_items``: what matching
    reads of each, carried from run to run) and, for ``reopen``, the events of its records' days. A
    day's cost does not depend on how long the tenant's history is."""
    prev = previous_run_date(spark, settings, tenant_id, run_date, lookback_days)
    since = run_date - timedelta(days=lookback_days)
    since = min(since, prev + timedelta(days=1)) if prev else None       # a first run reads all it was given
    events = lake.read(spark, settings, "events", tenant_id, since=since, until=run_date)
    new = events.filter(F.col("ingest_date") > F.lit(prev)) if prev else events
    dups = duplicates(events, new)
    new_items = (new.withColumn("relation", F.explode(relations_of(notification_formats)))
                 .select(*MATCH_COLUMNS, "relation", F.lit(None).cast("string").alias("prior_reason"))
                 .join(dups, "event_id", "left"))
    if prev is None:
        items = new_items
    else:
        carried = (lake.read(spark, settings, "item_status", tenant_id, since=prev, until=prev)
                   .select("event_id", "relation", F.col("reason_code").alias("prior_reason")))
        kept = lake.read(spark, settings, "open_items", tenant_id, since=prev, until=prev)
        if kept.limit(1).count() or not carried.limit(1).count():
            carried_items = carried.join(kept.select(*MATCH_COLUMNS, "relation"), ["event_id", "relation"], "inner")
        else:                    # a run before open items were kept: the carried rows' events, once
            carried_items = carried.join(lake.read(spark, settings, "events", tenant_id).select(*MATCH_COLUMNS),
                                         "event_id", "inner")
        carried_items = carried_items.withColumn("original_event_id", F.lit(None).cast("string"))
        items = new_items.unionByName(carried_items.select(*new_items.columns))
    if reopen is not None:
        reopened = (reopen.select("event_id", "relation")
                    .join(events_of(spark, settings, tenant_id, reopen).select(*MATCH_COLUMNS), "event_id", "inner")
                    .withColumn("prior_reason", F.lit(None).cast("string"))
                    .withColumn("original_event_id", F.lit(None).cast("string")))
        items = items.unionByName(reopened.select(*items.columns)).dropDuplicates(["event_id", "relation"])
    return items.withColumn("is_duplicate", F.col("original_event_id").isNotNull()
                            | (F.coalesce(F.col("prior_reason"), F.lit("")) == "DUPLICATE")), prev
