"""Balanced double-entry postings for the canonical events of one business date.

Each PSP event posts one journal (balanced per currency by construction: every component is a
debit and a credit of the same amount) according to ``POSTING_RULES``; a component's sign decides
which side each account is on. Bank entries post against the PSP receivable when the run matched them
to a payout, otherwise against suspense; a bank entry matched on a later day moves out of suspense
with a reclassification journal on that day. Journal ids are derived from the event and the posting
kind, so a rerun writes the same journals (the partition of the date is replaced).
"""
from __future__ import annotations

from datetime import date

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from jobs import lake
from jobs.match.rules import BOOK_PSP, PAYOUT_BANK
from jobs.settings import Settings
from jobs.tenants import TenantConfig

RECEIVABLE, SALES, REFUNDS, FEES = "psp_receivable", "sales_clearing", "refunds", "payment_fees"
LOSSES, DISPUTE_FEES, SUSPENSE, RESERVE, BANK = "chargeback_losses", "dispute_fees", "suspense", "psp_reserve", "bank"

# event type -> components: (amount column, account debited when the amount is positive, account credited)
POSTING_RULES: dict[str, list[tuple[str, str, str]]] = {
    "payment": [("amount_minor", RECEIVABLE, SALES), ("fee_minor", FEES, RECEIVABLE)],
    "capture": [("amount_minor", RECEIVABLE, SALES), ("fee_minor", FEES, RECEIVABLE)],
    "refund": [("amount_minor", RECEIVABLE, REFUNDS), ("fee_minor", FEES, RECEIVABLE)],
    "chargeback": [("amount_minor", RECEIVABLE, LOSSES), ("fee_minor", DISPUTE_FEES, RECEIVABLE)],
    "second_chargeback": [("amount_minor", RECEIVABLE, LOSSES), ("fee_minor", DISPUTE_FEES, RECEIVABLE)],
    "chargeback_reversal": [("amount_minor", RECEIVABLE, LOSSES), ("fee_minor", DISPUTE_FEES, RECEIVABLE)],
    "dispute_fee": [("amount_minor", RECEIVABLE, DISPUTE_FEES)],
    "fee": [("amount_minor", RECEIVABLE, FEES), ("fee_minor", FEES, RECEIVABLE)],
    "adjustment": [("amount_minor", RECEIVABLE, SUSPENSE), ("fee_minor", FEES, RECEIVABLE)],
    "transfer": [("amount_minor", RECEIVABLE, SUSPENSE)],
    "reserve_hold": [("amount_minor", RECEIVABLE, RESERVE)],
    "reserve_release": [("amount_minor", RECEIVABLE, RESERVE)],
    "payout": [],          # the payout row restates the batch total; the bank entry posts the movement
}


def chart(cfg: TenantConfig) -> dict[str, str]:
    return dict(cfg.ledger["accounts"])


def _account(accounts: dict[str, str], key: str, psp: Column) -> Column:
    template = accounts[key]
    if "{psp}" in template:
        before, after = template.split("{psp}", 1)
        return F.concat(F.lit(before), F.coalesce(psp, F.lit("unknown")), F.lit(after))
    return F.lit(template)


def _components(events: DataFrame, accounts: dict[str, str]) -> DataFrame:
    """One row per (event, component): amount, debit account, credit account."""
    parts = []
    for event_type, comps in POSTING_RULES.items():
        for idx, (column, debit, credit) in enumerate(comps):
            parts.append(events.filter(F.col("event_type") == event_type).select(
                "*", F.lit(f"{event_type}.{column}").alias("component"), F.lit(idx).alias("component_no"),
                F.col(column).alias("x"), _account(accounts, debit, F.col("psp")).alias("dr"),
                _account(accounts, credit, F.col("psp")).alias("cr"), F.lit(f"psp_{event_type}").alias("journal_type")))
    out = parts[0]
    for p in parts[1:]:
        out = out.unionByName(p)
    return out


def _lines(components: DataFrame) -> DataFrame:
    """Two journal lines per non-zero component, balanced, numbered within the journal."""
    pos = F.col("x") > 0
    line = lambda account, is_debit: F.struct(  # noqa: E731
        account.alias("account"),
        F.when(is_debit, F.abs("x")).otherwise(F.lit(0)).cast("long").alias("debit_minor"),
        F.when(is_debit, F.lit(0)).otherwise(F.abs("x")).cast("long").alias("credit_minor"))
    exploded = components.filter(F.col("x") != 0).select(
        "*", F.posexplode(F.array(line(F.when(pos, F.col("dr")).otherwise(F.col("cr")), F.lit(True)),
                                  line(F.when(pos, F.col("cr")).otherwise(F.col("dr")), F.lit(False)))).alias("side", "l"))
    return exploded.select(
        "*", F.col("l.account").alias("account"), F.col("l.debit_minor").alias("debit_minor"),
        F.col("l.credit_minor").alias("credit_minor"),
        (F.col("component_no") * 2 + F.col("side") + 1).cast("int").alias("entry_no"))


def post_day(spark: SparkSession, settings: Settings, cfg: TenantConfig, business_date: date, run_id: str) -> None:
    tenant = cfg.tenant_id
    accounts = chart(cfg)
    events = lake.read(spark, settings, "events", tenant)
    from jobs.match.manual import active_matches

    matches = active_matches(spark, settings, tenant).filter(F.col("run_date") <= F.lit(business_date))
    day_events = events.filter(F.col("ingest_date") == F.lit(business_date))

    book_psp_match = (matches.filter(F.col("relation") == BOOK_PSP).groupBy("event_id")
                      .agg(F.min("match_id").alias("match_id")))
    psp = day_events.filter(F.col("source_kind") == "psp").join(book_psp_match, "event_id", "left")
    psp_lines = _lines(_components(psp, accounts)).withColumn(
        "journal_id", F.substring(F.sha2(F.concat_ws(":", "event_id", F.lit("post")), 256), 1, 32))

    bank_journals = _bank_components(events, matches, business_date, accounts)
    bank_lines = _lines(bank_journals)
    cols = ["journal_id", "entry_no", "journal_type", "account", "debit_minor", "credit_minor", "currency",
            "event_id", "match_id", F.col("file_name").alias("source_file_name"),
            F.col("record_ordinal").alias("source_record_ordinal")]
    journal = (psp_lines.select(*cols).unionByName(bank_lines.select(*cols))
               .withColumn("tenant_id", F.lit(tenant)).withColumn("business_date", F.lit(business_date))
               .withColumn("chart_version", F.lit(int(cfg.ledger.get("chart_version", 1))))
               .withColumn("run_id", F.lit(run_id)))
    lake.replace_partition(spark, settings, "journal", journal, tenant, business_date)


def _bank_components(events: DataFrame, matches: DataFrame, business_date: date, accounts: dict[str, str]) -> DataFrame:
    """Bank entries: ingested today -> against the payout's PSP receivable if matched by today's run,
    else suspense; matched today but ingested earlier -> out of suspense into the PSP receivable."""
    pb = matches.filter(F.col("relation") == PAYOUT_BANK)
    bank_match = pb.filter(F.col("role") == "bank").select("event_id", "match_id", "run_date")
    payout_psp = (pb.filter(F.col("role") == "psp").join(events.select("event_id", "psp"), "event_id")
                  .groupBy("match_id").agg(F.first("psp", ignorenulls=True).alias("payout_psp")))
    bank = (events.filter(F.col("source_kind") == "bank").join(bank_match, "event_id", "left")
            .join(payout_psp, "match_id", "left"))
    today = F.lit(business_date)
    ingested_today = F.col("ingest_date") == today
    matched_by_today = F.col("run_date").isNotNull() & (F.col("run_date") <= today)
    matched_today = F.col("run_date") == today
    receivable = _account(accounts, RECEIVABLE, F.col("payout_psp"))
    first_posting = bank.filter(ingested_today).select(
        "*", F.lit("bank.entry").alias("component"), F.lit(0).alias("component_no"), F.col("amount_minor").alias("x"),
        F.lit(accounts[BANK]).alias("dr"),
        F.when(matched_by_today, receivable).otherwise(F.lit(accounts[SUSPENSE])).alias("cr"),
        F.when(matched_by_today, F.lit("bank_payout")).otherwise(F.lit("bank_unmatched")).alias("journal_type"),
        F.concat_ws(":", "event_id", F.lit("bank")).alias("_jkey"))
    reclass = bank.filter(~ingested_today & matched_today & (F.col("ingest_date") < today)).select(
        "*", F.lit("bank.reclass").alias("component"), F.lit(0).alias("component_no"), F.col("amount_minor").alias("x"),
        F.lit(accounts[SUSPENSE]).alias("dr"), receivable.alias("cr"), F.lit("suspense_reclass").alias("journal_type"),
        F.concat_ws(":", "event_id", F.lit("reclass")).alias("_jkey"))
    both = first_posting.unionByName(reclass)
    return both.withColumn("journal_id", F.substring(F.sha2(F.col("_jkey"), 256), 1, 32))
