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

from datetime import date

from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from jobs import lake
from jobs.match.rules import BOOK_PSP, PAYOUT_BANK, PSP_SETTLEMENT
from jobs.settings import Settings

MATCH_COLUMNS = [
    "event_id", "ingest_date", "source", "source_kind", "format", "event_type", "psp", "amount_minor", "fee_minor",
    "net_minor", "currency", "presentment_amount_minor", "presentment_currency", "psp_ref", "psp_payment_ref",
    "psp_line_id", "merchant_ref", "merchant_payment_id", "payout_ref", "payout_bank_ref", "bank_ref", "bank_text",
    "account_ref", "booked_at", "value_date", "description", "file_name", "record_ordinal",
]
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


def previous_run_date(spark: SparkSession, settings: Settings, tenant_id: str, run_date: date) -> date | None:
    status = lake.read(spark, settings, "item_status", tenant_id)
    row = status.filter(F.col("run_date") < F.lit(run_date)).agg(F.max("run_date").alias("d")).first()
    return row["d"] if row else None


def duplicates(events_upto: DataFrame, new: DataFrame) -> DataFrame:
    """(event_id, original_event_id) for new events that repeat an earlier delivery."""
    keyed = events_upto.withColumn("_key", dedupe_key()).filter(F.col("_key").isNotNull())
    first = Window.partitionBy("_key").orderBy("ingest_date", "file_name", "record_ordinal")
    ranked = (keyed.select("event_id", "_key", "ingest_date", "file_name", "record_ordinal")
              .withColumn("_rank", F.row_number().over(first))
              .withColumn("original_event_id", F.first("event_id").over(first)))
    return (ranked.filter(F.col("_rank") > 1)
            .join(new.select("event_id"), "event_id", "inner")
            .select("event_id", "original_event_id"))


def open_items(spark: SparkSession, settings: Settings, tenant_id: str, run_date: date,
               reopen: DataFrame | None = None, notification_formats: tuple[str, ...] = ()) -> tuple[DataFrame, date | None]:
    """Every open (event, relation) for the run, with ``is_duplicate``/``original_event_id`` and the
    carried ``prior_reason``. ``reopen`` (event_id, relation): records of groups a person unmatched.
    Returns the rows and the previous run date (None on the first run)."""
    prev = previous_run_date(spark, settings, tenant_id, run_date)
    events = lake.read(spark, settings, "events", tenant_id).filter(F.col("ingest_date") <= F.lit(run_date))
    new = events.filter(F.col("ingest_date") > F.lit(prev)) if prev else events
    dups = duplicates(events, new)
    new_items = (new.withColumn("relation", F.explode(relations_of(notification_formats)))
                 .select(*MATCH_COLUMNS, "relation", F.lit(None).cast("string").alias("prior_reason"))
                 .join(dups, "event_id", "left"))
    if prev is None:
        items = new_items
    else:
        carried = (lake.read(spark, settings, "item_status", tenant_id)
                   .filter(F.col("run_date") == F.lit(prev))
                   .select("event_id", "relation", F.col("reason_code").alias("prior_reason")))
        carried_items = (carried.join(events.select(*MATCH_COLUMNS), "event_id", "inner")
                         .withColumn("original_event_id", F.lit(None).cast("string")))
        items = new_items.unionByName(carried_items.select(*new_items.columns))
    if reopen is not None:
        reopened = (reopen.join(events.select(*MATCH_COLUMNS), "event_id", "inner")
                    .withColumn("prior_reason", F.lit(None).cast("string"))
                    .withColumn("original_event_id", F.lit(None).cast("string")))
        items = items.unionByName(reopened.select(*items.columns)).dropDuplicates(["event_id", "relation"])
    return items.withColumn("is_duplicate", F.col("original_event_id").isNotNull()
                            | (F.coalesce(F.col("prior_reason"), F.lit("")) == "DUPLICATE")), prev
