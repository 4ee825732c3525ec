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
from pathlib import Path

from pyspark.sql import Column
from pyspark.sql import functions as F

from jobs.settings import LOCAL_DIR

def mask_card_numbers(col: Column) -> Column:
    """Every card number in ``col`` masked to first-6/last-4: any 13-19 digit window (single spaces or
    dashes allowed between digits) that starts where a digit group starts, is not followed by a digit
    and passes the Luhn check; so a card number that follows another number after a space
    (``"ref 7 4111 1111 ..."``) or is followed by one (``"4111111111111111 12"``) is found too.
    One JVM function (``jobs/jvm/psp/recon/MaskCardNumbers.java``, registered by ``jobs.spark``): one
    pass over the characters, none for a value with fewer than 13 digits; ``jobs.formats.common.mask_text``
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


def tenant_salt(tenant_id: str) -> str:
    """The tenant's PII salt: ``RECON_PII_SALT_<TENANT>`` from the secrets backend / environment;
    on a laptop, a random salt created once under ``.local/secrets`` (never committed)."""
    env_key = f"RECON_PII_SALT_{tenant_id.upper()}"
    if os.environ.get(env_key):
        return os.environ[env_key]
    path = Path(os.environ.get("RECON_SECRETS_DIR", LOCAL_DIR / "secrets")) / f"{tenant_id}.pii_salt"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_hex(32))
        path.chmod(0o600)
    return path.read_text().strip()
