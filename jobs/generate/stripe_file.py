"""Writer: Stripe itemized payout reconciliation CSV, one file per automatic payout.

Two styles, chosen per payout: the Dashboard download (every field double-quoted, Dashboard column
names and order plus id columns) and an API run with ``columns=`` (``*_utc`` names, another order,
quoted only where needed, with ``trace_id``). Currencies lowercase, signed major-unit amounts.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa

from jobs.generate import noise as nz
from jobs.generate import refs, text
from jobs.generate.dates import DAY, fmt_day, fmt_ts
from jobs.generate.events import Payments, Refunds, gather
from jobs.generate.stripe import CATEGORIES, CHARGE, DISPUTE, FEE, FEE_TEXT, REFUND, StripePayouts, StripeRows
from jobs.generate.world import CCYS, EXPS, TenantWorld

DASHBOARD = ["automatic_payout_id", "automatic_payout_effective_at", "balance_transaction_id", "created",
             "available_on", "currency", "gross", "fee", "net", "reporting_category", "description", "source_id",
             "charge_id", "payment_intent_id", "customer_facing_amount", "customer_facing_currency", "order_id"]
API = ["balance_transaction_id", "created_utc", "available_on_utc", "currency", "gross", "fee", "net",
       "reporting_category", "source_id", "charge_id", "payment_intent_id", "order_id", "customer_facing_amount",
       "customer_facing_currency", "description", "automatic_payout_id", "automatic_payout_effective_at_utc",
       "trace_id"]
LOWER = [c.lower() for c in CCYS]


def file_name(w: TenantWorld, payouts: StripePayouts, i: int) -> str:
    po = refs.payout_ids(w.salt, payouts.serial[i: i + 1])[0].as_py()
    return f"stripe_payout_reconciliation_{po}.csv"


def _columns(w: TenantWorld, p: Payments, r: Refunds, rows: StripeRows, po: str, trace: str, pday: int) -> dict:
    n = len(rows)
    pay = np.maximum(rows.pay, 0)
    is_fee = rows.cat == FEE
    serial = p.serial[pay]
    refund_no = gather(r.no, rows.ref, rows.cat == REFUND)
    charge = refs.charge_ids(w.salt, serial)
    order = refs.order_ids(p.code[pay])
    txn_key = np.where(is_fee, (rows.fee_day * 8 + rows.ccy) * 2 + rows.ref, serial * 4 + refund_no)
    txn = text.choose(rows.cat, {c: (lambda i, k=k: refs.txn_ids(w.salt, k, txn_key[i]))
                                 for c, k in ((CHARGE, "ch"), (REFUND, "re"), (DISPUTE, "du"), (FEE, "fee"))})
    source = text.choose(rows.cat, {
        CHARGE: lambda i: charge.take(pa.array(i)),
        REFUND: lambda i: refs.refund_ids(w.salt, serial[i], refund_no[i]),
        DISPUTE: lambda i: refs.dispute_ids(w.salt, serial[i]),
        FEE: "",
    })
    fee_day = fmt_day(rows.fee_day)
    head, tail = zip(*(t.split("{}") for t in FEE_TEXT))
    payment_desc = text.concat("Payment for ", order)
    # ref_in_text kinds: the order only in the description (the order_id metadata column left empty)
    in_text = (rows.cat == CHARGE) & np.isin(p.kind[pay], nz.ORDER_IN_TEXT)
    description = text.choose(np.where(in_text, -1, rows.cat), {
        -1: lambda i: refs.order_in_text(w.tenant.upper(), p.code[pay[i]]),
        CHARGE: lambda i: payment_desc.take(pa.array(i)),
        REFUND: lambda i: text.concat("REFUND FOR CHARGE (", payment_desc.take(pa.array(i)), ")"),
        DISPUTE: lambda i: text.concat("Chargeback withdrawal for ", charge.take(pa.array(i))),
        FEE: lambda i: text.where(rows.ref[i] == 0, text.concat(head[0], fee_day.take(pa.array(i)), tail[0]),
                                  text.concat(head[1], fee_day.take(pa.array(i)), tail[1])),
    })
    exp = EXPS[rows.ccy]
    cf_ccy = np.maximum(rows.cf_ccy, 0)
    payout_at = fmt_ts(np.full(n, pday * DAY))
    return {
        "automatic_payout_id": text.const(po, n),
        "automatic_payout_effective_at": payout_at,
        "balance_transaction_id": txn,
        "created": fmt_ts(rows.created),
        "available_on": payout_at,
        "currency": text.lookup(LOWER, rows.ccy),
        "gross": text.amount(rows.gross, exp),
        "fee": text.amount(rows.fee, exp),
        "net": text.amount(rows.net, exp),
        "reporting_category": text.lookup(CATEGORIES, rows.cat),
        "description": description,
        "source_id": source,
        "charge_id": text.where(is_fee, "", charge),
        "payment_intent_id": text.where(is_fee, "", refs.payment_intent_ids(w.salt, serial)),
        "customer_facing_amount": text.where(is_fee, "", text.amount(rows.cf_amt, EXPS[cf_ccy])),
        "customer_facing_currency": text.where(is_fee, "", text.lookup(LOWER, cf_ccy)),
        "order_id": text.where(is_fee | in_text, "", order),
        "trace_id": text.const(trace, n),
    }


def write(path: Path, w: TenantWorld, p: Payments, r: Refunds, rows: StripeRows, payouts: StripePayouts,
          i: int) -> None:
    """Write payout ``i`` (``rows`` are exactly its rows, in file order)."""
    po = refs.payout_ids(w.salt, payouts.serial[i: i + 1])[0].as_py()
    trace = refs.trace_ids(w.salt, payouts.serial[i: i + 1])[0].as_py()
    api = bool(payouts.style[i])
    names = API if api else DASHBOARD

    def build(start: int, stop: int) -> pa.Array:
        cols = _columns(w, p, r, rows.rows(start, stop), po, trace, int(payouts.day[i]))
        if api:
            cols["description"] = text.csv_escape(cols["description"])
            cols["created_utc"], cols["available_on_utc"] = cols["created"], cols["available_on"]
            cols["automatic_payout_effective_at_utc"] = cols["automatic_payout_effective_at"]
        return text.lines([cols[c] for c in names], quote_all=not api)

    with path.open("wb") as fh:
        fh.write(text.header_line(names, quote_all=not api))
        text.write_rows(fh, len(rows), build)
