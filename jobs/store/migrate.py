"""Versioned, idempotent schema migrations from ``sql/migrations/V<NNN>__<name>.sql``.

Each file is applied once, in version order, in its own transaction, under an advisory lock so two
processes migrating at once do not race. An applied file whose text later changed is an error: write
a new migration instead of editing an old one.
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from jobs.settings import Settings
from jobs.store.db import connect, connect_admin, migrations_dir

_NAME = re.compile(r"^V(\d{3,})__([a-z0-9_]+)\.sql$")
_LOCK_KEY = 727_001


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    path: Path

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.path.read_bytes()).hexdigest()


class MigrationError(RuntimeError):
    pass


def discover(folder: Path | None = None) -> list[Migration]:
    found = []
    for path in sorted((folder or migrations_dir()).glob("*.sql")):
        m = _NAME.match(path.name)
        if not m:
            raise MigrationError(f"{path.name}: migration files must be named V<NNN>__<name>.sql")
        found.append(Migration(int(m.group(1)), m.group(2), path))
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise MigrationError(f"duplicate migration versions in {folder or migrations_dir()}")
    return sorted(found, key=lambda m: m.version)


def ensure_schema(settings: Settings) -> None:
    """Before the application's work: with the owner's URL (``RECON_DATABASE_ADMIN_URL``) the pending migrations
    are applied; without it (the application's own role may not change the schema: a remote job, a worker)
    the schema must already be current, else a clear error names the command."""
    if settings.database_admin_url:
        migrate(settings)
        return
    with connect(settings) as conn:
        done = {r["version"] for r in conn.execute("SELECT version FROM schema_migration")}
    pending = [m.path.name for m in discover() if m.version not in done]
    if pending:
        raise MigrationError(f"the database schema lacks {', '.join(pending)}: run `recon db migrate` with "
                             "RECON_DATABASE_ADMIN_URL (the tables' owner)")


def migrate(settings: Settings, folder: Path | None = None) -> list[Migration]:
    """Apply pending migrations; returns those applied now (empty when up to date)."""
    applied_now = []
    with connect_admin(settings, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (_LOCK_KEY,))
        try:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migration (version integer PRIMARY KEY, name text NOT NULL, "
                "checksum text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())"
            )
            done = {r["version"]: r for r in conn.execute("SELECT version, name, checksum FROM schema_migration")}
            for mig in discover(folder):
                if mig.version in done:
                    if done[mig.version]["checksum"] != mig.checksum:
                        raise MigrationError(
                            f"migration {mig.path.name} was changed after it was applied "
                            "(write a new migration instead of editing an applied one)"
                        )
                    continue
                with conn.transaction():
                    conn.execute(mig.path.read_text())
                    conn.execute("INSERT INTO schema_migration (version, name, checksum) VALUES (%s, %s, %s)",
                                 (mig.version, mig.name, mig.checksum))
                applied_now.append(mig)
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (_LOCK_KEY,))
    return applied_now
