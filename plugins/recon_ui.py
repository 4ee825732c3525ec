"""Airflow plugin: a "Reconciliation" page in the Airflow UI navigation for operators.

Mounted into Airflow's API server at ``/recon`` (a FastAPI sub-application): the latest runs per
tenant and the open exceptions queue, read from the operational PostgreSQL, as an HTML page and as
JSON (``/recon/api/runs``, ``/recon/api/exceptions``). Only signed-in Airflow users can read it (the
same JWT cookie / bearer token as the Airflow UI and REST API; Airflow's auth manager says who the user is), and
each sees only the tenants they hold a role for (``tenant_member``, ``recon access grant``): Airflow does not
authorize a plugin's routes, so every route checks the role itself.

The exceptions queue is a workplace (``jobs/exception_queue.py``, the service the CLI ``recon queue`` uses too):
``/recon/?tenant=T`` filters by PSP, reason, age bucket, amount, currency, assignee and status, highlights what is
past its SLA, pages, downloads CSV and assigns in bulk; ``/recon/exception?tenant=T&key=K`` assigns, moves the
status, takes notes, shows the history (the audit trail) and proposes a write-off or a match; ``/recon/corrections``
lists the proposals with Approve / Reject buttons. The same as JSON under ``/recon/api/queue``.

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
from pathlib import Path
from urllib.parse import urlencode

from airflow.plugins_manager import AirflowPlugin
from fastapi import Depends, FastAPI, Form, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape
from pydantic import BaseModel

# Airflow's own authentication (the API server provides it): every route needs a signed-in user.
from airflow.api_fastapi.core_api.security import get_user

VIEW = "Reconciliation"             # the custom view's resource name in the auth manager (FAB: a role's permission)


def may_use_the_view(request: Request, user=Depends(get_user)) -> None:
    """The auth manager decides who may use the Reconciliation view at all (FAB / SSO: a role holding can_read, and
    can_create to act, on the resource "Reconciliation", e.g. mapped from the identity provider's groups; the simple
    auth manager: any signed-in role). Which tenants' data a user sees and what they may do there is the tenant
    roles' (``tenant_member``)."""
    from airflow.api_fastapi.app import get_auth_manager

    method = "GET" if request.method in ("GET", "HEAD") else "POST"
    if not get_auth_manager().is_authorized_custom_view(method=method, resource_name=VIEW, user=user):
        raise HTTPException(403, f"{_user_name(user)} may not {'use' if method == 'GET' else 'act in'} the "
                                 f"{VIEW} view (the auth manager grants it: resource {VIEW!r})")


app = FastAPI(title="psp-recon", dependencies=[Depends(may_use_the_view)])


@app.exception_handler(HTTPException)
async def _sign_in_first(request: Request, exc: HTTPException):
    """A browser that is not signed in goes to the auth manager's sign-in page (and back here after it), a refusal
    is a page with its one-line reason; API clients get the status as JSON."""
    from fastapi.exception_handlers import http_exception_handler

    browser = request.method == "GET" and "text/html" in request.headers.get("accept", "")
    if exc.status_code == 401 and browser:
        from airflow.api_fastapi.app import get_auth_manager

        return RedirectResponse(get_auth_manager().get_url_login(next_url=str(request.url)), status_code=303)
    if browser and exc.status_code in (403, 404, 422):
        page = TEMPLATES.get_template("error.html").render(root=_root(request), user=None, error=str(exc.detail),
                                                           notice=None, status=exc.status_code, tenant=None)
        return HTMLResponse(page, status_code=exc.status_code)
    return await http_exception_handler(request, exc)
PAGE_LIMIT = 500
TEMPLATES = Environment(loader=FileSystemLoader(Path(__file__).parent / "recon_templates"),
                        autoescape=select_autoescape(["html"]))


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


RUN_COLUMNS = ["tenant_id", "business_date", "status", "book_match_rate", "ledger_balanced", "exceptions", "run_id",
               "failed_stage", "error"]
EXCEPTION_COLUMNS = ["tenant_id", "reason_code", "source", "event_type", "amount_minor", "currency", "file_name",
                     "record_ordinal", "first_seen_date", "workflow_status", "reason_detail"]


def _root(request: Request) -> str:
    """Where the app is mounted (``/recon`` in Airflow's API server; empty in a bare test client)."""
    return request.scope.get("root_path", "").rstrip("/")


def _render(template: str, request: Request, user, **context) -> str:
    return TEMPLATES.get_template(template).render(root=_root(request), user=_user_name(user),
                                                   error=request.query_params.get("error"),
                                                   notice=request.query_params.get("notice"), **context)


class QueueQuery:
    """The queue's filters as query parameters, declared once for the page, its CSV download and the JSON API:
    ``filters`` for ``jobs.exception_queue``, ``params`` (the ones given) for the page's links."""

    def __init__(self, reason: str | None = None, source: str | None = None, age: str | None = None,
                 min_amount: str | None = None, max_amount: str | None = None, currency: str | None = None,
                 assignee: str | None = None, status: str | None = None, overdue: bool = False, page: int = 1,
                 page_size: int = 50):
        from jobs.exception_queue import Filters

        self.params = {k: v for k, v in {"source": source, "reason": reason, "age": age, "min_amount": min_amount,
                                         "max_amount": max_amount, "currency": currency, "assignee": assignee,
                                         "status": status, "overdue": "1" if overdue else None,
                                         "page_size": page_size}.items() if v not in (None, "")}
        self.filters = Filters(source=source or None, reason=reason or None, age_bucket=age or None,
                               min_amount=min_amount or None, max_amount=max_amount or None, currency=currency or None,
                               assignee=None if assignee in (None, "*") else assignee, status=status or "open",
                               overdue_only=overdue, page=page, page_size=page_size)


def _queue_error(exc) -> HTTPException:
    text = str(exc)
    status = 403 if " may not " in text else 404 if "no open exception" in text or "no exception" in text else 422
    return HTTPException(status, text)


@app.get("/", response_class=HTMLResponse)
def page(request: Request, tenant: str | None = None, query: QueueQuery = Depends(), user=Depends(get_user)) -> str:
    """Without a tenant: the latest runs and open exceptions of every tenant the user holds a role for. With one:
    that tenant's queue as a workplace."""
    from jobs import exception_queue as q
    from jobs.settings import load_settings

    if not tenant:
        return _render("overview.html", request, user, tenant=None, runs=runs(None, 30, user),
                       exceptions=exceptions(None, query.filters.reason, 200, user), run_columns=RUN_COLUMNS,
                       exception_columns=EXCEPTION_COLUMNS, tenants=_tenants_of(load_settings(), _user_name(user)))
    settings, name, f = load_settings(), _user_name(user), query.filters
    try:
        result = q.page(settings, tenant, name, f)
        options = q.choices(settings, tenant, name)
    except q.QueueError as exc:
        raise _queue_error(exc) from None
    params = {"tenant": tenant, **query.params}
    return _render("queue.html", request, user, tenant=tenant, result=result, f=f, query=urlencode(params),
                   back="/?" + urlencode({**params, "page": f.page}), runs=runs(tenant, 10, user),
                   run_columns=RUN_COLUMNS, buckets=list(q.AGE_BUCKETS), statuses=["open", "all", *q.STATUSES],
                   page_sizes=q.PAGE_SIZES, **options)


@app.get("/report", response_class=HTMLResponse)
def daily_report(tenant: str, business_date: date, user=Depends(get_user)) -> Response:
    """The run's HTML reconciliation report (``jobs.daily_report``), as the report task wrote it to the lake."""
    from jobs import storage
    from jobs.daily_report import report_uri
    from jobs.settings import load_settings

    _require_role(tenant, user)
    settings = load_settings()
    uri = report_uri(settings, tenant, business_date)
    if not storage.exists(settings, uri):
        raise HTTPException(404, f"no report of {tenant} for {business_date}: its run's report task has not written one")
    return Response(storage.read_bytes(settings, uri), media_type="text/html; charset=utf-8")


@app.get("/exceptions.csv")
def queue_csv(tenant: str, query: QueueQuery = Depends(), user=Depends(get_user)) -> Response:
    """Every row the filters select (not one page), as CSV."""
    from jobs import exception_queue as q
    from jobs.settings import load_settings

    try:
        result = q.page(load_settings(), tenant, _user_name(user), query.filters, every_row=True)
    except q.QueueError as exc:
        raise _queue_error(exc) from None
    name = f"exceptions_{tenant}_{result.as_of or 'none'}.csv"
    return Response(q.to_csv(result.rows), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})


@app.get("/exception", response_class=HTMLResponse)
def exception_page(request: Request, tenant: str, key: str, user=Depends(get_user)) -> str:
    from jobs import exception_queue as q
    from jobs.settings import load_settings

    settings, name = load_settings(), _user_name(user)
    try:
        row, trail = q.history(settings, tenant, key, name)
        options = q.choices(settings, tenant, name)
    except q.QueueError as exc:
        raise _queue_error(exc) from None
    return _render("exception.html", request, user, tenant=tenant, e=row, trail=trail, settable=q.SETTABLE,
                   back="/exception?" + urlencode({"tenant": tenant, "key": key}), members=options["members"])


def _back(request: Request, back: str, **message) -> RedirectResponse:
    """Back to the page the form was on (a path of this app only), with a notice or an error."""
    if not back.startswith("/") or back.startswith("//") or "\\" in back:
        back = "/"
    joiner = "&" if "?" in back else "?"
    return RedirectResponse(_root(request) + back + joiner + urlencode(message), status_code=303)


def _act(request: Request, back: str, action, success: str) -> RedirectResponse:
    """Run a queue action for a form post; its refusal is shown on the page it came from (one line)."""
    from jobs.corrections import CorrectionError
    from jobs.exception_queue import QueueError

    try:
        result = action()
    except (QueueError, CorrectionError) as exc:
        return _back(request, back, error=str(exc))
    return _back(request, back, notice=success.format(result=result))


@app.post("/queue/{tenant}/assign")
def assign_form(request: Request, tenant: str, key: list[str] = Form(default=[]), assignee: str = Form(""),
                back: str = Form("/"), user=Depends(get_user)):
    from jobs import exception_queue as q
    from jobs.settings import load_settings

    return _act(request, back, lambda: q.assign(load_settings(), tenant, key, assignee, _user_name(user)),
                "{result} exception(s) assigned to " + (assignee or "nobody"))


@app.post("/queue/{tenant}/status")
def status_form(request: Request, tenant: str, key: list[str] = Form(...), status: str = Form(...),
                note: str = Form(""), back: str = Form("/"), user=Depends(get_user)):
    from jobs import exception_queue as q
    from jobs.settings import load_settings

    return _act(request, back, lambda: q.set_status(load_settings(), tenant, key, status, _user_name(user), note),
                "{result} exception(s) now " + status)


@app.post("/queue/{tenant}/note")
def note_form(request: Request, tenant: str, key: str = Form(...), note: str = Form(...), back: str = Form("/"),
              user=Depends(get_user)):
    from jobs import exception_queue as q
    from jobs.settings import load_settings

    return _act(request, back, lambda: q.add_note(load_settings(), tenant, key, note, _user_name(user)), "note added")


@app.post("/queue/{tenant}/write-off")
def write_off_form(request: Request, tenant: str, key: str = Form(...), reason: str = Form(...),
                   back: str = Form("/"), user=Depends(get_user)):
    from jobs import exception_queue as q
    from jobs.settings import load_settings

    return _act(request, back, lambda: q.propose_write_off(load_settings(), tenant, key, reason, _user_name(user)),
                "write-off proposed as correction #{result.correction_id}: a second person approves it")


@app.post("/queue/{tenant}/match")
def match_form(request: Request, tenant: str, key: str = Form(...), with_records: str = Form(..., alias="with"),
               reason: str = Form(...), back: str = Form("/"), user=Depends(get_user)):
    """Propose matching this exception with other open exceptions named by their records (FILE#N)."""
    from jobs import exception_queue as q
    from jobs.settings import load_settings

    settings, name = load_settings(), _user_name(user)

    def propose():
        records = [r.strip() for r in with_records.split(",") if r.strip()]
        keys = [key, *q.keys_of_records(settings, tenant, name, records, q.parse_key(key)[0])]
        return q.propose_match(settings, tenant, keys, reason, name)
    return _act(request, back, propose, "match proposed as correction #{result.correction_id}: a second person "
                                        "approves it")


@app.get("/corrections", response_class=HTMLResponse)
def corrections_page(request: Request, tenant: str, user=Depends(get_user)) -> str:
    from jobs.money import format_minor

    rows = corrections_list(tenant, "pending", user)
    for r in rows:
        r["amount"] = format_minor(r["amount_minor"], r["currency"])
    return _render("corrections.html", request, user, tenant=tenant, rows=rows)


@app.post("/corrections/{tenant}/{correction_id}/approve")
def correction_approve_form(request: Request, tenant: str, correction_id: int, confirm: str = Form(...),
                            user=Depends(get_user)):
    from jobs import corrections
    from jobs.settings import load_settings

    if confirm != str(correction_id):
        raise HTTPException(400, "confirmation does not name this correction")
    back = "/corrections?" + urlencode({"tenant": tenant})
    return _act(request, back, lambda: corrections.approve(load_settings(), tenant, correction_id, _user_name(user)),
                f"correction #{correction_id} approved")


@app.post("/corrections/{tenant}/{correction_id}/reject")
def correction_reject_form(request: Request, tenant: str, correction_id: int, reason: str = Form(...),
                           user=Depends(get_user)):
    from jobs import corrections
    from jobs.settings import load_settings

    back = "/corrections?" + urlencode({"tenant": tenant})
    return _act(request, back, lambda: corrections.reject(load_settings(), tenant, correction_id, _user_name(user),
                                                          reason), f"correction #{correction_id} rejected")


# --- the queue as JSON ------------------------------------------------------------------------------------

class QueueChange(BaseModel):
    keys: list[str]
    assignee: str | None = None           # assign
    status: str | None = None             # status
    note: str | None = None               # status, note
    reason: str | None = None             # write-off, match


@app.get("/api/queue")
def queue_api(tenant: str, query: QueueQuery = Depends(), user=Depends(get_user)) -> dict:
    from jobs import exception_queue as q
    from jobs.settings import load_settings

    f = query.filters
    try:
        result = q.page(load_settings(), tenant, _user_name(user), f)
    except q.QueueError as exc:
        raise _queue_error(exc) from None
    return {"tenant": tenant, "as_of": result.as_of, "total": result.total, "page": f.page, "pages": result.pages,
            "rows": result.rows}


@app.post("/api/queue/{tenant}/{action}")
def queue_change_api(tenant: str, action: str, body: QueueChange, user=Depends(get_user)) -> dict:
    """assign | status | note | write-off | match, as the signed-in user (the service's rules)."""
    from jobs import exception_queue as q
    from jobs.corrections import CorrectionError
    from jobs.settings import load_settings

    settings, name = load_settings(), _user_name(user)
    try:
        if action == "assign":
            return {"changed": q.assign(settings, tenant, body.keys, body.assignee, name)}
        if action == "status":
            return {"changed": q.set_status(settings, tenant, body.keys, body.status or "", name, body.note)}
        if action == "note":
            for key in body.keys:
                q.add_note(settings, tenant, key, body.note or "", name)
            return {"noted": len(body.keys)}
        if action == "write-off" and len(body.keys) == 1:
            proposal = q.propose_write_off(settings, tenant, body.keys[0], body.reason or "", name)
        elif action == "match":
            proposal = q.propose_match(settings, tenant, body.keys, body.reason or "", name)
        else:
            raise HTTPException(404, "actions: assign, status, note, write-off (one key), match")
    except CorrectionError as exc:
        raise HTTPException(409, str(exc)) from None
    except q.QueueError as exc:
        raise _queue_error(exc) from None
    return {"correction_id": proposal.correction_id, "kind": proposal.kind, "proposed_by": name}


class ReconUIPlugin(AirflowPlugin):
    name = "psp_recon"
    fastapi_apps = [{"app": app, "url_prefix": "/recon", "name": "psp-recon"}]
    external_views = [{"name": "Reconciliation", "href": "/recon/", "destination": "nav", "category": "browse",
                       "url_route": "recon"}]
