"""QuickBooks Online: the journal entry import CSV (Settings > Import data > Journal Entries).

We chose QuickBooks Online's journal entry CSV over QuickBooks Desktop's IIF (!TRNS/!SPL/!ENDTRNS):
IIF carries no currency, so it cannot hold the multi-currency journals PSP settlement produces.

Layout (one CSV row per journal line; rows with the same Journal No. form one entry; UTF-8,
comma-separated, header row first):

    Journal No., Journal Date, Account Name, Debits, Credits, Description, Name[, Currency]

* Journal No.   our document number (15 characters; QuickBooks allows 21);
* Journal Date  MM/DD/YYYY;
* Account Name  the mapped account name exactly as in the chart of accounts ("Parent:Sub" for
                sub-accounts; QuickBooks wants account numbers turned off for the import);
* Debits / Credits  one filled per line, a plain decimal, the other empty; each entry balances;
* Description   the line's memo; Name: empty (PSP postings have no customer / vendor);
* Currency      only when ``erp.quickbooks.multicurrency`` is true (a company with Multicurrency on);
                otherwise every journal must be in ``erp.quickbooks.home_currency``.

Source: Intuit QuickBooks Online help "Import journal entries" (the file must include Journal No.,
Journal Date, Account Name, Description, Debits and Credits; Name for A/R and A/P lines). The
Currency column follows the import's field for multicurrency companies [not in Intuit's article;
confirm against the sample file of the company before switching multicurrency on].
"""
from __future__ import annotations

import csv
import io
from datetime import datetime

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from jobs.ledger.erp.documents import ErpExportError
from jobs.ledger.erp.text import amount_cell, csv_cells, csv_record, cut, minor_of, parse_amount, rendered

LAYOUT = "quickbooks_online.journal_entries_csv.v1"
BASE_HEADER = ["Journal No.", "Journal Date", "Account Name", "Debits", "Credits", "Description", "Name"]
FILE_SUFFIX = "csv"
LINE_SEPARATOR = "\r\n"
DATE_FORMAT, SPARK_DATE_FORMAT = "%m/%d/%Y", "MM/dd/yyyy"


def columns(conf: dict) -> list[str]:
    return BASE_HEADER + (["Currency"] if conf.get("multicurrency") else [])


def header(conf: dict) -> str:
    return ",".join(columns(conf))


def problems(lines: DataFrame, conf: dict) -> Column:
    """Why a document line cannot go into this layout (null when it can)."""
    if conf.get("multicurrency"):
        return F.lit(None).cast("string")
    home = conf.get("home_currency")
    return F.when(F.col("currency") != F.lit(home or ""), F.format_string(
        f"document %s (%s) is in %s: QuickBooks without multicurrency takes only "
        f"{home or 'erp.quickbooks.home_currency (unset)'}", "doc_no", "journal_id", "currency"))


def record_count(documents: int, lines: int) -> int:
    """Records (lines of text after the header) of a file with these documents and lines."""
    return lines


def records(lines: DataFrame, conf: dict) -> DataFrame:
    """One CSV record per document line."""
    values = [F.col("doc_no"), F.date_format("posting_date", SPARK_DATE_FORMAT), F.col("account_code"),
              amount_cell("debit_minor"), amount_cell("credit_minor"), cut(F.col("line_memo"), 4000), F.lit("")]
    return rendered(lines, csv_record(values + ([F.col("currency")] if conf.get("multicurrency") else [])))


def check(conf: dict) -> Column:
    """A record read back with Spark's CSV parser (an independent reader) gives its line's values."""
    back, exp = csv_cells(F.col("text"), len(columns(conf))), F.col("exp")
    ok = ((back["c0"] == F.col("doc_no")) & (F.to_date(back["c1"], SPARK_DATE_FORMAT) == F.col("posting_date"))
          & (back["c2"] == F.col("account_code"))
          & (minor_of(back["c3"], exp) == F.col("debit_minor"))
          & (minor_of(back["c4"], exp) == F.col("credit_minor")))
    if conf.get("multicurrency"):
        ok = ok & (back["c7"] == F.col("currency"))
    return ok


def parse(data: bytes, conf: dict) -> list[dict]:
    reader = csv.reader(io.StringIO(data.decode("utf-8")))
    names = next(reader)
    if names != columns(conf):
        raise ErpExportError(f"QuickBooks file header {names} is not {columns(conf)}")
    entries: dict[str, dict] = {}
    for row in reader:
        rec = dict(zip(names, row))
        currency = rec.get("Currency") or conf.get("home_currency")
        entry = entries.setdefault(rec["Journal No."], {
            "doc_no": rec["Journal No."], "currency": currency,
            "date": datetime.strptime(rec["Journal Date"], DATE_FORMAT).date(), "lines": []})
        entry["lines"].append((rec["Account Name"], parse_amount(rec["Debits"], currency),
                               parse_amount(rec["Credits"], currency)))
    return list(entries.values())
