"""Tenant isolation by PostgreSQL row-level security, for every table that holds a tenant's rows.

Two tenants get one row in every such table, written by the owner (with triggers and foreign keys off, so that
each table can be filled on its own). Then, connected as the application (``recon_app``, the role every other
test uses too): under tenant A no row of B is read, changed, deleted or written, whatever the statement's
WHERE says; without a tenant nothing is read; the cross-tenant reader reads both and writes nothing.
"""
import secrets
from datetime import date, datetime, timezone

import psycopg
import pytest
from psycopg.rows import dict_row

from jobs.store.db import APP_ROLE, connect, connect_platform

pytestmark = pytest.mark.postgres

APPEND_ONLY = ("audit_log", "evidence_key", "evidence_pack")       # the application may only insert and read
# Values that the tables' CHECK constraints accept (every other column gets a value of its type)
CHECKED = {
    ("raw_file_delivery", "outcome"): "landed", ("recon_run", "status"): "running",
    ("connector_run", "status"): "running", ("manual_match", "action"): "match",
    ("manual_match", "relation"): "book_psp", ("connector", "kind"): "sftp", ("alert", "kind"): "file_late",
    ("alert", "severity"): "warning", ("alert", "priority"): "P3", ("ledger_period", "period"): "2026-11", ("ledger_period", "status"): "open",
    ("dispute", "state"): "received", ("dispute_event", "origin"): "psp", ("dispute_event", "outcome"): "applied",
    ("erp_export_batch", "erp"): "sap", ("dispute_evidence", "sha256"): "a" * 64,
    ("correction", "kind"): "adjustment", ("tenant_member", "role"): "operator",
    ("evidence_pack", "period"): "2026-11", ("evidence_pack", "pack_no"): 1,
}


def _value(table: str, column: str, data_type: str, length: int | None, k: int):
    if (table, column) in CHECKED:
        return CHECKED[(table, column)]
    if column in ("connector_id",):
        return f"conn-{k}"
    if column == "event_ids":
        return [f"e{k}"]
    if data_type in ("integer", "bigint", "smallint", "numeric"):
        return k
    if data_type == "date":
        return date(2026, 11, 20)
    if data_type.startswith("timestamp"):
        return datetime(2026, 11, 20, tzinfo=timezone.utc)
    if data_type == "boolean":
        return False
    if data_type == "jsonb":
        return psycopg.types.json.Jsonb({})
    if data_type == "bytea":
        return b"\x00"
    if data_type == "ARRAY":
        return [f"x{k}"]
    if data_type == "character":
        return str(k).rjust(length or 1, "0")[-(length or 1):]
    return f"x{k}"


def _tenant_tables(admin) -> list[str]:
    return [r[0] for r in admin.execute(
        "SELECT c.table_name FROM information_schema.columns c JOIN information_schema.tables t USING "
        "(table_schema, table_name) WHERE c.table_schema = 'public' AND c.column_name = 'tenant_id' "
        "AND t.table_type = 'BASE TABLE' ORDER BY 1").fetchall()]


def _row(admin, table: str, tenant: str, k: int) -> dict:
    """A row of ``table`` for ``tenant``: every column without a default (and every NOT NULL one) filled."""
    cols = admin.execute(
        "SELECT column_name, data_type, character_maximum_length, is_nullable, column_default FROM "
        "information_schema.columns WHERE table_schema = 'public' AND table_name = %s ORDER BY ordinal_position",
        (table,)).fetchall()
    row = {}
    for name, data_type, length, nullable, default in cols:
        if name == "tenant_id":
            row[name] = tenant
        elif default is None and (nullable == "NO" or (table, name) in CHECKED):
            row[name] = _value(table, name, data_type, length, k)
    return row


def _insert(conn, table: str, row: dict) -> None:
    names = ", ".join(f'"{c}"' for c in row)
    conn.execute(f'INSERT INTO "{table}" ({names}) VALUES ({", ".join(["%s"] * len(row))})', list(row.values()))


@pytest.fixture
def two_tenants(migrated_database):
    a, b = f"ta{secrets.token_hex(3)}", f"tb{secrets.token_hex(3)}"
    with psycopg.connect(migrated_database.admin_url) as admin:
        admin.execute("SET session_replication_role = replica")        # no FK / trigger: each table on its own
        tables = _tenant_tables(admin)
        k = 2 * secrets.randbelow(10 ** 6) + 1                         # keys unique across the session's tests
        rows = {t: {a: _row(admin, t, a, k), b: _row(admin, t, b, k + 1)} for t in tables}
        for t in tables:
            for tenant in (a, b):
                _insert(admin, t, rows[t][tenant])
    return migrated_database, a, b, tables, rows


def test_every_tenant_table_forces_row_level_security_and_the_app_role_cannot_bypass_it(migrated_database):
    with psycopg.connect(migrated_database.admin_url) as admin:
        tables = _tenant_tables(admin)
        flags = dict(admin.execute(
            "SELECT relname, relrowsecurity AND relforcerowsecurity FROM pg_class WHERE relnamespace = "
            "'public'::regnamespace AND relkind = 'r'").fetchall())
        policies = {r[0] for r in admin.execute(
            "SELECT tablename FROM pg_policies WHERE policyname = 'tenant_isolation' AND 'recon_app' = ANY(roles)")}
        app = admin.execute("SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = %s", (APP_ROLE,)).fetchone()
        owned = admin.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public' AND tableowner = %s",
                              (APP_ROLE,)).fetchone()[0]
    assert len(tables) >= 28, tables
    assert [t for t in tables if not flags[t]] == [] and sorted(policies) == tables
    assert app == (False, False) and owned == 0
    with psycopg.connect(migrated_database.url) as conn:                 # what the application logs in as
        assert conn.execute("SELECT current_user").fetchone()[0] == APP_ROLE


def test_a_tenant_reads_and_writes_no_row_of_another_on_any_table(two_tenants):
    db, a, b, tables, rows = two_tenants
    settings = db.settings()
    read_of_b = {}
    with connect(settings, a) as conn:
        for t in tables:
            read_of_b[t] = conn.execute(f'SELECT count(*) AS n FROM "{t}" WHERE tenant_id = %s', (b,)).fetchone()["n"]
            seen = {r["tenant_id"] for r in conn.execute(f'SELECT tenant_id FROM "{t}"').fetchall()}
            assert seen == {a}, (t, seen)
            if t not in APPEND_ONLY:                                     # no UPDATE / DELETE at all
                assert conn.execute(f'UPDATE "{t}" SET tenant_id = tenant_id WHERE tenant_id = %s', (b,)).rowcount == 0
                assert conn.execute(f'DELETE FROM "{t}" WHERE tenant_id = %s', (b,)).rowcount == 0
        conn.rollback()
    assert read_of_b == {t: 0 for t in tables}
    refused = []
    for t in tables:                                                     # B's row written under A: refused
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="row-level security"):
            with connect(settings, a) as conn:
                _insert(conn, t, {**rows[t][b], **_fresh_keys(t, rows[t][b])})
        refused.append(t)
    assert refused == tables
    with psycopg.connect(db.admin_url, row_factory=dict_row) as admin:  # B's rows are all still there
        for t in tables:
            assert admin.execute(f'SELECT count(*) AS n FROM "{t}" WHERE tenant_id = %s', (b,)).fetchone()["n"] == 1, t


def _fresh_keys(table: str, row: dict) -> dict:
    """Other key values, so that a refusal can only come from the tenant, never from a duplicate key."""
    return {c: (v + 10 ** 7 if isinstance(v, int) and not isinstance(v, bool) else v) for c, v in row.items()
            if c != "tenant_id" and not (table, c) in CHECKED}


def test_without_a_tenant_nothing_is_read_and_the_platform_reader_reads_all_and_writes_nothing(two_tenants):
    db, a, b, tables, rows = two_tenants
    settings = db.settings()
    with connect(settings) as conn:
        assert {t: conn.execute(f'SELECT count(*) AS n FROM "{t}"').fetchone()["n"] for t in tables} == \
            {t: 0 for t in tables}
    with connect_platform(settings) as conn:
        for t in tables:
            seen = {r["tenant_id"] for r in conn.execute(f'SELECT tenant_id FROM "{t}" WHERE tenant_id IN (%s, %s)',
                                                         (a, b)).fetchall()}
            assert seen == {a, b}, t
    with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
        with connect_platform(settings) as conn:
            conn.execute("UPDATE tenant SET name = 'x' WHERE tenant_id = %s", (a,))
    with connect(settings, a) as conn:              # the platform policy holds only while the role is taken
        assert conn.execute("SELECT count(*) AS n FROM tenant WHERE tenant_id = %s", (b,)).fetchone()["n"] == 0


def test_the_application_refuses_a_login_that_bypasses_row_level_security(migrated_database):
    from jobs.settings import ConfigurationError

    owner = migrated_database.settings().with_(database_url=migrated_database.admin_url)
    with pytest.raises(ConfigurationError, match="a superuser: row-level security would not isolate tenants"):
        with connect(owner, "acme"):
            pass
