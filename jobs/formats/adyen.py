"""Adyen: settlement details report (one CSV per payout batch), mapped by header name.

Classic 30-column, 2021 and 2025 layouts and reordered columns all read the same way. Amounts are
unsigned Debit/Credit pairs: gross in the transaction currency (``Gross Currency``), net and fees in
the settlement currency (``Net Currency``). Canonical amounts are in the settlement currency:
``net = Net Credit - Net Debit``, ``fee = Commission + Markup + Scheme Fees + Interchange`` (plus
``Payment Fees``/``DCC Markup`` where present), ``amount = net + fee``; the transaction-currency gross
is the presentment amount. Creation Date is local time in the ``TimeZone`` abbreviation (CET, PDT...).

Control total: a batch's ``MerchantPayout`` row equals the sum of the batch's other rows (net). A file
whose rows do not sum to it is held back whole and flagged (``CONTROL_TOTAL_MISMATCH``).
"""
from __future__ import annotations

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from jobs.formats import common as c
from jobs.formats.csvread import col_or_null, read_checked_csv
from jobs.formats.registry import FormatSpec
from jobs.landing import LandedFile
from jobs.settings import Settings

TYPE_TO_EVENT = {
    "settled": "capture", "refunded": "refund", "chargeback": "chargeback", "secondchargeback": "second_chargeback",
    "chargebackreversed": "chargeback_reversal", "refundedreversed": "adjustment", "fee": "fee", "misccosts": "fee",
    "paymentcost": "fee", "merchantpayout": "payout", "depositcorrection": "adjustment",
    "invoicededuction": "adjustment", "matchedstatement": "adjustment", "manualcorrected": "adjustment",
    "bankinstructionreturned": "adjustment", "epapaid": "adjustment", "balancetransfer": "transfer",
    "paidout": "adjustment", "paidoutreversed": "adjustment", "settledbulk": "capture",
    "chargebackreversedexternallywithinfo": "chargeback_reversal", "settledexternallywithinfo": "capture",
    "chargebackexternallywithinfo": "chargeback", "refundedexternallywithinfo": "refund",
}
FEE_COLUMNS = {"commission_nc": "commission", "markup_nc": "markup", "scheme_fees_nc": "scheme_fees",
               "interchange_nc": "interchange", "payment_fees_nc": "payment_fees", "dcc_markup_nc": "dcc_markup"}
REQUIRED = [("merchant_account",), ("psp_reference",), ("type",), ("net_currency",), ("net_debit_nc",),
            ("net_credit_nc",), ("batch_number",), ("creation_date", "creation_date_ams"), ("timezone",)]
KNOWN = {
    "company_account", "merchant_account", "psp_reference", "merchant_reference", "payment_method", "creation_date",
    "timezone", "type", "modification_reference", "gross_currency", "gross_debit_gc", "gross_credit_gc",
    "exchange_rate", "net_currency", "net_debit_nc", "net_credit_nc", *FEE_COLUMNS, "payment_method_variant",
    "modification_merchant_reference", "batch_number", "booking_date", "booking_date_timezone", "metadata",
    "balance_currency", "net_debit_bc", "net_credit_bc", "funds_destination", "balance_platform_debit",
    "balance_platform_credit", "shopper_country", "clearing_network", "merchant_order_reference",
    "dispute_reference", "arn", "settlement_flow", "authorisation_code", "gross_fees_nc", "surcharge_amount",
    "creation_date_ams", "store", "terminal_id",
}
KNOWN_PATTERNS = (r"reserved\d+",)
PAYOUT_BANK_REF = r"(TX[0-9A-Z]+XT)"


def parse_settlement_details(spark: SparkSession, settings: Settings, spec: FormatSpec, files: list[LandedFile],
                             ctx: c.ParseContext) -> c.ParseOutput:
    read = read_checked_csv(spark, settings, files, REQUIRED, KNOWN, KNOWN_PATTERNS)
    if read.records is None:                   # every file refused whole (schema drift)
        return c.nothing_parsed(spark, read.rejected, read.notes)
    return c.finish(to_events(read.records, ctx), spec, ctx, rejected=read.rejected, notes=read.notes, files=files,
                    hold=lambda rows: c.held_files(control_totals(rows), "the batch's rows do not sum to its "
                                                                         "MerchantPayout row"))


def control_totals(rows: DataFrame) -> DataFrame:
    """Per file: Σ net of non-payout rows + payout row net == 0; null when unverifiable."""
    is_payout = F.col("event_type") == "payout"
    unparsed = F.col("_error").isin(c.BAD_AMOUNT, c.UNKNOWN_CURRENCY, c.MALFORMED_ROW, c.AMOUNT_PRECISION)
    agg = rows.groupBy("file_sha256").agg(
        F.count(F.when(unparsed, 1)).alias("unparsed"),
        F.count(F.when(is_payout, 1)).alias("payout_rows"),
        # every row whose amounts were read counts, also one quarantined for another reason (unknown type)
        F.sum(F.when(~F.coalesce(unparsed, F.lit(False)), F.col("net_minor"))).alias("net_sum"),
    )
    ok = F.when((F.col("unparsed") > 0) | (F.col("payout_rows") != 1), F.lit(None).cast("boolean")).otherwise(
        F.col("net_sum") == 0)
    return agg.select("file_sha256", ok.alias("control_totals_ok"),
                      F.when(F.col("payout_rows") == 0, F.lit("no MerchantPayout row: batch total not verifiable"))
                      .alias("detail"))


def to_events(df: DataFrame, ctx: c.ParseContext) -> DataFrame:
    col = lambda *names: col_or_null(df, *names)  # noqa: E731
    df = c.with_currency(df, "_nccy", col("net_currency"))
    df = c.with_currency(df, "_gccy", col("gross_currency"))
    amounts = {"_net_credit": ("net_credit_nc", "_nccy_exp"), "_net_debit": ("net_debit_nc", "_nccy_exp"),
               "_gross_credit": ("gross_credit_gc", "_gccy_exp"), "_gross_debit": ("gross_debit_gc", "_gccy_exp"),
               **{f"_fee_{name}": (column, "_nccy_exp") for column, name in FEE_COLUMNS.items()}}
    df = c.with_minors(df, [c.Amount(out, col(column), exp, optional=True) for out, (column, exp) in amounts.items()])
    net_ccy, gross_ccy = F.col("_nccy"), F.col("_gccy")
    has_gross = gross_ccy.isNotNull() & (gross_ccy != "") & (c.clean_text(col("gross_credit_gc")).isNotNull()
                                                             | c.clean_text(col("gross_debit_gc")).isNotNull())
    net_credit, net_debit = F.col("_net_credit"), F.col("_net_debit")
    gross_credit, gross_debit = F.col("_gross_credit"), F.col("_gross_debit")
    e1, e2, e3, e4 = (F.col(f"{n}_err") for n in ("_net_credit", "_net_debit", "_gross_credit", "_gross_debit"))
    fee_parts = [(name, F.col(f"_fee_{name}")) for name in FEE_COLUMNS.values()]
    fee_errors = [F.col(f"_fee_{name}_err") for name in FEE_COLUMNS.values()]
    fee = sum((v for _, v in fee_parts), F.lit(0).cast("long"))
    net = net_credit - net_debit
    gross_presentment = gross_credit - gross_debit
    type_key = F.lower(F.regexp_replace(col("type"), r"\s+", ""))
    event_type = c.lookup(TYPE_TO_EVENT, type_key)
    booked_at, ts_err = c.timestamp_with_abbreviation(
        F.coalesce(c.clean_text(col("creation_date")), c.clean_text(col("creation_date_ams"))),
        F.when(c.clean_text(col("creation_date")).isNotNull(), col("timezone")).otherwise(F.lit("CET")),
        "yyyy-MM-dd HH:mm:ss")
    rate = F.when(c.clean_text(col("exchange_rate")).isNotNull(), c.parse_decimal(col("exchange_rate")))
    psp_reference = c.clean_text(col("psp_reference"))
    modification = c.clean_text(col("modification_reference"))
    is_transaction = event_type.isin("capture", "refund", "chargeback", "second_chargeback", "chargeback_reversal")
    # Gross x rate - fees = net (within one minor unit of rounding); gross is in its own currency.
    gross_major = F.abs(gross_credit - gross_debit) / c.pow10(F.col("_gccy_exp"))
    expected_net_abs = F.round(gross_major * rate * c.pow10(F.col("_nccy_exp")), 0)
    signed_fee_effect = F.when(net >= 0, -fee).otherwise(fee)
    inconsistent = is_transaction & has_gross & rate.isNotNull() & (
        F.abs(F.abs(net) - (expected_net_abs + signed_fee_effect)) > 1)
    error = F.coalesce(
        F.when(F.col("_malformed"), F.lit(c.MALFORMED_ROW)),
        F.when(event_type.isNull(), F.lit(c.UNKNOWN_TYPE)),
        F.when(F.col("_nccy_exp").isNull(), F.lit(c.UNKNOWN_CURRENCY)),
        e1, e2, F.when(has_gross, F.coalesce(e3, e4)), *fee_errors,
        ts_err,
        F.when(is_transaction & psp_reference.isNull(), F.lit(c.MISSING_ID)),
        F.when(c.clean_text(col("batch_number")).isNull(), F.lit(c.MISSING_ID)),
        F.when(inconsistent, F.lit(c.INCONSISTENT_AMOUNTS)),
    )
    detail = (F.when(error == c.UNKNOWN_TYPE, F.concat(F.lit("Type="), col("type")))
              .when(error == c.INCONSISTENT_AMOUNTS, F.lit("gross x exchange rate - fees != net"))
              .when(error == c.BAD_TIMESTAMP, F.concat_ws(" ", F.lit("Creation Date/TimeZone="),
                                                         col("creation_date"), col("timezone"))))
    breakdown = F.map_filter(F.create_map(*[x for name, v in fee_parts for x in (F.lit(name), v)]),
                             lambda k, v: v != 0)
    is_payment = event_type == "capture"
    return df.select(
        F.col("file_sha256"), F.col("file_name"), F.col("record_ordinal"), F.col("_raw"),
        error.alias("_error"), detail.alias("_error_detail"),
        event_type.alias("event_type"),
        F.lit("adyen").alias("psp"),
        (net + fee).alias("amount_minor"), fee.alias("fee_minor"), net.alias("net_minor"), net_ccy.alias("currency"),
        F.when(fee != 0, breakdown).alias("fee_breakdown"),
        F.when(has_gross, gross_presentment).alias("presentment_amount_minor"),
        F.when(has_gross, gross_ccy).alias("presentment_currency"),
        F.when(has_gross, rate.cast("decimal(20,10)")).alias("fx_rate"),
        F.when(is_payment, psp_reference).when(is_transaction, modification).alias("psp_ref"),
        F.when(is_transaction, psp_reference).alias("psp_payment_ref"),
        F.concat_ws("|", F.coalesce(modification, psp_reference), type_key, c.clean_text(col("batch_number")))
         .alias("psp_line_id"),
        c.clean_text(col("merchant_reference")).alias("merchant_ref"),
        c.clean_text(col("batch_number")).alias("payout_ref"),
        F.when(event_type == "payout", F.coalesce(F.nullif(F.regexp_extract(modification, PAYOUT_BANK_REF, 1),
                                                           F.lit("")), modification)).alias("payout_bank_ref"),
        c.clean_text(col("merchant_account")).alias("account_ref"),
        booked_at.alias("booked_at"),
        F.upper(F.trim(col("timezone"))).alias("booked_tz"),
        F.to_date(F.substring(c.clean_text(col("booking_date")), 1, 10)).alias("value_date"),
        F.coalesce(c.clean_text(col("payment_method_variant")), c.clean_text(col("payment_method")))
         .alias("payment_method"),
        F.when(~is_transaction, modification).alias("description"),
    )
