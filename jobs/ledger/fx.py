"""Exact FX conversion in minor units, and the FX difference a conversion leaves.

A journal that moves money from one currency to another stays balanced *per currency* through the
``fx_conversion`` account: in the source currency it takes the source amount, in the target currency
it gives the target amount converted at the rate the counterparty used (rounded **half-even** to the
target's minor unit), and what the counterparty actually booked differs from that by the FX
difference, which goes to ``fx_gain_loss`` (positive: gain). Amounts are integers; the product is
computed in Decimal (Python) or DECIMAL(38,10) (Spark), never in floating point.

Rates in the canonical events are *major target units per major source unit* (Adyen's "Exchange
Rate", Braintree, Checkout.com), except for Stripe, whose parser derives the rate as
``gross / customer_facing_amount`` from minor units (``jobs/formats/stripe.py``); those are read as
minor-per-minor (``MINOR_PER_MINOR_SOURCES``). A difference larger than ``max_difference_bps`` of the
booked amount means the rate does not describe the booking (a data problem, not an FX result): then
no FX difference is derived and the whole converted amount is taken as booked.
"""
from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal

from pyspark.sql import Column
from pyspark.sql import functions as F

from jobs.money import CURRENCY_EXPONENTS, exponent

MINOR_PER_MINOR_SOURCES = ("stripe",)
DEFAULT_MAX_DIFFERENCE_BPS = 100


def convert_minor(amount_minor: int, source_ccy: str, rate: Decimal, target_ccy: str,
                  rate_is_minor_per_minor: bool = False) -> int:
    """``amount_minor`` of ``source_ccy`` in minor units of ``target_ccy`` at ``rate``, half-even."""
    scale = Decimal(1) if rate_is_minor_per_minor else Decimal(10) ** (exponent(target_ccy) - exponent(source_ccy))
    return int((Decimal(amount_minor) * Decimal(rate) * scale).quantize(Decimal(1), rounding=ROUND_HALF_EVEN))


def fx_difference(booked_minor: int, converted_minor: int) -> int:
    """What the counterparty booked beyond the exact conversion (target currency; > 0 is a gain)."""
    return booked_minor - converted_minor


def _exponents() -> Column:
    return F.create_map(*[F.lit(x) for c, e in sorted(CURRENCY_EXPONENTS.items()) for x in (c, e)])


def _scales() -> Column:
    """10^shift as DECIMAL for the exponent differences ISO 4217 allows (-4..4), never a double."""
    return F.create_map(*[x for s in range(-4, 5) for x in (F.lit(s), F.lit(Decimal(10) ** s).cast("decimal(38,10)"))])


def converted(amount: Column, source_ccy: Column, rate: Column, target_ccy: Column, minor_per_minor: Column) -> Column:
    """Spark version of ``convert_minor`` (null when the rate or a currency is unknown)."""
    exponents = _exponents()
    shift = (exponents[target_ccy] - exponents[source_ccy]).cast("int")
    scale = F.when(minor_per_minor, F.lit(Decimal(1)).cast("decimal(38,10)")).otherwise(_scales()[shift])
    product = amount.cast("decimal(38,10)") * rate.cast("decimal(38,10)") * scale
    return F.bround(product.cast("decimal(38,10)"), 0).cast("long")


def booked_conversion(booked: Column, amount: Column, source_ccy: Column, rate: Column, target_ccy: Column,
                      minor_per_minor: Column, max_difference_bps: int) -> Column:
    """The converted amount to post against ``fx_conversion``: the exact conversion when the rate is
    plausible for this booking, else the booked amount itself (no FX difference derived)."""
    exact = converted(amount, source_ccy, rate, target_ccy, minor_per_minor)
    limit = F.greatest(F.lit(1).cast("long"), (F.abs(booked) * max_difference_bps / 10_000).cast("long"))
    plausible = exact.isNotNull() & (F.abs(booked - exact) <= limit)
    return F.when(plausible, exact).otherwise(booked)
