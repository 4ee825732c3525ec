"""PostgreSQL connections (psycopg 3) and the project's SQL files.

Tenant isolation is PostgreSQL's row-level security (``sql/migrations/V006__row_level_security.sql``): the
application connects as a member of ``recon_app`` and sees and writes only the rows of the tenant its
transaction names (``app.tenant_id``, set with ``set_config(..., true)``: per transaction, so it holds behind
PgBouncer in transaction mode). ``connect(settings, tenant_id)`` names it at the start of every transaction of
the connection; a connection without a tenant sees no tenant's rows. The few cross-tenant reads (the tenant
list, the runs overview, connectors and alerts across tenants) go through ``connect_platform``: a read-only
transaction as ``recon_platform``. Migrations connect as the tables' owner (``connect_admin``).
"""
from __future__ import annotations

from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Iterator

import psycopg
from psycopg.rows import dict_row

from jobs.settings import PROJECT_ROOT, ConfigurationError, Settings

SQL_DIR = PROJECT_ROOT / "sql"
APP_ROLE = "recon_app"
PLATFORM_ROLE = "recon_platform"


@lru_cache(maxsize=None)
def sql(name: str) -> str:
    """The text of ``sql/queries/<name>.sql``."""
    path = SQL_DIR / "queries" / f"{name}.sql"
    if not path.exists():
        raise FileNotFoundError(f"SQL file {path} not found")
    return path.read_text()


class TenantConnection(psycopg.Connection):
    """A connection whose every transaction works for ``tenant_id`` (``None``: no tenant, no tenant's rows):
    the setting is transaction-local, so it is named again after each commit and rollback."""
    tenant_id: str | None = None

    def use_tenant(self, tenant_id: str | None) -> None:
        self.tenant_id = tenant_id
        self._name_tenant()

    def _name_tenant(self) -> None:
        self.execute("SELECT set_config('app.tenant_id', %s, true)", (self.tenant_id or "",))

    def commit(self) -> None:
        super().commit()
        if self.tenant_id is not None and not self.closed:
            self._name_tenant()

    def rollback(self) -> None:
        super().rollback()
        if self.tenant_id is not None and not self.closed:
            self._name_tenant()


_CHECKED: set[str] = set()


def _refuse_bypassing_role(conn: psycopg.Connection, url: str) -> None:
    """Row-level security does not hold for a superuser, a BYPASSRLS role or the tables' owner: the application
    refuses to run as one (checked once per URL and process)."""
    if url in _CHECKED:
        return
    row = conn.execute(
        "SELECT r.rolname, r.rolsuper, r.rolbypassrls, pg_has_role(current_user, %s, 'USAGE') AS is_app, "
        "EXISTS (SELECT 1 FROM pg_tables t WHERE t.schemaname = 'public' AND t.tableowner = current_user) AS owns "
        "FROM pg_roles r WHERE r.rolname = current_user", (APP_ROLE,)).fetchone()
    conn.rollback()
    name = row["rolname"]
    if row["rolsuper"] or row["rolbypassrls"] or row["owns"]:
        what = "a superuser" if row["rolsuper"] else "a BYPASSRLS role" if row["rolbypassrls"] else "the tables' owner"
        raise ConfigurationError(
            f"the database URL connects as {name!r}, {what}: row-level security would not isolate tenants. Connect "
            f"the application as a member of {APP_ROLE} (RECON_DATABASE_URL) and run migrations with "
            "RECON_DATABASE_ADMIN_URL")
    if not row["is_app"]:
        raise ConfigurationError(f"the database URL connects as {name!r}, which is not a member of {APP_ROLE} "
                                 f"(GRANT {APP_ROLE} TO {name}, after `recon db migrate`)")
    _CHECKED.add(url)


@contextmanager
def connect(settings: Settings, tenant_id: str | None = None) -> Iterator[TenantConnection]:
    """The application's connection; every transaction on it works for ``tenant_id``. Commits when the block
    ends without an error, rolls back otherwise."""
    url = settings.require_database_url()
    conn = TenantConnection.connect(url, row_factory=dict_row, application_name="psp-recon")
    try:
        _refuse_bypassing_role(conn, url)
        if tenant_id is not None:
            conn.use_tenant(tenant_id)
        yield conn
        conn.commit()
    except BaseException:
        if not conn.closed:
            conn.rollback()
        raise
    finally:
        conn.close()


@contextmanager
def connect_platform(settings: Settings) -> Iterator[psycopg.Connection]:
    """A read-only transaction across tenants (as ``recon_platform``): the tenant list, the runs overview,
    connectors and alerts of every tenant. Nothing can be written through it."""
    url = settings.require_database_url()
    with psycopg.connect(url, row_factory=dict_row, application_name="psp-recon-platform") as conn:
        _refuse_bypassing_role(conn, url)
        conn.execute("SET TRANSACTION READ ONLY")
        conn.execute(f"SET LOCAL ROLE {PLATFORM_ROLE}")
        yield conn
        conn.rollback()


@contextmanager
def connect_admin(settings: Settings, autocommit: bool = False) -> Iterator[psycopg.Connection]:
    """The tables' owner (migrations only)."""
    conn = psycopg.connect(settings.require_database_admin_url(), autocommit=autocommit, row_factory=dict_row,
                           application_name="psp-recon-admin")
    try:
        yield conn
        if not autocommit:
            conn.commit()
    except BaseException:
        if not autocommit and not conn.closed:
            conn.rollback()
        raise
    finally:
        conn.close()


def migrations_dir() -> Path:
    return SQL_DIR / "migrations"
