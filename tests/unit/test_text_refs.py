"""References found in free text (matching level L2 ``text_reference``): the tenant's extractors, the
normalisation both sides share, and how such a reference is weighed against reference fields. Items are
built like those of ``test_matching``; the rules carry the default extractors (the ones acme.yaml lists)."""
import json
import re
from datetime import timedelta

import pytest
import yaml
from pyspark.sql import functions as F

from jobs.match import book_psp
from jobs.match.rules import DEFAULT_EXTRACTORS, Extractor, MatchRules
from jobs.settings import ConfigurationError, PACKAGE_DIR
from jobs.tenants import parse_tenant
from test_matching import RULES, T0, book, flags, frame, groups, psp, run

TEXT = "default.L2.text_reference"


def evidence_of(result, event_id):
    return json.loads(result.matches.filter(F.col("event_id") == event_id).first().evidence)


# --------------------------------------------------------------------------------------- configuration
def tenant(extractors=None, prefixes=None):
    raw = yaml.safe_load((PACKAGE_DIR / "conf" / "tenants" / "acme.yaml").read_text())
    conf = raw["matching"].setdefault("text_references", {})
    for key, value in (("extractors", extractors), ("prefixes", prefixes)):
        if value is not None:
            conf[key] = value
    return parse_tenant(yaml.safe_dump(raw))


def test_acme_configures_the_default_extractors_and_unset_means_the_defaults():
    assert [x.pattern for x in MatchRules.from_tenant(tenant()).extractors] == list(DEFAULT_EXTRACTORS)
    raw = yaml.safe_load((PACKAGE_DIR / "conf" / "tenants" / "acme.yaml").read_text())
    del raw["matching"]["text_references"]
    unset = MatchRules.from_tenant(parse_tenant(yaml.safe_dump(raw)))
    assert [x.pattern for x in unset.extractors] == list(DEFAULT_EXTRACTORS)
    assert MatchRules.from_tenant(tenant(extractors=[])).extractors == ()


@pytest.mark.parametrize("pattern, message", [
    (r"(?i)order\s*#?(\d{4,})", r"extractors\[1\]: .* has no named group \(\?P<ref>\.\.\.\)"),
    (r"(?i)order\s*#?(?P<ref>\d{4,}", r"extractors\[1\]: .* does not compile: missing \), unterminated subpattern"),
    (r"(?P<ref>\d+)(?P<the_year>/\d{4})", r"extractors\[1\]: .* Java regular expressions lack"),
    (r"(?P<ref>\d+)(?(ref)x|y)", r"extractors\[1\]: .* Java regular expressions lack"),
    (42, r"extractors\[1\]: expected a regular expression, got 42"),
])
def test_a_bad_extractor_is_refused_with_a_one_line_error(pattern, message):
    with pytest.raises(ConfigurationError) as err:
        MatchRules.from_tenant(tenant(extractors=[DEFAULT_EXTRACTORS[0], pattern]))
    text = str(err.value)
    assert "\n" not in text and text.startswith("tenant acme: matching.text_references.extractors[1]")
    assert re.search(message, text), text


def test_bad_prefixes_are_refused():
    with pytest.raises(ConfigurationError, match=r"text_references.prefixes: expected a list"):
        MatchRules.from_tenant(tenant(prefixes=["ORD-"]))


def test_python_named_groups_and_back_references_become_java_syntax():
    x = Extractor.parse(r"(?P<ref>\d{4})-(?P=ref)\(?P<lit>\)", "t")
    assert x.java_pattern == r"(?<ref>\d{4})-\k<ref>\(?P<lit>\)" and x.group == 1
    assert Extractor.parse(r"(a)(?:b)(?P<ref>c)", "t").group == 2


# ------------------------------------------------------------------------------------------- extraction
EXTRACTED = [
    # free text                                     -> reference cores the default extractors find
    ("Order #240133", ["240133"]),
    ("ACME order 240133", ["240133"]),
    ("order no. 0240133, 2 item(s)", ["240133"]),
    ("Invoice INV-0042 / 2026", ["42"]),
    ("Invoice INV-26111800000123/2026", ["26111800000123"]),
    ("Payment for ORD-26111800000123", ["26111800000123"]),
    ("Order #261118****0123", ["2611180123"]),                 # a Luhn-valid order number, masked everywhere
    ("Order ORD-240133, 1 item(s)", ["240133"]),
    # digits that are not an order reference
    ("Visa 424242******4242", []),
    ("Card 424242******4242, order pending", []),
    ("paid 2026-11-18 10:00", []),
    ("order of 2026-11-18", []),
    ("Order 2026-11-18", []),
    ("Order total 1234.56 EUR", []),
    ("Reorder 123456", []),
    ("ch_3PxY26111800000123", []),
    ("WORD-240133", []),
    ("Invoice 12/2026", []),
    (None, []),
]


@pytest.mark.spark
def test_default_extractors_find_order_references_and_nothing_else(spark):
    rows = [book(f"b{i}", 100, desc=text) for i, (text, _) in enumerate(EXTRACTED)]
    side = book_psp._side(frame(spark, rows), "book", "b", RULES)
    found = {}
    for r in book_psp.reference_keys(side, "b", "book", RULES).filter("b_in_text").collect():
        found.setdefault(r.b_id, []).append(r.b_key)
    assert {EXTRACTED[int(k[1:])][0]: sorted(v) for k, v in found.items()} == {
        text: keys for text, keys in EXTRACTED if keys}


@pytest.mark.spark
def test_spark_captures_what_python_captures_with_the_configured_pattern(spark):
    """A tenant writes and tries the patterns in Python syntax; Spark runs the Java translation."""
    texts = spark.createDataFrame([(t,) for t, _ in EXTRACTED if t], "t string")
    for x in RULES.extractors:
        got = {r.t: r.refs for r in texts.select("t", F.regexp_extract_all("t", F.lit(x.java_pattern), x.group)
                                                 .alias("refs")).collect()}
        assert got == {t: [m.group("ref") for m in re.finditer(x.pattern, t)] for t in got}, x.pattern


# ------------------------------------------------------------------------------------------------ matching
@pytest.mark.spark
@pytest.mark.parametrize("book_ref, psp_text, source, reference", [
    ("ORD-240133", dict(desc="Order #240133"), "psp.description", "240133"),
    ("ord-0240133", dict(desc="ACME order 240133"), "psp.description", "240133"),
    ("ORD-26111800000123", dict(desc="Invoice INV-26111800000123 / 2026"), "psp.description", "26111800000123"),
    ("ORD-261118****0123", dict(desc="Order #261118****0123"), "psp.description", "2611180123"),
    ("ORDER ORD-240133", dict(text="SEPA ACME ORDER 240133"), "psp.bank_text", "240133"),
])
def test_a_reference_in_free_text_matches_at_l2_and_the_evidence_says_where(spark, book_ref, psp_text, source,
                                                                             reference):
    result = run(spark, [book("b1", 1250, mref=book_ref), psp("p1", 1250, ref="ch_1", **psp_text),
                         book("b2", 990, mref="ORD-999999"),
                         psp("p2", 990, ref="ch_2", desc="Order #999998", at=T0 + timedelta(hours=3))])
    assert groups(result) == {frozenset({"b1", "p1"}): (2, TEXT)}
    evidence = evidence_of(result, "p1")
    assert evidence["ref_source"] == source and evidence["reference"] == reference
    assert evidence["book_ref_source"] == "book.merchant_ref" and evidence["psp_ref_source"] == source
    assert evidence["agreed"] == ["reference_in_text", "currency", "amount"]


@pytest.mark.spark
def test_a_reference_in_the_book_description_matches_the_psp_field(spark):
    result = run(spark, [book("b1", 700, desc="Order #777777, 1 item(s)"), psp("p1", 700, ref="ch_1", mref="ORD-777777")])
    assert groups(result) == {frozenset({"b1", "p1"}): (2, TEXT)}
    assert evidence_of(result, "b1")["ref_source"] == "book.description"


@pytest.mark.spark
def test_the_same_reference_in_two_psp_rows_is_ambiguous_never_a_match(spark):
    result = run(spark, [book("b1", 1000, mref="ORD-240133"),
                         psp("p1", 1000, ref="ch_1", desc="Order #240133"),
                         psp("p2", 1000, ref="ch_2", desc="ACME order 240133", at=T0 + timedelta(minutes=3))])
    assert groups(result) == {}
    assert flags(result) == {("b1", "AMBIGUOUS")}
    detail = result.flags.first().reason_detail
    assert "reference 240133" in detail and "psp.csv#2" in detail and "psp.csv#3" in detail


@pytest.mark.spark
def test_a_text_reference_naming_two_book_rows_flags_both_book_rows(spark):
    result = run(spark, [book("b1", 1000, mref="ORD-5151"), book("b2", 1000, mref="#5151"),
                         psp("p1", 1000, ref="ch_1", desc="Order #5151")])
    assert groups(result) == {}
    assert flags(result) == {("b1", "AMBIGUOUS"), ("b2", "AMBIGUOUS")}
    assert "book.csv#2" in result.flags.filter("event_id = 'b1'").first().reason_detail


@pytest.mark.spark
def test_a_reference_field_wins_over_a_reference_in_text(spark):
    later = T0 + timedelta(hours=3)                  # beyond the reference-less rule's minutes
    rows = [book("b1", 1000, mref="ORD-5555"), psp("p1", 1000, ref="ch_1", mref="ORD-5555"),
            psp("p2", 1000, ref="ch_2", desc="Order #5555", at=later)]
    result = run(spark, rows)
    assert groups(result) == {frozenset({"b1", "p1"}): (2, "default.L2.merchant_reference")}
    assert flags(result) == set()
    # the field pair disagrees on the amount: it is the mismatch, the text reference is not used instead
    rows[1] = psp("p1", 900, ref="ch_1", mref="ORD-5555")
    result = run(spark, rows)
    assert groups(result) == {}
    assert flags(result) == {("b1", "AMOUNT_MISMATCH"), ("p1", "AMOUNT_MISMATCH")}
    assert "linked by merchant_ref" in result.flags.filter("event_id = 'b1'").first().reason_detail


@pytest.mark.spark
def test_amount_and_currency_differences_of_a_text_linked_pair_are_reported_on_both_records(spark):
    result = run(spark, [book("b1", 10000, mref="ORD-1111"), psp("p1", 9000, ref="ch_1", desc="Order #1111"),
                         book("b2", 500, "USD", mref="ORD-2222"),
                         psp("p2", 500, "EUR", ref="ch_2", desc="Invoice INV-2222 / 2026"),
                         book("b3", 300, mref="ORD-3333"), psp("p3", 300, ref="ch_3", desc="Order #3333")])
    assert groups(result) == {frozenset({"b3", "p3"}): (2, TEXT)}
    assert flags(result) == {("b1", "AMOUNT_MISMATCH"), ("p1", "AMOUNT_MISMATCH"),
                             ("b2", "CURRENCY_MISMATCH"), ("p2", "CURRENCY_MISMATCH")}
    details = {r.event_id: r.reason_detail for r in result.flags.collect()}
    assert details["b1"] == ("PSP - book = -1000 minor units (linked by reference 1111 in psp.description); "
                             "PSP record psp.csv#2")
    assert details["p2"].startswith("book USD vs PSP EUR (linked by reference 2222 in psp.description); book record")


@pytest.mark.spark
def test_without_extractors_a_reference_in_text_is_not_used(spark):
    from dataclasses import replace

    items = frame(spark, [book("b1", 1250, mref="ORD-240133"), psp("p1", 1250, ref="ch_1", desc="Order #240133"),
                          psp("p9", 5, ref="ch_9")])
    result = book_psp.match(items, replace(RULES, extractors=()))
    assert groups(result) == {} and flags(result) == set()
