"""Alerts on the outcome of a daily run: after ``publish`` has put the run's figures and exceptions in PostgreSQL,
``check`` compares them with the tenant's thresholds (configuration ``alerts``), raises an alert for each condition
that holds and resolves the open alerts of those that cleared.

| condition             | when                                                                  | default priority |
|-----------------------|-----------------------------------------------------------------------|------------------|
| ledger_unbalanced     | the day's journals: debits != credits in a currency (always checked)  | P1               |
| source_missing        | a business day without a parsed file of an ``expected_sources`` entry  | P2               |
| match_rate_low        | the book match rate below ``match_rate.minimum``                      | P2               |
| match_rate_drop       | more than ``match_rate.max_drop_points`` below the median of the runs  | P2               |
|                       | of the 7 days before                                                  |                  |
| unreconciled_amount   | open exceptions' absolute amounts above ``unreconciled_max`` (per      | P2               |
|                       | currency, major units; ``"*"`` any other currency)                    |                  |
| open_exceptions       | more open exceptions than ``open_exceptions_max``                     | P3               |
| sla_breached          | more open exceptions past their SLA than ``sla_breaches_max``          | P3               |

A threshold that is not configured is not checked (the ledger's balance always is). ``alerts.priorities`` overrides
a condition's priority. The conditions of the day (ledger, sources) are keyed to the business date, the others to
the tenant: one open alert while the match rate stays low, whatever the number of days (checked on the tenant's
latest run only: a replayed earlier day raises and resolves only its own day's conditions). A run that succeeds also
resolves the alerts of its own failed tasks for that date (``jobs.alerts.callbacks``).

``evaluate`` is pure (figures and thresholds in, conditions out), ``check`` reads, raises and resolves.
"""
from __future__ import annotations

import json
import statistics
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

from jobs.calendar import BusinessCalendar
from jobs.money import format_minor, to_minor
from jobs.settings import ConfigurationError
from jobs.tenants import TenantConfig

DEFAULT_PRIORITIES = {"ledger_unbalanced": "P1", "source_missing": "P2", "match_rate_low": "P2",
                      "match_rate_drop": "P2", "unreconciled_amount": "P2", "open_exceptions": "P3",
                      "sla_breached": "P3"}
DAY_SCOPED = ("ledger_unbalanced", "source_missing")       # keyed to the business date they are about
TRAILING_DAYS = 7


@dataclass(frozen=True)
class Thresholds:
    """The tenant's ``alerts`` configuration, validated."""
    match_rate_minimum: Decimal | None = None
    match_rate_max_drop_points: Decimal | None = None
    open_exceptions_max: int | None = None
    unreconciled_max: dict[str, Decimal] = field(default_factory=dict)     # currency or "*" -> major units
    sla_breaches_max: int | None = None
    expected_sources: tuple[str, ...] = ()
    priorities: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_PRIORITIES))

    @classmethod
    def from_config(cls, tenant_id: str, alerts: dict[str, Any] | None) -> "Thresholds":
        alerts = alerts or {}

        def bad(what: str, value: Any) -> ConfigurationError:
            return ConfigurationError(f"tenant {tenant_id}: alerts.{what} {value!r} is not valid")

        def decimal(what: str, value: Any, low: Decimal, high: Decimal | None = None) -> Decimal | None:
            if value is None:
                return None
            try:
                d = Decimal(str(value))
            except InvalidOperation:
                raise bad(what, value) from None
            if not d.is_finite() or d < low or (high is not None and d > high):
                raise bad(what, value)
            return d

        def count(what: str, value: Any) -> int | None:
            if value is None:
                return None
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise bad(what, value)
            return value

        for p, conn_ids in (alerts.get("channels") or {}).items():
            if p not in ("P1", "P2", "P3") or not isinstance(conn_ids, list) or not all(
                    isinstance(c, str) and c for c in conn_ids):
                raise bad(f"channels.{p}", conn_ids)
        limit = alerts.get("rate_limit_per_hour", 1)
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise bad("rate_limit_per_hour", limit)
        rate = alerts.get("match_rate") or {}
        priorities = dict(DEFAULT_PRIORITIES)
        for kind, p in (alerts.get("priorities") or {}).items():
            if kind not in DEFAULT_PRIORITIES or p not in ("P1", "P2", "P3"):
                raise bad(f"priorities.{kind}", p)
            priorities[kind] = p
        return cls(
            match_rate_minimum=decimal("match_rate.minimum", rate.get("minimum"), Decimal(0), Decimal(1)),
            match_rate_max_drop_points=decimal("match_rate.max_drop_points", rate.get("max_drop_points"), Decimal(0),
                                               Decimal(100)),
            open_exceptions_max=count("open_exceptions_max", alerts.get("open_exceptions_max")),
            unreconciled_max={str(k).upper() if k != "*" else "*": decimal(f"unreconciled_max.{k}", v, Decimal(0))
                              for k, v in (alerts.get("unreconciled_max") or {}).items()},
            sla_breaches_max=count("sla_breaches_max", alerts.get("sla_breaches_max")),
            expected_sources=tuple(alerts.get("expected_sources") or ()),
            priorities=priorities)


@dataclass(frozen=True)
class Figures:
    """What ``sql/queries/alert_figures.sql`` returns for a tenant and date."""
    business_date: date
    book: dict[date, tuple[int, int]]               # run date -> (total, matched)
    ledger: dict[str, tuple[int, int]]              # currency -> (debit, credit) minor units
    files_parsed: dict[str, int]                    # source -> files
    open_count: dict[str, int]                      # currency -> open exceptions
    open_amount: dict[str, int]                     # currency -> sum of absolute amounts, minor units
    overdue: dict[str, int]                         # reason code -> open exceptions past their SLA

    @classmethod
    def from_rows(cls, business_date: date, rows: list[dict]) -> "Figures":
        book: dict[date, list[int]] = {}
        ledger: dict[str, list[int]] = {}
        out: dict[str, dict[str, int]] = {"files_parsed": {}, "open_count": {}, "open_amount": {}, "overdue": {}}
        for r in rows:
            figure, dim, value = r["figure"], r["dimension"], int(r["value"])
            if figure in ("book_total", "book_matched"):
                book.setdefault(r["business_date"], [0, 0])[figure == "book_matched"] = value
            elif figure in ("ledger_debit", "ledger_credit"):
                ledger.setdefault(dim, [0, 0])[figure == "ledger_credit"] = value
            else:
                out[figure][dim] = value
        return cls(business_date, {d: (t, m) for d, (t, m) in book.items()},
                   {c: (dr, cr) for c, (dr, cr) in ledger.items()}, **out)

    def match_rate(self, day: date) -> Decimal | None:
        total, matched = self.book.get(day, (0, 0))
        return Decimal(matched) / Decimal(total) if total else None


@dataclass(frozen=True)
class Condition:
    kind: str
    dimension: str              # currency, source, "" ...
    priority: str
    message: str
    detail: dict[str, Any]

    def dedupe_key(self, tenant_id: str, business_date: date) -> str:
        return f"{key_prefix(self.kind, tenant_id, business_date)}{self.dimension}"


def key_prefix(kind: str, tenant_id: str, business_date: date) -> str:
    """The dedupe keys of a kind of condition: per business date for the day's conditions, per tenant else."""
    return f"{kind}:{tenant_id}:{business_date}:" if kind in DAY_SCOPED else f"{kind}:{tenant_id}:"


def _points(rate: Decimal) -> str:
    return f"{(rate * 100).quantize(Decimal('0.01'))} %"


def evaluate(figures: Figures, thresholds: Thresholds, calendar: BusinessCalendar) -> list[Condition]:
    """The conditions that hold for the run of ``figures.business_date``."""
    day, p = figures.business_date, thresholds.priorities
    found: list[Condition] = []
    for ccy, (dr, cr) in sorted(figures.ledger.items()):
        if dr != cr:
            found.append(Condition("ledger_unbalanced", ccy, p["ledger_unbalanced"],
                                   f"the journals of {day} do not balance in {ccy}: debits {format_minor(dr, ccy)}, "
                                   f"credits {format_minor(cr, ccy)}",
                                   {"currency": ccy, "debit_minor": dr, "credit_minor": cr}))
    if calendar.is_business_day(day):
        for source in thresholds.expected_sources:
            if not figures.files_parsed.get(source):
                found.append(Condition("source_missing", source, p["source_missing"],
                                       f"no {source} file was received and parsed for {day}",
                                       {"source": source, "business_date": day.isoformat()}))
    rate = figures.match_rate(day)
    if rate is not None and thresholds.match_rate_minimum is not None and rate < thresholds.match_rate_minimum:
        found.append(Condition("match_rate_low", "", p["match_rate_low"],
                               f"book match rate {_points(rate)} on {day}, below the minimum of "
                               f"{_points(thresholds.match_rate_minimum)}",
                               {"match_rate": str(rate.quantize(Decimal('0.000001'))),
                                "minimum": str(thresholds.match_rate_minimum)}))
    earlier = [r for d, r in ((d, figures.match_rate(d)) for d in sorted(figures.book) if d < day) if r is not None]
    if rate is not None and thresholds.match_rate_max_drop_points is not None and earlier:
        median = statistics.median(earlier)
        drop = (median - rate) * 100
        if drop > thresholds.match_rate_max_drop_points:
            found.append(Condition("match_rate_drop", "", p["match_rate_drop"],
                                   f"book match rate {_points(rate)} on {day}, {drop.quantize(Decimal('0.01'))} points "
                                   f"below the median {_points(median)} of the {len(earlier)} run(s) of the "
                                   f"{TRAILING_DAYS} days before",
                                   {"match_rate": str(rate.quantize(Decimal('0.000001'))),
                                    "trailing_median": str(median.quantize(Decimal('0.000001'))),
                                    "runs": len(earlier), "max_drop_points": str(thresholds.match_rate_max_drop_points)}))
    total_open = sum(figures.open_count.values())
    if thresholds.open_exceptions_max is not None and total_open > thresholds.open_exceptions_max:
        found.append(Condition("open_exceptions", "", p["open_exceptions"],
                               f"{total_open} open exceptions on {day}, more than {thresholds.open_exceptions_max}",
                               {"open": total_open, "by_currency": dict(sorted(figures.open_count.items())),
                                "maximum": thresholds.open_exceptions_max}))
    for ccy, amount in sorted(figures.open_amount.items()):
        limit = thresholds.unreconciled_max.get(ccy, thresholds.unreconciled_max.get("*"))
        if limit is not None and amount > to_minor(limit, ccy):
            found.append(Condition("unreconciled_amount", ccy, p["unreconciled_amount"],
                                   f"{format_minor(amount, ccy)} {ccy} unreconciled in {figures.open_count.get(ccy, 0)} "
                                   f"open exceptions on {day}, more than {format_minor(to_minor(limit, ccy), ccy)} {ccy}",
                                   {"currency": ccy, "amount_minor": amount, "maximum_minor": to_minor(limit, ccy),
                                    "open": figures.open_count.get(ccy, 0)}))
    overdue = sum(figures.overdue.values())
    if thresholds.sla_breaches_max is not None and overdue > thresholds.sla_breaches_max:
        found.append(Condition("sla_breached", "", p["sla_breached"],
                               f"{overdue} open exceptions past their SLA on {day} "
                               f"({', '.join(f'{k} {v}' for k, v in sorted(figures.overdue.items()))})",
                               {"overdue": overdue, "by_reason": dict(sorted(figures.overdue.items())),
                                "maximum": thresholds.sla_breaches_max}))
    return found


def check(settings, tenant_id: str, business_date: date) -> dict:
    """Raise the alerts of the conditions that hold for the tenant's run of ``business_date`` and resolve those
    that cleared (and the run's own failed-task alerts of that date). Reads the recorded configuration."""
    from jobs.alerts.callbacks import resolve_run_failures
    from jobs.alerts.record import raise_alert, resolve_alerts
    from jobs.exception_queue import sla_days
    from jobs.store.db import connect, sql

    with connect(settings, tenant_id) as conn:
        row = conn.execute("SELECT config FROM tenant WHERE tenant_id = %s", (tenant_id,)).fetchone()
        if row is None:
            raise ConfigurationError(f"tenant {tenant_id!r} has no recorded configuration: run its stages first")
        config = row["config"]
        thresholds = Thresholds.from_config(tenant_id, config.get("alerts"))
        tenant = TenantConfig(config)                 # the recorded configuration's calendar, as the runs read it
        calendar = BusinessCalendar(tenant.weekend, tenant.holidays)
        rows = conn.execute(sql("alert_figures"), {"tenant_id": tenant_id, "business_date": business_date,
                                                   "sla": json.dumps(sla_days(conn, tenant_id))}).fetchall()
        conditions = evaluate(Figures.from_rows(business_date, rows), thresholds, calendar)
        latest = conn.execute("SELECT max(business_date) AS d FROM recon_run WHERE tenant_id = %s",
                              (tenant_id,)).fetchone()["d"]
        # a replayed earlier day speaks only for itself: the tenant-wide conditions are the latest run's
        kinds = [k for k in DEFAULT_PRIORITIES if k in DAY_SCOPED or latest is None or business_date >= latest]
        conditions = [c for c in conditions if c.kind in kinds]
        raised = []
        for c in conditions:
            alert = raise_alert(conn, tenant_id, c.kind, f"{tenant_id}: {c.message}",
                                c.dedupe_key(tenant_id, business_date), c.priority, c.detail,
                                business_date=business_date)
            if alert is not None:
                raised.append(alert.dedupe_key)
        holding = {c.dedupe_key(tenant_id, business_date) for c in conditions}
        resolved = []
        for kind in kinds:
            resolved += [a.dedupe_key for a in resolve_alerts(conn, tenant_id, kind,
                                                              key_prefix(kind, tenant_id, business_date),
                                                              resolved_by=f"check of {business_date}",
                                                              keep=holding)]
        resolved += [a.dedupe_key for a in resolve_run_failures(conn, tenant_id, business_date)]
    return {"conditions": sorted(holding), "raised": raised, "resolved": resolved}
