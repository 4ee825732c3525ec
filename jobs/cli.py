"""``recon``: run the pipeline and look at its results without Airflow.

  recon run      --tenant T --business-date YYYY-MM-DD [--landing DIR]   land, parse, match, post, publish
  recon export   --tenant T --what {matches,exceptions,files,quarantine,journals} --out FILE.csv
  recon summary  --tenant T --business-date YYYY-MM-DD                   the stored run summary
  recon report   --tenant T --business-date YYYY-MM-DD [--out FILE.html] the day's HTML report (to the lake)
  recon match    --tenant T --relation R --record F#N --record F#N --reason ..   propose a manual match
  recon unmatch  --tenant T --relation R --record F#N --reason ..                propose revoking a match
  recon correction list|approve|reject --tenant T [--id N] [--reason ..]       four eyes on every correction
  recon access   grant --tenant T --user U --role R | list --tenant T           who may do what for a tenant
  recon queue    list|assign|status|note|write-off|match|csv --tenant T ...      work the exceptions queue
  recon stage    {parse,match,ledger,publish,erp_export,alerts} --tenant T --business-date D   one stage
  recon db       {migrate,start,url}                                    the operational database
  recon audit    verify --tenant T                                      check the audit trail's hash chain
  recon evidence --tenant T --period YYYY-MM [--out FILE.zip]           the period's signed evidence pack
  recon evidence verify PACK [--public-key B64]                         check a pack (signature, files, audit rows)
  recon catalog  sync [--database D --workgroup W]                      Glue tables + Athena views (sql/athena)
  recon generate ...                                                    synthetic data (see --help)
  recon connector|alerts|webhooks ...                                   ingestion (see jobs/ingest/cli.py)
  recon trace|dispute|period|adjustment|erp ...                         ledger (see jobs/ledger/cli.py)

A wrong command line or configuration (bad argument, invalid or unknown tenant, missing folder, broken
tenant YAML) is refused before anything runs: one line on stderr, exit code 2.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
from datetime import date
from pathlib import Path

from jobs.settings import ConfigurationError, check_tenant_id, load_settings
from jobs.stages import STAGE_NAMES


class _Parser(argparse.ArgumentParser):
    """argparse, but a bad command line is one line on stderr (and exit code 2), not the usage text."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: {_one_line(message)} (see {self.prog} --help)\n")


def _one_line(text: object) -> str:
    return " ".join(str(text).split())


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}") from None


def _record(text: str) -> tuple[str, int]:
    from jobs.match.manual import ManualMatchError, parse_record

    try:
        return parse_record(text)
    except ManualMatchError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _folder(text: str) -> Path:
    path = Path(text)
    if not path.is_dir():
        raise argparse.ArgumentTypeError(f"{text!r} is not a folder" if path.exists() else f"{text!r} does not exist")
    return path


def _out_file(text: str) -> Path:
    path = Path(text)
    if not path.parent.is_dir():
        raise argparse.ArgumentTypeError(f"cannot write {text!r}: folder {str(path.parent)!r} does not exist")
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"cannot write {text!r}: it is a folder")
    return path


def _common(p: argparse.ArgumentParser, with_date: bool = True) -> None:
    p.add_argument("--tenant", required=True)
    if with_date:
        p.add_argument("--business-date", type=_date, required=True)
    p.add_argument("--lake", help="lake location (folder or s3://...); default RECON_LAKE or .local/lake")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="recon", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-v", "--verbose", action="store_true")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="land new files from DIR, then parse, match, post and publish the date")
    _common(run)
    run.add_argument("--landing", type=_folder, help="folder whose new files are landed first")
    run.add_argument("--run-id", help="id recorded on matches and journals (default cli__<tenant>__<date>)")
    run.add_argument("--json", action="store_true", help="print the summary as JSON")

    export = sub.add_parser("export", help="write results to CSV")
    _common(export, with_date=False)
    export.add_argument("--what", required=True, choices=["matches", "exceptions", "files", "quarantine", "journals"])
    export.add_argument("--out", type=_out_file, required=True)

    summary = sub.add_parser("summary", help="print the stored summary of a run")
    _common(summary)
    report = sub.add_parser("report", help="write the day's HTML reconciliation report to the lake's reports folder")
    _common(report)
    report.add_argument("--out", type=Path, help="also write the page here")

    stage = sub.add_parser("stage", help="run one stage (the entry point spark-submit / EMR / Glue call)")
    stage.add_argument("name", choices=[n for n in STAGE_NAMES if n != "land"])
    _common(stage)
    stage.add_argument("--run-id", required=True)
    stage.add_argument("--no-record", action="store_true",
                       help="do not record the run in recon_run (a remote job: the task that submitted it records)")
    stage.add_argument("--recorded-config", action="store_true",
                       help="use the tenant configuration recorded in PostgreSQL (a remote job: the task that "
                            "submitted it recorded the worker's), not the configuration folder")

    for name, text in (("match", "record a manual match of records the engine left open"),
                       ("unmatch", "revoke the active match group containing a record")):
        p = sub.add_parser(name, help=text)
        _common(p, with_date=False)
        p.add_argument("--relation", required=True, choices=["book_psp", "payout_bank"])
        p.add_argument("--record", required=True, action="append", type=_record,
                       help="FILE_NAME#RECORD_ORDINAL (repeat for each member)" if name == "match" else
                       "FILE_NAME#RECORD_ORDINAL of any member of the group")
        p.add_argument("--reason", required=True)

    corr = sub.add_parser("correction", help="proposed corrections (manual match / unmatch, adjustment, dispute "
                                             "acceptance): list, approve or reject as the person you run as")
    corr.add_argument("action", choices=["list", "approve", "reject"])
    corr.add_argument("--tenant", required=True)
    corr.add_argument("--id", type=int, help="the correction (approve, reject)")
    corr.add_argument("--reason", help="why it is rejected (reject)")
    corr.add_argument("--all", action="store_true", help="list decided and expired ones too")
    corr.add_argument("--business-date", type=_date, help="the approval's business date (an adjustment's post date)")
    access = sub.add_parser("access", help="roles per tenant (operator, approver, controller, auditor, admin)")
    access.add_argument("action", choices=["grant", "list"])
    access.add_argument("--tenant", required=True)
    access.add_argument("--user")
    access.add_argument("--role")

    queue = sub.add_parser("queue", help="work the exceptions queue as the person you run as (jobs/exception_queue.py)")
    queue.add_argument("action", choices=["list", "csv", "assign", "status", "note", "write-off", "match"])
    queue.add_argument("--tenant", required=True)
    queue.add_argument("--key", action="append", default=[],
                       help="an exception, RELATION:EVENT_ID as `list` prints it (repeat for several)")
    queue.add_argument("--to", help="assign: the assignee (empty: unassign)")
    queue.add_argument("--status", help="status: new, investigating, waiting or resolved; list: open (default), all "
                                        "or a status")
    queue.add_argument("--note", help="status, note: the text (resolving needs one)")
    queue.add_argument("--reason", help="write-off, match: why")
    for name in ("source", "assignee", "currency", "min-amount", "max-amount"):
        queue.add_argument(f"--{name}")
    queue.add_argument("--reason-code")
    queue.add_argument("--age", choices=["0-2", "3-7", "8-30", "31+"])
    queue.add_argument("--overdue", action="store_true")
    queue.add_argument("--page", type=int, default=1)
    queue.add_argument("--page-size", type=int, default=50)

    db = sub.add_parser("db", help="operational database")
    db.add_argument("action", choices=["migrate", "start", "url"])

    audit = sub.add_parser("audit", help="check a tenant's audit trail (hash chain): exit code 1 when it is broken")
    audit.add_argument("action", choices=["verify"])
    audit.add_argument("--tenant", required=True)

    evidence = sub.add_parser("evidence", help="a period's evidence pack for the auditors (jobs/evidence.py); "
                                               "'verify PACK' checks one")
    evidence.add_argument("--tenant")
    evidence.add_argument("--period", help="YYYY-MM or YYYY-MM-DD")
    evidence.add_argument("--out", type=Path, help="also write the archive here")
    evidence.add_argument("--lake", help="lake location (folder or s3://...); default RECON_LAKE or .local/lake")
    checks = evidence.add_subparsers(dest="action")
    check = checks.add_parser("verify", help="check a pack: exit code 1 when it does not verify")
    check.add_argument("pack", help="a local path or a lake URI")
    check.add_argument("--public-key", help="the tenant's public key (base64); default: the keys registered in "
                                            "PostgreSQL for the pack's tenant")

    catalog = sub.add_parser("catalog", help="register the lake's tables in the Glue catalog and create the Athena "
                                             "views (sql/athena)")
    catalog.add_argument("action", choices=["sync"])
    catalog.add_argument("--lake", help="lake location (s3://...); default RECON_LAKE")
    catalog.add_argument("--database", help="Glue database (default RECON_GLUE_DATABASE)")
    catalog.add_argument("--workgroup", help="Athena workgroup (default RECON_ATHENA_WORKGROUP)")

    sub.add_parser("generate", help="synthetic data generator (all options: recon generate --help)", add_help=False)

    # --- ingestion: recon connector | alerts | webhooks (jobs/ingest/cli.py) ---------------------
    from jobs.ingest.cli import add_commands as add_ingest_commands

    add_ingest_commands(sub)
    # --- end of ingestion --------------------------------------------------------------------------

    # --- ledger: recon trace | dispute | period | adjustment | erp (jobs/ledger/cli.py) -------------
    from jobs.ledger.cli import add_commands as add_ledger_commands

    add_ledger_commands(sub)
    # --- end of ledger -----------------------------------------------------------------------------
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["generate"]:
        from jobs.generate.cli import main as generate_main

        return generate_main(argv[1:])
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    import yaml

    if getattr(args, "tenant", None) is not None:       # every command's --tenant, before anything runs
        try:
            check_tenant_id(args.tenant)
        except ConfigurationError as exc:
            print(f"recon: {_one_line(exc)}", file=sys.stderr)
            return 2
    try:
        return _dispatch(args)
    except ConfigurationError as exc:
        print(f"recon: configuration error: {_one_line(exc)}", file=sys.stderr)
        return 2
    except yaml.YAMLError as exc:
        print(f"recon: configuration error: invalid YAML: {_one_line(exc)}", file=sys.stderr)
        return 2


def _dispatch(args: argparse.Namespace) -> int:
    if args.command == "db":
        return _db(args.action)
    settings = load_settings(lake=getattr(args, "lake", None))
    # --- ingestion (jobs/ingest/cli.py) -------------------------------------------------------------
    from jobs.ingest.cli import COMMANDS as INGEST_COMMANDS, dispatch as ingest_dispatch

    if args.command in INGEST_COMMANDS:
        return ingest_dispatch(args, settings)
    # --- end of ingestion --------------------------------------------------------------------------
    # --- ledger (jobs/ledger/cli.py) ------------------------------------------------------------------
    from jobs.ledger.cli import COMMANDS as LEDGER_COMMANDS, dispatch as ledger_dispatch

    if args.command in LEDGER_COMMANDS:
        return ledger_dispatch(args, settings)
    # --- end of ledger -----------------------------------------------------------------------------
    if args.command in ("correction", "access"):
        return _corrections(args, settings)
    if args.command == "queue":
        return _queue(args, settings)
    if args.command == "audit":
        from jobs.audit import verify

        result = verify(settings, args.tenant)
        print(result.describe(), file=sys.stdout if result.ok else sys.stderr)
        return 0 if result.ok else 1
    if args.command == "evidence":
        return _evidence(args, settings)
    if args.command == "run":
        from jobs.pipeline import run_all
        from jobs.report import load_run, render

        run_id = args.run_id or f"cli__{args.tenant}__{args.business_date}"
        summary = run_all(settings, args.tenant, args.business_date, args.landing, run_id)
        if args.json:
            print(json.dumps(summary, indent=2, default=str))
        else:
            print(render(load_run(settings, args.tenant, args.business_date)))
        return 0
    if args.command in ("summary", "report", "export", "match", "unmatch"):
        from jobs.tenants import load_tenant

        load_tenant(settings, args.tenant)          # an unknown tenant is refused, not shown as empty
    if args.command == "report":
        from jobs.daily_report import ReportError, report_uri, write

        try:
            written = write(settings, args.tenant, args.business_date)
        except ReportError as exc:
            print(f"recon: {exc}", file=sys.stderr)
            return 1
        if args.out:
            from jobs import storage

            args.out.write_bytes(storage.read_bytes(settings, report_uri(settings, args.tenant, args.business_date)))
        print(f"wrote {written['report']} ({written['bytes']:,} bytes)")
        return 0
    if args.command == "summary":
        from jobs.report import load_run, render

        run = load_run(settings, args.tenant, args.business_date)
        if run is None:
            print(f"no run recorded for {args.tenant} on {args.business_date}", file=sys.stderr)
            return 1
        print(render(run))
        return 0
    if args.command == "export":
        from jobs.export import export

        n = export(settings, args.tenant, args.what, args.out)
        print(f"wrote {n} rows to {args.out}")
        return 0
    if args.command in ("match", "unmatch"):
        from jobs.corrections import CorrectionError, actor_from_environment
        from jobs.match.manual import ManualMatchError, manual_match, manual_unmatch
        from jobs.spark import get_spark

        spark = get_spark(settings, app_name=f"recon-{args.command}")
        try:
            actor = actor_from_environment(settings)
            if args.command == "match":
                proposal = manual_match(spark, settings, args.tenant, args.relation, args.record, args.reason, actor)
            else:
                if len(args.record) != 1:
                    raise ManualMatchError("unmatch takes one --record (any member of the group)")
                proposal = manual_unmatch(spark, settings, args.tenant, args.record[0], args.relation, args.reason,
                                          actor)
            print(f"proposed {args.command} of group {proposal.detail['match_id']} as correction "
                  f"#{proposal.correction_id} (by {actor}); it takes effect at the next run after a second person "
                  f"approves it: recon correction approve --tenant {args.tenant} --id {proposal.correction_id}")
        except (ManualMatchError, CorrectionError) as exc:
            print(f"recon: {exc}", file=sys.stderr)
            return 1
        return 0
    if args.command == "catalog":
        from jobs.catalog import sync

        result = sync(settings, args.database, args.workgroup)
        for name, action in result.tables.items():
            print(f"table {name}: {action}")
        for name, query in result.views.items():
            print(f"view {name}: created (Athena query {query})")
        for name, action in result.spectrum.items():
            print(f"spectrum table {name}: {action}")
        return 0
    if args.command == "stage":
        from jobs import pipeline

        ctx = pipeline.RunContext(settings, args.tenant, args.business_date, args.run_id)
        cfg = None
        if args.recorded_config:
            from jobs.tenants import load_recorded_tenant

            cfg = load_recorded_tenant(settings, args.tenant)
        result = pipeline.run_stage(ctx, args.name, cfg=cfg, record=not args.no_record)
        print(json.dumps(pipeline.STAGES[args.name].report(result), default=str))
        return 0
    raise AssertionError(args.command)


def _evidence(args: argparse.Namespace, settings) -> int:
    from jobs import evidence

    if args.action == "verify":
        verdict = evidence.verify_pack(settings, args.pack, args.public_key)
        print(verdict.describe(), file=sys.stdout if verdict.ok else sys.stderr)
        return 0 if verdict.ok else 1
    if not args.tenant or not args.period:
        print("recon: evidence needs --tenant and --period (or: evidence verify PACK)", file=sys.stderr)
        return 2
    from jobs.corrections import actor_from_environment

    try:
        pack = evidence.build(settings, args.tenant, args.period, actor_from_environment(settings), out=args.out)
    except evidence.EvidenceError as exc:
        print(f"recon: {exc}", file=sys.stderr)
        return 1
    files = pack.manifest["files"]
    print(f"evidence pack #{pack.pack_no} of {pack.tenant_id} {pack.period}: {pack.uri} (SHA-256 {pack.archive_sha256}); "
          + ", ".join(f"{name} {meta['rows']} rows" for name, meta in files.items()))
    return 0


def _corrections(args: argparse.Namespace, settings) -> int:
    from jobs import corrections as c

    actor = c.actor_from_environment(settings)
    try:
        if args.command == "access":
            if args.action == "grant":
                if not args.user or not args.role:
                    raise c.CorrectionError("grant needs --user and --role")
                c.grant(settings, args.tenant, args.user, args.role, actor)
                print(f"{args.user} is {args.role} of {args.tenant} (granted by {actor})")
            else:
                from jobs.store.db import connect

                with connect(settings, args.tenant) as conn:
                    for r in conn.execute("SELECT user_name, role, granted_by, granted_at FROM tenant_member "
                                          "WHERE tenant_id = %s ORDER BY user_name, role", (args.tenant,)):
                        print(f"{r['user_name']:<24} {r['role']:<11} granted by {r['granted_by']} "
                              f"{r['granted_at']:%Y-%m-%d}")
            return 0
        if args.action == "list":
            for r in c.list_corrections(settings, args.tenant, None if args.all else "pending"):
                print(f"#{r['correction_id']} {r['status']:<8} {r['kind']:<14} {r['amount_minor']} {r['currency']} "
                      f"by {r['proposed_by']} (expires {r['expires_at']:%Y-%m-%d %H:%M}) {r['subject']}: {r['reason']}"
                      + (f" -> {r['decided_by']}" if r["decided_by"] else ""))
            return 0
        if args.id is None:
            raise c.CorrectionError(f"{args.action} needs --id")
        if args.action == "approve":
            result = c.approve(settings, args.tenant, args.id, actor, args.business_date)
            print(f"correction #{args.id} approved by {actor}: "
                  + ", ".join(f"{k} {v}" for k, v in result.items()))
        else:
            c.reject(settings, args.tenant, args.id, actor, args.reason or "")
            print(f"correction #{args.id} rejected by {actor}")
        return 0
    except (c.CorrectionError, ValueError) as exc:
        print(f"recon: {_one_line(exc)}", file=sys.stderr)
        return 1


def _queue(args: argparse.Namespace, settings) -> int:
    from jobs import exception_queue as q
    from jobs.corrections import CorrectionError, actor_from_environment

    actor = actor_from_environment(settings)
    try:
        if args.action in ("list", "csv"):
            filters = q.Filters(source=args.source, reason=args.reason_code, age_bucket=args.age,
                                min_amount=args.min_amount, max_amount=args.max_amount, currency=args.currency,
                                assignee=args.assignee, status=args.status or "open", overdue_only=args.overdue,
                                page=args.page, page_size=args.page_size)
            result = q.page(settings, args.tenant, actor, filters, every_row=args.action == "csv")
            if args.action == "csv":
                sys.stdout.write(q.to_csv(result.rows))
                return 0
            print(f"{args.tenant}: {result.total} exception(s) as of {result.as_of}, page {filters.page} of "
                  f"{result.pages}")
            for r in result.rows:
                print(f"{'OVERDUE ' if r['overdue'] else ''}{r['key']} {r['reason_code']} {r['source']} "
                      f"{r['amount']} {r['currency']} {r['file_name']}#{r['record_ordinal']} age {r['age_days']}d "
                      f"(SLA {r['sla_days']}d) {r['workflow_status']} {r['assignee'] or '-'}")
            return 0
        if not args.key:
            raise q.QueueError(f"{args.action} needs --key")
        if args.action == "assign":
            n = q.assign(settings, args.tenant, args.key, args.to, actor)
            print(f"{n} exception(s) assigned to {args.to or 'nobody'} by {actor}")
        elif args.action == "status":
            n = q.set_status(settings, args.tenant, args.key, args.status or "", actor, args.note)
            print(f"{n} exception(s) now {args.status} ({actor})")
        elif args.action == "note":
            for key in args.key:
                q.add_note(settings, args.tenant, key, args.note or "", actor)
            print(f"note added by {actor}")
        else:
            if args.action == "write-off" and len(args.key) != 1:
                raise q.QueueError("write-off takes one --key")
            proposal = (q.propose_write_off(settings, args.tenant, args.key[0], args.reason or "", actor)
                        if args.action == "write-off" else
                        q.propose_match(settings, args.tenant, args.key, args.reason or "", actor))
            print(f"proposed {proposal.kind} as correction #{proposal.correction_id} (by {actor}); a second person "
                  f"approves it: recon correction approve --tenant {args.tenant} --id {proposal.correction_id}")
        return 0
    except (q.QueueError, CorrectionError) as exc:
        print(f"recon: {_one_line(exc)}", file=sys.stderr)
        return 1


def _db(action: str) -> int:
    if action == "start":
        from jobs.localenv.postgres import LocalPostgres

        print(LocalPostgres().start())
        return 0
    settings = load_settings()
    if action == "url":
        print(settings.require_database_url())
        return 0
    from jobs.store.migrate import migrate

    applied = migrate(settings)
    print("applied: " + (", ".join(m.path.name for m in applied) if applied else "none (up to date)"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
