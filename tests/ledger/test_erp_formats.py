"""The three ERP files against their published layouts (header, field order, date and amount formats,
required fields), read back with an independent reader of each layout and re-balanced; and the refusals
that keep an ERP from importing something it would misread."""
import csv
import io
from datetime import date

import pytest

from jobs.ledger.erp import netsuite, quickbooks, sap
from jobs.ledger.erp.documents import ErpExportError, build, map_accounts, number
from jobs.ledger.periods import Period, PeriodError, posting_date
from jobs.settings import ConfigurationError

D = date(2026, 11, 20)
MAP = {"psp_receivable": {"stripe": "1121", "*": "1120"}, "sales_clearing": "1210", "payment_fees": "6110",
       "fx_conversion": "1290", "fx_gain_loss": "7910", "bank": "1010"}


def line(journal, currency, entry, key, debit, credit, psp="stripe", memo='stripe payment ch_1 "ORD, 1"\nx'):
    return {"journal_id": journal, "currency": currency, "entry_no": entry, "business_date": D, "posting_date": D,
            "journal_type": "psp_payment", "account_key": key, "account": key, "psp": psp, "debit_minor": debit,
            "credit_minor": credit, "memo": memo, "component": "gross"}


ROWS = [  # an FX capture (EUR + JPY legs), a fee line, a large amount
    line("a" * 32, "EUR", 1, "psp_receivable", 123456789012, 0), line("a" * 32, "EUR", 2, "fx_conversion", 0, 123456789010),
    line("a" * 32, "EUR", 3, "fx_gain_loss", 0, 2), line("a" * 32, "EUR", 4, "payment_fees.interchange", 5, 0),
    line("a" * 32, "EUR", 5, "psp_receivable", 0, 5),
    line("a" * 32, "JPY", 1, "fx_conversion", 20050, 0), line("a" * 32, "JPY", 2, "sales_clearing", 0, 20050),
    line("b" * 32, "EUR", 1, "bank", 7, 0, psp=None), line("b" * 32, "EUR", 2, "psp_receivable", 0, 7, psp="adyen"),
]


@pytest.fixture
def docs():
    return map_accounts(number(build(ROWS, D), D, 1), MAP, "acme", "netsuite")


def balanced(parsed):
    return all(sum(d for _, d, _ in p["lines"]) == sum(c for _, _, c in p["lines"]) for p in parsed)


def test_documents_are_per_journal_and_currency_with_mapped_accounts(docs):
    assert [(d.doc_no, d.currency, len(d.lines)) for d in docs] == [
        ("PR261120-000001", "EUR", 5), ("PR261120-000002", "JPY", 2), ("PR261120-000003", "EUR", 2)]
    assert [x.account_code for x in docs[0].lines] == ["1121", "1290", "7910", "6110", "1121"]   # .interchange -> base
    assert docs[2].lines[1].account_code == "1120"                                             # "*" for adyen
    with pytest.raises(ConfigurationError, match=r"erp.sap.accounts has no account for bank \(psp -\)"):
        map_accounts(build(ROWS, D), {k: v for k, v in MAP.items() if k != "bank"}, "acme", "sap")
    with pytest.raises(ErpExportError, match="not balanced"):
        build(ROWS[:1], D)


def test_netsuite_csv_layout_and_round_trip(docs):
    data = netsuite.write(docs, {"subsidiary": "3"})
    rows = list(csv.reader(io.StringIO(data.decode())))
    assert rows[0] == ["External ID", "Date", "Subsidiary", "Currency", "Memo", "Account", "Debit", "Credit", "Line Memo"]
    first = dict(zip(rows[0], rows[1]))
    assert first["External ID"] == "PR261120-000001" and first["Date"] == "11/20/2026" and first["Subsidiary"] == "3"
    assert first["Debit"] == "1234567890.12" and first["Credit"] == "" and "\n" not in first["Line Memo"]
    jpy = [dict(zip(rows[0], r)) for r in rows[1:] if r[3] == "JPY"]
    assert [r["Debit"] or r["Credit"] for r in jpy] == ["20050", "20050"]        # no decimals for JPY
    assert all(r[0] for r in rows[1:]) and all(bool(r[6]) != bool(r[7]) for r in rows[1:])
    parsed = netsuite.parse(data, {})
    assert [p["doc_no"] for p in parsed] == [d.doc_no for d in docs] and balanced(parsed)
    assert parsed[0]["lines"][0] == ("1121", 123456789012, 0) and parsed[0]["date"] == D
    eu = netsuite.write(docs, {"date_format": "%d.%m.%Y"}).decode().splitlines()[1]
    assert eu.startswith("PR261120-000001,20.11.2026,")


def test_sap_idoc_flat_file_layout_and_round_trip(docs):
    data = sap.write(docs, {"company_code": "NL01", "receiver": "S4H"})
    records = [r.split("\t") for r in data.decode().splitlines()]
    first = records[:6]
    assert first[0] == ["EDI_DC40", "PR261120-000001", "ACC_DOCUMENT05", "ACC_DOCUMENT", "PSPRECON", "S4H"]
    assert first[1][0] == "E1BPACHE09" and first[1][3:] == ["NL01", "20261120", "20261120", "SA", "PR261120-000001"]
    assert first[2] == ["E1BPACGL09", "0000000001", "0000001121", first[2][3], "a" * 18]
    assert len(first[2][3]) <= 50 and len(first[1][2]) <= 25
    amounts = [r[4] for r in records if r[0] == "E1BPACCR09"]
    assert amounts[:5] == ["1234567890.12", "-1234567890.10", "-0.02", "0.05", "-0.05"]
    assert [r[0] for r in records[:12]] == (["EDI_DC40", "E1BPACHE09"] + ["E1BPACGL09"] * 5 + ["E1BPACCR09"] * 5)
    assert all(len(r) == len(sap.SEGMENTS[r[0]]) + 1 for r in records)
    parsed = sap.parse(data, {})
    assert [(p["doc_no"], p["currency"]) for p in parsed] == [(d.doc_no, d.currency) for d in docs] and balanced(parsed)
    with pytest.raises(ErpExportError, match="company_code"):
        sap.write(docs, {})


def test_quickbooks_online_csv_layout_and_round_trip(docs):
    conf = {"multicurrency": True, "home_currency": "EUR"}
    data = quickbooks.write(docs, conf)
    rows = list(csv.reader(io.StringIO(data.decode())))
    assert rows[0] == ["Journal No.", "Journal Date", "Account Name", "Debits", "Credits", "Description", "Name", "Currency"]
    assert rows[1][:5] == ["PR261120-000001", "11/20/2026", "1121", "1234567890.12", ""] and rows[1][7] == "EUR"
    assert all(len(r[0]) <= 21 for r in rows[1:])
    parsed = quickbooks.parse(data, conf)
    assert len(parsed) == 3 and balanced(parsed) and parsed[1]["lines"] == [("1290", 20050, 0), ("1210", 0, 20050)]
    single = {"multicurrency": False, "home_currency": "EUR"}
    assert quickbooks.write([docs[0], docs[2]], single).decode().splitlines()[0].endswith("Description,Name")
    with pytest.raises(ErpExportError, match="in JPY: QuickBooks without multicurrency"):
        quickbooks.write(docs, single)


def test_layout_refusals(docs):
    bhd = map_accounts(number(build([line("c" * 32, "BHD", 1, "bank", 1000, 0), line("c" * 32, "BHD", 2, "fx_conversion",
                                                                                 0, 1000)], D), D, 7), MAP, "t", "netsuite")
    with pytest.raises(ErpExportError, match="BHD has 3 decimals"):
        netsuite.write(bhd, {})
    huge = map_accounts(number(build([line("d" * 32, "EUR", 1, "bank", 10**12, 0),
                                      line("d" * 32, "EUR", 2, "fx_conversion", 0, 10**12)], D), D, 1), MAP, "t", "n")
    with pytest.raises(ErpExportError, match="more than 10 digits"):
        netsuite.write(huge, {})


def test_closed_periods_move_postings_to_the_next_open_date():
    nov, day = Period.parse("2026-11"), Period.parse("2026-12-01")
    assert (nov.start, nov.end) == (date(2026, 11, 1), date(2026, 11, 30))
    assert posting_date(D, []) == (D, None)
    moved, ref = posting_date(D, [nov, day])
    assert moved == date(2026, 12, 2) and "2026-11" in ref and "2026-12-01" in ref and str(D) in ref
    with pytest.raises(PeriodError):
        Period.parse("2026-13")
