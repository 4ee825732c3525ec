"""Fee verification: the tenant's PSP rate card against the fees each PSP record charged.

A rate card (``ledger.fees.rate_card`` in the tenant configuration) is an ordered list of rules; the
first rule whose conditions hold for a record prices it:

    - id: adyen.card                       # rule id, recorded on every check
      psp: adyen                           # required
      event_types: [capture]               # required
      payment_method: "^(visa|mc)"         # optional regular expression on the payment method
      cross_currency: false                # optional: presentment currency != settlement currency
      rounding: half_up                    # half_up (default) or half_even: how the PSP rounds
      components:                          # the fee components the PSP reports ("fee" = total only)
        interchange: {percent: "0.3"}
        scheme_fees: {percent: "0.2", fixed_minor: 1}

Expected fee of a component = round(|gross| x percent / 100) + fixed_minor, in minor units of the
settlement currency (Decimal arithmetic). Every component the record charged or the rule lists is
compared; a difference beyond ``ledger.fees.tolerance_minor`` is ``UNEXPECTED_FEE``: an exception, and
the difference is posted to the ``unexpected_fees`` account instead of ``payment_fees``. Records
that charged no fee are not checked (PSPs bill some costs as separate fee rows, which are posted as
fees), and a record no rule covers is ``NO_RULE`` (visible coverage, not an exception).

``gold/fee_checks`` (partitioned by run date) holds the checks of the records posted by the run plus
the fee exceptions still open from earlier runs: an exception stays open until an approved ledger
adjustment names its record (``recon adjustment propose --record``), like ``gold/item_status``.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from jobs.settings import ConfigurationError
from jobs.tenants import TenantConfig

OK, UNEXPECTED_FEE, NO_RULE, CLEARED = "OK", "UNEXPECTED_FEE", "NO_RULE", "CLEARED"
TOTAL = "fee"
ROUNDINGS = ("half_up", "half_even")


@dataclass(frozen=True)
class FeeRule:
    rule_id: str
    psp: str
    event_types: tuple[str, ...]
    components: dict[str, tuple[Decimal, int]]     # component -> (percent, fixed minor)
    payment_method: str | None = None
    cross_currency: bool | None = None
    rounding: str = "half_up"

    def applies(self) -> Column:
        cond = (F.col("psp") == self.psp) & F.col("event_type").isin(*self.event_types)
        if self.payment_method:
            cond &= F.coalesce(F.lower("payment_method").rlike(self.payment_method), F.lit(False))
        if self.cross_currency is not None:
            cross = F.coalesce(F.col("presentment_currency") != F.col("currency"), F.lit(False))
            cond &= cross if self.cross_currency else ~cross
        return cond


@dataclass(frozen=True)
class RateCard:
    version: int
    tolerance_minor: int
    rules: tuple[FeeRule, ...]

    @classmethod
    def from_tenant(cls, cfg: TenantConfig) -> "RateCard":
        fees = cfg.ledger.get("fees") or {}
        rules = tuple(_rule(cfg.tenant_id, i, raw) for i, raw in enumerate(fees.get("rate_card") or []))
        ids = [r.rule_id for r in rules]
        if len(set(ids)) != len(ids):
            raise ConfigurationError(f"tenant {cfg.tenant_id}: ledger.fees.rate_card rule ids must be unique")
        return cls(int(fees.get("rate_card_version", 1)), int(fees.get("tolerance_minor", 0)), rules)


def _rule(tenant: str, index: int, raw: dict) -> FeeRule:
    where = f"tenant {tenant}: ledger.fees.rate_card[{index}]"
    try:
        components = {str(name): (Decimal(str(spec.get("percent", "0"))), int(spec.get("fixed_minor", 0)))
                      for name, spec in (raw["components"] or {}).items()}
        rule = FeeRule(rule_id=str(raw["id"]), psp=str(raw["psp"]), event_types=tuple(raw["event_types"]),
                       components=components, payment_method=raw.get("payment_method"),
                       cross_currency=raw.get("cross_currency"), rounding=str(raw.get("rounding", "half_up")))
    except (KeyError, TypeError, ArithmeticError, ValueError) as exc:
        raise ConfigurationError(f"{where}: {type(exc).__name__}: {exc} (needs id, psp, event_types, components "
                                 "of {percent, fixed_minor})") from None
    if rule.rounding not in ROUNDINGS or not components:
        raise ConfigurationError(f"{where} ({rule.rule_id}): rounding must be one of {ROUNDINGS} and components "
                                 "must not be empty")
    return rule


def _rule_components(card: RateCard) -> tuple[Column, Column, Column]:
    """(rule id, components map, rounding) of the first applicable rule, per record."""
    rule_id = F.lit(None).cast("string")
    comps = F.lit(None).cast("map<string,struct<percent:decimal(12,6),fixed:bigint>>")
    rounding = F.lit(None).cast("string")
    for rule in reversed(card.rules):
        cmap = F.create_map(*[x for name, (pct, fixed) in sorted(rule.components.items()) for x in (
            F.lit(name), F.struct(F.lit(pct).cast("decimal(12,6)").alias("percent"),
                                  F.lit(fixed).cast("bigint").alias("fixed")))])
        applies = rule.applies()
        rule_id = F.when(applies, F.lit(rule.rule_id)).otherwise(rule_id)
        comps = F.when(applies, cmap).otherwise(comps)
        rounding = F.when(applies, F.lit(rule.rounding)).otherwise(rounding)
    return rule_id, comps, rounding


def check(posted_psp: DataFrame, card: RateCard) -> DataFrame:
    """One row per (record, fee component) of the records that charged a fee."""
    rule_id, comps, rounding = _rule_components(card)
    charged = F.when(F.size(F.coalesce("fee_breakdown", F.create_map())) > 0, F.col("fee_breakdown")).otherwise(
        F.create_map(F.lit(TOTAL), F.col("fee_minor")))
    priced = (posted_psp.filter(F.col("fee_minor") != 0)
              .select("*", rule_id.alias("rule_id"), comps.alias("_rule"), rounding.alias("_rounding"),
                      charged.alias("_charged")))
    keys = F.array_distinct(F.concat(F.map_keys("_charged"), F.coalesce(F.map_keys("_rule"), F.array())))
    rows = priced.select("*", F.explode(keys).alias("component"))
    spec = F.col("_rule")[F.col("component")]
    raw = F.abs(F.col("amount_minor")).cast("decimal(38,10)") * spec["percent"] / F.lit(100)
    rounded = F.when(F.col("_rounding") == "half_even", F.bround(raw, 0)).otherwise(F.round(raw, 0))
    expected = F.when(F.col("rule_id").isNull(), F.lit(None).cast("long")).otherwise(
        F.coalesce(rounded.cast("long") + spec["fixed"], F.lit(0).cast("long")))
    charged_c = F.coalesce(F.col("_charged")[F.col("component")], F.lit(0).cast("long"))
    variance = charged_c - expected
    status = (F.when(F.col("rule_id").isNull(), F.lit(NO_RULE))
              .when(F.abs(variance) > card.tolerance_minor, F.lit(UNEXPECTED_FEE)).otherwise(F.lit(OK)))
    detail = F.when(status == UNEXPECTED_FEE, F.format_string(
        "%s %s: charged %d, rate card %s expects %d (variance %d, tolerance %d)", F.col("component"),
        F.col("currency"), charged_c, F.col("rule_id"), expected, variance, F.lit(card.tolerance_minor)))
    return rows.select(
        "event_id", "psp", "event_type", "payment_method", "currency",
        F.abs("amount_minor").alias("base_minor"), "component", charged_c.alias("charged_minor"),
        expected.alias("expected_minor"), variance.alias("variance_minor"),
        F.lit(card.tolerance_minor).alias("tolerance_minor"), "rule_id", status.alias("status"),
        detail.alias("reason_detail"), F.lit(card.version).alias("rate_card_version"), "file_name", "record_ordinal")


def with_carried(today: DataFrame, previous: DataFrame, cleared_event_ids: list[str], run_date: date) -> DataFrame:
    """Today's checks plus the still-open exceptions of the previous run (not cleared, not re-checked).
    An UNEXPECTED_FEE an approved adjustment settled is ``CLEARED`` (a rerun of its date re-checks it)."""
    carried = (previous.filter(F.col("status") == UNEXPECTED_FEE)
               .join(today.select("event_id").distinct(), "event_id", "left_anti"))
    fresh = today.withColumn("first_seen_date", F.lit(run_date))
    if cleared_event_ids:
        carried = carried.filter(~F.col("event_id").isin(cleared_event_ids))
        settled = (F.col("status") == UNEXPECTED_FEE) & F.col("event_id").isin(cleared_event_ids)
        fresh = fresh.withColumn("status", F.when(settled, F.lit(CLEARED)).otherwise(F.col("status")))
    return fresh.unionByName(carried.select(*fresh.columns))


def posted_fee_components(checks: DataFrame) -> DataFrame:
    """Per (record, component): charged, the part to post as an ordinary fee and the variance."""
    flagged = F.col("status") == UNEXPECTED_FEE
    return checks.select(
        "event_id", "component", "charged_minor",
        F.when(flagged, F.col("expected_minor")).otherwise(F.col("charged_minor")).alias("ordinary_minor"))
