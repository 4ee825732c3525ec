"""PostgreSQL: migrations, tenant configuration versions, exactly-once landing with provenance."""
from datetime import date

import psycopg
import pytest

from conftest import DATA
from jobs.landing import files_for_date, land_directory, land_file
from jobs.settings import ConfigurationError, Settings
from jobs.store.db import connect
from jobs.store.migrate import MigrationError, migrate
from jobs.tenants import load_tenant, parse_tenant, record_tenant

pytestmark = pytest.mark.postgres
DAY = date(2026, 11, 20)


def test_migrations_apply_once_and_refuse_edited_history(migrated_database, tmp_path):
    settings = migrated_database.settings()
    assert migrate(settings) == []                                    # already up to date
    folder = tmp_path / "migrations"
    folder.mkdir()
    (folder / "V900__probe.sql").write_text("CREATE TABLE probe_900 (x int);")
    assert [m.version for m in migrate(settings, folder)] == [900]
    assert migrate(settings, folder) == []
    (folder / "V900__probe.sql").write_text("CREATE TABLE probe_900 (x int, y int);")
    with pytest.raises(MigrationError, match="changed after it was applied"):
        migrate(settings, folder)


def test_tenant_config_versions_are_kept_and_edits_need_a_new_version(settings, tenant_id):
    cfg = load_tenant(settings, tenant_id)
    with connect(settings, tenant_id) as conn:
        record_tenant(conn, cfg)
        record_tenant(conn, cfg)                                      # idempotent
        changed = parse_tenant(cfg_text(settings, tenant_id).replace("absolute_minor: 1", "absolute_minor: 5"))
        with pytest.raises(ConfigurationError, match="bump config_version"):
            record_tenant(conn, changed)
        bumped = parse_tenant(cfg_text(settings, tenant_id).replace("absolute_minor: 1", "absolute_minor: 5")
                              .replace(f"config_version: {cfg.version}", f"config_version: {cfg.version + 1}"))
        record_tenant(conn, bumped)
        versions = conn.execute("SELECT config_version FROM tenant_config_version WHERE tenant_id = %s ORDER BY 1",
                                (tenant_id,)).fetchall()
    assert [v["config_version"] for v in versions] == [cfg.version, cfg.version + 1]


def cfg_text(settings, tenant_id):
    return (settings.tenant_config_dir / f"{tenant_id}.yaml").read_text()


def test_same_content_lands_once_under_any_name_with_every_delivery_recorded(settings, tenant_id, tmp_path):
    with connect(settings, tenant_id) as conn:
        record_tenant(conn, load_tenant(settings, tenant_id))
        src = DATA / "slice" / "stripe_payout_po_TEST1.csv"
        first = land_file(settings, conn, tenant_id, DAY, src, connector="sftp:psp", remote_path="/out/a.csv")
        copy = tmp_path / "renamed.csv"
        copy.write_bytes(src.read_bytes())
        again = land_file(settings, conn, tenant_id, DAY, copy, connector="imap:ops", remote_path="INBOX/42")
        assert (first.outcome, again.outcome) == ("landed", "already_landed")
        assert again.raw_uri == first.raw_uri and again.sha256 == first.sha256
        assert open(first.raw_uri, "rb").read() == src.read_bytes()   # unchanged bytes
        assert f"tenant={tenant_id}/source=stripe/received_date=2026-11-20/{first.sha256}-" in first.raw_uri
        files = conn.execute("SELECT count(*) AS n FROM raw_file WHERE tenant_id = %s", (tenant_id,)).fetchone()
        deliveries = conn.execute("SELECT connector, outcome FROM raw_file_delivery WHERE tenant_id = %s "
                                  "ORDER BY delivery_id", (tenant_id,)).fetchall()
    assert files["n"] == 1
    assert [(d["connector"], d["outcome"]) for d in deliveries] == [("sftp:psp", "landed"), ("imap:ops", "already_landed")]


def test_landing_a_folder_detects_formats_and_keeps_unknown_files(settings, tenant_id, tmp_path):
    folder = tmp_path / "inbox"
    folder.mkdir()
    for p in (DATA / "slice").iterdir():
        (folder / p.name).write_bytes(p.read_bytes())
    (folder / "notes.txt").write_text("not a payment file\n")
    with connect(settings, tenant_id) as conn:
        record_tenant(conn, load_tenant(settings, tenant_id))
        results = land_directory(settings, conn, tenant_id, DAY, folder)
        landed = {f.file_name: f.format for f in files_for_date(conn, tenant_id, DAY)}
        rerun = land_directory(settings, conn, tenant_id, DAY, folder)
    assert all(r.outcome == "landed" for r in results) and all(r.outcome == "already_landed" for r in rerun)
    assert landed == {"book_payments_2026-11-19.csv": "book.csv", "camt053_2026-11-20.xml": "bank.camt053",
                      "settlement_detail_report_batch_7.csv": "adyen.settlement_details",
                      "stripe_payout_po_TEST1.csv": "stripe.payout_reconciliation_itemized", "notes.txt": "unknown"}


def test_a_deleted_raw_object_is_restored_from_the_next_delivery(settings, tenant_id):
    import os

    with connect(settings, tenant_id) as conn:
        record_tenant(conn, load_tenant(settings, tenant_id))
        src = DATA / "slice" / "camt053_2026-11-20.xml"
        first = land_file(settings, conn, tenant_id, DAY, src)
        os.unlink(first.raw_uri)
        again = land_file(settings, conn, tenant_id, DAY, src)
    assert again.outcome == "already_landed" and open(first.raw_uri, "rb").read() == src.read_bytes()


def test_database_refuses_invalid_rows(settings):
    with pytest.raises(psycopg.errors.CheckViolation):
        with connect(settings, "Bad Tenant") as conn:
            conn.execute("INSERT INTO tenant (tenant_id, name, config, config_version, config_sha256) "
                         "VALUES ('Bad Tenant', 'x', '{}', 1, 'x')")
