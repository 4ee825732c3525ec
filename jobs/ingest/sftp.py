"""SFTP connector: list a remote folder, download matching files, land them, optionally archive them.

Built on the SFTP provider's ``SFTPHook`` (one managed SSH connection per run). A file is downloaded
to a local temporary file and landed only when complete: its size must equal what the server listed,
and a file that changed on the server while we read it (still being uploaded) is left for the next
run. A transfer cut off midway fails the run (Airflow retries it) and lands nothing for that file.
Files already landed with the same path, size and mtime are not downloaded again; the same content
under another name or path lands once anyway (content hash).
"""
from __future__ import annotations

import fnmatch
import logging
import posixpath
import stat
import tempfile
from pathlib import Path

from jobs.ingest.config import Connector
from jobs.ingest.errors import ConnectorAuthError, ConnectorConfigError, ConnectorError
from jobs.ingest.runs import IngestResult
from jobs.ingest.window import RunWindow
from jobs.landing import land_file
from jobs.settings import Settings

log = logging.getLogger(__name__)


def matches(name: str, patterns: list[str]) -> bool:
    return any(fnmatch.fnmatchcase(name, p) for p in patterns)


def _already_seen(db, c: Connector, remote: str, attr) -> bool:
    return db.execute(
        "SELECT 1 FROM remote_file_seen WHERE tenant_id = %s AND connector_id = %s AND remote_path = %s "
        "AND size_bytes = %s AND remote_mtime = %s",
        (c.tenant_id, c.connector_id, remote, attr.st_size, int(attr.st_mtime or 0))).fetchone() is not None


def _remember(c: Connector, remote: str, attr):
    def record(conn, result) -> None:
        conn.execute(
            "INSERT INTO remote_file_seen (tenant_id, connector_id, remote_path, size_bytes, remote_mtime, sha256) "
            "VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
            (c.tenant_id, c.connector_id, remote, attr.st_size, int(attr.st_mtime or 0), result.sha256))
    return record


def ingest_sftp(settings: Settings, db, c: Connector, window: RunWindow,
                result: IngestResult | None = None) -> IngestResult:
    import paramiko
    from airflow.providers.sftp.hooks.sftp import SFTPHook

    cfg = c.config
    # One connection attempt per task try: Airflow's retries (with backoff) are the retry loop.
    hook = SFTPHook(ssh_conn_id=cfg["conn_id"], conn_retry_attempts=1)
    result = result if result is not None else IngestResult()
    try:
        with hook.get_managed_conn() as sftp, tempfile.TemporaryDirectory(prefix="recon-sftp-") as tmp:
            for attr in _listing(hook, c):
                result.files_seen += 1
                _fetch_one(settings, db, c, window, sftp, hook, attr, Path(tmp), result)
    except paramiko.AuthenticationException as exc:
        raise ConnectorAuthError(
            f"{c.label}: the SFTP server refused the credentials of Airflow connection {cfg['conn_id']!r} "
            f"({exc}); fix the connection's login/password or key") from exc
    except (paramiko.SSHException, EOFError, OSError) as exc:
        done = f"{len(result.landed)} landed, {len(result.already_landed)} already landed before the error"
        raise ConnectorError(f"{c.label}: SFTP session with connection {cfg['conn_id']!r} failed: "
                             f"{type(exc).__name__}: {exc} ({done}); the run will be retried") from exc
    return result


def _listing(hook, c: Connector) -> list:
    remote_dir = c.config["remote_path"]
    try:
        entries = hook.list_directory_with_attr(remote_dir)
    except FileNotFoundError as exc:
        raise ConnectorConfigError(f"{c.label}: remote folder {remote_dir!r} does not exist on the server") from exc
    files = [a for a in entries if stat.S_ISREG(a.st_mode or 0) and matches(a.filename, c.config["patterns"])]
    return sorted(files, key=lambda a: a.filename)


def _fetch_one(settings: Settings, db, c: Connector, window: RunWindow, sftp, hook, attr, tmp: Path,
               result: IngestResult) -> None:
    remote = posixpath.join(c.config["remote_path"], attr.filename)
    if _already_seen(db, c, remote, attr):
        _archive(sftp, c, remote, attr.filename, result)
        return
    import paramiko

    local = tmp / "download.part"
    try:
        try:
            hook.retrieve_file(remote, str(local))      # paramiko checks the size it read against the server's
        except (OSError, EOFError, paramiko.SSHException) as exc:
            raise ConnectorError(f"{c.label}: download of {remote} ({attr.st_size} bytes) was cut off: "
                                 f"{type(exc).__name__}: {exc}; nothing was landed for it, the run will be "
                                 "retried") from exc
        after = sftp.stat(remote)
        changed = (local.stat().st_size, after.st_size, int(after.st_mtime or 0)) != (
            attr.st_size, attr.st_size, int(attr.st_mtime or 0))
        if changed:
            result.skipped.append(remote)
            log.warning("%s: %s changed while it was read (%s -> %s bytes): still being written, left for the next "
                        "run", c.label, remote, attr.st_size, after.st_size)
            return
        landed = land_file(settings, db, c.tenant_id, window.received_date, local, connector=c.connector_id,
                           remote_path=remote, file_name=attr.filename, source_hint=c.source,
                           on_commit=_remember(c, remote, attr))
        result.add(landed)
    finally:
        local.unlink(missing_ok=True)
    _archive(sftp, c, remote, attr.filename, result)


def _archive(sftp, c: Connector, remote: str, name: str, result: IngestResult) -> None:
    archive = c.config.get("archive_path")
    if not archive:
        return
    target = posixpath.join(archive, name)
    try:
        sftp.stat(target)
        target = posixpath.join(archive, f"{remote.replace('/', '_').strip('_')}.{int(sftp.stat(remote).st_mtime or 0)}")
    except FileNotFoundError:
        pass
    sftp.rename(remote, target)
    result.notes.append(f"archived {remote} -> {target}")
