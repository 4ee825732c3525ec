"""The exceptions queue as a workplace: the one service the Reconciliation page, the JSON API and the CLI use.

Runs put exceptions into the queue (``jobs/stages/publish.py``); people work them here:

* ``page``: one page of a tenant's queue, filtered by PSP (source), reason, age bucket, amount, currency,
  assignee and status, each row with its age at the queue's business date (the tenant's latest run, never
  "now"), its SLA (tenant configuration ``exceptions.sla_days`` as recorded per reason code) and whether it is overdue;
* ``assign`` (one or many, to oneself or a colleague who holds a role for the tenant), ``set_status``
  (new, investigating, waiting on the PSP, resolved) and ``add_note``;
* ``propose_write_off``: a write-off is a correction (``jobs/corrections.py``): a second person whose role's
  limit covers the amount approves it, and only then is the exception ``written_off``.

Who may: operators, approvers, controllers and admins of the tenant work the queue; auditors read it. Every
change is a row of the audit trail (object ``exception``, id ``<relation>:<event_id>``), which is also the
exception's history (``history``). Typed-in notes are stored with card numbers masked.
"""
from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation

from jobs import audit
from jobs.cards import mask_text
from jobs.corrections import Proposal, roles_of
from jobs.corrections import propose as propose_correction
from jobs.money import CURRENCY_EXPONENTS, format_minor
from jobs.settings import Settings
from jobs.store.db import connect, sql

WORKING_ROLES = ("operator", "approver", "controller", "admin")
READING_ROLES = (*WORKING_ROLES, "auditor")
STATUSES = ("new", "investigating", "waiting", "resolved", "written_off")
SETTABLE = ("new", "investigating", "waiting", "resolved")          # written_off: only by an approved write-off
OPEN_WORK = ("new", "investigating", "waiting")
AGE_BUCKETS = {"0-2": (0, 2), "3-7": (3, 7), "8-30": (8, 30), "31+": (31, None)}
DEFAULT_SLA_DAYS = {"*": 5}
PAGE_SIZES = (25, 50, 100, 200)
CSV_COLUMNS = ["reason_code", "source", "event_type", "amount", "currency", "file_name", "record_ordinal",
               "first_seen_date", "age_days", "age_bucket", "sla_days", "overdue", "workflow_status", "assignee",
               "note", "reason_detail", "relation", "event_id"]
_EXPONENTS = json.dumps({c: e for c, e in CURRENCY_EXPONENTS.items() if e != 2})


class QueueError(ValueError):
    """A queue action refused; the message says why (one line)."""


@dataclass(frozen=True)
class Filters:
    source: str | None = None
    reason: str | None = None
    age_bucket: str | None = None
    min_amount: str | None = None          # major units, a decimal string
    max_amount: str | None = None
    currency: str | None = None
    assignee: str | None = None            # "" : unassigned
    status: str = "open"                   # open (new, investigating, waiting) | all | one of STATUSES
    overdue_only: bool = False
    page: int = 1
    page_size: int = 50


@dataclass
class Page:
    rows: list[dict]
    total: int
    as_of: date | None
    filters: Filters

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.filters.page_size))


def key_of(row: dict) -> str:
    """An exception's key in URLs, forms and the audit trail: ``<relation>:<event_id>`` (relations have no colon)."""
    return f"{row['relation']}:{row['event_id']}"


def parse_key(key: str) -> tuple[str, str]:
    relation, sep, event_id = key.partition(":")
    if not sep or not relation or not event_id:
        raise QueueError(f"not an exception key (relation:event_id): {key!r}")
    return relation, event_id


def sla_days(conn, tenant_id: str) -> dict:
    """Days per reason code (``*``: any other) from the tenant's recorded configuration (``exceptions.sla_days``,
    the version the runs used; the page needs no configuration folder)."""
    row = conn.execute("SELECT config -> 'exceptions' -> 'sla_days' AS sla FROM tenant WHERE tenant_id = %s",
                       (tenant_id,)).fetchone()
    configured = (row and row["sla"]) or DEFAULT_SLA_DAYS
    return {str(k): int(v) for k, v in configured.items()}


def _decimal(value: str | None, what: str) -> Decimal | None:
    if value is None or str(value).strip() == "":
        return None
    try:
        return Decimal(str(value).strip())
    except InvalidOperation:
        raise QueueError(f"{what} must be a decimal amount in major units, e.g. 12.50 (got {value!r})") from None


def _statuses(status: str) -> list[str] | None:
    if status == "all":
        return None
    if status == "open":
        return list(OPEN_WORK)
    if status not in STATUSES:
        raise QueueError(f"status must be open, all or one of {', '.join(STATUSES)} (got {status!r})")
    return [status]


def _require(conn, tenant_id: str, actor: str, roles: tuple[str, ...], verb: str) -> list[str]:
    held = roles_of(conn, tenant_id, actor)
    if not set(held) & set(roles):
        raise QueueError(f"{actor} may not {verb} exceptions of {tenant_id} (roles: {', '.join(held) or 'none'})")
    return held


def as_of_date(conn, tenant_id: str) -> date | None:
    """The business date the queue is read at: the tenant's latest run's."""
    row = conn.execute("SELECT max(business_date) AS d FROM recon_run WHERE tenant_id = %s", (tenant_id,)).fetchone()
    return row["d"]


def page(settings: Settings, tenant_id: str, actor: str, filters: Filters = Filters(),
         as_of: date | None = None, every_row: bool = False) -> Page:
    """One page of the queue (``every_row``: all rows the filters select, e.g. for the CSV download)."""
    if filters.age_bucket and filters.age_bucket not in AGE_BUCKETS:
        raise QueueError(f"age bucket must be one of {', '.join(AGE_BUCKETS)} (got {filters.age_bucket!r})")
    if filters.page < 1 or filters.page_size not in PAGE_SIZES:
        raise QueueError(f"page must be >= 1 and page size one of {', '.join(map(str, PAGE_SIZES))}")
    low, high = AGE_BUCKETS.get(filters.age_bucket or "", (None, None))
    with connect(settings, tenant_id) as conn:
        _require(conn, tenant_id, actor, READING_ROLES, "read")
        sla = sla_days(conn, tenant_id)
        as_of = as_of or as_of_date(conn, tenant_id)
        rows = conn.execute(sql("queue_list"), {
            "tenant_id": tenant_id, "as_of": as_of, "sla": json.dumps(sla), "exponents": _EXPONENTS,
            "source": filters.source or None, "reason": filters.reason or None, "min_age": low, "max_age": high,
            "min_amount": _decimal(filters.min_amount, "minimum amount"),
            "max_amount": _decimal(filters.max_amount, "maximum amount"),
            "currency": (filters.currency or "").upper() or None, "assignee": filters.assignee,
            "statuses": _statuses(filters.status), "overdue_only": filters.overdue_only,
            "limit": None if every_row else filters.page_size,
            "offset": 0 if every_row else (filters.page - 1) * filters.page_size}).fetchall() if as_of else []
    total = rows[0]["total"] if rows else 0
    for r in rows:
        r["key"] = key_of(r)
        r["amount"] = format_minor(r["amount_minor"], r["currency"])
    return Page(rows, total, as_of, filters)


def choices(settings: Settings, tenant_id: str, actor: str) -> dict:
    """What the page's filters and assign lists offer: the sources and reasons of the open exceptions, and the
    people who work the queue."""
    with connect(settings, tenant_id) as conn:
        _require(conn, tenant_id, actor, READING_ROLES, "read")
        values = conn.execute("SELECT array_agg(DISTINCT source ORDER BY source) AS sources, array_agg(DISTINCT "
                              "reason_code ORDER BY reason_code) AS reasons FROM exception_item WHERE tenant_id = %s "
                              "AND is_open", (tenant_id,)).fetchone()
        members = conn.execute("SELECT DISTINCT user_name FROM tenant_member WHERE tenant_id = %s AND role = ANY(%s) "
                               "ORDER BY 1", (tenant_id, list(WORKING_ROLES))).fetchall()
    return {"sources": values["sources"] or [], "reasons": values["reasons"] or [],
            "members": [m["user_name"] for m in members]}


def _locked(conn, tenant_id: str, keys: list[str]) -> list[dict]:
    """The open exceptions ``keys`` name, locked for the change; refuses keys that name none."""
    pairs = [parse_key(k) for k in dict.fromkeys(keys)]
    if not pairs:
        raise QueueError("no exception selected")
    rows = conn.execute(
        "SELECT e.* FROM exception_item e JOIN unnest(%s::text[], %s::text[]) AS k(relation, event_id) "
        "ON e.relation = k.relation AND e.event_id = k.event_id WHERE e.tenant_id = %s AND e.is_open "
        "ORDER BY e.relation, e.event_id FOR UPDATE OF e",
        ([p[0] for p in pairs], [p[1] for p in pairs], tenant_id)).fetchall()
    missing = sorted({f"{r}:{e}" for r, e in pairs} - {key_of(r) for r in rows})
    if missing:
        raise QueueError(f"tenant {tenant_id}: no open exception {', '.join(missing[:3])}"
                         + (f" (and {len(missing) - 3} more)" if len(missing) > 3 else ""))
    return rows


def assign(settings: Settings, tenant_id: str, keys: list[str], assignee: str | None, actor: str) -> int:
    """Assign the exceptions (all or none) to ``assignee`` (None or "": unassign); returns how many changed."""
    assignee = (assignee or "").strip() or None
    with connect(settings, tenant_id) as conn:
        _require(conn, tenant_id, actor, WORKING_ROLES, "assign")
        if assignee and not set(roles_of(conn, tenant_id, assignee)) & set(WORKING_ROLES):
            raise QueueError(f"{assignee} holds no role that works the queue of {tenant_id}")
        changed = [r for r in _locked(conn, tenant_id, keys) if r["assignee"] != assignee]
        for r in changed:
            conn.execute("UPDATE exception_item SET assignee = %s, updated_at = now() WHERE tenant_id = %s AND "
                         "relation = %s AND event_id = %s", (assignee, tenant_id, r["relation"], r["event_id"]))
            audit.append(conn, tenant_id, actor, "exception_assign", "exception", key_of(r),
                         {"from": r["assignee"], "to": assignee})
    return len(changed)


def set_status(settings: Settings, tenant_id: str, keys: list[str], status: str, actor: str,
               note: str | None = None) -> int:
    """Move the exceptions to ``status`` (not written_off: that takes an approved write-off)."""
    if status not in SETTABLE:
        raise QueueError(f"status must be one of {', '.join(SETTABLE)}"
                         + ("; a write-off is proposed and approved by a second person" if status == "written_off"
                            else f" (got {status!r})"))
    if status == "resolved" and not (note or "").strip():
        raise QueueError("resolving an exception needs a note saying how it was resolved")
    with connect(settings, tenant_id) as conn:
        _require(conn, tenant_id, actor, WORKING_ROLES, "change the status of")
        rows = _locked(conn, tenant_id, keys)
        done = [r for r in rows if r["workflow_status"] == "written_off"]
        if done:
            raise QueueError(f"{key_of(done[0])} is written off (an approved correction): its status stays")
        changed = [r for r in rows if r["workflow_status"] != status]
        for r in changed:
            conn.execute("UPDATE exception_item SET workflow_status = %s, updated_at = now() WHERE tenant_id = %s AND "
                         "relation = %s AND event_id = %s", (status, tenant_id, r["relation"], r["event_id"]))
            audit.append(conn, tenant_id, actor, "exception_status", "exception", key_of(r),
                         {"from": r["workflow_status"], "to": status})
        if (note or "").strip():
            for r in rows:
                _note(conn, tenant_id, r, note, actor)
    return len(changed)


def add_note(settings: Settings, tenant_id: str, key: str, body: str, actor: str) -> None:
    if not body.strip():
        raise QueueError("a note needs text")
    with connect(settings, tenant_id) as conn:
        _require(conn, tenant_id, actor, WORKING_ROLES, "write notes on")
        (row,) = _locked(conn, tenant_id, [key])
        _note(conn, tenant_id, row, body, actor)


def _note(conn, tenant_id: str, row: dict, body: str, actor: str) -> None:
    body = mask_text(body.strip())
    conn.execute("UPDATE exception_item SET note = %s, updated_at = now() WHERE tenant_id = %s AND relation = %s "
                 "AND event_id = %s", (body, tenant_id, row["relation"], row["event_id"]))
    audit.append(conn, tenant_id, actor, "exception_note", "exception", key_of(row), {"note": body})


def history(settings: Settings, tenant_id: str, key: str, actor: str) -> tuple[dict, list[dict]]:
    """The exception and its history (the audit trail's rows about it, oldest first)."""
    relation, event_id = parse_key(key)
    with connect(settings, tenant_id) as conn:
        _require(conn, tenant_id, actor, READING_ROLES, "read")
        row = conn.execute("SELECT * FROM exception_item WHERE tenant_id = %s AND relation = %s AND event_id = %s",
                           (tenant_id, relation, event_id)).fetchone()
        if row is None:
            raise QueueError(f"tenant {tenant_id}: no exception {key}")
        trail = conn.execute("SELECT seq, at, actor, action, detail FROM audit_log WHERE tenant_id = %s AND "
                             "object_type = 'exception' AND object_id = %s ORDER BY seq", (tenant_id, key)).fetchall()
        corrections = conn.execute(
            "SELECT correction_id, kind, status, proposed_by, decided_by, reason FROM correction WHERE tenant_id = %s "
            "AND (subject = %s OR detail -> 'event_ids' ? %s) ORDER BY correction_id",
            (tenant_id, f"exception:{key}", event_id)).fetchall()
    row["key"], row["amount"], row["corrections"] = key, format_minor(row["amount_minor"], row["currency"]), corrections
    return row, trail


def propose_write_off(settings: Settings, tenant_id: str, key: str, reason: str, actor: str) -> Proposal:
    """Propose writing the exception off (its amount is what the approver's limit must cover). Approved, the
    exception is ``written_off`` and leaves the open work; the ledger is not touched by it (README, Controls)."""
    if not reason.strip():
        raise QueueError("a write-off needs a reason")
    with connect(settings, tenant_id) as conn:
        _require(conn, tenant_id, actor, WORKING_ROLES, "propose a write-off of")
        (row,) = _locked(conn, tenant_id, [key])
        if row["workflow_status"] == "written_off":
            raise QueueError(f"{key} is already written off")
        detail = {"relation": row["relation"], "event_id": row["event_id"], "reason_code": row["reason_code"],
                  "record": f"{row['file_name']}#{row['record_ordinal']}", "amount_minor": row["amount_minor"],
                  "currency": row["currency"]}
        proposal = propose_correction(settings, tenant_id, "write_off", f"exception:{key}", detail,
                                      abs(row["amount_minor"]), row["currency"], reason, actor, conn=conn)
        audit.append(conn, tenant_id, actor, "exception_write_off_proposed", "exception", key,
                     {"correction_id": proposal.correction_id})
    return proposal


def keys_of_records(settings: Settings, tenant_id: str, actor: str, records: list[str], relation: str) -> list[str]:
    """The keys of ``relation``'s open exceptions of records named ``FILE#N`` (as the queue shows them)."""
    from jobs.match.manual import ManualMatchError, parse_record

    try:
        wanted = [parse_record(label) for label in records]
    except ManualMatchError as exc:
        raise QueueError(str(exc)) from None
    with connect(settings, tenant_id) as conn:
        _require(conn, tenant_id, actor, READING_ROLES, "read")
        rows = conn.execute(
            "SELECT e.relation, e.event_id, e.file_name, e.record_ordinal FROM exception_item e JOIN "
            "unnest(%s::text[], %s::int[]) AS k(file_name, record_ordinal) ON e.file_name = k.file_name AND "
            "e.record_ordinal = k.record_ordinal WHERE e.tenant_id = %s AND e.is_open AND e.relation = %s",
            ([w[0] for w in wanted], [w[1] for w in wanted], tenant_id, relation)).fetchall()
    missing = sorted({f"{f}#{o}" for f, o in wanted} - {f"{r['file_name']}#{r['record_ordinal']}" for r in rows})
    if missing:
        raise QueueError(f"tenant {tenant_id}: no open {relation} exception for {', '.join(missing)}")
    return [key_of(r) for r in rows]


def propose_match(settings: Settings, tenant_id: str, keys: list[str], reason: str, actor: str) -> Proposal:
    """Propose matching open exceptions of one relation by hand (e.g. a book payment MISSING_IN_PSP with the PSP
    record whose reference was mistyped): the manual match correction of ``jobs.match.manual``, resolved from the
    queue."""
    from jobs.match.manual import ManualMatchError, manual_match

    with connect(settings, tenant_id) as conn:
        _require(conn, tenant_id, actor, WORKING_ROLES, "propose a match of")
        rows = _locked(conn, tenant_id, keys)
    relations = sorted({r["relation"] for r in rows})
    if len(relations) != 1:
        raise QueueError(f"a match joins exceptions of one relation (got {', '.join(relations)})")
    found = {(r["file_name"], r["record_ordinal"]): (r["event_id"], r["source"] if r["source"] in ("book", "bank")
                                                     else "psp", r["amount_minor"], r["currency"]) for r in rows}
    try:
        return manual_match(None, settings, tenant_id, relations[0], sorted(found), reason, actor, found=found)
    except ManualMatchError as exc:
        raise QueueError(str(exc)) from None


def apply_write_off(conn, tenant_id: str, detail: dict, actor: str, proposer: str, business_date) -> dict:
    """An approved write-off (``jobs.corrections.approve``, in its transaction)."""
    key = f"{detail['relation']}:{detail['event_id']}"
    row = conn.execute("SELECT workflow_status FROM exception_item WHERE tenant_id = %s AND relation = %s AND "
                       "event_id = %s FOR UPDATE", (tenant_id, detail["relation"], detail["event_id"])).fetchone()
    if row is None:
        raise QueueError(f"tenant {tenant_id}: no exception {key}")
    conn.execute("UPDATE exception_item SET workflow_status = 'written_off', updated_at = now() WHERE tenant_id = %s "
                 "AND relation = %s AND event_id = %s", (tenant_id, detail["relation"], detail["event_id"]))
    audit.append(conn, tenant_id, actor, "exception_status", "exception", key,
                 {"from": row["workflow_status"], "to": "written_off", "proposed_by": proposer})
    return {"exception": key, "status": "written_off"}


def to_csv(rows: list[dict]) -> str:
    """The rows as CSV (amounts in major units as decimal text; cells starting with = + - @ quoted as text so a
    spreadsheet does not run them)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for r in rows:
        writer.writerow([_cell(r.get(c)) for c in CSV_COLUMNS])
    return out.getvalue()


def _cell(value) -> str:
    text = "" if value is None else str(value).lower() if isinstance(value, bool) else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@") and not _is_number(text) else text


def _is_number(text: str) -> bool:
    try:
        Decimal(text)
        return True
    except InvalidOperation:
        return False
