"""Airflow plugin: a "Reconciliation" page in the Airflow UI navigation for operators.

Mounted into Airflow's API server at ``/recon`` (a FastAPI sub-application): the latest runs per
tenant and the open exceptions queue, read from the operational PostgreSQL, as an HTML page and as
JSON (``/recon/api/runs``, ``/recon/api/exceptions``). Only signed-in Airflow users can read it (the
same JWT cookie / bearer token as the Airflow UI and REST API).
"""
from __future__ import annotations

import html

from airflow.plugins_manager import AirflowPlugin
from fastapi import Depends, FastAPI, Query
from fastapi.responses import HTMLResponse

try:  # Airflow's own authentication dependency (the API server provides it)
    from airflow.api_fastapi.core_api.security import requires_authenticated

    AUTH = [Depends(requires_authenticated())]
except ImportError:  # pragma: no cover - older Airflow
    AUTH = []

app = FastAPI(title="psp-recon", dependencies=AUTH)
PAGE_LIMIT = 500


def _query(name: str, **params) -> list[dict]:
    from jobs.settings import load_settings
    from jobs.store.db import connect, sql

    with connect(load_settings()) as conn:
        return conn.execute(sql(name), params).fetchall()


@app.get("/api/runs")
def runs(tenant: str | None = None, limit: int = Query(50, le=PAGE_LIMIT)) -> list[dict]:
    return _query("ui_runs", tenant_id=tenant, limit=limit)


@app.get("/api/exceptions")
def exceptions(tenant: str | None = None, reason: str | None = None,
               limit: int = Query(200, le=PAGE_LIMIT)) -> list[dict]:
    return _query("ui_exceptions", tenant_id=tenant, reason=reason, limit=limit)


def _table(rows: list[dict], columns: list[str]) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{html.escape('' if r[c] is None else str(r[c]))}</td>" for c in columns)
                   + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body or '<tr><td>none</td></tr>'}</tbody></table>"


@app.get("/", response_class=HTMLResponse)
def page(tenant: str | None = None, reason: str | None = None) -> str:
    run_rows = runs(tenant, 30)
    exc_rows = exceptions(tenant, reason, 200)
    style = ("body{font-family:sans-serif;margin:1.5em}table{border-collapse:collapse;margin-bottom:2em}"
             "td,th{border:1px solid #ccc;padding:3px 8px;font-size:13px;text-align:left}")
    return (f"<html><head><title>Reconciliation</title><style>{style}</style></head><body>"
            "<h2>Latest runs</h2>" + _table(run_rows, ["tenant_id", "business_date", "status", "book_match_rate",
                                                      "ledger_balanced", "exceptions", "run_id"])
            + "<h2>Open exceptions</h2><p>Filter with <code>?tenant=</code> and <code>?reason=</code>; "
              "JSON at <code>api/exceptions</code>.</p>"
            + _table(exc_rows, ["tenant_id", "reason_code", "source", "event_type", "amount_minor", "currency",
                                "file_name", "record_ordinal", "first_seen_date", "workflow_status", "reason_detail"])
            + "</body></html>")


class ReconUIPlugin(AirflowPlugin):
    name = "psp_recon"
    fastapi_apps = [{"app": app, "url_prefix": "/recon", "name": "psp-recon"}]
    external_views = [{"name": "Reconciliation", "href": "/recon/", "destination": "nav", "category": "browse",
                       "url_route": "recon"}]
