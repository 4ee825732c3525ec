"""Stripe: itemized payout reconciliation CSV (``payout_reconciliation.itemized.*``, Dashboard or API) and
the Balance report's itemized CSVs (``balance_change_from_activity.itemized.*``, ``payouts.itemized.*``).

Any column subset and order the Reporting API can emit, quoted or not; lowercase currencies; amounts
in major units (signed gross/net, fee a positive cost, ``net = gross - fee``); ``*_utc`` columns
preferred, the plain ones taken as UTC (the report's default time zone). ``automatic_payout_id`` is
the batch key: the rows of one payout sum (net) to the amount the bank receives. In the Balance
report ``payout_id`` names the payout of a ``payout`` row (money out of the balance: negative). The
customer's name (``customer_name``) is kept only as a keyed hash, the e-mail likewise.
"""
from __future__ import annotations

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from jobs.formats import common as c
from jobs.formats.csvread import col_or_null, read_checked_csv
from jobs.formats.registry import FormatSpec
from jobs.landing import LandedFile
from jobs.settings import Settings

CATEGORY_TO_EVENT = {
    "charge": "payment", "refund": "refund", "dispute": "chargeback", "dispute_reversal": "chargeback_reversal",
    "fee": "fee", "payout": "payout", "payout_reversal": "adjustment", "other_adjustment": "adjustment",
    "charge_failure": "adjustment", "refund_failure": "adjustment", "partial_capture_reversal": "adjustment",
    "payment_network_reserve_hold": "reserve_hold", "payment_network_reserve_release": "reserve_release",
    "risk_reserved_funds": "reserve_hold", "transfer": "transfer", "transfer_reversal": "transfer",
    "platform_earning": "fee", "platform_earning_refund": "fee", "tax": "fee", "topup": "transfer",
    "topup_reversal": "transfer", "contribution": "fee", "anticipation_repayment": "adjustment",
    "unreconciled_customer_funds": "adjustment", "connect_collection_transfer": "transfer",
    "connect_reserved_funds": "reserve_hold", "advance": "adjustment", "advance_funding": "adjustment",
    "climate_order_purchase": "fee", "climate_order_refund": "fee",
}
REQUIRED = [("balance_transaction_id",), ("currency",), ("gross",), ("fee",), ("net",), ("reporting_category",),
            ("created_utc", "created", "effective_at_utc", "effective_at")]
_BASE = ("automatic_payout_effective_at", "available_on", "charge_created", "created", "effective_at",
         "payout_reversed_at")
KNOWN = {
    "automatic_payout_id", "balance_transaction_id", "currency", "gross", "fee", "net", "reporting_category",
    "description", "source_id", "charge_id", "payment_intent_id", "customer_facing_amount",
    "customer_facing_currency", "order_id", "trace_id", "trace_id_status", "card_brand", "card_country",
    "card_funding", "payment_method_type", "customer_id", "customer_email", "customer_name", "customer_description",
    "invoice_id", "invoice_number", "subscription_id", "statement_descriptor", "dispute_reason", "is_link",
    "connected_account_id", "connected_account_name", "connected_account_country",
    "connected_account_direct_charge_id", "destination_payment_id", "regulatory_tag", "gateway_account",
    "payout_id", "payout_expected_arrival_date", "payout_status", "payout_type", "payout_description",
    "payout_destination_id", "payout_destination_type",
    *(f"{b}{s}" for b in _BASE for s in ("", "_utc")),
}
KNOWN_PATTERNS = (r"(payment|refund|transfer)_metadata_.*", r"(card|customer|customer_shipping|shipping)_address_.*")


def parse_itemized(spark: SparkSession, settings: Settings, spec: FormatSpec, files: list[LandedFile],
                   ctx: c.ParseContext) -> c.ParseOutput:
    read = read_checked_csv(spark, settings, files, REQUIRED, KNOWN, KNOWN_PATTERNS)
    if read.records is None:                   # every file refused whole (schema drift)
        return c.nothing_parsed(spark, read.rejected, read.notes)
    return c.finish(to_events(read.records, ctx), spec, ctx, rejected=read.rejected, notes=read.notes,
                    files=files)


def to_events(df: DataFrame, ctx: c.ParseContext) -> DataFrame:
    col = lambda *names: col_or_null(df, *names)  # noqa: E731
    df = c.with_currency(df, "_ccy", col("currency"))
    df = c.with_currency(df, "_pccy", col("customer_facing_currency"))
    df = c.with_minors(df, [*[c.Amount(out, col(name), "_ccy_exp") for out, name in (("_gross", "gross"), ("_fee", "fee"),
                                                                                    ("_net", "net"))],
                            c.Amount("_pres", col("customer_facing_amount"), "_pccy_exp", optional=True)])
    currency, pres_ccy = F.col("_ccy"), F.col("_pccy")
    gross, fee, net, pres_amount = F.col("_gross"), F.col("_fee"), F.col("_net"), F.col("_pres")
    has_presentment = c.clean_text(col("customer_facing_amount")).isNotNull() & pres_ccy.isNotNull() & (pres_ccy != "")
    created_text = F.coalesce(c.clean_text(col("created_utc")), c.clean_text(col("created")),
                              c.clean_text(col("effective_at_utc")), c.clean_text(col("effective_at")))
    created = F.to_timestamp(created_text, "yyyy-MM-dd HH:mm:ss")
    payout_at_text = F.coalesce(c.clean_text(col("automatic_payout_effective_at_utc")),
                                c.clean_text(col("automatic_payout_effective_at")),
                                c.clean_text(col("payout_expected_arrival_date")))
    category = F.lower(F.trim(col("reporting_category")))
    event_type = c.lookup(CATEGORY_TO_EVENT, category)
    source_id = c.clean_text(col("source_id"))
    charge_id = c.clean_text(col("charge_id"))
    is_charge = category == "charge"
    needs_object_id = category.isin("charge", "refund", "dispute", "dispute_reversal")
    error = F.coalesce(
        F.when(F.col("_malformed"), F.lit(c.MALFORMED_ROW)),
        F.when(c.clean_text(col("balance_transaction_id")).isNull(), F.lit(c.MISSING_ID)),
        F.col("_gross_err"), F.col("_fee_err"), F.col("_net_err"),
        F.when(has_presentment, F.coalesce(F.col("_pres_err"), F.when(F.col("_pccy_exp").isNull(),
                                                                        F.lit(c.UNKNOWN_CURRENCY)))),
        F.when(event_type.isNull(), F.lit(c.UNKNOWN_TYPE)),
        F.when(created.isNull(), F.lit(c.BAD_TIMESTAMP)),
        F.when(needs_object_id & source_id.isNull() & charge_id.isNull(), F.lit(c.MISSING_ID)),
        F.when(gross - fee != net, F.lit(c.INCONSISTENT_AMOUNTS)),
    )
    detail = (F.when(error == c.UNKNOWN_TYPE, F.concat(F.lit("reporting_category="), category))
              .when(error == c.INCONSISTENT_AMOUNTS, F.lit("gross - fee != net"))
              .when(error == c.UNKNOWN_CURRENCY, F.concat(F.lit("currency="), currency)))
    fx_rate = F.when(has_presentment & (pres_ccy != currency) & (pres_amount != 0),
                     (gross.cast("decimal(38,10)") / pres_amount).cast("decimal(20,10)"))
    return df.select(
        F.col("file_sha256"), F.col("file_name"), F.col("record_ordinal"), F.col("_raw"),
        error.alias("_error"), detail.alias("_error_detail"),
        event_type.alias("event_type"),
        F.lit("stripe").alias("psp"),
        gross.alias("amount_minor"), fee.alias("fee_minor"), net.alias("net_minor"), currency.alias("currency"),
        F.when(has_presentment, pres_amount).alias("presentment_amount_minor"),
        F.when(has_presentment, pres_ccy).alias("presentment_currency"),
        fx_rate.alias("fx_rate"),
        F.coalesce(source_id, F.when(is_charge, charge_id)).alias("psp_ref"),
        F.coalesce(charge_id, F.when(is_charge, source_id)).alias("psp_payment_ref"),
        c.clean_text(col("balance_transaction_id")).alias("psp_line_id"),
        F.coalesce(c.clean_text(col("order_id")), c.clean_text(col("payment_metadata_order_id"))).alias("merchant_ref"),
        F.coalesce(c.clean_text(col("automatic_payout_id")), c.clean_text(col("payout_id"))).alias("payout_ref"),
        c.clean_text(col("trace_id")).alias("payout_bank_ref"),
        created.alias("booked_at"),
        F.lit("UTC").alias("booked_tz"),
        F.to_date(F.substring(payout_at_text, 1, 10)).alias("value_date"),
        F.coalesce(c.clean_text(col("payment_method_type")), c.clean_text(col("card_brand"))).alias("payment_method"),
        c.clean_text(col("description")).alias("description"),
        c.hash_email(col("customer_email"), ctx).alias("customer_email_hash"),
        c.hash_email(col("customer_name"), ctx).alias("counterparty_name_hash"),
    )
