"""Posting rules: which accounts every canonical event moves, as *legs* (signed amounts: debit > 0,
credit < 0) whose sum is zero per journal and currency by construction.

PSP records (amounts are the merchant's view in the settlement currency ``S``):
  gross     Dr psp_receivable{psp} a / Cr <contra of the event type> a
            contra: payment, capture -> sales_clearing; refund -> refunds; chargeback, second_chargeback,
            chargeback_reversal -> chargeback_losses; dispute_fee -> dispute_fees; fee -> payment_fees;
            reserve_hold, reserve_release -> psp_reserve{psp}; adjustment, transfer -> suspense
            (a sign flips both sides: a refund's negative amount debits refunds, credits the receivable)
  FX        when the customer paid in another currency P (payments, refunds, chargebacks): the contra
            is booked in P for the presentment amount p, the receivable in S for a, and the conversion
            goes through fx_conversion: Cr fx_conversion c (S), Cr fx_gain_loss a - c (S),
            Dr fx_conversion p (P), where c = p converted at the PSP's rate (``jobs/ledger/fx.py``)
  fees      per component the PSP reports: Dr payment_fees[.component] (dispute_fees for disputes)
            the rate-card amount, Dr unexpected_fees the variance when it is an UNEXPECTED_FEE,
            Cr psp_receivable{psp} the charged amount
  payout    the records of a payout / batch paid out: Dr psp_in_transit{psp} X / Cr psp_receivable{psp} X
            (X = their net; a payout row without member records moves its own amount)
Bank entries (``jobs/ledger/postings.py`` decides which): Dr bank b / Cr psp_in_transit{psp} of the
matched payout (cross-currency through fx_conversion, a difference to suspense), or Cr suspense
until a payout matches it; then a reclassification Dr suspense / Cr psp_in_transit{psp}.
"""
from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from jobs.ledger import chart as A
from jobs.ledger import fx

CONTRA = {
    "payment": A.SALES, "capture": A.SALES, "refund": A.REFUNDS, "chargeback": A.LOSSES,
    "second_chargeback": A.LOSSES, "chargeback_reversal": A.LOSSES, "dispute_fee": A.DISPUTE_FEES,
    "fee": A.FEES, "reserve_hold": A.RESERVE, "reserve_release": A.RESERVE, "adjustment": A.SUSPENSE,
    "transfer": A.SUSPENSE,
}
POSTED_TYPES = tuple(CONTRA) + ("payout",)
FX_TYPES = ("payment", "capture", "refund", "chargeback", "second_chargeback", "chargeback_reversal")
DISPUTE_TYPES = ("chargeback", "second_chargeback", "chargeback_reversal", "dispute_fee")
LEG = "struct<leg_no:int,leg_component:string,account_key:string,leg_amount:bigint,leg_currency:string>"


def leg(no: int, component: str | Column, key: str | Column, amount: Column, currency: Column) -> Column:
    as_col = lambda v: v if isinstance(v, Column) else F.lit(v)  # noqa: E731
    return F.struct(F.lit(no).alias("leg_no"), as_col(component).alias("leg_component"),
                    as_col(key).alias("account_key"), amount.cast("bigint").alias("leg_amount"),
                    currency.alias("leg_currency"))


def explode_legs(df: DataFrame, legs: list[Column]) -> DataFrame:
    """One row per non-zero leg (the legs given may contain nulls for legs that do not apply)."""
    array = F.filter(F.array(*legs).cast(f"array<{LEG}>"), lambda x: x.isNotNull() & (x["leg_amount"] != 0))
    return df.select("*", F.explode(array).alias("_leg")).select("*", "_leg.*").drop("_leg")


def psp_gross_legs(events: DataFrame, max_fx_bps: int) -> DataFrame:
    """``events``: posted PSP records with journal columns; adds the gross and FX legs."""
    a, s = F.col("amount_minor"), F.col("currency")
    p, pc = F.col("presentment_amount_minor"), F.col("presentment_currency")
    contra = F.create_map(*[F.lit(x) for k, v in sorted(CONTRA.items()) for x in (k, v)])[F.col("event_type")]
    is_fx = (F.col("event_type").isin(*FX_TYPES) & p.isNotNull() & pc.isNotNull() & (pc != s))
    minor_rate = F.col("source").isin(*fx.MINOR_PER_MINOR_SOURCES)
    c = fx.booked_conversion(a, p, pc, F.col("fx_rate"), s, minor_rate, max_fx_bps)
    legs = [
        leg(1, "gross", A.RECEIVABLE, a, s),
        F.when(~is_fx, leg(2, "gross", contra, -a, s)),
        F.when(is_fx, leg(2, "fx.conversion", A.FX_CONVERSION, -c, s)),
        F.when(is_fx, leg(3, "fx.difference", A.FX_GAIN_LOSS, -(a - c), s)),
        F.when(is_fx, leg(4, "fx.conversion", A.FX_CONVERSION, p, pc)),
        F.when(is_fx, leg(5, "gross", contra, -p, pc)),
    ]
    return explode_legs(events.filter(F.col("event_type").isin(*CONTRA)), legs)


def psp_fee_legs(events: DataFrame, fee_components: DataFrame) -> DataFrame:
    """Fee legs per (record, component) from the fee checks (``fees.posted_fee_components``)."""
    is_dispute = F.col("event_type").isin(*DISPUTE_TYPES)
    ordinary = F.when(is_dispute, F.lit(A.DISPUTE_FEES)).otherwise(F.concat(F.lit(A.FEES + "."), F.col("component")))
    f, e, s = F.col("charged_minor"), F.col("ordinary_minor"), F.col("currency")
    component = F.concat(F.lit("fee."), F.col("component"))
    legs = [leg(11, component, ordinary, e, s),
            leg(12, F.concat(component, F.lit(".variance")), A.UNEXPECTED_FEES, f - e, s),
            leg(13, component, A.RECEIVABLE, -f, s)]
    joined = events.join(fee_components, "event_id", "inner")
    return explode_legs(joined, legs).drop("charged_minor", "ordinary_minor")


def payout_legs(payouts: DataFrame) -> DataFrame:
    """``payouts``: one row per (payout, currency) with ``payout_minor`` and journal columns."""
    x, s = F.col("payout_minor"), F.col("currency")
    return explode_legs(payouts, [leg(1, "payout", A.IN_TRANSIT, x, s), leg(2, "payout", A.RECEIVABLE, -x, s)])


def bank_legs(bank: DataFrame, max_fx_bps: int) -> DataFrame:
    """``bank``: bank entries to post with ``first_account`` (bank, or suspense for a reclassification),
    ``matched`` and, when matched, the payout's ``po_amount`` / ``po_currency``."""
    b, bc = F.col("amount_minor"), F.col("currency")
    x, xc = F.col("po_amount"), F.col("po_currency")
    matched = F.col("matched")
    same_ccy = matched & (bc == xc)
    cross = matched & (bc != xc)
    rate_ok = F.col("fx_rate").isNotNull() & (F.col("presentment_currency") == xc)
    c = F.when(rate_ok, fx.booked_conversion(b, x, xc, F.col("fx_rate"), bc, F.lit(False), max_fx_bps)).otherwise(b)
    legs = [
        leg(1, F.col("first_component"), F.col("first_account"), b, bc),
        F.when(~matched, leg(2, "bank.unmatched", A.SUSPENSE, -b, bc)),
        F.when(same_ccy, leg(2, "bank.payout", A.IN_TRANSIT, -x, xc)),
        F.when(same_ccy, leg(3, "bank.difference", A.SUSPENSE, -(b - x), bc)),
        F.when(cross, leg(2, "fx.conversion", A.FX_CONVERSION, -c, bc)),
        F.when(cross, leg(3, "fx.difference", A.FX_GAIN_LOSS, -(b - c), bc)),
        F.when(cross, leg(4, "fx.conversion", A.FX_CONVERSION, x, xc)),
        F.when(cross, leg(5, "bank.payout", A.IN_TRANSIT, -x, xc)),
    ]
    return explode_legs(bank, legs)
