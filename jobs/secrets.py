"""Values kept in AWS Secrets Manager: each tenant's PII salt (``jobs.privacy.tenant_salt``) and, for a job on EMR
or Glue, the PostgreSQL connection (``Settings.require_database_url``). Read by the process that needs them, once
per process; never passed in a job's arguments or logged."""
from __future__ import annotations

import json
from functools import lru_cache
from urllib.parse import quote

from jobs.settings import ConfigurationError


@lru_cache(maxsize=None)
def secret_string(secret_id: str, endpoint_url: str | None = None) -> str:
    """The string value of secret ``secret_id`` (ConfigurationError naming the secret and AWS's error code)."""
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        value = boto3.client("secretsmanager", endpoint_url=endpoint_url).get_secret_value(SecretId=secret_id)
    except ClientError as exc:
        raise ConfigurationError(f"secret {secret_id!r}: {exc.response['Error'].get('Code')}: "
                                 f"{exc.response['Error'].get('Message')}") from exc
    except BotoCoreError as exc:
        raise ConfigurationError(f"secret {secret_id!r}: {exc}") from exc
    return (value.get("SecretString") or "").strip()


def database_url_from_secret(secret_id: str, endpoint_url: str | None = None) -> str:
    """A PostgreSQL URL from a secret holding either the URL itself or the JSON RDS writes for a database
    (``host``, ``port``, ``username``, ``password``, ``dbname``; ``sslmode`` optional, ``require`` by default)."""
    value = secret_string(secret_id, endpoint_url)
    if value.startswith(("postgresql://", "postgres://")):
        return value
    try:
        fields = json.loads(value)
    except ValueError:
        fields = None
    if not isinstance(fields, dict) or not all(fields.get(k) for k in ("host", "username", "password")):
        raise ConfigurationError(f"database secret {secret_id!r} holds neither a postgresql:// URL nor a JSON object "
                                 "with host, username and password (port, dbname and sslmode optional)")
    user, password = quote(str(fields["username"]), safe=""), quote(str(fields["password"]), safe="")
    dbname = quote(str(fields.get("dbname") or "postgres"), safe="")
    return (f"postgresql://{user}:{password}@{fields['host']}:{int(fields.get('port') or 5432)}/{dbname}"
            f"?sslmode={fields.get('sslmode') or 'require'}")
