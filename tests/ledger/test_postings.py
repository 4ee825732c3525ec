"""Posting rules as a pure function on one hand-written day with every event type: every journal
balances per currency, each rule moves the accounts it should, FX differences are exact, duplicates
and notifications post nothing, the PSP receivable nets to the records not yet paid out; and the rate
card prices the synthetic generator's fees without a single false UNEXPECTED_FEE."""
from datetime import date, datetime, timedelta
from decimal import Decimal

import numpy as np
import pytest
import yaml
from pyspark.sql import functions as F

from jobs.ledger import fees
from jobs.ledger.adjustments import Adjustment
from jobs.ledger.chart import Chart
from jobs.ledger.fx import convert_minor
from jobs.ledger.postings import LedgerOptions, adjustment_lines, build_lines, payouts_of, posted_events
from jobs.schema import EVENT_SCHEMA
from jobs.tenants import parse_tenant
from jobs.settings import PACKAGE_DIR

pytestmark = pytest.mark.spark
D = date(2026, 11, 20)
T0 = datetime(2026, 11, 20, 9, 0)
CFG = parse_tenant((PACKAGE_DIR / "conf" / "tenants" / "acme.yaml").read_text())


def ev(eid, etype, amount, fee=0, source="stripe", kind="psp", ccy="EUR", payout=None, day=D, **kw):
    row = {f.name: None for f in EVENT_SCHEMA.fields}
    row.update(tenant_id="acme", ingest_date=day, event_id=eid, schema_version=2, source=source, source_kind=kind,
               format=kw.pop("format", f"{source}.test"), parser_version="1", event_type=etype,
               psp=source if kind == "psp" else None, amount_minor=amount, fee_minor=fee, net_minor=amount - fee,
               currency=ccy, payout_ref=payout, psp_ref=f"ref-{eid}", psp_line_id=f"line-{eid}", booked_at=T0,
               file_sha256="0" * 64, file_name=f"{source}.csv", record_ordinal=int("".join(filter(str.isdigit, eid))))
    row.update(kw)
    return row


ROWS = [
    ev("s1", "payment", 10000, 175, payout="po_1"),
    ev("s2", "payment", 2300, 83, payout="po_1", presentment_amount_minor=2000, presentment_currency="GBP",
       fx_rate=Decimal("1.15")),
    ev("s3", "refund", -3000, payout="po_1"),
    ev("s4", "chargeback", -5000, 1500, payout="po_1"),
    ev("s5", "chargeback_reversal", 5000, payout="po_1"),
    ev("s6", "fee", -120, payout="po_1"),
    ev("s7", "payment", 5000, 200),                                     # fee 200, rate card says 100
    ev("s8", "reserve_hold", -1000),
    ev("s9", "reserve_release", 400),
    ev("s10", "adjustment", -50, payout="po_1"),
    ev("s11", "payment", 8600, 154, payout="po_2"),
    ev("s12", "payment", 10000, 175, payout="po_1", psp_line_id="line-s1", file_name="stripe_again.csv"),  # repeat
    ev("s13", "chargeback", -5000, 1500, format="stripe.events"),       # webhook: lifecycle only
    ev("a1", "capture", 18000, 209, source="adyen", payout="7", payment_method="visastandardcredit",
       fee_breakdown={"interchange": 54, "scheme_fees": 37, "markup": 118}, presentment_amount_minor=20000,
       presentment_currency="USD", fx_rate=Decimal("0.9005")),
    ev("a2", "second_chargeback", -1000, 750, source="adyen", payout="7", fee_breakdown={"commission": 750}),
    ev("a3", "dispute_fee", -1500, source="adyen"),
    ev("a4", "transfer", -200, source="adyen", payout="7"),
    ev("a5", "payout", -15841, source="adyen", payout="7"),
    ev("b1", "bank_credit", 7372, source="bank", kind="bank"),
    ev("b2", "bank_credit", 777, source="bank", kind="bank"),
    ev("b3", "bank_credit", 15841, source="bank", kind="bank", day=D - timedelta(days=1)),
    ev("b4", "bank_credit", 9800, source="bank", kind="bank", ccy="USD", presentment_currency="EUR",
       fx_rate=Decimal("1.16")),
    ev("k1", "payment", 10000, source="book", kind="book"),
    # payouts whose rows arrive on different days: moved once in total, on the day the first rows came
    ev("c1", "payment", 1000, source="checkout", payout="po_9", day=D - timedelta(days=1)),
    ev("c2", "payout", -1000, source="checkout", payout="po_9"),
    ev("c3", "payout", -700, source="checkout", payout="po_8", day=D - timedelta(days=1)),
    ev("c4", "payment", 700, source="checkout", payout="po_8"),
]
PB = {"m_pb1": ["s1", "s2", "s3", "s4", "s5", "s6", "s10", "b1"], "m_pb2": ["s11", "b4"],
      "m_pb3": ["a1", "a2", "a4", "a5", "b3"]}
MATCHES = [(mid, "payout_bank", e, "bank" if e.startswith("b") else "psp", D) for mid, es in PB.items() for e in es] + \
          [("m_bp1", "book_psp", e, role, D) for e, role in (("k1", "book"), ("s1", "psp"))]


@pytest.fixture(scope="module")
def posted(spark_session):
    spark = spark_session
    events = spark.createDataFrame([tuple(r[f.name] for f in EVENT_SCHEMA.fields) for r in ROWS], EVENT_SCHEMA)
    matches = spark.createDataFrame(MATCHES, "match_id string, relation string, event_id string, role string, run_date date")
    chart = Chart.from_tenant(CFG)
    adjustment = Adjustment(41, "payment_fees", "unexpected_fees", "stripe", 100, "EUR", "s7", "stripe.csv#7", "confirmed")
    lines, checks = build_lines(events, matches, adjustment_lines(spark, chart, [adjustment]), D, chart,
                                fees.RateCard.from_tenant(CFG), LedgerOptions.from_tenant(CFG))
    return [r.asDict() for r in lines.collect()], [r.asDict() for r in checks.collect()]


def journal_of(lines, event_id):
    ids = {x["journal_id"] for x in lines if x["event_id"] == event_id and x["journal_type"] not in ("psp_payout", "adjustment")}
    assert len(ids) == 1, (event_id, ids)
    return sorted(((x["account"], x["debit_minor"], x["credit_minor"], x["currency"]) for x in lines
                   if x["journal_id"] in ids), key=lambda t: (t[3], t[0], t[1], t[2]))


def balance(lines, account, currency):
    return sum(x["debit_minor"] - x["credit_minor"] for x in lines if x["account"] == account and x["currency"] == currency)


def test_every_journal_balances_per_currency_and_every_type_posts(posted):
    lines, _ = posted
    sums = {}
    for x in lines:
        sums[(x["journal_id"], x["currency"])] = sums.get((x["journal_id"], x["currency"]), 0) + x["debit_minor"] - x["credit_minor"]
    assert sums and all(v == 0 for v in sums.values())
    assert all((x["debit_minor"] > 0) != (x["credit_minor"] > 0) for x in lines)
    types = {x["journal_type"] for x in lines}
    assert types == {"psp_payment", "psp_refund", "psp_chargeback", "psp_chargeback_reversal", "psp_fee", "psp_reserve_hold",
                     "psp_reserve_release", "psp_adjustment", "psp_capture", "psp_second_chargeback", "psp_dispute_fee",
                     "psp_transfer", "psp_payout", "bank_payout", "bank_unmatched", "suspense_reclass", "adjustment"}
    posted_events = {x["event_id"] for x in lines}
    assert not {"s12", "s13", "k1"} & posted_events         # a repeat, a webhook and a book row post nothing
    own = {x["event_id"]: x["journal_id"] for x in lines if x["journal_type"].startswith(("psp_", "bank_", "suspense"))
           and x["journal_type"] != "psp_payout"}
    assert len(set(own.values())) == len(own) == 16 + 4       # one journal per posted PSP record and bank entry
    entries = [(x["journal_id"], x["entry_no"]) for x in lines]
    assert len(entries) == len(set(entries))


def test_an_unbalanced_journal_fails_the_lines_with_its_id_and_difference(spark):
    """The balance is checked on each journal's row as the lines are computed (no aggregate of the day's
    lines): a journal whose legs do not sum to zero per currency fails the query, and ``post_day`` reports
    it as a LedgerError naming the tenant, the date, the journal and what it is off by."""
    from jobs.ledger import rules
    from jobs.ledger.postings import LedgerError, unbalanced_as_ledger_error
    from jobs.spark import local_frame

    events = spark.createDataFrame([tuple(r[f.name] for f in EVENT_SCHEMA.fields) for r in ROWS[:2]], EVENT_SCHEMA)
    matches = spark.createDataFrame([], "match_id string, relation string, event_id string, role string, run_date date")
    chart = Chart.from_tenant(CFG)
    schema = ("journal_id string, journal_type string, event_id string, match_id string, source_file_name string, "
              f"source_record_ordinal int, psp string, memo string, source_event_ids array<string>, legs array<{rules.LEG}>")
    legs = [(1, "adjustment", "payment_fees", 100, "EUR"), (2, "adjustment", "unexpected_fees", -95, "EUR"),
            (3, "adjustment", "payment_fees", 7, "GBP"), (4, "adjustment", "unexpected_fees", -7, "GBP")]
    bad = local_frame(spark, [("j-off", "adjustment", None, None, None, None, "stripe", "x", [], legs)], schema)
    lines, _ = build_lines(events, matches, bad, D, chart, fees.RateCard.from_tenant(CFG), LedgerOptions.from_tenant(CFG))
    with pytest.raises(LedgerError, match=r"^tenant acme, business date 2026-11-20: unbalanced journal j-off: "
                                          r"EUR off by 5$"):
        with unbalanced_as_ledger_error("acme", D):
            lines.collect()
    good = local_frame(spark, [("j-ok", "adjustment", None, None, None, None, "stripe", "x", [], legs[2:])], schema)
    lines, _ = build_lines(events, matches, good, D, chart, fees.RateCard.from_tenant(CFG), LedgerOptions.from_tenant(CFG))
    assert {r["journal_id"] for r in lines.collect()} >= {"j-ok"}


def test_rules_move_the_expected_accounts(posted):
    lines, _ = posted
    assert journal_of(lines, "s4") == sorted([
        ("1120 PSP receivable stripe", 0, 5000, "EUR"), ("6120 Chargeback losses", 5000, 0, "EUR"),
        ("1120 PSP receivable stripe", 0, 1500, "EUR"), ("6130 Dispute fees", 1500, 0, "EUR")],
        key=lambda t: (t[3], t[0], t[1], t[2]))
    assert ("6120 Chargeback losses", 0, 5000, "EUR") in journal_of(lines, "s5")
    assert ("4010 Refunds (contra revenue)", 3000, 0, "EUR") in journal_of(lines, "s3")
    assert ("1130 PSP reserve stripe", 1000, 0, "EUR") in journal_of(lines, "s8")
    assert ("1130 PSP reserve stripe", 0, 400, "EUR") in journal_of(lines, "s9")
    assert ("6130 Dispute fees", 1500, 0, "EUR") in journal_of(lines, "a3")
    assert ("1990 Suspense", 200, 0, "EUR") in journal_of(lines, "a4")
    assert ("6110 Payment fees", 120, 0, "EUR") in journal_of(lines, "s6")
    # an UNEXPECTED_FEE posts the rate-card fee as a fee and the variance to its own account
    assert journal_of(lines, "s7") == sorted([
        ("1120 PSP receivable stripe", 5000, 0, "EUR"), ("1210 Sales clearing", 0, 5000, "EUR"),
        ("6110 Payment fees", 100, 0, "EUR"), ("6140 Unexpected PSP fees", 100, 0, "EUR"),
        ("1120 PSP receivable stripe", 0, 200, "EUR")], key=lambda t: (t[3], t[0], t[1], t[2]))
    adj = [x for x in lines if x["journal_type"] == "adjustment"]
    assert {(x["account"], x["debit_minor"], x["credit_minor"]) for x in adj} == {
        ("6110 Payment fees", 100, 0), ("6140 Unexpected PSP fees", 0, 100)}
    # every fee component the PSP reports is its own line
    a1_fees = sorted((x["component"], x["debit_minor"]) for x in lines if x["event_id"] == "a1"
                     and x["account"] == "6110 Payment fees")
    assert a1_fees == [("fee.interchange", 54), ("fee.markup", 118), ("fee.scheme_fees", 37)]
    assert {x["match_id"] for x in lines if x["event_id"] == "s1" and x["journal_type"] == "psp_payment"} == {"m_bp1"}


def test_fx_differences_are_exact_in_minor_units(posted):
    lines, _ = posted
    assert journal_of(lines, "s2") == sorted([
        ("1120 PSP receivable stripe", 2300, 0, "EUR"), ("1290 FX conversion", 0, 2300, "EUR"),
        ("1290 FX conversion", 2000, 0, "GBP"), ("1210 Sales clearing", 0, 2000, "GBP"),
        ("6110 Payment fees", 83, 0, "EUR"), ("1120 PSP receivable stripe", 0, 83, "EUR")],
        key=lambda t: (t[3], t[0], t[1], t[2]))
    assert convert_minor(20000, "USD", Decimal("0.9005"), "EUR") == 18010          # Adyen: 18000 booked
    assert ("7910 FX gain/loss", 10, 0, "EUR") in journal_of(lines, "a1")           # a loss of 0.10
    assert convert_minor(8446, "EUR", Decimal("1.16"), "USD") == 9797              # 9797.36, half-even
    assert journal_of(lines, "b4") == sorted([
        ("1010 Bank", 9800, 0, "USD"), ("1290 FX conversion", 0, 9797, "USD"), ("7910 FX gain/loss", 0, 3, "USD"),
        ("1290 FX conversion", 8446, 0, "EUR"), ("1125 PSP payouts in transit stripe", 0, 8446, "EUR")],
        key=lambda t: (t[3], t[0], t[1], t[2]))
    assert convert_minor(25, "EUR", Decimal("0.5"), "EUR") == 12 and convert_minor(35, "EUR", Decimal("0.5"), "EUR") == 18


def test_payouts_banks_and_the_receivable_nets_to_what_is_not_paid_out(posted):
    lines, _ = posted
    payout = [x for x in lines if x["journal_type"] == "psp_payout" and x["psp"] == "stripe" and x["debit_minor"] == 7372]
    assert len(payout) == 1 and payout[0]["match_id"] == "m_pb1"
    # the journal names its payout and match, not a list of the payout's records (millions for a big payout)
    assert payout[0]["memo"] == "stripe payout po_1" and payout[0]["source_event_ids"] is None
    adyen = [x for x in lines if x["journal_type"] == "psp_payout" and x["psp"] == "adyen"]
    assert {x["event_id"] for x in adyen} == {"a5"} and {x["debit_minor"] + x["credit_minor"] for x in adyen} == {15841}
    assert ("1990 Suspense", 0, 777, "EUR") in journal_of(lines, "b2")
    assert journal_of(lines, "b3") == [("1125 PSP payouts in transit adyen", 0, 15841, "EUR"), ("1990 Suspense", 15841, 0, "EUR")]
    # open (unpaid-out) items: s7 (5000 - 200), s8 (-1000), s9 (+400); adyen a3 (-1500)
    assert balance(lines, "1120 PSP receivable stripe", "EUR") == 4800 - 1000 + 400
    assert balance(lines, "1120 PSP receivable adyen", "EUR") == -1500
    assert balance(lines, "1125 PSP payouts in transit stripe", "EUR") == 0
    assert balance(lines, "1125 PSP payouts in transit adyen", "EUR") == 0
    assert balance(lines, "1010 Bank", "EUR") == 7372 + 777 and balance(lines, "1010 Bank", "USD") == 9800
    # checkout: po_9's transactions were moved on D-1 and its payout row adds nothing; po_8's payout row
    # moved -700 on D-1 and its transaction (posted on D) completes it: no payout journal on D
    assert not [x for x in lines if x["journal_type"] == "psp_payout" and x["psp"] == "checkout"]
    assert balance(lines, "1120 PSP receivable checkout", "EUR") == 700


def test_notification_formats_are_the_tenants_setting_the_one_matching_reads(spark):
    """A webhook chargeback (stripe.events) announces the report's chargeback: with the tenant's
    ``notification_formats`` it never posts; a tenant whose only Stripe feed is the webhooks (setting
    unset) posts it. The repeat delivery of s1 posts nothing either way."""
    events = spark.createDataFrame([tuple(r[f.name] for f in EVENT_SCHEMA.fields) for r in ROWS], EVENT_SCHEMA)
    opts = LedgerOptions.from_tenant(CFG)
    assert opts.notification_formats == ("stripe.events",)
    posted = lambda formats: {r.event_id for r in posted_events(events, D, "psp", formats).collect()}  # noqa: E731
    with_setting, without = posted(opts.notification_formats), posted(())
    assert "s13" not in with_setting and without - with_setting == {"s13"}
    assert "s12" not in without and {"s1", "s4", "a5"} <= with_setting
    raw = yaml.safe_load((PACKAGE_DIR / "conf" / "tenants" / "acme.yaml").read_text())
    for psp in raw["psps"].values():
        psp.pop("notification_formats", None)
    assert LedgerOptions.from_tenant(parse_tenant(yaml.safe_dump(raw))).notification_formats == ()


def test_a_payout_is_moved_once_whatever_day_its_rows_arrive(spark):
    events = spark.createDataFrame([tuple(r[f.name] for f in EVENT_SCHEMA.fields) for r in ROWS], EVENT_SCHEMA)
    no_match = spark.createDataFrame([], "event_id string, match_id string")
    moved = lambda day: {(r.memo.split()[-1], r.payout_minor) for r in payouts_of(  # noqa: E731
        events, posted_events(events, day, "psp", ()), no_match, day, ()).filter(F.col("psp") == "checkout").collect()}
    assert moved(D - timedelta(days=1)) == {("po_9", 1000), ("po_8", 700)}     # the transaction, the payout row
    assert moved(D) == {("po_9", 0), ("po_8", 0)}                              # nothing more to move


def test_fee_checks_flag_only_the_real_variance(posted):
    _, checks = posted
    flagged = {(c["event_id"], c["component"], c["variance_minor"]) for c in checks if c["status"] == "UNEXPECTED_FEE"}
    assert flagged == {("s7", "fee", 100)}
    by = {(c["event_id"], c["component"]): c for c in checks}
    assert by[("s2", "fee")]["rule_id"] == "stripe.card.cross_currency" and by[("s2", "fee")]["expected_minor"] == 83
    assert by[("a2", "commission")]["status"] == "OK" and by[("s4", "fee")]["rule_id"] == "stripe.dispute"


def test_rate_card_accepts_every_fee_the_generator_charges(spark):
    """The generator's fee formulas (jobs/generate/adyen.py ``_fees``, Stripe in jobs/generate/stripe.py)
    over amounts from 0.86 to 4899.99 and every payment method: the acme rate card flags none."""
    from jobs.generate import adyen
    from jobs.generate.adyen_file import VARIANTS

    rng = np.random.default_rng(5)
    g = np.concatenate([np.arange(86, 400), rng.integers(400, 490_000, 600)])
    method = np.arange(len(g)) % 4

    class P:                                          # the one Payments attribute _fees reads
        pass
    P.method = method
    commission, markup, scheme, interchange = adyen._fees(P, np.arange(len(g)), g)
    rows = []
    for i, gross in enumerate(g.tolist()):
        parts = {"commission": commission[i], "markup": markup[i], "scheme_fees": scheme[i], "interchange": interchange[i]}
        parts = {k: int(v) for k, v in parts.items() if v}
        rows.append(ev(f"a{i}", "capture", gross, sum(parts.values()), source="adyen", payment_method=VARIANTS[method[i]],
                       fee_breakdown=parts))
        fx = i % 2 == 1                               # stripe.build: (gross * (25 if fx else 15) + 500) // 1000 + 25
        rows.append(ev(f"s{i}", "payment", gross, (gross * (25 if fx else 15) + 500) // 1000 + 25,
                       presentment_currency="GBP" if fx else "EUR", presentment_amount_minor=gross))
    rows += [ev("r1", "refund", -500, adyen.REFUND_COMMISSION, source="adyen", fee_breakdown={"commission": 10}),
             ev("c1", "chargeback", -500, adyen.CHARGEBACK_COMMISSION, source="adyen", fee_breakdown={"commission": 750})]
    df = spark.createDataFrame([tuple(r[f.name] for f in EVENT_SCHEMA.fields) for r in rows], EVENT_SCHEMA)
    statuses = fees.check(df, fees.RateCard.from_tenant(CFG)).groupBy("status").count().collect()
    assert {r["status"]: r["count"] for r in statuses}.keys() == {"OK"}
