"""Card-number masking as the README states it, written without the project's code: a run of 13-19 digits
(single spaces or dashes allowed between digits) that passes the Luhn check is stored as its first 6 and
last 4 digits with ``*`` for each digit between. Only maximal runs are tested, which is all an id field
such as ``PAY-26111600000009`` needs."""
from __future__ import annotations

import re

_RUN = re.compile(r"(?<![0-9])[0-9](?:[ -]?[0-9])*(?![0-9])")


def luhn(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch) * (2 if i % 2 else 1)
        total += d - 9 if d > 9 else d
    return total % 10 == 0


def masked(text: str) -> str:
    def one(m: re.Match) -> str:
        digits = re.sub(r"[ -]", "", m.group())
        if 13 <= len(digits) <= 19 and luhn(digits):
            return digits[:6] + "*" * (len(digits) - 10) + digits[-4:]
        return m.group()
    return _RUN.sub(one, text)


def card_numbers_in(text: str) -> list[str]:
    """The maximal runs of ``text`` that are card numbers: 13-19 digits (single spaces or dashes inside) passing
    Luhn."""
    found = []
    for m in _RUN.finditer(text):
        digits = re.sub(r"[ -]", "", m.group())
        if 13 <= len(digits) <= 19 and luhn(digits):
            found.append(m.group())
    return found
