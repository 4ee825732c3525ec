"""Matching rules as configuration: a tenant's rule set (versioned) turned into typed parameters."""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from jobs.settings import ConfigurationError
from jobs.tenants import TenantConfig

BOOK_PSP = "book_psp"
PAYOUT_BANK = "payout_bank"
RELATIONS = (BOOK_PSP, PAYOUT_BANK)
# Not a matching relation: PSP notifications (webhook events) waiting for their settlement row.
PSP_SETTLEMENT = "psp_settlement"

# Reason codes.
MISSING_IN_PSP = "MISSING_IN_PSP"
MISSING_IN_BOOK = "MISSING_IN_BOOK"
MISSING_IN_BANK = "MISSING_IN_BANK"
AMOUNT_MISMATCH = "AMOUNT_MISMATCH"
CURRENCY_MISMATCH = "CURRENCY_MISMATCH"
DUPLICATE = "DUPLICATE"
AMBIGUOUS = "AMBIGUOUS"
LATE_SETTLEMENT = "LATE_SETTLEMENT"
PAYOUT_MISMATCH = "PAYOUT_MISMATCH"
UNEXPECTED_FEE = "UNEXPECTED_FEE"

DEFAULT_PREFIXES = ("ORDERNUMBER", "ORDERNO", "ORDER", "ORDNR", "REF", "NO")

# References found in free text (``matching.text_references``). An extractor is a regular expression in
# Python syntax whose named group ``(?P<ref>...)`` is the reference; digits may be masked (a 13-19 digit
# run that passes Luhn is stored as first-6 ``*`` last-4 on every side). The defaults need a keyword
# (order, invoice) or the ORD- prefix, so a masked card number, a date, an amount or an id that merely
# holds digits is not taken for an order.
_DIGITS = r"(?P<ref>\d[\d*]{2,}\d)(?![\d*]|[-/.]\d)"
DEFAULT_EXTRACTORS = (
    r"(?i)\border\s*(?:no\.?|nr\.?|number)?\s*[#:]?\s*" + _DIGITS,
    r"(?i)\binvoice\s*(?:no\.?|nr\.?|number)?\s*[#:]?\s*(?:INV-?)?(?P<ref>\d[\d*]{2,}\d)"
    r"(?:\s*/\s*(?:19|20)\d\d)?(?![\d*]|[-/.]\d)",
    r"(?i)(?<![A-Z0-9])(?P<ref>ORD-?\d[\d*]{2,}\d)(?![\d*]|[-/.]\d)",
)
# Stripped from the start of both references (as many as there are, then leading zeros) when one of them
# was found in free text, in addition to ``reference_prefixes``.
DEFAULT_TEXT_PREFIXES = ("ORD", "INVOICE", "INV")
REF_GROUP = "ref"
_JAVA_GROUP_NAME = re.compile(r"[A-Za-z][A-Za-z0-9]*")


@dataclass(frozen=True)
class Extractor:
    """One configured reference extractor: the pattern as written (Python syntax, checked with ``re``),
    the same pattern for Java's regex engine (which Spark's ``regexp_extract_all`` runs: ``(?P<name>``
    becomes ``(?<name>``, ``(?P=name)`` becomes ``\\k<name>``) and the number of the ``ref`` group, which
    both engines count alike (capturing groups by their opening parenthesis)."""
    pattern: str
    java_pattern: str
    group: int

    @classmethod
    def parse(cls, pattern: object, where: str) -> "Extractor":
        if not isinstance(pattern, str) or not pattern.strip():
            raise ConfigurationError(f"{where}: expected a regular expression, got {pattern!r}")
        try:
            compiled = re.compile(pattern)
        except re.error as exc:
            raise ConfigurationError(f"{where}: {pattern!r} does not compile: {exc}") from None
        if REF_GROUP not in compiled.groupindex:
            raise ConfigurationError(f"{where}: {pattern!r} has no named group (?P<{REF_GROUP}>...) "
                                     "marking the reference")
        odd = sorted(n for n in compiled.groupindex if not _JAVA_GROUP_NAME.fullmatch(n))
        if odd or re.search(r"(?<!\\)\(\?\(", pattern):
            raise ConfigurationError(f"{where}: {pattern!r} uses what Spark's Java regular expressions lack "
                                     "(group names of letters and digits only, no conditional (?(...)...))")
        unescaped = r"(?<!\\)((?:\\\\)*)"          # an even number of backslashes before the construct
        java = re.sub(unescaped + r"\(\?P<", r"\1(?<", pattern)
        java = re.sub(unescaped + r"\(\?P=(\w+)\)", r"\1\\k<\2>", java)
        return cls(pattern, java, compiled.groupindex[REF_GROUP])


def text_references(cfg: TenantConfig) -> tuple[tuple[Extractor, ...], tuple[str, ...]]:
    """(extractors, prefixes) of ``matching.text_references``, validated; the defaults where unset.
    ``extractors: []`` turns references in free text off."""
    conf = cfg.matching.get("text_references") or {}
    where = f"tenant {cfg.tenant_id}: matching.text_references"
    if not isinstance(conf, dict):
        raise ConfigurationError(f"{where}: expected a mapping with extractors and prefixes")
    patterns = conf.get("extractors", DEFAULT_EXTRACTORS)
    prefixes = conf.get("prefixes", DEFAULT_TEXT_PREFIXES)
    if not isinstance(patterns, (list, tuple)):
        raise ConfigurationError(f"{where}.extractors: expected a list of regular expressions")
    if not isinstance(prefixes, (list, tuple)) or not all(re.fullmatch(r"[A-Za-z0-9]+", str(p)) for p in prefixes):
        raise ConfigurationError(f"{where}.prefixes: expected a list of letters-and-digits prefixes, got {prefixes!r}")
    extractors = tuple(Extractor.parse(p, f"{where}.extractors[{i}]") for i, p in enumerate(patterns))
    return extractors, tuple(str(p).upper() for p in prefixes)


@dataclass(frozen=True)
class MatchRules:
    rule_set_id: str
    version: int
    levels: tuple[int, ...]
    tolerance_abs_minor: int
    tolerance_bps: int
    date_window_days: int
    payout_window_days: int
    reference_prefixes: tuple[str, ...]
    ageing_book_psp_days: int
    ageing_payout_days: int
    reference_less: bool = True
    reference_less_window_minutes: int = 60
    notification_formats: tuple[str, ...] = ()      # formats that announce activity, not settlement
    settlement_days: dict[str, int] = field(default_factory=dict)
    extractors: tuple[Extractor, ...] = ()          # references in free text (L2 text_reference)
    text_prefixes: tuple[str, ...] = DEFAULT_TEXT_PREFIXES

    @property
    def core_prefixes(self) -> tuple[str, ...]:
        """What ``refs.ref_core`` strips: the reference prefixes and those of references in free text."""
        return tuple(dict.fromkeys(self.reference_prefixes + self.text_prefixes))

    def rule_id(self, level: int, name: str) -> str:
        return f"{self.rule_set_id}.L{level}.{name}"

    @classmethod
    def from_tenant(cls, cfg: TenantConfig) -> "MatchRules":
        m, a = cfg.matching, cfg.ageing
        tol = m.get("tolerance", {})
        extractors, text_prefixes = text_references(cfg)
        return cls(
            rule_set_id=str(m.get("rule_set_id", "default")),
            version=int(m.get("rule_version", 1)),
            levels=tuple(int(x) for x in m.get("levels", [1, 2, 3, 4])),
            tolerance_abs_minor=int(tol.get("absolute_minor", 0)),
            tolerance_bps=int(tol.get("basis_points", 0)),
            date_window_days=int(m.get("date_window_days", 5)),
            payout_window_days=int(m.get("payout_value_date_window_days", 3)),
            reference_prefixes=tuple(str(p).upper() for p in m.get("reference_prefixes", DEFAULT_PREFIXES)),
            ageing_book_psp_days=int(a.get("book_psp_business_days", 3)),
            ageing_payout_days=int(a.get("payout_bank_business_days", 2)),
            settlement_days={psp: cfg.settlement_days(psp) for psp in cfg.raw.get("psps", {})},
            reference_less=bool(m.get("reference_less", {}).get("enabled", True)),
            reference_less_window_minutes=int(m.get("reference_less", {}).get("window_minutes", 60)),
            notification_formats=tuple(f for p in cfg.raw.get("psps", {}).values() if isinstance(p, dict)
                                       for f in p.get("notification_formats", [])),
            extractors=extractors,
            text_prefixes=text_prefixes,
        )
