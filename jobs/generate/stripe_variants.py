"""Writers: Stripe's Dashboard balance history export (one file per payout, the payout row last) and
webhook events (one JSON Lines file per day, as the webhook receiver lands them).

Balance history: ``id,Type,Source,Amount,Fee,Net,Currency,Customer Facing Amount,Customer Facing Currency,
Created (UTC),Available On (UTC),Status,Description,order_id (metadata),Transfer,Transfer Date (UTC)`` with the balance transaction type
(charge, refund, adjustment for disputes, stripe_fee) and ``Transfer`` = the payout; the payout itself
is a ``payout`` row of minus its amount. Events: ``charge.succeeded`` per charge (the customer's
currency and amount), ``charge.refunded`` per refund (cumulative ``amount_refunded`` with
``previous_attributes``), ``charge.dispute.created`` per dispute (with its withdrawal balance
transaction) and ``payout.paid`` per payout; Stripe's own fee rows have no event.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa

from jobs.generate import refs, text
from jobs.generate.book import DOMAINS, FIRST, LAST
from jobs.generate.dates import DAY, fmt_ts
from jobs.generate.events import Payments, Refunds, gather
from jobs.generate.simple_psp import PAYOUT_ROW
from jobs.generate.ids import stripe_ids
from jobs.generate.stripe import CHARGE, DISPUTE, REFUND, StripePayouts, StripeRows
from jobs.generate.stripe_file import LOWER, _columns
from jobs.generate.world import EXPS, TenantWorld

HISTORY = ["id", "Type", "Source", "Amount", "Fee", "Net", "Currency", "Customer Facing Amount",
           "Customer Facing Currency", "Created (UTC)", "Available On (UTC)", "Status", "Description",
           "order_id (metadata)", "Transfer", "Transfer Date (UTC)"]
TYPES = ["charge", "refund", "adjustment", "stripe_fee"]


def history_name(w: TenantWorld, payouts: StripePayouts, i: int) -> str:
    po = refs.payout_ids(w.salt, payouts.serial[i: i + 1])[0].as_py()
    return f"stripe_balance_history_{po}.csv"


def events_name(day: int) -> str:
    from jobs.generate.dates import to_date

    return f"stripe_events_{to_date(day).isoformat()}.jsonl"


def _minutes(t: np.ndarray) -> pa.Array:
    return pa.compute.utf8_slice_codeunits(fmt_ts(t), 0, 16)


def write_history(path: Path, w: TenantWorld, p: Payments, r: Refunds, rows: StripeRows, payouts: StripePayouts,
                  i: int) -> None:
    """Payout ``i``: ``rows`` are its rows in file order, the last one its PAYOUT_ROW."""
    po = refs.payout_ids(w.salt, payouts.serial[i: i + 1])[0].as_py()
    pday = int(payouts.day[i])
    body = rows.rows(0, len(rows) - 1)

    def build(a: int, b: int) -> pa.Array:
        part = body.rows(a, b)
        c = _columns(w, p, r, part, po, "", pday)
        n = len(part)
        payout_date = _minutes(np.full(n, pday * DAY))
        return text.lines([
            c["balance_transaction_id"], text.lookup(TYPES, part.cat), c["source_id"], c["gross"], c["fee"], c["net"],
            c["currency"], c["customer_facing_amount"], c["customer_facing_currency"], _minutes(part.created), payout_date, text.const("available", n),
            text.csv_escape(c["description"]), c["order_id"], text.const(po, n), payout_date])

    exp = int(EXPS[int(payouts.ccy[i])])
    amount = text.amount(np.array([-int(payouts.amount[i])]), exp)[0].as_py()
    when = _minutes(np.array([pday * DAY]))[0].as_py()
    txn = refs.txn_ids(w.salt, "po", payouts.serial[i: i + 1])[0].as_py()
    payout_line = (f"{txn},payout,{po},{amount},{text.amount(np.array([0]), exp)[0].as_py()},{amount},"
                   f"{LOWER[int(payouts.ccy[i])]},,,{when},{when},available,STRIPE PAYOUT,,,\n")
    with path.open("wb") as fh:
        fh.write(text.header_line(HISTORY))
        text.write_rows(fh, len(body), build)
        fh.write(payout_line.encode())


def _obj(pairs: list[tuple[str, pa.Array | str]]) -> list:
    """JSON object text parts: ``[("key", array-of-raw-json-values), ...]``."""
    parts: list = []
    for k, (name, value) in enumerate(pairs):
        parts += [("{" if k == 0 else ",") + f'"{name}":', value]
    return parts + ["}"]


def _s(values) -> pa.Array:
    return text.concat('"', text.json_escape(values), '"')


def event_lines(w: TenantWorld, p: Payments, r: Refunds, rows: StripeRows, payouts: StripePayouts,
                refunded_before: np.ndarray) -> pa.Array:
    """One event per row (CHARGE, REFUND, DISPUTE or PAYOUT_ROW), ``refunded_before``: the payment's amount
    refunded before each refund row (minor, customer currency)."""
    n = len(rows)
    pay = np.maximum(rows.pay, 0)
    serial = p.serial[pay]
    po = np.maximum(rows.payout, 0)
    po_serial = payouts.serial[po] if len(payouts) else np.zeros(n, np.int64)
    no = gather(r.no, rows.ref, rows.cat == REFUND)
    charge = refs.charge_ids(w.salt, serial)
    order = refs.order_ids(p.code[pay])
    person = p.person[pay]
    first, last = text.lookup(FIRST, person % len(FIRST)), text.lookup(LAST, (person // 32) % len(LAST))
    email = text.concat(first, ".", last, text.zpad((person // 1024) % 100, 2), "@",
                        text.lookup(DOMAINS, (person // 3) % len(DOMAINS)))
    cf_ccy = np.maximum(rows.cf_ccy, 0)
    created = text.integers(rows.created)
    key = np.where(rows.cat == PAYOUT_ROW, po_serial * 8 + 7, serial * 8 + rows.cat) * 4 + no
    evt = stripe_ids(w.salt, "evt", key, "evt_1")
    amount = text.integers(p.amt[pay])
    customer_ccy = text.lookup(LOWER, p.ccy[pay])
    charge_fields = [("id", _s(charge)), ("object", '"charge"'), ("amount", amount), ("currency", _s(customer_ccy)),
                     ("captured", "true"), ("created", text.integers(p.cap_t[pay])),
                     ("payment_intent", _s(refs.payment_intent_ids(w.salt, serial))),
                     ("description", _s(text.concat("Payment for ", order))),
                     ("metadata", text.concat('{"order_id":"', order, '"}')),
                     ("billing_details", text.concat('{"email":"', email, '","name":"', first, " ", last, '"}')),
                     ("payment_method_details", '{"type":"card","card":{"brand":"visa"}}')]

    def build_charge(i):
        idx = pa.array(i)
        fields = [(k, v.take(idx) if isinstance(v, (pa.Array, pa.ChunkedArray)) else v) for k, v in charge_fields]
        return text.concat(*_obj(fields))

    def build_refund(i):
        idx = pa.array(i)
        fields = [(k, v.take(idx) if isinstance(v, (pa.Array, pa.ChunkedArray)) else v) for k, v in charge_fields]
        refund = refs.refund_ids(w.salt, serial[i], no[i])
        total = text.integers(refunded_before[i] + np.abs(rows.cf_amt[i]))
        fields += [("amount_refunded", total), ("refunds", text.concat('{"data":[{"id":"', refund, '"}]}'))]
        obj = text.concat(*_obj(fields))
        return text.concat(obj, ',"previous_attributes":{"amount_refunded":', text.integers(refunded_before[i]), "}")

    def build_dispute(i):
        bt = text.concat('[{"id":"', refs.txn_ids(w.salt, "du", serial[i] * 4), '","amount":',
                         text.integers(rows.gross[i]), ',"fee":', text.integers(rows.fee[i]), ',"net":',
                         text.integers(rows.net[i]), ',"currency":"', text.lookup(LOWER, rows.ccy[i]),
                         '","reporting_category":"dispute","description":"Chargeback withdrawal for ',
                         charge.take(pa.array(i)), '"}]')
        return text.concat(*_obj([("id", _s(refs.dispute_ids(w.salt, serial[i]))), ("object", '"dispute"'),
                                  ("amount", text.integers(np.abs(rows.cf_amt[i]))),
                                  ("currency", _s(text.lookup(LOWER, cf_ccy[i]))), ("charge", _s(charge.take(pa.array(i)))),
                                  ("reason", '"fraudulent"'), ("status", '"needs_response"'),
                                  ("balance_transactions", bt)]))

    def build_payout(i):
        s = po_serial[i]
        return text.concat(*_obj([("id", _s(refs.payout_ids(w.salt, s))), ("object", '"payout"'),
                                  ("amount", text.integers(payouts.amount[po[i]])),
                                  ("currency", _s(text.lookup(LOWER, payouts.ccy[po[i]]))),
                                  ("arrival_date", text.integers(payouts.day[po[i]] * DAY)),
                                  ("created", text.integers(rows.created[i])), ("method", '"standard"'),
                                  ("trace_id", text.concat('{"status":"supported","value":"',
                                                           refs.trace_ids(w.salt, s), '"}')),
                                  ("statement_descriptor", '"STRIPE"')]))

    obj = text.choose(rows.cat, {CHARGE: build_charge, REFUND: build_refund, DISPUTE: build_dispute,
                                 PAYOUT_ROW: build_payout})
    kind = text.lookup(["charge.succeeded", "charge.refunded", "charge.dispute.created", "", "payout.paid"], rows.cat)
    return text.concat('{"id":"', evt, '","object":"event","api_version":"2024-06-20","created":', created,
                       ',"data":{"object":', obj, '},"livemode":false,"pending_webhooks":1,'
                       '"request":{"id":null,"idempotency_key":null},"type":"', kind, '"}\n')


def write_events(path: Path, w: TenantWorld, p: Payments, r: Refunds, rows: StripeRows, payouts: StripePayouts,
                 refunded_before: np.ndarray) -> None:
    with path.open("wb") as fh:
        text.write_rows(fh, len(rows), lambda a, b: event_lines(w, p, r, rows.rows(a, b), payouts,
                                                               refunded_before[a:b]))

