"""Schema drift: a header compared with what a parser knows, before any value is read.

A missing required column rejects the file whole (``SCHEMA_DRIFT``) rather than shifting values into
the wrong fields; columns the parser does not know are reported in the file's stats (alert-worthy)
and ignored.
"""
from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class HeaderCheck:
    missing_required: tuple[str, ...]
    unknown: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.missing_required

    def describe(self) -> str | None:
        parts = []
        if self.missing_required:
            parts.append("missing required columns: " + ", ".join(self.missing_required))
        if self.unknown:
            parts.append("unknown columns ignored: " + ", ".join(self.unknown))
        return "; ".join(parts) or None


def check_header(header: list[str], required: list[tuple[str, ...]], known: set[str],
                 known_patterns: tuple[str, ...] = ()) -> HeaderCheck:
    """``required``: groups of alternatives (any one of a group satisfies it)."""
    present = set(header)
    missing = tuple("|".join(group) if len(group) <= 4 else f"{group[0]} (or a variant)"
                    for group in required if not present & set(group))
    unknown = tuple(h for h in header if h and h not in known
                    and not any(re.fullmatch(p, h) for p in known_patterns))
    return HeaderCheck(missing, unknown)
