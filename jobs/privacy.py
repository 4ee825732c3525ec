"""Privacy in Spark, as column expressions and one JVM function (no Python UDFs): PAN masking and keyed
PII hashing.

* Card numbers: every run of 13-19 digits (optionally separated by single spaces or dashes) that
  passes the Luhn check is replaced by its first 6 and last 4 digits with ``*`` in between. This is
  applied to free text and to id fields alike, before anything is written to the lake.
* Emails and names: ``sha256(salt || ':' || lower(trim(value)))`` with a per-tenant secret salt, so
  the same customer hashes to the same value within a tenant and cannot be joined across tenants.
"""
from __future__ import annotations

import os
import secrets

from pyspark.sql import Column
from pyspark.sql import functions as F

from jobs.settings import ConfigurationError, Settings


def mask_card_numbers(col: Column) -> Column:
    """Every card number in ``col`` masked to first-6/last-4: any 13-19 digit window (single spaces or
    dashes allowed between digits) that starts where a digit group starts, is not followed by a digit
    and passes the Luhn check; so a card number that follows another number after a space
    (``"ref 7 4111 1111 ..."``) or is followed by one (``"4111111111111111 12"``) is found too.
    One JVM function (``jobs/jvm/psp/recon/MaskCardNumbers.java``, registered by ``jobs.spark``): one
    pass over the characters, none for a value with fewer than 13 digits; ``jobs.cards.mask_text``
    is its Python twin for text built on the driver."""
    return F.call_udf("recon_mask_card_numbers", col)


# The local part starts where a run of its characters starts (the lookbehind): the same matches as
# without it, but each run is scanned once; without it a long run with no "@" (a damaged file read
# as one record of megabytes) is scanned again from every position, quadratic: a 1 MB value took hours.
EMAIL = r"(?<![A-Za-z0-9._%+-])[A-Za-z0-9._%+-]++@[A-Za-z0-9.-]+\.[A-Za-z]{2,}"


def redact_emails(col: Column) -> Column:
    """Raw text kept for operators (quarantine) never carries an email address."""
    return F.regexp_replace(col, EMAIL, "[email]")


def hash_pii(col: Column, salt: str) -> Column:
    normalized = F.lower(F.trim(col))
    return F.when(normalized.isNull() | (normalized == ""), F.lit(None)).otherwise(
        F.sha2(F.concat(F.lit(salt), F.lit(":"), normalized), 256)
    )


def tenant_salt(settings: Settings, tenant_id: str) -> str:
    """The tenant's PII salt, the same in every run and on every machine (a salt that changed would hash the
    same customer differently from one day to the next), from the first of:

    1. ``RECON_PII_SALT_<TENANT>`` in the environment (put there by a secrets backend);
    2. AWS Secrets Manager, the secret ``<RECON_PII_SALT_SECRET_PREFIX><tenant>`` (its string value);
    3. in ``local`` mode only (a laptop, CI, a one-machine deployment): a random salt created once under
       ``RECON_SECRETS_DIR`` (``.local/secrets``, never committed).

    On EMR, EMR Serverless or Glue without 1 or 2 it refuses (ConfigurationError): a salt created inside a job's
    container would be a new one for every run."""
    env_key = f"RECON_PII_SALT_{tenant_id.upper()}"
    if os.environ.get(env_key):
        return os.environ[env_key]
    if settings.pii_salt_secret_prefix:
        return _secret_salt(settings.pii_salt_secret_prefix + tenant_id, settings.aws_endpoint_url)
    if settings.spark_mode != "local":
        raise ConfigurationError(
            f"no PII salt for tenant {tenant_id!r}: set RECON_PII_SALT_SECRET_PREFIX (the salt is the AWS Secrets "
            f"Manager secret <prefix>{tenant_id}) or {env_key}; a random salt is created only in local mode, "
            f"not with RECON_SPARK_MODE={settings.spark_mode}")
    path = settings.secrets_dir / f"{tenant_id}.pii_salt"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_hex(32))
        path.chmod(0o600)
    return path.read_text().strip()


def _secret_salt(secret_id: str, endpoint_url: str | None) -> str:
    """A salt from AWS Secrets Manager (read once per process)."""
    from jobs.secrets import secret_string

    salt = secret_string(secret_id, endpoint_url)
    if len(salt) < 16:
        raise ConfigurationError(f"PII salt secret {secret_id!r} holds no salt of at least 16 characters")
    return salt
