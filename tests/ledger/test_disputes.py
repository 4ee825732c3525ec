"""The dispute lifecycle against PostgreSQL: PSP records and operators move a dispute only along the
allowed transitions; an impossible one is refused, recorded and raised as an exception (until
acknowledged) instead of overwriting the state; evidence is recorded with key, checksum, who and when;
missed deadlines lose the dispute; reruns apply nothing twice."""
from datetime import date, datetime

import pytest

from jobs.corrections import approve, grant, list_corrections
from jobs.ledger import dispute_ops as ops
from jobs.ledger import disputes
from jobs.ledger.disputes import TRANSITIONS, DisputeTransitionError, next_state
from jobs.pipeline import prepare
from jobs.store.db import connect, sql

pytestmark = pytest.mark.postgres
D1, D2, D3 = date(2026, 11, 2), date(2026, 11, 5), date(2026, 11, 20)
SHA = "ab" * 32


def rec(eid, etype, ref, payment="ch_1", source="stripe", amount=-5000, at=datetime(2026, 11, 2, 10)):
    return {"event_id": eid, "source": source, "psp": source, "event_type": etype, "psp_ref": ref,
            "psp_payment_ref": payment, "amount_minor": amount, "currency": "EUR", "booked_at": at,
            "file_name": f"{eid}.csv", "record_ordinal": 1}


def state(settings, tenant, payment="ch_1"):
    with connect(settings, tenant) as conn:
        return conn.execute("SELECT dispute_id, state, cycle, due_date FROM dispute WHERE tenant_id = %s AND "
                            "payment_ref = %s", (tenant, payment)).fetchone()


def test_every_transition_outside_the_table_is_refused():
    for s in disputes.STATES:
        for action in ("open_window", "accept", "submit", "deadline", "reversal", "lose", "second_chargeback"):
            if (s, action) in TRANSITIONS:
                assert next_state(s, action) == TRANSITIONS[(s, action)]
            else:
                with pytest.raises(DisputeTransitionError, match=f"state '{s}' cannot take '{action}'"):
                    next_state(s, action)


def test_lifecycle_from_psp_records_and_operators(settings, tenant_id):
    cfg = prepare(settings, tenant_id)
    sync = lambda day, records: disputes.sync(settings, cfg, day, records)  # noqa: E731
    report, webhook = rec("e1", "chargeback", "du_1"), rec("e2", "chargeback", "du_1", at=datetime(2026, 11, 2, 9))
    assert sync(D1, [report, webhook]) == {"applied": 1, "noted": 1, "expired": 0}
    d = state(settings, tenant_id)
    assert (d["state"], d["cycle"], d["due_date"]) == ("evidence_due", 1, date(2026, 11, 9))   # 7 days for Stripe
    assert sync(D1, [report, webhook]) == {"skipped": 2, "expired": 0}                         # a rerun of the day

    early_win = rec("e3", "chargeback_reversal", "du_1", amount=5000)
    assert sync(D2, [early_win]) == {"refused": 1, "expired": 0}
    assert state(settings, tenant_id)["state"] == "evidence_due"                  # not overwritten
    assert [e["detail"] for e in ops.refused(settings, tenant_id)] == [
        "a dispute in state 'evidence_due' cannot take 'reversal' (allowed from evidence_due: accept, deadline, submit)"]
    with connect(settings, tenant_id) as conn:                                                # exceptions queue staging
        conn.execute(sql("exceptions_stage"))
        conn.execute(sql("exceptions_stage_disputes"), {"tenant_id": tenant_id, "business_date": D2})
        staged = conn.execute("SELECT event_id, relation, reason_code, file_name FROM exception_stage").fetchall()
    assert [tuple(r.values()) for r in staged] == [("e3", "dispute", "DISPUTE_TRANSITION", "e3.csv")]

    with pytest.raises(DisputeTransitionError, match="attach evidence before submitting"):
        ops.transition(settings, tenant_id, d["dispute_id"], "submit", "ann")
    with pytest.raises(DisputeTransitionError, match="64 hex digits"):
        ops.add_evidence(settings, tenant_id, d["dispute_id"], "s3://docs/receipt.pdf", "xyz", None, "ann")
    ops.add_evidence(settings, tenant_id, d["dispute_id"], "s3://docs/receipt.pdf", SHA, "delivery proof", "ann")
    assert ops.transition(settings, tenant_id, d["dispute_id"], "submit", "ann") == "submitted"
    assert sync(D2, [rec("e4", "chargeback_reversal", "du_1", amount=5000)])["applied"] == 1
    assert state(settings, tenant_id)["state"] == "won"
    assert sync(D3, [rec("e5", "second_chargeback", "du_1b", at=datetime(2026, 11, 20, 8))]) == {"applied": 1, "expired": 0}
    d = state(settings, tenant_id)
    assert (d["state"], d["cycle"], d["due_date"]) == ("evidence_due", 2, date(2026, 11, 27))
    assert ops.transition(settings, tenant_id, d["dispute_id"], "accept", "bob", "not worth it") == ops.ACCEPT_PROPOSED
    assert state(settings, tenant_id)["state"] == "evidence_due"                 # a proposal until approved
    grant(settings, tenant_id, "root", "admin", "root")
    grant(settings, tenant_id, "carol", "controller", "root")
    (proposal,) = list_corrections(settings, tenant_id)
    assert (proposal["kind"], proposal["subject"], proposal["proposed_by"]) == (
        "dispute_accept", f"dispute:{d['dispute_id']}", "bob")
    assert approve(settings, tenant_id, proposal["correction_id"], "carol")["state"] == "accepted"
    assert state(settings, tenant_id)["state"] == "accepted"
    with pytest.raises(DisputeTransitionError, match="state 'accepted' cannot take 'submit'"):
        ops.transition(settings, tenant_id, d["dispute_id"], "submit", "bob")

    shown = ops.show(settings, tenant_id, d["dispute_id"])
    assert [(e["action"], e["outcome"], e["to_state"]) for e in shown["events"]] == [
        ("chargeback", "applied", "received"), ("open_window", "applied", "evidence_due"),
        ("chargeback", "noted", "evidence_due"), ("reversal", "refused", None), ("add_evidence", "applied", "evidence_due"),
        ("submit", "applied", "submitted"), ("reversal", "applied", "won"), ("second_chargeback", "applied", "received"),
        ("open_window", "applied", "evidence_due"), ("accept", "applied", "accepted")]
    assert [(v["s3_key"], v["sha256"], v["added_by"]) for v in shown["evidence"]] == [("s3://docs/receipt.pdf", SHA, "ann")]

    refused = ops.refused(settings, tenant_id)[0]
    ops.acknowledge(settings, tenant_id, refused["dispute_event_id"], "carol", "PSP sent it early; handled")
    assert ops.refused(settings, tenant_id) == []
    with connect(settings, tenant_id) as conn:
        actions = {r["action"] for r in conn.execute("SELECT action FROM audit_log WHERE tenant_id = %s",
                                                     (tenant_id,)).fetchall()}
    assert {"dispute_reversal_refused", "dispute_submit_applied", "dispute_accept_applied",
            "dispute_acknowledge"} <= actions


def test_missed_deadline_loses_and_unknown_reversal_is_refused(settings, tenant_id):
    cfg = prepare(settings, tenant_id)
    disputes.sync(settings, cfg, D1, [rec("x1", "chargeback", "AB12", payment="8815000000000001", source="adyen")])
    assert state(settings, tenant_id, "8815000000000001")["due_date"] == date(2026, 11, 16)   # 14 days for Adyen
    assert disputes.sync(settings, cfg, D3, [rec("x2", "chargeback_reversal", "CD34", payment="unknown")]) == {
        "refused": 1, "expired": 1}
    assert state(settings, tenant_id, "8815000000000001")["state"] == "lost"
    assert state(settings, tenant_id, "unknown") is None


def test_operator_commands(settings, tenant_id, monkeypatch, capsys):
    """`recon period | dispute | adjustment` as operators type them; refusals exit 1 with the reason."""
    from jobs.cli import main

    for name, value in (("RECON_DATABASE_URL", settings.database_url), ("RECON_LAKE", settings.lake),
                        ("RECON_TENANT_CONFIG_DIR", str(settings.tenant_config_dir))):
        monkeypatch.setenv(name, value)
    cfg = prepare(settings, tenant_id)
    t = ["--tenant", tenant_id]

    def as_(who: str, argv: list[str]) -> int:
        """The command as ``who`` runs it: the actor comes from the environment, never from an argument."""
        monkeypatch.setenv("RECON_ACTOR", who)
        return main(argv)

    grant(settings, tenant_id, "root", "admin", "root")
    grant(settings, tenant_id, "bob", "approver", "root")
    assert as_("controller", ["period", "close", *t, "--period", "2026-11"]) == 0
    with pytest.raises(SystemExit):                                                          # --reason required
        as_("controller", ["period", "reopen", *t, "--period", "2026-11"])
    assert as_("controller", ["period", "reopen", *t, "--period", "2026-11", "--reason", "late fee"]) == 0
    capsys.readouterr()
    assert main(["period", "list", *t]) == 0 and capsys.readouterr().out.startswith("2026-11    open")

    disputes.sync(settings, cfg, D1, [rec("o1", "chargeback", "du_9", payment="ch_9")])
    d = state(settings, tenant_id, "ch_9")
    assert main(["dispute", "list", *t]) == 0 and "ch_9 evidence_due cycle 1 50.00 EUR due 2026-11-09" in capsys.readouterr().out
    assert as_("ann", ["dispute", "submit-evidence", *t, "--dispute", str(d["dispute_id"]),
                       "--s3-key", "s3://docs/o1.pdf", "--sha256", SHA]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == f"dispute #{d['dispute_id']} is now submitted"
    assert as_("ann", ["dispute", "accept", *t, "--dispute", str(d["dispute_id"]), "--reason", "x"]) == 1
    assert "state 'submitted' cannot take 'accept'" in capsys.readouterr().err
    assert state(settings, tenant_id, "ch_9")["state"] == "submitted"

    assert as_("ann", ["adjustment", "propose", *t, "--effective-date", "2026-11-20", "--debit", "suspense", "--credit",
                 "chargeback_losses", "--amount", "12.50", "--currency", "EUR", "--reason", "won late"]) == 0
    n = capsys.readouterr().out.split("#")[1].split(";")[0]
    assert as_("ann", ["adjustment", "approve", *t, "--id", n]) == 1
    assert "someone other than the proposer" in capsys.readouterr().err
    assert as_("bob", ["adjustment", "approve", *t, "--id", n, "--business-date", "2026-11-21"]) == 0
    assert "the ledger run of 2026-11-21 posts it" in capsys.readouterr().out
