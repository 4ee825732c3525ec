"""PSP reports and events: Stripe (balance history, balance report, webhook events), Adyen 2025 layout,
PayPal STL/TRR, Braintree, Checkout.com. Realistic files, and broken variants of each."""
from __future__ import annotations

import csv
import hashlib
import io
import json
from datetime import date, datetime
from decimal import Decimal

import pytest

from formats.conftest import COMPOSED, SALT, SAMPLES, files

pytestmark = pytest.mark.spark


def pii_hash(value: str) -> str:
    return hashlib.sha256(f"{SALT}:{value.strip().lower()}".encode()).hexdigest()


def _rewrite_csv(src, dst, edit) -> None:
    rows = list(csv.reader(io.StringIO(src.read_text())))
    edit(rows)
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(rows)
    dst.write_text(buf.getvalue())


# ---------------------------------------------------------------------------------------------- Stripe
def _event(n: int, kind: str, obj: dict, created: int, previous: dict | None = None) -> dict:
    data = {"object": obj, **({"previous_attributes": previous} if previous else {})}
    return {"id": f"evt_1Test{n:04d}", "object": "event", "api_version": "2024-06-20", "created": created,
            "data": data, "livemode": False, "pending_webhooks": 1, "request": {"id": None, "idempotency_key": None},
            "type": kind}


@files
def stripe_files(work):
    load = lambda name: json.loads((SAMPLES / "stripe" / name).read_text())  # noqa: E731
    charge, dispute = load("charge_ch_fakefakefakefakefake0001.json"), load("dispute_dp_fakefakefakefake01.json")
    reinstated, payout = load("dispute_dp_funds_reinstated_full.json"), load("payout_custom_bank_account.json")
    charge["billing_details"]["email"] = "alex@example.com"
    charge["metadata"]["order_id"] = "ORD-7"
    events = [
        _event(1, "charge.succeeded", charge, 1557995177),
        _event(2, "charge.refunded", {**charge, "amount_refunded": 1500, "refunds": {"data": [{"id": "re_T2"}]}},
               1558000000, {"amount_refunded": 500}),
        _event(3, "charge.dispute.created", dispute, 1625755540),
        _event(4, "charge.dispute.closed", {**reinstated, "status": "won"}, 1625755608),
        load("event_external_account_bank_account_created.json"),
        _event(6, "payout.paid", payout, 1629676800),                            # dj-stripe's "10.00"
        _event(7, "payout.paid", {**payout, "amount": 1000, "trace_id": {"status": "supported", "value": "TR123456"}},
               1629676800),
        _event(8, "charge.succeeded", {**charge, "id": "ch_T8", "currency": "zzz"}, 1557995177),
        _event(9, "charge.dispute.created", {**dispute, "balance_transactions": []}, 1625755540),   # an inquiry
    ]
    jsonl = work / "stripe_events_0000000001.jsonl"
    jsonl.write_text("\n".join(json.dumps(e, separators=(",", ":")) for e in events) + "\n")
    pretty = work / "event.json"                                 # one pretty-printed event, as a webhook body
    pretty.write_text(json.dumps(_event(10, "charge.succeeded", {**charge, "id": "ch_T10"}, 1557995177), indent=2))
    history = COMPOSED / "stripe" / "balance_history_2024-06.csv"
    broken = work / "balance_history_broken.csv"
    _rewrite_csv(history, broken, lambda rows: (rows[1].__setitem__(1, "mystery"), rows[2].__setitem__(5, "-49.91"),
                                                rows[3].__setitem__(3, "abc")))
    report = COMPOSED / "stripe" / "balance_report_payouts_itemized.csv"
    return [jsonl, pretty, history, broken, report]


@pytest.fixture
def stripe(formats_run):
    return formats_run


def test_stripe_balance_history_types_signs_and_payout(stripe):
    charge, refund, dispute, fee, payout = stripe.of("balance_history_2024-06.csv")
    assert (charge.event_type, charge.amount_minor, charge.fee_minor, charge.net_minor) == ("payment", 20000, 630, 19370)
    assert (charge.psp_ref, charge.psp_line_id, charge.merchant_ref) == (
        "ch_3PpZ1aLkdIwHu7ix0Y7pQe1L", "txn_3PpZ1aLkdIwHu7ix0Kq2cVbN", "10482")
    assert charge.customer_email_hash == pii_hash("ann@example.com") and charge.booked_at == datetime(2024, 6, 9, 14, 2)
    assert (refund.event_type, refund.amount_minor) == ("refund", -4990)
    assert (dispute.event_type, dispute.fee_minor, dispute.net_minor, dispute.psp_payment_ref) == (
        "chargeback", 2000, -9500, "ch_3PnUvWLkdIwHu7ix0aS1dF2g")
    assert (fee.event_type, fee.net_minor, payout.event_type, payout.net_minor) == ("fee", -120, "payout", -4760)
    rows = stripe.of("balance_history_2024-06.csv")
    assert {e.payout_ref for e in rows} == {"po_1PqR8sLkdIwHu7ix3ZsNfA2b"}
    assert sum(e.net_minor for e in rows if e.event_type != "payout") == -payout.net_minor   # the payout restates it
    assert charge.value_date == date(2024, 6, 12)


def test_stripe_balance_history_broken_rows(stripe):
    assert stripe.reasons("balance_history_broken.csv") == {1: "UNKNOWN_TYPE", 2: "INCONSISTENT_AMOUNTS",
                                                            3: "BAD_AMOUNT"}
    assert [e.record_ordinal for e in stripe.of("balance_history_broken.csv")] == [4, 5]


def test_stripe_balance_report_payout_rows(stripe):
    first, second = stripe.of("balance_report_payouts_itemized.csv")
    assert stripe.landed["balance_report_payouts_itemized.csv"] == "stripe.balance_report_itemized"
    assert (first.event_type, first.amount_minor, first.payout_ref, first.value_date) == (
        "payout", -3012, "po_1PqR8sLkdIwHu7ix3ZsNfA2b", date(2024, 6, 12))
    assert (second.currency, second.net_minor) == ("USD", -11897)


def test_stripe_webhook_events(stripe):
    ev = {e.record_ordinal: e for e in stripe.of("stripe_events_0000000001.jsonl")}
    charge = ev[1]
    assert (charge.event_type, charge.amount_minor, charge.currency, charge.psp_ref, charge.psp_line_id) == (
        "payment", 2000, "USD", "ch_fakefakefakefakefake0001", "evt_1Test0001")
    assert charge.merchant_ref == "ORD-7" and charge.customer_email_hash == pii_hash("alex@example.com")
    assert charge.counterparty_name_hash == pii_hash("alex-nesnes@hotmail.fr")      # billing name: hashed
    assert charge.booked_at == datetime(2019, 5, 16, 8, 26, 17) and charge.payment_method == "visa"
    refund = ev[2]                                      # 1500 refunded in total, 500 before: this event is 1000
    assert (refund.event_type, refund.amount_minor, refund.psp_ref, refund.psp_payment_ref) == (
        "refund", -1000, "re_T2", "ch_fakefakefakefakefake0001")
    assert (ev[3].event_type, ev[3].amount_minor, ev[3].fee_minor, ev[3].net_minor) == ("chargeback", -1000, 1500, -2500)
    assert (ev[4].event_type, ev[4].amount_minor, ev[4].fee_minor, ev[4].net_minor) == (
        "chargeback_reversal", 1000, -1500, 2500)
    assert (ev[7].event_type, ev[7].amount_minor, ev[7].payout_ref, ev[7].payout_bank_ref, ev[7].value_date) == (
        "payout", -1000, "po_1JR569QuFmP1Mw5uxasKoRx5", "TR123456", date(2021, 8, 23))
    assert stripe.reasons("stripe_events_0000000001.jsonl") == {6: "BAD_AMOUNT", 8: "UNKNOWN_CURRENCY"}
    stats = stripe.stats["stripe_events_0000000001.jsonl"]
    assert (stats.records_read, stats.records_loaded, stats.records_quarantined) == (9, 5, 2)
    assert "2 record(s) without a money movement skipped" in stats.detail   # account.* event, dispute inquiry
    single, = stripe.of("event.json")
    assert single.psp_ref == "ch_T10"


# ----------------------------------------------------------------------------------------------- Adyen
@files
def adyen_files(work):
    src = COMPOSED / "adyen" / "settlement_detail_report_batch_412.csv"
    reordered = work / "settlement_detail_report_batch_412_reordered.csv"
    _rewrite_csv(src, reordered, lambda rows: rows.__setitem__(slice(None), [list(reversed(r)) for r in rows]))
    unknown_type = work / "sdr_unknown_type.csv"
    _rewrite_csv(src, unknown_type, lambda rows: rows[3].__setitem__(rows[0].index("Type"), "Mystery"))
    drifted = work / "sdr_drifted.csv"

    def drift(rows):
        i = rows[0].index("Net Credit (NC)")
        for r in rows:
            del r[i]
            r.append("Surprise Column" if r is rows[0] else "x")
    _rewrite_csv(src, drifted, drift)
    new_column = work / "sdr_new_column.csv"
    _rewrite_csv(src, new_column, lambda rows: [r.append("Surprise Column" if r is rows[0] else "") for r in rows])
    return [src, reordered, unknown_type, drifted, new_column]


@pytest.fixture
def adyen(formats_run):
    return formats_run


def test_adyen_2025_layout_rows_and_batch_total(adyen):
    settled, chargeback, reversed_, transfer, fee, payout = adyen.of("settlement_detail_report_batch_412.csv")
    assert (settled.event_type, settled.amount_minor, settled.fee_minor, settled.net_minor) == ("capture", 10000, 65, 9935)
    assert settled.fee_breakdown == {"markup": 30, "scheme_fees": 10, "interchange": 20, "payment_fees": 5}
    assert settled.booked_at == datetime(2024, 6, 9, 14, 2, 11) and settled.booked_tz == "CEST"
    assert (chargeback.event_type, chargeback.amount_minor, chargeback.net_minor) == ("chargeback", -5000, -5750)
    assert (reversed_.event_type, reversed_.net_minor) == ("chargeback_reversal", 5000)
    assert (transfer.event_type, transfer.net_minor, transfer.description) == (
        "transfer", 1234, "Balancetransfer from batch 411")
    assert (payout.event_type, payout.net_minor, payout.payout_bank_ref) == ("payout", -10319, "TX991230411XT")
    assert adyen.stats["settlement_detail_report_batch_412.csv"].control_totals_ok is True


def test_adyen_reordered_columns_give_the_same_events(adyen):
    key = lambda e: (e.record_ordinal, e.event_type, e.amount_minor, e.fee_minor, e.psp_ref, e.payout_ref)  # noqa
    assert [key(e) for e in adyen.of("settlement_detail_report_batch_412_reordered.csv")] == [
        key(e) for e in adyen.of("settlement_detail_report_batch_412.csv")]


def test_adyen_unknown_type_missing_column_and_new_column(adyen):
    assert adyen.reasons("sdr_unknown_type.csv") == {3: "UNKNOWN_TYPE"}
    assert adyen.stats["sdr_unknown_type.csv"].control_totals_ok is True       # its amounts still add up
    reason, detail = adyen.rejected["sdr_drifted.csv"]
    assert reason == "SCHEMA_DRIFT" and "net_credit_nc" in detail and not adyen.of("sdr_drifted.csv")
    assert "unknown columns ignored: surprise_column" in adyen.stats["sdr_new_column.csv"].detail
    assert len(adyen.of("sdr_new_column.csv")) == 6


# ---------------------------------------------------------------------------------------------- PayPal
@files
def paypal_files(work):
    stl = (COMPOSED / "paypal" / "STL-20240610.01.009.CSV").read_text()
    lines = stl.splitlines()
    broken = work / "STL-broken.CSV"
    broken.write_text("\n".join([
        *lines[:4],
        lines[4].replace('"CR",12000,"USD"', '"CR",12O00,"USD"'),                  # letter O
        lines[5].replace('"2BT88210XH4455131"', '""'),                             # missing id
        lines[6].replace(',"","","","","","",,,', ',"","","","","",,,'),         # a field short
        lines[7].replace('"USD"', '"XXX"', 1),                                     # unknown currency
        *lines[8:]]) + "\n")
    footer = work / "STL-footer.CSV"
    footer.write_text(stl.replace('"SF","USD",12000,11767', '"SF","USD",12000,11768'))
    no_gross = work / "STL-drift.CSV"
    no_gross.write_text(stl.replace('"Gross Transaction Amount",', '"Gross Amount",'))
    reordered = work / "STL-reordered.CSV"        # same width, other column order: read in the STL's Spark read
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    for fields in csv.reader(io.StringIO(stl)):
        if fields[0] in ("CH", "SB"):
            fields[1], fields[9], fields[5], fields[8] = fields[9], fields[1], fields[8], fields[5]
        writer.writerow(fields)
    reordered.write_text(out.getvalue())
    return [COMPOSED / "paypal" / "STL-20240610.01.009.CSV", broken, footer, no_gross, reordered,
            COMPOSED / "paypal" / "TRR-20240610.01.008.CSV"]


@pytest.fixture
def paypal(formats_run):
    return formats_run


def test_paypal_stl_event_codes_signs_and_minor_units(paypal):
    pay, refund, chargeback, cb_fee, jpy, withdrawal, jpy_withdrawal = paypal.of("STL-20240610.01.009.CSV")
    assert (pay.event_type, pay.amount_minor, pay.fee_minor, pay.net_minor, pay.currency) == (
        "payment", 12000, 378, 11622, "USD")
    assert pay.booked_at == datetime(2024, 6, 10, 16, 14, 3) and pay.booked_tz == "-0700"
    assert (refund.event_type, refund.amount_minor, refund.fee_minor, refund.psp_payment_ref) == (
        "refund", -4990, -145, "5KX19987RJ2233400")                               # the fee comes back
    assert (chargeback.event_type, cb_fee.event_type, cb_fee.net_minor) == ("chargeback", "dispute_fee", -2000)
    assert (jpy.currency, jpy.amount_minor, jpy.fee_minor) == ("JPY", 1500, 60)       # 150000 hundredths = 1500 yen
    assert (withdrawal.event_type, withdrawal.net_minor, withdrawal.payout_bank_ref, withdrawal.value_date) == (
        "payout", -1777, "1047428557493", date(2024, 6, 10))
    usd = [e for e in (pay, refund, chargeback, cb_fee)]
    assert {e.payout_ref for e in usd} == {withdrawal.psp_ref} and sum(e.net_minor for e in usd) == 1777
    assert jpy.payout_ref == jpy_withdrawal.psp_ref and jpy_withdrawal.net_minor == -1440
    assert paypal.stats["STL-20240610.01.009.CSV"].control_totals_ok is True


def test_paypal_stl_broken_rows_footer_and_drift(paypal):
    assert paypal.reasons("STL-broken.CSV") == {1: "BAD_AMOUNT", 2: "MISSING_ID", 3: "MALFORMED_ROW",
                                                4: "UNKNOWN_CURRENCY"}
    assert [e.record_ordinal for e in paypal.of("STL-broken.CSV")] == [5, 6, 7]
    assert paypal.stats["STL-broken.CSV"].control_totals_ok is None
    reason, detail = paypal.rejected["STL-footer.CSV"]
    assert reason == "CONTROL_TOTAL_MISMATCH" and "SF USD" in detail and not paypal.of("STL-footer.CSV")
    assert paypal.rejected["STL-drift.CSV"][0] == "SCHEMA_DRIFT"


def test_paypal_reordered_columns_give_the_same_events(paypal):
    """Files of one header width are read together; each file's columns are taken by its own CH names."""
    key = lambda e: (e.record_ordinal, e.event_type, e.amount_minor, e.fee_minor, e.currency, e.psp_ref)  # noqa
    want = [key(e) for e in paypal.of("STL-20240610.01.009.CSV")]
    assert len(want) == 7 and [key(e) for e in paypal.of("STL-reordered.CSV")] == want
    assert paypal.stats["STL-reordered.CSV"].control_totals_ok is True


def test_paypal_trr_statuses_and_payer_hashes(paypal):
    rows = paypal.of("TRR-20240610.01.008.CSV")
    assert [(e.record_ordinal, e.event_type, e.net_minor) for e in rows] == [
        (1, "payment", 11622), (2, "refund", -4845), (5, "payout", -6777)]      # pending and void skipped
    assert rows[0].customer_email_hash == pii_hash("jane.buyer@example.com")
    assert rows[0].counterparty_name_hash == pii_hash("Jane Buyer") and rows[0].description == "Order 10482"
    stats = paypal.stats["TRR-20240610.01.008.CSV"]
    assert (stats.records_read, stats.records_loaded, stats.control_totals_ok) == (5, 3, True)


# --------------------------------------------------------------------------------- Braintree, Checkout
@files
def others_files(work):
    bt = COMPOSED / "braintree" / "transaction_search_2024-06-10.csv"
    bt_broken = work / "braintree_broken.csv"

    def edit(rows):
        h = rows[0]
        rows[1][h.index("Amount Submitted For Settlement")] = "12O.00"
        rows[1][h.index("Settlement Amount")] = "12O.00"
        rows[2][h.index("Transaction Type")] = "mystery"
        rows[3][h.index("Refunded Transaction ID")] = ""
    _rewrite_csv(bt, bt_broken, edit)
    breakdown = COMPOSED / "checkout" / "settlement-breakdown_ent_acme_20240611_0000000K3P9Q_1.csv"
    bd_broken = work / "settlement-breakdown_broken.csv"
    _rewrite_csv(breakdown, bd_broken, lambda rows: rows[1].__setitem__(rows[0].index("Net In Holding Currency"),
                                                                        "117.66"))
    payouts = COMPOSED / "checkout" / "payouts_ent_acme_20240611_20240612_1.csv"
    po_broken = work / "payouts_broken.csv"
    _rewrite_csv(payouts, po_broken, lambda rows: rows[1].__setitem__(rows[0].index("Payments"), "166.16"))
    return [bt, bt_broken, breakdown, bd_broken, payouts, po_broken]


@pytest.fixture
def others(formats_run):
    return formats_run


def test_braintree_sales_credits_fx_and_statuses(others):
    sale, fx_sale, credit = others.of("transaction_search_2024-06-10.csv")
    assert (sale.event_type, sale.amount_minor, sale.currency, sale.payout_ref, sale.value_date) == (
        "payment", 12000, "USD", "2024-06-10_acmecoUSD_7g4k2m", date(2024, 6, 12))
    assert sale.booked_at == datetime(2024, 6, 10, 14, 14, 2) and sale.booked_tz == "CDT"
    assert sale.counterparty_name_hash == pii_hash("Jane Q Public") and sale.customer_email_hash == pii_hash(
        "jane@example.com")
    assert (fx_sale.amount_minor, fx_sale.currency, fx_sale.presentment_amount_minor, fx_sale.presentment_currency,
            fx_sale.fx_rate) == (5421, "USD", 5000, "EUR", Decimal("1.0842"))
    assert (credit.event_type, credit.amount_minor, credit.psp_payment_ref) == ("refund", -3000, "kq3m8z2p")
    stats = others.stats["transaction_search_2024-06-10.csv"]
    assert (stats.records_read, stats.records_loaded, stats.records_quarantined) == (5, 3, 0)   # authorized, voided


def test_braintree_broken_rows(others):
    assert others.reasons("braintree_broken.csv") == {1: "BAD_AMOUNT", 2: "UNKNOWN_TYPE", 3: "MISSING_ID"}


def test_checkout_breakdown_fees_fx_and_payout_sum(others):
    rows = others.of("settlement-breakdown_ent_acme_20240611_0000000K3P9Q_1.csv")
    charge, fx, refund, chargeback, token_fee = rows
    assert (charge.amount_minor, charge.fee_minor, charge.net_minor) == (12000, 235, 11765)
    assert charge.fee_breakdown == {"processing": 120, "scheme_fees": 45, "interchange": 70}
    assert (fx.presentment_amount_minor, fx.presentment_currency, fx.fx_rate) == (5000, "USD", Decimal("0.923"))
    assert (refund.event_type, refund.net_minor, chargeback.event_type, chargeback.fee_minor) == (
        "refund", -3010, "chargeback", 1500)
    assert (token_fee.event_type, token_fee.net_minor) == ("fee", -5)
    payout, = others.of("payouts_ent_acme_20240611_20240612_1.csv")
    assert (payout.event_type, payout.amount_minor, payout.payout_ref) == ("payout", -9255, "0000000K3P9Q")
    assert sum(e.net_minor for e in rows) == -payout.net_minor and {e.payout_ref for e in rows} == {"0000000K3P9Q"}
    assert others.stats["payouts_ent_acme_20240611_20240612_1.csv"].control_totals_ok is True


def test_checkout_broken_row_and_payout_not_adding_up(others):
    assert others.reasons("settlement-breakdown_broken.csv") == {1: "INCONSISTENT_AMOUNTS"}
    assert len(others.of("settlement-breakdown_broken.csv")) == 4
    assert others.rejected["payouts_broken.csv"][0] == "CONTROL_TOTAL_MISMATCH"
