"""The Reconciliation page's main flow in headless Chromium against a real Airflow API server signing people in
through SSO: the FAB auth manager configured by ``infra/airflow/webserver_config.py`` against an OpenID Connect
provider on 127.0.0.1 (``oidc-provider-mock``), the ``Reconciliation`` role created by
``infra/airflow/reconciliation_role.py`` and given by an identity-provider group. A person outside that group signs
in and is refused by the auth manager; olga signs in, filters the queue, assigns in bulk, writes a note and
proposes a write-off; bob signs in and approves it; bob leaves the group at the provider and is refused at his
next sign-in. Debian's ``chromium`` driven by Playwright (never a downloaded
browser); a screenshot of every step is kept in ``.local/test-artifacts/recon-ui/``."""
import json
import secrets
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from airflow_cli import REPO, airflow_env

pytestmark = [pytest.mark.postgres, pytest.mark.e2e]
ARTIFACTS = REPO / ".local" / "test-artifacts" / "recon-ui"
PEOPLE = {  # the identity provider's users: subject -> claims (groups decide the Airflow roles)
    "olga-7f3a": {"preferred_username": "olga", "email": "olga@example.com", "groups": ["finance-recon"]},
    "bob-91c2": {"preferred_username": "bob", "email": "bob@example.com", "groups": ["finance-recon"]},
    "eve-0d44": {"preferred_username": "eve", "email": "eve@example.com", "groups": ["marketing"]},
}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def identity_provider():
    """An OpenID Connect provider on 127.0.0.1 that knows PEOPLE."""
    import oidc_provider_mock
    import werkzeug.serving

    server = werkzeug.serving.make_server("127.0.0.1", 0, oidc_provider_mock.app(), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_port}"
    for subject, claims in PEOPLE.items():
        _set_claims(url, subject, claims)
    yield url
    server.shutdown()


def _set_claims(provider: str, subject: str, claims: dict) -> None:
    """What the identity provider says of ``subject`` from its next sign-in on."""
    request = urllib.request.Request(f"{provider}/users/{subject}", data=json.dumps(claims).encode(), method="PUT",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 204


def _wait(url: str, proc, log: Path, seconds: float = 180) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError("the API server did not start: " + log.read_text()[-3000:]) from None
            time.sleep(0.5)


@pytest.fixture
def api_server(tmp_path, settings, identity_provider):
    """``airflow api-server`` on 127.0.0.1 with this repository's plugin and the production sign-in: the FAB auth
    manager and SSO through the identity provider (group finance-recon -> Viewer + Reconciliation), its metadata
    database migrated and the Reconciliation role created as a deployment does it."""
    home = tmp_path / "airflow"
    home.mkdir()
    env = airflow_env(home, **{
        "AIRFLOW__CORE__AUTH_MANAGER": "airflow.providers.fab.auth_manager.fab_auth_manager.FabAuthManager",
        "AIRFLOW__FAB__CONFIG_FILE": str(REPO / "infra" / "airflow" / "webserver_config.py"),
        "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_hex(64),
        "AIRFLOW__FAB__CACHE_TTL": "1",                        # a signed-in user's roles are cached this long (30 s)
        "RECON_OIDC_ISSUER": identity_provider, "RECON_OIDC_CLIENT_ID": "airflow",
        "RECON_OIDC_CLIENT_SECRET": secrets.token_urlsafe(16),
        "RECON_SSO_GROUP_ROLES": json.dumps({"finance-recon": ["Viewer", "Reconciliation"]}),
        "RECON_DATABASE_URL": settings.database_url, "RECON_TENANT_CONFIG_DIR": str(settings.tenant_config_dir),
        "NO_PROXY": "127.0.0.1", "no_proxy": "127.0.0.1"})
    env.pop("RECON_DATABASE_ADMIN_URL", None)                  # the page runs as the application role only
    airflow = str(Path(sys.executable).with_name("airflow"))
    subprocess.run([airflow, "db", "migrate"], env=env, check=True, capture_output=True)
    made = subprocess.run([sys.executable, str(REPO / "infra" / "airflow" / "reconciliation_role.py")], env=env,
                          check=True, capture_output=True, text=True)
    assert "Reconciliation: can_create on Reconciliation" in made.stdout
    env["AIRFLOW__FAB__UPDATE_FAB_PERMS"] = "False"            # roles are in place: no resync at every start
    port = _free_port()
    log_path = home / "api-server.log"
    log = log_path.open("w")
    proc = subprocess.Popen([airflow, "api-server", "-H", "127.0.0.1", "-p", str(port), "-w", "1"], env=env,
                            stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait(f"{url}/api/v2/monitor/health", proc, log_path)
        yield url
    finally:
        proc.terminate()
        proc.wait(30)
        log.close()


def _seed(settings, tenant):
    """Twelve open exceptions of the tenant (DUPLICATE and MISSING_IN_PSP alternating, 0-11 days old at the run of
    2026-11-30); olga operator, bob approver."""
    from jobs import corrections
    from jobs.pipeline import prepare
    from jobs.store.db import connect

    prepare(settings, tenant)
    with connect(settings, tenant) as conn:
        conn.execute("INSERT INTO recon_run (tenant_id, business_date, run_id, status, summary) VALUES "
                     "(%s, '2026-11-30', 'r', 'succeeded', '{}')", (tenant,))
        for i in range(12):
            conn.execute("INSERT INTO exception_item (tenant_id, event_id, relation, reason_code, source, event_type, "
                         "amount_minor, currency, file_name, record_ordinal, first_seen_date, last_seen_date) VALUES "
                         "(%s, %s, 'book_psp', %s, 'book', 'payment', %s, 'EUR', 'orders.csv', %s, "
                         "date '2026-11-30' - %s, '2026-11-30')",
                         (tenant, f"e{i:02d}", "DUPLICATE" if i % 2 else "MISSING_IN_PSP", 1500 + i, i + 1, i))
    corrections.grant(settings, tenant, "root", "admin", "root")
    corrections.grant(settings, tenant, "olga", "operator", "root")
    corrections.grant(settings, tenant, "bob", "approver", "root")


def _sign_in(browser, url: str, subject: str, next_path: str):
    """A fresh browser opens ``next_path``, is sent to sign in, picks the organisation's provider and signs in there
    as ``subject``; it lands back on ``next_path``."""
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    errors = []
    page.on("console", lambda m: errors.append(f"{m.type}: {m.text}") if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(f"{url}{next_path}")
    assert "/auth/login/" in page.url                        # not signed in: the auth manager's sign-in page
    page.click("#btn-signin-oidc")
    page.get_by_placeholder("sub").fill(subject)             # the identity provider's own page
    page.get_by_role("button", name="Authorize").click()
    page.wait_for_url(lambda u: u.startswith(f"{url}/recon/"), timeout=30_000)
    errors.clear()                                           # only our pages' errors count from here on
    return page, errors


def _shot(page, name: str) -> Path:
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def test_sso_sign_in_filter_assign_propose_and_approve_as_a_second_user(api_server, identity_provider, settings,
                                                                        tenant_id):
    from playwright.sync_api import expect, sync_playwright

    chromium = shutil.which("chromium")
    assert chromium, "Debian's chromium is not installed: `make setup` installs it (make browser)"
    _seed(settings, tenant_id)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for old in ARTIFACTS.glob("*.png"):
        old.unlink()
    queue_path = f"/recon/?tenant={tenant_id}"
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, headless=True, args=["--no-sandbox"])
        try:
            outsider, _ = _sign_in(browser, api_server, "eve-0d44", queue_path)
            expect(outsider.get_by_role("alert")).to_have_text(
                "eve may not use the Reconciliation view (the auth manager grants it: resource 'Reconciliation')")
            _shot(outsider, "00-outsider-refused")

            page, errors = _sign_in(browser, api_server, "olga-7f3a", queue_path)
            expect(page.locator("#user")).to_have_text("olga")
            expect(page.locator("#queue tbody tr")).to_have_count(12)
            _shot(page, "01-queue")

            page.select_option("select[name=reason]", "DUPLICATE")
            page.select_option("select[name=age]", "3-7")
            page.click("#apply")
            rows = page.locator("#queue tbody tr")
            expect(rows).to_have_count(3)                                   # DUPLICATE aged 3, 5 and 7 days
            expect(page.locator("#queue tbody tr.overdue")).to_have_count(3)    # SLA of DUPLICATE: 2 days
            _shot(page, "02-filtered")

            keys = [rows.nth(i).get_attribute("data-key") for i in (0, 1)]
            for key in keys:
                page.check(f"#queue tr[data-key='{key}'] input[name=key]")
            page.select_option("#bulk select[name=assignee]", "olga")
            page.click("#bulk #assign")
            expect(page.get_by_role("status")).to_have_text("2 exception(s) assigned to olga")
            for key in keys:
                expect(page.locator(f"#queue tr[data-key='{key}'] td").nth(11)).to_have_text("olga")
            expect(page.locator("select[name=reason]")).to_have_value("DUPLICATE")    # back on the filtered page
            _shot(page, "03-assigned")

            page.locator(f"#queue tr[data-key='{keys[0]}'] a").click()
            page.fill("input[name=note]:below(legend:text('Note'))", "PSP delivered the order twice")
            page.click("#add-note")
            expect(page.get_by_role("status")).to_have_text("note added")
            page.fill("form:has(#propose-write-off) input[name=reason]", "duplicate delivery, nothing to collect")
            page.click("#propose-write-off")
            notice = page.get_by_role("status")
            expect(notice).to_contain_text("write-off proposed as correction #")
            correction_id = notice.inner_text().split("#")[1].split(":")[0]
            expect(page.locator("#history")).to_contain_text("exception_note")
            expect(page.locator("#corrections")).to_contain_text("pending")
            _shot(page, "04-write-off-proposed")
            assert errors == []

            approver, approver_errors = _sign_in(browser, api_server, "bob-91c2", f"/recon/corrections?tenant={tenant_id}")
            row = approver.locator(f"#pending tr[data-id='{correction_id}']")
            expect(row).to_contain_text("duplicate delivery, nothing to collect")
            expect(row).to_contain_text("olga")
            _shot(approver, "05-approval-pending")
            row.locator("button.approve").click()
            expect(approver.get_by_role("status")).to_have_text(f"correction #{correction_id} approved")
            expect(approver.locator(f"#pending tr[data-id='{correction_id}']")).to_have_count(0)
            _shot(approver, "06-approved")
            assert approver_errors == []

            page.reload()
            expect(page.locator("#status")).to_have_text("written_off")
            expect(page.locator("#history")).to_contain_text("bob")
            _shot(page, "07-written-off")
            assert errors == []

            # bob leaves the group at the identity provider: at his next sign-in the role is gone with it
            _set_claims(identity_provider, "bob-91c2", {**PEOPLE["bob-91c2"], "groups": ["marketing"]})
            moved, _ = _sign_in(browser, api_server, "bob-91c2", queue_path)
            expect(moved.get_by_role("alert")).to_have_text(
                "bob may not use the Reconciliation view (the auth manager grants it: resource 'Reconciliation')")
        finally:
            browser.close()
    shots = sorted(p.name for p in ARTIFACTS.glob("*.png"))
    assert len(shots) == 8 and all((ARTIFACTS / s).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for s in shots)
