"""Relation ``payout_bank``: a PSP payout (all its batch's records) against one bank statement entry.

A payout is the set of open PSP records sharing a payout / batch id. Its amount is the sum of the
records' net amounts (without the payout row itself, where the format has one; that row carries the
same total with the opposite sign and the parser checked it). L4 many-to-one:
  ``payout_reference``: the bank entry's text contains the payout id or the bank reference the PSP
      printed (Stripe ``po_...``, Adyen ``TX...XT``) and the amount equals the payout -> match; the
      amount differs -> PAYOUT_MISMATCH on the bank entry, never auto-matched;
  ``payout_amount_date``: no reference: same currency and amount, value date within the window of
      the expected arrival, unique on both sides.
An unmatched payout past its expected arrival + ageing is MISSING_IN_BANK (on its payout row, or on
every record when the format has none).
"""
from __future__ import annotations

from decimal import Decimal

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from jobs.lake import materialize
from jobs.match.assign import unique_pairs
from jobs.match.book_psp import RelationResult
from jobs.match.refs import member_set_id
from jobs.match.rules import PAYOUT_BANK, PAYOUT_MISMATCH, MatchRules

TOKEN_SPLIT = r"[^A-Z0-9_]+"
PSP_COLUMNS = ["event_id", "source", "event_type", "net_minor", "currency", "booked_at", "value_date", "payout_ref",
               "payout_bank_ref"]


def payouts(psp_items: DataFrame) -> DataFrame:
    """One row per open payout: key, amount, currency, expected arrival, references, members."""
    not_payout_row = F.col("event_type") != "payout"
    # the references as two sets (each a value or two per payout), never a list of every record's: the
    # day's biggest payout holds millions of records, and a list that size in one aggregation buffer
    # ran a 10M day's 10 GB heap out of memory
    refs = F.filter(F.array_distinct(F.concat(F.collect_set(F.upper("payout_ref")),
                                              F.collect_set(F.upper("payout_bank_ref")))),
                    lambda x: F.length(x) >= 6)
    return (psp_items
            .groupBy("source", "payout_ref")
            .agg(F.sum(F.when(not_payout_row, F.col("net_minor")).otherwise(0)).alias("_rows_total"),
                 F.sum(F.when(~not_payout_row, -F.col("net_minor")).otherwise(0)).alias("_payout_row_total"),
                 F.count(F.when(not_payout_row, 1)).alias("_rows"),
                 F.countDistinct("currency").alias("po_ccys"),
                 F.first("currency", ignorenulls=True).alias("po_currency"),
                 F.coalesce(F.max(F.when(F.col("event_type") == "payout", F.to_date("booked_at"))),
                            F.max("value_date"), F.max(F.to_date("booked_at"))).alias("po_expected"),
                 refs.alias("po_refs"),
                 F.max(F.when(F.col("event_type") == "payout", 1).otherwise(0)).alias("po_has_row"),
                 F.count(F.lit(1)).alias("po_records"))
            # A payout known only by its own row (e.g. a payout.paid webhook) is matched on that row's amount.
            .withColumn("po_amount", F.when(F.col("_rows") > 0, F.col("_rows_total")).otherwise(F.col("_payout_row_total")))
            .drop("_rows_total", "_payout_row_total", "_rows")
            .withColumn("po_key", F.concat_ws("|", "source", "payout_ref")))


def _bank(bank_items: DataFrame) -> DataFrame:
    return bank_items.select(F.col("event_id").alias("b_id"), F.col("amount_minor").alias("bk_amount"),
                             F.col("currency").alias("bk_currency"), F.coalesce("value_date", F.to_date("booked_at"))
                             .alias("bk_date"), F.upper(F.coalesce("bank_text", F.lit(""))).alias("bk_text"),
                             F.col("file_name").alias("bk_file"), F.col("record_ordinal").alias("bk_ordinal"))


def reference_candidates(bank: DataFrame, pos: DataFrame) -> DataFrame:
    tokens = bank.select("b_id", F.explode(F.split("bk_text", TOKEN_SPLIT)).alias("token")).filter(
        F.length("token") >= 6).distinct()
    refs = pos.select("po_key", F.explode("po_refs").alias("token"))
    return tokens.join(refs, "token").select("b_id", "po_key").distinct()


def match(items: DataFrame, rules: MatchRules, forbidden: DataFrame | None = None) -> tuple[RelationResult, DataFrame]:
    """Returns the relation result and the payouts still open (po_key, po_expected, po_has_row,
    po_mismatched). ``forbidden`` (b_id = bank event, p_id = payout key): pairs a person unmatched."""
    # only what payouts are built from: the items are wide (every column the run's outputs need)
    psp_items = materialize(items.filter(F.col("source_kind") == "psp").select(*PSP_COLUMNS))
    pos = materialize(payouts(psp_items).filter(F.col("po_ccys") == 1))
    bank = materialize(_bank(items.filter(F.col("source_kind") == "bank")))

    by_ref = reference_candidates(bank, pos).join(bank, "b_id").join(pos, "po_key")
    if forbidden is not None:
        by_ref = by_ref.join(forbidden.withColumnRenamed("p_id", "po_key"), ["b_id", "po_key"], "left_anti")
    agrees = (F.col("bk_amount") == F.col("po_amount")) & (F.col("bk_currency") == F.col("po_currency"))
    ref_pairs = by_ref.filter(agrees).select(F.col("b_id"), F.col("po_key").alias("p_id"),
                                             F.lit(Decimal(1)).alias("score"))
    # every pair scores 1: one-to-one is a bank entry and a payout that have no other candidate
    accepted_ref = materialize(unique_pairs(ref_pairs).withColumn("rule", F.lit("payout_reference")))

    mismatched = (by_ref.filter(~agrees).join(accepted_ref.select("b_id"), "b_id", "left_anti")
                  .join(accepted_ref.select(F.col("p_id").alias("po_key")), "po_key", "left_anti"))
    flags = mismatched.groupBy("b_id").agg(F.first("po_key").alias("po_key"), F.first("po_amount").alias("po_amount"),
                                           F.first("po_currency").alias("po_currency"),
                                           F.first("bk_amount").alias("bk_amount")) \
        .select(F.col("b_id").alias("event_id"), F.lit(PAYOUT_BANK).alias("relation"),
                F.lit(PAYOUT_MISMATCH).alias("reason_code"),
                F.concat(F.lit("payout "), F.col("po_key"), F.lit(" totals "), F.col("po_amount").cast("string"),
                         F.lit(" "), F.col("po_currency"), F.lit(", bank entry "), F.col("bk_amount").cast("string"))
                .alias("reason_detail"))
    flagged_bank = flags.select(F.col("event_id").alias("b_id"))
    flagged_payouts = mismatched.select("po_key").distinct()

    bank_left = bank.join(accepted_ref.select("b_id"), "b_id", "left_anti").join(flagged_bank, "b_id", "left_anti")
    pos_left = (pos.join(accepted_ref.select(F.col("p_id").alias("po_key")), "po_key", "left_anti")
                .join(flagged_payouts, "po_key", "left_anti"))
    window = rules.payout_window_days
    by_amount = bank_left.join(pos_left, (F.col("bk_amount") == F.col("po_amount"))
                               & (F.col("bk_currency") == F.col("po_currency")), "inner") \
        .filter(F.abs(F.datediff("bk_date", "po_expected")) <= window) \
        .filter(F.col("bk_date") >= F.date_sub("po_expected", 1))
    if forbidden is not None:
        by_amount = by_amount.join(forbidden.withColumnRenamed("p_id", "po_key"), ["b_id", "po_key"], "left_anti")
    amount_pairs = by_amount.select("b_id", F.col("po_key").alias("p_id"),
                                    (F.lit(1) - F.abs(F.datediff("bk_date", "po_expected")) / (window + 1))
                                    .cast("decimal(7,4)").alias("score"))
    # Amount + date alone must be unique on both sides: no ranking among equal amounts.
    nb = amount_pairs.groupBy("b_id").count().filter("count = 1").select("b_id")
    np_ = amount_pairs.groupBy("p_id").count().filter("count = 1").select("p_id")
    accepted_amount = amount_pairs.join(nb, "b_id").join(np_, "p_id").withColumn("rule", F.lit("payout_amount_date"))

    accepted = materialize(accepted_ref.unionByName(accepted_amount.select(*accepted_ref.columns)))
    groups = accepted.join(pos.select(F.col("po_key").alias("p_id"), "po_amount", "po_currency", "po_records"), "p_id")
    keyed_psp = psp_items.withColumn("po_key", F.concat_ws("|", "source", "payout_ref"))
    # one row per matched payout, against every PSP record: broadcast, so that the records of the day's
    # biggest payout are not all shuffled into one task (one payout can hold a third of a day's records)
    psp_members = keyed_psp.select(F.col("po_key").alias("p_id"), "event_id").join(F.broadcast(groups), "p_id") \
        .select("b_id", "p_id", "rule", "score", "event_id", F.lit("psp").alias("role"))
    bank_members = groups.select("b_id", "p_id", "rule", "score", F.col("b_id").alias("event_id"),
                                 F.lit("bank").alias("role"))
    all_members = psp_members.unionByName(bank_members)
    # the group's id from one aggregate per group, partial per partition: no list of its members (the
    # day's biggest payout holds millions, sorted in one task)
    ids = all_members.groupBy("b_id", "p_id").agg(member_set_id(PAYOUT_BANK, F.col("event_id")).alias("match_id"))
    evidence = groups.select("b_id", "p_id", F.to_json(F.struct(
        F.lit(4).alias("level"), F.array(F.when(F.col("rule") == "payout_reference", F.lit("reference")),
                                         F.lit("amount"), F.lit("currency")).alias("agreed"),
        F.col("p_id").alias("payout"), F.col("po_amount").alias("payout_amount_minor"),
        F.col("po_records").alias("records"))).alias("evidence"))
    members = (all_members.join(F.broadcast(ids), ["b_id", "p_id"]).join(F.broadcast(evidence), ["b_id", "p_id"])
               .select("match_id",
                       F.lit(PAYOUT_BANK).alias("relation"), F.lit(4).alias("level"),
                       F.concat(F.lit(f"{rules.rule_set_id}.L4."), F.col("rule")).alias("rule_id"),
                       F.col("score").cast("decimal(7,4)").alias("score"), "evidence", "event_id", "role"))
    # A payout whose bank credit arrived with another amount is not missing: the bank entry carries
    # PAYOUT_MISMATCH until someone resolves it.
    open_payouts = (pos.join(accepted.select(F.col("p_id").alias("po_key")), "po_key", "left_anti")
                    .join(flagged_payouts.withColumn("po_mismatched", F.lit(True)), "po_key", "left")
                    .select("po_key", "po_expected", "po_has_row",
                            F.coalesce("po_mismatched", F.lit(False)).alias("po_mismatched")))
    return RelationResult(members, flags), open_payouts
