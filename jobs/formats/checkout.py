"""Checkout.com: Settlement Breakdown report (one row per financial movement of a payout) and Payouts
report (one row per payout), CSV mapped by header name.

Amounts are signed major-unit decimals in the holding (settlement) currency; fees are negative
deductions: ``Gross + Deduction = Net`` per breakdown row (checked), canonical ``fee = -Deduction`` with
the parts (processing, scheme, interchange, tax, reserve) in ``fee_breakdown``. ``Processing Currency``
/ ``Gross In Processing Currency`` / ``FX Rate Applied`` are the presentment side. Times are ISO-8601
UTC (``2026-07-01T10:00:00.000``). ``Payout ID`` is the batch key: the breakdown rows of a payout sum
(net) to its ``Payout Amount``; the Payouts report restates that amount as the payout row (negative,
money leaving the balance) and its components must add up to it (a file that does not is held back).
"""
from __future__ import annotations

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import BooleanType, StringType, StructField, StructType

from jobs.formats import common as c
from jobs.formats.csvread import col_or_null, read_checked_csv
from jobs.formats.registry import FormatSpec
from jobs.landing import LandedFile
from jobs.settings import Settings

TYPE_TO_EVENT = {
    "charge": "payment", "capture": "payment", "payment": "payment", "refund": "refund", "chargeback": "chargeback",
    "dispute": "chargeback", "chargeback reversal": "chargeback_reversal", "chargeback_reversal": "chargeback_reversal",
    "dispute won": "chargeback_reversal", "refund reversal": "adjustment", "network token provisioning": "fee",
    "network token update": "fee", "account updater": "fee", "authentication": "fee", "risk": "fee",
    "fee": "fee", "fees": "fee", "adjustment": "adjustment", "pay to card": "transfer", "payout to card": "transfer",
    "transfer in": "transfer", "transfer out": "transfer", "rolling reserve": "reserve_hold",
    "reserve release": "reserve_release", "tax": "fee",
}
FEE_PARTS = {"processing_fee_in_holding_currency": "processing", "scheme_fee_in_holding_currency": "scheme_fees",
             "interchange_in_holding_currency": "interchange", "tax_in_holding_currency": "tax",
             "reserve_in_holding_currency": "reserve"}
BREAKDOWN_REQUIRED = [("type",), ("payment_id", "action_id"), ("holding_currency",), ("payout_id",),
                      ("gross_in_holding_currency",), ("deduction_in_holding_currency",),
                      ("net_in_holding_currency",), ("processed_on",)]
BREAKDOWN_KNOWN = {
    "client_entity_id", "client_entity_name", "sub_entity_id", "sub_entity_name", "processing_channel_id",
    "processing_channel_name", "type", "payment_id", "action_id", "reference", "processed_on", "available_on",
    "holding_currency", "payout_id", "gross_in_holding_currency", "deduction_in_holding_currency",
    "net_in_holding_currency", *FEE_PARTS, "processing_currency", "gross_in_processing_currency", "fx_rate_applied",
    "payment_method", "card_type", "card_category", "issuer_country", "merchant_country", "mid",
}
PAYOUT_IDS = {"client_entity_id", "client_entity_name", "sub_entity_id", "sub_entity_name", "currency_account_id",
              "currency_account_name", "holding_currency", "payout_id", "payout_date", "reporting_start_date",
              "reporting_end_date", "payout_amount"}
PAYOUT_COMPONENTS = (
    "merchant_payout_fees", "payments", "refunds", "chargebacks", "pay_to_cards", "card_payment_interchange_fees",
    "card_payment_scheme_fees", "acquiring_premiums", "card_payment_gateway_fees", "card_payment_blended_fees",
    "refunded_interchange_fees", "refund_scheme_fees", "refund_gateway_fees", "chargeback_fees", "retrieval_fees",
    "representment_fees", "pay_to_card_interchange_fees", "pay_to_card_scheme_fees", "pay_to_card_fees",
    "alternative_payment_method_fees", "adjustments", "tax", "account_updater_fees", "transfers_in", "transfers_out",
    "authentication_fees", "authentication_scheme_fees", "risk_engine_fees", "intelligent_acceptance_fees",
    "network_token_fees",
)
PAYOUT_REQUIRED = [("payout_id",), ("payout_amount",), ("holding_currency",), ("payout_date",)]
TIME_PATTERNS = ("yyyy-MM-dd'T'HH:mm:ss.SSS", "yyyy-MM-dd'T'HH:mm:ss", "yyyy-MM-dd HH:mm:ss", "yyyy-MM-dd")
TOTALS_SCHEMA = StructType([StructField("file_sha256", StringType()), StructField("control_totals_ok", BooleanType()),
                            StructField("detail", StringType())])


def _utc(text):
    text = F.regexp_replace(F.trim(text), "Z$", "")
    return F.coalesce(*[F.to_timestamp(text, p) for p in TIME_PATTERNS])


def parse_settlement_breakdown(spark: SparkSession, settings: Settings, spec: FormatSpec, files: list[LandedFile],
                               ctx: c.ParseContext) -> c.ParseOutput:
    read = read_checked_csv(spark, settings, files, BREAKDOWN_REQUIRED, BREAKDOWN_KNOWN)
    if read.records is None:                   # every file refused whole (schema drift)
        return c.nothing_parsed(spark, read.rejected, read.notes)
    return c.finish(breakdown_events(read.records), spec, ctx, rejected=read.rejected, notes=read.notes,
                    files=files)


def breakdown_events(df: DataFrame) -> DataFrame:
    col = lambda *names: col_or_null(df, *names)  # noqa: E731
    df = c.with_currency(df, "_ccy", col("holding_currency"))
    df = c.with_currency(df, "_pccy", col("processing_currency"))
    df = c.with_minors(df, [
        *[c.Amount(out, col(name), "_ccy_exp", optional=name != "net_in_holding_currency")
          for out, name in (("_gross", "gross_in_holding_currency"), ("_deduction", "deduction_in_holding_currency"),
                            ("_net", "net_in_holding_currency"))],
        *[c.Amount(f"_part_{label}", col(name), "_ccy_exp", optional=True) for name, label in FEE_PARTS.items()],
        c.Amount("_pgross", col("gross_in_processing_currency"), "_pccy_exp", optional=True)])
    gross, deduction, net = F.col("_gross"), F.col("_deduction"), F.col("_net")
    kind = F.lower(F.trim(col("type")))
    event_type = c.lookup(TYPE_TO_EVENT, kind)
    processed = _utc(col("processed_on"))
    has_presentment = c.clean_text(col("processing_currency")).isNotNull() & (F.col("_pccy") != F.col("_ccy"))
    payment_id, action_id = c.clean_text(col("payment_id")), c.clean_text(col("action_id"))
    needs_payment = event_type.isin("payment", "refund", "chargeback", "chargeback_reversal")
    error = F.coalesce(
        F.when(F.col("_malformed"), F.lit(c.MALFORMED_ROW)),
        F.when(event_type.isNull(), F.lit(c.UNKNOWN_TYPE)),
        F.col("_gross_err"), F.col("_deduction_err"), F.col("_net_err"),
        *[F.col(f"_part_{label}_err") for label in FEE_PARTS.values()],
        F.when(has_presentment, F.coalesce(F.col("_pgross_err"), F.when(F.col("_pccy_exp").isNull(),
                                                                          F.lit(c.UNKNOWN_CURRENCY)))),
        F.when(needs_payment & payment_id.isNull() & action_id.isNull(), F.lit(c.MISSING_ID)),
        F.when(c.clean_text(col("payout_id")).isNull(), F.lit(c.MISSING_ID)),
        F.when(processed.isNull(), F.lit(c.BAD_TIMESTAMP)),
        F.when(gross + deduction != net, F.lit(c.INCONSISTENT_AMOUNTS)),
    )
    detail = (F.when(error == c.UNKNOWN_TYPE, F.concat(F.lit("Type="), F.coalesce(kind, F.lit(""))))
              .when(error == c.INCONSISTENT_AMOUNTS, F.lit("Gross + Deduction != Net"))
              .when(error == c.UNKNOWN_CURRENCY, F.concat(F.lit("currency="), F.coalesce(F.col("_ccy"), F.lit("")))))
    parts = F.map_filter(F.create_map(*[x for label in FEE_PARTS.values()
                                        for x in (F.lit(label), -F.col(f"_part_{label}"))]), lambda k, v: v != 0)
    is_payment = event_type == "payment"
    line_id = F.concat_ws("|", F.coalesce(action_id, payment_id), kind, F.trim(col("processed_on")),
                          F.trim(col("net_in_holding_currency")))
    return df.select(
        F.col("file_sha256"), F.col("file_name"), F.col("record_ordinal"), F.col("_raw"),
        error.alias("_error"), detail.alias("_error_detail"),
        event_type.alias("event_type"),
        F.lit("checkout").alias("psp"),
        gross.alias("amount_minor"), (-deduction).alias("fee_minor"), net.alias("net_minor"), F.col("_ccy").alias("currency"),
        F.when(F.size(parts) > 0, parts).alias("fee_breakdown"),
        F.when(has_presentment, F.col("_pgross")).alias("presentment_amount_minor"),
        F.when(has_presentment, F.col("_pccy")).alias("presentment_currency"),
        F.when(has_presentment, c.parse_decimal(col("fx_rate_applied")).cast("decimal(20,10)")).alias("fx_rate"),
        F.coalesce(action_id, F.when(is_payment, payment_id)).alias("psp_ref"),
        payment_id.alias("psp_payment_ref"),
        line_id.alias("psp_line_id"),
        c.clean_text(col("reference")).alias("merchant_ref"),
        c.clean_text(col("payout_id")).alias("payout_ref"),
        c.clean_text(col("processing_channel_id")).alias("account_ref"),
        processed.alias("booked_at"),
        F.lit("UTC").alias("booked_tz"),
        F.to_date(_utc(col("available_on"))).alias("value_date"),
        c.clean_text(col("payment_method")).alias("payment_method"),
    )


def parse_payouts(spark: SparkSession, settings: Settings, spec: FormatSpec, files: list[LandedFile],
                  ctx: c.ParseContext) -> c.ParseOutput:
    known = PAYOUT_IDS | set(PAYOUT_COMPONENTS)
    read = read_checked_csv(spark, settings, files, PAYOUT_REQUIRED, known, (r".*_fees?", r".*_premiums?"))
    if read.records is None:
        return c.nothing_parsed(spark, read.rejected, read.notes)
    return c.finish(payout_events(read.records), spec, ctx, rejected=read.rejected, notes=read.notes, files=files,
                    hold=lambda rows: c.held_files(payout_totals(rows), "payout components do not add up to the "
                                                                        "Payout Amount"))


def payout_totals(rows: DataFrame) -> DataFrame:
    """Per file: every payout's components add up to its Payout Amount (null when a row is unreadable)."""
    return (rows.groupBy("file_sha256")
              .agg(F.count(F.when(F.col("_error") == c.INCONSISTENT_AMOUNTS, 1)).alias("bad"),
                   F.count(F.when(F.col("_error").isin(c.BAD_AMOUNT, c.UNKNOWN_CURRENCY, c.MALFORMED_ROW), 1))
                   .alias("unreadable"))
              .select("file_sha256",
                      F.when(F.col("unreadable") > 0, F.lit(None).cast("boolean")).otherwise(F.col("bad") == 0)
                      .alias("control_totals_ok"),
                      F.when(F.col("bad") > 0, F.concat(F.col("bad").cast("string"),
                                                       F.lit(" payout(s) whose components do not add up to the "
                                                             "Payout Amount"))).alias("detail")))


def payout_events(df: DataFrame) -> DataFrame:
    col = lambda *names: col_or_null(df, *names)  # noqa: E731
    df = c.with_currency(df, "_ccy", col("holding_currency"))
    df = c.with_minor(df, "_amount", col("payout_amount"), "_ccy_exp")
    components = [n for n in df.columns if n in PAYOUT_COMPONENTS or (
        n not in PAYOUT_IDS and not n.startswith("_") and n.endswith(("_fees", "_fee", "_premiums"))
        and n not in ("file_sha256", "file_name", "record_ordinal"))]
    # one projection for all components (a column per parse step would nest ~100 projections)
    parsed = [c.parse_decimal(F.coalesce(c.clean_text(col(n)), F.lit("0"))) for n in components]
    df = df.select("*", F.array(*parsed).alias("_parts") if components else F.array().cast("array<decimal(38,9)>")
                   .alias("_parts"))
    unreadable = F.exists(F.col("_parts"), lambda x: x.isNull())
    total = F.aggregate(F.col("_parts"), F.lit(0).cast("decimal(38,9)"), lambda acc, x: (acc + x).cast("decimal(38,9)"))
    stated = c.parse_decimal(col("payout_amount"))
    payout_at = _utc(col("payout_date"))
    error = F.coalesce(
        F.when(F.col("_malformed"), F.lit(c.MALFORMED_ROW)),
        F.when(c.clean_text(col("payout_id")).isNull(), F.lit(c.MISSING_ID)),
        F.col("_amount_err"),
        F.when(unreadable, F.lit(c.BAD_AMOUNT)),
        F.when(payout_at.isNull(), F.lit(c.BAD_TIMESTAMP)),
        F.when(F.lit(bool(components)) & (total != stated), F.lit(c.INCONSISTENT_AMOUNTS)),
    )
    amount = -F.col("_amount")
    payout = c.clean_text(col("payout_id"))
    return df.select(
        F.col("file_sha256"), F.col("file_name"), F.col("record_ordinal"), F.col("_raw"),
        error.alias("_error"),
        F.when(error == c.INCONSISTENT_AMOUNTS, F.lit("components != Payout Amount")).alias("_error_detail"),
        F.lit("payout").alias("event_type"),
        F.lit("checkout").alias("psp"),
        amount.alias("amount_minor"), F.lit(0).cast("long").alias("fee_minor"), amount.alias("net_minor"),
        F.col("_ccy").alias("currency"),
        payout.alias("psp_ref"), payout.alias("psp_line_id"), payout.alias("payout_ref"),
        payout.alias("payout_bank_ref"),
        F.coalesce(c.clean_text(col("currency_account_id")), c.clean_text(col("client_entity_id"))).alias("account_ref"),
        payout_at.alias("booked_at"),
        F.lit("UTC").alias("booked_tz"),
        F.to_date(payout_at).alias("value_date"),
    )
