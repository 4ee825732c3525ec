"""Privacy as Spark column expressions (no Python UDFs): PAN masking and keyed PII hashing.

* Card numbers: every run of 13-19 digits (optionally separated by single spaces or dashes) that
  passes the Luhn check is replaced by its first 6 and last 4 digits with ``*`` in between. This is
  applied to free text and to id fields alike, before anything is written.
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

PAN_CANDIDATE = r"(?<![0-9])[0-9](?:[ -]?[0-9]){12,18}(?![0-9])"

def _digits(c: Column) -> Column:
    return F.regexp_replace(c, "[ -]", "")


MAX_PAN_DIGITS = 19


def luhn_valid(c: Column, digits_only: bool = False) -> Column:
    """True when the digits of ``c`` (13-19 of them, spaces and dashes ignored) pass the Luhn (mod 10)
    check. One native expression per digit position (no higher-order function: those are evaluated
    row by row by the interpreter, and this runs on every id column of every record).
    ``digits_only``: ``c`` is known to hold digits only (no separators to strip)."""
    digits = c if digits_only else _digits(c)
    n = F.length(digits)
    total = F.lit(0)
    for i in range(MAX_PAN_DIGITS):                     # i = position from the right, 0 = check digit
        d = F.substring(digits, -(i + 1), 1).cast("int")
        value = F.when(d * 2 > 9, d * 2 - 9).otherwise(d * 2) if i % 2 == 1 else d
        total = total + F.when(n > i, value).otherwise(0)
    return (n <= MAX_PAN_DIGITS) & (total % 10 == 0)


def mask_pan(c: Column, digits_only: bool = False) -> Column:
    """A card number as first-6, ``*`` for each middle digit, last-4."""
    digits = c if digits_only else _digits(c)
    n = F.length(digits)
    middle = F.regexp_replace(digits.substr(F.lit(7), n - 10), "[0-9]", "*")
    return F.concat(digits.substr(F.lit(1), F.lit(6)), middle, digits.substr(n - 3, F.lit(4)))


def mask_pans(col: Column) -> Column:
    """``col`` with every Luhn-valid 13-19 digit run masked to first-6/last-4."""
    candidates = F.filter(F.regexp_extract_all(col, F.lit(PAN_CANDIDATE), 0), lambda c: luhn_valid(c))
    masked = F.aggregate(candidates, col, lambda acc, c: F.replace(acc, c, mask_pan(c)))
    return (F.when(~col.rlike(PAN_CANDIDATE), col)
            .when(col.rlike(r"^[0-9]{13,19}$"), F.when(luhn_valid(col, True), mask_pan(col, True)).otherwise(col))
            .otherwise(masked))


EMAIL = r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}"


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
