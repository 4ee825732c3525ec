"""Braintree: the Control Panel's transaction search download (CSV), mapped by header name.

``Transaction Type`` sale (money in) or credit (a refund: money out, ``Refunded Transaction ID`` names
the sale); amounts are positive major units, the type gives the sign. Only settled money counts:
``Transaction Status`` settled / settling / submitted_for_settlement / settlement_pending are loaded,
authorisations, voids, declines and failures are read and skipped. ``Amount Submitted For Settlement``
is in the transaction currency (``Currency ISO Code``); when the settlement currency differs, the
``Settlement Amount`` / ``Settlement Currency ISO Code`` are the canonical amount and the transaction
amount the presentment one, with ``Settlement Currency Exchange Rate``. Braintree's processing fees
are not in this report (they are billed or deducted per disbursement); a marketplace ``Service Fee``
is the only fee mapped.

Payout: a settlement batch (``Settlement Batch ID``, else merchant account + disbursement date) is
disbursed in one bank credit on the ``Disbursement Date``. ``Created Datetime`` is local time in the
``Created Timezone`` abbreviation. Cardholder and customer names and e-mails become keyed hashes.
"""
from __future__ import annotations

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from jobs.formats import common as c
from jobs.formats.csvread import col_or_null, read_checked_csv
from jobs.formats.registry import FormatSpec
from jobs.landing import LandedFile
from jobs.settings import Settings

TYPE_SIGN = {"sale": 1, "credit": -1}
SETTLED = ("settled", "settling", "submitted_for_settlement", "settlement_pending", "settlement_confirmed")
NOT_SETTLED = ("authorized", "authorizing", "authorization_expired", "processor_declined", "gateway_rejected",
               "failed", "voided", "settlement_declined")
REQUIRED = [("transaction_id",), ("transaction_type",), ("transaction_status",), ("currency_iso_code",),
            ("amount_submitted_for_settlement", "amount_authorized"), ("created_datetime",)]
KNOWN = {
    "transaction_id", "subscription_id", "transaction_type", "transaction_status", "escrow_status", "created_datetime",
    "created_timezone", "settlement_date", "disbursement_date", "merchant_account", "currency_iso_code",
    "amount_authorized", "amount_submitted_for_settlement", "service_fee", "tax_amount", "tax_exempt",
    "purchase_order_number", "order_id", "descriptor_name", "descriptor_phone", "descriptor_url",
    "refunded_transaction_id", "payment_instrument_type", "card_type", "cardholder_name", "first_six_of_credit_card",
    "last_four_of_credit_card", "credit_card_expiration_date", "credit_card_customer_location", "customer_id",
    "payment_method_token", "credit_card_unique_identifier", "customer_first_name", "customer_last_name",
    "customer_phone", "customer_company", "customer_email", "customer_fax", "customer_website", "user",
    "ip_address", "creating_using_token", "transaction_source", "authorization_code", "processor_response_code",
    "processor_response_text", "gateway_rejection_reason", "postal_code_response_code",
    "street_address_response_code", "avs_response_text", "cvv_response_code", "cvv_response_text",
    "settlement_amount", "settlement_currency_iso_code", "settlement_currency_exchange_rate",
    "settlement_base_currency_exchange_rate", "settlement_batch_id", "fraud_detected", "disputed_date",
    "authorized_transaction_id", "country_of_issuance", "issuing_bank", "durbin_regulated", "commercial",
    "prepaid", "payroll", "healthcare", "affluent_category", "debit", "product_id", "paypal_payer_email",
    "paypal_payment_id", "paypal_authorization_id", "paypal_debug_id", "paypal_capture_id", "paypal_refund_id",
    "paypal_custom_field", "paypal_payer_id", "paypal_payer_first_name", "paypal_payer_last_name",
    "paypal_seller_protection_status", "paypal_transaction_fee_amount", "paypal_transaction_fee_currency_iso_code",
    "risk_id", "risk_decision", "three_d_secure_status",
}
KNOWN_PATTERNS = (r"(billing|shipping)_.*", r"custom_field_.*", r"line_item_.*", r"discount_.*", r"add_on_.*")


def parse_transactions(spark: SparkSession, settings: Settings, spec: FormatSpec, files: list[LandedFile],
                       ctx: c.ParseContext) -> c.ParseOutput:
    read = read_checked_csv(spark, settings, files, REQUIRED, KNOWN, KNOWN_PATTERNS)
    if read.records is None:                   # every file refused whole (schema drift)
        return c.nothing_parsed(spark, read.rejected, read.notes)
    return c.finish(to_events(read.records, ctx), spec, ctx, rejected=read.rejected, notes=read.notes,
                    files=files)


def to_events(df: DataFrame, ctx: c.ParseContext) -> DataFrame:
    col = lambda *names: col_or_null(df, *names)  # noqa: E731
    has_settlement = c.clean_text(col("settlement_amount")).isNotNull() & c.clean_text(
        col("settlement_currency_iso_code")).isNotNull()
    df = c.with_currency(df, "_tccy", col("currency_iso_code"))
    df = c.with_currency(df, "_sccy", F.coalesce(c.clean_text(col("settlement_currency_iso_code")),
                                                 col("currency_iso_code")))
    submitted = F.coalesce(c.clean_text(col("amount_submitted_for_settlement")), c.clean_text(col("amount_authorized")))
    df = c.with_minors(df, [
        c.Amount("_tamt", submitted, "_tccy_exp"),
        c.Amount("_samt", F.when(has_settlement, col("settlement_amount")).otherwise(submitted), "_sccy_exp"),
        c.Amount("_fee", F.coalesce(c.clean_text(col("service_fee")), F.lit("")), "_tccy_exp", optional=True)])
    kind = F.lower(F.trim(col("transaction_type")))
    status = F.lower(F.trim(col("transaction_status")))
    sign = c.lookup(TYPE_SIGN, kind)
    amount = F.col("_samt") * sign
    same_currency = F.col("_sccy") == F.col("_tccy")
    fee = F.when(same_currency, F.col("_fee")).otherwise(F.lit(0).cast("long"))
    settled = status.isin(*SETTLED)
    booked, ts_err = c.timestamp_with_abbreviation(col("created_datetime"),
                                                   F.coalesce(c.clean_text(col("created_timezone")), F.lit("UTC")),
                                                   "yyyy-MM-dd HH:mm:ss")
    error = F.coalesce(
        F.when(F.col("_malformed"), F.lit(c.MALFORMED_ROW)),
        F.when(c.clean_text(col("transaction_id")).isNull(), F.lit(c.MISSING_ID)),
        F.when(sign.isNull(), F.lit(c.UNKNOWN_TYPE)),
        F.when(~settled & ~status.isin(*NOT_SETTLED), F.lit(c.UNKNOWN_TYPE)),
        F.when(settled, F.coalesce(F.col("_tamt_err"), F.col("_samt_err"), F.col("_fee_err"))),
        F.when(settled, ts_err),
        F.when(settled & (kind == "credit") & c.clean_text(col("refunded_transaction_id")).isNull(), F.lit(c.MISSING_ID)),
    )
    detail = (F.when(error == c.UNKNOWN_TYPE, F.concat_ws(" ", F.lit("Transaction Type/Status="), kind, status))
              .when(error == c.BAD_TIMESTAMP, F.concat_ws(" ", F.lit("Created Datetime/Timezone="),
                                                         col("created_datetime"), col("created_timezone")))
              .when(error == c.MISSING_ID, F.lit("a credit without Refunded Transaction ID, or no Transaction ID")))
    rate = c.parse_decimal(col("settlement_currency_exchange_rate"))
    batch = F.coalesce(c.clean_text(col("settlement_batch_id")),
                       F.when(c.clean_text(col("disbursement_date")).isNotNull(),
                              F.concat_ws("_", c.clean_text(col("merchant_account")),
                                          c.clean_text(col("disbursement_date")))))
    txn = c.clean_text(col("transaction_id"))
    name = F.coalesce(c.clean_text(col("cardholder_name")),
                      F.nullif(F.concat_ws(" ", c.clean_text(col("customer_first_name")),
                                           c.clean_text(col("customer_last_name"))), F.lit("")))
    fx = has_settlement & ~same_currency
    return df.select(
        F.col("file_sha256"), F.col("file_name"), F.col("record_ordinal"), F.col("_raw"),
        error.alias("_error"), detail.alias("_error_detail"), (~settled).alias("_skip"),
        F.when(kind == "sale", F.lit("payment")).when(kind == "credit", F.lit("refund")).alias("event_type"),
        F.lit("braintree").alias("psp"),
        amount.alias("amount_minor"), fee.alias("fee_minor"), (amount - fee).alias("net_minor"),
        F.col("_sccy").alias("currency"),
        F.when(fx, F.col("_tamt") * sign).alias("presentment_amount_minor"),
        F.when(fx, F.col("_tccy")).alias("presentment_currency"),
        F.when(fx, rate.cast("decimal(20,10)")).alias("fx_rate"),
        txn.alias("psp_ref"),
        F.coalesce(c.clean_text(col("refunded_transaction_id")), F.when(kind == "sale", txn)).alias("psp_payment_ref"),
        txn.alias("psp_line_id"),
        c.clean_text(col("order_id")).alias("merchant_ref"),
        batch.alias("payout_ref"),
        c.clean_text(col("merchant_account")).alias("account_ref"),
        booked.alias("booked_at"),
        F.upper(F.coalesce(c.clean_text(col("created_timezone")), F.lit("UTC"))).alias("booked_tz"),
        F.to_date(F.substring(c.clean_text(col("disbursement_date")), 1, 10)).alias("value_date"),
        F.coalesce(c.clean_text(col("card_type")), c.clean_text(col("payment_instrument_type"))).alias("payment_method"),
        c.clean_text(col("descriptor_name")).alias("description"),
        c.hash_email(F.coalesce(c.clean_text(col("customer_email")), c.clean_text(col("paypal_payer_email"))), ctx)
         .alias("customer_email_hash"),
        c.hash_email(name, ctx).alias("counterparty_name_hash"),
    )
