"""Command line: ``python -m jobs.generate --out DIR --end-date YYYY-MM-DD [options]``."""
from __future__ import annotations

import argparse
import sys
from datetime import date

from jobs.generate.core import BANK_FORMATS, PAYPAL_FORMATS, STRIPE_FORMATS, generate
from jobs.generate.noise import NOISE_LEVELS


def _csv_list(text: str) -> list[str]:
    return [x.strip() for x in text.split(",") if x.strip()]


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="python -m jobs.generate",
        description="Deterministic synthetic PSP, bank and book files with their ground truth.")
    ap.add_argument("--out", required=True, help="output folder (OUT/<tenant>/landing/<date>/, OUT/<tenant>/truth/)")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--end-date", required=True, type=date.fromisoformat, help="last delivery day, YYYY-MM-DD")
    ap.add_argument("--days", type=int, default=3, help="delivery days end_date-N+1 .. end_date (default 3)")
    ap.add_argument("--payments-per-day", type=int, default=1000, help="book payments per day and tenant")
    ap.add_argument("--tenants", type=_csv_list, default=["acme"], help="comma-separated tenant ids (default acme)")
    ap.add_argument("--noise", choices=NOISE_LEVELS, default="medium")
    ap.add_argument("--psps", type=_csv_list, default=["stripe", "adyen"],
                    help="comma-separated: stripe,adyen,paypal,braintree,checkout (default stripe,adyen)")
    ap.add_argument("--stripe-format", choices=STRIPE_FORMATS, default="itemized",
                    help="itemized payout reconciliation (default), Dashboard balance_history, or webhook events")
    ap.add_argument("--paypal-format", choices=PAYPAL_FORMATS, default="stl", help="STL (default) or TRR")
    ap.add_argument("--bank-format", choices=BANK_FORMATS, default="camt053", help="camt053 (default), mt940, bai2")
    ap.add_argument("--xlsx", type=_csv_list, default=[],
                    help="deliver these tabular kinds as Excel workbooks: stripe,adyen,braintree,checkout,book")
    return ap


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        report = generate(args.out, seed=args.seed, end_date=args.end_date, days=args.days,
                          payments_per_day=args.payments_per_day, tenants=args.tenants, noise=args.noise,
                          psps=args.psps, stripe_format=args.stripe_format, paypal_format=args.paypal_format,
                          bank_format=args.bank_format, xlsx=args.xlsx)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    files = ", ".join(f"{k}={v}" for k, v in sorted(report.files.items()))
    records = ", ".join(f"{k}={v}" for k, v in sorted(report.records.items()))
    print(f"generated {len(report.tenants)} tenant(s), days {report.days[0]}..{report.days[-1]} "
          f"in {report.elapsed_seconds:.1f}s into {report.out}\n  files: {files}\n  records: {records}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
