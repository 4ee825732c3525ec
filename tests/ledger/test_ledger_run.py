"""The ledger in the real pipeline (slice files, Delta, PostgreSQL): the day balances per currency, fee
exceptions reach the exports and the queue, chargebacks open disputes, ERP batches are written once
and re-sent on demand, reruns change nothing, a closed period keeps its journals and moves new
postings to the next open date, and a payment can be traced from the book to the bank."""
import csv
import hashlib
import json
from datetime import date
from pathlib import Path

import pytest
from pyspark.sql import functions as F

from conftest import SLICE_DAY as DAY
from jobs import corrections, lake, pipeline
from jobs.export import export
from jobs.ledger import adjustments, periods
from jobs.ledger.erp import writer
from jobs.ledger.erp.outbox import resend
from jobs.ledger.trace import render, trace
from jobs.store.db import connect

pytestmark = [pytest.mark.spark, pytest.mark.postgres]
STRIPE, ADYEN = "stripe_payout_po_TEST1.csv", "settlement_detail_report_batch_7.csv"


def csv_rows(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def journal(spark, settings, tenant):
    rows = lake.read(spark, settings, "journal", tenant).filter(F.col("business_date") == F.lit(DAY)).collect()
    return {(r.journal_id, r.entry_no, r.account, r.debit_minor, r.credit_minor, r.currency, r.posting_date) for r in rows}


def batches(settings, tenant):
    with connect(settings, tenant) as conn:
        return conn.execute("SELECT b.erp, b.period, b.documents, b.content_sha256, t.transmission_no, t.uri FROM "
                            "erp_export_batch b JOIN erp_transmission t USING (batch_id) WHERE b.tenant_id = %s "
                            "ORDER BY b.erp, b.period, t.transmission_no", (tenant,)).fetchall()


def test_ledger_exports_reruns_and_closed_periods(spark, slice_day, tmp_path):
    settings, tenant_id = slice_day.settings, slice_day.tenant_id                    # the slice's day, run once
    assert slice_day.summary["ledger_balanced"] is True
    cfg = pipeline.prepare(settings, tenant_id)

    export(settings, tenant_id, "journals", tmp_path / "j.csv")
    with open(tmp_path / "j.csv") as fh:
        assert fh.readline().strip() == ("journal_id,entry_no,business_date,account,debit_minor,credit_minor,currency,"
                                         "match_id,source_file_name,source_record_ordinal")
    export(settings, tenant_id, "exceptions", tmp_path / "e.csv")
    fee = {(r["file_name"], r["record_ordinal"]) for r in csv_rows(tmp_path / "e.csv") if r["reason_code"] == "UNEXPECTED_FEE"}
    assert fee == {(STRIPE, "1"), (STRIPE, "2"), (ADYEN, "1"), (ADYEN, "2")}    # hand-written fees off the rate card
    with connect(settings, slice_day.tenant_id) as conn:
        queue = conn.execute("SELECT file_name, record_ordinal, reason_detail FROM exception_item WHERE tenant_id = %s "
                             "AND reason_code = 'UNEXPECTED_FEE' AND is_open", (tenant_id,)).fetchall()
        dispute = conn.execute("SELECT psp, payment_ref, state FROM dispute WHERE tenant_id = %s", (tenant_id,)).fetchall()
    assert {(r["file_name"], str(r["record_ordinal"])) for r in queue} == fee
    assert any("stripe.card.domestic expects 175" in r["reason_detail"] for r in queue)
    assert [tuple(d.values()) for d in dispute] == [("stripe", "ch_X", "evidence_due")]

    # ERP export: one batch per ERP, parsed back and balanced; a rerun sends nothing; a re-send copies it
    pipeline.stage_erp_export(spark, settings, cfg, DAY, "dag-run-1")
    first = batches(settings, tenant_id)
    assert [(b["erp"], b["period"], b["transmission_no"]) for b in first] == [
        ("netsuite", "2026-11-20", 1), ("quickbooks", "2026-11-20", 1), ("sap", "2026-11-20", 1)]
    for b in first:
        content = Path(b["uri"]).read_bytes()
        assert hashlib.sha256(content).hexdigest() == b["content_sha256"].strip()
        manifest = json.loads((Path(b["uri"]).parent / "manifest.json").read_text())
        assert manifest["file"]["sha256"] == b["content_sha256"].strip() and manifest["documents"] == b["documents"]
        parsed = writer(b["erp"]).parse(content, cfg.raw["erp"][b["erp"]])
        assert len(parsed) == b["documents"] > 10
        assert all(sum(x[1] for x in p["lines"]) == sum(x[2] for x in p["lines"]) for p in parsed)
    before = journal(spark, settings, tenant_id)
    pipeline.stage_ledger(spark, settings, cfg, DAY, "run-2")                 # exported journals are frozen: same
    pipeline.stage_erp_export(spark, settings, cfg, DAY, "dag-run-2")
    assert journal(spark, settings, tenant_id) == before and batches(settings, tenant_id) == first
    again = resend(settings, tenant_id, "sap", "2026-11-20", "ann", "SAP lost the file")
    assert again.transmission_no == 2 and Path(again.uri).read_bytes() == Path(first[2]["uri"]).read_bytes()

    # close the day; an approved adjustment for it goes to the next open date, clearing its fee exception
    periods.set_status(settings, tenant_id, DAY.isoformat(), "closed", "controller", "day closed")
    n = adjustments.propose(settings, tenant_id, DAY, "payment_fees", "unexpected_fees", "0.05", "EUR",
                            "Stripe confirmed the fee", "ann", "stripe", _event_id(spark, settings, tenant_id, STRIPE, 1))
    with pytest.raises(adjustments.AdjustmentError, match="someone other than the proposer"):
        adjustments.approve(settings, tenant_id, n, "ann", DAY)
    with pytest.raises(adjustments.AdjustmentError, match="bob may not approve corrections"):
        adjustments.approve(settings, tenant_id, n, "bob", DAY)                     # no approving role yet
    corrections.grant(settings, tenant_id, "root", "admin", "root")
    corrections.grant(settings, tenant_id, "bob", "approver", "root")
    adjustments.approve(settings, tenant_id, n, "bob", DAY)
    pipeline.stage_ledger(spark, settings, cfg, DAY, "run-3")
    after = journal(spark, settings, tenant_id)
    added = after - before
    assert before <= after and {(a[2], a[3], a[4], a[6]) for a in added} == {
        ("6110 Payment fees", 5, 0, date(2026, 11, 21)), ("6140 Unexpected PSP fees", 0, 5, date(2026, 11, 21))}
    refs = lake.read(spark, settings, "journal", tenant_id).filter(F.col("journal_type") == "adjustment") \
        .select("period_ref").distinct().collect()
    assert [r.period_ref for r in refs] == ["business date 2026-11-20 falls in closed period 2026-11-20; posted on 2026-11-21"]
    open_fee = lake.read(spark, settings, "fee_checks", tenant_id).filter(
        (F.col("run_date") == F.lit(DAY)) & (F.col("status") == "UNEXPECTED_FEE")).select("file_name", "record_ordinal")
    assert (STRIPE, 1) not in {tuple(r) for r in open_fee.collect()}
    pipeline.stage_erp_export(spark, settings, cfg, DAY, "dag-run-3")
    supplements = [b for b in batches(settings, tenant_id) if b["period"] == "2026-11-20+1"]
    assert [(b["erp"], b["documents"]) for b in supplements] == [("netsuite", 1), ("quickbooks", 1), ("sap", 1)]

    # the trace: book record -> Stripe charge -> payout po_TEST1 -> camt credit, with postings at each step
    shown = trace(spark, settings, tenant_id, record=("book_payments_2026-11-19.csv", 1))
    steps = {s["step"]: s for s in shown["steps"]}
    assert shown["payment_refs"] == ["ch_A"]
    assert [r["file_name"] for r in steps["authorisation"]["records"]] == ["book_payments_2026-11-19.csv", STRIPE]
    assert {r["event_type"] for r in steps["settlement"]["records"]} == {"refund"}
    assert steps["payout"]["records"] == [("stripe", "po_TEST1")] and steps["payout"]["postings"]
    assert [r["file_name"] for r in steps["bank"]["records"]] == ["camt053_2026-11-20.xml"]
    assert any("1010 Bank" in x["account"] for x in steps["bank"]["postings"])
    assert "capture:" in render(shown) and "po_TEST1" in render(shown)


def _event_id(spark, settings, tenant, file_name, ordinal):
    return (lake.read(spark, settings, "events", tenant)
            .filter((F.col("file_name") == file_name) & (F.col("record_ordinal") == ordinal)).first()["event_id"])
