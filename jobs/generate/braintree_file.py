"""Writer: Braintree transaction search download (CSV), one file per day of settled transactions.

Sales and credits (refunds, with ``Refunded Transaction ID``), positive major-unit amounts, created time in
UTC, settlement batch ``<date>_<merchant account>_<suffix>`` per day and currency, disbursed one business
day later (``Disbursement Date``). Cardholder name and customer e-mail are the fake customer's.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa

from jobs.generate import refs, text
from jobs.generate.book import DOMAINS, FIRST, LAST
from jobs.generate.dates import DAY, fmt_day, fmt_ts, to_date
from jobs.generate.events import Payments, Refunds, gather
from jobs.generate.stripe import REFUND, StripePayouts, StripeRows
from jobs.generate.world import CCYS, EXPS, TenantWorld

COLUMNS = ["Transaction ID", "Subscription ID", "Transaction Type", "Transaction Status", "Escrow Status",
           "Created Datetime", "Created Timezone", "Settlement Date", "Disbursement Date", "Merchant Account",
           "Currency ISO Code", "Amount Authorized", "Amount Submitted For Settlement", "Service Fee", "Tax Amount",
           "Tax Exempt", "Purchase Order Number", "Order ID", "Descriptor Name", "Descriptor Phone", "Descriptor URL",
           "Refunded Transaction ID", "Payment Instrument Type", "Card Type", "Cardholder Name",
           "First Six of Credit Card", "Last Four of Credit Card", "Credit Card Expiration Date", "Customer ID",
           "Customer First Name", "Customer Last Name", "Customer Email", "Settlement Amount",
           "Settlement Currency ISO Code", "Settlement Currency Exchange Rate", "Settlement Batch ID"]
CARDS = ["Visa", "MasterCard", "American Express"]
BINS = ["411111", "555555", "378282"]


def file_name(day: int) -> str:
    return f"braintree_transactions_{to_date(day).isoformat()}.csv"


def merchant_account(w: TenantWorld, ccy: int) -> str:
    return f"{w.company_account.lower()}{CCYS[ccy]}"


def batch_ids(w: TenantWorld, payouts: StripePayouts, idx: np.ndarray) -> pa.Array:
    """``2026-11-18_acmecoEUR_7g4k2m``: the settlement day, the merchant account, a suffix."""
    settle_day = (payouts.serial[idx] // 8) + 18_262
    account = text.lookup([merchant_account(w, c) for c in range(len(CCYS))], payouts.ccy[idx])
    return text.concat(fmt_day(settle_day), "_", account, "_", refs.braintree_batch_suffix(w.salt, payouts.serial[idx]))


def _lines(w: TenantWorld, p: Payments, r: Refunds, rows: StripeRows, payouts: StripePayouts) -> pa.Array:
    n = len(rows)
    pay = rows.pay
    serial = p.serial[pay]
    is_ref = rows.cat == REFUND
    no = gather(r.no, rows.ref, is_ref)
    sale_id = refs.braintree_txn_ids(w.salt, "sale", serial)
    txn = text.choose(is_ref, {False: lambda i: sale_id.take(pa.array(i)),
                               True: lambda i: refs.braintree_txn_ids(w.salt, "credit", serial[i] * 4 + no[i])})
    exp = EXPS[rows.ccy]
    amount = text.amount(np.abs(rows.gross), exp, signed=False)
    person = p.person[pay]
    first, last = text.lookup(FIRST, person % len(FIRST)), text.lookup(LAST, (person // 32) % len(LAST))
    email = text.concat(first, ".", last, text.zpad((person // 1024) % 100, 2), "@",
                        text.lookup(DOMAINS, (person // 3) % len(DOMAINS)))
    method = np.minimum(p.method[pay], 2)
    po = np.maximum(rows.payout, 0)
    cols = {
        "Transaction ID": txn,
        "Transaction Type": text.where(is_ref, "credit", "sale"),
        "Transaction Status": text.const("settled", n),
        "Created Datetime": fmt_ts(rows.created),
        "Created Timezone": text.const("UTC", n),
        "Settlement Date": fmt_day(rows.created // DAY),
        "Disbursement Date": fmt_day(payouts.day[po]) if len(payouts) else text.const("", n),
        "Merchant Account": text.lookup([merchant_account(w, c) for c in range(len(CCYS))], rows.ccy),
        "Currency ISO Code": text.lookup(CCYS, rows.ccy),
        "Amount Authorized": text.where(is_ref, "", amount),
        "Amount Submitted For Settlement": amount,
        "Tax Amount": text.const("0.00", n),
        "Tax Exempt": text.const("FALSE", n),
        "Order ID": refs.order_ids(p.code[pay]),
        "Descriptor Name": text.const(f"{w.company_account.upper()}*STORE", n),
        "Refunded Transaction ID": text.where(is_ref, sale_id, ""),
        "Payment Instrument Type": text.const("Credit Card", n),
        "Card Type": text.lookup(CARDS, method),
        "Cardholder Name": text.concat(first, " ", last),
        "First Six of Credit Card": text.lookup(BINS, method),
        "Last Four of Credit Card": text.zpad(person % 10_000, 4),
        "Credit Card Expiration Date": text.concat(text.zpad(1 + person % 12, 2), "/2029"),
        "Customer ID": text.zpad(person, 8),
        "Customer First Name": first, "Customer Last Name": last, "Customer Email": email,
        "Settlement Amount": amount,
        "Settlement Currency ISO Code": text.lookup(CCYS, rows.ccy),
        "Settlement Currency Exchange Rate": text.const("1", n),
        "Settlement Batch ID": batch_ids(w, payouts, po) if len(payouts) else text.const("", n),
    }
    empty = text.const("", n)
    return text.lines([cols.get(c, empty) for c in COLUMNS])


def write(path: Path, w: TenantWorld, p: Payments, r: Refunds, rows: StripeRows, payouts: StripePayouts) -> None:
    with path.open("wb") as fh:
        fh.write(text.header_line(COLUMNS))
        text.write_rows(fh, len(rows), lambda a, b: _lines(w, p, r, rows.rows(a, b), payouts))
