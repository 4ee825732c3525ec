"""The figures of a run, read back from the lake: what a finance operator wants to see."""
from __future__ import annotations

from datetime import date, timedelta

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from jobs import lake
from jobs.match.rules import BOOK_PSP
from jobs.settings import Settings


def compute(spark: SparkSession, settings: Settings, tenant_id: str, business_date: date,
            lookback_days: int) -> tuple[dict, list]:
    """(summary dict, metric rows (metric, dimension, value)). The book match rate is over the book records
    of the tenant's lookback window (``history.lookback_days`` up to the date), so a day's figures cost the
    same however long the history."""
    day = F.lit(business_date)
    since = business_date - timedelta(days=lookback_days)
    events = lake.read(spark, settings, "events", tenant_id, since=since, until=business_date)
    metrics: list[tuple[str, str, int]] = []

    for r in events.filter(F.col("ingest_date") == day).groupBy("source").count().collect():
        metrics.append(("records_loaded", r["source"], r["count"]))
    quarantine = lake.read(spark, settings, "quarantine", tenant_id, since=business_date, until=business_date)
    for r in quarantine.groupBy("reason_code").count().collect():
        metrics.append(("records_quarantined", r["reason_code"], r["count"]))
    files = lake.read(spark, settings, "file_stats", tenant_id, since=business_date, until=business_date)
    for r in files.groupBy("format").count().collect():
        metrics.append(("files_parsed", r["format"], r["count"]))

    from jobs.match.manual import active_matches

    matches = active_matches(spark, settings, tenant_id, since=since, until=business_date)
    today = matches.filter(F.col("run_date") == day)
    for r in today.groupBy("relation", "level").agg(F.count(F.lit(1)).alias("records"),
                                                    F.countDistinct("match_id").alias("groups")).collect():
        metrics.append(("matched_records", f"{r['relation']}/L{r['level']}", r["records"]))
        metrics.append(("match_groups", f"{r['relation']}/L{r['level']}", r["groups"]))

    status = lake.read(spark, settings, "item_status", tenant_id, since=business_date, until=business_date)
    for r in (status.withColumn("k", F.coalesce("reason_code", "status")).groupBy("status", "k")
              .agg(F.countDistinct("file_name", "record_ordinal").alias("n")).collect()):
        metrics.append(("exceptions" if r["status"] == "EXCEPTION" else "expected", r["k"], r["n"]))

    book = events.filter(F.col("source_kind") == "book").select("event_id")
    matched_book = (matches.filter((F.col("relation") == BOOK_PSP)
                                   & (F.col("role") == "book")).select("event_id").distinct())
    dup_book = (status.filter(F.col("reason_code") == "DUPLICATE").select("event_id").distinct())
    book_total = book.join(dup_book, "event_id", "left_anti").count()
    book_matched = book.join(matched_book, "event_id", "inner").count()
    metrics += [("book_records", "total", book_total), ("book_records", "matched", book_matched),
                ("book_records", "window_days", lookback_days)]

    journal = lake.read(spark, settings, "journal", tenant_id, since=business_date, until=business_date)
    balance = journal.groupBy("currency").agg(F.sum("debit_minor").alias("dr"), F.sum("credit_minor").alias("cr"),
                                              F.countDistinct("journal_id").alias("journals")).collect()
    for r in balance:
        metrics += [("ledger_debit_minor", r["currency"], r["dr"]), ("ledger_credit_minor", r["currency"], r["cr"]),
                    ("journals", r["currency"], r["journals"])]
    trial = (journal.groupBy("account", "currency").agg(F.sum("debit_minor").alias("dr"),
                                                         F.sum("credit_minor").alias("cr"))
             .orderBy("account", "currency").collect())
    for r in trial:
        metrics += [("trial_balance_debit_minor", f"{r['account']}|{r['currency']}", r["dr"]),
                    ("trial_balance_credit_minor", f"{r['account']}|{r['currency']}", r["cr"])]
    metrics += _ledger_metrics(spark, settings, tenant_id, business_date)
    summary = {
        "business_date": business_date.isoformat(),
        "book_match_rate": round(book_matched / book_total, 6) if book_total else None,
        "ledger_balanced": all(r["dr"] == r["cr"] for r in balance),
        "lake": settings.lake,
    }
    return summary, metrics


def _ledger_metrics(spark: SparkSession, settings: Settings, tenant_id: str, business_date: date) -> list:
    """Fee checks of the run (records by status) and disputes by lifecycle state."""
    from jobs.store.db import connect

    fees = lake.read(spark, settings, "fee_checks", tenant_id, since=business_date, until=business_date)
    out = [("fee_checks", r["status"], r["n"])
           for r in fees.groupBy("status").agg(F.countDistinct("event_id").alias("n")).collect()]
    # charged against the rate card, per PSP and currency: the components a rule prices (charged and expected), and
    # what was charged where no rule applies
    priced = F.col("expected_minor").isNotNull()
    for r in (fees.groupBy(F.coalesce("psp", F.lit("?")).alias("psp"), "currency")
              .agg(F.sum(F.when(priced, F.col("charged_minor"))).alias("charged"),
                   F.sum("expected_minor").alias("expected"),
                   F.sum(F.when(~priced, F.col("charged_minor"))).alias("unpriced")).collect()):
        dim = f"{r['psp']}|{r['currency']}"
        out += [(name, dim, r[col]) for name, col in (("fees_charged_minor", "charged"),
                                                       ("fees_expected_minor", "expected"),
                                                       ("fees_unpriced_minor", "unpriced")) if r[col] is not None]
    with connect(settings, tenant_id) as conn:
        rows = conn.execute("SELECT state, count(*) AS n FROM dispute WHERE tenant_id = %s GROUP BY state",
                            (tenant_id,)).fetchall()
        refused = conn.execute("SELECT count(*) AS n FROM dispute_event WHERE tenant_id = %s AND outcome = 'refused' "
                               "AND acknowledged_at IS NULL", (tenant_id,)).fetchone()["n"]
    out += [("disputes", r["state"], r["n"]) for r in rows]
    return out + [("dispute_transitions_refused", "open", refused)]
