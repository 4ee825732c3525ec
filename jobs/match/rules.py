"""Matching rules as configuration: a tenant's rule set (versioned) turned into typed parameters."""
from __future__ import annotations

from dataclasses import dataclass, field

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

    def rule_id(self, level: int, name: str) -> str:
        return f"{self.rule_set_id}.L{level}.{name}"

    @classmethod
    def from_tenant(cls, cfg: TenantConfig) -> "MatchRules":
        m, a = cfg.matching, cfg.ageing
        tol = m.get("tolerance", {})
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
        )
