"""Chargebacks and disputes: a lifecycle state machine fed by PSP records and operators.

    (chargeback) -> received -> evidence_due -> submitted -> won | lost
                                  |    \\-> lost (evidence deadline passed)
                    received / evidence_due -> accepted (the merchant accepts the loss)
                    won -> (second chargeback) -> received, cycle + 1 -> evidence_due ...

One dispute per (PSP, original payment). PSP records move it: ``chargeback`` (Stripe ``dispute``,
Adyen ``Chargeback``, webhook ``charge.dispute.created``) opens it, with an evidence due date
``psps.<psp>.dispute_evidence_days`` after the chargeback; ``chargeback_reversal`` (Stripe
``dispute_reversal``, Adyen ``ChargebackReversed``, ``charge.dispute.closed`` with reinstated funds)
wins it; ``second_chargeback`` (Adyen ``SecondChargeback``) reopens a won one. The same notice from a
second source (webhook and report carry the same dispute reference) is recorded as ``noted``. A
transition the machine does not allow is never applied: it is recorded as ``refused`` and is an
exception (``DISPUTE_TRANSITION`` in the exceptions queue) until someone acknowledges it. Operators
add evidence (documents in object storage by key and SHA-256), submit, accept, or record a loss;
every step is in ``dispute_event`` and the audit log. Money is posted by the ledger from the same
records (chargeback losses, reversals, dispute fees), not here.
"""
from __future__ import annotations

import re
from datetime import date, timedelta

from jobs import audit
from jobs.settings import Settings
from jobs.store.db import connect
from jobs.tenants import TenantConfig

STATES = ("received", "evidence_due", "submitted", "won", "lost", "accepted")
TRANSITIONS = {
    ("received", "open_window"): "evidence_due",
    ("received", "accept"): "accepted",
    ("evidence_due", "accept"): "accepted",
    ("evidence_due", "submit"): "submitted",
    ("evidence_due", "deadline"): "lost",
    ("submitted", "reversal"): "won",
    ("submitted", "lose"): "lost",
    ("won", "second_chargeback"): "received",
}
PSP_ACTIONS = {"chargeback": "chargeback", "second_chargeback": "second_chargeback",
               "chargeback_reversal": "reversal"}
DEFAULT_EVIDENCE_DAYS = 7
SHA256 = re.compile(r"^[0-9a-f]{64}$")


class DisputeTransitionError(ValueError):
    pass


def next_state(state: str, action: str) -> str:
    """The state after ``action``; raises for a transition the lifecycle does not allow."""
    if (state, action) not in TRANSITIONS:
        allowed = sorted(a for s, a in TRANSITIONS if s == state) or ["none (final)"]
        raise DisputeTransitionError(f"a dispute in state {state!r} cannot take {action!r} "
                                     f"(allowed from {state}: {', '.join(allowed)})")
    return TRANSITIONS[(state, action)]


def evidence_days(cfg: TenantConfig, psp: str) -> int:
    return int(cfg.raw["psps"].get(psp, {}).get("dispute_evidence_days", DEFAULT_EVIDENCE_DAYS))


def _record(conn, tenant: str, dispute: dict | None, key: tuple[str, str], origin: str, action: str, outcome: str,
            frm: str | None, to: str | None, actor: str, detail: str | None, ev: dict | None = None,
            business_date: date | None = None) -> None:
    ev = ev or {}
    conn.execute(
        "INSERT INTO dispute_event (tenant_id, dispute_id, psp, payment_ref, origin, action, outcome, from_state, "
        "to_state, cycle, event_id, psp_ref, source, event_type, amount_minor, currency, file_name, record_ordinal, "
        "business_date, actor, detail) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, "
        "%s, %s, %s, %s)",
        (tenant, dispute["dispute_id"] if dispute else None, key[0], key[1], origin, action, outcome, frm, to,
         dispute["cycle"] if dispute else 1, ev.get("event_id"), ev.get("psp_ref"), ev.get("source"),
         ev.get("event_type"), ev.get("amount_minor"), ev.get("currency"), ev.get("file_name"),
         ev.get("record_ordinal"), business_date, actor, detail))
    if outcome == "refused" or origin == "operator":
        audit.append(conn, tenant, actor, f"dispute_{action}_{outcome}", "dispute",
                     str(dispute["dispute_id"]) if dispute else None,
                     {"psp": key[0], "payment_ref": key[1], "from": frm, "to": to, "detail": detail,
                      "event_id": ev.get("event_id")})


def _move(conn, dispute: dict, to: str, **changes) -> dict:
    sets = ", ".join(["state = %s", "updated_at = now()", *[f"{k} = %s" for k in changes]])
    conn.execute(f"UPDATE dispute SET {sets} WHERE dispute_id = %s", (to, *changes.values(), dispute["dispute_id"]))
    return {**dispute, "state": to, **changes}


def apply_psp_event(conn, cfg: TenantConfig, ev: dict, business_date: date) -> str:
    """Apply one PSP record to its dispute; returns the outcome (applied / noted / refused / skipped)."""
    tenant = cfg.tenant_id
    if conn.execute("SELECT 1 FROM dispute_event WHERE tenant_id = %s AND event_id = %s",
                    (tenant, ev["event_id"])).fetchone():
        return "skipped"                                   # applied by an earlier run of this date
    key = (ev["psp"] or ev["source"], ev["psp_payment_ref"] or ev["psp_ref"])
    action = PSP_ACTIONS[ev["event_type"]]
    d = conn.execute("SELECT * FROM dispute WHERE tenant_id = %s AND psp = %s AND payment_ref = %s FOR UPDATE",
                     (tenant, *key)).fetchone()
    opened = ev["booked_at"].date() if ev.get("booked_at") else business_date
    due = opened + timedelta(days=evidence_days(cfg, key[0]))
    if d is None and action == "chargeback":
        d = conn.execute("INSERT INTO dispute (tenant_id, psp, payment_ref, state, amount_minor, currency, opened_date, "
                         "psp_refs) VALUES (%s, %s, %s, 'received', %s, %s, %s, %s) RETURNING *",
                         (tenant, *key, abs(ev["amount_minor"]), ev["currency"], opened,
                          [ev["psp_ref"]] if ev["psp_ref"] else [])).fetchone()
        _record(conn, tenant, d, key, "psp", "chargeback", "applied", None, "received", "psp", None, ev, business_date)
        _open_window(conn, tenant, d, key, due, business_date)
        return "applied"
    if d is None:
        _record(conn, tenant, None, key, "psp", action, "refused", None, None, "psp",
                f"{ev['event_type']} for payment {key[1]} without a known chargeback", ev, business_date)
        return "refused"
    repeat = conn.execute("SELECT 1 FROM dispute_event WHERE dispute_id = %s AND cycle = %s AND action = %s AND "
                          "psp_ref = %s AND outcome = 'applied'", (d["dispute_id"], d["cycle"], action,
                                                                   ev["psp_ref"])).fetchone()
    if repeat or (action == "chargeback" and ev["psp_ref"] in d["psp_refs"]):
        _record(conn, tenant, d, key, "psp", action, "noted", d["state"], d["state"], "psp",
                "the same notice from another source", ev, business_date)
        return "noted"
    try:
        if action == "chargeback":
            raise DisputeTransitionError(f"a new chargeback ({ev['psp_ref']}) for payment {key[1]}, whose dispute is "
                                         f"{d['state']}; after a won dispute the PSP sends a second chargeback")
        to = next_state(d["state"], action)
    except DisputeTransitionError as exc:
        _record(conn, tenant, d, key, "psp", action, "refused", d["state"], None, "psp", str(exc), ev, business_date)
        return "refused"
    refs = sorted(set(d["psp_refs"]) | ({ev["psp_ref"]} if ev["psp_ref"] else set()))
    cycle = d["cycle"] + 1 if action == "second_chargeback" else d["cycle"]
    moved = _move(conn, d, to, cycle=cycle, psp_refs=refs)
    _record(conn, tenant, moved, key, "psp", action, "applied", d["state"], to, "psp", None, ev, business_date)
    if to == "received":
        _open_window(conn, tenant, moved, key, due, business_date)
    return "applied"


def _open_window(conn, tenant: str, d: dict, key: tuple[str, str], due: date, business_date: date) -> None:
    moved = _move(conn, d, next_state(d["state"], "open_window"), due_date=due)
    _record(conn, tenant, moved, key, "system", "open_window", "applied", d["state"], moved["state"], "system",
            f"evidence due by {due}", business_date=business_date)


def expire(conn, tenant: str, business_date: date) -> int:
    """Disputes whose evidence deadline passed before ``business_date`` without a submission are lost."""
    late = conn.execute("SELECT * FROM dispute WHERE tenant_id = %s AND state = 'evidence_due' AND due_date < %s "
                        "FOR UPDATE", (tenant, business_date)).fetchall()
    for d in late:
        moved = _move(conn, d, next_state(d["state"], "deadline"))
        _record(conn, tenant, moved, (d["psp"], d["payment_ref"]), "system", "deadline", "applied", d["state"], "lost",
                "system", f"no evidence submitted by {d['due_date']}", business_date=business_date)
    return len(late)


def sync(settings: Settings, cfg: TenantConfig, business_date: date, events: list[dict]) -> dict[str, int]:
    """Apply the day's dispute records (in booking order), then expire missed deadlines."""
    counts: dict[str, int] = {}
    ordered = sorted(events, key=lambda e: (e.get("booked_at") is None, e.get("booked_at"), e["file_name"],
                                            e["record_ordinal"]))
    with connect(settings, cfg.tenant_id) as conn:
        for ev in ordered:
            outcome = apply_psp_event(conn, cfg, ev, business_date)
            counts[outcome] = counts.get(outcome, 0) + 1
        counts["expired"] = expire(conn, cfg.tenant_id, business_date)
    return counts
