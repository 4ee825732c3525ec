"""Four eyes on every correction: the one service the CLI, the JSON API and the UI go through.

A correction (a manual match or unmatch, a ledger adjustment, a dispute acceptance, a write-off of an exception) is first a proposal
(``propose``); it takes effect only when a second person approves it (``approve``), in the same transaction as
the approval, or never (``reject`` with a reason, or it expires). The rules, whoever calls:

* the approver is not the proposer (also a CHECK in the database);
* the approver holds a role for the tenant (``tenant_member``: approver, controller or admin) whose limit in the
  tenant's configuration (``approvals.limits``: role -> currency (or ``*``) -> largest amount, major units)
  covers the proposal's amount in its currency;
* one pending proposal per subject (the records or the object it changes; a unique index in the database);
* a proposal expires ``approvals.expire_after_days`` after it was made (default 7): it can no longer be approved;
* every step is in the audit trail with its actor, who is the signed-in user (UI, API) or the person the CLI
  runs as (``actor_from_environment``), never a name typed in.
"""
from __future__ import annotations

import getpass
import json
from dataclasses import dataclass
from datetime import date

import psycopg

from jobs import audit
from jobs.cards import mask_json_payload, mask_text
from jobs.money import format_minor, to_minor
from jobs.settings import Settings
from jobs.store.db import connect

KINDS = ("manual_match", "unmatch", "adjustment", "dispute_accept", "write_off")
ROLES = ("operator", "approver", "controller", "auditor", "admin")
APPROVING_ROLES = ("approver", "controller", "admin")
DEFAULT_LIMITS = {"approver": {"*": "10000.00"}, "controller": {"*": "1000000.00"}, "admin": {"*": "1000000.00"}}
DEFAULT_EXPIRY_DAYS = 7


class CorrectionError(ValueError):
    """A proposal or decision refused; the message says why (one line)."""


@dataclass(frozen=True)
class Proposal:
    correction_id: int
    kind: str
    subject: str
    detail: dict            # what approving it applies (a manual match: its match_id, relation, records...)


def actor_from_environment(settings: Settings) -> str:
    """Who a command-line correction is recorded as: ``RECON_ACTOR`` (set by the environment a person signs in
    to, e.g. a bastion's login script or a CI job's identity), else the operating-system user."""
    return settings.actor or getpass.getuser()


def _approvals(settings: Settings, tenant_id: str) -> dict:
    from jobs.tenants import load_tenant

    return load_tenant(settings, tenant_id).raw.get("approvals") or {}


def limit_minor(approvals: dict, roles: list[str], currency: str) -> int | None:
    """The largest amount (minor units of ``currency``) any of ``roles`` may approve; None: none may."""
    limits = {**DEFAULT_LIMITS, **(approvals.get("limits") or {})}
    found = []
    for role in roles:
        per_currency = limits.get(role) or {}
        text = per_currency.get(currency, per_currency.get("*"))
        if role in APPROVING_ROLES and text is not None:
            found.append(to_minor(str(text), currency))
    return max(found) if found else None


def roles_of(conn, tenant_id: str, user: str) -> list[str]:
    return [r["role"] for r in conn.execute("SELECT role FROM tenant_member WHERE tenant_id = %s AND user_name = %s "
                                            "ORDER BY role", (tenant_id, user)).fetchall()]


def grant(settings: Settings, tenant_id: str, user: str, role: str, actor: str) -> None:
    """Give ``user`` ``role`` for the tenant: an admin of the tenant may, or a platform administrator
    (``RECON_PLATFORM_ADMINS``, set by the deployment: how a tenant gets its first admin)."""
    if role not in ROLES:
        raise CorrectionError(f"role must be one of {', '.join(ROLES)}")
    with connect(settings, tenant_id) as conn:
        if actor not in settings.platform_admins and "admin" not in roles_of(conn, tenant_id, actor):
            raise CorrectionError(f"only an admin of {tenant_id} or a platform administrator may grant roles "
                                  f"({actor} is neither)")
        conn.execute("INSERT INTO tenant_member (tenant_id, user_name, role, granted_by) VALUES (%s, %s, %s, %s) "
                     "ON CONFLICT DO NOTHING", (tenant_id, user, role, actor))
        audit.append(conn, tenant_id, actor, "role_grant", "tenant_member", user, {"role": role})


def propose(settings: Settings, tenant_id: str, kind: str, subject: str, detail: dict, amount_minor: int,
            currency: str, reason: str, actor: str, conn=None) -> Proposal:
    """Record a proposal (in ``conn``'s transaction when given, e.g. beside the pending adjustment it is for)."""
    if kind not in KINDS:
        raise CorrectionError(f"kind must be one of {', '.join(KINDS)}")
    if not reason.strip() or not actor.strip():
        raise CorrectionError(f"a {kind} proposal needs a reason and the person who proposes it")
    days = int(_approvals(settings, tenant_id).get("expire_after_days", DEFAULT_EXPIRY_DAYS))
    if conn is None:
        with connect(settings, tenant_id) as own:
            return _propose(own, tenant_id, kind, subject, detail, amount_minor, currency, reason, actor, days)
    return _propose(conn, tenant_id, kind, subject, detail, amount_minor, currency, reason, actor, days)


def _propose(conn, tenant_id, kind, subject, detail, amount_minor, currency, reason, actor, days) -> Proposal:
    reason = mask_text(reason)                 # free text a person typed: a card number in it is stored masked
    detail = json.loads(mask_json_payload(json.dumps(detail).encode("utf-8")))
    pending = conn.execute("SELECT correction_id FROM correction WHERE tenant_id = %s AND kind = %s AND subject = %s "
                           "AND status = 'pending' AND expires_at <= now()", (tenant_id, kind, subject)).fetchall()
    for row in pending:                       # an expired proposal no longer blocks a new one
        _expire(conn, tenant_id, row["correction_id"])
    try:
        with conn.transaction():
            row = conn.execute(
                "INSERT INTO correction (tenant_id, kind, subject, detail, amount_minor, currency, reason, proposed_by, "
                "expires_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, now() + make_interval(days => %s)) "
                "RETURNING correction_id", (tenant_id, kind, subject, json.dumps(detail), abs(int(amount_minor)),
                                            currency.upper(), reason, actor, days)).fetchone()
    except psycopg.errors.UniqueViolation:
        other = conn.execute("SELECT correction_id, proposed_by FROM correction WHERE tenant_id = %s AND kind = %s AND "
                             "subject = %s AND status = 'pending'", (tenant_id, kind, subject)).fetchone()
        raise CorrectionError(f"a pending {kind} proposal (#{other['correction_id']} by {other['proposed_by']}) "
                              f"already covers {subject}: approve or reject it first") from None
    audit.append(conn, tenant_id, actor, "correction_propose", "correction", str(row["correction_id"]),
                 {"kind": kind, "subject": subject, "amount_minor": abs(int(amount_minor)),
                  "currency": currency.upper(), "reason": reason})
    return Proposal(row["correction_id"], kind, subject, detail)


def _expire(conn, tenant_id: str, correction_id: int) -> None:
    conn.execute("UPDATE correction SET status = 'expired', decided_at = now() WHERE correction_id = %s AND "
                 "status = 'pending'", (correction_id,))
    audit.append(conn, tenant_id, "system", "correction_expire", "correction", str(correction_id), {})


def _pending(conn, tenant_id: str, correction_id: int, verb: str) -> dict:
    row = conn.execute("SELECT *, expires_at <= now() AS expired FROM correction WHERE tenant_id = %s AND "
                       "correction_id = %s FOR UPDATE", (tenant_id, correction_id)).fetchone()
    if row is None:
        raise CorrectionError(f"tenant {tenant_id}: no correction #{correction_id}")
    if row["status"] == "pending" and row["expired"]:
        _expire(conn, tenant_id, correction_id)
        conn.commit()
        raise CorrectionError(f"correction #{correction_id} expired at {row['expires_at']:%Y-%m-%d %H:%M} UTC: "
                              "propose it again")
    if row["status"] != "pending":
        raise CorrectionError(f"correction #{correction_id} cannot be {verb}: it is {row['status']}"
                              + (f" (by {row['decided_by']})" if row["decided_by"] else ""))
    return row


def approve(settings: Settings, tenant_id: str, correction_id: int, actor: str, business_date: date | None = None) -> dict:
    """Approve and apply, in one transaction; returns what applying it returned (e.g. the post date)."""
    approvals = _approvals(settings, tenant_id)
    with connect(settings, tenant_id) as conn:
        row = _pending(conn, tenant_id, correction_id, "approved")
        if row["proposed_by"] == actor:
            raise CorrectionError(f"correction #{correction_id}: the approver must be someone other than the proposer "
                                  f"({actor})")
        roles = roles_of(conn, tenant_id, actor)
        limit = limit_minor(approvals, roles, row["currency"])
        if limit is None:
            raise CorrectionError(f"{actor} may not approve corrections of {tenant_id} (roles: "
                                  f"{', '.join(roles) or 'none'}; approving roles: {', '.join(APPROVING_ROLES)})")
        if row["amount_minor"] > limit:
            raise CorrectionError(f"correction #{correction_id} is {format_minor(row['amount_minor'], row['currency'])} "
                                  f"{row['currency']}; {actor}'s limit ({', '.join(roles)}) is "
                                  f"{format_minor(limit, row['currency'])} {row['currency']}: a controller must approve it")
        result = APPLY[row["kind"]](conn, tenant_id, row["detail"], actor, row["proposed_by"], business_date)
        conn.execute("UPDATE correction SET status = 'approved', decided_by = %s, decided_at = now() "
                     "WHERE correction_id = %s", (actor, correction_id))
        audit.append(conn, tenant_id, actor, "correction_approve", "correction", str(correction_id),
                     {"kind": row["kind"], "subject": row["subject"], "amount_minor": row["amount_minor"],
                      "currency": row["currency"], "roles": roles, **{k: str(v) for k, v in (result or {}).items()}})
    return result or {}


def reject(settings: Settings, tenant_id: str, correction_id: int, actor: str, reason: str) -> None:
    """Refuse a proposal, with a reason: a person with an approving role other than the proposer."""
    if not reason.strip():
        raise CorrectionError("a rejection needs a reason")
    reason = mask_text(reason)
    with connect(settings, tenant_id) as conn:
        row = _pending(conn, tenant_id, correction_id, "rejected")
        if row["proposed_by"] == actor:
            raise CorrectionError(f"correction #{correction_id}: the proposer cannot decide on it ({actor})")
        if not set(roles_of(conn, tenant_id, actor)) & set(APPROVING_ROLES):
            raise CorrectionError(f"{actor} may not decide on corrections of {tenant_id}")
        conn.execute("UPDATE correction SET status = 'rejected', decided_by = %s, decided_at = now(), "
                     "decision_reason = %s WHERE correction_id = %s", (actor, reason, correction_id))
        audit.append(conn, tenant_id, actor, "correction_reject", "correction", str(correction_id),
                     {"kind": row["kind"], "subject": row["subject"], "reason": reason})


def list_corrections(settings: Settings, tenant_id: str, status: str | None = "pending") -> list[dict]:
    """The tenant's corrections (of ``status``; None: all), a pending one past its expiry shown as expired."""
    with connect(settings, tenant_id) as conn:
        rows = conn.execute(
            "SELECT correction_id, kind, subject, detail, amount_minor, currency, reason, proposed_by, proposed_at, "
            "expires_at, CASE WHEN status = 'pending' AND expires_at <= now() THEN 'expired' ELSE status END AS status, "
            "decided_by, decided_at, decision_reason FROM correction WHERE tenant_id = %s ORDER BY correction_id",
            (tenant_id,)).fetchall()
    return [r for r in rows if status is None or r["status"] == status]


# --- applying an approved correction (inside the approval's transaction) ---------------------------------

def _apply_manual(conn, tenant_id: str, detail: dict, actor: str, proposer: str, business_date) -> dict:
    from jobs.match.manual import record_decision

    record_decision(conn, tenant_id, detail["action"], detail["relation"], detail["event_ids"], detail["match_id"],
                    detail["records"], detail["reason"], proposer, approved_by=actor)
    return {"match_id": detail["match_id"]}


def _apply_adjustment(conn, tenant_id: str, detail: dict, actor: str, proposer: str, business_date) -> dict:
    from jobs.ledger.adjustments import approve_in

    post = approve_in(conn, tenant_id, int(detail["adjustment_id"]), actor, business_date)
    return {"adjustment_id": detail["adjustment_id"], "post_date": post}


def _apply_dispute_accept(conn, tenant_id: str, detail: dict, actor: str, proposer: str, business_date) -> dict:
    from jobs.ledger.dispute_ops import transition_in

    state = transition_in(conn, tenant_id, int(detail["dispute_id"]), "accept", actor, detail.get("reason"))
    return {"dispute_id": detail["dispute_id"], "state": state}


def _apply_write_off(conn, tenant_id: str, detail: dict, actor: str, proposer: str, business_date) -> dict:
    from jobs.exception_queue import apply_write_off

    return apply_write_off(conn, tenant_id, detail, actor, proposer, business_date)


APPLY = {"manual_match": _apply_manual, "unmatch": _apply_manual, "adjustment": _apply_adjustment,
         "dispute_accept": _apply_dispute_accept, "write_off": _apply_write_off}
