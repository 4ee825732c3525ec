"""The identifiers both sides print, built in one place so the book and the PSP files agree.

Stripe: ch_/pi_/du_ from the payment's serial, re_ from (payment serial, refund number), po_ and the
trace id from the payout's serial. Adyen (16 digits): kind 0 payment PSP reference, 1-3 capture
modification references, 4-6 refund references, 7 chargeback reference.
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa

from jobs.generate.ids import adyen_refs, digits_from_hash, hash64, stripe_ids
from jobs.generate.text import choose, concat, zpad

ADYEN_PAYMENT, ADYEN_CAPTURE, ADYEN_REFUND, ADYEN_CHARGEBACK = 0, 1, 4, 7


def order_ids(code: np.ndarray) -> pa.Array:
    return zpad(code, 14, "ORD-")


def order_in_text(brand: str, code: np.ndarray) -> pa.Array:
    """The order reference as a PSP's free text carries it when the order field is empty, one shape per
    order by its number: ``Order #26111800000123``, ``ACME order 26111800000123`` or ``Invoice
    INV-26111800000123 / 2026`` (the order number with the fiscal year). Never zero-padded: a 13-19 digit
    run that passes Luhn is masked to its first 6 and last 4 digits, so a padded copy would not mask like
    the book's ``ORD-`` id."""
    code = np.asarray(code, dtype=np.int64)
    digits = zpad(code, 14)
    year = zpad(2000 + code // 10**12, 4)
    part = lambda arr, i: arr.take(pa.array(i))  # noqa: E731
    return choose(code % 3, {
        0: lambda i: concat("Order #", part(digits, i)),
        1: lambda i: concat(f"{brand} order ", part(digits, i)),
        2: lambda i: concat("Invoice INV-", part(digits, i), " / ", part(year, i)),
    })


def charge_ids(salt: int, pay_serial: np.ndarray) -> pa.Array:
    return stripe_ids(salt, "ch", pay_serial, "ch_3")


def payment_intent_ids(salt: int, pay_serial: np.ndarray) -> pa.Array:
    return stripe_ids(salt, "pi", pay_serial, "pi_3")


def refund_ids(salt: int, pay_serial: np.ndarray, refund_no: np.ndarray) -> pa.Array:
    return stripe_ids(salt, "re", pay_serial * 4 + refund_no, "re_3")


def dispute_ids(salt: int, pay_serial: np.ndarray) -> pa.Array:
    return stripe_ids(salt, "du", pay_serial, "du_1")


def txn_ids(salt: int, kind: str, key: np.ndarray) -> pa.Array:
    return stripe_ids(salt, "txn-" + kind, key, "txn_3" if kind != "fee" else "txn_1")


def payout_ids(salt: int, payout_serial: np.ndarray) -> pa.Array:
    return stripe_ids(salt, "po", payout_serial, "po_1")


def trace_ids(salt: int, payout_serial: np.ndarray) -> pa.Array:
    return zpad(digits_from_hash(hash64(salt, "trace", payout_serial), 14), 14, "ST")


def adyen_payment_refs(salt: int, pay_serial: np.ndarray) -> pa.Array:
    return adyen_refs(salt, ADYEN_PAYMENT, pay_serial)


def adyen_capture_refs(salt: int, pay_serial: np.ndarray, capture_no: np.ndarray) -> pa.Array:
    """Capture modification references; capture_no 0..2."""
    return _per_kind(salt, ADYEN_CAPTURE, pay_serial, capture_no)


def adyen_refund_refs(salt: int, pay_serial: np.ndarray, refund_no: np.ndarray) -> pa.Array:
    return _per_kind(salt, ADYEN_REFUND, pay_serial, refund_no)


def adyen_chargeback_refs(salt: int, pay_serial: np.ndarray) -> pa.Array:
    return adyen_refs(salt, ADYEN_CHARGEBACK, pay_serial)


def _per_kind(salt: int, base_kind: int, serial: np.ndarray, no: np.ndarray) -> pa.Array:
    return adyen_refs(salt, base_kind + np.asarray(no, dtype=np.int64), serial)


def adyen_tx_refs(salt: int, batch_no: np.ndarray) -> pa.Array:
    """The bank transfer reference of a batch payout: ``TX<10 digits>XT``."""
    return concat(zpad(digits_from_hash(hash64(salt, "tx", batch_no), 10), 10, "TX"), "XT")


def book_payment_ids(code: np.ndarray) -> pa.Array:
    return zpad(code, 14, "PAY-")


def book_refund_ids(code: np.ndarray, refund_no: np.ndarray) -> pa.Array:
    return zpad(np.asarray(code) * 10 + np.asarray(refund_no) + 1, 15, "RFD-")


# ---------------------------------------------------------------- PayPal, Braintree, Checkout.com ids
_UPPER36 = np.frombuffer(b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ", dtype=np.uint8)
_LOWER36 = np.frombuffer(b"0123456789abcdefghijklmnopqrstuvwxyz", dtype=np.uint8)


def alnum_ids(salt: int, kind: str, key: np.ndarray, width: int, alphabet: np.ndarray = _UPPER36,
              prefix: str = "") -> pa.Array:
    """``prefix`` + ``width`` characters of ``alphabet`` from two 64-bit hashes of (salt, kind, key)."""
    from jobs.generate.ids import mix64
    from jobs.generate.text import from_matrix

    first = hash64(salt, kind, np.asarray(key, dtype=np.int64))
    words = [first, mix64(first ^ np.uint64(0x5851F42D4C957F2D))]
    n, base = len(first), np.uint64(len(alphabet))
    mat = np.empty((n, len(prefix) + width), dtype=np.uint8)
    if prefix:
        mat[:, : len(prefix)] = np.frombuffer(prefix.encode(), dtype=np.uint8)
    per_word = (width + 1) // 2                      # 64 bits hold 12 base-36 digits; two words for more
    pos = len(prefix)
    for word in words:
        value = word.copy()
        for _ in range(min(per_word, len(prefix) + width - pos)):
            mat[:, pos] = alphabet[(value % base).astype(np.intp)]
            value //= base
            pos += 1
    return from_matrix(mat)


def paypal_txn_ids(salt: int, kind: str, key: np.ndarray) -> pa.Array:
    """17-character PayPal transaction ids (``8VW23145LM0876542``); kind: pay, refund, chargeback, fee, withdrawal."""
    return alnum_ids(salt, "pp-" + kind, key, 17)


def paypal_bank_refs(salt: int, payout_serial: np.ndarray) -> pa.Array:
    return zpad(digits_from_hash(hash64(salt, "pp-bank", payout_serial), 13), 13)


def paypal_payer_ids(salt: int, pay_serial: np.ndarray) -> pa.Array:
    return alnum_ids(salt, "pp-payer", pay_serial, 13)


def braintree_txn_ids(salt: int, kind: str, key: np.ndarray) -> pa.Array:
    """8-character lower-case Braintree transaction ids; kind: sale, credit."""
    return alnum_ids(salt, "bt-" + kind, key, 8, _LOWER36)


def braintree_batch_suffix(salt: int, payout_serial: np.ndarray) -> pa.Array:
    return alnum_ids(salt, "bt-batch", payout_serial, 6, _LOWER36)


def checkout_payment_ids(salt: int, pay_serial: np.ndarray) -> pa.Array:
    return alnum_ids(salt, "ck-pay", pay_serial, 26, _LOWER36, "pay_")


def checkout_action_ids(salt: int, key: np.ndarray) -> pa.Array:
    return alnum_ids(salt, "ck-act", key, 26, _LOWER36, "act_")


def checkout_payout_ids(salt: int, payout_serial: np.ndarray) -> pa.Array:
    """12 characters, zero-led like ``00000003K599``."""
    return alnum_ids(salt, "ck-po", payout_serial, 7, _UPPER36, "00000")
