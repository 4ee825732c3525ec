"""Four eyes on every correction: the rules of jobs/corrections.py, the database's own refusals, and the CLI (the
actor from the environment)."""
from datetime import date

import psycopg
import pytest

from jobs import audit, corrections
from jobs.cli import main
from jobs.ledger import adjustments
from jobs.pipeline import prepare
from jobs.store.db import connect

pytestmark = pytest.mark.postgres
DAY = date(2026, 11, 20)


@pytest.fixture
def team(settings, tenant_id):
    """root (admin), bob (approver: 10,000.00 in the example configuration), carol (controller: 1,000,000.00),
    olga (operator)."""
    prepare(settings, tenant_id)
    corrections.grant(settings, tenant_id, "root", "admin", "root")
    for user, role in (("bob", "approver"), ("carol", "controller"), ("olga", "operator")):
        corrections.grant(settings, tenant_id, user, role, "root")
    return settings, tenant_id


def _adjustment(settings, tenant, amount: str, by: str = "alice") -> tuple[int, int]:
    n = adjustments.propose(settings, tenant, DAY, "suspense", "chargeback_losses", amount, "EUR", "won late", by)
    (row,) = [r for r in corrections.list_corrections(settings, tenant) if r["subject"] == f"adjustment:{n}"]
    return n, row["correction_id"]


def test_an_approver_other_than_the_proposer_within_the_role_s_limit(team):
    settings, tenant = team
    small, small_c = _adjustment(settings, tenant, "9999.99")
    large, large_c = _adjustment(settings, tenant, "10000.01")
    refusals = {
        ("alice", small_c): "someone other than the proposer",
        ("olga", small_c): "olga may not approve corrections",                 # operator: proposes, never approves
        ("dave", small_c): "roles: none",
        ("bob", large_c): "is 10000.01 EUR; bob's limit (approver) is 10000.00 EUR: a controller must approve it",
    }
    for (who, cid), message in refusals.items():
        with pytest.raises(corrections.CorrectionError, match=message.replace("(", r"\(").replace(")", r"\)")):
            corrections.approve(settings, tenant, cid, who, DAY)
    assert corrections.approve(settings, tenant, small_c, "bob", DAY) == {"adjustment_id": small, "post_date": DAY}
    assert corrections.approve(settings, tenant, large_c, "carol", DAY)["adjustment_id"] == large
    with pytest.raises(corrections.CorrectionError, match="it is approved \\(by bob\\)"):
        corrections.approve(settings, tenant, small_c, "carol", DAY)
    approved = {a["adjustment_id"]: a["approved_by"] for a in adjustments.list_adjustments(settings, tenant)}
    assert approved == {small: "bob", large: "carol"}
    assert audit.verify(settings, tenant).ok


def test_reject_needs_a_reason_and_a_decider_other_than_the_proposer(team):
    settings, tenant = team
    _, cid = _adjustment(settings, tenant, "5.00")
    for who, reason, message in (("bob", " ", "needs a reason"), ("alice", "no", "proposer cannot decide"),
                                 ("olga", "no", "olga may not decide")):
        with pytest.raises(corrections.CorrectionError, match=message):
            corrections.reject(settings, tenant, cid, who, reason)
    corrections.reject(settings, tenant, cid, "bob", "not our fee")
    with pytest.raises(corrections.CorrectionError, match="it is rejected"):
        corrections.approve(settings, tenant, cid, "carol", DAY)
    (row,) = corrections.list_corrections(settings, tenant, "rejected")
    assert (row["decided_by"], row["decision_reason"]) == ("bob", "not our fee")


def test_one_pending_proposal_per_subject_and_an_expired_one_cannot_be_approved(team):
    settings, tenant = team
    first = corrections.propose(settings, tenant, "dispute_accept", "dispute:7", {"dispute_id": 7}, 100, "EUR",
                                "give up", "alice")
    with pytest.raises(corrections.CorrectionError, match=f"#{first.correction_id} by alice\\) already covers"):
        corrections.propose(settings, tenant, "dispute_accept", "dispute:7", {"dispute_id": 7}, 100, "EUR", "again",
                            "olga")
    with psycopg.connect(settings.database_admin_url) as conn:            # its time runs out
        conn.execute("UPDATE correction SET expires_at = now() - interval '1 second' WHERE correction_id = %s",
                     (first.correction_id,))
    assert [r["status"] for r in corrections.list_corrections(settings, tenant, None)] == ["expired"]
    with pytest.raises(corrections.CorrectionError, match="expired at .* propose it again"):
        corrections.approve(settings, tenant, first.correction_id, "bob")
    second = corrections.propose(settings, tenant, "dispute_accept", "dispute:7", {"dispute_id": 7}, 100, "EUR",
                                 "give up, again", "olga")
    assert second.correction_id != first.correction_id


def test_the_database_refuses_a_self_approval_whatever_the_caller(team):
    settings, tenant = team
    _, cid = _adjustment(settings, tenant, "1.00")
    with pytest.raises(psycopg.errors.CheckViolation):
        with connect(settings, tenant) as conn:
            conn.execute("UPDATE correction SET status = 'approved', decided_by = proposed_by, decided_at = now() "
                         "WHERE correction_id = %s", (cid,))
    with pytest.raises(psycopg.errors.CheckViolation):
        with connect(settings, tenant) as conn:                          # a decision without a decider
            conn.execute("UPDATE correction SET status = 'approved', decided_at = now() WHERE correction_id = %s",
                         (cid,))


def test_only_a_tenant_admin_or_a_platform_administrator_grants_roles(team):
    settings, tenant = team
    for who in ("bob", "olga", "mallory"):                     # an approver, an operator, a stranger
        with pytest.raises(corrections.CorrectionError, match=f"may grant roles \\({who} is neither\\)"):
            corrections.grant(settings, tenant, who, "admin", who)
    corrections.grant(settings, tenant, "ann", "auditor", "root")           # the platform administrator
    corrections.grant(settings, tenant, "ann", "approver", "root")
    corrections.grant(settings.with_(platform_admins=()), tenant, "dan", "operator", "root")   # root: tenant admin
    with pytest.raises(corrections.CorrectionError, match="role must be one of"):
        corrections.grant(settings, tenant, "eve", "boss", "root")


def test_the_cli_records_the_person_it_runs_as(team, monkeypatch, capsys):
    settings, tenant = team
    for name, value in (("RECON_DATABASE_URL", settings.database_url), ("RECON_LAKE", settings.lake),
                        ("RECON_TENANT_CONFIG_DIR", str(settings.tenant_config_dir))):
        monkeypatch.setenv(name, value)
    _, cid = _adjustment(settings, tenant, "3.00")
    with pytest.raises(SystemExit):                                      # no name typed in: --by is gone
        main(["correction", "approve", "--tenant", tenant, "--id", str(cid), "--by", "bob"])
    monkeypatch.setenv("RECON_ACTOR", "alice")
    assert main(["correction", "approve", "--tenant", tenant, "--id", str(cid)]) == 1
    assert "someone other than the proposer (alice)" in capsys.readouterr().err
    monkeypatch.setenv("RECON_ACTOR", "bob")
    assert main(["correction", "list", "--tenant", tenant]) == 0
    assert f"#{cid} pending  adjustment     300 EUR by alice" in capsys.readouterr().out
    assert main(["correction", "approve", "--tenant", tenant, "--id", str(cid)]) == 0
    assert f"correction #{cid} approved by bob: adjustment_id" in capsys.readouterr().out
    with connect(settings, tenant) as conn:
        actions = [(r["actor"], r["action"]) for r in conn.execute(
            "SELECT actor, action FROM audit_log WHERE tenant_id = %s AND object_type = 'correction' ORDER BY seq",
            (tenant,))]
    assert actions == [("alice", "correction_propose"), ("bob", "correction_approve")]


def test_a_card_number_typed_into_a_reason_is_stored_masked(team):
    settings, tenant = team
    n = adjustments.propose(settings, tenant, DAY, "suspense", "chargeback_losses", "1.00", "EUR",
                            "refund to card 4111 1111 1111 1111 as agreed", "alice")
    (row,) = [r for r in corrections.list_corrections(settings, tenant) if r["subject"] == f"adjustment:{n}"]
    corrections.reject(settings, tenant, row["correction_id"], "bob", "wrong card 5500-0000-0000-0004")
    with connect(settings, tenant) as conn:
        stored = [str(v) for table in ("ledger_adjustment", "correction", "audit_log") for r in conn.execute(
            f"SELECT * FROM {table} WHERE tenant_id = %s", (tenant,)).fetchall() for v in r.values()]
    text = " ".join(stored)
    assert "411111******1111" in text and "550000******0004" in text
    assert "4111 1111 1111 1111" not in text and "5500-0000-0000-0004" not in text and "4111111111111111" not in text
    assert audit.verify(settings, tenant).ok
