"""Fixtures for the ingestion tests: real servers on 127.0.0.1 (SFTP, IMAP/SMTP, a PSP list API,
moto's S3), the Airflow connections that point at them (``AIRFLOW_CONN_*``), and helpers to record a
tenant and its connectors in the session database.

The servers run for the whole session; each test uses its own tenant, remote folder and mail
subject, so tests do not see each other's data.
"""
from __future__ import annotations

import json
import os
import secrets
from datetime import datetime, timezone
from pathlib import Path

import pytest

from .servers import FakePsp, MailServer, SftpServer

SFTP_USER, SFTP_PASSWORD = "psp", "sftp-pass"
MAIL_USER, MAIL_PASSWORD = "reports@recon.test", "imap-pass"
API_KEY = "sk_test_recon"
PAGERDUTY_KEY = "R0UTINGKEY0000000000000000000000"
ALERT_INBOX = MAIL_USER                        # the mail server's one mailbox
BUCKET = "recon-lake"
WHSEC = "whsec_test_secret"
ADYEN_HMAC_HEX = "44782DEF547AAA06C910C43932B1EB0C71FC68D9D0C057550C48EC2ACF6BA056"
DAY = datetime(2026, 11, 20, tzinfo=timezone.utc).date()


def conn_env(conn_id: str, **fields) -> tuple[str, str]:
    return f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(fields)


@pytest.fixture(scope="session")
def sftp_server(tmp_path_factory):
    root = tmp_path_factory.mktemp("sftp-root")
    server = SftpServer(root, {SFTP_USER: SFTP_PASSWORD})
    yield server
    server.stop()


@pytest.fixture(scope="session")
def mail_server():
    server = MailServer(MAIL_USER, MAIL_PASSWORD)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def psp_api():
    server = FakePsp(API_KEY)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def s3_endpoint(aws_endpoint):
    """moto's S3 in server mode (a real HTTP endpoint) with the lake bucket."""
    import boto3

    boto3.client("s3", endpoint_url=aws_endpoint).create_bucket(Bucket=BUCKET)
    return aws_endpoint


@pytest.fixture(scope="session")
def connections(sftp_server, mail_server, psp_api, s3_endpoint) -> dict[str, str]:
    """Airflow connections for every server, as environment variables (the secrets stay out of the DB)."""
    sftp_extra = {"host_key": sftp_server.public_host_key, "look_for_keys": "false"}
    env = dict([
        conn_env("recon_sftp", conn_type="sftp", host="127.0.0.1", port=sftp_server.port, login=SFTP_USER,
                 password=SFTP_PASSWORD, extra=sftp_extra),
        conn_env("recon_sftp_wrong", conn_type="sftp", host="127.0.0.1", port=sftp_server.port, login=SFTP_USER,
                 password="not-the-password", extra=sftp_extra),
        conn_env("recon_imap", conn_type="imap", host="127.0.0.1", port=mail_server.imap_port, login=MAIL_USER,
                 password=MAIL_PASSWORD, extra={"use_ssl": False}),
        conn_env("recon_imap_wrong", conn_type="imap", host="127.0.0.1", port=mail_server.imap_port, login=MAIL_USER,
                 password="nope", extra={"use_ssl": False}),
        conn_env("recon_psp_api", conn_type="http", host=f"http://127.0.0.1:{psp_api.port}", login=API_KEY),
        conn_env("recon_psp_api_wrong", conn_type="http", host=f"http://127.0.0.1:{psp_api.port}", login="sk_bad"),
        conn_env("recon_s3", conn_type="aws", login="testing", password="testing",
                 extra={"endpoint_url": s3_endpoint, "region_name": "us-east-1"}),
        conn_env("recon_alert_slack", conn_type="slackwebhook", host=f"http://127.0.0.1:{psp_api.port}",
                 password="hooks/T000/B000/alerts"),
        conn_env("recon_alert_pagerduty", conn_type="pagerduty_events", host=f"http://127.0.0.1:{psp_api.port}",
                 password=PAGERDUTY_KEY),
        conn_env("recon_alert_email", conn_type="smtp", host="127.0.0.1", port=mail_server.smtp_port,
                 extra={"to": ALERT_INBOX, "from_email": "psp-recon@recon.test", "disable_ssl": True,
                        "disable_tls": True}),
        conn_env("recon_sns", conn_type="aws", login="testing", password="testing",
                 extra={"endpoint_url": s3_endpoint, "region_name": "us-east-1",
                        "sns_topic_arn": "arn:aws:sns:us-east-1:123456789012:recon-alerts"}),
        conn_env("recon_stripe_whsec", conn_type="generic", password=WHSEC),
        conn_env("recon_adyen_hmac", conn_type="generic", password=ADYEN_HMAC_HEX),
    ])
    os.environ.update(env)
    return env


@pytest.fixture(scope="session")
def receiver(migrated_db, connections, tmp_path_factory):
    """``recon webhooks serve`` on a free port, for the whole session."""
    from .webhook_client import Receiver

    process = Receiver(migrated_db, tmp_path_factory.mktemp("receiver") / "receiver.log")
    yield process
    process.kill()


@pytest.fixture
def window():
    from jobs.ingest.window import RunWindow

    start = datetime(2026, 11, 20, 10, tzinfo=timezone.utc)
    return RunWindow(start, start.replace(hour=11), f"test__{secrets.token_hex(3)}")


@pytest.fixture
def recorded_tenant(settings, tenant_id, connections):
    """The test's tenant recorded in PostgreSQL (the FK of connectors and the manifest)."""
    from jobs.pipeline import prepare

    prepare(settings, tenant_id)
    return tenant_id


@pytest.fixture
def db(settings, tenant_id):
    from jobs.store.db import connect

    with connect(settings, tenant_id) as conn:
        yield conn


@pytest.fixture
def add_connector(db, recorded_tenant):
    from jobs.ingest.config import add_connector as add

    def _add(connector_id: str, kind: str, **config):
        return add(db, recorded_tenant, connector_id, kind, config, actor="pytest")
    return _add


@pytest.fixture
def sftp_folder(sftp_server, tenant_id) -> tuple[Path, str]:
    """A folder of the test's own on the SFTP server: (local path, remote path)."""
    local = sftp_server.root / tenant_id
    (local / "archive").mkdir(parents=True)
    return local, f"/{tenant_id}"


@pytest.fixture
def s3_settings(settings, s3_endpoint, tenant_id):
    return settings.with_(lake=f"s3://{BUCKET}/lake-{tenant_id}", s3_endpoint_url=s3_endpoint)
