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

from jobs.ledger.erp.documents import ErpDocument, ErpExportError
from jobs.ledger.erp.text import amount, clean, parse_amount

LAYOUT = "netsuite.journal_entry_csv.v1"
HEADER = ["External ID", "Date", "Subsidiary", "Currency", "Memo", "Account", "Debit", "Credit", "Line Memo"]
MAX_DECIMALS, MAX_INTEGER_DIGITS = 2, 10
FILE_SUFFIX = "csv"


def write(docs: list[ErpDocument], conf: dict) -> bytes:
    date_format = conf.get("date_format", "%m/%d/%Y")
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(HEADER)
    for d in docs:
        for x in d.lines:
            cells = [amount(v, d.currency, MAX_DECIMALS, MAX_INTEGER_DIGITS) if v else ""
                     for v in (x.debit_minor, x.credit_minor)]
            if bool(cells[0]) == bool(cells[1]):
                raise ErpExportError(f"document {d.doc_no} line {x.line_no}: exactly one of debit/credit must be set")
            writer.writerow([d.doc_no, d.posting_date.strftime(date_format), conf.get("subsidiary", ""), d.currency,
                             clean(d.memo, 999), x.account_code, *cells, clean(x.memo, 999)])
    return out.getvalue().encode("utf-8")


def parse(data: bytes, conf: dict) -> list[dict]:
    """The entries of a file: [{doc_no, date, currency, lines: [(account, debit_minor, credit_minor)]}]."""
    date_format = conf.get("date_format", "%m/%d/%Y")
    reader = csv.reader(io.StringIO(data.decode("utf-8")))
    header = next(reader)
    if header != HEADER:
        raise ErpExportError(f"NetSuite file header {header} is not {HEADER}")
    entries: dict[str, dict] = {}
    for row in reader:
        rec = dict(zip(HEADER, row))
        entry = entries.setdefault(rec["External ID"], {"doc_no": rec["External ID"], "currency": rec["Currency"],
                                                        "date": datetime.strptime(rec["Date"], date_format).date(),
                                                        "lines": []})
        entry["lines"].append((rec["Account"], parse_amount(rec["Debit"], rec["Currency"]),
                               parse_amount(rec["Credit"], rec["Currency"])))
    return list(entries.values())
