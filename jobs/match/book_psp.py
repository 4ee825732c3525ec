"""Relation ``book_psp``: the merchant's payment/refund rows against the PSP's transaction rows.

Levels, each seeing only what the earlier ones left open:
  L1 exact PSP id + currency + amount (unique on both sides);
  L2 normalised merchant reference + currency + amount (unique on both sides); then, only for records
     no reference field links to the other side, ``text_reference``: a reference the tenant's
     extractors find in free text (description, bank text) agrees with the other record's merchant
     reference or free text (``refs.ref_core``), unique on both sides (a reference that names two
     records is AMBIGUOUS, never a guess), + currency + amount; the evidence says where it was found;
  L3 tolerance: a reference agrees (PSP id case-insensitively, or merchant reference), same currency,
     amount within the tenant's tolerance (absolute minor units or basis points), time within the
     window; scored, one-to-one by mutual best score, ties reported as AMBIGUOUS;
  L4 split capture: one book payment = several PSP captures of the same payment summing to it.
The PSP side is compared in the currency the customer paid (presentment amount) when the PSP
settled in another currency. Finally pairs that a reference links one-to-one (the PSP id, else the
merchant reference field, else a reference in free text) but that disagree on currency or amount are
flagged (CURRENCY_MISMATCH / AMOUNT_MISMATCH on both records) instead of being matched.
"""
from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from jobs.lake import materialize
from jobs.match import assign
from jobs.match.refs import group_match_id, match_id, norm_id, norm_ref, ref_core
from jobs.match.rules import (AMBIGUOUS, AMOUNT_MISMATCH, BOOK_PSP, CURRENCY_MISMATCH, MatchRules)

TEXT_SOURCES = ("description", "bank_text")     # the free-text columns the extractors read, on both sides


def _kind() -> Column:
    """payment and capture are the same kind of money movement for the book side."""
    return F.when(F.col("event_type").isin("payment", "capture"), "payment").otherwise(F.col("event_type"))

SECONDS_PER_DAY = 86400


@dataclass
class RelationResult:
    matches: DataFrame      # match_id, relation, level, rule_id, score, evidence, event_id, role
    flags: DataFrame        # event_id, relation, reason_code, reason_detail


def _side(items: DataFrame, kind: str, prefix: str, rules: MatchRules) -> DataFrame:
    presented = F.col("presentment_currency").isNotNull()
    df = items.filter(F.col("source_kind") == kind)
    return df.select(
        F.col("event_id").alias(f"{prefix}_id"),
        _kind().alias(f"{prefix}_kind"),
        F.when(presented, F.col("presentment_amount_minor")).otherwise(F.col("amount_minor")).alias(f"{prefix}_amount"),
        F.when(presented, F.col("presentment_currency")).otherwise(F.col("currency")).alias(f"{prefix}_currency"),
        F.col("psp_ref").alias(f"{prefix}_ref"),
        norm_id(F.col("psp_ref")).alias(f"{prefix}_nid"),
        norm_id(F.col("psp_payment_ref")).alias(f"{prefix}_payment_nid"),
        norm_ref(F.col("merchant_ref"), rules.reference_prefixes).alias(f"{prefix}_mref"),
        F.col("merchant_ref").alias(f"{prefix}_merchant_ref"),
        *[F.col(c).alias(f"{prefix}_{c}") for c in TEXT_SOURCES],
        F.col("booked_at").alias(f"{prefix}_at"),
        F.col("psp").alias(f"{prefix}_psp"),
        F.col("file_name").alias(f"{prefix}_file"),
        F.col("record_ordinal").alias(f"{prefix}_ordinal"),
    )


def _tolerance(amount: Column, rules: MatchRules) -> Column:
    bps = (F.abs(amount) * rules.tolerance_bps / 10000).cast("long")
    return F.greatest(F.lit(rules.tolerance_abs_minor).cast("long"), bps)


def _pairs_to_members(pairs: DataFrame, level: int, rule_id: str, rules: MatchRules) -> DataFrame:
    mid = match_id(BOOK_PSP, F.col("b_id"), F.col("p_id"))
    base = pairs.select(mid.alias("match_id"), "b_id", "p_id", "score", "evidence")
    members = base.select("match_id", F.explode(F.array(
        F.struct(F.col("b_id").alias("event_id"), F.lit("book").alias("role")),
        F.struct(F.col("p_id").alias("event_id"), F.lit("psp").alias("role")))).alias("m"), "score", "evidence")
    return members.select("match_id", F.lit(BOOK_PSP).alias("relation"), F.lit(level).alias("level"),
                          F.lit(rule_id).alias("rule_id"), F.col("score").cast("decimal(7,4)").alias("score"),
                          "evidence", F.col("m.event_id").alias("event_id"), F.col("m.role").alias("role"))


def _evidence(level: int, agreed: list[str], extra: dict[str, Column] | None = None) -> Column:
    fields = [F.lit(level).alias("level"), F.array(*[F.lit(a) for a in agreed]).alias("agreed")]
    fields += [col.alias(name) for name, col in (extra or {}).items()]
    return F.to_json(F.struct(*fields))


def _remaining(df: DataFrame, taken: DataFrame, key: str) -> DataFrame:
    return df.join(taken.select(F.col("event_id").alias(key)).distinct(), key, "left_anti")


L1_KEYS = [("b_ref", "p_ref"), ("b_kind", "p_kind"), ("b_currency", "p_currency"), ("b_amount", "p_amount")]
L2_KEYS = [("b_mref", "p_mref"), ("b_kind", "p_kind"), ("b_currency", "p_currency"), ("b_amount", "p_amount")]


def level1(book: DataFrame, psp: DataFrame, forbidden: DataFrame | None = None) -> DataFrame:
    """The accepted L1 pairs: PSP id, kind, currency and amount equal, the only candidate of each other
    (every exact pair scores 1, so the mutual-best assignment accepts exactly the pairs whose two records
    have no other candidate, and a second round finds nothing new: counting per key suffices)."""
    return (assign.unique_by_key(book, psp, L1_KEYS, forbidden)
            .select("b_id", "p_id", F.lit(Decimal(1)).alias("score"),
                    _evidence(1, ["psp_ref", "currency", "amount"]).alias("evidence")))


def level2(book: DataFrame, psp: DataFrame, forbidden: DataFrame | None = None) -> DataFrame:
    """The accepted L2 pairs: normalised merchant reference, kind, currency and amount equal, the only
    candidate of each other (as ``level1``)."""
    return (assign.unique_by_key(book, psp, L2_KEYS, forbidden)
            .select("b_id", "p_id", F.lit(Decimal(1)).alias("score"),
                    _evidence(2, ["merchant_ref", "currency", "amount"],
                              {"book_ref": F.col("b_mref")}).alias("evidence")))


def reference_keys(side: DataFrame, prefix: str, role: str, rules: MatchRules) -> DataFrame:
    """({p}_id, {p}_kind, {p}_key, {p}_in_text, {p}_source) for each reference of a record: its merchant
    reference field and every reference the tenant's extractors find in its free text, as ``ref_core``
    keys; one row per record and key (a key in both the field and the text counts as the field's).
    ``source`` names the column: ``psp.description``, ``book.merchant_ref``..."""
    field_source = f"{role}.merchant_ref"
    found = [F.struct(F.lit(field_source).alias("source"), F.array(F.col(f"{prefix}_merchant_ref")).alias("raw"))]
    found += [F.struct(F.lit(f"{role}.{c}").alias("source"),
                       F.regexp_extract_all(F.col(f"{prefix}_{c}"), F.lit(x.java_pattern), x.group).alias("raw"))
              for c in TEXT_SOURCES for x in rules.extractors]
    ids = [f"{prefix}_id", f"{prefix}_kind"]
    keyed = (side.select(*ids, F.inline(F.array(*found)))
             .select(*ids, "source", F.explode("raw").alias("raw"))
             .select(*ids, ref_core(F.col("raw"), rules.core_prefixes).alias(f"{prefix}_key"),
                     F.struct((F.col("source") != field_source).alias("in_text"), "source").alias("s"))
             .filter(F.col(f"{prefix}_key").isNotNull()))
    return (keyed.groupBy(*ids, f"{prefix}_key").agg(F.min("s").alias("s"))
            .select(*ids, f"{prefix}_key", F.col("s.in_text").alias(f"{prefix}_in_text"),
                    F.col("s.source").alias(f"{prefix}_source")))


def text_links(book: DataFrame, psp: DataFrame, rules: MatchRules) -> DataFrame:
    """(b_id, p_id, key, b_in_text, b_source, p_in_text, p_source): a book and a PSP record of the same kind
    sharing a reference where at least one of the two found it in free text; one row per pair."""
    keys_b = reference_keys(book, "b", "book", rules)
    keys_p = reference_keys(psp, "p", "psp", rules)
    cond = (F.col("b_key") == F.col("p_key")) & (F.col("b_kind") == F.col("p_kind"))
    linked = keys_b.join(keys_p, cond, "inner").filter(F.col("b_in_text") | F.col("p_in_text"))
    best = F.min(F.struct(F.col("b_key").alias("key"), "b_in_text", "b_source", "p_in_text", "p_source"))
    return (linked.groupBy("b_id", "p_id").agg(best.alias("l"))
            .select("b_id", "p_id", "l.key", "l.b_in_text", "l.b_source", "l.p_in_text", "l.p_source"))


def _field_links(book: DataFrame, psp: DataFrame) -> DataFrame:
    """(b_id, p_id, rank): 1 the PSP id agrees, 2 the merchant reference field agrees (same kind)."""
    kind = F.col("b_kind") == F.col("p_kind")
    return (book.join(psp, (F.col("b_nid") == F.col("p_nid")) & kind, "inner")
            .select("b_id", "p_id", F.lit(1).alias("rank"))
            .unionByName(book.join(psp, (F.col("b_mref") == F.col("p_mref")) & kind, "inner")
                         .select("b_id", "p_id", F.lit(2).alias("rank"))))


def _label(prefix: str) -> Column:
    return F.concat(F.col(f"{prefix}_file"), F.lit("#"), F.col(f"{prefix}_ordinal").cast("string"))


def level2_text(book: DataFrame, psp: DataFrame, rules: MatchRules,
                forbidden: DataFrame | None = None) -> tuple[DataFrame, DataFrame]:
    """A reference found in free text: weaker evidence than a reference field, so only for records that
    no reference field (PSP id, merchant reference) links to a record of the other side; the reference
    must name one record on each side; then currency and amount must agree. Returns (pairs: b_id, p_id,
    score, evidence; AMBIGUOUS flags on the book rows whose reference names more than one record)."""
    links = _allowed(text_links(book, psp, rules), forbidden)
    counted = materialize(links.withColumn("nb", F.count(F.lit(1)).over(Window.partitionBy("b_id")))
                          .withColumn("np", F.count(F.lit(1)).over(Window.partitionBy("p_id"))))
    fields = _field_links(book, psp)
    unique = (counted.filter((F.col("nb") == 1) & (F.col("np") == 1))
              .join(fields.select("b_id").distinct(), "b_id", "left_anti")
              .join(fields.select("p_id").distinct(), "p_id", "left_anti"))
    agree = (unique.join(book.select("b_id", "b_amount", "b_currency"), "b_id", "inner")
             .join(psp.select("p_id", "p_amount", "p_currency"), "p_id", "inner")
             .filter((F.col("b_currency") == F.col("p_currency")) & (F.col("b_amount") == F.col("p_amount"))))
    text_side = F.concat_ws(", ", F.when(F.col("b_in_text"), F.col("b_source")),
                            F.when(F.col("p_in_text"), F.col("p_source")))
    evidence = _evidence(2, ["reference_in_text", "currency", "amount"],
                         {"reference": F.col("key"), "ref_source": text_side, "book_ref_source": F.col("b_source"),
                          "psp_ref_source": F.col("p_source")})
    pairs = agree.select("b_id", "p_id", F.lit(Decimal(1)).alias("score"), evidence.alias("evidence"))

    several = (counted.filter((F.col("nb") > 1) | (F.col("np") > 1))
               .join(fields.select("b_id").distinct(), "b_id", "left_anti")
               .join(book.select("b_id", _label("b").alias("b_label")), "b_id", "inner")
               .join(psp.select("p_id", _label("p").alias("p_label")), "p_id", "inner"))
    books_of_psp = several.groupBy("p_id").agg(F.collect_set("b_label").alias("p_books"))
    per_book = (several.join(books_of_psp, "p_id", "inner").groupBy("b_id", "b_label")
                .agg(F.min("key").alias("key"), F.collect_set("p_label").alias("psps"),
                     F.flatten(F.collect_set("p_books")).alias("books")))
    named = F.array_sort(F.array_distinct(F.concat("psps", F.array_except("books", F.array("b_label")))))
    flags = per_book.select(F.col("b_id").alias("event_id"), F.lit(BOOK_PSP).alias("relation"),
                            F.lit(AMBIGUOUS).alias("reason_code"),
                            F.concat(F.lit("reference "), F.col("key"), F.lit(" found in free text names more than "
                                                                             "one record: "),
                                     F.array_join(named, ", ")).alias("reason_detail"))
    return pairs, flags


def level3(book: DataFrame, psp: DataFrame, rules: MatchRules) -> DataFrame:
    by_id = book.join(psp, (F.col("b_nid") == F.col("p_nid")) & (F.col("b_kind") == F.col("p_kind")), "inner")
    by_ref = book.join(psp, (F.col("b_mref") == F.col("p_mref")) & (F.col("b_kind") == F.col("p_kind")), "inner")
    cands = by_id.unionByName(by_ref).dropDuplicates(["b_id", "p_id"])
    diff = F.abs(F.col("b_amount") - F.col("p_amount"))
    seconds = F.abs(F.col("b_at").cast("long") - F.col("p_at").cast("long"))
    tol = _tolerance(F.col("b_amount"), rules)
    window = rules.date_window_days * SECONDS_PER_DAY
    ok = (F.col("b_currency") == F.col("p_currency")) & (diff <= tol) & (seconds <= window)
    id_agrees = (F.col("b_nid") == F.col("p_nid")).cast("int")
    ref_agrees = F.coalesce((F.col("b_mref") == F.col("p_mref")).cast("int"), F.lit(0))
    score = (F.lit(0.6) - F.lit(0.3) * diff / (tol + 1) - F.lit(0.2) * seconds / window
             + F.lit(0.25) * F.coalesce(id_agrees, F.lit(0)) + F.lit(0.15) * ref_agrees)
    agreed = F.filter(F.array(F.when(id_agrees == 1, F.lit("psp_ref")), F.when(ref_agrees == 1, F.lit("merchant_ref")),
                              F.lit("currency")), lambda x: x.isNotNull())
    evidence = F.to_json(F.struct(F.lit(3).alias("level"), agreed.alias("agreed"),
                                  (F.col("p_amount") - F.col("b_amount")).alias("amount_diff_minor"),
                                  seconds.alias("time_diff_seconds"), tol.alias("tolerance_minor")))
    return cands.filter(ok).select("b_id", "p_id", F.round(score, 4).cast("decimal(7,4)").alias("score"),
                                   evidence.alias("evidence"))


def level3_amount_time(book: DataFrame, psp: DataFrame, population: DataFrame, rules: MatchRules) -> DataFrame:
    """No reference agrees: same PSP, kind, currency and exact amount, booked within minutes, unique on
    both sides, and the amount itself distinctive (it occurs once on each side among all recent
    transactions of that kind and currency, matched or not). Pairs, not ranked: anything less than a
    unique candidate is left open."""
    distinctive = (population.groupBy("kind", "currency", "amount")
                   .agg(F.countDistinct(F.when(F.col("side") == "book", F.col("record_key"))).alias("n_book"),
                        F.countDistinct(F.when(F.col("side") == "psp", F.col("record_key"))).alias("n_psp"))
                   .filter((F.col("n_book") == 1) & (F.col("n_psp") == 1))
                   .select(F.col("kind").alias("b_kind"), F.col("currency").alias("b_currency"),
                           F.col("amount").alias("b_amount")))
    seconds = F.abs(F.col("b_at").cast("long") - F.col("p_at").cast("long"))
    cond = ((F.col("b_kind") == F.col("p_kind")) & (F.col("b_currency") == F.col("p_currency"))
            & (F.col("b_amount") == F.col("p_amount")) & (F.col("b_psp") == F.col("p_psp")))
    cands = (book.join(distinctive, ["b_kind", "b_currency", "b_amount"], "inner").join(psp, cond, "inner")
             .filter(seconds <= rules.reference_less_window_minutes * 60))
    nb = cands.groupBy("b_id").count().filter("count = 1").select("b_id")
    np_ = cands.groupBy("p_id").count().filter("count = 1").select("p_id")
    evidence = F.to_json(F.struct(F.lit(3).alias("level"), F.array(F.lit("psp"), F.lit("currency"), F.lit("amount"),
                                                                   F.lit("time")).alias("agreed"),
                                  seconds.alias("time_diff_seconds"), F.lit("amount unique in population")
                                  .alias("note")))
    return (cands.join(nb, "b_id").join(np_, "p_id")
            .select("b_id", "p_id", F.lit(Decimal("0.5")).cast("decimal(7,4)").alias("score"),
                    evidence.alias("evidence")))


def population_amounts(items: DataFrame) -> DataFrame:
    """(side, kind, currency, amount, record_key) of the recent transactions the amount_time rule
    compares with; a record delivered twice counts once (same payment id / PSP line id)."""
    presented = F.col("presentment_currency").isNotNull()
    key = F.coalesce(F.col("merchant_payment_id"), F.col("psp_line_id"), F.col("event_id"))
    return items.select(key.alias("record_key"),
        F.when(F.col("source_kind") == "book", "book").otherwise("psp").alias("side"), _kind().alias("kind"),
        F.when(presented, F.col("presentment_currency")).otherwise(F.col("currency")).alias("currency"),
        F.when(presented, F.col("presentment_amount_minor")).otherwise(F.col("amount_minor")).alias("amount"))


def level4_split(book: DataFrame, psp: DataFrame) -> DataFrame:
    """Book payment = Σ of >= 2 PSP captures of the same PSP payment. Returns member rows."""
    captures = psp.filter((F.col("p_kind") == "payment") & F.col("p_payment_nid").isNotNull())
    groups = (captures.groupBy("p_payment_nid")
              .agg(F.sum("p_amount").alias("g_amount"), F.countDistinct("p_currency").alias("g_ccys"),
                   F.first("p_currency").alias("g_currency"), F.collect_list("p_id").alias("g_members"))
              .filter((F.size("g_members") >= 2) & (F.col("g_ccys") == 1)))
    cond = ((F.col("b_nid") == F.col("p_payment_nid")) & (F.col("b_kind") == "payment")
            & (F.col("b_amount") == F.col("g_amount")) & (F.col("b_currency") == F.col("g_currency")))
    joined = book.join(groups, cond, "inner")
    unique = joined.groupBy("b_id").count().filter("count = 1").select("b_id")
    chosen = joined.join(unique, "b_id").join(
        joined.groupBy("p_payment_nid").count().filter("count = 1").select("p_payment_nid"), "p_payment_nid")
    members_all = F.concat(F.array(F.col("b_id")), F.col("g_members"))
    base = chosen.select(group_match_id(BOOK_PSP, members_all).alias("match_id"), "b_id", "g_members",
                         _evidence(4, ["psp_payment_ref", "currency", "sum_of_captures"],
                                   {"captures": F.size("g_members")}).alias("evidence"))
    members = base.select("match_id", "evidence", F.explode(F.concat(
        F.array(F.struct(F.col("b_id").alias("event_id"), F.lit("book").alias("role"))),
        F.transform("g_members", lambda m: F.struct(m.alias("event_id"), F.lit("psp").alias("role"))))).alias("m"))
    return members.select("match_id", F.lit(BOOK_PSP).alias("relation"), F.lit(4).alias("level"),
                          F.lit("split_capture").alias("rule_id"), F.lit(Decimal(1)).cast("decimal(7,4)").alias("score"),
                          "evidence", F.col("m.event_id").alias("event_id"), F.col("m.role").alias("role"))


def linked_pairs(book: DataFrame, psp: DataFrame, rules: MatchRules) -> DataFrame:
    """(b_id, p_id, link): the book and PSP records a reference links one-to-one. A PSP id is the
    strongest link, then the merchant reference field, then a reference found in free text; a link must
    be unique on both sides among the links of its kind, and a record linked by a stronger kind is not
    considered for a weaker one."""
    links = _field_links(book, psp).withColumn(
        "link", F.when(F.col("rank") == 1, F.lit("psp_ref")).otherwise(F.lit("merchant_ref")))
    if rules.extractors:
        found = F.when(F.col("p_in_text"), F.col("p_source")).otherwise(F.col("b_source"))
        links = links.unionByName(text_links(book, psp, rules).select(
            "b_id", "p_id", F.lit(3).alias("rank"), F.concat(F.lit("reference "), F.col("key"), F.lit(" in "), found)
            .alias("link")))
    count = lambda *by: F.count(F.lit(1)).over(Window.partitionBy(*by))  # noqa: E731
    lowest = lambda by: F.min("rank").over(Window.partitionBy(by))  # noqa: E731
    return (links.withColumn("nb", count("rank", "b_id")).withColumn("np", count("rank", "p_id"))
            .withColumn("b_rank", lowest("b_id")).withColumn("p_rank", lowest("p_id"))
            .filter((F.col("nb") == 1) & (F.col("np") == 1) & (F.col("rank") == F.col("b_rank"))
                    & (F.col("rank") == F.col("p_rank")))
            .select("b_id", "p_id", "link"))


def mismatches(book: DataFrame, psp: DataFrame, rules: MatchRules) -> DataFrame:
    """Pairs a reference links one-to-one (``linked_pairs``) that disagree on currency or on amount beyond
    the tolerance: the reason on both records, the detail naming the difference, the link and the partner."""
    unique = linked_pairs(book, psp, rules).join(book, "b_id", "inner").join(psp, "p_id", "inner")
    diff = F.col("p_amount") - F.col("b_amount")
    reason = (F.when(F.col("b_currency") != F.col("p_currency"), F.lit(CURRENCY_MISMATCH))
              .when(F.abs(diff) > _tolerance(F.col("b_amount"), rules), F.lit(AMOUNT_MISMATCH)))
    detail = F.when(reason == CURRENCY_MISMATCH, F.concat_ws(" ", F.lit("book"), F.col("b_currency"), F.lit("vs PSP"),
                                                             F.col("p_currency"))) \
              .otherwise(F.concat(F.lit("PSP - book = "), diff.cast("string"), F.lit(" minor units")))
    detail = F.concat(detail, F.lit(" (linked by "), F.col("link"), F.lit(")"))
    flagged = unique.withColumn("reason_code", reason).withColumn("reason_detail", detail) \
                    .filter(F.col("reason_code").isNotNull())
    return flagged.select(F.explode(F.array(
        F.struct(F.col("b_id").alias("event_id"), F.concat_ws("; ", "reason_detail", F.concat(F.lit("PSP record "),
                 _label("p"))).alias("reason_detail")),
        F.struct(F.col("p_id").alias("event_id"), F.concat_ws("; ", "reason_detail", F.concat(F.lit("book record "),
                 _label("b"))).alias("reason_detail")))).alias("f"), "reason_code") \
        .select(F.col("f.event_id").alias("event_id"), F.lit(BOOK_PSP).alias("relation"), "reason_code",
                F.col("f.reason_detail").alias("reason_detail"))


def _allowed(cands: DataFrame, forbidden: DataFrame | None) -> DataFrame:
    return cands if forbidden is None else cands.join(forbidden, ["b_id", "p_id"], "left_anti")


def match(items: DataFrame, rules: MatchRules, population: DataFrame | None = None,
          forbidden: DataFrame | None = None) -> RelationResult:
    """Run the enabled levels over the open book_psp items (duplicates already excluded).
    ``population``: recent book and PSP transactions (``population_amounts``) for the amount_time rule;
    ``forbidden`` (b_id, p_id): pairs a person unmatched, never proposed again."""
    book = materialize(_side(items, "book", "b", rules))
    psp = materialize(_side(items, "psp", "p", rules))
    members: list[DataFrame] = []
    flags: list[DataFrame] = []
    for level, name in ((1, "exact_psp_id"), (2, "merchant_reference"), (3, "tolerance")):
        if level not in rules.levels:
            continue
        if level == 1:
            accepted = level1(book, psp, forbidden)
        elif level == 2:
            accepted = level2(book, psp, forbidden)
        else:
            accepted, ambiguous = assign.assign(_allowed(level3(book, psp, rules), forbidden))
        # Only the matches found are checkpointed: the remaining sides then grow by one anti-join per level.
        found = materialize(_pairs_to_members(accepted, level, rules.rule_id(level, name), rules))
        members.append(found)
        book = _remaining(book, found, "b_id")
        psp = _remaining(psp, found, "p_id")
        if level == 2:
            # the residue of the exact levels, computed once: the references in free text, every later level,
            # the mismatch check and the flags (computed when the item status is written) read it; not
            # materialized, each of them read both whole sides again through the levels' anti-joins
            book, psp = materialize(book), materialize(psp)
        if level == 2 and rules.extractors:
            pairs, several = level2_text(book, psp, rules, forbidden)
            found = materialize(_pairs_to_members(pairs, 2, rules.rule_id(2, "text_reference"), rules))
            members.append(found)
            flags.append(several)
            book = _remaining(book, found, "b_id")
            psp = _remaining(psp, found, "p_id")
        if level == 3:
            names = psp.select(F.col("p_id"), _label("p").alias("p_label"))
            labelled = (ambiguous.select("b_id", F.explode("candidates").alias("p_id")).join(names, "p_id")
                        .groupBy("b_id").agg(F.array_sort(F.collect_list("p_label")).alias("labels")))
            flags.append(labelled.select(F.col("b_id").alias("event_id"), F.lit(BOOK_PSP).alias("relation"),
                                         F.lit(AMBIGUOUS).alias("reason_code"),
                                         F.concat(F.lit("equally good candidates: "), F.array_join("labels", ", "))
                                         .alias("reason_detail")))
    if 3 in rules.levels and rules.reference_less and population is not None:
        found = materialize(_pairs_to_members(_allowed(level3_amount_time(book, psp, population, rules), forbidden), 3,
                                              rules.rule_id(3, "amount_time"), rules))
        members.append(found)
        book = _remaining(book, found, "b_id")
        psp = _remaining(psp, found, "p_id")
    if 4 in rules.levels:
        split = level4_split(book, psp).withColumn("rule_id", F.lit(rules.rule_id(4, "split_capture")))
        if forbidden is not None:
            touched = (split.filter(F.col("role") == "psp").select("match_id", F.col("event_id").alias("p_id"))
                       .join(split.filter(F.col("role") == "book").select("match_id", F.col("event_id").alias("b_id")),
                             "match_id").join(forbidden, ["b_id", "p_id"]).select("match_id").distinct())
            split = split.join(touched, "match_id", "left_anti")
        split = materialize(split)
        members.append(split)
        book = _remaining(book, split, "b_id")
        psp = _remaining(psp, split, "p_id")
    flags.append(mismatches(book, psp, rules))
    all_members = members[0]
    for m in members[1:]:
        all_members = all_members.unionByName(m)
    all_flags = flags[0]
    for f in flags[1:]:
        all_flags = all_flags.unionByName(f)
    # one row per record and reason; a record with two reasons keeps both (status.compute ranks them)
    return RelationResult(all_members, all_flags.dropDuplicates(["event_id", "relation", "reason_code"]))
