"""The run summary as a finance operator reads it, built from what PostgreSQL stores for the run."""
from __future__ import annotations

from collections import defaultdict
from datetime import date

from jobs.money import format_minor
from jobs.settings import Settings
from jobs.store.db import connect, sql

LEVEL_NAMES = {"L0": "manual", "L1": "exact PSP id", "L2": "merchant reference", "L3": "tolerance",
               "L4": "many-to-one"}


def load_run(settings: Settings, tenant_id: str, business_date: date) -> dict | None:
    with connect(settings, tenant_id) as conn:
        return conn.execute(sql("run_summary"), {"tenant_id": tenant_id, "business_date": business_date}).fetchone()


def render(run: dict) -> str:
    m: dict[str, dict[str, int]] = defaultdict(dict)
    for row in run["metrics"]:
        m[row["metric"]][row["dimension"]] = row["value"]
    s = run["summary"] or {}
    out = [f"Reconciliation of {run['tenant_id']} for {run['business_date']}  (run {run['run_id']}, {run['status']})",
           ""]
    out.append("Records loaded today, by source:")
    for source, n in sorted(m["records_loaded"].items()):
        out.append(f"  {source:<12} {n:>10,}")
    quarantined = sum(m["records_quarantined"].values())
    out.append(f"  quarantined  {quarantined:>10,}" + (
        "  (" + ", ".join(f"{k}: {v}" for k, v in sorted(m["records_quarantined"].items())) + ")" if quarantined else ""))
    out += ["", "Matched by this run (records in match groups / groups):"]
    for key in sorted(m["matched_records"]):
        relation, level = key.split("/")
        out.append(f"  {relation:<12} {level} {LEVEL_NAMES.get(level, ''):<20} "
                   f"{m['matched_records'][key]:>10,} / {m['match_groups'][key]:,}")
    if not m["matched_records"]:
        out.append("  (nothing new matched)")
    total, matched = m["book_records"].get("total", 0), m["book_records"].get("matched", 0)
    rate = f"{100 * matched / total:.2f}%" if total else "n/a"
    window = m["book_records"].get("window_days")
    scope = f"book records of the last {window} days" if window else "all book records so far"
    out += ["", f"Book match rate ({scope}): {matched:,} of {total:,} = {rate}"]
    out += ["", "Open exceptions by reason (after this run):"]
    for reason, n in sorted(m["exceptions"].items(), key=lambda kv: (-kv[1], kv[0])):
        out.append(f"  {reason:<20} {n:>10,}")
    if not m["exceptions"]:
        out.append("  none")
    expected = sum(m["expected"].values())
    out.append(f"  (plus {expected:,} items still inside their settlement window: EXPECTED, not exceptions)")
    out += ["", "Ledger for the day (debits = credits per currency):"]
    for ccy in sorted(m["ledger_debit_minor"]):
        dr, cr = m["ledger_debit_minor"][ccy], m["ledger_credit_minor"][ccy]
        out.append(f"  {ccy}  debit {format_minor(dr, ccy):>16}  credit {format_minor(cr, ccy):>16}  "
                   f"{'balanced' if dr == cr else 'NOT BALANCED'}  ({m['journals'].get(ccy, 0):,} journals)")
    out.append(f"  ledger balanced: {'yes' if s.get('ledger_balanced') else 'NO'}")
    out += ["", "Trial balance of the day:"]
    for key in sorted(m["trial_balance_debit_minor"]):
        account, ccy = key.rsplit("|", 1)
        dr, cr = m["trial_balance_debit_minor"][key], m["trial_balance_credit_minor"].get(key, 0)
        net = dr - cr
        out.append(f"  {account:<34} {ccy}  Dr {format_minor(dr, ccy):>14}  Cr {format_minor(cr, ccy):>14}  "
                   f"net {format_minor(net, ccy):>14}")
    out += ["", "Fee checks against the rate card (records posted by this run, plus open fee exceptions):"]
    out.append("  " + ("  ".join(f"{k} {v:,}" for k, v in sorted(m["fee_checks"].items())) or "no fees charged"))
    out += ["", "Disputes by state (all):"]
    out.append("  " + ("  ".join(f"{k} {v:,}" for k, v in sorted(m["disputes"].items())) or "none"))
    refused = m["dispute_transitions_refused"].get("open", 0)
    if refused:
        out.append(f"  {refused:,} refused lifecycle transition(s) waiting for acknowledgement (DISPUTE_TRANSITION)")
    out += ["", f"Outputs: lake {s.get('lake')} (Delta tables silver/events, gold/matches, gold/item_status, "
                f"gold/journal_entries, gold/fee_checks); PostgreSQL tables recon_run, run_metric, exception_item, "
                f"raw_file, dispute, erp_export_batch."]
    return "\n".join(out)
