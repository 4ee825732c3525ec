"""ERP documents: the journals of a business date as the entries an ERP imports, as Spark DataFrames
(a day holds millions of journal lines; none of them passes through Python one by one).

An ERP journal entry has one currency (NetSuite's ``currency`` body field, SAP's document currency,
QuickBooks' journal currency), so each journal becomes one document per currency; ours are balanced
per currency, so every document balances on its own. Documents are numbered ``PR<yymmdd>-<nnnnnn>``
(15 characters: fits SAP's REF_DOC_NO (16) and QuickBooks' Journal No. (21); from the millionth
document of a day the number has 7 digits, 16 characters) in (journal id, currency) order,
deterministic for a given set of journals. Our account keys become ERP account codes through the
tenant's mapping (``erp.<erp>.accounts``: key -> code, or key -> {psp: code, "*": code}); a key
without a mapping is an error naming the tenant, ERP, key and PSP.

A document line (``day_lines``) carries: journal_id, currency, exp (its ISO 4217 exponent), line_no
(1.. in entry order), account_key, psp, account, debit_minor, credit_minor, line_memo, the
document's posting_date, journal_type and doc_memo (from its first line; both memos one line of text,
``text.clean``: each layout only cuts them to length), doc_seq and doc_no
(``number``: a supplement batch numbers its documents on from the batches before it);
``map_accounts`` adds account_code.
"""
from __future__ import annotations

from datetime import date

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from jobs.formats.common import exponent_of
from jobs.ledger.erp.text import clean
from jobs.settings import ConfigurationError
from jobs.spark import local_frame


class ErpExportError(RuntimeError):
    pass


DOC_KEY = ["journal_id", "currency"]


def day_lines(journal: DataFrame, business_date: date) -> DataFrame:
    """The journal lines of ``business_date`` as ERP document lines (see the module docstring),
    numbered from the day's first document."""
    doc = Window.partitionBy(*DOC_KEY).orderBy("entry_no")
    nonempty = lambda c: F.when(F.col(c) != "", F.col(c))                                   # noqa: E731
    lines = (journal.filter(F.col("business_date") == F.lit(business_date))
            .select(*DOC_KEY, exponent_of(F.col("currency")).alias("exp"), F.row_number().over(doc).alias("line_no"),
                    F.coalesce(F.col("account_key"), F.lit("")).alias("account_key"), "psp", "account",
                    "debit_minor", "credit_minor",
                    clean(F.concat_ws(" ", nonempty("memo"), nonempty("component"))).alias("line_memo"),
                    F.first(F.coalesce("posting_date", "business_date")).over(doc).alias("posting_date"),
                    F.first("journal_type").over(doc).alias("journal_type"),
                    clean(F.first(F.coalesce(nonempty("memo"), F.col("journal_type"))).over(doc)).alias("doc_memo")))
    return number(lines, business_date, 1)


def first_problem(df: DataFrame, problem: Column) -> str | None:
    """The first non-null ``problem`` message over ``df`` (one Spark pass), or None."""
    found = df.select(problem.alias("problem")).filter(F.col("problem").isNotNull()).limit(1).collect()
    return found[0]["problem"] if found else None


def check_balanced(lines: DataFrame, business_date: date) -> None:
    totals = lines.groupBy(*DOC_KEY).agg(F.sum("debit_minor").alias("debit"), F.sum("credit_minor").alias("credit"))
    message = F.when(F.col("debit") != F.col("credit"), F.format_string(
        f"journal %s (%s) of {business_date} is not balanced: debit %d credit %d", "journal_id", "currency", "debit",
        "credit"))
    problem = first_problem(totals, message)
    if problem:
        raise ErpExportError(problem)


def number(lines: DataFrame, business_date: date, first_seq: int) -> DataFrame:
    """(Re)numbers the documents of ``lines``: doc_seq ``first_seq``.. in (journal_id, currency) order,
    and doc_no."""
    lines = lines.drop("doc_seq", "doc_no")
    docs = (lines.filter(F.col("line_no") == 1).select(*DOC_KEY)
            .withColumn("doc_seq", F.row_number().over(Window.orderBy(*DOC_KEY)) + F.lit(first_seq - 1)))
    digits = F.col("doc_seq").cast("string")
    docs = docs.withColumn("doc_no", F.concat(F.lit(f"PR{business_date:%y%m%d}-"),
                                              F.when(F.length(digits) < 6, F.lpad(digits, 6, "0")).otherwise(digits)))
    return lines.join(docs, DOC_KEY)


def account_for(mapping: dict, account_key: str, psp: str | None) -> str | None:
    """The ERP account of one of our account keys (``payment_fees.interchange`` falls back to
    ``payment_fees``; a per-PSP entry falls back to ``*``); None when the mapping has none."""
    entry = mapping.get(account_key, mapping.get(account_key.split(".", 1)[0]))
    if isinstance(entry, dict):
        entry = entry.get(psp or "*", entry.get("*"))
    return None if entry is None or not str(entry).strip() else str(entry)


def map_accounts(lines: DataFrame, mapping: dict, tenant: str, erp: str) -> DataFrame:
    """Adds account_code; every (account key, PSP) of the lines must have one."""
    pairs = [(r["account_key"], r["psp"]) for r in lines.select("account_key", "psp").distinct().collect()]
    codes = [(key, psp, account_for(mapping, key, psp)) for key, psp in pairs]
    missing = sorted(f"{key} (psp {psp or '-'})" for key, psp, code in codes if code is None)
    if missing:
        raise ConfigurationError(f"tenant {tenant}: erp.{erp}.accounts has no account for {', '.join(missing)}")
    table = local_frame(lines.sparkSession, codes, "m_key string, m_psp string, account_code string")
    joined = lines.join(F.broadcast(table), (F.col("account_key") == F.col("m_key")) &
                        F.col("psp").eqNullSafe(F.col("m_psp")))
    return joined.drop("m_key", "m_psp")
