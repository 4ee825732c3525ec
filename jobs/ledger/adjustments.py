"""Ledger adjustments with four eyes: a maker proposes, a different checker approves.

Unexplained differences wait in ``suspense`` (unmatched bank entries, payout differences, PSP
adjustments) and fee variances in ``unexpected_fees`` until an approved adjustment moves them, e.g.
``Dr payment_fees / Cr unexpected_fees`` once the PSP confirms a fee, or ``Dr suspense / Cr
chargeback_losses``. The ledger run of the adjustment's post date (the later of its effective date and
the day it was approved) posts it as a balanced two-line journal; a post date in a closed period goes
to the next open date like every posting. Both steps are written to the audit log.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from jobs import audit
from jobs.cards import mask_text
from jobs.corrections import CorrectionError
from jobs.corrections import approve as approve_correction
from jobs.corrections import propose as propose_correction
from jobs.ledger.chart import DEFAULT_ACCOUNTS
from jobs.money import MoneyError, to_minor
from jobs.settings import Settings
from jobs.store.db import connect


class AdjustmentError(ValueError):
    pass


@dataclass(frozen=True)
class Adjustment:
    adjustment_id: int
    debit_key: str
    credit_key: str
    psp: str | None
    amount_minor: int
    currency: str
    event_id: str | None
    record: str | None
    reason: str


def _check_key(key: str) -> None:
    if key.split(".", 1)[0] not in DEFAULT_ACCOUNTS:
        raise AdjustmentError(f"unknown account key {key!r} (known: {', '.join(sorted(DEFAULT_ACCOUNTS))})")


def propose(settings: Settings, tenant_id: str, effective_date: date, debit_key: str, credit_key: str, amount: str,
            currency: str, reason: str, actor: str, psp: str | None = None, event_id: str | None = None,
            record: str | None = None) -> int:
    for key in (debit_key, credit_key):
        _check_key(key)
    if debit_key == credit_key:
        raise AdjustmentError("debit and credit account must differ")
    if not reason.strip() or not actor.strip():
        raise AdjustmentError("an adjustment needs a reason and the person who proposes it")
    try:
        minor = to_minor(amount, currency)
    except MoneyError as exc:
        raise AdjustmentError(str(exc)) from None
    if minor <= 0:
        raise AdjustmentError("the amount must be positive (swap debit and credit for the other direction)")
    reason = mask_text(reason)                 # free text a person typed: a card number in it is stored masked
    with connect(settings, tenant_id) as conn:
        row = conn.execute(
            "INSERT INTO ledger_adjustment (tenant_id, effective_date, debit_key, credit_key, psp, amount_minor, "
            "currency, event_id, record, reason, proposed_by) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) "
            "RETURNING adjustment_id", (tenant_id, effective_date, debit_key, credit_key, psp, minor,
                                        currency.upper(), event_id, record, reason, actor)).fetchone()
        _audit(conn, tenant_id, actor, "adjustment_propose", row["adjustment_id"],
               {"debit": debit_key, "credit": credit_key, "amount_minor": minor, "currency": currency.upper(),
                "record": record, "reason": reason})
        propose_correction(settings, tenant_id, "adjustment", f"adjustment:{row['adjustment_id']}",
                           {"adjustment_id": row["adjustment_id"]}, minor, currency, reason, actor, conn=conn)
    return row["adjustment_id"]


def approve(settings: Settings, tenant_id: str, adjustment_id: int, actor: str, business_date: date | None = None) -> date:
    """Approve its correction (``jobs.corrections``: another person, whose role's limit covers the amount); returns
    the post date. ``business_date``: the business date of the approval (default: the database's current date,
    when the person approves)."""
    with connect(settings, tenant_id) as conn:
        found = conn.execute("SELECT correction_id, status FROM correction WHERE tenant_id = %s AND kind = 'adjustment' "
                             "AND subject = %s ORDER BY correction_id DESC LIMIT 1",
                             (tenant_id, f"adjustment:{adjustment_id}")).fetchone()
    if found is None:
        raise AdjustmentError(f"tenant {tenant_id}: no adjustment #{adjustment_id}")
    try:
        return approve_correction(settings, tenant_id, found["correction_id"], actor, business_date)["post_date"]
    except CorrectionError as exc:
        raise AdjustmentError(str(exc)) from None


def approve_in(conn, tenant_id: str, adjustment_id: int, actor: str, business_date: date | None = None) -> date:
    """The approval itself, in the correction's approval transaction: the post date (the effective date, or the
    approval's business date when later)."""
    if business_date is None:
        business_date = conn.execute("SELECT current_date AS d").fetchone()["d"]
    row = conn.execute("SELECT proposed_by, approved_by, effective_date FROM ledger_adjustment WHERE tenant_id = %s "
                       "AND adjustment_id = %s FOR UPDATE", (tenant_id, adjustment_id)).fetchone()
    if row is None:
        raise AdjustmentError(f"tenant {tenant_id}: no adjustment #{adjustment_id}")
    if row["approved_by"]:
        raise AdjustmentError(f"adjustment #{adjustment_id} was already approved by {row['approved_by']}")
    if row["proposed_by"] == actor:
        raise AdjustmentError(f"adjustment #{adjustment_id}: the approver must be someone other than the "
                              f"proposer ({actor})")
    post = max(row["effective_date"], business_date)
    conn.execute("UPDATE ledger_adjustment SET approved_by = %s, approved_at = now(), post_date = %s "
                 "WHERE adjustment_id = %s", (actor, post, adjustment_id))
    _audit(conn, tenant_id, actor, "adjustment_approve", adjustment_id, {"post_date": post.isoformat()})
    return post


def approved_for(settings: Settings, tenant_id: str, post_date: date) -> list[Adjustment]:
    with connect(settings, tenant_id) as conn:
        rows = conn.execute(
            "SELECT adjustment_id, debit_key, credit_key, psp, amount_minor, currency, event_id, record, reason "
            "FROM ledger_adjustment WHERE tenant_id = %s AND post_date = %s ORDER BY adjustment_id",
            (tenant_id, post_date)).fetchall()
    return [Adjustment(**r) for r in rows]


def cleared_event_ids(settings: Settings, tenant_id: str, up_to: date) -> list[str]:
    """Records whose exceptions approved adjustments posted on or before ``up_to`` settle."""
    with connect(settings, tenant_id) as conn:
        rows = conn.execute("SELECT DISTINCT event_id FROM ledger_adjustment WHERE tenant_id = %s AND event_id IS NOT "
                            "NULL AND post_date <= %s", (tenant_id, up_to)).fetchall()
    return sorted(r["event_id"] for r in rows)


def list_adjustments(settings: Settings, tenant_id: str) -> list[dict]:
    with connect(settings, tenant_id) as conn:
        return conn.execute("SELECT * FROM ledger_adjustment WHERE tenant_id = %s ORDER BY adjustment_id",
                            (tenant_id,)).fetchall()


def _audit(conn, tenant_id: str, actor: str, action: str, adjustment_id: int, detail: dict) -> None:
    audit.append(conn, tenant_id, actor, action, "ledger_adjustment", str(adjustment_id), detail)
