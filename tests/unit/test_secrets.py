"""Secrets: the PII salt is the same in every run and on every machine, from the environment or AWS Secrets Manager
(moto in server mode here, the session's), a random one only in local mode, and a remote mode without a source
refuses; a remote job's database URL comes from its secret (a URL or RDS's JSON)."""
import pytest

from jobs.privacy import tenant_salt
from jobs.settings import ConfigurationError, Settings


def test_each_tenant_salt_comes_from_its_secret_in_every_mode(aws_endpoint, tmp_path):
    import boto3

    client = boto3.client("secretsmanager", endpoint_url=aws_endpoint)
    client.create_secret(Name="psp-recon/pii-salt/acme", SecretString="a" * 64)
    client.create_secret(Name="psp-recon/pii-salt/globex", SecretString="b" * 64)
    client.create_secret(Name="psp-recon/pii-salt/short", SecretString="tiny")
    for mode in ("local", "emr_serverless", "emr", "glue"):
        settings = Settings(spark_mode=mode, pii_salt_secret_prefix="psp-recon/pii-salt/",
                            aws_endpoint_url=aws_endpoint, secrets_dir=tmp_path / mode)
        assert tenant_salt(settings, "acme") == "a" * 64 and tenant_salt(settings, "globex") == "b" * 64
        assert not (tmp_path / mode).exists()                   # no local salt created beside the secret
    settings = Settings(spark_mode="glue", pii_salt_secret_prefix="psp-recon/pii-salt/", aws_endpoint_url=aws_endpoint)
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


def test_a_remote_job_reads_its_database_url_from_a_secret(aws_endpoint):
    import boto3

    client = boto3.client("secretsmanager", endpoint_url=aws_endpoint)
    client.create_secret(Name="psp-recon/db-url", SecretString="postgresql://job:pw@db.internal:5432/recon")
    client.create_secret(Name="psp-recon/db-rds", SecretString='{"engine": "postgres", "host": "db.internal", '
                         '"port": 5433, "username": "job", "password": "p@ss/word", "dbname": "recon"}')
    client.create_secret(Name="psp-recon/db-bad", SecretString='{"host": "db.internal"}')
    settings = Settings(spark_mode="emr", database_url=None, aws_endpoint_url=aws_endpoint)
    assert settings.with_(database_secret="psp-recon/db-url").require_database_url() == \
        "postgresql://job:pw@db.internal:5432/recon"
    assert settings.with_(database_secret="psp-recon/db-rds").require_database_url() == \
        "postgresql://job:p%40ss%2Fword@db.internal:5433/recon?sslmode=require"
    with pytest.raises(ConfigurationError, match="'psp-recon/db-bad' holds neither a postgresql:// URL nor"):
        settings.with_(database_secret="psp-recon/db-bad").require_database_url()
    with pytest.raises(ConfigurationError, match="'psp-recon/db-none': ResourceNotFoundException"):
        settings.with_(database_secret="psp-recon/db-none").require_database_url()
    # the worker's own URL wins; without either, the message says what to set
    assert settings.with_(database_url="postgresql://w@h/d", database_secret="psp-recon/db-url").require_database_url() \
        == "postgresql://w@h/d"
    with pytest.raises(ConfigurationError, match="set RECON_DATABASE_URL \\(or RECON_DATABASE_SECRET\\)"):
        settings.with_(database_secret=None).require_database_url()
