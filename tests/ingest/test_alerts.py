"""Lateness and alerts: a file missing past its delivery window alerts once (recorded, logged, delivered
through a Slack webhook connection to a real HTTP server), fails with a clear message, and resolves
when the file arrives; a broken channel does not stop the others; no channel still records."""
from __future__ import annotations

import json
import logging
from datetime import timedelta

import pytest

from jobs.ingest.errors import FileLateError
from jobs.ingest.tasks import check_delivery
from jobs.ingest.window import RunWindow
from jobs.landing import land_bytes

from .conftest import DAY

pytestmark = pytest.mark.postgres


def alerts(db, tenant_id):
    return db.execute("SELECT kind, severity, message, delivered_via, delivery_errors, resolved_at FROM alert "
                      "WHERE tenant_id = %s ORDER BY alert_id", (tenant_id,)).fetchall()


def test_a_late_file_alerts_once_fails_clearly_and_resolves_on_arrival(settings, db, add_connector, psp_api, window,
                                                                       tenant_id):
    c = add_connector("bank-sftp", "sftp", source="bank", conn_id="recon_sftp", remote_path="/bank",
                      delivery_window={"expected_by": "10:30", "min_files": 1},
                      alert_conn_ids=["recon_alert_slack", "recon_sftp"])         # the second is no alert channel
    before = RunWindow(window.start - timedelta(hours=1), window.start, window.run_id + "_early")
    assert check_delivery(c.to_dict(), before, settings=settings)["status"] == "not yet due"
    posts_before = len(psp_api.posts)

    with pytest.raises(FileLateError, match=rf"{tenant_id}/bank-sftp: 0 of 1 expected file\(s\) for 2026-11-20 "
                                            r"delivered by 10:30 UTC"):
        check_delivery(c.to_dict(), window, settings=settings)
    with pytest.raises(FileLateError):                                     # the next hour: still late ...
        check_delivery(c.to_dict(), RunWindow(window.end, window.end + timedelta(hours=1), "r2"), settings=settings)

    (alert,) = alerts(db, tenant_id)                                       # ... but alerted once
    assert (alert["kind"], alert["severity"], alert["delivered_via"]) == ("file_late", "warning", ["recon_alert_slack"])
    assert "recon_sftp" in alert["delivery_errors"] and "alert channels are" in alert["delivery_errors"]
    (path, body), = psp_api.posts[posts_before:]
    assert path == "/hooks/T000/B000/alerts"
    assert json.loads(body)["text"].startswith(f"[psp-recon P3 warning] {tenant_id}/bank-sftp: 0 of 1 expected file")

    land_bytes(settings, db, tenant_id, DAY, b"statement", "camt053.xml", "bank-sftp", "/bank/camt053.xml")
    assert check_delivery(c.to_dict(), window, settings=settings) == {"connector": f"{tenant_id}/bank-sftp",
                                                                      "status": "delivered", "files": 1}
    assert alerts(db, tenant_id)[0]["resolved_at"] is not None


def test_without_a_channel_the_alert_is_recorded_and_logged(settings, db, add_connector, window, tenant_id,
                                                           monkeypatch, caplog):
    monkeypatch.delenv("RECON_ALERT_CONN_IDS", raising=False)
    c = add_connector("psp-sftp", "sftp", source="stripe", conn_id="recon_sftp", remote_path="/psp",
                      delivery_window={"expected_by": "06:00", "weekdays": [5]})       # 2026-11-20 is a Friday
    with caplog.at_level(logging.ERROR, logger="jobs.alerts.record"), pytest.raises(FileLateError):
        check_delivery(c.to_dict(), window, settings=settings)
    (alert,) = alerts(db, tenant_id)
    assert alert["delivered_via"] == [] and alert["delivery_errors"] is None
    assert any("no alert channel configured" in r.message for r in caplog.records)
    assert any(r.message.startswith("ALERT ") and "[P3 file_late]" in r.message for r in caplog.records)
