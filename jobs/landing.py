"""Landing: bytes into the raw zone, unchanged and exactly once, with a manifest row per file.

A file is identified by the SHA-256 of its content. The first delivery is copied (atomically) to
``raw/tenant=<t>/source=<s>/received_date=<d>/<sha256>-<name>`` and recorded in ``raw_file``; any
later delivery of the same content, under any name and from any connector, is only recorded as a
delivery (``already_landed``). The manifest insert is the commit point: a crash before it leaves at
most an orphan object that the next attempt overwrites with the same bytes; a lander that loses a
concurrent race for the same content removes its own copy.

Two entries, one mechanism: ``land_file`` (a complete local file: dropped, or downloaded by a
connector to a temporary file) and ``land_bytes`` (content built in memory: webhook batches, API
pages). Objects are written atomically by ``jobs.storage`` (local rename, S3 PUT / completed
multipart upload), so a reader never sees part of a file.
"""
from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Callable

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


HEAD_BYTES = 64 * 1024
OnCommit = Callable[[object, "LandResult"], None]


def land_file(settings: Settings, conn, tenant_id: str, received_date: date, path: Path,
              connector: str = "local", remote_path: str | None = None, file_name: str | None = None,
              *, source_hint: str | None = None, on_commit: OnCommit | None = None) -> LandResult:
    """Land one local file (downloaded or dropped) for a tenant; idempotent by content.

    Call it only with a complete file (connectors download to a temporary file and check it first).
    ``source_hint`` names the source for the raw path when no parser recognises the content yet;
    ``on_commit(conn, result)`` runs inside the transaction that records the delivery (connector
    bookkeeping that must commit together with the manifest).
    """
    with path.open("rb") as fh:
        head = fh.read(HEAD_BYTES)
    return _land(settings, conn, tenant_id, received_date, sha256_file(path), path.stat().st_size, head,
                 file_name or path.name, connector, remote_path, lambda uri: storage.put_file(settings, path, uri),
                 source_hint, on_commit)


def land_bytes(settings: Settings, conn, tenant_id: str, received_date: date, data: bytes, file_name: str,
               connector: str, remote_path: str | None = None, *, source_hint: str | None = None,
               on_commit: OnCommit | None = None) -> LandResult:
    """Land content built in memory (a webhook batch, an API page) exactly like a file."""
    return _land(settings, conn, tenant_id, received_date, hashlib.sha256(data).hexdigest(), len(data),
                 data[:HEAD_BYTES], file_name, connector, remote_path, lambda uri: storage.put_bytes(settings, data, uri),
                 source_hint, on_commit)


def _manifest_row(conn, tenant_id: str, sha: str):
    return conn.execute("SELECT raw_uri, format FROM raw_file WHERE tenant_id = %s AND sha256 = %s",
                        (tenant_id, sha)).fetchone()


def _land(settings: Settings, conn, tenant_id: str, received_date: date, sha: str, size: int, head: bytes,
          name: str, connector: str, remote_path: str | None, put: Callable[[str], None],
          source_hint: str | None, on_commit: OnCommit | None) -> LandResult:
    existing = _manifest_row(conn, tenant_id, sha)
    if existing is None:
        spec = detect(head)
        source = spec.source if spec else (source_hint or UNKNOWN_FORMAT)
        fmt = spec.format_id if spec else UNKNOWN_FORMAT
        uri = raw_uri_for(settings, tenant_id, source, received_date, sha, name)
        put(uri)
        # The commit point: the primary key (tenant_id, sha256) lets exactly one lander win.
        inserted = conn.execute(
            "INSERT INTO raw_file (tenant_id, sha256, size_bytes, file_name, source, format, parser_version, raw_uri, "
            "received_date, connector, remote_path) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) "
            "ON CONFLICT (tenant_id, sha256) DO NOTHING RETURNING raw_uri",
            (tenant_id, sha, size, name, source, fmt, spec.version if spec else None, uri,
             received_date, connector, remote_path),
        ).fetchone()
        outcome = "landed" if inserted else "already_landed"
        if not inserted:   # another process landed the same content concurrently
            winner = _manifest_row(conn, tenant_id, sha)
            if winner["raw_uri"] != uri:
                storage.delete(settings, uri)   # our copy (other name or date) would be an orphan
            uri, fmt = winner["raw_uri"], winner["format"]
    else:
        uri, fmt, outcome = existing["raw_uri"], existing["format"], "already_landed"
        if not storage.exists(settings, uri):
            # The manifest knows this content but the object is gone (lake restored or wiped):
            # put the same bytes back where the manifest says they are.
            log.warning("raw object %s missing for a landed file; restoring it from %s", uri, name)
            put(uri)
    conn.execute(
        "INSERT INTO raw_file_delivery (tenant_id, sha256, file_name, connector, remote_path, received_date, outcome) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
        (tenant_id, sha, name, connector, remote_path, received_date, outcome),
    )
    result = LandResult(tenant_id, sha, name, uri, fmt, outcome)
    if on_commit is not None:
        on_commit(conn, result)
    conn.commit()
    log.info("%s %s (%s) for tenant %s: %s", outcome, name, fmt, tenant_id, uri)
    return result


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


def redetect_unknown(settings: Settings, conn, tenant_id: str, received_date: date | None = None) -> int:
    """Detect again the format of landed files no parser recognised when they arrived.

    A parser added later (e.g. for webhook event batches) then applies to files already in the raw
    zone; the file stays where it is (``raw_uri`` unchanged). Returns how many files were updated.
    """
    rows = conn.execute(
        "SELECT sha256, raw_uri FROM raw_file WHERE tenant_id = %s AND format = %s "
        "AND (%s::date IS NULL OR received_date = %s::date)",
        (tenant_id, UNKNOWN_FORMAT, received_date, received_date),
    ).fetchall()
    updated = 0
    for row in rows:
        spec = detect(storage.read_head(settings, row["raw_uri"], HEAD_BYTES))
        if spec is None:
            continue
        conn.execute("UPDATE raw_file SET format = %s, parser_version = %s, source = %s "
                     "WHERE tenant_id = %s AND sha256 = %s",
                     (spec.format_id, spec.version, spec.source, tenant_id, row["sha256"]))
        updated += 1
    conn.commit()
    if updated:
        log.info("recognised %d previously unknown file(s) of tenant %s", updated, tenant_id)
    return updated
