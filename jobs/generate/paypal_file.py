"""Writer: PayPal Settlement Report (STL, v009) or Transaction Detail Report (TRR, v008), one per day.

``RH``/``FH``/``SH``/``CH`` header records, one ``SB`` row per balance movement of the day (payments
T0006, refunds T1107, chargebacks T1201 with their T0106 fee, withdrawals T0400 last), then per
currency the ``SF`` footer (gross and fee credit/debit totals, beginning and ending balances), ``SC``,
``RF``, ``RC`` and ``FF``. Amounts are unsigned hundredths with CR/DR, times ``yyyy/MM/dd HH:mm:ss +0000``.
The TRR adds the transaction status (S), the payer's e-mail and name and the item text.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from jobs.generate import noise as nz
from jobs.generate import refs, text
from jobs.generate.book import DOMAINS, FIRST, LAST
from jobs.generate.dates import fmt_ts, to_date
from jobs.generate.events import Payments, Refunds, gather
from jobs.generate.simple_psp import PAYOUT_ROW
from jobs.generate.stripe import CHARGE, DISPUTE, FEE, REFUND, StripePayouts, StripeRows
from jobs.generate.world import CCYS, TenantWorld

STL_COLUMNS = ["Transaction ID", "Invoice ID", "PayPal Reference ID", "PayPal Reference ID Type",
               "Transaction Event Code", "Transaction Initiation Date", "Transaction Completion Date",
               "Transaction Debit or Credit", "Gross Transaction Amount", "Gross Transaction Currency",
               "Fee Debit or Credit", "Fee Amount", "Fee Currency", "Custom Field", "Consumer ID",
               "Payment Tracking ID", "Store ID", "Bank Reference ID", "Credit Transactional Fee",
               "Credit Promotional Fee", "Credit Term"]
TRR_COLUMNS = ["Transaction ID", "Invoice ID", "PayPal Reference ID", "PayPal Reference ID Type",
               "Transaction Event Code", "Transaction Initiation Date", "Transaction Completion Date",
               "Transaction Debit or Credit", "Gross Transaction Amount", "Gross Transaction Currency",
               "Fee Debit or Credit", "Fee Amount", "Fee Currency", "Transactional Status", "Insurance Amount",
               "Sales Tax Amount", "Shipping Amount", "Transaction Subject", "Transaction Note", "Payer's Account ID",
               "Payer Address Status", "Item Name", "Item ID", "Option 1 Name", "Option 1 Value", "Option 2 Name",
               "Option 2 Value", "Auction Site", "Auction Buyer ID", "Auction Closing Date", "Shipping Address Line1",
               "Shipping Address Line2", "Shipping Address City", "Shipping Address State", "Shipping Address Zip",
               "Shipping Address Country", "Shipping Method", "Custom Field", "Billing Address Line1",
               "Billing Address Line2", "Billing Address City", "Billing Address State", "Billing Address Zip",
               "Billing Address Country", "Consumer ID", "First Name", "Last Name", "Consumer Business Name",
               "Card Type", "Payment Source", "Shipping Name", "Authorization Review Status",
               "Protection Eligibility", "Payment Tracking ID"]
CODES = {CHARGE: "T0006", REFUND: "T1107", DISPUTE: "T1201", FEE: "T0106", PAYOUT_ROW: "T0400"}
ACCOUNT = "7QJ3XK2LZB9WS"


def file_name(day: int, trr: bool) -> str:
    return f"{'TRR' if trr else 'STL'}-{to_date(day).strftime('%Y%m%d')}.01.{'008' if trr else '009'}.CSV"


def _q(values) -> pa.Array:
    return text.concat('"', values, '"')


def _sb(w: TenantWorld, p: Payments, r: Refunds, rows: StripeRows, payouts: StripePayouts, trr: bool) -> pa.Array:
    n = len(rows)
    pay = np.maximum(rows.pay, 0)
    serial = p.serial[pay]
    refund_no = gather(r.no, rows.ref, rows.cat == REFUND)
    po = np.maximum(np.where(rows.cat == PAYOUT_ROW, rows.payout, 0), 0)
    po_serial = payouts.serial[po] if len(payouts) else np.zeros(n, np.int64)
    payment_id = refs.paypal_txn_ids(w.salt, "pay", serial)
    chargeback_id = lambda i: refs.paypal_txn_ids(w.salt, "chargeback", serial[i])  # noqa: E731
    txn = text.choose(rows.cat, {
        CHARGE: lambda i: payment_id.take(pa.array(i)),
        REFUND: lambda i: refs.paypal_txn_ids(w.salt, "refund", serial[i] * 4 + refund_no[i]),
        DISPUTE: chargeback_id,
        FEE: lambda i: refs.paypal_txn_ids(w.salt, "fee", serial[i]),
        PAYOUT_ROW: lambda i: refs.paypal_txn_ids(w.salt, "withdrawal", po_serial[i]),
    })
    is_txn = rows.cat != PAYOUT_ROW
    reference = text.choose(rows.cat, {CHARGE: "", PAYOUT_ROW: "", REFUND: lambda i: payment_id.take(pa.array(i)),
                                       DISPUTE: lambda i: payment_id.take(pa.array(i)), FEE: chargeback_id})
    order = refs.order_ids(p.code[pay])
    sale = is_txn & (rows.cat != FEE)
    # ref_in_text kinds: no Invoice ID, the order only in the Custom Field (and the TRR's Transaction Subject)
    in_text = (rows.cat == CHARGE) & np.isin(p.kind[pay], nz.ORDER_IN_TEXT)
    note = text.choose(np.where(in_text, 1, np.where(sale, 0, -1)), {
        1: lambda i: refs.order_in_text(w.tenant.upper(), p.code[pay[i]]),
        0: lambda i: text.concat("ord:", order.take(pa.array(i))), -1: ""})
    stamp = text.concat(pc.replace_substring(fmt_ts(rows.created), "-", "/"), " +0000")
    has_fee = rows.fee != 0
    cols = {
        "Transaction ID": _q(txn),
        "Invoice ID": _q(text.where(sale & ~in_text, order, "")),
        "PayPal Reference ID": _q(reference),
        "PayPal Reference ID Type": _q(text.where((rows.cat != CHARGE) & is_txn, "TXN", "")),
        "Transaction Event Code": _q(text.lookup([CODES[k] for k in range(5)], rows.cat)),
        "Transaction Initiation Date": stamp,
        "Transaction Completion Date": stamp,
        "Transaction Debit or Credit": _q(text.where(rows.gross >= 0, "CR", "DR")),
        "Gross Transaction Amount": text.integers(np.abs(rows.gross)),
        "Gross Transaction Currency": _q(text.lookup(CCYS, rows.ccy)),
        "Fee Debit or Credit": _q(text.where(has_fee, text.where(rows.fee > 0, "DR", "CR"), "")),
        "Fee Amount": text.where(has_fee, text.integers(np.abs(rows.fee)), ""),
        "Fee Currency": _q(text.where(has_fee, text.lookup(CCYS, rows.ccy), "")),
        "Custom Field": _q(note),
        "Consumer ID": _q(text.where(sale, refs.paypal_payer_ids(w.salt, serial), "")),
        "Bank Reference ID": _q(text.where(rows.cat == PAYOUT_ROW, refs.paypal_bank_refs(w.salt, po_serial), "")),
    }
    if trr:
        person = p.person[pay]
        first, last = text.lookup(FIRST, person % len(FIRST)), text.lookup(LAST, (person // 32) % len(LAST))
        email = text.concat(first, ".", last, text.zpad((person // 1024) % 100, 2), "@",
                            text.lookup(DOMAINS, (person // 3) % len(DOMAINS)))
        buyer = is_txn & (rows.cat != FEE)
        cols.update({
            "Transactional Status": _q(text.const("S", n)),
            "Transaction Subject": _q(text.where(in_text, note, text.where(buyer, text.concat("Order ", order), ""))),
            "Payer's Account ID": _q(text.where(buyer, email, "")),
            "First Name": _q(text.where(buyer, first, "")), "Last Name": _q(text.where(buyer, last, "")),
            "Payment Source": _q(text.where(buyer, "PayPal", "")),
        })
    names = TRR_COLUMNS if trr else STL_COLUMNS
    empty = text.const('""', n)
    return text.lines([text.const('"SB"', n)] + [cols.get(c, empty if c not in (
        "Credit Transactional Fee", "Credit Promotional Fee", "Credit Term", "Insurance Amount", "Sales Tax Amount",
        "Shipping Amount") else text.const("", n)) for c in names])


def write(path: Path, w: TenantWorld, day: int, p: Payments, r: Refunds, rows: StripeRows, payouts: StripePayouts,
          opening: dict[int, int], trr: bool) -> dict[int, int]:
    """Write day ``day``'s report (``rows``: its SB rows in order); returns the closing balance per currency."""
    d = to_date(day)
    stamp = lambda s: f"{d.strftime('%Y/%m/%d')} {s} +0000"  # noqa: E731
    names = TRR_COLUMNS if trr else STL_COLUMNS
    with path.open("wb") as fh:
        fh.write((f'"RH",{to_date(day + 1).strftime("%Y/%m/%d")} 03:12:45 +0000,"A","{ACCOUNT}",'
                  f'{"008" if trr else "009"},\n"FH",01\n'
                  f'"SH",{stamp("00:00:00")},{stamp("23:59:59")},"{ACCOUNT}",""\n').encode())
        fh.write(("\"CH\"," + ",".join(f'"{c}"' for c in names) + "\n").encode())
        text.write_rows(fh, len(rows), lambda a, b: _sb(w, p, r, rows.rows(a, b), payouts, trr))
        footers, closing = [], dict(opening)
        for ccy in sorted(set(int(c) for c in rows.ccy) | set(opening)):
            mine = rows.ccy == ccy
            g, f = rows.gross[mine], rows.fee[mine]
            totals = [int(g[g > 0].sum()), int(-g[g < 0].sum()), int(-f[f < 0].sum()), int(f[f > 0].sum())]
            begin = opening.get(ccy, 0)
            end = begin + int(rows.net[mine].sum())
            closing[ccy] = end
            pair = lambda v: f'"{"CR" if v >= 0 else "DR"}",{abs(v)}'  # noqa: E731
            body = ",".join(str(x) for x in totals)
            footers.append(f'"{CCYS[ccy]}",{body},{pair(begin)},{pair(end)},{pair(begin)},{pair(end)},'
                           f'"CR",0,"CR",0,{int(mine.sum())}')
        lines = [f'"SF",{x}' for x in footers] + [f'"SC",{len(rows)}'] + [f'"RF",{x}' for x in footers] + [
            f'"RC",{len(rows)}', f'"FF",{len(rows)}']
        fh.write(("\n".join(lines) + "\n").encode())
    return closing
