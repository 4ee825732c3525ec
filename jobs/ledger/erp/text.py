"""Field formatting shared by the ERP writers: exact amounts, clean bounded text."""
from __future__ import annotations

import re
from decimal import Decimal

from jobs.ledger.erp.documents import ErpExportError
from jobs.money import exponent, format_minor, to_minor

_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")


def amount(minor: int, currency: str, max_decimals: int | None = None, max_integer_digits: int | None = None) -> str:
    """Minor units as a plain decimal string with the currency's decimals ('-' for negatives)."""
    exp = exponent(currency)
    if max_decimals is not None and exp > max_decimals:
        raise ErpExportError(f"{currency} has {exp} decimals; this ERP layout allows at most {max_decimals}")
    text = format_minor(minor, currency)
    digits = len(text.lstrip("-").split(".")[0])
    if max_integer_digits is not None and digits > max_integer_digits:
        raise ErpExportError(f"amount {text} {currency} has more than {max_integer_digits} digits before the decimal")
    return text


def parse_amount(text: str, currency: str) -> int:
    return to_minor(Decimal(text), currency) if text.strip() else 0


def clean(text: str | None, max_length: int) -> str:
    """One line of text (control characters, tabs and newlines become spaces), cut to ``max_length``."""
    return _CONTROL.sub(" ", text or "").strip()[:max_length]
