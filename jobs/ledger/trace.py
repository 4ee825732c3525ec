"""The trace of one payment, end to end, with the postings at each step:

    authorisation (the merchant's order record, the PSP payment) -> capture -> settlement (refunds,
    chargebacks, reversals, fees) -> payout (the batch that paid it out) -> bank (the credit that
    brought the payout in)

Start from any record (``FILE#ORDINAL``: a book row, a PSP row of the payment or of a refund /
chargeback) or a PSP reference (charge id, Adyen PSP reference, refund or dispute id). Disputes of
the payment come from PostgreSQL with their lifecycle.
"""
from __future__ import annotations

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from jobs import lake
from jobs.ledger.postings import payout_journal_id
from jobs.match.manual import active_matches
from jobs.match.rules import BOOK_PSP, PAYOUT_BANK
from jobs.money import format_minor
from jobs.settings import Settings
from jobs.store.db import connect

EVENT_FIELDS = ["event_id", "source", "event_type", "amount_minor", "fee_minor", "currency", "psp_ref",
                "psp_payment_ref", "payout_ref", "booked_at", "ingest_date", "file_name", "record_ordinal"]
JOURNAL_FIELDS = ["journal_id", "entry_no", "journal_type", "posting_date", "account", "debit_minor", "credit_minor",
                  "currency", "event_id", "match_id", "source_event_ids"]
CAPTURE_TYPES = ("payment", "capture")


class TraceError(LookupError):
    pass


def _rows(df, fields) -> list[dict]:
    return [r.asDict() for r in df.select(*fields).collect()]


def trace(spark: SparkSession, settings: Settings, tenant: str, record: tuple[str, int] | None = None,
          psp_ref: str | None = None) -> dict:
    events = lake.read(spark, settings, "events", tenant)
    if record:
        anchor = events.filter((F.col("file_name") == record[0]) & (F.col("record_ordinal") == record[1]))
    else:
        anchor = events.filter((F.col("psp_ref") == psp_ref) | (F.col("psp_payment_ref") == psp_ref))
    found = anchor.select("event_id", "source_kind", "psp_ref", "psp_payment_ref").collect()
    if not found:
        what = f"{record[0]}#{record[1]}" if record else f"PSP reference {psp_ref}"
        raise TraceError(f"tenant {tenant}: no record for {what}")
    matches = active_matches(spark, settings, tenant)
    bp = matches.filter(F.col("relation") == BOOK_PSP)
    ids = [r.event_id for r in found]
    if any(r.source_kind == "book" for r in found):
        groups = bp.filter(F.col("event_id").isin(ids)).select("match_id")
        ids += [r.event_id for r in bp.join(groups, "match_id").select("event_id").collect()]
    refs = sorted({x for r in events.filter(F.col("event_id").isin(ids) & (F.col("source_kind") == "psp"))
                   .select("psp_ref", "psp_payment_ref").collect() for x in (r.psp_payment_ref or r.psp_ref,) if x})
    psp = events.filter((F.col("source_kind") == "psp") & (F.col("psp_payment_ref").isin(refs) | F.col("psp_ref").isin(refs)))
    psp_rows = _rows(psp.orderBy("booked_at", "file_name", "record_ordinal"), EVENT_FIELDS)
    psp_ids = [r["event_id"] for r in psp_rows]
    capture_ids = [r["event_id"] for r in psp_rows if r["event_type"] in CAPTURE_TYPES]
    book_ids = bp.join(bp.filter(F.col("event_id").isin(psp_ids)).select(
        "match_id", F.col("event_id").isin(capture_ids or [""]).alias("of_capture")), "match_id") \
        .filter(F.col("role") == "book").groupBy("event_id").agg(F.max("of_capture").alias("of_capture"))
    book_rows = _rows(events.join(book_ids, "event_id").orderBy("file_name", "record_ordinal"),
                      EVENT_FIELDS + ["of_capture"])
    pb = matches.filter(F.col("relation") == PAYOUT_BANK)
    bank_ids = pb.join(pb.filter(F.col("event_id").isin(psp_ids)).select("match_id").distinct(), "match_id") \
        .filter(F.col("role") == "bank").select("event_id", "match_id").distinct()
    bank_rows = _rows(events.join(bank_ids, "event_id"), EVENT_FIELDS + ["match_id"])
    journal = lake.read(spark, settings, "journal", tenant)
    all_ids = psp_ids + [r["event_id"] for r in bank_rows]
    # the payout journals of the days the payment's records were posted (and their restatements)
    payout_ids = [r[0] for r in psp.filter(F.col("payout_ref").isNotNull())
                  .select(payout_journal_id(F.col("ingest_date").cast("string"))).distinct().collect()] or [""]
    related = journal.filter(F.col("event_id").isin(all_ids) | F.col("journal_id").isin(payout_ids)
                             | F.col("restates_journal_id").isin(payout_ids) | F.arrays_overlap(
        F.coalesce("source_event_ids", F.array().cast("array<string>")), F.array(*[F.lit(i) for i in psp_ids or [""]])))
    lines = _rows(related.orderBy("posting_date", "journal_id", "entry_no"), JOURNAL_FIELDS)
    with connect(settings, tenant) as conn:
        disputes = conn.execute("SELECT dispute_id, psp, payment_ref, state, cycle, due_date FROM dispute WHERE "
                                "tenant_id = %s AND payment_ref = ANY(%s)", (tenant, refs)).fetchall()

    def journals(pred) -> list[dict]:
        return [x for x in lines if pred(x)]

    captures = [r for r in psp_rows if r["event_type"] in CAPTURE_TYPES]
    others = [r for r in psp_rows if r["event_type"] not in CAPTURE_TYPES]
    of = lambda rows: {r["event_id"] for r in rows}  # noqa: E731
    return {
        "payment_refs": refs,
        "steps": [
            {"step": "authorisation", "records": [r for r in book_rows if r["of_capture"]] + captures[:1],
             "postings": []},
            {"step": "capture", "records": captures, "postings": journals(lambda x: x["event_id"] in of(captures)
                                                                          and x["journal_type"] != "psp_payout")},
            {"step": "settlement", "records": [r for r in book_rows if not r["of_capture"]] + others, "postings": journals(lambda x: x["event_id"] in of(others)
                                                                           and x["journal_type"] != "psp_payout")},
            {"step": "payout", "records": sorted({(r["source"], r["payout_ref"]) for r in psp_rows if r["payout_ref"]}),
             "postings": journals(lambda x: x["journal_type"] == "psp_payout")},
            {"step": "bank", "records": bank_rows, "postings": journals(lambda x: x["event_id"] in of(bank_rows))},
        ],
        "disputes": disputes,
    }


def render(result: dict) -> str:
    out = [f"Trace of payment {', '.join(result['payment_refs']) or '(no PSP reference)'}"]
    for step in result["steps"]:
        out.append(f"\n{step['step']}:")
        for r in step["records"]:
            if isinstance(r, tuple):
                out.append(f"  payout {r[0]} {r[1]}")
                continue
            out.append(f"  {r['file_name']}#{r['record_ordinal']}  {r['source']} {r['event_type']} "
                       f"{format_minor(r['amount_minor'], r['currency'])} {r['currency']}  {r['psp_ref'] or ''}")
        for x in step["postings"]:
            side = (f"Dr {format_minor(x['debit_minor'], x['currency'])}" if x["debit_minor"]
                    else f"Cr {format_minor(x['credit_minor'], x['currency'])}")
            out.append(f"    {x['posting_date']} {x['journal_id'][:12]} #{x['entry_no']} {x['account']:<36} "
                       f"{side:>16} {x['currency']}")
        if not step["records"] and not step["postings"]:
            out.append("  (nothing yet)")
    for d in result["disputes"]:
        out.append(f"\ndispute #{d['dispute_id']} {d['psp']} {d['payment_ref']}: {d['state']} (cycle {d['cycle']}, "
                   f"evidence due {d['due_date']})")
    return "\n".join(out)
