"""One-to-one assignment of scored candidate pairs, deterministic, never a guess.

A pair (b, p) is accepted when p is b's single best candidate and b is p's single best candidate.
Accepted records leave the pool and a second round runs on the rest (a record whose best partner
was taken by a better pair may then have a clear best). Whatever still has two or more equally good
best candidates is ambiguous and is reported with its candidates, not matched.
"""
from __future__ import annotations

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from jobs.lake import materialize

ROUNDS = 2


def _mutual_best(cands: DataFrame) -> tuple[DataFrame, DataFrame]:
    wb, wp = Window.partitionBy("b_id"), Window.partitionBy("p_id")
    scored = (cands.withColumn("_b_best", F.max("score").over(wb))
              .withColumn("_p_best", F.max("score").over(wp))
              .withColumn("_b_top", F.sum(F.when(F.col("score") == F.col("_b_best"), 1).otherwise(0)).over(wb))
              .withColumn("_p_top", F.sum(F.when(F.col("score") == F.col("_p_best"), 1).otherwise(0)).over(wp)))
    accepted = scored.filter((F.col("score") == F.col("_b_best")) & (F.col("score") == F.col("_p_best"))
                             & (F.col("_b_top") == 1) & (F.col("_p_top") == 1))
    return accepted.drop("_b_best", "_p_best", "_b_top", "_p_top"), scored


def assign(cands: DataFrame) -> tuple[DataFrame, DataFrame]:
    """``cands``: b_id, p_id, score (+ any evidence columns). Returns (accepted pairs, ambiguous b rows:
    b_id, candidates = sorted array of p_id of its equally good best candidates)."""
    accepted_all = None
    pool = materialize(cands)
    for _ in range(ROUNDS):
        accepted, _ = _mutual_best(pool)
        accepted = materialize(accepted)
        accepted_all = accepted if accepted_all is None else accepted_all.unionByName(accepted)
        pool = (pool.join(accepted.select("b_id"), "b_id", "left_anti")
                .join(accepted.select("p_id"), "p_id", "left_anti"))
    wb = Window.partitionBy("b_id")
    best = pool.withColumn("_b_best", F.max("score").over(wb)).filter(F.col("score") == F.col("_b_best"))
    ambiguous = (best.groupBy("b_id").agg(F.array_sort(F.collect_set("p_id")).alias("candidates"))
                 .filter(F.size("candidates") >= 2))
    return accepted_all, ambiguous


def unique_by_key(book: DataFrame, psp: DataFrame, keys: list[tuple[str, str]],
                  forbidden: DataFrame | None = None) -> DataFrame:
    """What ``unique_pairs`` accepts of the equi-join of ``book`` (``b_id``) and ``psp`` (``p_id``) on ``keys``
    (pairs of column names: the book's, the PSP's), without the join. A record's candidates are the other
    side's records with its key, so a book record has exactly one candidate when exactly one PSP record has
    its key, and the other way round: the accepted pairs are the keys held by one record on each side, found
    by one aggregate over both sides' keys (one shuffle of narrow rows; the join, computed once per side's
    count and once for the pairs, shuffled and sorted both sides three times). A key with a null joins
    nothing. ``forbidden`` (b_id, p_id): pairs a person unmatched, never accepted; the few keys that hold
    one are decided the old way, by the join without the forbidden pairs and ``unique_pairs`` (a forbidden
    pair's records may still pair with a third record of their key). Returns b_id, p_id and the key's
    columns under the book's names."""
    names = [b for b, _ in keys]
    none = F.lit(None).cast("string")
    b = book.select(*names, F.col("b_id").alias("_b"), none.alias("_p"))
    p = psp.select(*[F.col(pk).alias(bk) for bk, pk in keys], none.alias("_b"), F.col("p_id").alias("_p"))
    counted = (b.unionByName(p).dropna(subset=names).groupBy(*names)
               .agg(F.count("_b").alias("_nb"), F.count("_p").alias("_np"), F.min("_b").alias("b_id"),
                    F.min("_p").alias("p_id")))
    pairs = counted.filter((F.col("_nb") == 1) & (F.col("_np") == 1)).select("b_id", "p_id", *names)
    if forbidden is None:
        return pairs
    held = (forbidden.join(b.select(*names, F.col("_b").alias("b_id")), "b_id", "inner")
            .join(p.select(*names, F.col("_p").alias("p_id")), ["p_id", *names], "inner")
            .select(*names).distinct())          # a record can be in several forbidden pairs of one key
    cond = [F.col(bk) == F.col(pk) for bk, pk in keys]
    decided = (book.join(held, names, "left_semi").join(psp, cond, "inner").select("b_id", "p_id", *names)
               .join(forbidden, ["b_id", "p_id"], "left_anti"))
    return pairs.join(held, names, "left_anti").unionByName(unique_pairs(decided))


def unique_pairs(pairs: DataFrame) -> DataFrame:
    """What ``assign`` accepts when every pair scores the same (the exact levels): the pairs whose two
    records each appear in no other pair. Candidates counted by two aggregates, no window, no checkpoint."""
    one = lambda key: pairs.groupBy(key).count().filter("count = 1").select(key)  # noqa: E731
    return pairs.join(one("b_id"), "b_id", "left_semi").join(one("p_id"), "p_id", "left_semi")
