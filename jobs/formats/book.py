"""Book records: the merchant's own payments and refunds (the documented import format).

CSV with a header, or JSON Lines, with fields ``payment_id, order_id, psp, psp_reference, type,
amount, currency, created_at, customer_email, description``. ``amount`` is a positive major-unit
decimal string; ``type`` (payment | refund) gives the sign. A ``;``-separated CSV (as European ERPs
export) may write the amount with a decimal comma (``12,34``); a thousands separator is never accepted. ``created_at`` is ISO 8601 with an offset.
``customer_email`` is hashed with the tenant's salt; ``description`` is PAN-masked.
"""
from __future__ import annotations

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import StringType, StructField, StructType

from jobs import storage
from jobs.formats import common as c
from jobs.formats.csvread import col_or_null, read_checked_csv, with_ordinals
from jobs.formats.registry import FormatSpec
from jobs.landing import LandedFile
from jobs.settings import Settings

FIELDS = ("payment_id", "order_id", "psp", "psp_reference", "type", "amount", "currency", "created_at",
          "customer_email", "description")
REQUIRED = [(f,) for f in FIELDS[:8]]
KNOWN = set(FIELDS)
TYPE_SIGN = {"payment": 1, "refund": -1}
OFFSET = r"(Z|[+-][0-9]{2}:?[0-9]{2})$"


def parse_book_csv(spark: SparkSession, settings: Settings, spec: FormatSpec, files: list[LandedFile],
                   ctx: c.ParseContext) -> c.ParseOutput:
    read = read_checked_csv(spark, settings, files, REQUIRED, KNOWN)
    if read.records is None:                   # every file refused whole (schema drift)
        return c.nothing_parsed(spark, read.rejected, read.notes)
    return c.finish(to_events(read.records, ctx), spec, ctx, rejected=read.rejected, notes=read.notes,
                    files=files)


def parse_book_jsonl(spark: SparkSession, settings: Settings, spec: FormatSpec, files: list[LandedFile],
                     ctx: c.ParseContext) -> c.ParseOutput:
    schema = StructType([StructField(f, StringType()) for f in FIELDS] + [StructField("_corrupt_record", StringType())])
    df = (spark.read.schema(schema).option("mode", "PERMISSIVE").option("columnNameOfCorruptRecord", "_corrupt_record")
          .json([storage.spark_uri(f.raw_uri) for f in files]))
    df = df.select(
        *FIELDS,
        F.col("_corrupt_record").isNotNull().alias("_malformed"),
        F.coalesce(F.col("_corrupt_record"), F.to_json(F.struct(*FIELDS))).alias("_raw"),
        F.col("_metadata.file_path").alias("_file_path"),
        F.col("_metadata.file_block_start").alias("_block_start"),
        F.monotonically_increasing_id().alias("_row_in_split"),
    )
    return c.finish(to_events(with_ordinals(df, files), ctx), spec, ctx, files=files)


def to_events(df: DataFrame, ctx: c.ParseContext) -> DataFrame:
    col = lambda name: col_or_null(df, name)  # noqa: E731
    df = c.with_currency(df, "_ccy", col("currency"))
    amount_text = F.trim(col("amount"))
    if "_delimiter" in df.columns:             # a ;-separated export writes decimal commas (no thousands marks)
        amount_text = F.when(F.col("_delimiter") == ";", F.regexp_replace(amount_text, ",", ".")).otherwise(amount_text)
    df = c.with_minor(df, "_amount", amount_text, "_ccy_exp")
    currency, unsigned, amount_err = F.col("_ccy"), F.col("_amount"), F.col("_amount_err")
    kind = F.lower(F.trim(col("type")))
    sign = c.lookup(TYPE_SIGN, kind)
    created_text = F.trim(col("created_at"))
    created = F.to_timestamp(created_text)
    has_offset = created_text.rlike(OFFSET)
    error = F.coalesce(
        F.when(F.col("_malformed"), F.lit(c.MALFORMED_ROW)),
        F.when(c.clean_text(col("payment_id")).isNull(), F.lit(c.MISSING_ID)),
        F.when(sign.isNull(), F.lit(c.UNKNOWN_TYPE)),
        amount_err,
        F.when(amount_text.startswith("-") | amount_text.startswith("+"), F.lit(c.BAD_AMOUNT)),
        F.when(created.isNull() | ~has_offset, F.lit(c.BAD_TIMESTAMP)),
    )
    detail = (F.when(error == c.UNKNOWN_TYPE, F.concat(F.lit("type="), kind))
              .when(error == c.BAD_TIMESTAMP, F.concat(F.lit("created_at must be ISO 8601 with an offset: "),
                                                      F.coalesce(created_text, F.lit(""))))
              .when(error == c.BAD_AMOUNT, F.lit("amount must be a positive decimal in major units")))
    amount = unsigned * sign
    return df.select(
        F.col("file_sha256"), F.col("file_name"), F.col("record_ordinal"), F.col("_raw"),
        error.alias("_error"), detail.alias("_error_detail"),
        kind.alias("event_type"),
        F.lower(c.clean_text(col("psp"))).alias("psp"),
        amount.alias("amount_minor"), F.lit(0).cast("long").alias("fee_minor"), amount.alias("net_minor"),
        currency.alias("currency"),
        c.clean_text(col("psp_reference")).alias("psp_ref"),
        c.clean_text(col("order_id")).alias("merchant_ref"),
        c.clean_text(col("payment_id")).alias("merchant_payment_id"),
        created.alias("booked_at"),
        F.regexp_extract(created_text, OFFSET, 1).alias("booked_tz"),
        c.clean_text(col("description")).alias("description"),
        c.hash_email(col("customer_email"), ctx).alias("customer_email_hash"),
    )
