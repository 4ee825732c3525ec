"""The three ERP files against their published layouts (header, field order, date and amount formats,
required fields), rendered by Spark as the export does, read back with an independent Python reader of
each layout and re-balanced; the per-record read-back check; and the refusals that keep an ERP from
importing something it would misread."""
import csv
import io
from datetime import date

import pytest

from jobs.ledger.erp import netsuite, quickbooks, sap
from jobs.ledger.erp.documents import ErpExportError, check_balanced, day_lines, first_problem, map_accounts, number
from jobs.ledger.erp.text import clean
from jobs.ledger.periods import Period, PeriodError, posting_date
from jobs.settings import ConfigurationError

D = date(2026, 11, 20)
MAP = {"psp_receivable": {"stripe": "1121", "*": "1120"}, "sales_clearing": "1210", "payment_fees": "6110",
       "fx_conversion": "1290", "fx_gain_loss": "7910", "bank": "1010"}


def line(journal, currency, entry, key, debit, credit, psp="stripe", memo='stripe payment ch_1 "ORD, 1"\nx'):
    return {"journal_id": journal, "business_date": D, "currency": currency, "entry_no": entry, "posting_date": D,
            "journal_type": "psp_payment", "account_key": key, "account": key, "psp": psp, "debit_minor": debit,
            "credit_minor": credit, "memo": memo, "component": "gross"}


ROWS = [  # an FX capture (EUR + JPY legs), a fee line, a large amount
    line("a" * 32, "EUR", 1, "psp_receivable", 123456789012, 0), line("a" * 32, "EUR", 2, "fx_conversion", 0, 123456789010),
    line("a" * 32, "EUR", 3, "fx_gain_loss", 0, 2), line("a" * 32, "EUR", 4, "payment_fees.interchange", 5, 0),
    line("a" * 32, "EUR", 5, "psp_receivable", 0, 5),
    line("a" * 32, "JPY", 1, "fx_conversion", 20050, 0), line("a" * 32, "JPY", 2, "sales_clearing", 0, 20050),
    line("b" * 32, "EUR", 1, "bank", 7, 0, psp=None), line("b" * 32, "EUR", 2, "psp_receivable", 0, 7, psp="adyen"),
]


SCHEMA = ("journal_id string, business_date date, currency string, entry_no int, posting_date date, journal_type "
          "string, account_key string, account string, psp string, debit_minor long, credit_minor long, memo string, "
          "component string")


def lines_of(spark, rows, first_seq=1, mapping=MAP):
    journal = spark.createDataFrame([tuple(r[c] for c in [f.split()[0] for f in SCHEMA.split(", ")]) for r in rows],
                                    SCHEMA)
    lines = day_lines(journal, D)
    check_balanced(lines, D)
    return map_accounts(number(lines, D, first_seq), mapping, "acme", "netsuite")


@pytest.fixture(scope="module")
def docs(spark_session):
    spark = spark_session
    return lines_of(spark, ROWS).cache()


def render(layout, lines, conf) -> bytes:
    """The file as the export writes it: header, then the records in document order, each read back."""
    problem = first_problem(lines, layout.problems(lines, conf))
    if problem:
        raise ErpExportError(problem)

    records = (layout.records(lines, conf).withColumn("ok", layout.check(conf))
               .orderBy("doc_seq", "part", "line_no").collect())
    assert all(r["ok"] for r in records)
    head = layout.header(conf)
    text = ([head] if head is not None else []) + [r["text"] for r in records]
    return (layout.LINE_SEPARATOR.join(text) + layout.LINE_SEPARATOR).encode()


def balanced(parsed):
    return all(sum(d for _, d, _ in p["lines"]) == sum(c for _, _, c in p["lines"]) for p in parsed)


def test_documents_are_per_journal_and_currency_with_mapped_accounts(spark, docs):
    got = docs.orderBy("doc_seq", "line_no").collect()
    assert sorted({(r["doc_no"], r["currency"]) for r in got}) == [
        ("PR261120-000001", "EUR"), ("PR261120-000002", "JPY"), ("PR261120-000003", "EUR")]
    assert [r["line_no"] for r in got if r["doc_seq"] == 1] == [1, 2, 3, 4, 5]
    assert [r["account_code"] for r in got if r["doc_seq"] == 1] == ["1121", "1290", "7910", "6110", "1121"]
    assert [r["account_code"] for r in got if r["doc_seq"] == 3] == ["1010", "1120"]            # "*" for adyen
    # Memos are one line of text for every ERP: the line break became a space.
    assert got[0]["line_memo"] == 'stripe payment ch_1 "ORD, 1" x gross' and got[0]["doc_memo"].startswith("stripe")
    with pytest.raises(ConfigurationError, match=r"erp.netsuite.accounts has no account for bank \(psp -\)"):
        lines_of(spark, ROWS, mapping={k: v for k, v in MAP.items() if k != "bank"})
    with pytest.raises(ErpExportError, match="not balanced: debit 123456789012 credit 0"):
        lines_of(spark, ROWS[:1])


def test_clean_text_is_one_trimmed_line_cut_to_length(spark):
    """Each run of control characters (tabs, line breaks, NUL, DEL) becomes one space, then blanks around are trimmed;
    other characters stay (a no-break space is not a blank here), and the cut comes last."""
    from pyspark.sql import functions as F

    values = [" \t a\r\n\x00b \x7f", "plain", "", None, "\u00a0x\u00a0", "a\t\tb\n", "  lead and trail  ", "\n\r\t"]
    df = spark.createDataFrame([(v,) for v in values], "v string")
    got = [(r["full"], r["cut"]) for r in df.select(clean(F.col("v")).alias("full"), clean(F.col("v"), 3).alias("cut")).collect()]
    expected = ["a b", "plain", "", "", "\u00a0x\u00a0", "a b", "lead and trail", ""]
    assert got == [(e, e[:3]) for e in expected]


def test_numbering_continues_and_grows_past_six_digits(spark):
    rows = [line("e" * 32, "EUR", 1, "bank", 10, 0), line("e" * 32, "EUR", 2, "sales_clearing", 0, 10)]
    assert lines_of(spark, rows, first_seq=999_999).first()["doc_no"] == "PR261120-999999"
    assert lines_of(spark, rows, first_seq=1_000_000).first()["doc_no"] == "PR261120-1000000"


def test_netsuite_csv_layout_and_round_trip(docs):
    data = render(netsuite, docs, {"subsidiary": "3"})
    rows = list(csv.reader(io.StringIO(data.decode())))
    assert data.count(b"\r\n") == len(rows) == 10
    assert rows[0] == ["External ID", "Date", "Subsidiary", "Currency", "Memo", "Account", "Debit", "Credit", "Line Memo"]
    first = dict(zip(rows[0], rows[1]))
    assert first["External ID"] == "PR261120-000001" and first["Date"] == "11/20/2026" and first["Subsidiary"] == "3"
    assert first["Debit"] == "1234567890.12" and first["Credit"] == "" and "\n" not in first["Line Memo"]
    assert first["Line Memo"] == 'stripe payment ch_1 "ORD, 1" x gross'              # quoted, quotes doubled
    jpy = [dict(zip(rows[0], r)) for r in rows[1:] if r[3] == "JPY"]
    assert [r["Debit"] or r["Credit"] for r in jpy] == ["20050", "20050"]        # no decimals for JPY
    assert all(r[0] for r in rows[1:]) and all(bool(r[6]) != bool(r[7]) for r in rows[1:])
    parsed = netsuite.parse(data, {})
    assert [p["doc_no"] for p in parsed] == ["PR261120-000001", "PR261120-000002", "PR261120-000003"]
    assert balanced(parsed) and parsed[0]["lines"][0] == ("1121", 123456789012, 0) and parsed[0]["date"] == D
    assert [x[1] or -x[2] for x in parsed[0]["lines"]] == [123456789012, -123456789010, -2, 5, -5]
    eu = render(netsuite, docs, {"date_format": "%d.%m.%Y"}).decode().splitlines()[1]
    assert eu.startswith("PR261120-000001,20.11.2026,")


def test_sap_idoc_flat_file_layout_and_round_trip(docs):
    data = render(sap, docs, {"company_code": "NL01", "receiver": "S4H"})
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
    assert [(p["doc_no"], p["currency"]) for p in parsed] == [
        ("PR261120-000001", "EUR"), ("PR261120-000002", "JPY"), ("PR261120-000003", "EUR")] and balanced(parsed)
    with pytest.raises(ErpExportError, match="company_code"):
        render(sap, docs, {})


def test_quickbooks_online_csv_layout_and_round_trip(docs):
    conf = {"multicurrency": True, "home_currency": "EUR"}
    data = render(quickbooks, docs, conf)
    rows = list(csv.reader(io.StringIO(data.decode())))
    assert rows[0] == ["Journal No.", "Journal Date", "Account Name", "Debits", "Credits", "Description", "Name", "Currency"]
    assert rows[1][:5] == ["PR261120-000001", "11/20/2026", "1121", "1234567890.12", ""] and rows[1][7] == "EUR"
    assert all(len(r[0]) <= 21 for r in rows[1:])
    parsed = quickbooks.parse(data, conf)
    assert len(parsed) == 3 and balanced(parsed) and parsed[1]["lines"] == [("1290", 20050, 0), ("1210", 0, 20050)]
    single = {"multicurrency": False, "home_currency": "EUR"}
    eur_only = docs.filter("currency = 'EUR'")
    assert render(quickbooks, eur_only, single).decode().splitlines()[0].endswith("Description,Name")
    with pytest.raises(ErpExportError, match=r"PR261120-000002 \(a+\) is in JPY: QuickBooks without multicurrency"):
        render(quickbooks, docs, single)


def test_layout_refusals(spark):
    bhd = lines_of(spark, [line("c" * 32, "BHD", 1, "bank", 1000, 0), line("c" * 32, "BHD", 2, "fx_conversion", 0, 1000)])
    with pytest.raises(ErpExportError, match="BHD has 3 decimals"):
        render(netsuite, bhd, {})
    huge = lines_of(spark, [line("d" * 32, "EUR", 1, "bank", 10**12, 0), line("d" * 32, "EUR", 2, "fx_conversion", 0, 10**12)])
    with pytest.raises(ErpExportError, match="amount 10000000000.00 EUR has more than 10 digits"):
        render(netsuite, huge, {})
    both = lines_of(spark, [line("f" * 32, "EUR", 1, "bank", 0, 0), line("f" * 32, "EUR", 2, "fx_conversion", 0, 0)])
    with pytest.raises(ErpExportError, match="line 1: exactly one of debit/credit"):
        render(netsuite, both, {})


def test_every_record_is_read_back_against_its_line(docs):
    """A record that would not import as the line it came from is caught: an account with a tab (the
    SAP file's separator, which the writer must replace) no longer reads back as the mapped account."""
    from pyspark.sql import functions as F

    from jobs.ledger.erp.text import csv_cells

    tabbed = docs.withColumn("account_code", F.when(F.col("doc_seq") == 3, F.lit("1010\tBank")).otherwise(F.col("account_code")))
    conf = {"company_code": "NL01"}
    bad = sap.records(tabbed, conf).filter(~sap.check(conf)).select("doc_no", "part").collect()
    assert {(r["doc_no"], r["part"]) for r in bad} == {("PR261120-000003", 2)}          # its two G/L items
    assert len(bad) == 2
    assert netsuite.records(tabbed, {}).filter(~netsuite.check({})).count() == 0              # a tab is fine in a CSV cell
    cells = docs.select(csv_cells(F.lit('a,"b ""c"", d",,e'), 4).alias("c")).first()["c"]
    assert tuple(cells) == ("a", 'b "c", d', None, "e")


def test_closed_periods_move_postings_to_the_next_open_date():
    nov, day = Period.parse("2026-11"), Period.parse("2026-12-01")
    assert (nov.start, nov.end) == (date(2026, 11, 1), date(2026, 11, 30))
    assert posting_date(D, []) == (D, None)
    moved, ref = posting_date(D, [nov, day])
    assert moved == date(2026, 12, 2) and "2026-11" in ref and "2026-12-01" in ref and str(D) in ref
    with pytest.raises(PeriodError):
        Period.parse("2026-13")


def test_amount_text_is_exact_for_every_exponent(spark):
    """Spark's amount text equals jobs.money.format_minor (integer arithmetic, no double on the way)
    and reads back to the same minor units, for large values and every ISO exponent."""
    from pyspark.sql import functions as F

    from jobs.formats.common import exponent_of
    from jobs.ledger.erp.text import amount, integer_digits, minor_of
    from jobs.money import format_minor

    values = [0, 5, -5, 99, 100, -1234, 123456789012, 2**53 + 1, -(2**62) + 7, 10**17 + 3]
    cases = [(v, c) for v in values for c in ("JPY", "EUR", "BHD", "CLF")]
    df = spark.createDataFrame(cases, "minor long, currency string").withColumn("exp", exponent_of(F.col("currency")))
    got = df.select("minor", "currency", amount(F.col("minor"), F.col("exp")).alias("text"),
                    minor_of(amount(F.col("minor"), F.col("exp")), F.col("exp")).alias("back"),
                    integer_digits(F.col("minor"), F.col("exp")).alias("digits")).collect()
    for r in got:
        want = format_minor(r["minor"], r["currency"])
        assert (r["text"], r["back"], r["digits"]) == (want, r["minor"], len(want.lstrip("-").split(".")[0])), r


@pytest.mark.postgres
def test_export_file_is_the_records_in_order_and_refuses_a_bad_record(spark, settings, docs, tmp_path):
    """The file the export joins from Spark's parts is byte for byte the records in document order
    (here 300 documents over 8 ranges); a record that does not read back fails it and writes nothing."""
    import hashlib
    import random

    from jobs.ledger.erp.outbox import _write_file

    rng = random.Random(7)
    journals = [f"{rng.getrandbits(128):032x}" for _ in range(300)]
    rows = [x for j in journals for x in (line(j, "EUR", 1, "bank", 100 + len(j), 0, psp=None),
                                         line(j, "EUR", 2, "psp_receivable", 0, 100 + len(j), psp="adyen"))]
    many = lines_of(spark, rows)
    conf = {"company_code": "NL01"}
    for layout, c in ((netsuite, {}), (sap, conf)):
        uri = str(tmp_path / f"out.{layout.FILE_SUFFIX}")
        sha, size = _write_file(spark, settings, "x", layout.records(many, c), layout.check(c), (1, 300),
                                layout.header(c), layout.LINE_SEPARATOR, layout.record_count(300, 600), uri)
        want = render(layout, many, c)
        assert open(uri, "rb").read() == want and (sha, size) == (hashlib.sha256(want).hexdigest(), len(want))
    with pytest.raises(ErpExportError, match="holds 600 records, 601 were rendered"):
        _write_file(spark, settings, "x", netsuite.records(many, {}), netsuite.check({}), (1, 300), None, "\r\n", 601,
                    str(tmp_path / "short.csv"))
    from pyspark.sql import functions as F

    tabbed = docs.withColumn("account_code", F.when(F.col("doc_seq") == 3, F.lit("1010\tBank")).otherwise(F.col("account_code")))
    bad = tmp_path / "bad.txt"
    with pytest.raises(ErpExportError, match=r"sap file does not read back as written: record 'E1BPACGL09..0000000001..1010 Bank"):
        _write_file(spark, settings, "sap", sap.records(tabbed, conf), sap.check(conf), (1, 3), None, "\n", 16, str(bad))
    assert not bad.exists() and not list((tmp_path / "lake" / "_scratch").rglob("part-*"))
