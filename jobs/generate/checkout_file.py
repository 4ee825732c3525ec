"""Writer: Checkout.com Settlement Breakdown report (one per payout) and Payouts report (one per payout day).

Breakdown: one row per charge, refund or chargeback of the payout, signed major units in the holding
currency, fees as negative deductions split into processing, scheme and interchange, ISO-8601 UTC
times. Payouts report: one row per payout of the day with its components (payments, refunds,
chargebacks, the fee families), which add up to the Payout Amount.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa

from jobs.generate import refs, text
from jobs.generate.dates import fmt_ts, to_date
from jobs.generate.events import Payments
from jobs.generate.simple_psp import CHECKOUT_CHARGEBACK_FEE, CHECKOUT_REFUND_FEE, checkout_fee_parts
from jobs.generate.stripe import CHARGE, DISPUTE, REFUND, StripePayouts, StripeRows
from jobs.generate.world import CCYS, EXPS, TenantWorld

BREAKDOWN = ["Client Entity ID", "Client Entity Name", "Processing Channel ID", "Processing Channel Name", "Type",
             "Payment ID", "Reference", "Processed On", "Available On", "Holding Currency", "Payout ID",
             "Gross In Holding Currency", "Deduction In Holding Currency", "Net In Holding Currency",
             "Processing Fee In Holding Currency", "Scheme Fee In Holding Currency", "Interchange In Holding Currency",
             "Tax In Holding Currency", "Reserve In Holding Currency", "Processing Currency",
             "Gross In Processing Currency", "FX Rate Applied", "Payment Method"]
PAYOUTS = ["Client Entity ID", "Client Entity Name", "Sub Entity ID", "Sub Entity Name", "Currency Account ID",
           "Currency Account Name", "Holding Currency", "Payout ID", "Payout Date", "Reporting Start Date",
           "Reporting End Date", "Payout Amount", "Merchant Payout Fees", "Payments", "Refunds", "Chargebacks",
           "Pay To Cards", "Card Payment Interchange Fees", "Card Payment Scheme Fees", "Acquiring Premiums",
           "Card Payment Gateway Fees", "Card Payment Blended Fees", "Refunded Interchange Fees", "Refund Scheme Fees",
           "Refund Gateway Fees", "Chargeback Fees", "Retrieval Fees", "Representment Fees",
           "Pay To Card Interchange Fees", "Pay To Card Scheme Fees", "Pay To Card Fees",
           "Alternative Payment Method Fees", "Adjustments", "Tax", "Account Updater Fees", "Transfers In",
           "Transfers Out", "Authentication Fees", "Authentication Scheme Fees", "Risk Engine Fees",
           "Intelligent Acceptance Fees", "Network Token Fees"]
TYPES = {CHARGE: "Charge", REFUND: "Refund", DISPUTE: "Chargeback"}
METHODS = ["VISA", "MASTERCARD", "AMEX"]


def entity(w: TenantWorld) -> str:
    return f"ent_{w.tenant}"


def breakdown_name(w: TenantWorld, payouts: StripePayouts, i: int) -> str:
    po = refs.checkout_payout_ids(w.salt, payouts.serial[i: i + 1])[0].as_py()
    return f"settlement-breakdown_{entity(w)}_{to_date(int(payouts.day[i])).strftime('%Y%m%d')}_{po}_1.csv"


def payouts_name(w: TenantWorld, day: int) -> str:
    return (f"payouts_{entity(w)}_{to_date(day).strftime('%Y%m%d')}_"
            f"{to_date(day + 1).strftime('%Y%m%d')}_1.csv")


def _iso(t: np.ndarray) -> pa.Array:
    return text.concat(fmt_ts(t, sep="T"), ".000")


def fee_parts(rows: StripeRows) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(processing, scheme, interchange) per row, positive costs summing to ``rows.fee``."""
    proc, scheme, inter = checkout_fee_parts(np.abs(rows.gross))
    charge = rows.cat == CHARGE
    processing = np.where(charge, proc, np.where(rows.cat == REFUND, CHECKOUT_REFUND_FEE, CHECKOUT_CHARGEBACK_FEE))
    return processing, np.where(charge, scheme, 0), np.where(charge, inter, 0)


def _breakdown_lines(w: TenantWorld, p: Payments, rows: StripeRows, payout_id: str, payout_day: int) -> pa.Array:
    n = len(rows)
    exp = EXPS[rows.ccy]
    processing, scheme, interchange = fee_parts(rows)
    money = lambda v: text.amount(v, exp, strip=True)  # noqa: E731
    ccy = text.lookup(CCYS, rows.ccy)
    cols = {
        "Client Entity ID": text.const(entity(w), n), "Client Entity Name": text.const(w.legal_name, n),
        "Processing Channel ID": text.const(f"pc_{w.tenant}_web", n),
        "Processing Channel Name": text.const(f"{w.company_account} web shop", n),
        "Type": text.lookup([TYPES[k] for k in range(3)], rows.cat),
        "Payment ID": refs.checkout_payment_ids(w.salt, p.serial[rows.pay]),
        "Reference": refs.order_ids(p.code[rows.pay]),
        "Processed On": _iso(rows.created),
        "Available On": text.const(f"{to_date(payout_day).isoformat()}T00:00:00.000", n),
        "Holding Currency": ccy, "Payout ID": text.const(payout_id, n),
        "Gross In Holding Currency": money(rows.gross), "Deduction In Holding Currency": money(-rows.fee),
        "Net In Holding Currency": money(rows.net), "Processing Fee In Holding Currency": money(-processing),
        "Scheme Fee In Holding Currency": money(-scheme), "Interchange In Holding Currency": money(-interchange),
        "Tax In Holding Currency": text.const("0", n), "Reserve In Holding Currency": text.const("0", n),
        "Processing Currency": ccy, "Gross In Processing Currency": money(rows.gross),
        "FX Rate Applied": text.const("1", n),
        "Payment Method": text.lookup(METHODS, np.minimum(p.method[rows.pay], 2)),
    }
    return text.lines([cols[c] for c in BREAKDOWN])


def write_breakdown(path: Path, w: TenantWorld, p: Payments, rows: StripeRows, payouts: StripePayouts, i: int) -> None:
    payout_id = refs.checkout_payout_ids(w.salt, payouts.serial[i: i + 1])[0].as_py()
    with path.open("wb") as fh:
        fh.write(text.header_line(BREAKDOWN))
        text.write_rows(fh, len(rows), lambda a, b: _breakdown_lines(w, p, rows.rows(a, b), payout_id,
                                                                      int(payouts.day[i])))


def write_payouts(path: Path, w: TenantWorld, rows: StripeRows, payouts: StripePayouts, idx: np.ndarray) -> None:
    """The day's payouts ``idx`` with their components (from the payouts' rows)."""
    processing, scheme, interchange = fee_parts(rows)
    lines = [",".join(PAYOUTS)]
    for i in idx:
        mine = rows.payout == i
        ccy = int(payouts.ccy[i])
        exp = int(EXPS[ccy])
        cat, gross = rows.cat[mine], rows.gross[mine]
        comp = {
            "Payments": gross[cat == CHARGE].sum(), "Refunds": gross[cat == REFUND].sum(),
            "Chargebacks": gross[cat == DISPUTE].sum(),
            "Card Payment Interchange Fees": -interchange[mine].sum(), "Card Payment Scheme Fees": -scheme[mine].sum(),
            "Card Payment Gateway Fees": -processing[mine & (rows.cat == CHARGE)].sum(),
            "Refund Gateway Fees": -processing[mine & (rows.cat == REFUND)].sum(),
            "Chargeback Fees": -processing[mine & (rows.cat == DISPUTE)].sum(),
        }
        assert sum(int(v) for v in comp.values()) == int(payouts.amount[i])
        day = int(payouts.day[i])
        po = refs.checkout_payout_ids(w.salt, payouts.serial[i: i + 1])[0].as_py()
        start = (int(payouts.serial[i]) // 8) + 18_262
        values = {
            "Client Entity ID": entity(w), "Client Entity Name": w.legal_name, "Sub Entity ID": f"{entity(w)}_eu",
            "Sub Entity Name": w.merchant_account, "Currency Account ID": f"ca_{w.tenant}_{CCYS[ccy].lower()}",
            "Currency Account Name": f"{w.company_account} {CCYS[ccy]}", "Holding Currency": CCYS[ccy],
            "Payout ID": po, "Payout Date": f"{to_date(day).isoformat()}T02:00:00.000",
            "Reporting Start Date": f"{to_date(start).isoformat()}T00:00:00.000",
            "Reporting End Date": f"{to_date(start + 1).isoformat()}T00:00:00.000",
            "Payout Amount": int(payouts.amount[i]),
            **{k: int(v) for k, v in comp.items()},
        }
        row = []
        for c in PAYOUTS:
            v = values.get(c, 0 if c not in ("Client Entity ID",) else "")
            row.append(text.amount(np.array([v]), exp, strip=True)[0].as_py() if isinstance(v, int) else v)
        lines.append(",".join(f'"{x}"' if "," in x else x for x in row))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")

