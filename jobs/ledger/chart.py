"""The chart of accounts of a tenant: defaults, the tenant's overrides, resolution of account keys.

Postings name accounts by *key* (``psp_receivable``, ``payment_fees``...); the tenant's configuration
(``ledger.accounts``, versioned with ``ledger.chart_version``) gives each key its account, a string
such as ``"1120 PSP receivable {psp}"`` where ``{psp}`` is replaced by the PSP of the posting (one
receivable, in-transit and reserve account per PSP). A key with a suffix (``payment_fees.interchange``)
is an optional sub-account: when the tenant does not define it, its base key's account is used, so a
tenant can split fee components into accounts of their own without changing a posting rule.

Journals carry both the resolved key and the account text: the key drives the ERP account mapping,
the text is what people read.
"""
from __future__ import annotations

from dataclasses import dataclass

from pyspark.sql import Column
from pyspark.sql import functions as F

from jobs.settings import ConfigurationError
from jobs.tenants import TenantConfig

BANK, RECEIVABLE, IN_TRANSIT, RESERVE = "bank", "psp_receivable", "psp_in_transit", "psp_reserve"
SALES, FX_CONVERSION, SUSPENSE, REFUNDS = "sales_clearing", "fx_conversion", "suspense", "refunds"
FEES, LOSSES, DISPUTE_FEES, UNEXPECTED_FEES = "payment_fees", "chargeback_losses", "dispute_fees", "unexpected_fees"
FX_GAIN_LOSS = "fx_gain_loss"

DEFAULT_ACCOUNTS: dict[str, str] = {
    BANK: "1010 Bank",
    RECEIVABLE: "1120 PSP receivable {psp}",
    IN_TRANSIT: "1125 PSP payouts in transit {psp}",
    RESERVE: "1130 PSP reserve {psp}",
    SALES: "1210 Sales clearing",
    FX_CONVERSION: "1290 FX conversion",
    SUSPENSE: "1990 Suspense",
    REFUNDS: "4010 Refunds (contra revenue)",
    FEES: "6110 Payment fees",
    LOSSES: "6120 Chargeback losses",
    DISPUTE_FEES: "6130 Dispute fees",
    UNEXPECTED_FEES: "6140 Unexpected PSP fees",
    FX_GAIN_LOSS: "7910 FX gain/loss",
}
PSP_PLACEHOLDER = "{psp}"


@dataclass(frozen=True)
class Chart:
    tenant_id: str
    version: int
    accounts: dict[str, str]

    @classmethod
    def from_tenant(cls, cfg: TenantConfig) -> "Chart":
        ledger = cfg.ledger
        configured = dict(ledger.get("accounts") or {})
        accounts = {**DEFAULT_ACCOUNTS, **{str(k): str(v) for k, v in configured.items()}}
        for key, text in accounts.items():
            base = key.split(".", 1)[0]
            if base not in DEFAULT_ACCOUNTS:
                raise ConfigurationError(f"tenant {cfg.tenant_id}: ledger.accounts.{key}: unknown account key "
                                         f"{base!r} (known: {', '.join(sorted(DEFAULT_ACCOUNTS))})")
            if not text.strip():
                raise ConfigurationError(f"tenant {cfg.tenant_id}: ledger.accounts.{key} is empty")
        return cls(cfg.tenant_id, int(ledger.get("chart_version", 1)), accounts)

    def key_for(self, key: str) -> str:
        """The key actually used: a sub-account key falls back to its base when not defined."""
        if key in self.accounts:
            return key
        base = key.split(".", 1)[0]
        if base in self.accounts:
            return base
        raise KeyError(f"no account for key {key!r} in the chart of tenant {self.tenant_id}")

    def account(self, key: str, psp: str | None = None) -> str:
        return self.accounts[self.key_for(key)].replace(PSP_PLACEHOLDER, psp or "unknown")

    def resolved_key(self, key: Column) -> Column:
        """Column version of ``key_for`` (unknown keys stay null, which fails the NOT NULL contract)."""
        known = F.create_map(*[F.lit(x) for k in sorted(self.accounts) for x in (k, k)])
        return F.coalesce(known[key], known[F.substring_index(key, ".", 1)])

    def account_text(self, resolved_key: Column, psp: Column) -> Column:
        templates = F.create_map(*[F.lit(x) for k, v in sorted(self.accounts.items()) for x in (k, v)])
        return F.replace(templates[resolved_key], F.lit(PSP_PLACEHOLDER), F.coalesce(psp, F.lit("unknown")))
