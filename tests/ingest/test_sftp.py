"""SFTP connector against a real SFTP server on 127.0.0.1 (asyncssh), through the provider's SFTPHook."""
from __future__ import annotations

import hashlib
import shutil

import pytest

from jobs import storage
from jobs.ingest.errors import ConnectorAuthError, ConnectorError
from jobs.ingest.tasks import run_connector

from conftest import DATA

pytestmark = pytest.mark.postgres
SLICE = DATA / "slice"
STRIPE = SLICE / "stripe_payout_po_TEST1.csv"
ADYEN = SLICE / "settlement_detail_report_batch_7.csv"


def manifest(db, tenant_id):
    return db.execute("SELECT sha256, file_name, source, format, size_bytes, raw_uri, received_date, connector, "
                      "remote_path FROM raw_file WHERE tenant_id = %s ORDER BY file_name", (tenant_id,)).fetchall()


def runs(db, tenant_id):
    return db.execute("SELECT connector_id, status, files_landed, files_already_landed, error FROM connector_run "
                      "WHERE tenant_id = %s ORDER BY run_pk", (tenant_id,)).fetchall()


def test_lands_matching_files_once_archives_them_and_a_second_offer_lands_nothing(
        settings, db, add_connector, sftp_folder, window, tenant_id):
    local, remote = sftp_folder
    shutil.copy(STRIPE, local / STRIPE.name)
    shutil.copy(ADYEN, local / ADYEN.name)
    (local / "README.txt").write_text("not a report")
    c = add_connector("psp-sftp", "sftp", source="stripe", conn_id="recon_sftp", remote_path=remote,
                      patterns=["*.csv"], archive_path=f"{remote}/archive")

    summary = run_connector(c.to_dict(), window, settings=settings)

    assert (summary["landed"], summary["already_landed"]) == (2, 0)
    rows = {r["file_name"]: r for r in manifest(db, tenant_id)}
    assert set(rows) == {STRIPE.name, ADYEN.name}
    stripe = rows[STRIPE.name]
    sha = hashlib.sha256(STRIPE.read_bytes()).hexdigest()
    assert (stripe["sha256"], stripe["size_bytes"], stripe["format"]) == (sha, STRIPE.stat().st_size,
                                                                         "stripe.payout_reconciliation_itemized")
    assert (stripe["connector"], stripe["remote_path"], str(stripe["received_date"])) == (
        "psp-sftp", f"{remote}/{STRIPE.name}", "2026-11-20")
    assert stripe["raw_uri"].endswith(f"/raw/tenant={tenant_id}/source=stripe/received_date=2026-11-20/"
                                      f"{sha}-{STRIPE.name}")
    assert storage.read_bytes(settings, stripe["raw_uri"]) == STRIPE.read_bytes()           # unchanged
    assert rows[ADYEN.name]["source"] == "adyen"
    assert sorted(p.name for p in (local / "archive").iterdir()) == sorted([STRIPE.name, ADYEN.name])
    assert sorted(p.name for p in local.iterdir() if p.is_file()) == ["README.txt"]

    # The PSP offers the same content again, under another name: delivered, not landed again.
    shutil.copy(STRIPE, local / "payout_resend.csv")
    again = run_connector(c.to_dict(), window, settings=settings)
    assert (again["landed"], again["already_landed"]) == (0, 1)
    assert len(manifest(db, tenant_id)) == 2
    deliveries = db.execute("SELECT file_name, outcome FROM raw_file_delivery WHERE tenant_id = %s ORDER BY "
                            "delivery_id", (tenant_id,)).fetchall()
    assert [(d["file_name"], d["outcome"]) for d in deliveries][-1] == ("payout_resend.csv", "already_landed")
    assert [r["status"] for r in runs(db, tenant_id)] == ["succeeded", "succeeded"]


def test_a_download_cut_off_midway_lands_nothing_and_the_next_run_completes(
        settings, db, add_connector, sftp_folder, sftp_server, window, tenant_id):
    local, remote = sftp_folder
    big = local / "settlement_big.csv"
    big.write_bytes(STRIPE.read_bytes() + b"".join(b"%d,x\n" % i for i in range(40_000)))   # ~ 300 KB
    sftp_server.cut_next_download(big.name, after_bytes=big.stat().st_size // 2)
    c = add_connector("big-sftp", "sftp", source="stripe", conn_id="recon_sftp", remote_path=remote)

    with pytest.raises(ConnectorError, match="was cut off.*nothing was landed"):
        run_connector(c.to_dict(), window, try_number=1, last_try=False, settings=settings)
    assert manifest(db, tenant_id) == []
    assert list(storage.list_files(settings, storage.join(settings.lake, "raw"))) == []
    failed = runs(db, tenant_id)[0]
    assert failed["status"] == "failed" and "cut off" in failed["error"]
    assert db.execute("SELECT count(*) AS n FROM alert WHERE tenant_id = %s", (tenant_id,)).fetchone()["n"] == 0

    summary = run_connector(c.to_dict(), window, try_number=2, settings=settings)   # Airflow's retry
    assert summary["landed"] == 1
    (row,) = manifest(db, tenant_id)
    assert storage.read_bytes(settings, row["raw_uri"]) == big.read_bytes()


def test_wrong_credentials_fail_clearly_alert_and_do_not_stop_other_connectors(
        settings, db, add_connector, sftp_folder, window, tenant_id):
    local, remote = sftp_folder
    shutil.copy(STRIPE, local / STRIPE.name)
    bad = add_connector("bad-sftp", "sftp", source="stripe", conn_id="recon_sftp_wrong", remote_path=remote)
    good = add_connector("good-sftp", "sftp", source="stripe", conn_id="recon_sftp", remote_path=remote)

    with pytest.raises(ConnectorAuthError, match=r"bad-sftp: the SFTP server refused the credentials of Airflow "
                                                 r"connection 'recon_sftp_wrong'"):
        run_connector(bad.to_dict(), window, try_number=1, last_try=False, settings=settings)
    assert run_connector(good.to_dict(), window, settings=settings)["landed"] == 1

    alert = db.execute("SELECT kind, connector_id, message, delivered_via FROM alert WHERE tenant_id = %s",
                       (tenant_id,)).fetchone()
    assert (alert["kind"], alert["connector_id"], alert["delivered_via"]) == ("connector_failed", "bad-sftp", [])
    assert "refused the credentials" in alert["message"]
    assert [(r["connector_id"], r["status"]) for r in runs(db, tenant_id)] == [("bad-sftp", "failed"),
                                                                             ("good-sftp", "succeeded")]
