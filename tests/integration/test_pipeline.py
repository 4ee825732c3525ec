"""The whole pipeline on the slice files against real PostgreSQL and Delta: results, rerun safety, exports.

Each test starts from its own copy of the slice's day after ``run_all`` (``slice_day`` in conftest: the day
runs once per test worker, each test gets a cloned database and a copied lake)."""
import csv
from collections import Counter
from datetime import date

import pytest

from conftest import DATA, SLICE_DAY as DAY
from jobs import lake
from jobs.export import export
from jobs.pipeline import run_all
from jobs.report import load_run, render
from jobs.store.db import connect

pytestmark = [pytest.mark.spark, pytest.mark.postgres]


def table_counts(spark, settings, tenant_id) -> dict[str, int]:
    counts = {name: lake.read(spark, settings, name, tenant_id).count() for name in lake.TABLES}
    with connect(settings, tenant_id) as conn:
        for table in ("raw_file", "raw_file_delivery", "recon_run", "run_metric", "exception_item"):
            counts[table] = conn.execute(f"SELECT count(*) AS n FROM {table} WHERE tenant_id = %s",
                                         (tenant_id,)).fetchone()["n"]
    return counts


def read_csv(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def test_slice_matches_posts_publishes_and_reruns_identically(spark, slice_day, tmp_path):
    settings, tenant_id, summary = slice_day.settings, slice_day.tenant_id, slice_day.summary
    assert summary["ledger_balanced"] is True
    assert summary["match"]["match_groups"] == {"book_psp/L1": 5, "book_psp/L2": 1, "payout_bank/L4": 2}
    first = table_counts(spark, settings, tenant_id)
    assert first["events"] == 19 and first["quarantine"] == 1 and first["raw_file"] == 4

    run_all(settings, tenant_id, DAY, DATA / "slice", "run-2", spark=spark)
    assert table_counts(spark, settings, tenant_id) == {**first, "raw_file_delivery": first["raw_file_delivery"]}

    export(settings, tenant_id, "matches", tmp_path / "m.csv")
    matches = read_csv(tmp_path / "m.csv")
    pairs = {}
    for r in matches:
        pairs.setdefault(r["match_id"], []).append((r["file_name"], int(r["record_ordinal"]), r["level"]))
    book_stripe = [m for m in pairs.values() if ("book_payments_2026-11-19.csv", 2, "2") in m]
    assert book_stripe == [[("book_payments_2026-11-19.csv", 2, "2"), ("stripe_payout_po_TEST1.csv", 2, "2")]] or \
        sorted(book_stripe[0]) == sorted([("book_payments_2026-11-19.csv", 2, "2"), ("stripe_payout_po_TEST1.csv", 2, "2")])
    stripe_payout = [m for m in pairs.values() if ("camt053_2026-11-20.xml", 1, "4") in m][0]
    assert sorted(o for f, o, _ in stripe_payout if f.startswith("stripe")) == [1, 2, 3, 4, 5]

    export(settings, tenant_id, "files", tmp_path / "f.csv")
    files = {r["file_name"]: r for r in read_csv(tmp_path / "f.csv")}
    assert files["book_payments_2026-11-19.csv"]["records_quarantined"] == "1"
    assert files["settlement_detail_report_batch_7.csv"]["control_totals_ok"] == "true"
    export(settings, tenant_id, "quarantine", tmp_path / "q.csv")
    assert [(r["record_ordinal"], r["reason_code"]) for r in read_csv(tmp_path / "q.csv")] == [("8", "AMOUNT_PRECISION")]

    export(settings, tenant_id, "journals", tmp_path / "j.csv")
    journal = read_csv(tmp_path / "j.csv")
    by_ccy = {}
    for r in journal:
        dr, cr = by_ccy.get(r["currency"], (0, 0))
        by_ccy[r["currency"]] = (dr + int(r["debit_minor"]), cr + int(r["credit_minor"]))
    assert by_ccy and all(dr == cr for dr, cr in by_ccy.values())

    # The run's figures (run_metric, what `recon summary` and the Reconciliation page show) are the exported rows
    with connect(settings, slice_day.tenant_id) as conn:
        stored = {(r["metric"], r["dimension"]): r["value"] for r in conn.execute(
            "SELECT metric, dimension, value FROM run_metric WHERE tenant_id = %s AND business_date = %s",
            (tenant_id, DAY)).fetchall()}
    want = Counter()
    for r in journal:
        want[("trial_balance_debit_minor", f"{r['account']}|{r['currency']}")] += int(r["debit_minor"])
        want[("trial_balance_credit_minor", f"{r['account']}|{r['currency']}")] += int(r["credit_minor"])
    for ccy, (dr, cr) in by_ccy.items():
        want[("ledger_debit_minor", ccy)], want[("ledger_credit_minor", ccy)] = dr, cr
        want[("journals", ccy)] = len({r["journal_id"] for r in journal if r["currency"] == ccy})
    for r in matches:
        want[("matched_records", f"{r['relation']}/L{r['level']}")] += 1
    for relation_level in {f"{r['relation']}/L{r['level']}" for r in matches}:
        want[("match_groups", relation_level)] = len({r["match_id"] for r in matches
                                                      if f"{r['relation']}/L{r['level']}" == relation_level})
    for e in lake.read(spark, settings, "events", tenant_id).collect():
        want[("records_loaded", e.source)] += 1
    for f in files.values():
        want[("files_parsed", f["format"])] += 1
    want[("records_quarantined", "AMOUNT_PRECISION")] = 1
    book_matched = {(r["file_name"], r["record_ordinal"]) for r in matches
                    if r["relation"] == "book_psp" and r["file_name"].startswith("book_")}
    want[("book_records", "matched")] = len(book_matched)
    for f in lake.read(spark, settings, "fee_checks", tenant_id).collect():     # the report's fees, per PSP
        dim = f"{f.psp or '?'}|{f.currency}"
        if f.expected_minor is None:
            want[("fees_unpriced_minor", dim)] += f.charged_minor
        else:
            want[("fees_charged_minor", dim)] += f.charged_minor
            want[("fees_expected_minor", dim)] += f.expected_minor
    assert any(m == "fees_charged_minor" for m, _ in want)
    assert {k: v for k, v in stored.items() if k in want} == dict(want)
    assert {m for m, _ in stored} - {m for m, _ in want} <= {"book_records", "exceptions", "expected", "fee_checks",
                                                            "disputes", "dispute_transitions_refused"}
    assert stored[("book_records", "total")] >= len(book_matched) and stored[("book_records", "window_days")] > 0

    text = render(load_run(settings, tenant_id, DAY))
    assert "exact PSP id" in text and "balanced" in text and "NOT BALANCED" not in text


def test_a_book_record_becomes_missing_in_psp_after_three_business_days(spark, slice_day):
    settings, tenant_id = slice_day.settings, slice_day.tenant_id                         # run on Friday
    missing = lambda d: {(r.file_name, r.record_ordinal, r.status, r.reason_code)  # noqa: E731
                         for r in lake.read(spark, settings, "item_status", tenant_id, since=d, until=d).collect()
                         if r.record_ordinal == 7}
    assert missing(DAY) == {("book_payments_2026-11-19.csv", 7, "EXPECTED", None)}
    for day in (date(2026, 11, 24), date(2026, 11, 25)):                                 # Tue, Wed (D+3 bd)
        run_all(settings, tenant_id, day, None, f"d{day}", spark=spark)
    assert missing(date(2026, 11, 24)) == {("book_payments_2026-11-19.csv", 7, "EXPECTED", None)}
    assert missing(date(2026, 11, 25)) == {("book_payments_2026-11-19.csv", 7, "EXCEPTION", "MISSING_IN_PSP")}
    with connect(settings, slice_day.tenant_id) as conn:
        row = conn.execute("SELECT reason_code, is_open, first_seen_date FROM exception_item WHERE tenant_id = %s "
                           "AND file_name = 'book_payments_2026-11-19.csv' AND record_ordinal = 7",
                           (tenant_id,)).fetchone()
    assert (row["reason_code"], row["is_open"], row["first_seen_date"]) == ("MISSING_IN_PSP", True, date(2026, 11, 25))


def test_a_day_reads_no_partition_older_than_the_lookback_and_carries_what_is_still_open(spark, slice_day):
    """Per-day cost flat in history: 60 days after the slice's day (acme's lookback is 45), the day's run
    gives the same result after every file of the slice day's events, quarantine, matches and journal
    partitions is deleted, so it opened none of them; the slice's open items are carried (from the
    previous run's open items) with their file and amount, not read again from the events."""
    import shutil
    from datetime import timedelta

    from jobs.schema import ITEM_STATUS_SCHEMA

    settings, tenant_id = slice_day.settings, slice_day.tenant_id
    later = DAY + timedelta(days=60)
    keep = [f.name for f in ITEM_STATUS_SCHEMA.fields if f.name not in ("run_id", "run_date")]
    status = lambda: sorted(tuple(r[k] for k in keep)  # noqa: E731
                            for r in lake.read(spark, settings, "item_status", tenant_id, since=later, until=later)
                            .select(*keep).collect())
    run_all(settings, tenant_id, later, None, "h1", spark=spark)
    carried = status()
    rows = [dict(zip(keep, r)) for r in carried]
    open_on_day = {(r.event_id, r.relation, r.file_name, r.amount_minor) for r in lake.read(
        spark, settings, "item_status", tenant_id, since=DAY, until=DAY).collect()}
    assert open_on_day and {(r["event_id"], r["relation"], r["file_name"], r["amount_minor"]) for r in rows} == open_on_day
    assert all(r["status"] == "EXCEPTION" for r in rows)           # 60 days on, every carried item has aged

    for name in ("events", "quarantine", "file_stats", "matches", "journal"):
        column = lake.TABLES[name].date_column
        folder = lake.table_path(settings, name).removeprefix("file:")
        gone = f"{folder}/tenant_id={tenant_id}/{column}={DAY.isoformat()}"
        shutil.rmtree(gone)
    spark.catalog.clearCache()
    run_all(settings, tenant_id, later, None, "h2", spark=spark)
    assert status() == carried


def test_a_lake_from_before_open_items_were_kept_carries_its_items_from_the_events_once(spark, slice_day):
    """Upgrade path: the previous run left item_status but no open_items rows (a lake written before they
    were kept): the next run joins the carried items with their events once and keeps them from then on."""
    from datetime import timedelta

    from jobs.match.engine import run_match
    from jobs.tenants import load_tenant

    settings, tenant_id = slice_day.settings, slice_day.tenant_id
    spark.sql(f"DELETE FROM delta.`{lake.table_path(settings, 'open_items')}` WHERE tenant_id = '{tenant_id}'")
    assert lake.read(spark, settings, "open_items", tenant_id).count() == 0
    later = DAY + timedelta(days=3)
    run_match(spark, settings, load_tenant(settings, tenant_id), later, "u1")
    carried = lambda name, day: {(r.event_id, r.relation, r.file_name, r.amount_minor)  # noqa: E731
                                 for r in lake.read(spark, settings, name, tenant_id, since=day, until=day).collect()}
    assert carried("item_status", DAY) and carried("item_status", later) == carried("item_status", DAY)
    assert carried("open_items", later) == carried("item_status", DAY)
