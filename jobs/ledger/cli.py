"""``recon trace | dispute | period | adjustment | erp`` (wired into ``jobs.cli``): the ledger for operators.

  recon trace      --tenant T (--record FILE#N | --psp-ref REF)           payment -> ... -> bank, with postings
  recon dispute    list --tenant T [--state S] | show --tenant T --dispute N
  recon dispute    add-evidence --tenant T --dispute N --s3-key KEY --sha256 HEX [--note TEXT]
  recon dispute    submit-evidence --tenant T --dispute N [--s3-key KEY --sha256 HEX]
  recon dispute    accept|lost --tenant T --dispute N --reason TEXT
  recon dispute    ack --tenant T --event N --reason TEXT      acknowledge a refused transition
  recon period     close|reopen --tenant T --period YYYY-MM[-DD] [--reason TEXT] | list --tenant T
  recon adjustment propose --tenant T --effective-date D --debit KEY --credit KEY --amount 12.34 --currency EUR
                   [--psp P] [--record FILE#N] --reason TEXT
  recon adjustment approve --tenant T --id N [--business-date D] | list --tenant T
  recon erp        export --tenant T --period YYYY-MM-DD [--erp E] | list --tenant T
  recon erp        resend --tenant T --erp E --period P --reason TEXT
"""
from __future__ import annotations

import argparse
import sys
from datetime import date

from jobs.settings import Settings

COMMANDS = ("trace", "dispute", "period", "adjustment", "erp")


def _record(text: str) -> tuple[str, int]:
    name, sep, ordinal = text.rpartition("#")
    if not sep or not name or not ordinal.isdigit():
        raise argparse.ArgumentTypeError(f"expected FILE_NAME#RECORD_ORDINAL, got {text!r}")
    return name, int(ordinal)


def _p(actions, name: str, helptext: str, *, by: bool = True, reason: bool = False) -> argparse.ArgumentParser:
    """``by``: the command records who does it: the person the command runs as (``RECON_ACTOR``, else the OS
    user; ``jobs.corrections.actor_from_environment``), never a name typed on the command line."""
    p = actions.add_parser(name, help=helptext)
    p.add_argument("--tenant", required=True)
    p.add_argument("--lake", help="lake location (folder or s3://...); default RECON_LAKE or .local/lake")
    p.set_defaults(records_actor=by)
    if reason:
        p.add_argument("--reason", required=True)
    return p


def add_commands(sub) -> None:
    trace = sub.add_parser("trace", help="a payment from authorisation to the bank, with the postings at each step")
    trace.add_argument("--tenant", required=True)
    trace.add_argument("--lake")
    which = trace.add_mutually_exclusive_group(required=True)
    which.add_argument("--record", type=_record, help="FILE_NAME#RECORD_ORDINAL of any record of the payment")
    which.add_argument("--psp-ref", help="a PSP reference of the payment (charge, PSP reference, refund, dispute)")

    disp = sub.add_parser("dispute", help="chargebacks and disputes").add_subparsers(dest="action", required=True)
    _p(disp, "list", "disputes of a tenant", by=False).add_argument("--state")
    _p(disp, "show", "a dispute with its history and evidence", by=False).add_argument("--dispute", type=int,
                                                                                        required=True)
    for name, text in (("add-evidence", "attach a document (object key + SHA-256)"),
                       ("submit-evidence", "submit the evidence to the PSP (optionally attaching one more)")):
        p = _p(disp, name, text)
        p.add_argument("--dispute", type=int, required=True)
        p.add_argument("--s3-key", required=(name == "add-evidence"))
        p.add_argument("--sha256", required=(name == "add-evidence"))
        p.add_argument("--note")
    for name, text in (("accept", "accept the chargeback (no defence)"), ("lost", "record that the dispute was lost")):
        _p(disp, name, text, reason=True).add_argument("--dispute", type=int, required=True)
    _p(disp, "ack", "acknowledge a refused transition", reason=True).add_argument("--event", type=int, required=True)

    period = sub.add_parser("period", help="close / reopen accounting periods").add_subparsers(dest="action",
                                                                                             required=True)
    p = _p(period, "close", "close a business date or month")
    p.add_argument("--period", required=True)
    p.add_argument("--reason")
    p = _p(period, "reopen", "reopen a closed period", reason=True)
    p.add_argument("--period", required=True)
    _p(period, "list", "periods closed or reopened", by=False)

    adj = sub.add_parser("adjustment", help="ledger adjustments (four eyes)").add_subparsers(dest="action",
                                                                                           required=True)
    p = _p(adj, "propose", "propose a balanced two-line adjustment", reason=True)
    p.add_argument("--effective-date", type=date.fromisoformat, required=True)
    p.add_argument("--debit", required=True, help="account key, e.g. payment_fees")
    p.add_argument("--credit", required=True, help="account key, e.g. unexpected_fees")
    p.add_argument("--amount", required=True, help="major units, e.g. 12.34")
    p.add_argument("--currency", required=True)
    p.add_argument("--psp")
    p.add_argument("--record", type=_record, help="FILE#N the adjustment settles (clears its fee exception)")
    p = _p(adj, "approve", "approve (someone other than the proposer)")
    p.add_argument("--id", type=int, required=True)
    p.add_argument("--business-date", type=date.fromisoformat, help="the approval's business date (default: the database's current date)")
    _p(adj, "list", "adjustments of a tenant", by=False)

    erp = sub.add_parser("erp", help="ERP export batches").add_subparsers(dest="action", required=True)
    p = _p(erp, "export", "export a business date's journals not sent yet", by=False)
    p.add_argument("--period", type=date.fromisoformat, required=True, help="business date YYYY-MM-DD")
    p.add_argument("--erp", action="append", help="only this ERP (repeatable; default erp.targets)")
    p.add_argument("--by", default="recon-cli")
    p = _p(erp, "resend", "put a recorded batch in the outbox again (new transmission)", reason=True)
    p.add_argument("--erp", required=True)
    p.add_argument("--period", required=True, help="the batch's period label, e.g. 2026-11-20")
    _p(erp, "list", "batches and transmissions", by=False)


def dispatch(args: argparse.Namespace, settings: Settings) -> int:
    from jobs.ledger.adjustments import AdjustmentError
    from jobs.ledger.disputes import DisputeTransitionError
    from jobs.ledger.erp.documents import ErpExportError
    from jobs.evidence import EvidenceError
    from jobs.ledger.periods import PeriodError
    from jobs.ledger.trace import TraceError

    from jobs.corrections import actor_from_environment

    if getattr(args, "records_actor", False):
        args.by = actor_from_environment(settings)
    try:
        return _dispatch(args, settings)
    except (AdjustmentError, DisputeTransitionError, ErpExportError, EvidenceError, PeriodError, TraceError) as exc:
        print(f"recon: {exc}", file=sys.stderr)
        return 1


def _dispatch(args: argparse.Namespace, settings: Settings) -> int:
    from jobs.ledger import cli_actions

    return getattr(cli_actions, args.command)(args, settings)
