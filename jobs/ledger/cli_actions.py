"""What the ledger's CLI commands do (``jobs/ledger/cli.py`` declares them); one function per command."""
from __future__ import annotations

import argparse

from jobs.money import format_minor
from jobs.settings import Settings


def _spark(settings: Settings, name: str):
    from jobs.spark import get_spark

    return get_spark(settings, app_name=f"recon-{name}")


def trace(args: argparse.Namespace, settings: Settings) -> int:
    from jobs.ledger.trace import render, trace as run_trace

    print(render(run_trace(_spark(settings, "trace"), settings, args.tenant, args.record, args.psp_ref)))
    return 0


def dispute(args: argparse.Namespace, settings: Settings) -> int:
    from jobs.ledger import dispute_ops as ops

    if args.action == "list":
        for d in ops.list_disputes(settings, args.tenant, args.state):
            print(f"#{d['dispute_id']} {d['psp']} {d['payment_ref']} {d['state']} cycle {d['cycle']} "
                  f"{format_minor(d['amount_minor'], d['currency'])} {d['currency']} due {d['due_date']}")
        for e in ops.refused(settings, args.tenant):
            print(f"refused event #{e['dispute_event_id']}: {e['detail']} ({e['file_name']}#{e['record_ordinal']})")
        return 0
    if args.action == "show":
        shown = ops.show(settings, args.tenant, args.dispute)
        d = shown["dispute"]
        print(f"dispute #{d['dispute_id']} {d['psp']} payment {d['payment_ref']}: {d['state']} (cycle {d['cycle']}), "
              f"{format_minor(d['amount_minor'], d['currency'])} {d['currency']}, evidence due {d['due_date']}")
        for e in shown["events"]:
            print(f"  {e['at']:%Y-%m-%d %H:%M} {e['origin']:<8} {e['action']:<17} {e['outcome']:<8} "
                  f"{e['from_state'] or '-'} -> {e['to_state'] or '-'}  {e['actor']}  {e['detail'] or ''}")
        for v in shown["evidence"]:
            print(f"  evidence #{v['evidence_id']} {v['s3_key']} sha256={v['sha256']} by {v['added_by']} "
                  f"at {v['added_at']:%Y-%m-%d %H:%M}  {v['description'] or ''}")
        return 0
    if args.action == "ack":
        ops.acknowledge(settings, args.tenant, args.event, args.by, args.reason)
        print(f"acknowledged refused dispute event #{args.event}")
        return 0
    if args.action in ("add-evidence", "submit-evidence") and args.s3_key:
        evidence_id = ops.add_evidence(settings, args.tenant, args.dispute, args.s3_key, args.sha256 or "", args.note,
                                       args.by)
        print(f"attached evidence #{evidence_id} to dispute #{args.dispute}")
    if args.action == "add-evidence":
        return 0
    action = {"submit-evidence": "submit", "accept": "accept", "lost": "lose"}[args.action]
    state = ops.transition(settings, args.tenant, args.dispute, action, args.by, getattr(args, "reason", None))
    if state == ops.ACCEPT_PROPOSED:
        print(f"proposed accepting dispute #{args.dispute}; a second person approves it (`recon correction list`)")
    else:
        print(f"dispute #{args.dispute} is now {state}")
    return 0


def period(args: argparse.Namespace, settings: Settings) -> int:
    from jobs.ledger import periods

    if args.action == "list":
        for p in periods.list_periods(settings, args.tenant):
            print(f"{p['period']:<10} {p['status']:<6} by {p['changed_by']} at {p['changed_at']:%Y-%m-%d %H:%M}  "
                  f"{p['reason'] or ''}")
        return 0
    status = "closed" if args.action == "close" else "open"
    p = periods.set_status(settings, args.tenant, args.period, status, args.by, args.reason)
    print(f"period {p.label} ({p.start} .. {p.end}) is {status}")
    if status == "closed":                    # the auditors' record of how the period was reconciled
        from jobs import evidence

        pack = evidence.build(settings, args.tenant, p.label, args.by)
        print(f"evidence pack #{pack.pack_no}: {pack.uri} (SHA-256 {pack.archive_sha256})")
    return 0


def adjustment(args: argparse.Namespace, settings: Settings) -> int:
    from jobs.ledger import adjustments as adj

    if args.action == "list":
        for a in adj.list_adjustments(settings, args.tenant):
            state = f"approved by {a['approved_by']}, posts {a['post_date']}" if a["approved_by"] else "proposed"
            print(f"#{a['adjustment_id']} Dr {a['debit_key']} / Cr {a['credit_key']} "
                  f"{format_minor(a['amount_minor'], a['currency'])} {a['currency']} ({state}) {a['reason']}")
        return 0
    if args.action == "approve":
        post = adj.approve(settings, args.tenant, args.id, args.by, args.business_date)
        print(f"adjustment #{args.id} approved; the ledger run of {post} posts it")
        return 0
    event_id, label = None, None
    if args.record:
        from pyspark.sql import functions as F

        from jobs import lake

        label = f"{args.record[0]}#{args.record[1]}"
        found = (lake.read(_spark(settings, "adjustment"), settings, "events", args.tenant)
                 .filter((F.col("file_name") == args.record[0]) & (F.col("record_ordinal") == args.record[1]))
                 .select("event_id").first())
        if found is None:
            raise adj.AdjustmentError(f"tenant {args.tenant}: no record {label}")
        event_id = found["event_id"]
    n = adj.propose(settings, args.tenant, args.effective_date, args.debit, args.credit, args.amount, args.currency,
                    args.reason, args.by, args.psp, event_id, label)
    print(f"proposed adjustment #{n}; someone else approves it with `recon adjustment approve --id {n}`")
    return 0


def erp(args: argparse.Namespace, settings: Settings) -> int:
    from jobs.ledger.erp import outbox

    if args.action == "list":
        for b in outbox.list_batches(settings, args.tenant):
            print(f"#{b['batch_id']} {b['erp']:<10} {b['period']:<14} {b['documents']:>6} documents {b['lines']:>7} lines "
                  f"{b['transmissions']} transmission(s) sha256 {b['content_sha256'][:16]}  {b['layout']}")
        return 0
    if args.action == "resend":
        r = outbox.resend(settings, args.tenant, args.erp, args.period, args.by, args.reason)
        print(f"{r.erp} {r.period}: transmission {r.transmission_no} written to {r.uri}")
        return 0
    from jobs.ledger.stage import run_erp_export
    from jobs.pipeline import prepare

    cfg = prepare(settings, args.tenant)
    batches = run_erp_export(_spark(settings, "erp-export"), settings, cfg, args.period, args.by, args.erp)
    for name, r in batches.items():
        if r is None:
            print(f"{name}: no journals for {args.period}")
        else:
            print(f"{name} {r['period']}: batch #{r['batch_id']} ({r['documents']} documents, {r['lines']} lines) "
                  f"{'written to ' + r['uri'] if r['created'] else 'was already sent; nothing new'}")
    return 0
