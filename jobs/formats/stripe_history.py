"""Stripe: the Dashboard's balance history export ("Balance" / "All activity" CSV, legacy layout).

Header ``id,Type,Source,Amount,Fee,Net,Currency,Created (UTC),Available On (UTC),Status,Description,
Transfer,Transfer Date (UTC),...`` (mapped by name; some exports put the currency in the amount headers,
``Amount (MYR)``; optional ``Customer Facing Amount``/``Customer Facing Currency`` give what the
customer paid when the balance currency differs). One row per balance transaction (``txn_``): signed major-unit amounts, fee a positive
cost, ``net = amount - fee``, lowercase currency, ``YYYY-MM-DD HH:MM`` times in UTC.

``Type`` is the balance transaction type (charge, refund, adjustment, stripe_fee, payout...). A dispute
is an ``adjustment`` whose ``Source`` is a ``du_``/``dp_`` object: negative -> chargeback, positive ->
chargeback_reversal. ``Transfer`` names the payout (``po_``) that paid the row out; a ``payout`` row is
that payout itself (negative: money leaves the balance), so a payout's rows sum to minus its row.
"""
from __future__ import annotations

import re

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from jobs.formats import common as c
from jobs.formats.csvread import col_or_null, read_checked_csv
from jobs.formats.registry import FormatSpec
from jobs.landing import LandedFile
from jobs.money import CURRENCY_EXPONENTS
from jobs.settings import Settings

TYPE_TO_EVENT = {
    "charge": "payment", "payment": "payment", "refund": "refund", "payment_refund": "refund",
    "stripe_fee": "fee", "stripe_fx_fee": "fee", "tax_fee": "fee", "network_cost": "fee", "application_fee": "fee",
    "application_fee_refund": "fee", "contribution": "fee", "climate_order_purchase": "fee",
    "climate_order_refund": "fee", "payout": "payout", "payout_cancel": "adjustment", "payout_failure": "adjustment",
    "payout_minimum_balance_hold": "reserve_hold", "payout_minimum_balance_release": "reserve_release",
    "payment_network_reserve_hold": "reserve_hold", "payment_network_reserve_release": "reserve_release",
    "reserved_funds": "reserve_hold", "reserve_transaction": "adjustment", "transfer": "transfer",
    "transfer_cancel": "transfer", "transfer_failure": "transfer", "transfer_refund": "transfer", "topup": "transfer",
    "topup_reversal": "transfer", "connect_collection_transfer": "transfer", "adjustment": "adjustment",
    "payment_failure_refund": "adjustment", "refund_failure": "adjustment", "payment_reversal": "adjustment",
    "payment_unreconciled": "adjustment", "advance": "adjustment", "advance_funding": "adjustment",
    "anticipation_repayment": "adjustment",
}
_CCY = sorted(code.lower() for code in CURRENCY_EXPONENTS)
REQUIRED = [("id",), ("type",), ("source",), ("currency",), ("created_utc", "created"),
            *[(name, *(f"{name}_{x}" for x in _CCY)) for name in ("amount", "fee", "net")]]
KNOWN = {"id", "type", "source", "currency", "created_utc", "created", "available_on_utc", "available_on", "status",
         "description", "transfer", "transfer_date_utc", "transfer_date", "transfer_group", "customer_email",
         "customer_name", "customer_id", "customer_description", "order_id", "card_brand", "payment_method_type",
         "customer_facing_amount", "customer_facing_currency"}
KNOWN_PATTERNS = (r"(amount|fee|net)(_[a-z]{3})?", r".*_metadata", r"metadata_.*", r"converted_.*",
                  r"(seller|buyer)_.*", r"(card|shipping|customer)_address_.*", r"taxes_on_fee.*")
DISPUTE_SOURCE = r"^(du|dp)_"
CHARGE_IN_TEXT = r"((ch|py)_[A-Za-z0-9]+)"


def parse_balance_history(spark: SparkSession, settings: Settings, spec: FormatSpec, files: list[LandedFile],
                          ctx: c.ParseContext) -> c.ParseOutput:
    read = read_checked_csv(spark, settings, files, REQUIRED, KNOWN, KNOWN_PATTERNS)
    if read.records is None:                   # every file refused whole (schema drift)
        return c.nothing_parsed(spark, read.rejected, read.notes)
    return c.finish(to_events(read.records, ctx), spec, ctx, rejected=read.rejected, notes=read.notes,
                    files=files)


def _money_column(df: DataFrame, name: str):
    """``Amount`` or ``Amount (XXX)``: the first such column with a value on the row."""
    names = [col for col in df.columns if re.fullmatch(rf"{name}(_[a-z]{{3}})?", col)]
    return F.coalesce(*[c.clean_text(F.col(n)) for n in names]) if names else F.lit(None).cast("string")


def to_events(df: DataFrame, ctx: c.ParseContext) -> DataFrame:
    col = lambda *names: col_or_null(df, *names)  # noqa: E731
    metadata_order = [F.col(n) for n in df.columns if re.fullmatch(r"order_id_metadata|metadata_order_id", n)]
    df = c.with_currency(df, "_ccy", col("currency"))
    df = c.with_currency(df, "_pccy", col("customer_facing_currency"))
    df = c.with_minors(df, [*[c.Amount(out, _money_column(df, name), "_ccy_exp")
                              for out, name in (("_gross", "amount"), ("_fee", "fee"), ("_net", "net"))],
                            c.Amount("_pres", col("customer_facing_amount"), "_pccy_exp", optional=True)])
    gross, fee, net, currency = F.col("_gross"), F.col("_fee"), F.col("_net"), F.col("_ccy")
    pres_ccy = F.col("_pccy")
    has_presentment = c.clean_text(col("customer_facing_amount")).isNotNull() & pres_ccy.isNotNull() & (pres_ccy != "")
    kind = F.lower(F.trim(col("type")))
    source = c.clean_text(col("source"))
    is_dispute = (kind == "adjustment") & F.coalesce(source.rlike(DISPUTE_SOURCE), F.lit(False))
    event_type = (F.when(is_dispute & (gross < 0), F.lit("chargeback"))
                  .when(is_dispute, F.lit("chargeback_reversal"))
                  .otherwise(c.lookup(TYPE_TO_EVENT, kind)))
    created_text = F.coalesce(c.clean_text(col("created_utc")), c.clean_text(col("created")))
    created = F.coalesce(F.to_timestamp(created_text, "yyyy-MM-dd HH:mm:ss"),
                         F.to_timestamp(created_text, "yyyy-MM-dd HH:mm"))
    description = c.clean_text(col("description"))
    charge_in_text = F.nullif(F.regexp_extract(F.coalesce(description, F.lit("")), CHARGE_IN_TEXT, 1), F.lit(""))
    is_payout = kind == "payout"
    needs_source = event_type.isin("payment", "refund", "chargeback", "chargeback_reversal", "payout")
    error = F.coalesce(
        F.when(F.col("_malformed"), F.lit(c.MALFORMED_ROW)),
        F.when(c.clean_text(col("id")).isNull(), F.lit(c.MISSING_ID)),
        F.col("_gross_err"), F.col("_fee_err"), F.col("_net_err"),
        F.when(has_presentment, F.coalesce(F.col("_pres_err"), F.when(F.col("_pccy_exp").isNull(),
                                                                        F.lit(c.UNKNOWN_CURRENCY)))),
        F.when(event_type.isNull(), F.lit(c.UNKNOWN_TYPE)),
        F.when(created.isNull(), F.lit(c.BAD_TIMESTAMP)),
        F.when(needs_source & source.isNull(), F.lit(c.MISSING_ID)),
        F.when(gross - fee != net, F.lit(c.INCONSISTENT_AMOUNTS)),
    )
    detail = (F.when(error == c.UNKNOWN_TYPE, F.concat(F.lit("Type="), kind))
              .when(error == c.INCONSISTENT_AMOUNTS, F.lit("Amount - Fee != Net"))
              .when(error == c.UNKNOWN_CURRENCY, F.concat(F.lit("Currency="), currency))
              .when(error == c.BAD_TIMESTAMP, F.concat(F.lit("Created="), F.coalesce(created_text, F.lit("")))))
    payout_date = F.coalesce(c.clean_text(col("transfer_date_utc")), c.clean_text(col("transfer_date")),
                             F.when(is_payout, F.coalesce(c.clean_text(col("available_on_utc")),
                                                          c.clean_text(col("available_on")))))
    is_payment = event_type == "payment"
    return df.select(
        F.col("file_sha256"), F.col("file_name"), F.col("record_ordinal"), F.col("_raw"),
        error.alias("_error"), detail.alias("_error_detail"),
        event_type.alias("event_type"),
        F.lit("stripe").alias("psp"),
        gross.alias("amount_minor"), fee.alias("fee_minor"), net.alias("net_minor"), currency.alias("currency"),
        F.when(has_presentment, F.col("_pres")).alias("presentment_amount_minor"),
        F.when(has_presentment, pres_ccy).alias("presentment_currency"),
        F.when(has_presentment & (pres_ccy != currency) & (F.col("_pres") != 0),
               (gross.cast("decimal(38,10)") / F.col("_pres")).cast("decimal(20,10)")).alias("fx_rate"),
        source.alias("psp_ref"),
        F.when(is_payment, source).otherwise(charge_in_text).alias("psp_payment_ref"),
        c.clean_text(col("id")).alias("psp_line_id"),
        F.coalesce(*metadata_order, c.clean_text(col("order_id"))).alias("merchant_ref"),
        F.coalesce(c.clean_text(col("transfer")), F.when(is_payout, source)).alias("payout_ref"),
        created.alias("booked_at"),
        F.lit("UTC").alias("booked_tz"),
        F.to_date(F.substring(payout_date, 1, 10)).alias("value_date"),
        F.coalesce(c.clean_text(col("payment_method_type")), c.clean_text(col("card_brand"))).alias("payment_method"),
        description.alias("description"),
        c.hash_email(col("customer_email"), ctx).alias("customer_email_hash"),
        c.hash_email(col("customer_name"), ctx).alias("counterparty_name_hash"),
    )
