"""The operator page plugin: registered with Airflow, refuses anonymous users, shows the queue."""
import importlib.util
from datetime import date
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

PLUGIN = Path(__file__).parents[2] / "plugins" / "recon_ui.py"


@pytest.fixture(scope="module")
def plugin():
    from airflow.api_fastapi.app import create_auth_manager

    create_auth_manager()                      # as the API server does (the configured one: the simple auth manager)
    spec = importlib.util.spec_from_file_location("recon_ui", PLUGIN)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_plugin_declares_the_app_and_the_nav_link(plugin):
    assert plugin.ReconUIPlugin.fastapi_apps[0]["url_prefix"] == "/recon"
    assert plugin.ReconUIPlugin.external_views[0]["href"] == "/recon/"


def test_anonymous_requests_are_refused(plugin):
    client = TestClient(plugin.app)
    assert client.get("/api/exceptions").status_code == 401
    assert client.get("/").status_code == 401
    browser = client.get("/?tenant=acme", headers={"accept": "text/html"}, follow_redirects=False)
    assert browser.status_code == 303                                  # a browser is sent to sign in, and back
    assert browser.headers["location"].endswith("/auth/login?next=http%3A%2F%2Ftestserver%2F%3Ftenant%3Dacme")


def test_the_auth_manager_decides_who_may_use_the_view(plugin):
    """A signed-in user the auth manager gives no access to the Reconciliation view is refused before any tenant
    role is looked at."""
    from airflow.api_fastapi.core_api.security import get_user

    plugin.app.dependency_overrides[get_user] = lambda: _User("nobody", role=None)
    try:
        refused = TestClient(plugin.app).get("/api/runs")
        assert refused.status_code == 403 and "may not use the Reconciliation view" in refused.json()["detail"]
        assert TestClient(plugin.app).post("/api/queue/acme/assign", json={"keys": []}).status_code == 403
    finally:
        plugin.app.dependency_overrides.clear()


@pytest.mark.postgres
def test_signed_in_user_sees_runs_and_open_exceptions(plugin, settings, tenant_id, monkeypatch):
    """A signed-in user sees the runs and exceptions of the tenants they hold a role for, and only those."""
    from airflow.api_fastapi.core_api.security import get_user

    from jobs import corrections
    from jobs.store.db import connect
    from jobs.tenants import load_tenant, record_tenant

    monkeypatch.setenv("RECON_DATABASE_URL", settings.database_url)
    with connect(settings, tenant_id) as conn:
        record_tenant(conn, load_tenant(settings, tenant_id))
        conn.execute("INSERT INTO recon_run (tenant_id, business_date, run_id, status, summary) VALUES "
                     "(%s, %s, 'r1', 'succeeded', '{\"book_match_rate\": 0.5, \"ledger_balanced\": true}')",
                     (tenant_id, date(2026, 11, 20)))
        conn.execute("INSERT INTO recon_run (tenant_id, business_date, run_id, status, summary) VALUES "
                     "(%s, %s, 'r2', 'failed', '{\"failed_stage\": \"parse\", \"error\": \"ValueError: no <b>lake</b>\"}')",
                     (tenant_id, date(2026, 11, 21)))
        conn.execute("INSERT INTO exception_item (tenant_id, event_id, relation, reason_code, source, event_type, "
                     "amount_minor, currency, file_name, record_ordinal, first_seen_date, last_seen_date) VALUES "
                     "(%s, 'e1', 'book_psp', 'MISSING_IN_PSP', 'book', 'payment', 1234, 'EUR', 'b.csv', 7, "
                     "'2026-11-20', '2026-11-20')", (tenant_id,))
    other = f"{tenant_id}o"                            # another tenant, with an exception olga must not see
    with connect(settings, other) as conn:
        conn.execute("INSERT INTO tenant (tenant_id, name, config, config_version, config_sha256) VALUES "
                     "(%s, 'other', '{}', 1, 'x')", (other,))
        conn.execute("INSERT INTO exception_item (tenant_id, event_id, relation, reason_code, source, event_type, "
                     "amount_minor, currency, file_name, record_ordinal, first_seen_date, last_seen_date) VALUES "
                     "(%s, 'e9', 'book_psp', 'DUPLICATE', 'book', 'payment', 1, 'EUR', 'x.csv', 1, "
                     "'2026-11-20', '2026-11-20')", (other,))
    corrections.grant(settings, tenant_id, "root", "admin", "root")
    corrections.grant(settings, tenant_id, "olga", "operator", "root")
    plugin.app.dependency_overrides[get_user] = lambda: _User("olga")
    try:
        client = TestClient(plugin.app)
        assert client.get("/api/exceptions", params={"tenant": other}).status_code == 403      # no role there
        assert {r["tenant_id"] for r in client.get("/api/exceptions").json()} == {tenant_id}  # all of hers
        assert client.get("/", params={"tenant": other}).status_code == 403
        plugin.app.dependency_overrides[get_user] = lambda: _User("mallory")                  # no role at all
        assert client.get("/api/runs").json() == [] and client.get("/api/exceptions").json() == []
        plugin.app.dependency_overrides[get_user] = lambda: _User("olga")
        rows = client.get("/api/exceptions", params={"tenant": tenant_id}).json()
        assert [(r["reason_code"], r["file_name"], r["record_ordinal"]) for r in rows] == [("MISSING_IN_PSP", "b.csv", 7)]
        runs = client.get("/api/runs", params={"tenant": tenant_id}).json()
        assert [(r["run_id"], r["status"], r["ledger_balanced"], r["failed_stage"]) for r in runs] == [
            ("r2", "failed", None, "parse"), ("r1", "succeeded", True, None)]
        page = client.get("/", params={"tenant": tenant_id}).text
        assert "MISSING_IN_PSP" in page and "b.csv" in page
        assert "<td>failed</td>" in page and "<td>parse</td><td>ValueError: no &lt;b&gt;lake&lt;/b&gt;</td>" in page
    finally:
        plugin.app.dependency_overrides.clear()


def _User(name: str, role: str | None = "user"):
    """A user the simple auth manager signed in (its role decides whether the Reconciliation view is open to it)."""
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser

    return SimpleAuthManagerUser(username=name, role=role)


@pytest.mark.postgres
def test_adjustments_are_approved_in_the_ui_by_a_second_signed_in_user(plugin, settings, tenant_id, monkeypatch):
    """Four eyes in the Airflow UI: alice proposes, alice cannot approve, bob approves (as the signed-in
    user, not a name in the request); the approval is audited and cannot happen twice."""
    from airflow.api_fastapi.core_api.security import get_user

    from jobs import corrections
    from jobs.store.db import connect
    from jobs.tenants import load_tenant, record_tenant

    monkeypatch.setenv("RECON_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("RECON_TENANT_CONFIG_DIR", str(settings.tenant_config_dir))
    with connect(settings, tenant_id) as conn:
        record_tenant(conn, load_tenant(settings, tenant_id))
    corrections.grant(settings, tenant_id, "root", "admin", "root")
    corrections.grant(settings, tenant_id, "alice", "operator", "root")
    client = TestClient(plugin.app)
    assert client.post(f"/api/adjustments/{tenant_id}/1/approve").status_code == 401
    try:
        plugin.app.dependency_overrides[get_user] = lambda: _User("alice")
        proposal = {"tenant": tenant_id, "effective_date": "2026-11-20", "debit": "suspense",
                    "credit": "chargeback_losses", "amount": "12.34", "currency": "EUR", "reason": "PSP confirmed"}
        assert client.post("/api/adjustments", json={**proposal, "amount": "12.345"}).status_code == 422
        created = client.post("/api/adjustments", json=proposal)
        assert created.status_code == 201 and created.json()["proposed_by"] == "alice"
        n = created.json()["adjustment_id"]
        [pending] = client.get("/api/adjustments", params={"tenant": tenant_id}).json()
        assert (pending["adjustment_id"], pending["amount_minor"], pending["approved_by"]) == (n, 1234, None)
        assert f"/{n}/approve" in client.get("/adjustments", params={"tenant": tenant_id}).text

        own = client.post(f"/api/adjustments/{tenant_id}/{n}/approve")
        assert own.status_code == 409 and "someone other than the proposer" in own.json()["detail"]

        plugin.app.dependency_overrides[get_user] = lambda: _User("bob")
        refused = client.post(f"/api/adjustments/{tenant_id}/{n}/approve")          # bob has no approving role yet
        assert refused.status_code == 409 and "bob may not approve corrections" in refused.json()["detail"]
        corrections.grant(settings, tenant_id, "bob", "approver", "root")
        assert client.post(f"/adjustments/{tenant_id}/{n}/approve", data={"confirm": "999"}).status_code == 400
        done = client.post(f"/adjustments/{tenant_id}/{n}/approve", data={"confirm": str(n)}, follow_redirects=False)
        assert done.status_code == 303
        assert client.get("/api/adjustments", params={"tenant": tenant_id}).json() == []
        assert client.post(f"/api/adjustments/{tenant_id}/{n}/approve").status_code == 409
        assert client.post(f"/api/adjustments/{tenant_id}/424242/approve").status_code == 404
    finally:
        plugin.app.dependency_overrides.clear()
    with connect(settings, tenant_id) as conn:
        audit = conn.execute("SELECT actor, action FROM audit_log WHERE tenant_id = %s AND object_type = "
                             "'ledger_adjustment' ORDER BY audit_id", (tenant_id,)).fetchall()
    assert [(a["actor"], a["action"]) for a in audit] == [("alice", "adjustment_propose"), ("bob", "adjustment_approve")]


def _seed_queue(settings, tenant_id, n=30):
    """n open exceptions (reasons alternating), first seen 0..n-1 days before the run of 2026-11-30."""
    from jobs import corrections
    from jobs.pipeline import prepare
    from jobs.store.db import connect

    prepare(settings, tenant_id)
    with connect(settings, tenant_id) as conn:
        conn.execute("INSERT INTO recon_run (tenant_id, business_date, run_id, status, summary) VALUES "
                     "(%s, '2026-11-30', 'r', 'succeeded', '{}')", (tenant_id,))
        for i in range(n):
            conn.execute("INSERT INTO exception_item (tenant_id, event_id, relation, reason_code, source, event_type, "
                         "amount_minor, currency, file_name, record_ordinal, first_seen_date, last_seen_date) VALUES "
                         "(%s, %s, 'book_psp', %s, %s, 'payment', %s, 'EUR', 'b.csv', %s, "
                         "date '2026-11-30' - %s, '2026-11-30')",
                         (tenant_id, f"e{i:02d}", "DUPLICATE" if i % 2 else "MISSING_IN_PSP",
                          "book" if i % 3 else "stripe", 1000 + i, i, i))
    corrections.grant(settings, tenant_id, "root", "admin", "root")
    for user, role in (("bob", "approver"), ("olga", "operator"), ("oscar", "operator"), ("aud", "auditor")):
        corrections.grant(settings, tenant_id, user, role, "root")


@pytest.mark.postgres
def test_the_queue_is_worked_in_the_page_and_the_api(plugin, settings, tenant_id, monkeypatch):
    """Filter, page, assign in bulk, note, propose a write-off, approve it as a second user, CSV: through the app's
    routes as signed-in users; refusals come back as one line on the page they came from."""
    import csv
    import io
    from urllib.parse import parse_qs, urlparse

    from airflow.api_fastapi.core_api.security import get_user

    monkeypatch.setenv("RECON_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("RECON_TENANT_CONFIG_DIR", str(settings.tenant_config_dir))
    _seed_queue(settings, tenant_id)
    client = TestClient(plugin.app)
    as_user = lambda name: plugin.app.dependency_overrides.__setitem__(get_user, lambda: _User(name))  # noqa: E731
    try:
        as_user("olga")
        page = client.get("/", params={"tenant": tenant_id, "page_size": 25})
        assert page.status_code == 200 and page.text.count('<tr class="') == 25
        assert "30 exception(s) as of business date 2026-11-30; page 1 of 2" in page.text
        # SLA (acme.yaml): DUPLICATE 2 days, others 5: overdue first, highlighted
        first = page.text.index('data-key="')
        assert page.text[first - 40:first].count('class="overdue"') == 1
        second = client.get("/", params={"tenant": tenant_id, "page_size": 25, "page": 2})
        assert second.text.count('<tr class="') == 5
        dup = client.get("/", params={"tenant": tenant_id, "reason": "DUPLICATE", "age": "3-7"}).text
        assert dup.count('<tr class="') == 3                                   # ages 3, 5, 7

        keys = ["book_psp:e01", "book_psp:e03"]
        done = client.post(f"/queue/{tenant_id}/assign", data={"key": keys, "assignee": "oscar",
                                                                "back": f"/?tenant={tenant_id}"}, follow_redirects=False)
        assert done.status_code == 303
        assert parse_qs(urlparse(done.headers["location"]).query)["notice"] == ["2 exception(s) assigned to oscar"]
        mine = client.get("/api/queue", params={"tenant": tenant_id, "assignee": "oscar"}).json()
        assert sorted(r["key"] for r in mine["rows"]) == keys and mine["total"] == 2
        evil = client.post(f"/queue/{tenant_id}/note", data={"key": keys[0], "note": "called PSP", "back": "//evil.example"},
                           follow_redirects=False)
        assert evil.headers["location"].startswith("/?")                       # only back into the app
        detail = client.get("/exception", params={"tenant": tenant_id, "key": keys[0]}).text
        assert "exception_assign" in detail and "called PSP" in detail and "oscar" in detail

        wo = client.post(f"/queue/{tenant_id}/write-off", data={"key": keys[0], "reason": "not worth chasing",
                                                                 "back": "/"}, follow_redirects=False)
        notice = parse_qs(urlparse(wo.headers["location"]).query)["notice"][0]
        correction_id = int(notice.split("#")[1].split(":")[0])
        own = client.post(f"/corrections/{tenant_id}/{correction_id}/approve", data={"confirm": str(correction_id)},
                          follow_redirects=False)
        assert "someone other than the proposer" in parse_qs(urlparse(own.headers["location"]).query)["error"][0]

        as_user("aud")
        refused = client.post(f"/queue/{tenant_id}/assign", data={"key": keys, "assignee": "aud", "back": "/"},
                              follow_redirects=False)
        assert "aud may not assign exceptions" in parse_qs(urlparse(refused.headers["location"]).query)["error"][0]
        assert client.post(f"/api/queue/{tenant_id}/assign", json={"keys": keys, "assignee": "olga"}).status_code == 403

        as_user("bob")
        pending = client.get("/corrections", params={"tenant": tenant_id}).text
        assert f'data-id="{correction_id}"' in pending and "not worth chasing" in pending
        ok = client.post(f"/corrections/{tenant_id}/{correction_id}/approve", data={"confirm": str(correction_id)},
                         follow_redirects=False)
        assert parse_qs(urlparse(ok.headers["location"]).query)["notice"] == [f"correction #{correction_id} approved"]
        written = client.get("/api/queue", params={"tenant": tenant_id, "status": "written_off"}).json()
        assert [r["key"] for r in written["rows"]] == [keys[0]]

        text = client.get("/exceptions.csv", params={"tenant": tenant_id, "status": "all"})
        assert text.headers["content-type"].startswith("text/csv")
        assert len(list(csv.DictReader(io.StringIO(text.text)))) == 30

        as_user("mallory")
        assert client.get("/", params={"tenant": tenant_id}).status_code == 403
        assert client.get("/exceptions.csv", params={"tenant": tenant_id}).status_code == 403
    finally:
        plugin.app.dependency_overrides.clear()


@pytest.mark.postgres
def test_the_runs_report_is_linked_and_served_to_the_tenants_people_only(plugin, settings, tenant_id, monkeypatch):
    from airflow.api_fastapi.core_api.security import get_user

    from jobs import corrections, storage
    from jobs.daily_report import report_uri
    from jobs.store.db import connect
    from jobs.tenants import load_tenant, record_tenant

    monkeypatch.setenv("RECON_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("RECON_LAKE", settings.lake)
    day = date(2026, 11, 20)
    with connect(settings, tenant_id) as conn:
        record_tenant(conn, load_tenant(settings, tenant_id))
        conn.execute("INSERT INTO recon_run (tenant_id, business_date, run_id, status) VALUES (%s, %s, 'r1', "
                     "'succeeded')", (tenant_id, day))
    corrections.grant(settings, tenant_id, "root", "admin", "root")
    corrections.grant(settings, tenant_id, "olga", "operator", "root")
    page = b"<html><body>the report of the day</body></html>"
    storage.put_bytes(settings, page, report_uri(settings, tenant_id, day))
    try:
        plugin.app.dependency_overrides[get_user] = lambda: _User("olga")
        client = TestClient(plugin.app)
        link = f"/report?tenant={tenant_id}&amp;business_date=2026-11-20"
        assert link in client.get("/").text and link in client.get("/", params={"tenant": tenant_id}).text
        shown = client.get("/report", params={"tenant": tenant_id, "business_date": "2026-11-20"})
        assert shown.status_code == 200 and shown.content == page and shown.headers["content-type"].startswith(
            "text/html")
        missing = client.get("/report", params={"tenant": tenant_id, "business_date": "2026-11-21"})
        assert missing.status_code == 404 and "has not written one" in missing.json()["detail"]
        plugin.app.dependency_overrides[get_user] = lambda: _User("mallory")                  # no role for it
        assert client.get("/report", params={"tenant": tenant_id, "business_date": "2026-11-20"}).status_code == 403
    finally:
        plugin.app.dependency_overrides.clear()
