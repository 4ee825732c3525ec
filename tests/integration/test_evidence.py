"""Evidence packs on the slice's day (period 2026-11): what is in one agrees with the lake and PostgreSQL read
independently; it verifies (signature against the registered key, every file, the audit rows); a changed file, a
changed manifest or a pack signed with another key does not; a broken audit chain holds the pack back."""
from __future__ import annotations

import base64
import csv
import io
import json
import zipfile
from collections import defaultdict

import psycopg
import pytest

from jobs import evidence, lake, storage
from jobs.cli import main
from jobs.store.db import connect

pytestmark = [pytest.mark.spark, pytest.mark.postgres]
PERIOD = "2026-11"
EXPECTED_FILES = {"runs.csv", "matches.csv", "exceptions.csv", "exception_history.csv", "journals.csv",
                  "trial_balance.csv", "approvals.csv", "audit_trail.csv", "files.csv", "config_versions.json"}


def members(archive: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(archive)) as zf:
        return {n: zf.read(n) for n in zf.namelist()}


def rezip(files: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        for name, body in files.items():
            zf.writestr(name, body)
    return out.getvalue()


def rows(body: bytes) -> list[dict]:
    return list(csv.DictReader(io.StringIO(body.decode())))


def history(settings, tenant: str) -> str:
    """Two notes on an exception, as the queue writes them (its audit rows are the exception's history)."""
    from jobs import audit

    with connect(settings, tenant) as conn:
        first = conn.execute("SELECT relation, event_id FROM exception_item WHERE tenant_id = %s ORDER BY event_id "
                             "LIMIT 1", (tenant,)).fetchone()
        key = f"{first['relation']}:{first['event_id']}"
        for text in ("asked the PSP", "PSP confirmed the refund"):
            audit.append(conn, tenant, "oscar", "note", "exception", key, {"note": text})
    return key


def test_a_pack_holds_the_period_signed_and_verifies(spark, slice_day, monkeypatch, capsys):
    settings, tenant = slice_day.settings, slice_day.tenant_id
    key = history(settings, tenant)
    pack = evidence.build(settings, tenant, PERIOD, "auditor-liaison", spark=spark)
    archive = storage.read_bytes(settings, pack.uri)
    files = members(archive)
    assert set(files) == EXPECTED_FILES | {"manifest.json", "manifest.sig"}
    manifest = json.loads(files["manifest.json"])
    assert (manifest["tenant_id"], manifest["period_start"], manifest["period_end"], pack.pack_no) == (
        tenant, "2026-11-01", "2026-11-30", 1)

    # the contents, against the lake and the database read another way
    matches = lake.read(spark, settings, "matches", tenant)
    assert manifest["files"]["matches.csv"]["rows"] == matches.count() > 0
    assert {(r["match_id"], r["event_id"]) for r in rows(files["matches.csv"])} == {
        (r.match_id, r.event_id) for r in matches.select("match_id", "event_id").collect()}
    lines = rows(files["journals.csv"])
    assert len(lines) == lake.read(spark, settings, "journal", tenant).count() > 0
    totals = defaultdict(lambda: [0, 0])
    for line in lines:
        totals[(line["account"], line["currency"])][0] += int(line["debit_minor"])
        totals[(line["account"], line["currency"])][1] += int(line["credit_minor"])
    trial = {(r["account"], r["currency"]): [int(r["debit_minor"]), int(r["credit_minor"])]
             for r in rows(files["trial_balance.csv"])}
    assert trial == dict(totals)
    for ccy in {c for _, c in trial}:
        assert sum(v[0] for (_, c), v in trial.items() if c == ccy) == sum(v[1] for (_, c), v in trial.items()
                                                                            if c == ccy)
    with connect(settings, tenant) as conn:
        raw = conn.execute("SELECT file_name, sha256 FROM raw_file WHERE tenant_id = %s", (tenant,)).fetchall()
        open_exceptions = conn.execute("SELECT count(*) AS n FROM exception_item WHERE tenant_id = %s",
                                       (tenant,)).fetchone()["n"]
        chain = conn.execute("SELECT max(seq) AS seq FROM audit_log WHERE tenant_id = %s", (tenant,)).fetchone()
    assert {(r["file_name"], r["sha256"]) for r in rows(files["files.csv"])} == {(r["file_name"], r["sha256"])
                                                                                  for r in raw}
    assert len(rows(files["exceptions.csv"])) == open_exceptions > 0
    assert [r["status"] for r in rows(files["runs.csv"])] == ["succeeded"]
    assert manifest["audit_chain"]["intact"] and manifest["audit_chain"]["head_seq"] == chain["seq"] - 1  # + this pack
    assert [v["config_version"] for v in json.loads(files["config_versions.json"])] == [8]
    assert [(r["exception"], r["action"], json.loads(r["detail"])["note"]) for r in rows(files["exception_history.csv"])
            ] == [(key, "note", "asked the PSP"), (key, "note", "PSP confirmed the refund")]

    # verified against the key registered in PostgreSQL, from the lake, as an auditor runs it
    monkeypatch.setenv("RECON_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("RECON_LAKE", settings.lake)
    capsys.readouterr()
    assert main(["evidence", "verify", pack.uri]) == 0
    assert "signature valid" in capsys.readouterr().out

    # a line of the journals changed, the manifest left alone: the file no longer has its hash
    journals = files["journals.csv"].replace(b",EUR,", b",USD,", 1)
    assert journals != files["journals.csv"]
    verdict = evidence.verify(rezip({**files, "journals.csv": journals}), evidence.registered_keys(settings, tenant))
    assert verdict.problems == ["journals.csv differs from the manifest (SHA-256)"]
    # ... and the manifest changed to match: the signature no longer holds
    forged = json.loads(files["manifest.json"])
    forged["files"]["journals.csv"]["sha256"] = __import__("hashlib").sha256(journals).hexdigest()
    verdict = evidence.verify(rezip({**files, "journals.csv": journals,
                                     "manifest.json": json.dumps(forged, indent=1, sort_keys=True).encode()}),
                              evidence.registered_keys(settings, tenant))
    assert len(verdict.problems) == 1 and "signature does not verify" in verdict.problems[0]
    # ... and signed again with a key of one's own: not a key registered for the tenant
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    other = Ed25519PrivateKey.generate()
    forged["signing_key"]["public_key"] = base64.b64encode(evidence._public_raw(other)).decode()
    body = json.dumps(forged, indent=1, sort_keys=True).encode()
    resigned = rezip({**files, "journals.csv": journals, "manifest.json": body,
                      "manifest.sig": base64.b64encode(other.sign(body))})
    assert not evidence.verify(resigned, evidence.registered_keys(settings, tenant)).ok
    assert evidence.verify(resigned, [forged["signing_key"]["public_key"]]).ok      # only with the forger's key
    # an audit row changed in a pack whose signature holds (checked on its own: the rows' hashes and links)
    trail = rows(files["audit_trail.csv"])
    assert trail, "the slice's run wrote audit rows"
    changed = files["audit_trail.csv"].replace(trail[0]["actor"].encode(), b"someone-else", 1)
    problems = evidence._audit_problems(changed, manifest["audit_chain"])
    assert problems == [f"audit trail row seq {trail[0]['seq']} does not have its hash (changed after it was written)"]
    capsys.readouterr()
    assert main(["evidence", "verify", pack.uri, "--public-key", forged["signing_key"]["public_key"]]) == 1
    assert "NOT VALID: the manifest's signature does not verify" in capsys.readouterr().err

    # built again: a new pack with the next number, both recorded, the first unchanged
    again = evidence.build(settings, tenant, PERIOD, "auditor-liaison", spark=spark)
    assert again.pack_no == 2 and storage.read_bytes(settings, pack.uri) == archive
    with connect(settings, tenant) as conn:
        recorded = conn.execute("SELECT pack_no, archive_sha256, created_by FROM evidence_pack WHERE tenant_id = %s "
                                "ORDER BY pack_no", (tenant,)).fetchall()
        logged = conn.execute("SELECT object_id FROM audit_log WHERE tenant_id = %s AND action = 'evidence_pack' "
                              "ORDER BY seq", (tenant,)).fetchall()
    assert [(r["pack_no"], r["archive_sha256"]) for r in recorded] == [(1, pack.archive_sha256),
                                                                       (2, again.archive_sha256)]
    assert [r["object_id"] for r in logged] == ["2026-11#1", "2026-11#2"]


def test_a_broken_audit_chain_holds_the_pack_back(spark, slice_day):
    settings, tenant = slice_day.settings, slice_day.tenant_id
    history(settings, tenant)
    with psycopg.connect(settings.database_admin_url) as admin:                      # what only the owner could do
        admin.execute("ALTER TABLE audit_log DISABLE TRIGGER audit_log_no_update_delete")
        assert admin.execute("UPDATE audit_log SET actor = 'nobody' WHERE tenant_id = %s AND seq = 1",
                             (tenant,)).rowcount == 1
        admin.execute("ALTER TABLE audit_log ENABLE TRIGGER audit_log_no_update_delete")
    with pytest.raises(evidence.EvidenceError, match=f"no evidence pack for {tenant} 2026-11-01..2026-11-30: audit "
                                                     f"trail of {tenant}: BROKEN at seq 1"):
        evidence.build(settings, tenant, PERIOD, "auditor-liaison", spark=spark)
    with connect(settings, tenant) as conn:
        assert conn.execute("SELECT count(*) AS n FROM evidence_pack WHERE tenant_id = %s", (tenant,)).fetchone()["n"] == 0
