"""The daily reconciliation report: one HTML page per tenant and business date, self-contained (the charts' library
is inside the page: it opens without a network), written to ``<lake>/reports/tenant=T/business_date=D/
reconciliation.html`` by the ``report`` task of ``reconcile_daily`` (or ``recon report``), and shown from the
Reconciliation page's run list.

What it shows, all as of the business date (PostgreSQL only: what ``publish`` recorded, ``sql/queries/
report_daily.sql``): the headline figures (records per source, matches per relation and level, the book match
rate, open exceptions, whether the ledger balanced), the book match rate of the 30 days up to the date, open
exceptions by reason and age, the unreconciled amount per currency, fees charged against the rate card per PSP,
payouts in transit per PSP account, and disputes by state. Charts are Plotly figures (``plotly``), the page a Jinja
template (``jobs/templates/daily_report.html``).
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

from jobs import storage
from jobs.exception_queue import AGE_BUCKETS
from jobs.money import format_minor, from_minor
from jobs.settings import Settings

TEMPLATE = Path(__file__).parent / "templates" / "daily_report.html"


class ReportError(ValueError):
    """No report for that tenant and date; the message says why (one line)."""


@dataclass
class Figures:
    tenant_id: str
    business_date: date
    run: dict
    metrics: dict[str, dict[str, int]] = field(default_factory=lambda: defaultdict(dict))
    trend: dict[date, dict[str, int]] = field(default_factory=lambda: defaultdict(dict))
    open: dict[str, dict[str, int]] = field(default_factory=lambda: defaultdict(dict))     # reason -> bucket -> n
    unreconciled: dict[str, int] = field(default_factory=dict)                            # currency -> minor
    in_transit: dict[tuple[str, str], int] = field(default_factory=dict)                  # (account, ccy) -> minor

    def rate(self, day: date) -> Decimal | None:
        t = self.trend.get(day, {})
        return Decimal(t["matched"]) / Decimal(t["total"]) if t.get("total") else None


def load(settings: Settings, tenant_id: str, business_date: date) -> Figures:
    from jobs.store.db import connect, sql

    with connect(settings, tenant_id) as conn:
        run = conn.execute("SELECT r.run_id, r.status, r.summary, t.config -> 'ledger' -> 'accounts' ->> "
                           "'psp_in_transit' AS in_transit FROM recon_run r JOIN tenant t USING (tenant_id) "
                           "WHERE r.tenant_id = %s AND r.business_date = %s", (tenant_id, business_date)).fetchone()
        if run is None:
            raise ReportError(f"no run of {tenant_id} recorded for {business_date}")
        like = (run["in_transit"] or "{psp}").split("{psp}")[0].replace("%", r"\%").replace("_", r"\_") + "%"
        rows = conn.execute(sql("report_daily"), {"tenant_id": tenant_id, "business_date": business_date,
                                                  "in_transit_like": like}).fetchall()
    figures = Figures(tenant_id, business_date, dict(run))
    for r in rows:
        value, section = int(r["value"]), r["section"]
        if section == "metric":
            figures.metrics[r["k1"]][r["k2"]] = value
        elif section == "trend":
            figures.trend[r["day"]][r["k1"]] = value
        elif section == "open":
            figures.open[r["k1"]][r["k2"]] = value
        elif section == "unreconciled":
            figures.unreconciled[r["k1"]] = value
        else:
            figures.in_transit[(r["k1"], r["k2"])] = value
    return figures


def _major(minor: int, currency: str) -> Decimal:
    """A chart's value: the amount in major units, exact (Plotly writes it into the page as a JSON number)."""
    return from_minor(minor, currency)


def charts(f: Figures) -> dict[str, str]:
    """The page's charts as HTML fragments (no script library: the page includes it once)."""
    import plotly.graph_objects as go

    def html(fig, name: str) -> str:
        fig.update_layout(margin={"l": 50, "r": 20, "t": 40, "b": 40}, height=320, template="plotly_white")
        if not any(len(t.x or ()) for t in fig.data):                  # say so, rather than draw empty axes
            fig.update_layout(xaxis={"visible": False}, yaxis={"visible": False}, annotations=[{
                "text": "none on this day", "showarrow": False, "xref": "paper", "yref": "paper", "x": 0.5, "y": 0.5,
                "font": {"size": 16, "color": "#52606d"}}])
        return fig.to_html(include_plotlyjs=False, full_html=False, div_id=f"chart-{name}",
                           config={"displaylogo": False, "responsive": True})

    out = {}
    days = [f.business_date - timedelta(days=i) for i in range(29, -1, -1)]
    rates = [f.rate(d) for d in days]
    out["trend"] = html(go.Figure(go.Scatter(
        x=[d.isoformat() for d, r in zip(days, rates) if r is not None],
        y=[r * 100 for r in rates if r is not None], mode="lines+markers", name="book match rate %"),
        layout={"title": "Book match rate, last 30 days (%)", "yaxis": {"range": [0, 100]},
                "xaxis": {"type": "date", "range": [f"{days[0] - timedelta(days=1)} 12:00",
                                                    f"{days[-1]} 12:00"]}}), "trend")
    reasons = sorted(f.open, key=lambda k: -sum(f.open[k].values()))
    out["exceptions"] = html(go.Figure(
        [go.Bar(name=b, x=reasons, y=[f.open[r].get(b, 0) for r in reasons]) for b in AGE_BUCKETS],  # the queue's
        layout={"title": "Open exceptions by reason and age (days)", "barmode": "stack"}), "exceptions")
    ccys = sorted(f.unreconciled)
    out["unreconciled"] = html(go.Figure(go.Bar(
        x=ccys, y=[_major(f.unreconciled[c], c) for c in ccys],
        text=[format_minor(f.unreconciled[c], c) for c in ccys]),
        layout={"title": "Unreconciled amount by currency (open exceptions, absolute)"}), "unreconciled")
    fee_keys = sorted(set(f.metrics.get("fees_charged_minor", {})) | set(f.metrics.get("fees_unpriced_minor", {})))
    fee = lambda name, k: _major(f.metrics.get(name, {}).get(k, 0), k.split("|")[1])  # noqa: E731
    out["fees"] = html(go.Figure(
        [go.Bar(name=label, x=[k.replace("|", " ") for k in fee_keys], y=[fee(name, k) for k in fee_keys])
         for name, label in (("fees_charged_minor", "charged"), ("fees_expected_minor", "expected (rate card)"),
                             ("fees_unpriced_minor", "charged, no rate card rule"))],
        layout={"title": "Fees charged vs expected, per PSP", "barmode": "group"}), "fees")
    transit = sorted(f.in_transit)
    out["in_transit"] = html(go.Figure(go.Bar(
        x=[f"{a} ({c})" for a, c in transit], y=[_major(f.in_transit[k], k[1]) for k in transit]),
        layout={"title": "Payouts in transit (balance)"}), "in_transit")
    states = sorted(f.metrics.get("disputes", {}))
    out["disputes"] = html(go.Figure(go.Bar(x=states, y=[f.metrics["disputes"][s] for s in states]),
                                     layout={"title": "Disputes by state"}), "disputes")
    return out


def render(f: Figures) -> str:
    from jinja2 import Environment, select_autoescape
    from plotly.offline import get_plotlyjs

    m, summary = f.metrics, f.run.get("summary") or {}
    rate = f.rate(f.business_date)
    headline = {
        "run": f"{f.run['run_id']} ({f.run['status']})",
        "book match rate": f"{(rate * 100).quantize(Decimal('0.01'))} %" if rate is not None else "n/a",
        "records loaded": sum(m.get("records_loaded", {}).values()),
        "records quarantined": sum(m.get("records_quarantined", {}).values()),
        "records matched by this run": sum(m.get("matched_records", {}).values()),
        "open exceptions": sum(sum(b.values()) for b in f.open.values()),
        "ledger": "balanced" if summary.get("ledger_balanced") else "NOT BALANCED",
    }
    tables = {
        "Records loaded by source": sorted(m.get("records_loaded", {}).items()),
        "Matched records by relation and level": sorted(m.get("matched_records", {}).items()),
        "Unreconciled by currency": [(c, format_minor(v, c)) for c, v in sorted(f.unreconciled.items())],
        "Payouts in transit": [(f"{a} ({c})", format_minor(v, c)) for (a, c), v in sorted(f.in_transit.items())],
    }
    env = Environment(autoescape=select_autoescape(["html"]))
    return env.from_string(TEMPLATE.read_text()).render(
        tenant=f.tenant_id, day=f.business_date.isoformat(), headline=headline, tables=tables, charts=charts(f),
        plotlyjs=get_plotlyjs())


def report_uri(settings: Settings, tenant_id: str, business_date: date) -> str:
    return storage.join(settings.lake, "reports", f"tenant={tenant_id}", f"business_date={business_date}",
                        "reconciliation.html")


def write(settings: Settings, tenant_id: str, business_date: date) -> dict:
    """Render the report and put it in the lake's reports folder (replacing the date's, as a rerun does)."""
    html = render(load(settings, tenant_id, business_date)).encode("utf-8")
    uri = report_uri(settings, tenant_id, business_date)
    storage.put_bytes(settings, html, uri)
    return {"report": uri, "bytes": len(html)}
