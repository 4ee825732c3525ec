"""A run's figures as StatsD metrics, sent by the worker after ``publish`` (the ``alerts`` task of
``reconcile_daily``, the last step of ``recon run``) when ``RECON_STATSD_HOST`` is set: a StatsD server, the
CloudWatch agent's StatsD listener or Prometheus' ``statsd_exporter`` takes them from there (dashboards:
``infra/grafana/psp-recon.json``, ``infra/terraform/dashboard.tf``).

Gauges, one per figure ``publish`` recorded for the run (``run_metric``), named
``<prefix>.<tenant>.<metric>[.<dimension>]`` with the dimension's separators as dots and anything else that StatsD
names cannot hold as ``_``:

  records_loaded.<source>, records_quarantined.<reason>, files_parsed.<format>,
  matched_records.<relation>.<level>, match_groups.<relation>.<level>, exceptions.<reason>, expected.<status>,
  book_records.total | matched, journals.<currency>, ledger_debit_minor.<currency>, ledger_credit_minor.<currency>,
  fee_checks.<status>, fees_charged_minor | fees_expected_minor | fees_unpriced_minor.<psp>.<currency>,
  disputes.<state>

and ``book_match_rate_ppm`` (parts per million of the book records in the lookback window). Per-account trial
balance figures are left out (one series per account and currency is the ERP's job, not a dashboard's). Stage
durations are Airflow's own task metrics (``[metrics] statsd_on``); a run in the worker's process (``local`` mode)
also sends ``<prefix>.<tenant>.stage.<stage>`` timings (``jobs.runner``).
"""
from __future__ import annotations

import re
from datetime import date

from jobs.settings import Settings

LEFT_OUT = ("trial_balance_debit_minor", "trial_balance_credit_minor")


def name(*parts: str) -> str:
    """A StatsD metric name from parts: dots between them, and within a part every character other than letters,
    digits, ``-`` and ``_`` as ``_`` (``book_psp/L1`` -> ``book_psp.L1``: a dimension's ``/`` and ``|`` separate)."""
    out = []
    for part in parts:
        out += [re.sub(r"[^A-Za-z0-9_-]", "_", p) for p in re.split(r"[/|]", str(part)) if p != ""]
    return ".".join(out)


def gauges(tenant_id: str, rows: list[dict]) -> dict[str, int]:
    """The run's gauges from its ``run_metric`` rows (metric, dimension, value)."""
    out: dict[str, int] = {}
    book: dict[str, int] = {}
    for r in rows:
        if r["metric"] in LEFT_OUT:
            continue
        if r["metric"] == "book_records":
            book[r["dimension"]] = int(r["value"])
        out[name(tenant_id, r["metric"], r["dimension"])] = int(r["value"])
    if book.get("total"):
        out[name(tenant_id, "book_match_rate_ppm")] = book.get("matched", 0) * 1_000_000 // book["total"]
    return out


def client(settings: Settings):
    """A StatsD client for ``settings`` (None when no StatsD host is configured)."""
    if not settings.statsd_host:
        return None
    from statsd import StatsClient

    return StatsClient(settings.statsd_host, settings.statsd_port, prefix=settings.statsd_prefix)


def export(settings: Settings, tenant_id: str, business_date: date) -> int:
    """Send the run's gauges; the number sent (0 when StatsD is not configured)."""
    statsd = client(settings)
    if statsd is None:
        return 0
    from jobs.store.db import connect

    with connect(settings, tenant_id) as conn:
        rows = conn.execute("SELECT metric, dimension, value FROM run_metric WHERE tenant_id = %s AND "
                            "business_date = %s ORDER BY metric, dimension", (tenant_id, business_date)).fetchall()
    sent = gauges(tenant_id, rows)
    with statsd.pipeline() as batch:
        for metric, value in sorted(sent.items()):
            batch.gauge(metric, value)
    return len(sent)


def stage_timing(settings: Settings, tenant_id: str, stage: str, milliseconds: float) -> None:
    statsd = client(settings)
    if statsd is not None:
        statsd.timing(name(tenant_id, "stage", stage), milliseconds)
