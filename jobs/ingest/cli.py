"""``recon connector ...``, ``recon alerts ...`` and ``recon webhooks serve`` (wired into ``jobs.cli``).

  recon connector add     --tenant T --id ID --kind {sftp,imap,api,webhook} --config JSON|@file.{json,yaml}
  recon connector update  --tenant T --id ID --config JSON|@file      (a new version; full configuration)
  recon connector disable --tenant T --id ID  /  enable
  recon connector list    [--tenant T] [--json]
  recon connector show    --tenant T --id ID [--version N] [--history]
  recon connector runs    --tenant T [--id ID] [--limit N]
  recon alerts            [--tenant T] [--all]          open alerts (--all: resolved too), every kind
  recon webhooks serve    [--host 127.0.0.1] [--port 8090]
"""
from __future__ import annotations

import argparse
import getpass
import json
from pathlib import Path

from jobs.settings import Settings

COMMANDS = ("connector", "alerts", "webhooks")


def add_commands(sub) -> None:
    conn = sub.add_parser("connector", help="ingestion connectors per tenant (versioned)")
    actions = conn.add_subparsers(dest="action", required=True)
    for name, helptext in (("add", "create a connector"), ("update", "change a connector (new version)")):
        p = actions.add_parser(name, help=helptext)
        _ids(p)
        if name == "add":
            p.add_argument("--kind", required=True, choices=["sftp", "imap", "api", "webhook"])
            p.add_argument("--disabled", action="store_true", help="create it disabled")
        p.add_argument("--config", required=(name == "add"), help="JSON, or @path to a .json/.yaml file")
        _audit(p)
    for name in ("disable", "enable"):
        p = actions.add_parser(name, help=f"{name} a connector (new version)")
        _ids(p)
        _audit(p)
    ls = actions.add_parser("list", help="connectors and their current version")
    ls.add_argument("--tenant")
    ls.add_argument("--json", action="store_true")
    show = actions.add_parser("show", help="one connector's configuration")
    _ids(show)
    show.add_argument("--version", type=int)
    show.add_argument("--history", action="store_true", help="every version, who and when")
    runs = actions.add_parser("runs", help="recent runs of a tenant's connectors")
    runs.add_argument("--tenant", required=True)
    runs.add_argument("--id", dest="connector_id")
    runs.add_argument("--limit", type=int, default=20)

    alerts = sub.add_parser("alerts", help="alerts: connectors, late files, failed tasks, run outcomes (open ones "
                                           "by default)")
    alerts.add_argument("--tenant")
    alerts.add_argument("--all", action="store_true", help="include resolved alerts")

    hooks = sub.add_parser("webhooks", help="the signed-webhook receiver")
    hooks.add_argument("action", choices=["serve"])
    hooks.add_argument("--host", help="default RECON_WEBHOOK_HOST or 127.0.0.1")
    hooks.add_argument("--port", type=int, help="default RECON_WEBHOOK_PORT or 8090")


def _ids(p: argparse.ArgumentParser) -> None:
    p.add_argument("--tenant", required=True)
    p.add_argument("--id", dest="connector_id", required=True)


def _audit(p: argparse.ArgumentParser) -> None:
    p.add_argument("--actor", help="who makes the change (default $RECON_ACTOR or the OS user)")
    p.add_argument("--note", help="why (kept with the version)")


def load_config(text: str) -> dict:
    if text.startswith("@"):
        path = Path(text[1:])
        raw = path.read_text()
        if path.suffix in (".yaml", ".yml"):
            import yaml

            return yaml.safe_load(raw)
        return json.loads(raw)
    return json.loads(text)


def dispatch(args: argparse.Namespace, settings: Settings) -> int:
    if hasattr(args, "actor") and not args.actor:
        args.actor = settings.actor or getpass.getuser()
    import sys

    from jobs.ingest.errors import ConnectorError

    try:
        return _dispatch(args, settings)
    except ConnectorError as exc:
        print(f"recon: {exc}", file=sys.stderr)
        return 2


def _dispatch(args: argparse.Namespace, settings: Settings) -> int:
    from jobs.store.db import connect, connect_platform

    if args.command == "webhooks":
        from jobs.ingest.webhooks.receiver import serve
        from jobs.store.migrate import ensure_schema

        ensure_schema(settings)
        serve(args.host or settings.webhook_host, args.port or settings.webhook_port, settings.require_database_url())
        return 0
    if args.command == "alerts":
        with connect(settings, args.tenant) if args.tenant else connect_platform(settings) as db:
            rows = db.execute(
                "SELECT alert_id, tenant_id, connector_id, kind, priority, raised_at, resolved_at, delivered_via, "
                "rate_limited_via, delivery_errors, seen_count, resolved_by, message FROM alert "
                "WHERE (%s::text IS NULL OR tenant_id = %s) "
                "AND (%s OR resolved_at IS NULL) ORDER BY raised_at DESC LIMIT 200",
                (args.tenant, args.tenant, args.all)).fetchall()
        for r in rows:
            state = f"resolved ({r['resolved_by']})" if r["resolved_at"] else "OPEN"
            who = f"{r['tenant_id']}/{r['connector_id']}" if r["connector_id"] else r["tenant_id"]
            print(f"#{r['alert_id']} {r['raised_at']:%Y-%m-%d %H:%M} {state} {r['priority']} {r['kind']} {who}: "
                  f"{r['message']} (via {', '.join(r['delivered_via']) or 'database only'}"
                  f"{'; held back by the rate limit: ' + ', '.join(r['rate_limited_via']) if r['rate_limited_via'] else ''}"
                  f"{'; delivery errors: ' + r['delivery_errors'] if r['delivery_errors'] else ''}"
                  f"{'; seen %d times' % r['seen_count'] if r['seen_count'] > 1 else ''})")
        return 0
    return _connector(args, settings)


def _connector(args: argparse.Namespace, settings: Settings) -> int:
    from jobs.ingest import config as cfg
    from jobs.store.db import connect, connect_platform
    from jobs.store.migrate import ensure_schema

    ensure_schema(settings)
    if args.action == "add":
        from jobs.pipeline import prepare

        prepare(settings, args.tenant)     # records the tenant (from its YAML) if it is new
    with connect(settings, args.tenant) if args.tenant else connect_platform(settings) as db:
        if args.action == "add":
            c = cfg.add_connector(db, args.tenant, args.connector_id, args.kind, load_config(args.config), args.actor,
                                  args.note, enabled=not args.disabled)
            print(f"added {c.label} ({c.kind}) version {c.version}{'' if c.enabled else ' (disabled)'}")
        elif args.action in ("update", "disable", "enable"):
            config = load_config(args.config) if args.action == "update" and args.config else None
            enabled = {"disable": False, "enable": True}.get(args.action)
            c = cfg.update_connector(db, args.tenant, args.connector_id, args.actor, config=config, enabled=enabled,
                                     note=args.note)
            print(f"{c.label} is at version {c.version} ({'enabled' if c.enabled else 'disabled'})")
        elif args.action == "list":
            connectors = cfg.list_connectors(db, args.tenant)
            if args.json:
                print(json.dumps([c.to_dict() for c in connectors], indent=2))
            for c in connectors if not args.json else []:
                print(f"{c.label:40} {c.kind:8} v{c.version:<4} {'enabled' if c.enabled else 'disabled':9} "
                      f"source={c.source} schedule='{c.config['schedule']}'")
        elif args.action == "show":
            if args.history:
                for v in cfg.history(db, args.tenant, args.connector_id):
                    print(f"v{v['version']} {v['changed_at']:%Y-%m-%d %H:%M:%S%z} by {v['changed_by']} "
                          f"{'enabled' if v['enabled'] else 'disabled'} {v['change_note'] or ''}\n  "
                          f"{json.dumps(v['config'], sort_keys=True)}")
            else:
                print(json.dumps(cfg.get_connector(db, args.tenant, args.connector_id, args.version).to_dict(),
                                 indent=2))
        elif args.action == "runs":
            rows = db.execute(
                "SELECT connector_id, connector_version, dag_run_id, try_number, received_date, status, files_seen, "
                "files_landed, files_already_landed, started_at, error FROM connector_run WHERE tenant_id = %s "
                "AND (%s::text IS NULL OR connector_id = %s) ORDER BY started_at DESC LIMIT %s",
                (args.tenant, args.connector_id, args.connector_id, args.limit)).fetchall()
            for r in rows:
                print(f"{r['started_at']:%Y-%m-%d %H:%M:%S} {r['connector_id']} v{r['connector_version']} "
                      f"try {r['try_number']} {r['status']}: seen {r['files_seen']}, landed {r['files_landed']}, "
                      f"already {r['files_already_landed']} ({r['received_date']}, {r['dag_run_id']})"
                      + (f"\n    {r['error']}" if r["error"] else ""))
    return 0
