"""NetSuite: journal entries as a CSV file for the CSV Import Assistant (Transactions > Journal Entry).

Layout (one CSV row per journal line; the lines of one entry share the External ID, header values
repeated on every line; UTF-8, comma-separated, RFC 4180 quoting, header row first):

    External ID, Date, Subsidiary, Currency, Memo, Account, Debit, Credit, Line Memo

* External ID  our document number (``PR<yymmdd>-<nnnnnn>``), unique per entry; NetSuite uses it to
               recognise an entry imported again.
* Date         the posting date in the importing user's date format preference (``erp.netsuite.date_format``,
               default MM/DD/YYYY).
* Subsidiary   ``erp.netsuite.subsidiary`` (required in OneWorld accounts; may be empty otherwise).
* Currency     ISO code; NetSuite's Currency body field (one currency per journal entry).
* Memo         header memo; Line Memo: the line's memo (the line-level Memo field).
* Account      the mapped account, "number name" or number only when the "Use Account Numbers"
               preference is on.
* Debit/Credit one of the two filled per line: a number with at most 10 digits before and 2 after the
               decimal point, no thousands separator; the other empty.

Source: Oracle NetSuite Help, "Journal Entry and Intercompany Journal Entry Header Fields Table"
(section_1534492479) and "Journal Entry and Intercompany Journal Entry Line-Level Fields Table"
(section_1534492737: Account required; Debit and Credit field size 13, max 10 digits before and 2
after the decimal; each entry at least two lines with balancing debits and credits). The column
headers are NetSuite's field labels, so the assistant maps them one to one (save the mapping once).
"""
from __future__ import annotations

import csv
import io
from datetime import datetime

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from jobs.ledger.erp.documents import ErpExportError
from jobs.ledger.erp.text import (
    amount,
    amount_cell,
    csv_cells,
    csv_record,
    cut,
    integer_digits,
    minor_of,
    parse_amount,
    rendered,
    spark_date_pattern,
)

LAYOUT = "netsuite.journal_entry_csv.v1"
HEADER = ["External ID", "Date", "Subsidiary", "Currency", "Memo", "Account", "Debit", "Credit", "Line Memo"]
MAX_DECIMALS, MAX_INTEGER_DIGITS = 2, 10
FILE_SUFFIX = "csv"
LINE_SEPARATOR = "\r\n"


def header(conf: dict) -> str:
    return ",".join(HEADER)


def problems(lines: DataFrame, conf: dict) -> Column:
    """Why a document line cannot go into this layout (null when it can)."""
    exp, debit, credit = F.col("exp"), F.col("debit_minor"), F.col("credit_minor")
    digits = F.greatest(integer_digits(debit, exp), integer_digits(credit, exp))
    return (F.when(exp > MAX_DECIMALS, F.format_string(
                f"%s has %d decimals; this ERP layout allows at most {MAX_DECIMALS}", "currency", "exp"))
            .when(digits > MAX_INTEGER_DIGITS, F.format_string(
                f"amount %s %s has more than {MAX_INTEGER_DIGITS} digits before the decimal",
                amount(F.greatest(debit, credit), exp), "currency"))
            .when((debit != 0) == (credit != 0), F.format_string(
                "document %s line %d: exactly one of debit/credit must be set", "doc_no", "line_no")))


def record_count(documents: int, lines: int) -> int:
    """Records (lines of text after the header) of a file with these documents and lines."""
    return lines


def records(lines: DataFrame, conf: dict) -> DataFrame:
    """One CSV record per document line."""
    pattern = spark_date_pattern(conf.get("date_format", "%m/%d/%Y"))
    text = csv_record([F.col("doc_no"), F.date_format("posting_date", pattern), F.lit(conf.get("subsidiary", "")),
                       F.col("currency"), cut(F.col("doc_memo"), 999), F.col("account_code"), amount_cell("debit_minor"),
                       amount_cell("credit_minor"), cut(F.col("line_memo"), 999)])
    return rendered(lines, text)


def check(conf: dict) -> Column:
    """A record read back with Spark's CSV parser (an independent reader) gives its line's values."""
    pattern = spark_date_pattern(conf.get("date_format", "%m/%d/%Y"))
    back, exp = csv_cells(F.col("text"), len(HEADER)), F.col("exp")
    ok = ((back["c0"] == F.col("doc_no")) & (F.to_date(back["c1"], pattern) == F.col("posting_date"))
          & (back["c3"] == F.col("currency")) & (back["c5"] == F.col("account_code"))
          & (minor_of(back["c6"], exp) == F.col("debit_minor")) & (minor_of(back["c7"], exp) == F.col("credit_minor")))
    return ok


def parse(data: bytes, conf: dict) -> list[dict]:
    """The entries of a file: [{doc_no, date, currency, lines: [(account, debit_minor, credit_minor)]}]."""
    date_format = conf.get("date_format", "%m/%d/%Y")
    reader = csv.reader(io.StringIO(data.decode("utf-8")))
    header_row = next(reader)
    if header_row != HEADER:
        raise ErpExportError(f"NetSuite file header {header_row} is not {HEADER}")
    entries: dict[str, dict] = {}
    for row in reader:
        rec = dict(zip(HEADER, row))
        entry = entries.setdefault(rec["External ID"], {"doc_no": rec["External ID"], "currency": rec["Currency"],
                                                        "date": datetime.strptime(rec["Date"], date_format).date(),
                                                        "lines": []})
        entry["lines"].append((rec["Account"], parse_amount(rec["Debit"], rec["Currency"]),
                               parse_amount(rec["Credit"], rec["Currency"])))
    return list(entries.values())
