"""Stripe: webhook Event objects (JSON), as delivered to an endpoint and stored one per line (JSON Lines),
as a JSON array, or one (pretty-printed) event per file. Read with Spark's JSON reader.

The money movements, from the event's ``data.object`` (API amounts are integer minor units):
  ``charge.succeeded`` (captured) / ``charge.captured``  payment, +amount (+amount_captured);
  ``charge.refunded``   refund of ``amount_refunded`` minus ``previous_attributes.amount_refunded`` (the
                        part refunded by this event), the newest refund's id when the charge lists them;
  ``charge.dispute.created``  chargeback: the dispute's withdrawal balance transaction (amount < 0, the
                        dispute fee as fee); an inquiry without one moves no money;
  ``charge.dispute.closed``   chargeback_reversal when a ``dispute_reversal`` balance transaction
                        reinstated the funds (won); a lost dispute moves nothing new;
  ``payout.paid``       payout: -amount (leaves the balance), ``payout_ref`` = the payout id, trace id as
                        the bank reference, arrival date as value date.
Every other event (and an uncaptured ``charge.succeeded``) is read and skipped. ``psp_line_id`` is the
event id, so a webhook delivered twice is a duplicate. Webhooks carry no fee for charges (the fee is
on the balance transaction) and no payout link: payouts are matched to the bank by amount and date.
Refund details are taken from ``charge.refunded`` only (``refund.*`` events, sent as well by newer API
versions, are skipped so that a refund is not counted twice).
"""
from __future__ import annotations

import json

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import ArrayType, MapType, StringType, StructField, StructType

from jobs import storage
from jobs.formats import common as c
from jobs.formats.csvread import with_ordinals
from jobs.formats.registry import BOM, FormatSpec
from jobs.landing import LandedFile
from jobs.settings import Settings

S = StringType()


def _struct(*names: str, **typed) -> StructType:
    return StructType([StructField(n, S) for n in names] + [StructField(n, t) for n, t in typed.items()])


BALANCE_TXN = _struct("id", "amount", "fee", "net", "currency", "reporting_category", "created", "type",
                      "description")
OBJECT = _struct(
    "id", "object", "amount", "amount_refunded", "amount_captured", "captured", "currency", "created", "charge",
    "payment_intent", "customer", "description", "status", "reason", "balance_transaction", "receipt_email",
    "arrival_date", "trace_id", "statement_descriptor", "method",
    metadata=MapType(S, S),
    billing_details=_struct("email", "name"),
    payment_method_details=_struct("type", card=_struct("brand")),
    refunds=_struct(data=ArrayType(_struct("id", "amount", "created", "status"))),
    balance_transactions=ArrayType(BALANCE_TXN),
)
EVENT = _struct("id", "object", "type", "created", "api_version", "account", "_corrupt_record",
                data=_struct(object=OBJECT, previous_attributes=_struct("amount_refunded")))
ORDER_KEYS = ("order_id", "order", "orderId", "order_number", "reference")


def is_json_lines(head: bytes) -> bool:
    """One complete event per line (JSON Lines), rather than one document (an array or a pretty event)."""
    text = head.removeprefix(BOM).decode("utf-8", errors="replace").lstrip()
    if not text.startswith("{"):
        return False
    try:
        return isinstance(json.loads(text.split("\n", 1)[0]), dict)
    except (ValueError, RecursionError):   # not JSON; a number beyond int()'s digit limit; nesting too deep
        return False


def read_events(spark: SparkSession, settings: Settings, files: list[LandedFile]) -> DataFrame:
    lines = [f for f in files if is_json_lines(storage.read_head(settings, f.raw_uri, 64 * 1024))]
    documents = [f for f in files if f not in lines]
    frames = []
    for group, multi in ((lines, False), (documents, True)):
        if not group:
            continue
        df = (spark.read.schema(EVENT).option("mode", "PERMISSIVE").option("columnNameOfCorruptRecord", "_corrupt_record")
              .option("multiLine", multi).json([storage.spark_uri(f.raw_uri) for f in group]))
        frames.append(df.select(
            "*", F.col("_metadata.file_path").alias("_file_path"),
            F.col("_metadata.file_block_start").alias("_block_start"),
            F.monotonically_increasing_id().alias("_row_in_split")))
    combined = frames[0] if len(frames) == 1 else frames[0].unionByName(frames[1])
    return with_ordinals(combined, files)


def _int_text(col) -> tuple:
    """(long value, error) for an integer minor-unit amount written by the API."""
    text = F.trim(col.cast("string"))
    ok = text.rlike(r"^-?[0-9]{1,18}$")
    return F.when(ok, text.cast("long")), F.when(col.isNotNull() & ~ok, F.lit(c.BAD_AMOUNT))


def _epoch(col):
    return F.when(F.trim(col).rlike(r"^[0-9]{1,12}$"), F.timestamp_seconds(F.trim(col).cast("long")))


def parse_events(spark: SparkSession, settings: Settings, spec: FormatSpec, files: list[LandedFile],
                 ctx: c.ParseContext) -> c.ParseOutput:
    return c.finish(to_events(read_events(spark, settings, files), ctx), spec, ctx, files=files)


def to_events(df: DataFrame, ctx: c.ParseContext) -> DataFrame:
    obj = F.col("data.object")
    etype = F.lower(F.trim(F.col("type")))
    is_charge = etype.isin("charge.succeeded", "charge.captured")
    disputes = obj["balance_transactions"]
    withdrawal = F.filter(disputes, lambda b: (b["reporting_category"] == "dispute") | (b["amount"].cast("long") < 0))
    reinstated = F.filter(disputes, lambda b: (b["reporting_category"] == "dispute_reversal")
                          | (b["amount"].cast("long") > 0))
    bt = (F.when(etype == "charge.dispute.created", F.element_at(withdrawal, 1))
          .when(etype == "charge.dispute.closed", F.element_at(reinstated, 1)))
    refunded_before = F.coalesce(F.col("data.previous_attributes.amount_refunded"), F.lit("0"))
    captured = F.lower(F.coalesce(obj["captured"], F.lit("true"))) == "true"
    event_type = (F.when(etype == "charge.succeeded", F.when(captured, F.lit("payment")))
                  .when(etype == "charge.captured", F.lit("payment"))
                  .when(etype == "charge.refunded", F.lit("refund"))
                  .when((etype == "charge.dispute.created") & bt.isNotNull(), F.lit("chargeback"))
                  .when((etype == "charge.dispute.closed") & bt.isNotNull(), F.lit("chargeback_reversal"))
                  .when(etype == "payout.paid", F.lit("payout")))
    expected_object = (F.when(etype.startswith("charge.dispute."), F.lit("dispute"))
                       .when(etype.startswith("charge."), F.lit("charge")).when(etype == "payout.paid", F.lit("payout")))
    amount_text = (F.when(etype == "charge.captured", F.coalesce(obj["amount_captured"], obj["amount"]))
                   .when(is_charge | (etype == "payout.paid"), obj["amount"])
                   .when(etype == "charge.refunded", obj["amount_refunded"])
                   .otherwise(bt["amount"]))
    df = (df.withColumn("_event_type", event_type)
            .withColumn("_amount_text", amount_text)
            .withColumn("_fee_text", F.when(bt.isNotNull(), bt["fee"]))
            .withColumn("_net_text", F.when(bt.isNotNull(), bt["net"]))
            .withColumn("_prior_text", F.when(etype == "charge.refunded", refunded_before)))
    amount, amount_err = _int_text(F.col("_amount_text"))
    fee, fee_err = _int_text(F.col("_fee_text"))
    net, net_err = _int_text(F.col("_net_text"))
    prior, prior_err = _int_text(F.col("_prior_text"))
    df = c.with_currency(df, "_ccy", F.coalesce(bt["currency"], obj["currency"]))
    signed = (F.when(F.col("_event_type") == "refund", -(amount - F.coalesce(prior, F.lit(0))))
              .when(F.col("_event_type") == "payout", -amount).otherwise(amount))
    fee_value = F.coalesce(fee, F.lit(0).cast("long"))
    net_value = F.coalesce(net, signed - fee_value)
    money = F.col("_event_type").isNotNull()
    object_id = c.clean_text(obj["id"])
    charge_ref = c.clean_text(F.when(F.trim(obj["charge"]).startswith("{"), F.get_json_object(obj["charge"], "$.id"))
                              .otherwise(obj["charge"]))
    error = F.coalesce(
        F.when(F.col("_corrupt_record").isNotNull(), F.lit(c.MALFORMED_ROW)),
        F.when(money & c.clean_text(F.col("id")).isNull(), F.lit(c.MISSING_ID)),
        F.when(money & (F.lower(obj["object"]) != expected_object), F.lit(c.MALFORMED_ROW)),
        F.when(money & object_id.isNull(), F.lit(c.MISSING_ID)),
        F.when(money & (amount_text.isNull()), F.lit(c.BAD_AMOUNT)),
        F.when(money, F.coalesce(amount_err, fee_err, net_err, prior_err)),
        F.when(money & F.col("_ccy_exp").isNull(), F.lit(c.UNKNOWN_CURRENCY)),
        F.when(money & (F.col("_event_type") == "refund") & (signed >= 0), F.lit(c.BAD_AMOUNT)),
        F.when(money & _epoch(F.coalesce(bt["created"], F.col("created"))).isNull(), F.lit(c.BAD_TIMESTAMP)),
        F.when(money & (signed - fee_value != net_value), F.lit(c.INCONSISTENT_AMOUNTS)),
    )
    detail = (F.when(error == c.UNKNOWN_CURRENCY, F.concat(F.lit("currency="), F.col("_ccy")))
              .when(error == c.MALFORMED_ROW, F.concat(F.lit("event "), F.coalesce(etype, F.lit("?")), F.lit(" with a "),
                                                       F.coalesce(obj["object"], F.lit("missing")), F.lit(" object")))
              .when(error == c.BAD_AMOUNT, F.concat(F.lit("amount="), F.coalesce(F.col("_amount_text"), F.lit("")))))
    metadata = obj["metadata"]
    merchant_ref = F.coalesce(*[c.clean_text(metadata[k]) for k in ORDER_KEYS])
    trace = obj["trace_id"]
    trace_value = F.when(F.trim(trace).startswith("{"), F.get_json_object(trace, "$.value")).otherwise(trace)
    is_payout = F.col("_event_type") == "payout"
    is_payment = F.col("_event_type") == "payment"
    booked = F.coalesce(_epoch(bt["created"]), F.when(etype.isin("charge.succeeded", "payout.paid"),
                                                      _epoch(obj["created"])), _epoch(F.col("created")))
    raw = F.coalesce(F.col("_corrupt_record"), F.to_json(F.struct(*[F.col(n) for n in EVENT.fieldNames()
                                                                    if n != "_corrupt_record"])))
    return df.select(
        F.col("file_sha256"), F.col("file_name"), F.col("record_ordinal"), raw.alias("_raw"),
        error.alias("_error"), detail.alias("_error_detail"),
        (~money).alias("_skip"),
        F.col("_event_type").alias("event_type"),
        F.lit("stripe").alias("psp"),
        signed.alias("amount_minor"), fee_value.alias("fee_minor"), net_value.alias("net_minor"),
        F.col("_ccy").alias("currency"),
        F.when(F.col("_event_type") == "refund", c.clean_text(F.element_at(obj["refunds"]["data"], 1)["id"]))
         .otherwise(object_id).alias("psp_ref"),
        F.when(is_payment, object_id).when(F.col("_event_type") == "refund", object_id)
         .when(~is_payout, charge_ref).alias("psp_payment_ref"),
        c.clean_text(F.col("id")).alias("psp_line_id"),
        merchant_ref.alias("merchant_ref"),
        F.when(is_payout, object_id).alias("payout_ref"),
        F.when(is_payout, c.clean_text(trace_value)).alias("payout_bank_ref"),
        c.clean_text(F.col("account")).alias("account_ref"),
        booked.alias("booked_at"),
        F.lit("UTC").alias("booked_tz"),
        F.when(is_payout, F.to_date(_epoch(obj["arrival_date"]))).alias("value_date"),
        F.coalesce(c.clean_text(obj["payment_method_details"]["card"]["brand"]),
                   c.clean_text(obj["payment_method_details"]["type"]), c.clean_text(obj["method"]))
         .alias("payment_method"),
        F.coalesce(c.clean_text(obj["description"]), c.clean_text(bt["description"])).alias("description"),
        c.hash_email(F.coalesce(obj["billing_details"]["email"], obj["receipt_email"]), ctx).alias("customer_email_hash"),
        c.hash_email(obj["billing_details"]["name"], ctx).alias("counterparty_name_hash"),
    )
