"""Landing: bytes into the raw zone, unchanged and exactly once, with a manifest row per file.

A file is identified by the SHA-256 of its content. The first delivery is copied (atomically) to
``raw/tenant=<t>/source=<s>/received_date=<d>/<sha256>-<name>`` and recorded in ``raw_file``; any
later delivery of the same content, under any name and from any connector, is only recorded as a
delivery (``already_landed``). The manifest insert is the commit point: a crash before it leaves at
most an orphan object that the next attempt overwrites with the same bytes.
"""
from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from jobs import storage
from jobs.formats.registry import UNKNOWN_FORMAT, detect
from jobs.settings import Settings

log = logging.getLogger(__name__)
_SAFE_NAME = re.compile(r"[^A-Za-z0-9._()+=-]+")


@dataclass(frozen=True)
class LandResult:
    tenant_id: str
    sha256: str
    file_name: str
    raw_uri: str
    format: str
    outcome: str                 # landed | already_landed


@dataclass(frozen=True)
class LandedFile:
    """A manifest row, as the parse stage needs it."""
    tenant_id: str
    sha256: str
    file_name: str
    raw_uri: str
    format: str
    parser_version: str | None
    source: str
    received_date: date


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def raw_uri_for(settings: Settings, tenant_id: str, source: str, received_date: date, sha: str, name: str) -> str:
    safe = _SAFE_NAME.sub("_", name)[:150]
    return storage.join(settings.lake, "raw", f"tenant={tenant_id}", f"source={source}",
                        f"received_date={received_date.isoformat()}", f"{sha}-{safe}")


def land_file(settings: Settings, conn, tenant_id: str, received_date: date, path: Path,
              connector: str = "local", remote_path: str | None = None, file_name: str | None = None) -> LandResult:
    """Land one local file (downloaded or dropped) for a tenant; idempotent by content."""
    name = file_name or path.name
    sha = sha256_file(path)
    existing = conn.execute("SELECT raw_uri, format FROM raw_file WHERE tenant_id = %s AND sha256 = %s",
                            (tenant_id, sha)).fetchone()
    if existing is None:
        with path.open("rb") as fh:
            spec = detect(fh.read(64 * 1024))
        source = spec.source if spec else UNKNOWN_FORMAT
        fmt = spec.format_id if spec else UNKNOWN_FORMAT
        uri = raw_uri_for(settings, tenant_id, source, received_date, sha, name)
        storage.put_file(settings, path, uri)
        inserted = conn.execute(
            "INSERT INTO raw_file (tenant_id, sha256, size_bytes, file_name, source, format, parser_version, raw_uri, "
            "received_date, connector, remote_path) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) "
            "ON CONFLICT (tenant_id, sha256) DO NOTHING RETURNING raw_uri",
            (tenant_id, sha, path.stat().st_size, name, source, fmt, spec.version if spec else None, uri,
             received_date, connector, remote_path),
        ).fetchone()
        outcome = "landed" if inserted else "already_landed"
        if not inserted:   # another process landed the same content concurrently
            existing = conn.execute("SELECT raw_uri, format FROM raw_file WHERE tenant_id = %s AND sha256 = %s",
                                    (tenant_id, sha)).fetchone()
            uri, fmt = existing["raw_uri"], existing["format"]
    else:
        uri, fmt, outcome = existing["raw_uri"], existing["format"], "already_landed"
        if not storage.exists(settings, uri):
            # The manifest knows this content but the object is gone (lake restored or wiped):
            # put the same bytes back where the manifest says they are.
            log.warning("raw object %s missing for a landed file; restoring it from %s", uri, path)
            storage.put_file(settings, path, uri)
    conn.execute(
        "INSERT INTO raw_file_delivery (tenant_id, sha256, file_name, connector, remote_path, received_date, outcome) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
        (tenant_id, sha, name, connector, remote_path, received_date, outcome),
    )
    conn.commit()
    log.info("%s %s (%s) for tenant %s: %s", outcome, name, fmt, tenant_id, uri)
    return LandResult(tenant_id, sha, name, uri, fmt, outcome)


def land_directory(settings: Settings, conn, tenant_id: str, received_date: date, folder: Path,
                   connector: str = "local") -> list[LandResult]:
    """Land every file under ``folder`` (sorted by relative path, hidden files skipped)."""
    if not folder.is_dir():
        raise FileNotFoundError(f"landing folder {folder} does not exist")
    files = sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith("."))
    return [land_file(settings, conn, tenant_id, received_date, p, connector, str(p.relative_to(folder))) for p in files]


def files_for_date(conn, tenant_id: str, received_date: date) -> list[LandedFile]:
    rows = conn.execute(
        "SELECT tenant_id, sha256, file_name, raw_uri, format, parser_version, source, received_date FROM raw_file "
        "WHERE tenant_id = %s AND received_date = %s ORDER BY received_at, file_name",
        (tenant_id, received_date),
    ).fetchall()
    return [LandedFile(**r) for r in rows]
