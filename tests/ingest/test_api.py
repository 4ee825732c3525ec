"""PSP list-API connector against an HTTP server imitating Stripe (pagination, 429s), through HttpHook."""
from __future__ import annotations

import json
from datetime import timedelta

import pytest

from jobs import storage
from jobs.ingest.errors import ConnectorAuthError
from jobs.ingest.tasks import run_connector
from jobs.ingest.window import RunWindow

pytestmark = pytest.mark.postgres
FAST_BACKOFF = {"backoff_seconds": 0.01, "max_backoff_seconds": 0.05}


def landed_lines(settings, db, tenant_id) -> list[str]:
    rows = db.execute("SELECT raw_uri FROM raw_file WHERE tenant_id = %s ORDER BY file_name", (tenant_id,)).fetchall()
    return [line for r in rows for line in storage.read_bytes(settings, r["raw_uri"]).decode().splitlines()]


def test_pages_rate_limits_and_overlapping_windows_land_every_object_once(
        settings, db, add_connector, psp_api, window, tenant_id):
    end = int(window.end.timestamp())
    # 23 objects in the first run's hour (3 pages of 10), 2 before it (outside the first window)
    first = psp_api.add_transactions(tenant_id, [end - 3600 + 60 * i for i in range(23)])
    psp_api.add_transactions(f"{tenant_id}old", [end - 7 * 3600, end - 6 * 3600])
    psp_api.rate_limit_every = 2                                          # every 2nd request: 429
    c = add_connector("stripe-api", "api", source="stripe", conn_id="recon_psp_api", page_size=10,
                      initial_lookback_hours=1, overlap_minutes=60, **FAST_BACKOFF)
    try:
        summary = run_connector(c.to_dict(), window, settings=settings)
        requests = [r for r in psp_api.requests if r["query"].get("created[lt]") == str(end)]
        assert summary["landed"] == 1 and summary["files_seen"] == 23
        assert len(requests) >= 5          # 3 pages + the 429s in between

        # next hour: 2 new objects and one that became visible late in the previous hour
        later = RunWindow(window.end, window.end + timedelta(hours=1), window.run_id + "_next")
        second = psp_api.add_transactions(f"{tenant_id}new", [end + 10, end + 20])
        late = psp_api.add_transactions(f"{tenant_id}late", [end - 30])
        summary2 = run_connector(c.to_dict(), later, settings=settings)
        assert summary2["landed"] == 1 and summary2["files_seen"] == 23 + 3   # overlap re-read the previous hour
        assert run_connector(c.to_dict(), later, settings=settings)["landed"] == 0          # a rerun: nothing new
    finally:
        psp_api.rate_limit_every = 0

    lines = landed_lines(settings, db, tenant_id)
    ids = [json.loads(line)["id"] for line in lines]
    assert sorted(ids) == sorted(o["id"] for o in first + second + late) and len(ids) == len(set(ids))
    # each line is the API's own object text, only the whitespace between tokens removed
    assert lines[0] == json.dumps(first[0], separators=(",", ":"))
    files = db.execute("SELECT file_name, source, format, remote_path FROM raw_file WHERE tenant_id = %s "
                       "ORDER BY file_name", (tenant_id,)).fetchall()
    assert [f["file_name"] for f in files] == ["stripe_balance_transactions_20261120T110000Z_001.jsonl",
                                               "stripe_balance_transactions_20261120T120000Z_001.jsonl"]
    assert {f["source"] for f in files} == {"stripe"}
    assert files[0]["remote_path"].startswith("/v1/balance_transactions?created[gte]=")


def test_a_rejected_api_key_fails_at_once(settings, add_connector, psp_api, window):
    c = add_connector("stripe-bad", "api", source="stripe", conn_id="recon_psp_api_wrong", **FAST_BACKOFF)
    with pytest.raises(ConnectorAuthError, match=r"answered 401 \(Invalid API Key provided: sk_bad\*\*\*\*\).*"
                                                 "'recon_psp_api_wrong'"):
        run_connector(c.to_dict(), window, settings=settings)


def test_persistent_rate_limiting_gives_up_with_a_clear_message(settings, add_connector, psp_api, window):
    from jobs.ingest.errors import ConnectorError

    c = add_connector("stripe-429", "api", source="stripe", conn_id="recon_psp_api", max_attempts=3, **FAST_BACKOFF)
    psp_api.rate_limit_every = 1
    try:
        with pytest.raises(ConnectorError, match=r"still failing after 3 attempts \(last: HTTP 429: Too many"):
            run_connector(c.to_dict(), window, last_try=False, settings=settings)
    finally:
        psp_api.rate_limit_every = 0
