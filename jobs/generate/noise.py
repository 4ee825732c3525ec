"""Noise levels: how often each kind of real-world mess is injected.

Per-payment kinds are mutually exclusive (a payment carries at most one); the others (FX, refunds,
chargebacks, duplicates, payout-level noise, unrelated bank entries) are drawn independently. The
``ref_in_text`` kinds (``high`` only): the book row has no PSP id and the PSP row carries the order
reference only in its free text (``Order #...``), some of them with a book amount or currency that
differs; PSP reports without such a column turn them into their plain kinds (``core.py``).
``none`` is perfectly clean data; ``high`` (about 2-5 % of records per kind) is the benchmark level.
"""
from __future__ import annotations

from dataclasses import dataclass, field

# Per-payment noise kinds (code -> label used in the truth's ``kind`` column).
EXACT, EMPTY_REF, MANGLED_REF, PADDED_REF, AMOUNT_TIME, MISSING_PSP, MISSING_BOOK, AMOUNT_MISMATCH, \
    CURRENCY_MISMATCH, SPLIT_CAPTURE, FX_ROUNDING, LATE_SETTLEMENT, REF_IN_TEXT, TEXT_AMOUNT_MISMATCH, \
    TEXT_CURRENCY_MISMATCH = range(15)
KIND_LABELS = ["exact", "empty_ref", "mangled_ref", "padded_ref", "amount_time", "missing_psp", "missing_book",
               "amount_mismatch", "currency_mismatch", "split_capture", "fx_rounding", "late_settlement",
               "ref_in_text", "ref_in_text_amount_mismatch", "ref_in_text_currency_mismatch"]
# Expected match level of a book_psp group per kind (0: never a group).
KIND_LEVEL = [1, 2, 2, 1, 3, 0, 0, 0, 0, 4, 3, 1, 2, 0, 0]
ORDER_IN_TEXT = (REF_IN_TEXT, TEXT_AMOUNT_MISMATCH, TEXT_CURRENCY_MISMATCH)   # the order only in the PSP's text
NOISE_LEVELS = ("none", "low", "medium", "high")


@dataclass(frozen=True)
class NoiseParams:
    level: str
    kind_rates: dict[int, float] = field(default_factory=dict)
    fx_share: float = 0.0             # payments presented in a currency other than the settlement one
    refund_rate: float = 0.0          # payments with one full refund
    partial_refund_rate: float = 0.0  # payments with 2-3 partial refunds
    chargeback_rate: float = 0.0
    book_duplicate_rate: float = 0.0  # book rows repeated (same file later, or next day's file)
    stripe_duplicate_rate: float = 0.0  # Stripe rows repeated within their payout file
    file_redeliveries: int = 0        # whole PSP files delivered a second time, per tenant
    payout_missing_rate: float = 0.0  # payouts without a bank entry
    payout_mismatch_rate: float = 0.0  # bank entry amount differs from the payout
    payout_noise_minimum: int = 0     # at least this many of each payout-level kind (when possible)
    unrelated_bank_per_day: float = 0.0  # expected unrelated bank credits per day and tenant
    mt940_wrapped_86: bool = False    # MT940 :86: as German SEPA subfields wrapped over several lines
    bai2_packed_wrapped: bool = False  # BAI2: several records to a line, 16 texts wrapped onto the next line
    book_note_rate: float = 0.0       # book CSV rows whose description holds a line break (quoted), as ERPs write


def _kinds(scale: float, text_refs: bool = False) -> dict[int, float]:
    base = {EMPTY_REF: 1.0, MANGLED_REF: 1.0, PADDED_REF: 0.6, AMOUNT_TIME: 0.8, MISSING_PSP: 1.0,
            MISSING_BOOK: 1.0, AMOUNT_MISMATCH: 0.8, CURRENCY_MISMATCH: 0.6, SPLIT_CAPTURE: 0.8,
            FX_ROUNDING: 0.8, LATE_SETTLEMENT: 1.0}
    if text_refs:                    # appended: the other kinds keep their draws
        base.update({REF_IN_TEXT: 1.0, TEXT_AMOUNT_MISMATCH: 0.3, TEXT_CURRENCY_MISMATCH: 0.3})
    return {k: v * scale for k, v in base.items()}


LEVELS: dict[str, NoiseParams] = {
    "none": NoiseParams("none", refund_rate=0.02),
    "low": NoiseParams("low", _kinds(0.003), fx_share=0.05, refund_rate=0.02, partial_refund_rate=0.003,
                       chargeback_rate=0.002, book_duplicate_rate=0.002, stripe_duplicate_rate=0.001,
                       file_redeliveries=1, payout_missing_rate=0.01, payout_mismatch_rate=0.01,
                       unrelated_bank_per_day=0.1),
    "medium": NoiseParams("medium", _kinds(0.01), fx_share=0.10, refund_rate=0.03, partial_refund_rate=0.01,
                          chargeback_rate=0.005, book_duplicate_rate=0.01, stripe_duplicate_rate=0.005,
                          file_redeliveries=1, payout_missing_rate=0.03, payout_mismatch_rate=0.03,
                          payout_noise_minimum=1, unrelated_bank_per_day=0.2),
    "high": NoiseParams("high", _kinds(0.03, True), fx_share=0.15, refund_rate=0.04, partial_refund_rate=0.02,
                        chargeback_rate=0.02, book_duplicate_rate=0.03, stripe_duplicate_rate=0.02,
                        file_redeliveries=2, payout_missing_rate=0.05, payout_mismatch_rate=0.05,
                        payout_noise_minimum=1, unrelated_bank_per_day=0.4, mt940_wrapped_86=True, book_note_rate=0.05,
                        bai2_packed_wrapped=True),
}


def params(level: str) -> NoiseParams:
    try:
        return LEVELS[level]
    except KeyError:
        raise ValueError(f"unknown noise level {level!r}; choose one of {', '.join(NOISE_LEVELS)}") from None
