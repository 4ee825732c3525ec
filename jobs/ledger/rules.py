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

from pyspark.sql import Column
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


def legs(*candidates: Column) -> Column:
    """A journal's legs as one array, built from its row: the non-zero ones of ``candidates`` (null for a
    leg that does not apply)."""
    return F.filter(F.array(*candidates).cast(f"array<{LEG}>"), lambda x: x.isNotNull() & (x["leg_amount"] != 0))


FEES = "array<struct<component:string,charged_minor:bigint,ordinary_minor:bigint>>"


def psp_gross_legs(max_fx_bps: int) -> Column:
    """A posted PSP record's gross and FX legs (none for a type without a contra account, e.g. a payout row)."""
    a, s = F.col("amount_minor"), F.col("currency")
    p, pc = F.col("presentment_amount_minor"), F.col("presentment_currency")
    contra = F.create_map(*[F.lit(x) for k, v in sorted(CONTRA.items()) for x in (k, v)])[F.col("event_type")]
    is_fx = (F.col("event_type").isin(*FX_TYPES) & p.isNotNull() & pc.isNotNull() & (pc != s))
    minor_rate = F.col("source").isin(*fx.MINOR_PER_MINOR_SOURCES)
    c = fx.booked_conversion(a, p, pc, F.col("fx_rate"), s, minor_rate, max_fx_bps)
    gross = legs(
        leg(1, "gross", A.RECEIVABLE, a, s),
        F.when(~is_fx, leg(2, "gross", contra, -a, s)),
        F.when(is_fx, leg(2, "fx.conversion", A.FX_CONVERSION, -c, s)),
        F.when(is_fx, leg(3, "fx.difference", A.FX_GAIN_LOSS, -(a - c), s)),
        F.when(is_fx, leg(4, "fx.conversion", A.FX_CONVERSION, p, pc)),
        F.when(is_fx, leg(5, "gross", contra, -p, pc)),
    )
    return F.when(F.col("event_type").isin(*CONTRA), gross).otherwise(F.array().cast(f"array<{LEG}>"))


def psp_fee_legs(fee_components: Column) -> Column:
    """A posted PSP record's fee legs, per component of ``fee_components`` (its rows of
    ``fees.posted_fee_components`` as an array of (component, charged_minor, ordinary_minor); null: none)."""
    is_dispute = F.col("event_type").isin(*DISPUTE_TYPES)
    s = F.col("currency")

    def per_component(x: Column) -> Column:
        ordinary = F.when(is_dispute, F.lit(A.DISPUTE_FEES)).otherwise(F.concat(F.lit(A.FEES + "."), x["component"]))
        f, e = x["charged_minor"], x["ordinary_minor"]
        component = F.concat(F.lit("fee."), x["component"])
        return legs(leg(11, component, ordinary, e, s),
                    leg(12, F.concat(component, F.lit(".variance")), A.UNEXPECTED_FEES, f - e, s),
                    leg(13, component, A.RECEIVABLE, -f, s))

    return F.flatten(F.transform(F.coalesce(fee_components, F.array().cast(FEES)), per_component))


def payout_legs() -> Column:
    """A payout row's legs (one row per (payout, currency) with ``payout_minor``)."""
    x, s = F.col("payout_minor"), F.col("currency")
    return legs(leg(1, "payout", A.IN_TRANSIT, x, s), leg(2, "payout", A.RECEIVABLE, -x, s))


def bank_legs(max_fx_bps: int) -> Column:
    """A bank entry's legs: ``first_account`` (bank, or suspense for a reclassification), ``matched`` and,
    when matched, the payout's ``po_amount`` / ``po_currency``."""
    b, bc = F.col("amount_minor"), F.col("currency")
    x, xc = F.col("po_amount"), F.col("po_currency")
    matched = F.col("matched")
    same_ccy = matched & (bc == xc)
    cross = matched & (bc != xc)
    rate_ok = F.col("fx_rate").isNotNull() & (F.col("presentment_currency") == xc)
    c = F.when(rate_ok, fx.booked_conversion(b, x, xc, F.col("fx_rate"), bc, F.lit(False), max_fx_bps)).otherwise(b)
    return legs(
        leg(1, F.col("first_component"), F.col("first_account"), b, bc),
        F.when(~matched, leg(2, "bank.unmatched", A.SUSPENSE, -b, bc)),
        F.when(same_ccy, leg(2, "bank.payout", A.IN_TRANSIT, -x, xc)),
        F.when(same_ccy, leg(3, "bank.difference", A.SUSPENSE, -(b - x), bc)),
        F.when(cross, leg(2, "fx.conversion", A.FX_CONVERSION, -c, bc)),
        F.when(cross, leg(3, "fx.difference", A.FX_GAIN_LOSS, -(b - c), bc)),
        F.when(cross, leg(4, "fx.conversion", A.FX_CONVERSION, x, xc)),
        F.when(cross, leg(5, "bank.payout", A.IN_TRANSIT, -x, xc)),
    )


def in_entry_order(journal_legs: Column) -> Column:
    """A journal's legs in the order of its entries: the gross / payout / bank legs by number, then each fee
    component's legs together (its variance beside it), by component and number, then by currency."""
    keyed = F.transform(journal_legs, lambda x: F.struct(
        F.when(x["leg_no"] < 10, x["leg_no"]).otherwise(F.lit(100)).alias("group"),
        F.regexp_replace(x["leg_component"], r"\.variance$", "").alias("base"),
        x["leg_no"].alias("no"), x["leg_currency"].alias("currency"), x.alias("leg")))
    return F.transform(F.array_sort(keyed), lambda k: k["leg"])


UNBALANCED = "unbalanced journal"       # starts the message of the error ``balanced_or_fail`` raises


def balanced_or_fail(journal_id: Column, journal_legs: Column) -> Column:
    """True for a journal whose legs sum to zero in each currency; for any other the query fails with
    ``unbalanced journal <id>: <currency> off by <minor units>, ...``. Checked on the journal's own row (its
    legs are one array), so the day's lines need no aggregate and are computed once, by their write: a task
    that fails fails the write, which Delta commits only after every task succeeded."""
    currencies = F.array_distinct(F.transform(journal_legs, lambda x: x["leg_currency"]))
    off = F.transform(currencies, lambda c: F.struct(c.alias("currency"), F.aggregate(
        F.filter(journal_legs, lambda x: x["leg_currency"].eqNullSafe(c)), F.lit(0).cast("bigint"),
        lambda acc, x: acc + x["leg_amount"]).alias("off")))
    wrong = F.filter(off, lambda x: x["off"] != 0)
    message = F.concat(F.lit(UNBALANCED + " "), journal_id, F.lit(": "), F.array_join(F.transform(
        wrong, lambda x: F.concat(F.coalesce(x["currency"], F.lit("(no currency)")), F.lit(" off by "),
                                  x["off"].cast("string"))), ", "))
    return F.coalesce(F.when(F.size(wrong) > 0, F.raise_error(message)).cast("boolean"), F.lit(True))
