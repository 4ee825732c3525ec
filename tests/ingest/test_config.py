"""Connector configuration: validation (no secrets, no typos), versions with who/when, the CLI."""
from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest

from jobs.ingest import config as cfg
from jobs.ingest.errors import ConnectorConfigError
from jobs.ingest.window import RunWindow, delivery_deadline, is_due

pytestmark = pytest.mark.postgres
SFTP = {"source": "stripe", "conn_id": "recon_sftp", "remote_path": "/out", "patterns": ["*.csv"]}


def test_validation_fills_defaults_and_names_every_problem():
    out = cfg.validate("sftp", SFTP)
    assert out["schedule"] == "0 * * * *" and out["timezone"] == "UTC" and out["archive_path"] is None
    with pytest.raises(ConnectorConfigError) as err:
        cfg.validate("sftp", {**SFTP, "password": "hunter2", "remote_pth": "/x", "patterns": "*.csv",
                              "schedule": "every hour"})
    message = str(err.value)
    assert "'password' looks like a secret" in message and "unknown key 'remote_pth'" in message
    assert "'patterns' must be list" in message
    with pytest.raises(ConnectorConfigError, match="schedule 'every hour' is not a valid cron"):
        cfg.validate("sftp", {**SFTP, "schedule": "every hour"})
    with pytest.raises(ConnectorConfigError, match="missing required key 'secret_conn_id'"):
        cfg.validate("webhook", {"source": "stripe", "provider": "stripe"})
    with pytest.raises(ConnectorConfigError, match="'max_mails' must be int, not bool"):
        cfg.validate("imap", {"source": "bank", "conn_id": "x", "max_mails": True})
    with pytest.raises(ConnectorConfigError, match="expected_by must be HH:MM"):
        cfg.validate("sftp", {**SFTP, "delivery_window": {"expected_by": "6am"}})


def test_every_change_is_a_new_version_with_who_and_when(db, recorded_tenant):
    c = cfg.add_connector(db, recorded_tenant, "stripe-sftp", "sftp", SFTP, actor="alice", note="onboarding")
    assert (c.version, c.enabled) == (1, True)
    with pytest.raises(ConnectorConfigError, match="already exists"):
        cfg.add_connector(db, recorded_tenant, "stripe-sftp", "sftp", SFTP, actor="alice")
    c2 = cfg.update_connector(db, recorded_tenant, "stripe-sftp", "bob", config={**SFTP, "patterns": ["*.CSV"]})
    same = cfg.update_connector(db, recorded_tenant, "stripe-sftp", "bob", config={**SFTP, "patterns": ["*.CSV"]})
    c3 = cfg.update_connector(db, recorded_tenant, "stripe-sftp", "carol", enabled=False, note="PSP migration")
    assert (c2.version, same.version, c3.version, c3.enabled) == (2, 2, 3, False)
    history = cfg.history(db, recorded_tenant, "stripe-sftp")
    assert [(v["version"], v["changed_by"], v["enabled"]) for v in history] == [
        (1, "alice", True), (2, "bob", True), (3, "carol", False)]
    assert history[0]["config"]["patterns"] == ["*.csv"] and history[2]["change_note"] == "PSP migration"
    assert all(v["changed_at"] is not None for v in history)
    assert cfg.get_connector(db, recorded_tenant, "stripe-sftp", version=1).config["patterns"] == ["*.csv"]
    assert cfg.list_connectors(db, recorded_tenant, enabled_only=True) == []


def test_unknown_tenant_is_refused(db, migrated_db):
    with pytest.raises(ConnectorConfigError, match="tenant 'nobody' is not recorded"):
        cfg.add_connector(db, "nobody", "x-sftp", "sftp", SFTP, actor="alice")


def test_cli_add_list_disable(settings, tenant_id, monkeypatch, capsys, tmp_path):
    from jobs.cli import main

    monkeypatch.setenv("RECON_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("RECON_TENANT_CONFIG_DIR", str(settings.tenant_config_dir))
    config_file = tmp_path / "imap.yaml"
    config_file.write_text("source: bank\nconn_id: recon_imap\nsender: statements@bank.test\n"
                           "attachment_patterns: ['*.xml']\ndelivery_window: {expected_by: '07:30'}\n")
    assert main(["connector", "add", "--tenant", tenant_id, "--id", "bank-mail", "--kind", "imap",
                 "--config", f"@{config_file}", "--actor", "ops"]) == 0
    assert main(["connector", "add", "--tenant", tenant_id, "--id", "bad", "--kind", "api",
                 "--config", json.dumps({"source": "stripe", "conn_id": "x", "api_key": "sk_live_1"})]) == 2
    assert "looks like a secret" in capsys.readouterr().err
    assert main(["connector", "disable", "--tenant", tenant_id, "--id", "bank-mail", "--actor", "ops"]) == 0
    assert "bank-mail is at version 2 (disabled)" in capsys.readouterr().out
    assert main(["connector", "list", "--tenant", tenant_id, "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [(c["connector_id"], c["version"], c["enabled"]) for c in listed] == [("bank-mail", 2, False)]
    assert main(["connector", "show", "--tenant", tenant_id, "--id", "bank-mail", "--history"]) == 0
    history = capsys.readouterr().out.splitlines()
    assert history[0].startswith("v1 ") and " by ops enabled" in history[0] and " by ops disabled" in history[2]
    assert main(["connector", "runs", "--tenant", tenant_id]) == 0 and main(["alerts", "--tenant", tenant_id]) == 0


def test_schedules_and_delivery_windows():
    def connector(**extra):
        return cfg.Connector("t1", "c", "sftp", 1, True, cfg.validate("sftp", {**SFTP, **extra}))

    hour = RunWindow(datetime(2026, 11, 20, 5, tzinfo=timezone.utc), datetime(2026, 11, 20, 6, tzinfo=timezone.utc),
                     "r")
    assert is_due(connector(), hour)
    assert is_due(connector(schedule="30 6 * * *", timezone="Europe/Berlin"), hour)       # 06:30 CET = 05:30 UTC
    assert not is_due(connector(schedule="30 7 * * *", timezone="Europe/Berlin"), hour)
    late = connector(timezone="Europe/Berlin", delivery_window={"expected_by": "06:00"})
    assert delivery_deadline(late, hour.received_date) == datetime(2026, 11, 20, 5, tzinfo=timezone.utc)
    assert delivery_deadline(late, datetime(2026, 11, 21).date()) is None                  # a Saturday
    assert hour.received_date.isoformat() == "2026-11-20"
    point = RunWindow.from_interval(datetime(2026, 11, 20, tzinfo=timezone.utc),
                                    datetime(2026, 11, 20, tzinfo=timezone.utc), "r")
    assert (point.start.hour, point.received_date.isoformat()) == (23, "2026-11-19")
