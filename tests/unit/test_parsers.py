"""The slice parsers on small realistic files: values, signs, time zones, quarantine, control totals."""
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from conftest import DATA, land_local
from jobs.formats import common as c
from jobs.formats.registry import by_id
from jobs.stages.parse import _parser

pytestmark = pytest.mark.spark
DAY = date(2026, 11, 20)
SLICE = DATA / "slice"


def parse(spark, settings, *paths: Path):
    files = [land_local(settings, "acme", p, DAY) for p in paths]
    fmt = files[0].format
    out = _parser(fmt)(spark, settings, by_id(fmt), files, c.ParseContext("acme", DAY, "salt"))
    return out, {r.record_ordinal: r for r in out.events.collect()}, out.quarantine.collect()


@pytest.fixture
def lake_settings(lake):
    from jobs.settings import Settings

    return Settings(lake=lake)


def test_book_csv_signs_time_zones_pii_and_a_bad_amount(spark, lake_settings):
    out, ev, quarantined = parse(spark, lake_settings, SLICE / "book_payments_2026-11-19.csv")
    assert ev[1].amount_minor == 10000 and ev[1].currency == "EUR" and ev[1].event_type == "payment"
    assert ev[3].amount_minor == -2000 and ev[3].event_type == "refund"          # refunds are money out
    assert ev[1].booked_at == datetime(2026, 11, 18, 9, 0) and ev[1].booked_tz == "+01:00"
    assert ev[4].booked_at == datetime(2026, 11, 18, 14, 0) and ev[4].booked_tz == "-05:00"
    assert ev[2].psp_ref is None and ev[2].merchant_ref == "ORD-1002"
    assert ev[5].description == "Order ORD-2002 card 424242******4242"          # PAN masked
    assert ev[1].customer_email_hash and "@" not in ev[1].customer_email_hash
    assert [(q.record_ordinal, q.reason_code) for q in quarantined] == [(8, "AMOUNT_PRECISION")]
    assert "fay@example.com" not in quarantined[0].raw
    stats = out.stats.first()
    assert (stats.records_read, stats.records_loaded, stats.records_quarantined) == (8, 7, 1)


def test_stripe_itemized_amounts_ids_and_payout(spark, lake_settings):
    out, ev, quarantined = parse(spark, lake_settings, SLICE / "stripe_payout_po_TEST1.csv")
    assert not quarantined
    charge, refund, dispute, fee = ev[1], ev[3], ev[4], ev[5]
    assert (charge.amount_minor, charge.fee_minor, charge.net_minor, charge.currency) == (10000, 170, 9830, "EUR")
    assert (charge.psp_ref, charge.psp_payment_ref, charge.psp_line_id, charge.merchant_ref) == ("ch_A", "ch_A", "txn_1", "ORD-1001")
    assert (refund.event_type, refund.amount_minor, refund.psp_ref, refund.psp_payment_ref) == ("refund", -2000, "re_C", "ch_A")
    assert (dispute.event_type, dispute.amount_minor, dispute.fee_minor, dispute.net_minor) == ("chargeback", -3000, 1500, -4500)
    assert (fee.event_type, fee.net_minor) == ("fee", -120)
    assert sum(e.net_minor for e in ev.values()) == 8112                          # = the bank credit
    assert {e.payout_ref for e in ev.values()} == {"po_TEST1"} and charge.value_date == date(2026, 11, 20)


def test_adyen_settlement_details_fx_fees_and_batch(spark, lake_settings):
    out, ev, quarantined = parse(spark, lake_settings, SLICE / "settlement_detail_report_batch_7.csv")
    assert not quarantined
    settled, fx, refunded, fee, payout = (ev[i] for i in range(1, 6))
    assert (settled.event_type, settled.amount_minor, settled.fee_minor, settled.net_minor) == ("capture", 1000, 30, 970)
    assert settled.fee_breakdown == {"markup": 10, "scheme_fees": 5, "interchange": 15}
    assert settled.booked_at == datetime(2026, 11, 18, 14, 0) and settled.booked_tz == "CET"
    assert (fx.currency, fx.net_minor, fx.presentment_currency, fx.presentment_amount_minor) == ("EUR", 1760, "USD", 2000)
    assert fx.fx_rate == Decimal("0.9")
    assert (refunded.event_type, refunded.amount_minor, refunded.net_minor, refunded.psp_ref,
            refunded.psp_payment_ref) == ("refund", -500, -510, "8815000000000098", "8815000000000001")
    assert (fee.event_type, fee.net_minor) == ("fee", -100)
    assert (payout.event_type, payout.net_minor, payout.payout_bank_ref) == ("payout", -2120, "TX1234567890XT")
    assert out.stats.first().control_totals_ok is True


def test_camt053_entries_and_balances(spark, lake_settings):
    out, ev, quarantined = parse(spark, lake_settings, SLICE / "camt053_2026-11-20.xml")
    assert not quarantined and out.stats.first().control_totals_ok is True
    assert (ev[1].event_type, ev[1].amount_minor, ev[1].currency, ev[1].account_ref) == ("bank_credit", 8112, "EUR",
                                                                                         "NL91ABNA0417164300")
    assert "po_TEST1" in ev[1].bank_text and "TX1234567890XT" in ev[2].bank_text
    assert ev[2].value_date == date(2026, 11, 20)


def test_reordered_columns_parse_to_the_same_events(spark, lake_settings, tmp_path):
    import csv

    rows = list(csv.reader((SLICE / "stripe_payout_po_TEST1.csv").open()))
    order = list(reversed(range(len(rows[0]))))
    shuffled = tmp_path / "reordered.csv"
    with shuffled.open("w", newline="") as fh:
        csv.writer(fh).writerows([[r[i] for i in order] for r in rows])
    _, a, _ = parse(spark, lake_settings, SLICE / "stripe_payout_po_TEST1.csv")
    _, b, _ = parse(spark, lake_settings, shuffled)
    key = lambda e: (e.record_ordinal, e.event_type, e.amount_minor, e.fee_minor, e.psp_ref, e.payout_ref)  # noqa
    assert sorted(map(key, a.values())) == sorted(map(key, b.values()))


def test_broken_rows_are_quarantined_with_reasons_and_good_rows_kept(spark, lake_settings, tmp_path):
    text = (SLICE / "stripe_payout_po_TEST1.csv").read_text().splitlines()
    broken = tmp_path / "broken.csv"
    broken.write_text("\n".join([
        text[0], text[1],
        text[2].replace('"50.00","0.98","49.02"', '"5O.00","0.98","49.02"'),       # letter O in amount
        text[3].replace('"eur"', '"xxx"'),                                         # unknown currency
        '"po_TEST1","2026-11-20 00:00:00","txn_9"',                                # wrong column count
        text[4].replace('"txn_4"', '""'),                                          # missing id
        text[5],
    ]) + "\n")
    out, ev, quarantined = parse(spark, lake_settings, broken)
    assert sorted(ev) == [1, 6]
    assert {q.record_ordinal: q.reason_code for q in quarantined} == {
        2: "BAD_AMOUNT", 3: "UNKNOWN_CURRENCY", 4: "MALFORMED_ROW", 5: "MISSING_ID"}
    assert all(q.raw for q in quarantined)


def test_missing_required_column_rejects_the_file_instead_of_shifting_values(spark, lake_settings, tmp_path):
    import csv

    rows = list(csv.reader((SLICE / "stripe_payout_po_TEST1.csv").open()))
    drop = rows[0].index("net")
    drifted = tmp_path / "drifted.csv"
    with drifted.open("w", newline="") as fh:
        csv.writer(fh).writerows([r[:drop] + r[drop + 1:] + (["extra"] if i else ["new_column"])
                                  for i, r in enumerate(rows)])
    out, ev, _ = parse(spark, lake_settings, drifted)
    assert not ev
    (reason, detail), = out.rejected.values()
    assert reason == "SCHEMA_DRIFT" and "net" in detail


def test_adyen_batch_not_adding_up_is_held_back_whole(spark, lake_settings, tmp_path):
    text = (SLICE / "settlement_detail_report_batch_7.csv").read_text().replace("EUR,21.20,", "EUR,21.30,")
    bad = tmp_path / "settlement_detail_report_batch_8.csv"
    bad.write_text(text)
    out, ev, _ = parse(spark, lake_settings, bad)
    assert not ev
    (reason, _), = out.rejected.values()
    assert reason == "CONTROL_TOTAL_MISMATCH"
