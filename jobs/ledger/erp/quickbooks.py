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

from jobs.ledger.erp.documents import ErpDocument, ErpExportError
from jobs.ledger.erp.text import amount, clean, parse_amount

LAYOUT = "quickbooks_online.journal_entries_csv.v1"
BASE_HEADER = ["Journal No.", "Journal Date", "Account Name", "Debits", "Credits", "Description", "Name"]
FILE_SUFFIX = "csv"
DATE_FORMAT = "%m/%d/%Y"


def header(conf: dict) -> list[str]:
    return BASE_HEADER + (["Currency"] if conf.get("multicurrency") else [])


def write(docs: list[ErpDocument], conf: dict) -> bytes:
    home = conf.get("home_currency")
    multi = bool(conf.get("multicurrency"))
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(header(conf))
    for d in docs:
        if not multi and d.currency != home:
            raise ErpExportError(f"document {d.doc_no} ({d.journal_id}) is in {d.currency}: QuickBooks without "
                                 f"multicurrency takes only {home or 'erp.quickbooks.home_currency (unset)'}")
        for x in d.lines:
            row = [d.doc_no, d.posting_date.strftime(DATE_FORMAT), x.account_code,
                   amount(x.debit_minor, d.currency) if x.debit_minor else "",
                   amount(x.credit_minor, d.currency) if x.credit_minor else "", clean(x.memo, 4000), ""]
            writer.writerow(row + ([d.currency] if multi else []))
    return out.getvalue().encode("utf-8")


def parse(data: bytes, conf: dict) -> list[dict]:
    reader = csv.reader(io.StringIO(data.decode("utf-8")))
    columns = next(reader)
    if columns != header(conf):
        raise ErpExportError(f"QuickBooks file header {columns} is not {header(conf)}")
    entries: dict[str, dict] = {}
    for row in reader:
        rec = dict(zip(columns, row))
        currency = rec.get("Currency") or conf.get("home_currency")
        entry = entries.setdefault(rec["Journal No."], {
            "doc_no": rec["Journal No."], "currency": currency,
            "date": datetime.strptime(rec["Journal Date"], DATE_FORMAT).date(), "lines": []})
        entry["lines"].append((rec["Account Name"], parse_amount(rec["Debits"], currency),
                               parse_amount(rec["Credits"], currency)))
    return list(entries.values())
