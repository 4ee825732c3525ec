"""PayPal: Settlement Report (STL) and Transaction Detail Report (TRR), the SFTP multi-record CSVs.

Every line starts with its record type: ``RH`` report header, ``FH`` file header, ``SH`` section header,
``CH`` column names of the section body, ``SB`` one transaction, ``SF`` section footer (one per
currency), ``SC`` section record count, ``RF``/``RC`` the same for the report, ``FF`` file footer.
Files are read with Spark's CSV reader (every field a string); the ``SB`` rows are mapped by the ``CH``
names; the footers (a handful of lines) are checked on the driver. Record ordinal = position among
the file's ``SB`` rows.

Money: amounts are unsigned integers with two implied decimals *for every currency* ("100,00 yen and
$100.00 USD are both represented as 10000"), direction in a separate CR/DR column, for the gross and
for the fee. Canonical: gross CR -> money in; fee DR -> a cost (> 0), fee CR -> a fee given back
(< 0); converted to ISO 4217 minor units (JPY: /100, refused if not whole). Times are
``yyyy/MM/dd HH:mm:ss Z`` with their offset (kept in ``booked_tz``).

Event codes: T00xx payments, T01xx fees (T0106 chargeback fee -> dispute_fee), T02xx currency
conversion, T03xx deposits, T04xx withdrawals to the bank (the payouts), T11xx reversals (T1107 refund),
T12xx chargebacks (T1201) and their reversals (T1202), T13xx authorisations and voids (no money: read and
skipped), T15xx/T21xx holds and reserves. In a TRR, pending (P) and denied (D) transactions are
skipped. Ids: ``Transaction ID`` (psp_ref, psp_line_id), ``Invoice ID`` (merchant_ref), ``PayPal
Reference ID`` of type TXN (the original payment of a refund, chargeback or fee). TRR payer e-mail and
names are kept only as keyed hashes.

Payouts: STL is a daily balance report, not a batch report. A withdrawal (T0400/T0401 debit) takes the
balance to the bank; the rows of the same currency before it in the report (since the previous
withdrawal) get its Transaction ID as ``payout_ref``, the withdrawal row restates it (negative) and its
``Bank Reference ID`` is the payout's bank reference. This is exact for an account that withdraws its
balance (auto-sweep / daily withdrawal); when the section footer shows a non-zero beginning balance the
withdrawal also carries older money, and the file's detail says so.

Control totals: per section and currency, the SB rows' gross credits/debits and fee credits/debits equal
the ``SF`` footer; the number of SB rows equals ``SC`` (per section) and ``RC`` (per report); ``RF``
totals per currency equal the whole report's rows. A file that does not add up is held back whole.
"""
from __future__ import annotations

import csv
import io
from collections import defaultdict
from dataclasses import dataclass
from functools import reduce

from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql.types import BooleanType, StringType, StructField, StructType

from jobs import storage
from jobs.formats import common as c
from jobs.formats.csvread import column_positions, file_sha_from_path, normalize_header, pick_column, read_rows
from jobs.formats.drift import check_header
from jobs.formats.registry import FormatSpec, Head, paypal_column_header
from jobs.landing import LandedFile
from jobs.privacy import hash_pii
from jobs.settings import Settings
from jobs.spark import local_frame

STL_COLUMNS = ["transaction_id", "invoice_id", "paypal_reference_id", "paypal_reference_id_type",
               "transaction_event_code", "transaction_initiation_date", "transaction_completion_date",
               "transaction_debit_or_credit", "gross_transaction_amount", "gross_transaction_currency",
               "fee_debit_or_credit", "fee_amount", "fee_currency", "custom_field", "consumer_id",
               "payment_tracking_id", "store_id", "bank_reference_id", "credit_transactional_fee",
               "credit_promotional_fee", "credit_term"]
TRR_EXTRA = ["transactional_status", "insurance_amount", "sales_tax_amount", "shipping_amount", "transaction_subject",
             "transaction_note", "payer_s_account_id", "payer_address_status", "item_name", "item_id",
             "option_1_name", "option_1_value", "option_2_name", "option_2_value", "auction_site", "auction_buyer_id",
             "auction_closing_date", "shipping_method", "consumer_business_name", "card_type", "payment_source",
             "shipping_name", "authorization_review_status", "protection_eligibility", "first_name", "last_name"]
REQUIRED = [("transaction_id",), ("transaction_event_code",), ("transaction_debit_or_credit",),
            ("gross_transaction_amount",), ("gross_transaction_currency",)]
KNOWN = set(STL_COLUMNS) | set(TRR_EXTRA)
KNOWN_PATTERNS = (r"(shipping|billing)_address_.*", r"option_\d+_(name|value)", r"store_.*", r"terminal_.*")
CONTROL_RECORDS = ("SH", "SF", "SC", "RF", "RC", "FF")
MAX_COLUMNS = 80

# event code -> canonical event type (exact codes first, then by the code's family Txx)
CODE_EVENT = {
    "T0106": "dispute_fee", "T1107": "refund", "T1106": "chargeback", "T1201": "chargeback",
    "T1202": "chargeback_reversal", "T1205": "chargeback_reversal", "T1208": "chargeback_reversal",
    "T1207": "chargeback", "T1108": "fee", "T1109": "fee", "T1110": "reserve_hold", "T1111": "reserve_release",
    "T1105": "reserve_release", "T2103": "reserve_hold", "T2104": "reserve_release",
}
FAMILY_EVENT = {
    "T00": "payment", "T01": "fee", "T02": "transfer", "T03": "transfer", "T04": "payout", "T05": "adjustment",
    "T06": "adjustment", "T07": "adjustment", "T08": "adjustment", "T09": "adjustment", "T10": "adjustment",
    "T11": "adjustment", "T12": "adjustment", "T13": "adjustment", "T14": "adjustment", "T15": "reserve_hold",
    "T16": "adjustment", "T17": "adjustment", "T18": "adjustment", "T19": "adjustment", "T20": "transfer",
    "T21": "reserve_hold", "T22": "transfer", "T30": "adjustment", "T50": "adjustment", "T97": "adjustment",
    "T98": "adjustment", "T99": "adjustment",
}
NON_MONETARY_FAMILIES = ("T13",)
WITHDRAWALS = ("T0400", "T0401", "T0402", "T0403")


@dataclass
class _Layout:
    """Files whose CH records have the same number of names (read in one Spark read; each file's columns
    are picked by name from its own header)."""
    width: int
    files: list[LandedFile]
    headers: dict[str, list[str]]     # sha256 -> normalised CH names


def parse_stl(spark: SparkSession, settings: Settings, spec: FormatSpec, files: list[LandedFile],
              ctx: c.ParseContext) -> c.ParseOutput:
    return _parse(spark, settings, spec, files, ctx)


def parse_trr(spark: SparkSession, settings: Settings, spec: FormatSpec, files: list[LandedFile],
              ctx: c.ParseContext) -> c.ParseOutput:
    return _parse(spark, settings, spec, files, ctx)


def _layouts(settings: Settings, files: list[LandedFile]) -> tuple[list[_Layout], dict, dict]:
    groups: dict[int, _Layout] = {}
    rejected, notes = {}, {}
    for f in files:
        names = paypal_column_header(Head(storage.read_head(settings, f.raw_uri, 256 * 1024)))
        if not names:
            rejected[f.sha256] = (c.SCHEMA_DRIFT, "no CH (column header) record before the first SB record")
            continue
        header = [normalize_header(n) for n in names]
        check = check_header(header, REQUIRED, KNOWN, KNOWN_PATTERNS)
        if not check.ok:
            rejected[f.sha256] = (c.SCHEMA_DRIFT, check.describe())
            continue
        twice = sorted({n for n in header if n and header.count(n) > 1})
        note = "; ".join(filter(None, [check.describe(), twice and (
            f"column(s) {', '.join(twice)} appear more than once: the first is read")]))
        if note:
            notes[f.sha256] = note
        layout = groups.setdefault(len(header), _Layout(len(header), [], {}))
        layout.files.append(f)
        layout.headers[f.sha256] = header
    return [groups[width] for width in sorted(groups)], rejected, notes


def _read(spark: SparkSession, settings: Settings, layout: _Layout, files: list[LandedFile]) -> DataFrame:
    width = layout.width + 1                   # SB rows have exactly this many fields; other records do not
    names = F.create_map(*[F.lit(x) for f in files for x in (f.sha256, f.file_name)])
    frames = [df for df, _, _ in read_rows(spark, settings, layout.files, width, header=False)]
    df = reduce(lambda a, b: a.unionByName(b), frames)
    df = (df.withColumn("file_sha256", file_sha_from_path(F.col("_file_path")))
            .withColumn("file_name", names[F.col("file_sha256")])
            .withColumnRenamed("_block_start", "_pos_block")
            .withColumnRenamed("_row_in_split", "_pos_row")
            .withColumn("_rt", F.upper(F.trim(F.regexp_replace(F.col("c0"), "^\ufeff", "")))))
    in_file = Window.partitionBy("file_sha256").orderBy("_pos_block", "_pos_row")
    df = df.withColumn("_section", F.sum(F.when(F.col("_rt") == "SH", 1).otherwise(0)).over(
        in_file.rowsBetween(Window.unboundedPreceding, Window.currentRow)))
    return df.persist()


def _parse(spark: SparkSession, settings: Settings, spec: FormatSpec, files: list[LandedFile],
           ctx: c.ParseContext) -> c.ParseOutput:
    """One read per header width; the bodies of all widths become events in one plan (a day whose files
    have many column orders stays one small plan), and the footers are collected in one job."""
    layouts, rejected, notes = _layouts(settings, files)
    if not layouts:
        return c.nothing_parsed(spark, rejected, notes)
    bodies, footers = [], []
    order = Window.partitionBy("file_sha256").orderBy("_pos_block", "_pos_row")
    for layout in layouts:
        lines = _read(spark, settings, layout, files)
        sha = F.col("file_sha256")
        named = [pick_column(sha, where, len(layout.files), offset=1).alias(name)
                 for name, where in column_positions(layout.headers).items()]
        body = lines.filter(F.col("_rt") == "SB").select(
            "file_sha256", "file_name", "_section", "_pos_block", "_pos_row", *named,
            F.col("_corrupt_record").isNotNull().alias("_malformed"),
            F.coalesce(F.col("_corrupt_record"), F.concat_ws(",", *[F.coalesce(F.col(f"c{i}"), F.lit(""))
                                                                    for i in range(layout.width + 1)])).alias("_raw"))
        bodies.append(body.withColumn("record_ordinal", F.row_number().over(order)).drop("_pos_block", "_pos_row"))
        footers.append(_footer_rows(lines))
    events = to_events(reduce(lambda a, b: a.unionByName(b, allowMissingColumns=True), bodies), ctx)
    totals = _verify(_collect_footers(footers), _sums(events))
    for sha, (ok, detail) in totals.items():
        if ok is False:
            rejected[sha] = (c.CONTROL_TOTAL_MISMATCH, detail)
    held = [sha for sha in rejected]
    kept = events.filter(~F.col("file_sha256").isin(held)) if held else events
    stats = local_frame(spark, [(sha, ok, detail) for sha, (ok, detail) in totals.items()],
                        StructType([StructField("file_sha256", StringType()),
                                    StructField("control_totals_ok", BooleanType()),
                                    StructField("detail", StringType())]))
    return c.finish(kept, spec, ctx, extra_stats=stats, rejected=rejected, notes=notes, files=files)


def _hundredths_to_minor(df: DataFrame, out: str, text, exp_col: str, optional: bool) -> DataFrame:
    """PayPal's unsigned hundredths -> ISO minor units (``out``) and ``<out>_err``."""
    raw = F.trim(text)
    empty = raw.isNull() | (raw == "")
    digits = raw.rlike(r"^[0-9]{1,17}$")
    value = raw.cast("long")
    exp = F.col(exp_col)
    minor = (F.when(exp == 2, value).when(exp == 3, value * 10).when(exp == 4, value * 100)
             .when((exp == 0) & (value % 100 == 0), F.floor(value / 100).cast("long")))
    error = (F.when(empty & F.lit(optional), F.lit(None))
             .when(exp.isNull() & ~(empty & F.lit(optional)), F.lit(c.UNKNOWN_CURRENCY))
             .when(~digits, F.lit(c.BAD_AMOUNT))
             .when(minor.isNull(), F.lit(c.AMOUNT_PRECISION)))
    df = df.withColumn(f"{out}_err", error)
    return df.withColumn(out, F.when(empty & F.lit(optional), F.lit(0).cast("long"))
                         .when(F.col(f"{out}_err").isNull(), minor)).withColumn(f"{out}_units", F.when(digits, value))


def to_events(df: DataFrame, ctx: c.ParseContext) -> DataFrame:
    def col(name: str):
        return F.col(name) if name in df.columns else F.lit(None).cast("string")

    df = c.with_currency(df, "_ccy", col("gross_transaction_currency"))
    df = c.with_currency(df, "_fccy", F.coalesce(c.clean_text(col("fee_currency")), col("gross_transaction_currency")))
    df = _hundredths_to_minor(df, "_gross", col("gross_transaction_amount"), "_ccy_exp", optional=False)
    df = _hundredths_to_minor(df, "_fee", col("fee_amount"), "_fccy_exp", optional=True)
    code = F.upper(F.trim(col("transaction_event_code")))
    dc, fee_dc = F.upper(F.trim(col("transaction_debit_or_credit"))), F.upper(F.trim(col("fee_debit_or_credit")))
    gross = F.when(dc == "CR", F.col("_gross")).when(dc == "DR", -F.col("_gross"))
    fee = F.when(c.clean_text(col("fee_amount")).isNull(), F.lit(0).cast("long")).when(
        fee_dc == "DR", F.col("_fee")).when(fee_dc == "CR", -F.col("_fee"))
    family_type = c.lookup(FAMILY_EVENT, F.substring(code, 1, 3))
    reserve_family = F.substring(code, 1, 3).isin("T15", "T21")
    base_type = F.coalesce(c.lookup(CODE_EVENT, code), family_type)
    is_withdrawal = code.isin(*WITHDRAWALS) & (dc == "DR")
    event_type = (F.when(reserve_family & (dc == "CR") & c.lookup(CODE_EVENT, code).isNull(), F.lit("reserve_release"))
                  .when(code.startswith("T04") & ~is_withdrawal, F.lit("adjustment"))
                  .otherwise(base_type))
    status = F.upper(F.trim(col("transactional_status")))
    skip = F.substring(code, 1, 3).isin(*NON_MONETARY_FAMILIES) | status.isin("P", "D")
    completed = F.coalesce(c.clean_text(col("transaction_completion_date")),
                           c.clean_text(col("transaction_initiation_date")))
    booked = F.to_timestamp(completed, "yyyy/MM/dd HH:mm:ss xx")
    fee_currency_differs = c.clean_text(col("fee_amount")).isNotNull() & (F.col("_fccy") != F.col("_ccy"))
    error = F.coalesce(
        F.when(F.col("_malformed"), F.lit(c.MALFORMED_ROW)),
        F.when(c.clean_text(col("transaction_id")).isNull(), F.lit(c.MISSING_ID)),
        F.col("_gross_err"),
        F.when(~dc.isin("CR", "DR"), F.lit(c.BAD_AMOUNT)),
        F.col("_fee_err"),
        F.when(c.clean_text(col("fee_amount")).isNotNull() & ~fee_dc.isin("CR", "DR"), F.lit(c.BAD_AMOUNT)),
        F.when(fee_currency_differs, F.lit(c.INCONSISTENT_AMOUNTS)),
        F.when(event_type.isNull(), F.lit(c.UNKNOWN_TYPE)),
        F.when(booked.isNull(), F.lit(c.BAD_TIMESTAMP)),
    )
    detail = (F.when(error == c.UNKNOWN_TYPE, F.concat(F.lit("Transaction Event Code="), F.coalesce(code, F.lit(""))))
              .when(error == c.BAD_AMOUNT, F.concat_ws(" ", F.lit("amount/CR-DR:"), col("gross_transaction_amount"),
                                                      dc, col("fee_amount"), fee_dc))
              .when(error == c.UNKNOWN_CURRENCY, F.concat(F.lit("currency="), F.coalesce(F.col("_ccy"), F.lit(""))))
              .when(error == c.BAD_TIMESTAMP, F.concat(F.lit("date="), F.coalesce(completed, F.lit(""))))
              .when(error == c.INCONSISTENT_AMOUNTS, F.lit("fee currency differs from the gross currency")))
    txn = c.clean_text(col("transaction_id"))
    reference = F.when(F.upper(F.trim(col("paypal_reference_id_type"))) == "TXN", c.clean_text(col("paypal_reference_id")))
    # rows before a withdrawal (same file and currency, since the previous one) belong to it: walking the
    # file backwards, the last withdrawal seen so far. (A frame from the current row to the end of the
    # file would be recomputed for every row by Spark: quadratic in the rows of a currency.)
    backwards = (Window.partitionBy("file_sha256", "_ccy").orderBy(F.col("record_ordinal").desc())
                 .rowsBetween(Window.unboundedPreceding, Window.currentRow))
    df = df.withColumn("_withdrawal", F.when(is_withdrawal, txn))
    payout_ref = F.last("_withdrawal", ignorenulls=True).over(backwards)
    name = F.nullif(F.concat_ws(" ", c.clean_text(col("first_name")), c.clean_text(col("last_name"))), F.lit(""))
    text = F.coalesce(c.clean_text(col("transaction_subject")), c.clean_text(col("item_name")),
                      c.clean_text(col("transaction_note")), c.clean_text(col("custom_field")))
    return df.select(
        F.col("file_sha256"), F.col("file_name"), F.col("record_ordinal"), F.col("_raw"), F.col("_section"),
        F.col("_ccy").alias("_units_ccy"), F.col("_gross_units"), F.col("_fee_units"), dc.alias("_dc"),
        fee_dc.alias("_fee_dc"), is_withdrawal.alias("_is_withdrawal"),
        error.alias("_error"), detail.alias("_error_detail"), skip.alias("_skip"),
        event_type.alias("event_type"),
        F.lit("paypal").alias("psp"),
        gross.alias("amount_minor"), fee.alias("fee_minor"), (gross - fee).alias("net_minor"),
        F.col("_ccy").alias("currency"),
        txn.alias("psp_ref"),
        F.coalesce(reference, F.when(event_type == "payment", txn)).alias("psp_payment_ref"),
        txn.alias("psp_line_id"),
        c.clean_text(col("invoice_id")).alias("merchant_ref"),
        payout_ref.alias("payout_ref"),
        F.when(is_withdrawal, c.clean_text(col("bank_reference_id"))).alias("payout_bank_ref"),
        booked.alias("booked_at"),
        F.regexp_extract(completed, r"([+-][0-9]{4})$", 1).alias("booked_tz"),
        F.when(is_withdrawal, F.to_date(F.substring(completed, 1, 10), "yyyy/MM/dd")).alias("value_date"),
        F.coalesce(c.clean_text(col("card_type")), c.clean_text(col("payment_source"))).alias("payment_method"),
        text.alias("description"),
        hash_pii(F.when(col("payer_s_account_id").contains("@"), col("payer_s_account_id")), ctx.pii_salt)
         .alias("customer_email_hash"),
        hash_pii(name, ctx.pii_salt).alias("counterparty_name_hash"),
    )


def _footer_rows(lines: DataFrame) -> DataFrame:
    """The control records of the files (a handful of lines each), fields c0..c<width>."""
    width = [c_ for c_ in lines.columns if c_.startswith("c") and c_[1:].isdigit()]
    return (lines.filter(F.col("_rt").isin(*CONTROL_RECORDS))
            .select("file_sha256", "_section", "_rt", "_corrupt_record", "_pos_block", "_pos_row", *width))


def _collect_footers(footers: list[DataFrame]) -> list:
    """The control records of every width, in file order (a width's missing fields are null, as its trailing
    empty fields are: ``_fields`` drops both)."""
    union = reduce(lambda a, b: a.unionByName(b, allowMissingColumns=True), footers)
    return union.orderBy("file_sha256", "_pos_block", "_pos_row").drop("_pos_block", "_pos_row").collect()


def _sums(events: DataFrame) -> list:
    """Per file, section and currency: the SB rows' gross and fee credits and debits, rows, unreadable rows."""
    return (events.groupBy("file_sha256", "_section", "_units_ccy")
            .agg(F.sum(F.when(F.col("_dc") == "CR", F.col("_gross_units")).otherwise(0)).alias("gross_cr"),
                 F.sum(F.when(F.col("_dc") == "DR", F.col("_gross_units")).otherwise(0)).alias("gross_dr"),
                 F.sum(F.when(F.col("_fee_dc") == "CR", F.col("_fee_units")).otherwise(0)).alias("fee_cr"),
                 F.sum(F.when(F.col("_fee_dc") == "DR", F.col("_fee_units")).otherwise(0)).alias("fee_dr"),
                 F.count(F.lit(1)).alias("rows"),
                 F.count(F.when(F.col("_error").isin(c.MALFORMED_ROW, c.BAD_AMOUNT, c.UNKNOWN_CURRENCY), 1))
                 .alias("unreadable"))
            .collect())


def _fields(row) -> list[str]:
    if row["_corrupt_record"] is not None:
        return next(csv.reader(io.StringIO(row["_corrupt_record"])), [])
    present = row.asDict()
    values = [present[f"c{i}"] for i in range(MAX_COLUMNS) if f"c{i}" in present]
    while values and values[-1] is None:
        values.pop()
    return ["" if v is None else v for v in values]


def _int(text: str) -> int | None:
    text = (text or "").strip()
    return int(text) if text.isascii() and text.isdigit() else None     # "²".isdigit(), yet int("²") raises


def _verify(footers, sums) -> dict[str, tuple[bool | None, str | None]]:
    """Per file: (control_totals_ok, detail)."""
    by_file: dict[str, dict] = defaultdict(lambda: {"sections": defaultdict(dict), "report": defaultdict(
        lambda: [0, 0, 0, 0]), "rows": defaultdict(int), "unreadable": 0, "footers": []})
    for s in sums:
        f = by_file[s["file_sha256"]]
        values = [s["gross_cr"] or 0, s["gross_dr"] or 0, s["fee_cr"] or 0, s["fee_dr"] or 0]
        f["sections"][s["_section"]][s["_units_ccy"]] = values
        f["rows"][s["_section"]] += s["rows"]
        f["unreadable"] += s["unreadable"]
        report = f["report"][s["_units_ccy"]]
        for i in range(4):
            report[i] += values[i]
    for row in footers:
        by_file[row["file_sha256"]]["footers"].append((row["_section"], row["_rt"], _fields(row)))
    out = {}
    for sha, f in by_file.items():
        problems, checked, notes = [], 0, []
        for section, rt, fields in f["footers"]:
            if rt in ("SF", "RF") and len(fields) >= 6:
                ccy = fields[1].strip().upper()
                stated = [_int(x) for x in fields[2:6]]
                actual = (f["sections"][section] if rt == "SF" else f["report"]).get(ccy, [0, 0, 0, 0])
                checked += 1
                if stated != actual:
                    problems.append(f"{rt} {ccy} (section {section}): footer gross CR/DR, fee CR/DR {stated} "
                                    f"!= rows {actual}")
                if rt == "SF" and len(fields) >= 8 and _int(fields[7]) not in (None, 0):
                    notes.append(f"section {section} {ccy} begins with a balance of {fields[6]} {fields[7]}: "
                                 "its withdrawal includes money from earlier reports")
            elif rt in ("SC", "RC") and len(fields) >= 2:
                stated = _int(fields[1])
                actual = f["rows"][section] if rt == "SC" else sum(f["rows"].values())
                checked += 1
                if stated != actual:
                    problems.append(f"{rt}: footer counts {stated} record(s), the body has {actual}")
        if f["unreadable"]:
            out[sha] = (None, "; ".join([f"{f['unreadable']} unreadable amount(s): footers not verifiable"] + notes))
        elif problems:
            out[sha] = (False, "; ".join(problems + notes))
        else:
            out[sha] = (True if checked else None, "; ".join(notes or ([] if checked else ["no footer records"]))
                        or None)
    return out
