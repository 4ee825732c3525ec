"""What a PayPal, Braintree or Checkout.com payout looks like on the merchant's bank statement:
(counterparty name, counterparty IBAN, end-to-end id, remittance text, entry text)."""
from __future__ import annotations

import numpy as np

from jobs.generate import refs
from jobs.generate.stripe import StripePayouts
from jobs.generate.world import (BRAINTREE, BRAINTREE_BANK_NAME, BRAINTREE_IBAN, CHECKOUT_BANK_NAME, CHECKOUT_IBAN,
                                 PAYPAL, PAYPAL_BANK_NAME, PAYPAL_IBAN, TenantWorld)


def other_psp_texts(w: TenantWorld, psp: int, payouts: StripePayouts, i: int) -> tuple[str, str, str, str, str]:
    idx = np.array([i])
    if psp == PAYPAL:
        ref = refs.paypal_bank_refs(w.salt, payouts.serial[idx])[0].as_py()
        return (PAYPAL_BANK_NAME, PAYPAL_IBAN, ref, f"PAYPAL {ref} {w.merchant_account}",
                f"SEPA CREDIT TRANSFER PAYPAL EUROPE {ref}")
    if psp == BRAINTREE:
        from jobs.generate.braintree_file import batch_ids

        batch = batch_ids(w, payouts, idx)[0].as_py()
        return (BRAINTREE_BANK_NAME, BRAINTREE_IBAN, "NOTPROVIDED", f"BRAINTREE DISBURSEMENT {batch}",
                f"SEPA CREDIT TRANSFER {BRAINTREE_BANK_NAME}")
    payout = refs.checkout_payout_ids(w.salt, payouts.serial[idx])[0].as_py()
    return (CHECKOUT_BANK_NAME, CHECKOUT_IBAN, payout, f"CHECKOUT.COM PAYOUT {payout}",
            f"SEPA CREDIT TRANSFER {CHECKOUT_BANK_NAME} {payout}")
