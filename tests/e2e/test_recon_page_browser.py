"""The Reconciliation page's main flow in headless Chromium against a real Airflow API server: sign in through
Airflow's auth manager, filter the queue, assign in bulk, note and propose a write-off, then approve it as a second
signed-in user. Debian's ``chromium`` driven by Playwright (never a downloaded browser); screenshots of every step
are kept as test artifacts in ``.local/test-artifacts/recon-ui/``."""
import json
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from airflow_cli import REPO, airflow_env

pytestmark = [pytest.mark.postgres, pytest.mark.e2e]
ARTIFACTS = REPO / ".local" / "test-artifacts" / "recon-ui"
PASSWORDS = {"olga": secrets.token_urlsafe(12), "bob": secrets.token_urlsafe(12)}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def api_server(airflow_home, settings):
    """``airflow api-server`` on 127.0.0.1 with this repository's plugin, the simple auth manager (users olga and
    bob, passwords from a file) and the test's database and tenant configuration."""
    (airflow_home / "passwords.json").write_text(json.dumps(PASSWORDS))
    port = _free_port()
    env = airflow_env(airflow_home, **{
        "AIRFLOW__CORE__AUTH_MANAGER": "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "olga:user,bob:user",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(airflow_home / "passwords.json"),
        "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_hex(64),
        "RECON_DATABASE_URL": settings.database_url, "RECON_TENANT_CONFIG_DIR": str(settings.tenant_config_dir),
        "NO_PROXY": "127.0.0.1", "no_proxy": "127.0.0.1"})
    env.pop("RECON_DATABASE_ADMIN_URL", None)                  # the page runs as the application role only
    log = (airflow_home / "api-server.log").open("w")
    proc = subprocess.Popen([str(Path(sys.executable).with_name("airflow")), "api-server", "-H", "127.0.0.1", "-p",
                             str(port), "-w", "1"], env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"{url}/api/v2/monitor/health", timeout=2):
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError("the API server did not start: "
                                         + (airflow_home / "api-server.log").read_text()[-3000:]) from None
                time.sleep(0.5)
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


def _sign_in(browser, url: str, user: str, next_path: str):
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    errors = []
    page.on("console", lambda m: errors.append(f"{m.type}: {m.text}") if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(f"{url}/auth/login?next={next_path}")
    page.get_by_label("Username").fill(user)
    page.get_by_label("Password").fill(PASSWORDS[user])
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(lambda u: "/auth/" not in u, timeout=30_000)
    errors.clear()                                           # only our pages' errors count from here on
    return page, errors


def _shot(page, name: str) -> Path:
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def test_sign_in_filter_assign_propose_and_approve_as_a_second_user(api_server, settings, tenant_id):
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
            page, errors = _sign_in(browser, api_server, "olga", queue_path)
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

            approver, approver_errors = _sign_in(browser, api_server, "bob", f"/recon/corrections?tenant={tenant_id}")
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
        finally:
            browser.close()
    shots = sorted(p.name for p in ARTIFACTS.glob("*.png"))
    assert len(shots) == 7 and all((ARTIFACTS / s).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for s in shots)
