"""The canonical, versioned table schemas of the lake (the contract between stages).

Every parser produces rows of ``EVENT_SCHEMA``; every stage after parsing reads only these columns.
Money: ``*_minor`` columns are signed integer minor units from the merchant's point of view (money
in > 0, money out < 0); ``fee_minor`` is the PSP's charge to the merchant (> 0 is a cost), and
``net_minor = amount_minor - fee_minor``. Timestamps are UTC; ``booked_tz`` keeps the zone the
source used. Lineage: ``file_sha256`` + ``record_ordinal`` (1-based among the file's data records).

Changing a column is a new ``EVENT_SCHEMA_VERSION`` (documented in README, "Canonical event schema").
Columns are only ever added (nullable, at the end), never renamed or removed. History:
  1  the initial canonical schema;
  2  ``counterparty_name_hash``: keyed hash (per-tenant salt) of the name of the person or company on the
     other side (cardholder, payer, bank counterparty); names are never stored in clear.
"""
from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import (
    ArrayType, BooleanType, DateType, DecimalType, IntegerType, LongType, MapType, StringType, StructField,
    StructType, TimestampType,
)

EVENT_SCHEMA_VERSION = 2

SOURCE_KINDS = ("psp", "bank", "book")
EVENT_TYPES = (
    "payment", "capture", "refund", "chargeback", "second_chargeback", "chargeback_reversal",
    "dispute_fee", "fee", "payout", "bank_credit", "bank_debit", "adjustment", "reserve_hold",
    "reserve_release", "transfer",
)


def _fields(*spec: tuple) -> StructType:
    return StructType([StructField(name, dtype, nullable) for name, dtype, nullable in spec])


EVENT_SCHEMA = _fields(
    ("tenant_id", StringType(), False),
    ("ingest_date", DateType(), False),            # business date of the run that landed the file
    ("event_id", StringType(), False),             # sha256(file_sha256:record_ordinal)
    ("schema_version", IntegerType(), False),
    ("source", StringType(), False),               # stripe | adyen | ... | bank | book
    ("source_kind", StringType(), False),          # psp | bank | book
    ("format", StringType(), False),               # parser id
    ("parser_version", StringType(), False),
    ("event_type", StringType(), False),
    ("psp", StringType(), True),                   # the PSP the record is about (book rows name it)
    ("amount_minor", LongType(), False),           # gross, signed, settlement currency
    ("fee_minor", LongType(), False),
    ("net_minor", LongType(), False),
    ("currency", StringType(), False),
    ("fee_breakdown", MapType(StringType(), LongType()), True),
    ("presentment_amount_minor", LongType(), True),  # amount the customer saw (FX), signed
    ("presentment_currency", StringType(), True),
    ("fx_rate", DecimalType(20, 10), True),
    ("psp_ref", StringType(), True),               # PSP id of this movement (ch_/re_/du_, Adyen ref)
    ("psp_payment_ref", StringType(), True),       # PSP id of the original payment
    ("psp_line_id", StringType(), True),           # unique id of the line in the PSP's ledger (txn_)
    ("merchant_ref", StringType(), True),          # merchant order reference
    ("merchant_payment_id", StringType(), True),   # book: payment_id
    ("payout_ref", StringType(), True),            # PSP payout / batch id
    ("payout_bank_ref", StringType(), True),       # text the payout shows on the bank side
    ("bank_ref", StringType(), True),              # bank entry reference
    ("bank_text", StringType(), True),             # bank remittance / entry text (masked)
    ("account_ref", StringType(), True),           # bank account (IBAN) or PSP merchant account
    ("booked_at", TimestampType(), True),          # UTC
    ("booked_tz", StringType(), True),             # zone as written in the source
    ("value_date", DateType(), True),              # bank value date / PSP available or payout date
    ("payment_method", StringType(), True),
    ("description", StringType(), True),           # PAN-masked free text
    ("customer_email_hash", StringType(), True),   # keyed hash (per-tenant salt), never the email
    ("file_sha256", StringType(), False),
    ("file_name", StringType(), False),
    ("record_ordinal", IntegerType(), False),
    ("counterparty_name_hash", StringType(), True),  # v2: keyed hash of the counterparty's name
)

QUARANTINE_SCHEMA = _fields(
    ("tenant_id", StringType(), False),
    ("ingest_date", DateType(), False),
    ("file_sha256", StringType(), False),
    ("file_name", StringType(), False),
    ("record_ordinal", IntegerType(), True),       # null: the whole file
    ("reason_code", StringType(), False),
    ("reason_detail", StringType(), True),
    ("raw", StringType(), True),                   # PAN-masked raw text of the record
)

FILE_STATS_SCHEMA = _fields(
    ("tenant_id", StringType(), False),
    ("ingest_date", DateType(), False),
    ("file_sha256", StringType(), False),
    ("file_name", StringType(), False),
    ("source", StringType(), True),
    ("format", StringType(), False),
    ("parser_version", StringType(), True),
    ("records_read", LongType(), False),
    ("records_loaded", LongType(), False),
    ("records_quarantined", LongType(), False),
    ("control_totals_ok", BooleanType(), True),    # null: the format has no control totals
    ("detail", StringType(), True),
)

MATCH_SCHEMA = _fields(                            # one row per member of each match group
    ("tenant_id", StringType(), False),
    ("run_date", DateType(), False),
    ("match_id", StringType(), False),
    ("relation", StringType(), False),             # book_psp | payout_bank
    ("level", IntegerType(), False),
    ("rule_id", StringType(), False),
    ("rule_version", IntegerType(), False),
    ("score", DecimalType(7, 4), False),
    ("evidence", StringType(), True),              # JSON: fields that agreed, differences
    ("event_id", StringType(), False),
    ("role", StringType(), False),                 # book | psp | bank
    ("file_name", StringType(), False),
    ("record_ordinal", IntegerType(), False),
    ("run_id", StringType(), False),
    ("ingest_date", DateType(), True),             # the member's ingest date (null in rows written before it was)
)

ITEM_STATUS_SCHEMA = _fields(                      # state of every open item after a run
    ("tenant_id", StringType(), False),
    ("run_date", DateType(), False),
    ("event_id", StringType(), False),
    ("relation", StringType(), False),
    ("status", StringType(), False),               # EXPECTED | EXCEPTION
    ("reason_code", StringType(), True),
    ("reason_detail", StringType(), True),
    ("due_date", DateType(), True),                # when an EXPECTED item becomes an exception
    ("source", StringType(), False),
    ("event_type", StringType(), False),
    ("amount_minor", LongType(), False),
    ("currency", StringType(), False),
    ("file_name", StringType(), False),
    ("record_ordinal", IntegerType(), False),
    ("run_id", StringType(), False),
)

# The columns of an event the matching levels and the open-item ageing read: carried from run to run for
# every item still open (``OPEN_ITEM_SCHEMA``), so a run never goes back to the events of earlier days.
MATCH_COLUMNS = [
    "event_id", "ingest_date", "source", "source_kind", "format", "event_type", "psp", "amount_minor", "fee_minor",
    "net_minor", "currency", "presentment_amount_minor", "presentment_currency", "psp_ref", "psp_payment_ref",
    "psp_line_id", "merchant_ref", "merchant_payment_id", "payout_ref", "payout_bank_ref", "bank_ref", "bank_text",
    "account_ref", "booked_at", "value_date", "description", "file_name", "record_ordinal",
]

OPEN_ITEM_SCHEMA = StructType(                     # every (event, relation) open after a run, with what matching reads
    [StructField("tenant_id", StringType(), False), StructField("run_date", DateType(), False),
     StructField("relation", StringType(), False)]
    + [f for f in EVENT_SCHEMA.fields if f.name in MATCH_COLUMNS])

JOURNAL_SCHEMA = _fields(                          # one row per journal line
    ("tenant_id", StringType(), False),
    ("business_date", DateType(), False),
    ("journal_id", StringType(), False),
    ("entry_no", IntegerType(), False),
    ("journal_type", StringType(), False),
    ("account", StringType(), False),
    ("debit_minor", LongType(), False),
    ("credit_minor", LongType(), False),
    ("currency", StringType(), False),
    ("event_id", StringType(), True),
    ("match_id", StringType(), True),
    ("source_file_name", StringType(), True),
    ("source_record_ordinal", IntegerType(), True),
    ("chart_version", IntegerType(), False),
    ("run_id", StringType(), False),
    # added by the ledger (nullable, at the end; journals written before have them null):
    ("account_key", StringType(), True),           # chart-of-accounts key (drives the ERP account mapping)
    ("psp", StringType(), True),                   # the PSP of the posting ({psp} in the account)
    ("component", StringType(), True),             # gross | fee.<component>[.variance] | fx.* | payout | bank.*
    ("memo", StringType(), True),                  # what the line is about, for people and ERP files
    ("posting_date", DateType(), True),            # accounting date: business_date, or the next open date
    ("period_ref", StringType(), True),            # why posting_date differs (closed period) / what it restates
    ("source_event_ids", ArrayType(StringType()), True),   # the records the journal stands for (lineage); null
                                                   # for a payout journal: its payout's records posted that day
    ("restates_journal_id", StringType(), True),   # a restatement: the journal whose booked lines it corrects
)

FEE_CHECK_SCHEMA = _fields(                        # rate card vs charged fee, per record and fee component
    ("tenant_id", StringType(), False),
    ("run_date", DateType(), False),
    ("event_id", StringType(), False),
    ("psp", StringType(), True),
    ("event_type", StringType(), False),
    ("payment_method", StringType(), True),
    ("currency", StringType(), False),
    ("base_minor", LongType(), False),             # |gross| the percentage applies to
    ("component", StringType(), False),            # fee (total) | commission | markup | scheme_fees | ...
    ("charged_minor", LongType(), False),
    ("expected_minor", LongType(), True),          # null: no rate card rule covers the record
    ("variance_minor", LongType(), True),
    ("tolerance_minor", LongType(), False),
    ("rule_id", StringType(), True),
    ("status", StringType(), False),               # OK | UNEXPECTED_FEE | NO_RULE | CLEARED (by an adjustment)
    ("reason_detail", StringType(), True),
    ("rate_card_version", IntegerType(), False),
    ("first_seen_date", DateType(), False),
    ("file_name", StringType(), False),
    ("record_ordinal", IntegerType(), False),
    ("run_id", StringType(), False),
)


def conform(df: DataFrame, schema: StructType) -> DataFrame:
    """Select exactly the schema's columns, in order and with its types (the schema contract)."""
    cols: list[Column] = []
    for field in schema.fields:
        col = F.col(field.name) if field.name in df.columns else F.lit(None)
        cols.append(col.cast(field.dataType).alias(field.name))
    return df.select(*cols)
