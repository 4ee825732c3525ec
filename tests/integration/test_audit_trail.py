"""The audit trail: append-only for every role, a hash chain per tenant that ``recon audit verify`` recomputes
independently of the database and that names the first broken link."""
import shutil
import threading
from datetime import date

import psycopg
import pytest

from jobs import audit, corrections
from jobs.cli import main as recon
from jobs.ledger import adjustments
from jobs.pipeline import prepare
from jobs.store.db import connect
from jobs.store.migrate import migrate, migrations_dir

pytestmark = pytest.mark.postgres


def _cli(monkeypatch, capsys, settings, tenant) -> tuple[int, str]:
    monkeypatch.setenv("RECON_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("RECON_DATABASE_ADMIN_URL", settings.database_admin_url)
    code = recon(["audit", "verify", "--tenant", tenant])
    out = capsys.readouterr()
    return code, (out.out + out.err).strip()


@pytest.fixture
def trail(settings, tenant_id):
    """A tenant with ten audited actions: two roles granted, two adjustments proposed (one reason with non-ASCII
    text; each also a correction proposal), one approved by another person (the correction and the adjustment),
    two direct appends."""
    prepare(settings, tenant_id)
    corrections.grant(settings, tenant_id, "root", "admin", "root")
    corrections.grant(settings, tenant_id, "checker", "approver", "root")
    first = adjustments.propose(settings, tenant_id, date(2026, 11, 20), "bank", "suspense", "12.34", "EUR",
                                "Gebühr — Zoë's refund €", "maker")
    adjustments.propose(settings, tenant_id, date(2026, 11, 20), "bank", "suspense", "1.00", "USD", "x", "maker")
    adjustments.approve(settings, tenant_id, first, "checker", date(2026, 11, 21))
    with connect(settings, tenant_id) as conn:
        audit.append(conn, tenant_id, "ops", "note", "exception_item", "e1", {"n": 1, "nested": {"b": [1, 2]}})
        audit.append(conn, tenant_id, "ops", "note", "exception_item", None, {})
    return settings, tenant_id


def test_every_action_is_chained_and_the_chain_verifies(trail, monkeypatch, capsys):
    settings, tenant = trail
    with connect(settings, tenant) as conn:
        rows = conn.execute("SELECT seq, action, actor, prev_hash, record_hash FROM audit_log WHERE tenant_id = %s "
                            "ORDER BY seq", (tenant,)).fetchall()
    assert [(r["seq"], r["action"], r["actor"]) for r in rows] == [
        (1, "role_grant", "root"), (2, "role_grant", "root"), (3, "adjustment_propose", "maker"),
        (4, "correction_propose", "maker"), (5, "adjustment_propose", "maker"), (6, "correction_propose", "maker"),
        (7, "adjustment_approve", "checker"), (8, "correction_approve", "checker"), (9, "note", "ops"),
        (10, "note", "ops")]
    assert rows[0]["prev_hash"] == audit.GENESIS
    assert all(b["prev_hash"] == a["record_hash"] for a, b in zip(rows, rows[1:]))
    result = audit.verify(settings, tenant)
    assert result.ok and result.records == 10 and result.head_seq == 10 and result.head_hash == rows[-1]["record_hash"]
    code, out = _cli(monkeypatch, capsys, settings, tenant)
    assert code == 0 and out == f"audit trail of {tenant}: 10 record(s), chain intact; head seq 10 hash " \
                                f"{rows[-1]['record_hash']}"


def test_no_role_may_update_delete_or_truncate_the_trail(trail):
    settings, tenant = trail
    for statement in ("UPDATE audit_log SET actor = 'someone else' WHERE tenant_id = %(t)s",
                      "DELETE FROM audit_log WHERE tenant_id = %(t)s", "TRUNCATE audit_log"):
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="permission denied"):
            with connect(settings, tenant) as conn:                  # the application: not granted
                conn.execute(statement, {"t": tenant})
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="audit_log is append-only"):
            with psycopg.connect(settings.database_admin_url) as conn:   # even the owner: the triggers refuse
                conn.execute(statement, {"t": tenant})
    assert audit.verify(settings, tenant).records == 10


@pytest.mark.parametrize("tamper, seq, problem", [
    ("UPDATE audit_log SET detail = jsonb_set(detail, '{amount_minor}', '1') WHERE tenant_id = %(t)s AND seq = 3",
     3, "was changed after it was written"),
    ("UPDATE audit_log SET actor = 'checker' WHERE tenant_id = %(t)s AND seq = 1", 1, "was changed after it was written"),
    ("UPDATE audit_log SET at = at + interval '1 microsecond' WHERE tenant_id = %(t)s AND seq = 4", 4,
     "was changed after it was written"),
    ("DELETE FROM audit_log WHERE tenant_id = %(t)s AND seq = 3", 3, "record(s) 3 missing (deleted)"),
    ("UPDATE audit_log SET seq = seq + 10 WHERE tenant_id = %(t)s AND seq = 10", 10, "record(s) 10..19 missing"),
    # a forged row: its own hash recomputed, but the next row no longer follows it
    ("UPDATE audit_log SET actor = 'mallory', record_hash = audit_log_hash(tenant_id, seq, 'mallory', action, "
     "object_type, object_id, detail, at, prev_hash) WHERE tenant_id = %(t)s AND seq = 2", 3,
     "does not follow the record before it"),
])
def test_a_tampered_trail_is_found_at_its_first_broken_link(trail, monkeypatch, capsys, tamper, seq, problem):
    settings, tenant = trail
    with psycopg.connect(settings.database_admin_url) as conn:      # the owner, triggers off: what it could do
        conn.execute("ALTER TABLE audit_log DISABLE TRIGGER audit_log_no_update_delete")
        conn.execute(tamper, {"t": tenant})
        conn.execute("ALTER TABLE audit_log ENABLE TRIGGER audit_log_no_update_delete")
    result = audit.verify(settings, tenant)
    assert not result.ok and result.broken_at == seq and problem in result.problem
    code, out = _cli(monkeypatch, capsys, settings, tenant)
    assert code == 1 and out.startswith(f"audit trail of {tenant}: BROKEN at seq {seq}: ") and problem in out


def test_concurrent_writers_extend_one_chain_without_gaps(settings, tenant_id):
    prepare(settings, tenant_id)
    errors = []

    def write(who: str) -> None:
        try:
            for i in range(15):
                with connect(settings, tenant_id) as conn:
                    audit.append(conn, tenant_id, who, "note", "exception_item", f"{who}-{i}", {"i": i})
        except Exception as exc:   # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(f"w{k}",)) for k in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    result = audit.verify(settings, tenant_id)
    assert errors == [] and result.ok and result.records == result.head_seq == 45


def test_rows_written_before_the_chain_are_chained_by_the_migration(migrated_database, tmp_path):
    name = f"recon_chain_{tmp_path.name[-12:].lower().replace('-', '_')}"
    with psycopg.connect(migrated_database.admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        db = migrated_database.named(name)
        before = tmp_path / "before"
        before.mkdir()
        for path in sorted(migrations_dir().glob("V00[1-6]__*.sql")):
            shutil.copy(path, before / path.name)
        migrate(db.settings(), before)
        with psycopg.connect(db.admin_url) as conn:
            conn.execute("INSERT INTO tenant VALUES ('acme', 'A', '{}', 1, 'x'), ('beta', 'B', '{}', 1, 'x')")
            for tenant, action in (("acme", "a1"), ("beta", "b1"), ("acme", "a2"), ("acme", "a3")):
                conn.execute("INSERT INTO audit_log (tenant_id, actor, action, object_type, detail) VALUES "
                             "(%s, 'old', %s, 'x', '{\"k\": \"é\"}')", (tenant, action))
        assert [m.version for m in migrate(db.settings())][:1] == [7]
        results = {t: audit.verify(db.settings(), t) for t in ("acme", "beta")}
        assert {t: (r.ok, r.records) for t, r in results.items()} == {"acme": (True, 3), "beta": (True, 1)}
        with connect(db.settings(), "acme") as conn:                 # and the chain goes on from there
            audit.append(conn, "acme", "new", "a4", "x", None, {})
        assert audit.verify(db.settings(), "acme").head_seq == 4
    finally:
        with psycopg.connect(migrated_database.admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
