"""Airflow plugin: a "Reconciliation" page in the Airflow UI navigation for operators.

Mounted into Airflow's API server at ``/recon`` (a FastAPI sub-application): the latest runs per
tenant and the open exceptions queue, read from the operational PostgreSQL, as an HTML page and as
JSON (``/recon/api/runs``, ``/recon/api/exceptions``). Only signed-in Airflow users can read it (the
same JWT cookie / bearer token as the Airflow UI and REST API; Airflow's auth manager says who the user is), and
each sees only the tenants they hold a role for (``tenant_member``, ``recon access grant``): Airflow does not
authorize a plugin's routes, so every route checks the role itself.

Four eyes on every correction (``jobs/corrections.py``, the one service the CLI goes through too): the pending
adjustments a maker proposed (``recon adjustment propose`` or ``POST /recon/api/adjustments``) with an Approve
button (``/recon/adjustments``), and every proposed correction (manual match / unmatch, adjustment, dispute
acceptance) through ``/recon/api/corrections`` (list, approve, reject with a reason). The approver is the
signed-in Airflow user, never a name typed in a form, other than the proposer, with a role for the tenant whose
limit covers the amount; every step is audited.
"""
# No `from __future__ import annotations`: pydantic resolves the request model from real annotations
# (Airflow loads plugins from files, not always as importable modules).

import html
from datetime import date

from airflow.plugins_manager import AirflowPlugin
from fastapi import Depends, FastAPI, Form, HTTPException, Query
from fastapi.responses import HTMLResponse, RedirectResponse
from pydantic import BaseModel

# Airflow's own authentication (the API server provides it): every route needs a signed-in user.
from airflow.api_fastapi.core_api.security import get_user, requires_authenticated

AUTH = [Depends(requires_authenticated())]

app = FastAPI(title="psp-recon", dependencies=AUTH)
PAGE_LIMIT = 500


def _query(name: str, user, **params) -> list[dict]:
    """Rows of the tenants the signed-in user holds a role for (``tenant_member``): one tenant's under row-level
    security as that tenant (403 without a role for it); with no tenant given, those of all the user's tenants
    through the read-only cross-tenant role."""
    from jobs.settings import load_settings
    from jobs.store.db import connect, connect_platform, sql

    settings, tenant = load_settings(), params.get("tenant_id")
    allowed = _tenants_of(settings, _user_name(user))
    if tenant and tenant not in allowed:
        raise HTTPException(403, f"{_user_name(user)} has no role for tenant {tenant}")
    with connect(settings, tenant) if tenant else connect_platform(settings) as conn:
        return conn.execute(sql(name), {**params, "tenant_ids": allowed}).fetchall()


def _tenants_of(settings, user: str) -> list[str]:
    from jobs.store.db import connect_platform

    with connect_platform(settings) as conn:
        return [r["tenant_id"] for r in conn.execute("SELECT DISTINCT tenant_id FROM tenant_member WHERE user_name = %s "
                                                     "ORDER BY 1", (user,)).fetchall()]


def _require_role(tenant: str, user) -> None:
    from jobs.settings import load_settings

    if tenant not in _tenants_of(load_settings(), _user_name(user)):
        raise HTTPException(403, f"{_user_name(user)} has no role for tenant {tenant}")


@app.get("/api/runs")
def runs(tenant: str | None = None, limit: int = Query(50, le=PAGE_LIMIT), user=Depends(get_user)) -> list[dict]:
    return _query("ui_runs", user, tenant_id=tenant, limit=limit)


@app.get("/api/exceptions")
def exceptions(tenant: str | None = None, reason: str | None = None,
               limit: int = Query(200, le=PAGE_LIMIT), user=Depends(get_user)) -> list[dict]:
    return _query("ui_exceptions", user, tenant_id=tenant, reason=reason, limit=limit)


def _user_name(user) -> str:
    name = user.get_name() if hasattr(user, "get_name") else None
    if not name:
        raise HTTPException(403, "the signed-in user has no name to record as approver")
    return name


class Proposal(BaseModel):
    tenant: str
    effective_date: date
    debit: str
    credit: str
    amount: str                      # major units as a decimal string, e.g. "12.34" (never a float)
    currency: str
    reason: str
    psp: str | None = None


@app.get("/api/adjustments")
def adjustments(tenant: str, pending: bool = True, user=Depends(get_user)) -> list[dict]:
    from jobs.ledger import adjustments as adj
    from jobs.settings import load_settings

    _require_role(tenant, user)
    rows = adj.list_adjustments(load_settings(), tenant)
    return [r for r in rows if not (pending and r["approved_by"])]


@app.post("/api/adjustments", status_code=201)
def propose(body: Proposal, user=Depends(get_user)) -> dict:
    from jobs.ledger import adjustments as adj
    from jobs.settings import load_settings

    _require_role(body.tenant, user)
    try:
        n = adj.propose(load_settings(), body.tenant, body.effective_date, body.debit, body.credit, body.amount,
                        body.currency, body.reason, _user_name(user), body.psp)
    except adj.AdjustmentError as exc:
        raise HTTPException(422, str(exc)) from None
    return {"adjustment_id": n, "proposed_by": _user_name(user)}


@app.post("/api/adjustments/{tenant}/{adjustment_id}/approve")
def approve(tenant: str, adjustment_id: int, user=Depends(get_user)) -> dict:
    from jobs.ledger import adjustments as adj
    from jobs.settings import load_settings

    name = _user_name(user)
    try:
        post = adj.approve(load_settings(), tenant, adjustment_id, name)
    except adj.AdjustmentError as exc:
        status = 404 if "no adjustment" in str(exc) else 409
        raise HTTPException(status, str(exc)) from None
    return {"adjustment_id": adjustment_id, "approved_by": name, "post_date": post.isoformat()}


class Decision(BaseModel):
    reason: str


@app.get("/api/corrections")
def corrections_list(tenant: str, status: str | None = "pending", user=Depends(get_user)) -> list[dict]:
    """Proposed corrections (manual match / unmatch, adjustment, dispute acceptance) of a tenant."""
    from jobs import corrections
    from jobs.settings import load_settings

    _require_role(tenant, user)
    return corrections.list_corrections(load_settings(), tenant, status or None)


@app.post("/api/corrections/{tenant}/{correction_id}/approve")
def correction_approve(tenant: str, correction_id: int, user=Depends(get_user)) -> dict:
    """Approve as the signed-in user: the rules of ``jobs.corrections`` (not the proposer, a role whose limit covers
    the amount, pending and not expired), the same as the CLI's."""
    from jobs import corrections
    from jobs.settings import load_settings

    name = _user_name(user)
    try:
        result = corrections.approve(load_settings(), tenant, correction_id, name)
    except corrections.CorrectionError as exc:
        raise HTTPException(404 if "no correction" in str(exc) else 409, str(exc)) from None
    return {"correction_id": correction_id, "approved_by": name, **{k: str(v) for k, v in result.items()}}


@app.post("/api/corrections/{tenant}/{correction_id}/reject")
def correction_reject(tenant: str, correction_id: int, body: Decision, user=Depends(get_user)) -> dict:
    from jobs import corrections
    from jobs.settings import load_settings

    name = _user_name(user)
    try:
        corrections.reject(load_settings(), tenant, correction_id, name, body.reason)
    except corrections.CorrectionError as exc:
        raise HTTPException(404 if "no correction" in str(exc) else 409, str(exc)) from None
    return {"correction_id": correction_id, "rejected_by": name}


@app.post("/adjustments/{tenant}/{adjustment_id}/approve")
def approve_form(tenant: str, adjustment_id: int, confirm: str = Form(...), user=Depends(get_user)):
    """The page's Approve button (a form post; Airflow's session cookie is SameSite, so other sites
    cannot post it for the user)."""
    if confirm != str(adjustment_id):
        raise HTTPException(400, "confirmation does not name this adjustment")
    approve(tenant, adjustment_id, user)
    return RedirectResponse(f"../../../adjustments?tenant={tenant}", status_code=303)


@app.get("/adjustments", response_class=HTMLResponse)
def adjustments_page(tenant: str, user=Depends(get_user)) -> str:
    rows = adjustments(tenant, pending=True, user=user)
    body = "".join(
        f"<tr><td>#{r['adjustment_id']}</td><td>{html.escape(r['debit_key'])}</td><td>{html.escape(r['credit_key'])}"
        f"</td><td>{r['amount_minor']}</td><td>{html.escape(r['currency'])}</td><td>{html.escape(r['reason'])}</td>"
        f"<td>{html.escape(r['proposed_by'])}</td><td><form method='post' action='adjustments/{html.escape(tenant)}/"
        f"{r['adjustment_id']}/approve'><input type='hidden' name='confirm' value='{r['adjustment_id']}'>"
        "<button>Approve</button></form></td></tr>" for r in rows)
    return (f"<html><head><title>Adjustments</title><style>{STYLE}</style></head><body>"
            f"<h2>Adjustments waiting for approval ({html.escape(tenant)})</h2><p>You approve as the signed-in "
            "user; the proposer cannot approve their own adjustment.</p><table><thead><tr><th>id</th><th>debit</th>"
            "<th>credit</th><th>amount (minor units)</th><th>currency</th><th>reason</th><th>proposed by</th><th></th>"
            f"</tr></thead><tbody>{body or '<tr><td>none</td></tr>'}</tbody></table></body></html>")


STYLE = ("body{font-family:sans-serif;margin:1.5em}table{border-collapse:collapse;margin-bottom:2em}"
         "td,th{border:1px solid #ccc;padding:3px 8px;font-size:13px;text-align:left}")


def _table(rows: list[dict], columns: list[str]) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{html.escape('' if r[c] is None else str(r[c]))}</td>" for c in columns)
                   + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body or '<tr><td>none</td></tr>'}</tbody></table>"


@app.get("/", response_class=HTMLResponse)
def page(tenant: str | None = None, reason: str | None = None, user=Depends(get_user)) -> str:
    run_rows = runs(tenant, 30, user)
    exc_rows = exceptions(tenant, reason, 200, user)
    return (f"<html><head><title>Reconciliation</title><style>{STYLE}</style></head><body>"
            "<h2>Latest runs</h2>" + _table(run_rows, ["tenant_id", "business_date", "status", "book_match_rate",
                                                      "ledger_balanced", "exceptions", "run_id", "failed_stage", "error"])
            + "<h2>Open exceptions</h2><p>Filter with <code>?tenant=</code> and <code>?reason=</code>; "
              "JSON at <code>api/exceptions</code>.</p>"
            + _table(exc_rows, ["tenant_id", "reason_code", "source", "event_type", "amount_minor", "currency",
                                "file_name", "record_ordinal", "first_seen_date", "workflow_status", "reason_detail"])
            + "<p>Ledger adjustments waiting for a second person: <code>adjustments?tenant=</code>.</p></body></html>")


class ReconUIPlugin(AirflowPlugin):
    name = "psp_recon"
    fastapi_apps = [{"app": app, "url_prefix": "/recon", "name": "psp-recon"}]
    external_views = [{"name": "Reconciliation", "href": "/recon/", "destination": "nav", "category": "browse",
                       "url_route": "recon"}]
