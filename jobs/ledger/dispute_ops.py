"""What operators do with disputes: look, attach evidence, submit, accept, record a loss, acknowledge
a refused transition. Each action checks the lifecycle (``disputes.next_state``) and is recorded in
``dispute_event`` and the audit log; an impossible action raises and changes nothing."""
from __future__ import annotations


from jobs import audit
from jobs.ledger.disputes import SHA256, DisputeTransitionError, _move, _record, next_state
from jobs.settings import Settings
from jobs.store.db import connect


def _get(conn, tenant: str, dispute_id: int) -> dict:
    d = conn.execute("SELECT * FROM dispute WHERE tenant_id = %s AND dispute_id = %s FOR UPDATE",
                     (tenant, dispute_id)).fetchone()
    if d is None:
        raise DisputeTransitionError(f"tenant {tenant}: no dispute #{dispute_id}")
    return d


def add_evidence(settings: Settings, tenant: str, dispute_id: int, s3_key: str, sha256: str, description: str | None,
                 actor: str) -> int:
    sha = sha256.strip().lower()
    if not SHA256.match(sha):
        raise DisputeTransitionError(f"evidence checksum must be 64 hex digits (SHA-256), got {sha256!r}")
    if not s3_key.strip() or any(c.isspace() for c in s3_key.strip()):
        raise DisputeTransitionError(f"evidence needs an object key without spaces, got {s3_key!r}")
    if not actor.strip():
        raise DisputeTransitionError("evidence needs the person who adds it (--by)")
    with connect(settings, tenant) as conn:
        d = _get(conn, tenant, dispute_id)
        if d["state"] not in ("received", "evidence_due"):
            raise DisputeTransitionError(f"dispute #{dispute_id} is {d['state']}: evidence can be added while it is "
                                         "received or evidence_due")
        row = conn.execute("INSERT INTO dispute_evidence (tenant_id, dispute_id, s3_key, sha256, description, added_by) "
                           "VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (dispute_id, sha256) DO NOTHING "
                           "RETURNING evidence_id", (tenant, dispute_id, s3_key.strip(), sha, description, actor)).fetchone()
        if row is None:
            raise DisputeTransitionError(f"dispute #{dispute_id} already has a document with checksum {sha}")
        _record(conn, tenant, d, (d["psp"], d["payment_ref"]), "operator", "add_evidence", "applied", d["state"],
                d["state"], actor, f"{s3_key.strip()} sha256={sha}")
    return row["evidence_id"]


ACCEPT_PROPOSED = "accept proposed"


def transition(settings: Settings, tenant: str, dispute_id: int, action: str, actor: str, reason: str | None = None) -> str:
    """``submit`` (needs evidence) or ``lose``: done now, returns the new state. ``accept`` gives the disputed money
    up: a correction with four eyes (``jobs.corrections``), proposed here and applied when a second person approves
    it; returns ``ACCEPT_PROPOSED``."""
    if action not in ("submit", "accept", "lose"):
        raise DisputeTransitionError(f"unknown operator action {action!r}")
    if not actor.strip():
        raise DisputeTransitionError(f"{action} needs the person who does it (--by)")
    if action == "accept":
        from jobs.corrections import CorrectionError, propose

        if not (reason or "").strip():
            raise DisputeTransitionError("accepting a dispute needs a reason")
        with connect(settings, tenant) as conn:
            d = _get(conn, tenant, dispute_id)
            next_state(d["state"], action)                     # refused now when the lifecycle does not allow it
        try:
            propose(settings, tenant, "dispute_accept", f"dispute:{dispute_id}", {"dispute_id": dispute_id,
                    "reason": reason}, abs(d["amount_minor"]), d["currency"], reason, actor)
        except CorrectionError as exc:
            raise DisputeTransitionError(str(exc)) from None
        return ACCEPT_PROPOSED
    with connect(settings, tenant) as conn:
        return transition_in(conn, tenant, dispute_id, action, actor, reason)


def transition_in(conn, tenant: str, dispute_id: int, action: str, actor: str, reason: str | None = None) -> str:
    """The transition in ``conn``'s transaction (an approved acceptance: in the approval's)."""
    d = _get(conn, tenant, dispute_id)
    to = next_state(d["state"], action)
    if action == "submit":
        n = conn.execute("SELECT count(*) AS n FROM dispute_evidence WHERE dispute_id = %s", (dispute_id,)).fetchone()
        if n["n"] == 0:
            raise DisputeTransitionError(f"dispute #{dispute_id}: attach evidence before submitting")
    moved = _move(conn, d, to)
    _record(conn, tenant, moved, (d["psp"], d["payment_ref"]), "operator", action, "applied", d["state"], to, actor,
            reason)
    return to


def acknowledge(settings: Settings, tenant: str, dispute_event_id: int, actor: str, note: str) -> None:
    """Close the exception a refused transition raised (the record stays, marked acknowledged)."""
    with connect(settings, tenant) as conn:
        row = conn.execute("UPDATE dispute_event SET acknowledged_by = %s, acknowledged_at = now() WHERE tenant_id = %s "
                           "AND dispute_event_id = %s AND outcome = 'refused' AND acknowledged_at IS NULL "
                           "RETURNING dispute_id", (actor, tenant, dispute_event_id)).fetchone()
        if row is None:
            raise DisputeTransitionError(f"tenant {tenant}: no unacknowledged refused dispute event #{dispute_event_id}")
        audit.append(conn, tenant, actor, "dispute_acknowledge", "dispute_event", str(dispute_event_id), {"note": note})


def list_disputes(settings: Settings, tenant: str, state: str | None = None) -> list[dict]:
    with connect(settings, tenant) as conn:
        return conn.execute("SELECT * FROM dispute WHERE tenant_id = %s AND (%s::text IS NULL OR state = %s) "
                            "ORDER BY dispute_id", (tenant, state, state)).fetchall()


def show(settings: Settings, tenant: str, dispute_id: int) -> dict:
    with connect(settings, tenant) as conn:
        d = conn.execute("SELECT * FROM dispute WHERE tenant_id = %s AND dispute_id = %s", (tenant, dispute_id)).fetchone()
        if d is None:
            raise DisputeTransitionError(f"tenant {tenant}: no dispute #{dispute_id}")
        events = conn.execute("SELECT * FROM dispute_event WHERE dispute_id = %s ORDER BY dispute_event_id",
                              (dispute_id,)).fetchall()
        evidence = conn.execute("SELECT * FROM dispute_evidence WHERE dispute_id = %s ORDER BY evidence_id",
                                (dispute_id,)).fetchall()
    return {"dispute": d, "events": events, "evidence": evidence}


def refused(settings: Settings, tenant: str) -> list[dict]:
    """Refused transitions not yet acknowledged (open DISPUTE_TRANSITION exceptions)."""
    with connect(settings, tenant) as conn:
        return conn.execute("SELECT * FROM dispute_event WHERE tenant_id = %s AND outcome = 'refused' AND "
                            "acknowledged_at IS NULL ORDER BY dispute_event_id", (tenant,)).fetchall()
