"""Writer: Adyen settlement details report, one CSV per batch (classic 30 columns or the 2021 layout).

Unsigned amounts with trailing zeros dropped (``40``, ``40.2``, ``31.45``) as Adyen writes them, empty
fee cells when zero, Creation Date in Amsterdam local time with CET/CEST in ``TimeZone``; quoted only
where needed (the MerchantPayout reference).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa

from jobs.generate import refs, text
from jobs.generate.adyen import CLOSE_TIME, FEE, PAYOUT, REFUNDED, SETTLED, TYPES, CHARGEBACK, AdyenBatches, AdyenRows
from jobs.generate.dates import DAY, MONTHS, amsterdam_offset, civil, fmt_ts
from jobs.generate.events import Payments, Refunds
from jobs.generate.world import CCYS, EXPS, TenantWorld

BASE = ["Company Account", "Merchant Account", "Psp Reference", "Merchant Reference", "Payment Method",
        "Creation Date", "TimeZone", "Type", "Modification Reference", "Gross Currency", "Gross Debit (GC)",
        "Gross Credit (GC)", "Exchange Rate", "Net Currency", "Net Debit (NC)", "Net Credit (NC)", "Commission (NC)",
        "Markup (NC)", "Scheme Fees (NC)", "Interchange (NC)", "Payment Method Variant"]
RESERVED = [f"Reserved{i}" for i in range(4, 11)]
CLASSIC = BASE + ["Modification Merchant Reference", "Batch Number"] + RESERVED
LAYOUT_2021 = BASE + ["Batch Number"] + RESERVED + ["Modification Merchant Reference", "Booking Date",
                                                     "Booking Date TimeZone"]
METHODS = ["visa", "mc", "amex", "ideal"]
VARIANTS = ["visastandardcredit", "mcstandardcredit", "amex", "ideal"]


def file_name(batches: AdyenBatches, i: int) -> str:
    return f"settlement_detail_report_batch_{int(batches.number[i])}.csv"


def tz_names(t: np.ndarray) -> pa.Array:
    return text.lookup(["CET", "CEST"], (amsterdam_offset(t) == 7200).astype(np.int8))


def local_ts(t: np.ndarray) -> pa.Array:
    return fmt_ts(t + amsterdam_offset(t))


def fee_reference(day: int) -> str:
    y, m, d = (int(x[0]) for x in civil(np.array([day])))
    return f"Transaction Fees {MONTHS[m - 1]} {d:02d} {y}"


def _opt(values: np.ndarray, exp, show: np.ndarray) -> pa.Array:
    return text.where(show, text.amount(values, exp, signed=False, strip=True), "")


def _columns(w: TenantWorld, p: Payments, r: Refunds, rows: AdyenRows, number: int, close: int) -> dict:
    n = len(rows)
    pay = np.maximum(rows.pay, 0)
    txn = rows.typ <= CHARGEBACK
    serial = p.serial[pay]
    ccy = p.ccy[pay]
    order = refs.order_ids(p.code[pay])
    split = txn & (p.ncap[pay] > 1) & (rows.typ == SETTLED)
    merchant_ref = text.choose(np.where(split, 9, rows.typ), {
        SETTLED: "<auto>",
        9: lambda i: text.concat(order.take(pa.array(i)), "-C", text.zpad(rows.no[i] + 1, 1)),
        REFUNDED: lambda i: refs.book_refund_ids(p.code[pay[i]], rows.no[i]),
        CHARGEBACK: "", FEE: "", PAYOUT: "",
    })
    tx = refs.adyen_tx_refs(w.salt, np.array([number]))[0].as_py()
    mod = text.choose(rows.typ, {
        SETTLED: lambda i: refs.adyen_capture_refs(w.salt, serial[i], rows.no[i]),
        REFUNDED: lambda i: refs.adyen_refund_refs(w.salt, serial[i], rows.no[i]),
        CHARGEBACK: lambda i: refs.adyen_chargeback_refs(w.salt, serial[i]),
        FEE: fee_reference(close - 1),
        PAYOUT: f'"{tx} batch {number}, {w.merchant_account}"',
    })
    gexp = EXPS[ccy]
    booking_t = np.full(n, close * DAY + CLOSE_TIME)
    booking_t = booking_t - amsterdam_offset(booking_t)
    cols = {
        "Company Account": text.const(w.company_account, n),
        "Merchant Account": text.const(w.merchant_account, n),
        "Psp Reference": text.choose(txn, {True: lambda i: refs.adyen_payment_refs(w.salt, serial[i]), False: ""}),
        "Merchant Reference": text.where(txn, order, ""),
        "Payment Method": text.where(txn, text.lookup(METHODS, p.method[pay]), ""),
        "Creation Date": local_ts(rows.t),
        "TimeZone": tz_names(rows.t),
        "Type": text.lookup(TYPES, rows.typ),
        "Modification Reference": mod,
        "Gross Currency": text.where(txn, text.lookup(CCYS, ccy), ""),
        "Gross Debit (GC)": _opt(rows.gross, gexp, txn & (rows.typ != SETTLED)),
        "Gross Credit (GC)": _opt(rows.gross, gexp, rows.typ == SETTLED),
        "Exchange Rate": _opt(rows.rate, 6, txn),
        "Net Currency": text.const("EUR", n),
        "Net Debit (NC)": _opt(rows.net, 2, ~rows.credit),
        "Net Credit (NC)": _opt(rows.net, 2, rows.credit),
        "Commission (NC)": _opt(rows.commission, 2, rows.commission > 0),
        "Markup (NC)": _opt(rows.markup, 2, rows.markup > 0),
        "Scheme Fees (NC)": _opt(rows.scheme, 2, rows.scheme > 0),
        "Interchange (NC)": _opt(rows.interchange, 2, rows.interchange > 0),
        "Payment Method Variant": text.where(txn, text.lookup(VARIANTS, p.method[pay]), ""),
        "Modification Merchant Reference": merchant_ref,
        "Batch Number": text.const(str(number), n),
        "Booking Date": local_ts(booking_t),
        "Booking Date TimeZone": tz_names(booking_t),
    }
    for name in RESERVED:
        cols[name] = text.const("", n)
    return cols


def write(path: Path, w: TenantWorld, p: Payments, r: Refunds, rows: AdyenRows, batches: AdyenBatches,
          i: int) -> None:
    """Write batch ``i`` (``rows`` are exactly its rows, in file order)."""
    names = LAYOUT_2021 if batches.style[i] else CLASSIC
    number, close = int(batches.number[i]), int(batches.close_day[i])

    def build(start: int, stop: int) -> pa.Array:
        cols = _columns(w, p, r, rows.rows(start, stop), number, close)
        return text.lines([cols[c] for c in names])

    with path.open("wb") as fh:
        fh.write(text.header_line(names))
        text.write_rows(fh, len(rows), build)
