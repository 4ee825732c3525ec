"""The matching levels as pure DataFrame functions, on small hand-written cases, plus properties:
shuffled input gives identical matches, and no record is in two matches of one relation."""
import hashlib
import random
from datetime import date, datetime, timedelta

import pytest
from pyspark.sql import functions as F

from jobs.match import book_psp, payout_bank
from jobs.match.refs import member_set_id, member_set_id_of
from jobs.match.rules import DEFAULT_EXTRACTORS, Extractor, MatchRules

pytestmark = pytest.mark.spark
T0 = datetime(2026, 11, 18, 10, 0, 0)
RULES = MatchRules(rule_set_id="default", version=3, levels=(1, 2, 3, 4), tolerance_abs_minor=1, tolerance_bps=0,
                   date_window_days=5, payout_window_days=3, reference_prefixes=("ORDER",), ageing_book_psp_days=3,
                   ageing_payout_days=2,
                   extractors=tuple(Extractor.parse(p, "default") for p in DEFAULT_EXTRACTORS))
SCHEMA = ("event_id string, ingest_date date, source string, source_kind string, event_type string, psp string, "
          "amount_minor long, fee_minor long, net_minor long, currency string, presentment_amount_minor long, "
          "presentment_currency string, psp_ref string, psp_payment_ref string, psp_line_id string, "
          "merchant_ref string, merchant_payment_id string, payout_ref string, payout_bank_ref string, bank_ref string, "
          "bank_text string, account_ref string, booked_at timestamp, value_date date, description string, file_name string, "
          "record_ordinal int, relation string")


def book(eid, amount, ccy="EUR", ref=None, mref=None, at=T0, etype="payment", psp="stripe", desc=None, text=None):
    return dict(event_id=eid, source="book", source_kind="book", event_type=etype, psp=psp, amount_minor=amount,
                fee_minor=0, net_minor=amount, currency=ccy, psp_ref=ref, merchant_ref=mref, merchant_payment_id=eid,
                booked_at=at, description=desc, bank_text=text, file_name="book.csv", relation="book_psp")


def psp(eid, amount, ccy="EUR", ref=None, mref=None, at=T0, etype="payment", pay_ref=None, pres=None, source="stripe",
        payout=None, fee=0, relation="book_psp", desc=None, text=None):
    row = dict(event_id=eid, source=source, source_kind="psp", event_type=etype, psp=source, amount_minor=amount,
               fee_minor=fee, net_minor=amount - fee, currency=ccy, psp_ref=ref, psp_payment_ref=pay_ref or ref,
               psp_line_id=f"line-{eid}", merchant_ref=mref, payout_ref=payout, booked_at=at, description=desc,
               bank_text=text, file_name="psp.csv", relation=relation)
    if pres:
        row.update(presentment_amount_minor=pres[0], presentment_currency=pres[1])
    return row


def bank(eid, amount, ccy="EUR", text="", day=date(2026, 11, 20)):
    return dict(event_id=eid, source="bank", source_kind="bank", event_type="bank_credit", amount_minor=amount,
                fee_minor=0, net_minor=amount, currency=ccy, bank_text=text, value_date=day,
                booked_at=datetime(day.year, day.month, day.day), file_name="camt.xml", relation="payout_bank")


def frame(spark, rows):
    cols = [c.split()[0] for c in SCHEMA.split(", ")]
    full = [{**{c: None for c in cols}, "ingest_date": date(2026, 11, 20), "record_ordinal": i + 1, **r}
            for i, r in enumerate(rows)]
    return spark.createDataFrame([tuple(r[c] for c in cols) for r in full], SCHEMA)


def groups(result):
    """{frozenset(event ids): (level, rule_id)} of the matches."""
    out = {}
    for r in result.matches.groupBy("match_id", "level", "rule_id").agg(F.collect_set("event_id").alias("ids")).collect():
        out[frozenset(r.ids)] = (r.level, r.rule_id)
    return out


def flags(result):
    return {(r.event_id, r.reason_code) for r in result.flags.collect()}


def run(spark, rows, population=None, forbidden=None):
    items = frame(spark, rows)
    pop = book_psp.population_amounts(items) if population is None else population
    return book_psp.match(items, RULES, pop, forbidden)


def test_level1_exact_psp_id_currency_and_amount(spark):
    result = run(spark, [book("b1", 1000, ref="ch_1"), psp("p1", 1000, ref="ch_1"), psp("p2", 1000, ref="ch_2")])
    assert groups(result) == {frozenset({"b1", "p1"}): (1, "default.L1.exact_psp_id")}
    assert result.matches.filter("event_id = 'b1'").first().rule_id == "default.L1.exact_psp_id"


def test_level1_compares_the_presentment_amount_when_the_psp_settled_in_another_currency(spark):
    result = run(spark, [book("b1", 2000, "USD", ref="8815"), psp("p1", 1800, "EUR", ref="8815", pres=(2000, "USD"))])
    assert groups(result) == {frozenset({"b1", "p1"}): (1, "default.L1.exact_psp_id")}


def test_level2_normalised_merchant_reference(spark):
    result = run(spark, [book("b1", 500, mref=" order #ord-0042 "), psp("p1", 500, ref="ch_9", mref="ORD-0042")])
    assert groups(result) == {frozenset({"b1", "p1"}): (2, "default.L2.merchant_reference")}


def test_level3_tolerance_within_one_minor_unit_with_evidence(spark):
    result = run(spark, [book("b1", 10001, ref="ch_1"), psp("p1", 10000, ref="CH_1 ", at=T0 + timedelta(hours=2))])
    assert groups(result) == {frozenset({"b1", "p1"}): (3, "default.L3.tolerance")}
    evidence = result.matches.first().evidence
    assert '"amount_diff_minor":-1' in evidence and '"psp_ref"' in evidence


def test_amount_and_currency_mismatches_flag_both_records_and_do_not_match(spark):
    result = run(spark, [book("b1", 10000, ref="ch_1"), psp("p1", 9000, ref="ch_1"),
                         book("b2", 500, "USD", ref="ch_2"), psp("p2", 500, "EUR", ref="ch_2")])
    assert groups(result) == {}
    assert flags(result) == {("b1", "AMOUNT_MISMATCH"), ("p1", "AMOUNT_MISMATCH"),
                             ("b2", "CURRENCY_MISMATCH"), ("p2", "CURRENCY_MISMATCH")}


def test_equally_good_candidates_are_ambiguous_never_guessed(spark):
    result = run(spark, [book("b1", 700, mref="ORD-7", at=T0), psp("p1", 700, mref="ORD-7", at=T0 + timedelta(minutes=5)),
                         psp("p2", 700, mref="ORD-7", at=T0 - timedelta(minutes=5))])
    assert groups(result) == {}
    detail = result.flags.filter("event_id = 'b1'").first()
    assert detail.reason_code == "AMBIGUOUS" and "psp.csv#2" in detail.reason_detail and "psp.csv#3" in detail.reason_detail


def test_a_strictly_better_candidate_wins_deterministically(spark):
    result = run(spark, [book("b1", 700, mref="ORD-7", at=T0), psp("p1", 700, mref="ORD-7", at=T0 + timedelta(minutes=5)),
                         psp("p2", 700, mref="ORD-7", at=T0 + timedelta(hours=20))])
    assert groups(result) == {frozenset({"b1", "p1"}): (3, "default.L3.tolerance")}


def test_level4_split_capture_groups_the_captures_with_the_book_payment(spark):
    result = run(spark, [book("b1", 10000, ref="PSP1"), psp("c1", 6000, ref="PSP1", etype="capture"),
                         psp("c2", 4000, ref="PSP1", etype="capture")])
    assert groups(result) == {frozenset({"b1", "c1", "c2"}): (4, "default.L4.split_capture")}


def test_reference_less_match_needs_a_distinctive_amount_and_minutes(spark):
    rows = [book("b1", 512345, at=T0), psp("p1", 512345, ref="ch_x", at=T0 + timedelta(minutes=2)),
            book("b2", 300, at=T0), psp("p2", 300, ref="ch_y", at=T0 + timedelta(minutes=2)),
            psp("p3", 300, ref="ch_z", at=T0 + timedelta(days=1), relation="other")]
    items = frame(spark, rows)
    result = book_psp.match(items.filter("relation = 'book_psp'"), RULES, book_psp.population_amounts(items))
    assert groups(result) == {frozenset({"b1", "p1"}): (3, "default.L3.amount_time")}


def test_forbidden_pairs_are_never_proposed_again(spark):
    forbidden = spark.createDataFrame([("b1", "p1")], "b_id string, p_id string")
    result = run(spark, [book("b1", 1000, ref="ch_1"), psp("p1", 1000, ref="ch_1")], forbidden=forbidden)
    assert groups(result) == {}


def test_a_forbidden_pair_leaves_its_records_free_to_pair_with_another_of_their_key(spark):
    forbidden = spark.createDataFrame([("b1", "p1")], "b_id string, p_id string")
    result = run(spark, [book("b1", 1000, ref="ch_1"), psp("p1", 1000, ref="ch_1", fee=1),
                         psp("p2", 1000, ref="ch_1", fee=2)], forbidden=forbidden)
    assert groups(result) == {frozenset({"b1", "p2"}): (1, "default.L1.exact_psp_id")}


def test_exact_levels_by_key_counts_accept_what_the_join_and_unique_pairs_accept(spark):
    """``assign.unique_by_key`` (one aggregate over both sides' keys) against the definition it replaces: the
    equi-join's pairs, less the forbidden ones, kept where both records have no other candidate. Random
    sides over a small key domain (many ties, nulls), with and without forbidden pairs."""
    from jobs.match.assign import unique_by_key, unique_pairs

    rng = random.Random(11)
    pick = lambda xs: rng.choice(xs)  # noqa: E731
    def side(prefix, n):
        return [(f"{prefix}{i}", pick(["r1", "r2", "r3", "r4", None]), pick(["payment", "refund"]),
                 pick(["EUR", "USD"]), pick([100, 200, None])) for i in range(n)]
    keys = [("b_ref", "p_ref"), ("b_kind", "p_kind"), ("b_currency", "p_currency"), ("b_amount", "p_amount")]
    b = spark.createDataFrame(side("b", 60), "b_id string, b_ref string, b_kind string, b_currency string, b_amount long")
    p = spark.createDataFrame(side("p", 60), "p_id string, p_ref string, p_kind string, p_currency string, p_amount long")
    joined = b.join(p, [F.col(x) == F.col(y) for x, y in keys], "inner").select("b_id", "p_id")
    candidates = sorted((r.b_id, r.p_id) for r in joined.collect())
    assert len(candidates) > 20
    for forbid in ([], rng.sample(candidates, 8)):
        forbidden = spark.createDataFrame(forbid, "b_id string, p_id string") if forbid else None
        allowed = joined if forbidden is None else joined.join(forbidden, ["b_id", "p_id"], "left_anti")
        want = {(r.b_id, r.p_id) for r in unique_pairs(allowed).collect()}
        got = {(r.b_id, r.p_id) for r in unique_by_key(b, p, keys, forbidden).collect()}
        assert got == want and want


def _payout_items(spark, bank_rows):
    rows = [psp("c1", 10000, ref="ch_1", payout="po_ABCDEF1", fee=300, relation="payout_bank"),
            psp("r1", -2000, ref="re_1", etype="refund", payout="po_ABCDEF1", relation="payout_bank"),
            psp("f1", -120, etype="fee", payout="po_ABCDEF1", relation="payout_bank")] + bank_rows
    for r in rows[:3]:
        r["value_date"] = date(2026, 11, 20)
    return frame(spark, rows)


def test_payout_matches_its_bank_credit_by_reference_with_every_record(spark):
    result, open_payouts = payout_bank.match(_payout_items(spark, [bank("k1", 7580, text="STRIPE PO_ABCDEF1 ACME")]), RULES)
    assert groups(result) == {frozenset({"k1", "c1", "r1", "f1"}): (4, "default.L4.payout_reference")}
    assert open_payouts.count() == 0
    assert {r.match_id for r in result.matches.collect()} == {member_set_id_of("payout_bank", ["c1", "f1", "k1", "r1"])}


def test_a_group_id_depends_on_its_members_only_not_on_their_order_or_partitioning(spark):
    """The payout group's id is an aggregate (count and sum of 64-bit sha256 prefixes), computed without
    a list of the members; Python recomputes it (an auditor can too), prefixes of 2^63 and more included."""
    ids = [f"e{i}" for i in range(300)]
    assert any(int(hashlib.sha256(e.encode()).hexdigest()[:16], 16) >= 2 ** 63 for e in ids)
    rows = [("g1" if i % 3 else "g2", e) for i, e in enumerate(ids)]
    df = spark.createDataFrame(rows, "g string, event_id string")
    got = lambda d: {r.g: r.id for r in d.groupBy("g").agg(member_set_id("payout_bank", F.col("event_id")).alias("id"))  # noqa: E731
                     .collect()}
    first = got(df.coalesce(1))
    assert first == got(df.repartition(7)) == got(spark.createDataFrame(list(reversed(rows)), df.schema))
    assert first == {g: member_set_id_of("payout_bank", [e for k, e in rows if k == g]) for g in ("g1", "g2")}
    assert member_set_id_of("payout_bank", ids[:2]) != member_set_id_of("payout_bank", ids[:3])


def test_payout_whose_bank_credit_differs_is_a_payout_mismatch_not_a_match(spark):
    result, open_payouts = payout_bank.match(_payout_items(spark, [bank("k1", 7500, text="po_ABCDEF1")]), RULES)
    assert groups(result) == {}
    assert flags(result) == {("k1", "PAYOUT_MISMATCH")}
    assert open_payouts.first().po_mismatched is True


def test_payout_without_reference_matches_on_amount_and_value_date(spark):
    result, _ = payout_bank.match(_payout_items(spark, [bank("k1", 7580, text="SEPA CREDIT", day=date(2026, 11, 21)),
                                                        bank("k2", 7580, text="SEPA CREDIT", day=date(2026, 12, 9))]), RULES)
    assert groups(result) == {frozenset({"k1", "c1", "r1", "f1"}): (4, "default.L4.payout_amount_date")}


def _random_rows(seed: int, n: int = 60):
    rnd = random.Random(seed)
    rows = []
    for i in range(n):
        amount = rnd.choice([1000, 1000, 2500, 777, 10000 + i])
        ref = f"ch_{i}" if rnd.random() < 0.7 else None
        mref = f"ORD-{i % 45}"                                  # some orders shared -> competition
        at = T0 + timedelta(minutes=rnd.randint(0, 600))
        rows.append(book(f"b{i}", amount + rnd.choice([0, 0, 0, 1]), ref=ref, mref=mref, at=at))
        if rnd.random() < 0.9:
            rows.append(psp(f"p{i}", amount, ref=f"ch_{i}" if rnd.random() < 0.8 else f"CH_{i}", mref=mref,
                            at=at + timedelta(minutes=rnd.randint(0, 30))))
    return rows


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_shuffled_input_gives_identical_matches_and_no_record_is_matched_twice(spark, seed):
    rows = _random_rows(seed)
    first = run(spark, rows)
    shuffled = list(rows)
    random.Random(seed + 100).shuffle(shuffled)
    items = frame(spark, shuffled).repartition(5)
    second = book_psp.match(items, RULES, book_psp.population_amounts(items))
    members = lambda r: sorted((m.match_id, m.event_id, m.level) for m in r.matches.collect())  # noqa: E731
    assert members(first) == members(second)
    assert sorted(flags(first)) == sorted(flags(second))
    ids = [m[1] for m in members(first)]
    assert len(ids) == len(set(ids)), "a record takes part in at most one match per relation"
    assert len(ids) > 40


def test_the_same_matches_whether_intermediate_results_stay_in_the_driver_or_are_checkpointed(spark):
    """``lake.small_data`` (a small run's intermediate results as rows in the driver) against checkpoints
    (a large run): the same members, evidence and flags, for both relations."""
    from jobs import lake

    rows = _random_rows(4, 80)
    payouts = [psp("c1", 5000, source="stripe", payout="po_1", relation="payout_bank"),
               psp("c2", 2580, source="stripe", payout="po_1", relation="payout_bank"),
               psp("c3", 4000, source="stripe", payout="po_2", relation="payout_bank"),
               bank("k1", 7580, text="STRIPE PO_1 ACME"), bank("k2", 4000, text="SEPA CREDIT", day=date(2026, 11, 21)),
               bank("k3", 999, text="po_2")]
    outcome = {}
    for in_driver in (True, False):
        with lake.small_data(in_driver):
            items = frame(spark, rows + payouts)
            bp = book_psp.match(items.filter("relation = 'book_psp'"), RULES, book_psp.population_amounts(items))
            pb, open_payouts = payout_bank.match(items.filter("relation = 'payout_bank'"), RULES)
            outcome[in_driver] = [sorted(tuple(r) for r in df.collect())
                                  for df in (bp.matches, bp.flags, pb.matches, pb.flags, open_payouts)]
    assert outcome[True] == outcome[False]
    assert len(outcome[True][0]) > 40 and outcome[True][2], "both relations matched something"
