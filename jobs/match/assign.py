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


def unique_pairs(pairs: DataFrame) -> DataFrame:
    """What ``assign`` accepts when every pair scores the same (the exact levels): the pairs whose two
    records each appear in no other pair. Candidates counted by two aggregates, no window, no checkpoint."""
    one = lambda key: pairs.groupBy(key).count().filter("count = 1").select(key)  # noqa: E731
    return pairs.join(one("b_id"), "b_id", "left_semi").join(one("p_id"), "p_id", "left_semi")
