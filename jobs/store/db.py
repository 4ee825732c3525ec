"""PostgreSQL connections (psycopg 3) and the project's SQL files."""
from __future__ import annotations

from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Iterator

import psycopg
from psycopg.rows import dict_row

from jobs.settings import PROJECT_ROOT, Settings

SQL_DIR = PROJECT_ROOT / "sql"


@lru_cache(maxsize=None)
def sql(name: str) -> str:
    """The text of ``sql/queries/<name>.sql``."""
    path = SQL_DIR / "queries" / f"{name}.sql"
    if not path.exists():
        raise FileNotFoundError(f"SQL file {path} not found")
    return path.read_text()


@contextmanager
def connect(settings: Settings, tenant_id: str | None = None, autocommit: bool = False) -> Iterator[psycopg.Connection]:
    """A connection; ``tenant_id`` sets ``app.tenant_id`` for the session. No row-level security policy
    reads it yet (every query filters by tenant itself): the setting is where such policies would look."""
    conn = psycopg.connect(settings.require_database_url(), autocommit=autocommit, row_factory=dict_row,
                           application_name="psp-recon")
    try:
        if tenant_id is not None:
            conn.execute("SELECT set_config('app.tenant_id', %s, false)", (tenant_id,))
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
