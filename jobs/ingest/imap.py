"""IMAP connector: settlement files sent as e-mail attachments.

Built on the IMAP provider's ``ImapHook`` (login from the Airflow connection) and its ``MailPart``
attachment helper. Searches the folder for mail by sender and subject (unseen only, by default),
reads each message without marking it (``BODY.PEEK[]``), lands every attachment whose name matches,
and only then marks the message processed: moved to ``processed_folder`` when configured, else
flagged ``\\Seen``. A crash between landing and marking re-reads the message next run, and its
attachments are recognised as already landed (content hash): nothing is lost, nothing lands twice.
Use a mailbox dedicated to the PSP's reports: a person reading a message there marks it seen.
"""
from __future__ import annotations

import email
import fnmatch
import imaplib
import logging
from email import policy

from jobs.ingest.config import Connector
from jobs.ingest.errors import ConnectorAuthError, ConnectorConfigError, ConnectorError
from jobs.ingest.runs import IngestResult
from jobs.ingest.window import RunWindow
from jobs.landing import land_bytes
from jobs.settings import Settings

log = logging.getLogger(__name__)


def _quoted(value: str) -> str:
    if not value.isascii():
        raise ConnectorConfigError(f"IMAP search values must be ASCII, got {value!r}")
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def search_criteria(cfg: dict) -> str:
    parts = ["UNSEEN"] if cfg["unseen_only"] else []
    if cfg.get("sender"):
        parts.append(f"FROM {_quoted(cfg['sender'])}")
    if cfg.get("subject"):
        parts.append(f"SUBJECT {_quoted(cfg['subject'])}")
    return "(" + " ".join(parts or ["ALL"]) + ")"


def _ok(typ: str, data, what: str, c: Connector) -> None:
    if typ != "OK":
        raise ConnectorError(f"{c.label}: IMAP {what} failed: {data!r}")


def ingest_imap(settings: Settings, db, c: Connector, window: RunWindow,
                result: IngestResult | None = None) -> IngestResult:
    from airflow.providers.imap.hooks.imap import ImapHook

    cfg = c.config
    hook = ImapHook(imap_conn_id=cfg["conn_id"])
    try:
        hook.get_conn()
    except imaplib.IMAP4.error as exc:
        raise ConnectorAuthError(f"{c.label}: the IMAP server refused the login of Airflow connection "
                                 f"{cfg['conn_id']!r} ({exc}); fix the connection's login/password") from exc
    except OSError as exc:
        raise ConnectorError(f"{c.label}: cannot reach the IMAP server of connection {cfg['conn_id']!r}: {exc}") from exc
    result = result if result is not None else IngestResult()
    client = hook.mail_client
    try:
        typ, data = client.select(_mailbox(cfg["folder"]))
        if typ != "OK":
            raise ConnectorConfigError(f"{c.label}: IMAP folder {cfg['folder']!r} cannot be opened: {data!r}")
        if cfg.get("processed_folder"):
            client.create(_mailbox(cfg["processed_folder"]))   # NO when it exists already: fine
        typ, data = client.uid("SEARCH", None, search_criteria(cfg))
        _ok(typ, data, "search", c)
        uids = (data[0] or b"").split()[: cfg["max_mails"]]
        for uid in uids:
            result.files_seen += _process_message(settings, db, c, window, client, uid.decode(), result)
    except (imaplib.IMAP4.abort, OSError) as exc:
        raise ConnectorError(f"{c.label}: IMAP session failed: {exc} ({len(result.landed)} landed before the error); "
                             "the run will be retried") from exc
    finally:
        try:
            client.logout()
        except (imaplib.IMAP4.error, OSError):
            pass
    return result


def _mailbox(name: str) -> str:
    return _quoted(name) if " " in name else name


def _process_message(settings: Settings, db, c: Connector, window: RunWindow, client, uid: str,
                     result: IngestResult) -> int:
    from airflow.providers.imap.hooks.imap import MailPart

    typ, data = client.uid("FETCH", uid, "(BODY.PEEK[])")
    _ok(typ, data, f"fetch of message uid {uid}", c)
    raw = next((item[1] for item in data if isinstance(item, tuple)), None)
    if raw is None:
        raise ConnectorError(f"{c.label}: IMAP server returned no body for message uid {uid}")
    message = email.message_from_bytes(raw, policy=policy.compat32)
    message_id = (message.get("Message-ID") or f"uid-{uid}").strip()
    found = 0
    for part in message.walk():
        mail_part = MailPart(part)
        if not mail_part.is_attachment():
            continue
        name, payload = mail_part.get_file()
        if not name or payload is None or not any(fnmatch.fnmatchcase(name, p) for p in c.config["attachment_patterns"]):
            continue
        found += 1
        remote = f"{c.config['folder']}/{message_id}/{name}"
        result.add(land_bytes(settings, db, c.tenant_id, window.received_date, payload, name, c.connector_id,
                              remote, source_hint=c.source))
    if not found:
        result.notes.append(f"message {message_id} (uid {uid}) had no attachment matching "
                            f"{c.config['attachment_patterns']}; marked processed")
    _mark_processed(client, c, uid)
    return found


def _mark_processed(client, c: Connector, uid: str) -> None:
    target = c.config.get("processed_folder")
    if not target:
        typ, data = client.uid("STORE", uid, "+FLAGS", "(\\Seen)")
        _ok(typ, data, f"flagging message uid {uid}", c)
        return
    capabilities = getattr(client, "capabilities", ())
    if "MOVE" in capabilities:
        typ, data = client.uid("MOVE", uid, _mailbox(target))
        _ok(typ, data, f"moving message uid {uid} to {target}", c)
        return
    typ, data = client.uid("COPY", uid, _mailbox(target))
    _ok(typ, data, f"copying message uid {uid} to {target}", c)
    client.uid("STORE", uid, "+FLAGS", "(\\Deleted \\Seen)")
    client.expunge()
