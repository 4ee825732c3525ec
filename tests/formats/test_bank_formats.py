"""Bank statements: camt.053 (v02/v04/v08), MT940 (bank variants) and BAI2 on the public samples, plus
broken variants (a bad entry is quarantined and the rest kept; a file that does not add up is held back)."""
from __future__ import annotations

import hashlib
from datetime import date, datetime

import pytest

from formats.conftest import COMPOSED, SALT, SAMPLES, files

pytestmark = pytest.mark.spark


def name_hash(name: str) -> str:
    return hashlib.sha256(f"{SALT}:{name.strip().lower()}".encode()).hexdigest()


# ------------------------------------------------------------------------------------------- camt.053
@files
def camt_files(work):
    multi = (SAMPLES / "camt053" / "camt053.v2.multi.statement.xml").read_text()
    bad_amount = work / "camt_bad_amount.xml"
    bad_amount.write_text(multi.replace('<Amt Ccy="EUR">7.00</Amt>', '<Amt Ccy="EUR">7,00</Amt>', 1))
    not_adding_up = work / "camt_not_adding_up.xml"
    not_adding_up.write_text(multi.replace('<Amt Ccy="EUR">20.00</Amt>', '<Amt Ccy="EUR">20.01</Amt>'))
    return sorted([*(SAMPLES / "camt053").glob("*.xml"), bad_amount, not_adding_up])


@pytest.fixture
def camt(formats_run):
    return formats_run


def test_camt053_versions_02_04_08_parse_every_entry(camt):
    minimal, = camt.of("camt053.v2.minimal.xml")
    assert (minimal.event_type, minimal.amount_minor, minimal.currency, minimal.account_ref) == (
        "bank_credit", 885, "EUR", "NL26VAYB8060476890")
    assert minimal.booked_at == datetime(2014, 12, 31) and minimal.value_date == date(2015, 1, 2)
    assert minimal.counterparty_name_hash == name_hash("NAME NAME") and "NAME NAME" not in (minimal.bank_text or "")
    v4, = camt.of("camt053.v4.xml")
    assert (v4.amount_minor, v4.bank_ref, v4.payment_method) == (885, "AAAASESS-FP-CN_98765/01", "PAYM/0001/0005")
    v8, = camt.of("camt053.v8.xml")                           # BookgDt/DtTm 13:15+01:00, Sts/Cd
    assert (v8.booked_at, v8.booked_tz, v8.payment_method) == (datetime(2014, 12, 31, 12, 15), "+0100",
                                                               "PMNT/RCDT/BOOK")
    assert [(e.record_ordinal, e.amount_minor) for e in camt.of("camt053.v2.multi.statement.xml")] == [
        (1, 885), (2, -700)]


def test_camt053_statement_totals(camt):
    assert camt.stats["camt053.v2.multi.statement.xml"].control_totals_ok is True     # 18.15 -> 27.00 -> 20.00
    minimal = camt.stats["camt053.v2.minimal.xml"]                # OPBD EUR, CLBD SEK: genkgo's parsing fixture
    assert minimal.control_totals_ok is None and "different currencies" in minimal.detail


def test_camt053_bad_entry_is_quarantined_and_a_statement_not_adding_up_is_held_back(camt):
    assert camt.reasons("camt_bad_amount.xml") == {2: "BAD_AMOUNT"}
    assert [e.amount_minor for e in camt.of("camt_bad_amount.xml")] == [885]
    assert camt.stats["camt_bad_amount.xml"].control_totals_ok is None
    reason, detail = camt.rejected["camt_not_adding_up.xml"]
    assert reason == "CONTROL_TOTAL_MISMATCH" and "2001" in detail and not camt.of("camt_not_adding_up.xml")


# ----------------------------------------------------------------------------------------------- MT940
@files
def mt940_files(work):
    cmxl = (SAMPLES / "mt940" / "cmxl-mt940.sta").read_text()
    broken = work / "mt940_broken.sta"
    broken.write_text(cmxl.replace(":61:0211021102CR3000,NTRF", ":61:0211021102CR3X00,NTRF"))
    closing = work / "mt940_closing_changed.sta"
    closing.write_text(cmxl.replace(":62F:C021130EUR4387,95", ":62F:C021130EUR4387,96"))
    wrapped = work / "mt940_swift_block.sta"
    wrapped.write_text((COMPOSED / "mt940" / "psp_payouts.sta").read_text())
    names = ["betterplace-sepa_mt9401.sta", "cmxl-mt940.sta", "self-provided-gv_codes.sta", "jejik-abnamro.sta",
             "jejik-rabobank.sta", "jejik-triodos.sta"]
    return [SAMPLES / "mt940" / n for n in names] + [broken, closing, wrapped]


@pytest.fixture
def mt940(formats_run):
    return formats_run


def test_mt940_german_sepa_statements_all_reconcile(mt940):
    lines = mt940.of("betterplace-sepa_mt9401.sta")
    assert len(lines) == 97 and mt940.stats["betterplace-sepa_mt9401.sta"].control_totals_ok is True
    first = lines[0]                                         # :61:0709040904CR300,NTRFTFNr 40005 MSGID//0724710345313905
    assert (first.amount_minor, first.currency, first.bank_ref, first.value_date) == (
        30000, "EUR", "0724710345313905", date(2007, 9, 4))
    assert "RETOURE" in first.bank_text and first.payment_method == "NTRF/159"
    assert lines[5].amount_minor == -20488 and lines[5].event_type == "bank_debit"   # RCR: reversal of a credit
    assert lines[6].amount_minor == -99994695                                       # DR = D + funds code R


def test_mt940_structured_86_names_are_hashed_and_dropped_from_the_text(mt940):
    rent, salary = mt940.of("cmxl-mt940.sta")[:2]
    assert (rent.record_ordinal, rent.amount_minor, rent.bank_ref) == (12, -80000, "55555")
    assert rent.bank_text == "DAUERAUFTRAG Miete November"
    assert rent.counterparty_name_hash == name_hash("MUELLER") and "MUELLER" not in salary.bank_text
    polish = mt940.of("cmxl-mt940.sta")[2:]
    assert [(e.record_ordinal, e.amount_minor, e.currency) for e in polish] == [
        (14, 2000000, "PLN"), (15, -1000000, "PLN"), (16, 4000, "PLN")]
    assert polish[0].bank_text.startswith("Card transaction |")        # supplementary details on the next line


def test_mt940_dem_lines_are_quarantined_as_withdrawn_and_their_statement_is_not_verifiable(mt940):
    assert mt940.reasons("cmxl-mt940.sta") == {i: "WITHDRAWN_CURRENCY" for i in range(1, 12)}
    stats = mt940.stats["cmxl-mt940.sta"]                    # the EUR and PLN statements still load
    assert stats.control_totals_ok is None and "11 WITHDRAWN_CURRENCY" in stats.detail


def test_mt940_samples_that_do_not_reconcile_are_held_back_whole(mt940):
    for name in ("jejik-abnamro.sta", "jejik-rabobank.sta", "jejik-triodos.sta"):
        assert mt940.rejected[name][0] == "CONTROL_TOTAL_MISMATCH" and not mt940.of(name)
    assert "opening 3236.28 + lines -321.44 != closing 876.84" in mt940.rejected["jejik-abnamro.sta"][1]
    assert mt940.rejected["mt940_closing_changed.sta"][0] == "CONTROL_TOTAL_MISMATCH"


def test_mt940_broken_line_is_quarantined_and_the_rest_kept(mt940):
    assert mt940.reasons("mt940_broken.sta")[13] == "MALFORMED_ROW"
    assert [e.record_ordinal for e in mt940.of("mt940_broken.sta")] == [12, 14, 15, 16]
    assert mt940.stats["mt940_broken.sta"].control_totals_ok is None


def test_mt940_no_closing_balance_is_not_verifiable(mt940):
    assert [e.amount_minor for e in mt940.of("self-provided-gv_codes.sta")] == [-23315, -2430]
    assert mt940.stats["self-provided-gv_codes.sta"].control_totals_ok is None


def test_mt940_swift_block_with_psp_payouts(mt940):
    adyen, stripe_fee = mt940.of("mt940_swift_block.sta")
    assert (adyen.amount_minor, adyen.bank_ref) == (11897, "2406120001870001")
    assert "TX991230411XT batch 412" in adyen.bank_text and "ADYEN N.V" not in adyen.bank_text
    assert adyen.counterparty_name_hash == name_hash("ADYEN N.V.")
    assert (stripe_fee.amount_minor, stripe_fee.bank_text) == (-9500, "STRIPE DISPUTE FEE DU_1PQA0D")
    assert mt940.stats["mt940_swift_block.sta"].control_totals_ok is True


def test_mt940_driver_parse_of_samples_that_do_not_add_up():
    """Every :61: of the non-reconciling samples is read (the file is held back only as a whole)."""
    from jobs.formats.mt940 import info_text, read_pages

    pages = read_pages((SAMPLES / "mt940" / "jejik-rabobank.sta").read_text())
    lines = [line for p in pages for line in p.lines]
    assert len(pages) == 4 and [line.match.group("amount") for line in lines] == [
        "000000001213,28", "000000000044,95", "000000000236,56", "000000000088,10", "000000000006,20"]
    assert lines[0].match.group("rest").endswith("W.P. Jansen")
    assert info_text(lines[0].info)[0] == "Terugboeking NIET AKKOORD MET AFSCHRIJVING KOSTEN KINDEROPVANG JUNI 20095731"
    triodos = [line for p in read_pages((SAMPLES / "mt940" / "jejik-triodos.sta").read_text()) for line in p.lines]
    assert info_text(triodos[0].info)[0] == "ALGEMENE TUSSENREKENING KOSTEN VAN 01-10-2010 TOT EN MET 31-12-2010"


# ------------------------------------------------------------------------------------------------ BAI2
@files
def bai2_files(work):
    sample1 = (SAMPLES / "bai2" / "sample1.txt").read_text()
    bad_amount = work / "bai2_bad_amount.txt"
    bad_amount.write_text(sample1.replace("16,409,000000000090000,V,060316,,,,RTN-UNKNOWN",
                                          "16,409,0000000000900O0,V,060316,,,,RTN-UNKNOWN"))
    wrong_total = work / "bai2_wrong_total.txt"
    wrong_total.write_text(sample1.replace("49,+00000000000446000,9/", "49,+00000000000446001,9/"))
    paths = [SAMPLES / "bai2" / "sample1.txt", SAMPLES / "bai2" / "sample2.txt", COMPOSED / "bai2" / "psp_payouts.bai",
             bad_amount, wrong_total]
    return paths


@pytest.fixture
def bai2(formats_run):
    return formats_run


def test_bai2_samples_totals_and_every_detail(bai2):
    s1 = bai2.of("sample1.txt")
    assert len(s1) == 17 and bai2.stats["sample1.txt"].control_totals_ok is True
    assert (s1[0].amount_minor, s1[0].currency, s1[0].bank_text, s1[0].payment_method) == (
        -2500, "CAD", "RETURNED CHEQUE", "BAI409")
    assert s1[3].amount_minor == 203500 and s1[3].value_date == date(2006, 3, 16)
    assert sum(e.amount_minor for e in s1 if e.amount_minor > 0) == 320000
    s2 = bai2.of("sample2.txt")
    assert [e.amount_minor for e in s2] == [450000, 500000, 20000000, 10000000]
    assert bai2.stats["sample2.txt"].control_totals_ok is True
    letter_of_credit = s2[2]                                # 16 + 88 continuation, funds type V with a value date
    assert (letter_of_credit.bank_ref, letter_of_credit.value_date) == ("SP4738", date(2004, 6, 22))
    assert letter_of_credit.bank_text == "YRC065321 | PROCEEDS OF LETTER OF CREDIT FROM THE ARAMCO OIL CO"


def test_bai2_psp_payouts(bai2):
    stripe, adyen = bai2.of("psp_payouts.bai")
    assert (stripe.amount_minor, stripe.currency, stripe.bank_ref) == (11897, "USD", "240611000187")
    assert "STRIPE TRANSFER ST-Q4R8 ACMECORP" in stripe.bank_text and adyen.payment_method == "BAI195"
    assert bai2.stats["psp_payouts.bai"].control_totals_ok is True


def test_bai2_bad_amount_quarantined_and_wrong_trailer_held_back(bai2):
    assert bai2.reasons("bai2_bad_amount.txt") == {2: "BAD_AMOUNT"}
    assert len(bai2.of("bai2_bad_amount.txt")) == 16 and bai2.stats["bai2_bad_amount.txt"].control_totals_ok is None
    reason, detail = bai2.rejected["bai2_wrong_total.txt"]
    assert reason == "CONTROL_TOTAL_MISMATCH" and "49 total 446001 != records 446000" in detail
