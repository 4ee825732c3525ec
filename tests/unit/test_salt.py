"""The PII salt is the same in every run and on every machine: from the environment or AWS Secrets Manager
(moto in server mode here), a random one only in local mode, and a remote mode without a source refuses."""
import socket

import pytest

from jobs.privacy import tenant_salt
from jobs.settings import ConfigurationError, Settings


@pytest.fixture(scope="module")
def secrets_endpoint():
    import os

    from moto.server import ThreadedMotoServer

    for key, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                       "AWS_DEFAULT_REGION": "us-east-1"}.items():
        os.environ.setdefault(key, value)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


def test_each_tenant_salt_comes_from_its_secret_in_every_mode(secrets_endpoint, tmp_path):
    import boto3

    client = boto3.client("secretsmanager", endpoint_url=secrets_endpoint)
    client.create_secret(Name="psp-recon/pii-salt/acme", SecretString="a" * 64)
    client.create_secret(Name="psp-recon/pii-salt/globex", SecretString="b" * 64)
    client.create_secret(Name="psp-recon/pii-salt/short", SecretString="tiny")
    for mode in ("local", "emr_serverless", "emr", "glue"):
        settings = Settings(spark_mode=mode, pii_salt_secret_prefix="psp-recon/pii-salt/",
                            aws_endpoint_url=secrets_endpoint, secrets_dir=tmp_path / mode)
        assert tenant_salt(settings, "acme") == "a" * 64 and tenant_salt(settings, "globex") == "b" * 64
        assert not (tmp_path / mode).exists()                   # no local salt created beside the secret
    settings = Settings(spark_mode="glue", pii_salt_secret_prefix="psp-recon/pii-salt/", aws_endpoint_url=secrets_endpoint)
    with pytest.raises(ConfigurationError, match="'psp-recon/pii-salt/initech': ResourceNotFoundException"):
        tenant_salt(settings, "initech")
    with pytest.raises(ConfigurationError, match="no salt of at least 16 characters"):
        tenant_salt(settings, "short")


def test_a_remote_job_without_a_salt_source_refuses_and_the_environment_wins(tmp_path, monkeypatch):
    settings = Settings(spark_mode="emr_serverless", pii_salt_secret_prefix=None, secrets_dir=tmp_path)
    with pytest.raises(ConfigurationError, match="no PII salt for tenant 'acme'.*RECON_PII_SALT_SECRET_PREFIX"):
        tenant_salt(settings, "acme")
    assert list(tmp_path.iterdir()) == []                        # nothing random created inside a job
    monkeypatch.setenv("RECON_PII_SALT_ACME", "from-the-secrets-backend")
    assert tenant_salt(settings, "acme") == "from-the-secrets-backend"


def test_local_mode_creates_a_random_salt_once_per_tenant(tmp_path):
    settings = Settings(spark_mode="local", pii_salt_secret_prefix=None, secrets_dir=tmp_path)
    first = tenant_salt(settings, "acme")
    assert len(first) == 64 and tenant_salt(settings, "acme") == first != tenant_salt(settings, "globex")
    assert oct((tmp_path / "acme.pii_salt").stat().st_mode & 0o777) == "0o600"
