"""Every reason code on a small hand-written book / Stripe / bank scenario over several days, and
manual match / unmatch decisions that survive reruns."""
import csv
from datetime import date

import pytest

from conftest import DATA, SLICE_DAY
from jobs import corrections
from jobs.export import export
from jobs.match.manual import ManualMatchError, manual_match, manual_unmatch
from jobs.pipeline import run_all

pytestmark = [pytest.mark.spark, pytest.mark.postgres]
MON, TUE, WED, THU = date(2026, 11, 16), date(2026, 11, 17), date(2026, 11, 18), date(2026, 11, 19)
BOOK_HEADER = "payment_id,order_id,psp,psp_reference,type,amount,currency,created_at,customer_email,description"
STRIPE_HEADER = ('"automatic_payout_id","automatic_payout_effective_at","balance_transaction_id","created","currency",'
                 '"gross","fee","net","reporting_category","source_id","charge_id","order_id"')


def stripe_file(path, payout, effective, rows):
    lines = [STRIPE_HEADER]
    for i, (charge, amount, order) in enumerate(rows, start=1):
        lines.append(f'"{payout}","{effective} 00:00:00","txn_{payout}_{i}","2026-11-16 10:0{i}:00","eur",'
                     f'"{amount}","0.00","{amount}","charge","{charge}","{charge}","{order}"')
    path.write_text("\n".join(lines) + "\n")


def camt_file(path, day, credits):
    total = sum(int(a.replace(".", "")) for a, _ in credits)
    entries = "".join(
        f'<Ntry><Amt Ccy="EUR">{a}</Amt><CdtDbtInd>CRDT</CdtDbtInd><BookgDt><Dt>{day}</Dt></BookgDt>'
        f'<ValDt><Dt>{day}</Dt></ValDt><AcctSvcrRef>R{i}</AcctSvcrRef><NtryDtls><TxDtls><RmtInf><Ustrd>{text}'
        f'</Ustrd></RmtInf></TxDtls></NtryDtls></Ntry>' for i, (a, text) in enumerate(credits))
    path.write_text(
        '<?xml version="1.0"?><Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.02"><BkToCstmrStmt>'
        f'<GrpHdr><MsgId>M{day}</MsgId></GrpHdr><Stmt><Id>S{day}</Id><Acct><Id><IBAN>NL91ABNA0417164300</IBAN></Id>'
        '<Ccy>EUR</Ccy></Acct><Bal><Tp><CdOrPrtry><Cd>OPBD</Cd></CdOrPrtry></Tp><Amt Ccy="EUR">0.00</Amt>'
        f'<CdtDbtInd>CRDT</CdtDbtInd></Bal><Bal><Tp><CdOrPrtry><Cd>CLBD</Cd></CdOrPrtry></Tp><Amt Ccy="EUR">'
        f'{total // 100}.{total % 100:02d}</Amt><CdtDbtInd>CRDT</CdtDbtInd></Bal>{entries}</Stmt></BkToCstmrStmt></Document>')


@pytest.fixture
def scenario(tmp_path):
    days = {d: tmp_path / d.isoformat() for d in (MON, TUE)}
    for folder in days.values():
        folder.mkdir()
    book = [
        "P1,ORD-1,stripe,ch_1,payment,100.00,EUR,2026-11-16T10:00:00+00:00,a@example.com,",
        "P2,ORD-2,stripe,ch_2,payment,50.00,EUR,2026-11-16T10:00:00+00:00,b@example.com,",
        "P3,ORD-3,stripe,ch_3,payment,20.00,USD,2026-11-16T10:00:00+00:00,c@example.com,",
        "P4,ORD-4,stripe,,payment,30.00,EUR,2026-11-16T10:03:30+00:00,d@example.com,",
        "P5,ORD-5,stripe,ch_5,payment,12.00,EUR,2026-11-16T10:00:00+00:00,e@example.com,",
        "P6,ORD-6,stripe,ch_6,payment,10.00,EUR,2026-11-16T10:00:00+00:00,f@example.com,",
    ]
    (days[MON] / "book_payments_2026-11-16.csv").write_text("\n".join([BOOK_HEADER, *book]) + "\n")
    (days[TUE] / "book_payments_2026-11-17.csv").write_text("\n".join([BOOK_HEADER, book[0]]) + "\n")
    stripe_file(days[MON] / "stripe_po_AAAAAA1.csv", "po_AAAAAA1", TUE,
                [("ch_1", "100.00", "ORD-1"), ("ch_2", "55.00", "ORD-2"), ("ch_3", "20.00", "ORD-3"),
                 ("ch_4a", "30.00", "ORD-4"), ("ch_4b", "30.00", "ORD-4"), ("ch_9", "40.00", "ORD-9")])
    stripe_file(days[MON] / "stripe_po_BBBBBB2.csv", "po_BBBBBB2", MON, [("ch_6", "10.00", "ORD-6")])
    camt_file(days[TUE] / "camt053_2026-11-17.xml", TUE, [("270.00", "STRIPE po_AAAAAA1")])
    return days


def exceptions(settings, tenant_id, tmp_path):
    export(settings, tenant_id, "exceptions", tmp_path / "e.csv")
    with open(tmp_path / "e.csv") as fh:
        return {(r["file_name"], int(r["record_ordinal"]), r["reason_code"]) for r in csv.DictReader(fh)}


def test_each_reason_code_on_the_record_that_carries_it(spark, settings, tenant_id, scenario, tmp_path):
    run_all(settings, tenant_id, MON, scenario[MON], "mon", spark=spark)
    run_all(settings, tenant_id, TUE, scenario[TUE], "tue", spark=spark)
    early = exceptions(settings, tenant_id, tmp_path)
    assert ("book_payments_2026-11-16.csv", 5, "MISSING_IN_PSP") not in early     # still EXPECTED on Tuesday
    run_all(settings, tenant_id, THU, None, "thu", spark=spark)
    a, b, book, dup, bank = ("stripe_po_AAAAAA1.csv", "stripe_po_BBBBBB2.csv", "book_payments_2026-11-16.csv",
                             "book_payments_2026-11-17.csv", "camt053_2026-11-17.xml")
    assert exceptions(settings, tenant_id, tmp_path) == {
        (book, 2, "AMOUNT_MISMATCH"), (a, 2, "AMOUNT_MISMATCH"),
        (book, 3, "CURRENCY_MISMATCH"), (a, 3, "CURRENCY_MISMATCH"),
        (book, 4, "AMBIGUOUS"),
        (book, 5, "MISSING_IN_PSP"),
        (a, 4, "MISSING_IN_BOOK"), (a, 5, "MISSING_IN_BOOK"), (a, 6, "MISSING_IN_BOOK"),
        (dup, 1, "DUPLICATE"),
        (bank, 1, "PAYOUT_MISMATCH"),
        (b, 1, "MISSING_IN_BANK"),
    }


def test_unmatch_and_manual_match_survive_reruns(spark, slice_day, tmp_path):
    settings, tenant_id = slice_day.settings, slice_day.tenant_id                    # the slice's day, run once
    day, next_day = SLICE_DAY, date(2026, 11, 23)
    book_row, stripe_row = ("book_payments_2026-11-19.csv", 2), ("stripe_payout_po_TEST1.csv", 2)

    def groups():
        export(settings, tenant_id, "matches", tmp_path / "m.csv")
        out = {}
        for r in csv.DictReader(open(tmp_path / "m.csv")):
            out.setdefault((r["match_id"], r["relation"], r["level"], r["rule_id"]), set()).add(
                (r["file_name"], int(r["record_ordinal"])))
        return out

    before = groups()
    l2 = [k for k, members in before.items() if book_row in members and k[1] == "book_psp"]
    assert len(l2) == 1 and l2[0][2] == "2"
    corrections.grant(settings, tenant_id, "root", "admin", "root")           # the tenant's first admin
    corrections.grant(settings, tenant_id, "carol", "approver", "root")
    proposal = manual_unmatch(spark, settings, tenant_id, book_row, "book_psp", "wrong order", "alice")
    assert proposal.detail["match_id"] == l2[0][0]
    with pytest.raises(corrections.CorrectionError, match="already covers"):            # one pending per subject
        manual_unmatch(spark, settings, tenant_id, book_row, "book_psp", "twice", "dave")
    run_all(settings, tenant_id, day, None, "r1", spark=spark)            # proposed only: nothing changes yet
    assert groups() == before
    with pytest.raises(corrections.CorrectionError, match="someone other than the proposer"):
        corrections.approve(settings, tenant_id, proposal.correction_id, "alice")
    corrections.approve(settings, tenant_id, proposal.correction_id, "carol")
    with pytest.raises(ManualMatchError, match="no active"):
        manual_unmatch(spark, settings, tenant_id, book_row, "book_psp", "again", "alice")

    for _ in range(2):                                      # rerun of the same day: the decision holds
        run_all(settings, tenant_id, day, None, "r2", spark=spark)
        after = groups()
        assert not any(book_row in m for k, m in after.items() if k[1] == "book_psp")
        assert len(after) == len(before) - 1                # nothing else changed (payouts still matched)

    proposal = manual_match(spark, settings, tenant_id, "book_psp", [book_row, stripe_row], "confirmed by phone", "bob")
    mid = proposal.detail["match_id"]
    corrections.approve(settings, tenant_id, proposal.correction_id, "carol")
    run_all(settings, tenant_id, next_day, None, "r3", spark=spark)
    run_all(settings, tenant_id, next_day, None, "r4", spark=spark)
    manual = [k for k in groups() if k[0] == mid]
    assert manual == [(mid, "book_psp", "0", "manual")]
    with pytest.raises(ManualMatchError, match="at least one book record"):
        manual_match(spark, settings, tenant_id, "book_psp", [stripe_row], "x", "bob")


def test_a_notified_payment_never_settled_becomes_late_settlement(spark, settings, tenant_id, tmp_path):
    """Stripe webhook events are notifications for this tenant: ch_A appears in the payout report the same
    day (settled), ch_LATE never does and is LATE_SETTLEMENT after T+2 + 2 business days."""
    import json

    from conftest import write_tenant_config

    write_tenant_config(settings.tenant_config_dir, tenant_id, psps={
        "stripe": {"settlement_business_days": 2, "notification_formats": ["stripe.events"]},
        "adyen": {"settlement_business_days": 2}})
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "stripe_payout_po_TEST1.csv").write_bytes((DATA / "slice" / "stripe_payout_po_TEST1.csv").read_bytes())
    created = 1795082400                                                   # 2026-11-19 10:00 UTC

    def event(eid, charge, amount):
        return json.dumps({"id": eid, "object": "event", "type": "charge.succeeded", "created": created,
                           "api_version": "2024-06-20", "livemode": False, "pending_webhooks": 1,
                           "data": {"object": {"id": charge, "object": "charge", "amount": amount,
                                               "amount_captured": amount, "captured": True, "currency": "eur",
                                               "created": created, "status": "succeeded", "paid": True}}})
    (folder / "stripe_events_0000000001.jsonl").write_text(
        event("evt_1", "ch_A", 10000) + "\n" + event("evt_2", "ch_LATE", 4200) + "\n")
    fri, tue, wed = date(2026, 11, 20), date(2026, 11, 24), date(2026, 11, 25)
    run_all(settings, tenant_id, fri, folder, "fri", spark=spark)
    run_all(settings, tenant_id, tue, None, "tue", spark=spark)
    assert ("stripe_events_0000000001.jsonl", 2, "LATE_SETTLEMENT") not in exceptions(settings, tenant_id, tmp_path)
    run_all(settings, tenant_id, wed, None, "wed", spark=spark)                     # Thu 19 + 4 business days
    late = {e for e in exceptions(settings, tenant_id, tmp_path) if e[0].startswith("stripe_events")}
    assert late == {("stripe_events_0000000001.jsonl", 2, "LATE_SETTLEMENT")}
