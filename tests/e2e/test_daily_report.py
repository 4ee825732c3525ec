"""The daily reconciliation report of the slice's day: its figures agree with the lake and PostgreSQL read another
way, and the page renders in headless Chromium (Debian's chromium through Playwright) with every request outside the
page refused (it needs no network), every chart drawn with those figures, and no console error. A screenshot is kept
in ``.local/test-artifacts/daily-report/``."""
from __future__ import annotations

import shutil
from collections import defaultdict
from pathlib import Path

import pytest

from jobs import daily_report, lake, storage
from jobs.money import from_minor
from jobs.store.db import connect

pytestmark = [pytest.mark.spark, pytest.mark.postgres]
DAY = __import__("datetime").date(2026, 11, 20)
ARTIFACTS = Path(__file__).parents[2] / ".local" / "test-artifacts" / "daily-report"
CHARTS = ("trend", "exceptions", "unreconciled", "fees", "in_transit", "disputes")


def test_the_report_shows_the_day_and_renders_offline(spark, slice_day, tmp_path):
    from playwright.sync_api import sync_playwright

    settings, tenant = slice_day.settings, slice_day.tenant_id
    written = daily_report.write(settings, tenant, DAY)
    assert written["report"] == daily_report.report_uri(settings, tenant, DAY)
    page_file = tmp_path / "report.html"
    page_file.write_bytes(storage.read_bytes(settings, written["report"]))

    # what the page must show, computed another way: the lake's fee checks, the open exceptions' rows
    fees = defaultdict(lambda: [0, 0])
    for f in lake.read(spark, settings, "fee_checks", tenant).collect():
        if f.expected_minor is not None:
            fees[f"{f.psp or '?'} {f.currency}"][0] += f.charged_minor
            fees[f"{f.psp or '?'} {f.currency}"][1] += f.expected_minor
    with connect(settings, tenant) as conn:
        rows = conn.execute("SELECT reason_code, currency, amount_minor FROM exception_item WHERE tenant_id = %s "
                            "AND is_open", (tenant,)).fetchall()
    unreconciled, by_reason = defaultdict(int), defaultdict(int)
    for r in rows:
        unreconciled[r["currency"]] += abs(r["amount_minor"])
        by_reason[r["reason_code"]] += 1
    assert fees and unreconciled

    chromium = shutil.which("chromium")
    assert chromium, "Debian's chromium is not installed: `make setup` installs it (make browser)"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, headless=True, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            errors, outside = [], []
            page.on("console", lambda m: errors.append(f"{m.type}: {m.text}") if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))

            def only_the_page(route):
                if route.request.url.startswith("file://"):
                    return route.continue_()
                outside.append(route.request.url)
                return route.abort()
            page.route("**/*", only_the_page)
            page.goto(page_file.as_uri())
            for name in CHARTS:
                page.wait_for_selector(f"#chart-{name} .main-svg", timeout=30_000)
            data = page.evaluate("""names => Object.fromEntries(names.map(n => [n,
                document.getElementById('chart-' + n).data.map(t => ({name: t.name || '', x: Array.from(t.x || []),
                                                                      y: Array.from(t.y || [])}))]))""", list(CHARTS))
            headline = page.evaluate("""() => Object.fromEntries(Array.from(document.querySelectorAll(
                '#headline .figure')).map(f => [f.querySelector('.label').textContent,
                                                f.querySelector('.value').textContent.trim()]))""")
            page.screenshot(path=str(ARTIFACTS / "report.png"), full_page=True)
        finally:
            browser.close()
    assert errors == [] and outside == []
    assert headline["ledger"] == "balanced" and headline["run"] == "slice-day (succeeded)"
    assert int(headline["open exceptions"]) == len(rows)
    assert int(headline["records loaded"]) == lake.read(spark, settings, "events", tenant).count()

    (unrec,) = data["unreconciled"]
    assert dict(zip(unrec["x"], unrec["y"])) == {c: float(from_minor(v, c)) for c, v in unreconciled.items()}
    charged, expected, _ = data["fees"]
    assert (charged["name"], expected["name"]) == ("charged", "expected (rate card)")
    assert {k: [round(c * 100), round(e * 100)] for k, c, e in zip(charged["x"], charged["y"], expected["y"])} == \
        dict(fees)
    stacked = defaultdict(int)
    for trace in data["exceptions"]:
        for reason, n in zip(trace["x"], trace["y"]):
            stacked[reason] += n
    assert dict(stacked) == dict(by_reason)
    (trend,) = data["trend"]
    assert trend["x"] == [DAY.isoformat()] and 0 < trend["y"][0] <= 100
