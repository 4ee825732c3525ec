"""IMAP connector against a real IMAP server on 127.0.0.1 (mail-devel / pymap), through ImapHook."""
from __future__ import annotations

import imaplib

import pytest

from jobs import storage
from jobs.ingest.errors import ConnectorAuthError
from jobs.ingest.tasks import run_connector

from conftest import DATA
from .conftest import MAIL_PASSWORD, MAIL_USER

pytestmark = pytest.mark.postgres
CAMT = DATA / "slice" / "camt053_2026-11-20.xml"
BOOK = DATA / "slice" / "book_payments_2026-11-19.csv"


def flags_of_subject(mail_server, subject: str, folder: str = "INBOX") -> list[bytes]:
    client = imaplib.IMAP4("127.0.0.1", mail_server.imap_port)
    client.login(MAIL_USER, MAIL_PASSWORD)
    client.select(folder)
    _, data = client.uid("SEARCH", None, f'(SUBJECT "{subject}")')
    flags = [client.uid("FETCH", uid, "(FLAGS)")[1][0] for uid in data[0].split()]
    client.logout()
    return flags


def test_attachments_land_once_and_mail_is_marked_processed(settings, db, add_connector, mail_server, window,
                                                            tenant_id):
    subject = f"Statement {tenant_id}"
    mail_server.send("statements@bank.test", subject, {CAMT.name: CAMT.read_bytes(), "terms.pdf": b"%PDF-1.4"})
    mail_server.send("statements@bank.test", f"{subject} (resent)", {"statement_copy.xml": CAMT.read_bytes()})
    mail_server.send("someone@else.test", subject, {BOOK.name: BOOK.read_bytes()})       # other sender: ignored
    c = add_connector("bank-mail", "imap", source="bank", conn_id="recon_imap", sender="statements@bank.test",
                      subject=subject, attachment_patterns=["*.xml"])

    summary = run_connector(c.to_dict(), window, settings=settings)

    assert (summary["landed"], summary["already_landed"]) == (1, 1)        # the resent copy is the same content
    (row,) = db.execute("SELECT file_name, format, source, raw_uri, connector, remote_path FROM raw_file "
                        "WHERE tenant_id = %s", (tenant_id,)).fetchall()
    assert (row["format"], row["source"], row["connector"]) == ("bank.camt053", "bank", "bank-mail")
    assert row["remote_path"].startswith("INBOX/<") and row["remote_path"].endswith(f"/{row['file_name']}")
    assert storage.read_bytes(settings, row["raw_uri"]) == CAMT.read_bytes()
    processed = flags_of_subject(mail_server, subject)
    assert len(processed) == 3 and sum(b"\\Seen" in f for f in processed) == 2        # the other sender's: unseen

    assert run_connector(c.to_dict(), window, settings=settings)["files_seen"] == 0     # nothing unseen is left


def test_processed_mail_moves_to_a_folder(settings, db, add_connector, mail_server, window, tenant_id):
    subject = f"Book export {tenant_id}"
    mail_server.send("erp@merchant.test", subject, {BOOK.name: BOOK.read_bytes()})
    c = add_connector("book-mail", "imap", source="book", conn_id="recon_imap", subject=subject,
                      processed_folder=f"Processed-{tenant_id}")
    assert run_connector(c.to_dict(), window, settings=settings)["landed"] == 1
    assert flags_of_subject(mail_server, subject) == []
    assert len(flags_of_subject(mail_server, subject, folder=f"Processed-{tenant_id}")) == 1


def test_wrong_password_is_a_clear_permanent_error(settings, add_connector, window):
    c = add_connector("bad-mail", "imap", source="bank", conn_id="recon_imap_wrong")
    with pytest.raises(ConnectorAuthError, match="the IMAP server refused the login of Airflow connection "
                                                 "'recon_imap_wrong'"):
        run_connector(c.to_dict(), window, settings=settings)
