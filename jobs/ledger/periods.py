"""Accounting periods: close and reopen a business date or a month; where postings of a date go.

A closed period refuses postings: a ledger run for a business date inside a closed period posts its
journals on the next open date (``posting_date``), each carrying a ``period_ref`` that names the
closed period and the business date. Journals already booked in a closed period (or already sent to an
ERP) are never rewritten by a rerun: ``jobs/ledger/restate.py`` keeps them and books any change as a
reversal and a restatement on the next open date.
"""
from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date, timedelta

from jobs import audit
from jobs.settings import Settings
from jobs.store.db import connect


class PeriodError(ValueError):
    pass


@dataclass(frozen=True)
class Period:
    label: str          # YYYY-MM-DD or YYYY-MM
    start: date
    end: date

    @classmethod
    def parse(cls, label: str) -> "Period":
        try:
            if len(label) == 7:
                year, month = (int(x) for x in label.split("-"))
                return cls(label, date(year, month, 1), date(year, month, calendar.monthrange(year, month)[1]))
            day = date.fromisoformat(label)
            return cls(label, day, day)
        except ValueError:
            raise PeriodError(f"not a period (YYYY-MM-DD or YYYY-MM): {label!r}") from None

    def __contains__(self, day: date) -> bool:
        return self.start <= day <= self.end


def closed_periods(settings: Settings, tenant_id: str) -> list[Period]:
    with connect(settings, tenant_id) as conn:
        rows = conn.execute("SELECT period, period_start, period_end FROM ledger_period WHERE tenant_id = %s "
                            "AND status = 'closed' ORDER BY period_start", (tenant_id,)).fetchall()
    return [Period(r["period"], r["period_start"], r["period_end"]) for r in rows]


def posting_date(day: date, closed: list[Period]) -> tuple[date, str | None]:
    """(the date postings of ``day`` go to, the reference when that is not ``day`` itself)."""
    current, hops = day, []
    while True:
        holding = [p for p in closed if current in p]
        if not holding:
            break
        hops.append(holding[0].label)
        current = max(p.end for p in holding) + timedelta(days=1)
    if not hops:
        return day, None
    return current, f"business date {day} falls in closed period {', '.join(hops)}; posted on {current}"


def is_closed(day: date, closed: list[Period]) -> bool:
    return any(day in p for p in closed)


def set_status(settings: Settings, tenant_id: str, label: str, status: str, actor: str, reason: str | None) -> Period:
    """Close (status 'closed') or reopen ('open') a period; recorded in the audit log."""
    period = Period.parse(label)
    if not actor.strip():
        raise PeriodError("closing or reopening a period needs the person who does it (--by)")
    if status == "open" and not (reason or "").strip():
        raise PeriodError("reopening a closed period needs a reason")
    with connect(settings, tenant_id) as conn:
        current = conn.execute("SELECT status FROM ledger_period WHERE tenant_id = %s AND period = %s",
                               (tenant_id, label)).fetchone()
        if status == "open" and (current is None or current["status"] != "closed"):
            raise PeriodError(f"tenant {tenant_id}: period {label} is not closed")
        overlapping = conn.execute(
            "SELECT period FROM ledger_period WHERE tenant_id = %s AND status = 'closed' AND period <> %s "
            "AND period_start <= %s AND period_end >= %s", (tenant_id, label, period.end, period.start)).fetchall()
        if status == "open" and overlapping:
            raise PeriodError(f"tenant {tenant_id}: period {label} overlaps the closed period(s) "
                              f"{', '.join(r['period'] for r in overlapping)}; reopen those as well")
        conn.execute(
            "INSERT INTO ledger_period (tenant_id, period, period_start, period_end, status, changed_by, reason) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT (tenant_id, period) DO UPDATE SET status = "
            "EXCLUDED.status, changed_by = EXCLUDED.changed_by, changed_at = now(), reason = EXCLUDED.reason",
            (tenant_id, label, period.start, period.end, status, actor, reason))
        audit.append(conn, tenant_id, actor, "period_close" if status == "closed" else "period_reopen", "ledger_period",
                     label, {"reason": reason})
    return period


def list_periods(settings: Settings, tenant_id: str) -> list[dict]:
    with connect(settings, tenant_id) as conn:
        return conn.execute("SELECT period, status, changed_by, changed_at, reason FROM ledger_period "
                            "WHERE tenant_id = %s ORDER BY period_start", (tenant_id,)).fetchall()
