"""The exceptions queue as a workplace (jobs/exception_queue.py): filters, age buckets, SLA and overdue, pagination,
assignment, status, notes, history, CSV, and write-off and match proposals through four eyes; the CLI."""
import csv
import io
import random
from datetime import date, timedelta

import pytest

from jobs import audit, corrections
from jobs import exception_queue as q
from jobs.cli import main
from jobs.pipeline import prepare
from jobs.store.db import connect

pytestmark = pytest.mark.postgres
AS_OF = date(2026, 11, 30)
SLA = {"DUPLICATE": 2, "AMOUNT_MISMATCH": 3, "CURRENCY_MISMATCH": 3, "UNEXPECTED_FEE": 10, "*": 5}  # acme.yaml
REASONS = ["MISSING_IN_PSP", "MISSING_IN_BOOK", "DUPLICATE", "AMOUNT_MISMATCH", "UNEXPECTED_FEE", "MISSING_IN_BANK"]
SOURCES = {"book": "book_psp", "stripe": "book_psp", "adyen": "book_psp", "bank": "payout_bank"}


def _exceptions(n: int, seed: int = 7) -> list[dict]:
    pick = random.Random(seed)
    rows = []
    for i in range(n):
        source = pick.choice(sorted(SOURCES))
        currency = pick.choice(["EUR", "EUR", "USD", "JPY"])
        rows.append({"event_id": f"{i:064x}", "relation": SOURCES[source], "reason_code": pick.choice(REASONS),
                     "source": source, "event_type": "payment", "amount_minor": pick.randint(-50_000, 200_000),
                     "currency": currency, "file_name": f"f{i % 3}.csv", "record_ordinal": i,
                     "first_seen_date": AS_OF - timedelta(days=pick.randint(0, 45))})
    return rows


@pytest.fixture
def queue(settings, tenant_id):
    """A tenant with 60 open exceptions (and 3 closed ones), its latest run on AS_OF, and its team: root (admin),
    bob (approver), olga and oscar (operators), aud (auditor)."""
    prepare(settings, tenant_id)
    rows = _exceptions(63)
    with connect(settings, tenant_id) as conn:
        conn.execute("INSERT INTO recon_run (tenant_id, business_date, run_id, status, summary) VALUES "
                     "(%s, %s, 'r', 'succeeded', '{}')", (tenant_id, AS_OF))
        for i, r in enumerate(rows):
            conn.execute("INSERT INTO exception_item (tenant_id, event_id, relation, reason_code, source, event_type, "
                         "amount_minor, currency, file_name, record_ordinal, first_seen_date, last_seen_date, is_open) "
                         "VALUES (%(t)s, %(event_id)s, %(relation)s, %(reason_code)s, %(source)s, %(event_type)s, "
                         "%(amount_minor)s, %(currency)s, %(file_name)s, %(record_ordinal)s, %(first_seen_date)s, "
                         "%(as_of)s, %(open)s)", {**r, "t": tenant_id, "as_of": AS_OF, "open": i < 60})
    corrections.grant(settings, tenant_id, "root", "admin", "root")
    for user, role in (("bob", "approver"), ("olga", "operator"), ("oscar", "operator"), ("aud", "auditor")):
        corrections.grant(settings, tenant_id, user, role, "root")
    return settings, tenant_id, rows[:60]


def _expected(rows, source=None, reason=None, bucket=None, min_amount=None, currency=None) -> list[str]:
    """The filters computed without the service or SQL."""
    exp = {"JPY": 0}
    out = []
    for r in rows:
        age = (AS_OF - r["first_seen_date"]).days
        major = abs(r["amount_minor"]) / 10 ** exp.get(r["currency"], 2)
        low, high = {"0-2": (0, 2), "3-7": (3, 7), "8-30": (8, 30), "31+": (31, 10 ** 6), None: (0, 10 ** 6)}[bucket]
        if ((source is None or r["source"] == source) and (reason is None or r["reason_code"] == reason)
                and low <= age <= high and (min_amount is None or major >= min_amount)
                and (currency is None or r["currency"] == currency)):
            out.append(f"{r['relation']}:{r['event_id']}")
    return sorted(out)


def _all(settings, tenant, actor="olga", **kw) -> list[dict]:
    return q.page(settings, tenant, actor, q.Filters(**kw), every_row=True).rows


def test_filters_age_buckets_sla_and_pagination(queue):
    settings, tenant, rows = queue
    everything = _all(settings, tenant, status="all")
    assert sorted(r["key"] for r in everything) == _expected(rows)                     # closed ones are not listed
    for kw, expect in (({"source": "bank"}, {"source": "bank"}), ({"reason": "DUPLICATE"}, {"reason": "DUPLICATE"}),
                       ({"age_bucket": "3-7"}, {"bucket": "3-7"}), ({"age_bucket": "31+"}, {"bucket": "31+"}),
                       ({"min_amount": "1000.00"}, {"min_amount": 1000}), ({"currency": "jpy"}, {"currency": "JPY"}),
                       ({"source": "stripe", "age_bucket": "8-30", "min_amount": "250"},
                        {"source": "stripe", "bucket": "8-30", "min_amount": 250})):
        got = sorted(r["key"] for r in _all(settings, tenant, status="all", **kw))
        assert got == _expected(rows, **expect) and got, kw
    for r in everything:                                                               # SLA and overdue per row
        sla = SLA.get(r["reason_code"], SLA["*"])
        assert (r["age_days"], r["sla_days"], r["overdue"]) == ((AS_OF - r["first_seen_date"]).days, sla,
                                                               (AS_OF - r["first_seen_date"]).days > sla)
    overdue = _all(settings, tenant, overdue_only=True)
    assert overdue and all(r["overdue"] for r in overdue)
    assert len(overdue) == sum(r["overdue"] for r in everything)
    pages = [q.page(settings, tenant, "aud", q.Filters(page=n, page_size=25)) for n in (1, 2, 3)]
    assert [len(p.rows) for p in pages] == [25, 25, 10] and {p.total for p in pages} == {60} and pages[0].pages == 3
    keys = [r["key"] for p in pages for r in p.rows]
    assert len(set(keys)) == 60                                                        # no row on two pages
    assert [r["overdue"] for r in pages[0].rows][:1] == [True]                         # overdue first
    with pytest.raises(q.QueueError, match="age bucket must be one of"):
        q.page(settings, tenant, "olga", q.Filters(age_bucket="old"))
    with pytest.raises(q.QueueError, match="decimal amount"):
        q.page(settings, tenant, "olga", q.Filters(min_amount="ten"))
    with pytest.raises(q.QueueError, match="mallory may not read"):
        q.page(settings, tenant, "mallory")


def test_assign_status_notes_and_history(queue):
    settings, tenant, _ = queue
    keys = [r["key"] for r in _all(settings, tenant, source="bank")]
    assert q.assign(settings, tenant, keys, "oscar", "olga") == len(keys)                 # bulk, to a colleague
    assert q.assign(settings, tenant, keys, "oscar", "olga") == 0                         # already: no change
    assert {r["assignee"] for r in _all(settings, tenant, source="bank")} == {"oscar"}
    assert sorted(r["key"] for r in _all(settings, tenant, assignee="oscar")) == sorted(keys)
    assert len(_all(settings, tenant, assignee="")) == 60 - len(keys)                     # the unassigned
    for call, message in ((lambda: q.assign(settings, tenant, keys[:1], "mallory", "olga"), "mallory holds no role"),
                          (lambda: q.assign(settings, tenant, keys[:1], "aud", "olga"), "aud holds no role"),
                          (lambda: q.assign(settings, tenant, keys[:1], "olga", "aud"), "aud may not assign"),
                          (lambda: q.assign(settings, tenant, [*keys[:1], "book_psp:nope"], "olga", "olga"),
                           "no open exception book_psp:nope"),
                          (lambda: q.set_status(settings, tenant, keys[:1], "resolved", "oscar"), "needs a note"),
                          (lambda: q.set_status(settings, tenant, keys[:1], "written_off", "oscar"),
                           "proposed and approved by a second person")):
        with pytest.raises(q.QueueError, match=message):
            call()
    assert {r["assignee"] for r in _all(settings, tenant, source="bank")} == {"oscar"}  # a refused bulk: nothing
    key = keys[0]
    assert q.set_status(settings, tenant, [key], "waiting", "oscar", "asked the PSP, ticket 4111 1111 1111 1111") == 1
    q.add_note(settings, tenant, key, "PSP says it settles Monday", "oscar")
    assert q.set_status(settings, tenant, [key], "resolved", "oscar", "settled on Monday") == 1
    assert key not in [r["key"] for r in _all(settings, tenant)]                          # open work: not resolved
    assert [r["key"] for r in _all(settings, tenant, status="resolved")] == [key]
    row, trail = q.history(settings, tenant, key, "aud")
    assert (row["workflow_status"], row["assignee"], row["note"]) == ("resolved", "oscar", "settled on Monday")
    assert [(t["actor"], t["action"], t["detail"]) for t in trail] == [
        ("olga", "exception_assign", {"from": None, "to": "oscar"}),
        ("oscar", "exception_status", {"from": "new", "to": "waiting"}),
        ("oscar", "exception_note", {"note": "asked the PSP, ticket 411111******1111"}),   # typed card: masked
        ("oscar", "exception_note", {"note": "PSP says it settles Monday"}),
        ("oscar", "exception_status", {"from": "waiting", "to": "resolved"}),
        ("oscar", "exception_note", {"note": "settled on Monday"})]
    assert audit.verify(settings, tenant).ok


def test_write_off_is_a_correction_with_four_eyes_and_a_limit(queue):
    settings, tenant, rows = queue
    eur = sorted((r for r in rows if r["currency"] == "EUR"), key=lambda r: abs(r["amount_minor"]))
    small, large = (f"{r['relation']}:{r['event_id']}" for r in (eur[0], eur[-1]))
    proposal = q.propose_write_off(settings, tenant, small, "below the cost of chasing it", "olga")
    assert (proposal.kind, proposal.subject) == ("write_off", f"exception:{small}")
    with pytest.raises(corrections.CorrectionError, match="a pending write_off proposal"):
        q.propose_write_off(settings, tenant, small, "again", "oscar")                   # one pending per exception
    with pytest.raises(corrections.CorrectionError, match="someone other than the proposer"):
        corrections.approve(settings, tenant, proposal.correction_id, "olga")
    with pytest.raises(corrections.CorrectionError, match="oscar may not approve"):
        corrections.approve(settings, tenant, proposal.correction_id, "oscar")             # an operator
    assert corrections.approve(settings, tenant, proposal.correction_id, "bob") == {
        "exception": small, "status": "written_off"}
    assert [r["key"] for r in _all(settings, tenant, status="written_off")] == [small]
    assert small not in [r["key"] for r in _all(settings, tenant)]
    with pytest.raises(q.QueueError, match="is written off"):
        q.set_status(settings, tenant, [small], "investigating", "olga")
    with pytest.raises(q.QueueError, match="already written off"):
        q.propose_write_off(settings, tenant, small, "again", "olga")
    with connect(settings, tenant) as conn:                                               # 20,000.00 EUR
        conn.execute("UPDATE exception_item SET amount_minor = -2000000 WHERE tenant_id = %s AND event_id = %s",
                     (tenant, eur[-1]["event_id"]))
    big = q.propose_write_off(settings, tenant, large, "uncollectable", "olga")
    with pytest.raises(corrections.CorrectionError, match="is 20000.00 EUR; bob's limit .approver. is 10000.00 EUR"):
        corrections.approve(settings, tenant, big.correction_id, "bob")
    corrections.grant(settings, tenant, "carol", "controller", "root")
    assert corrections.approve(settings, tenant, big.correction_id, "carol")["status"] == "written_off"
    _, trail = q.history(settings, tenant, small, "olga")
    assert [t["action"] for t in trail] == ["exception_write_off_proposed", "exception_status"]
    assert trail[1]["detail"] == {"from": "new", "to": "written_off", "proposed_by": "olga"}
    assert audit.verify(settings, tenant).ok


def test_a_match_of_open_exceptions_is_proposed_from_the_queue(queue):
    settings, tenant, rows = queue
    book = next(r for r in rows if r["source"] == "book")
    psp = next(r for r in rows if r["source"] == "stripe")
    keys = [f"book_psp:{book['event_id']}", f"book_psp:{psp['event_id']}"]
    with pytest.raises(q.QueueError, match="needs at least one book record and one PSP record"):
        q.propose_match(settings, tenant, keys[:1], "one side only", "olga")
    bank = next(r for r in rows if r["source"] == "bank")
    with pytest.raises(q.QueueError, match="one relation"):
        q.propose_match(settings, tenant, [keys[0], f"payout_bank:{bank['event_id']}"], "mixed", "olga")
    proposal = q.propose_match(settings, tenant, keys, "reference mistyped by the shop", "olga")
    assert proposal.kind == "manual_match" and sorted(proposal.detail["event_ids"]) == sorted(
        [book["event_id"], psp["event_id"]])
    corrections.approve(settings, tenant, proposal.correction_id, "bob")
    with connect(settings, tenant) as conn:
        (m,) = conn.execute("SELECT action, relation, event_ids, created_by, approved_by FROM manual_match WHERE "
                            "tenant_id = %s", (tenant,)).fetchall()
    assert (m["action"], m["relation"], sorted(m["event_ids"]), m["created_by"], m["approved_by"]) == (
        "match", "book_psp", sorted([book["event_id"], psp["event_id"]]), "olga", "bob")
    assert [c["kind"] for c in q.history(settings, tenant, keys[1], "olga")[0]["corrections"]] == ["manual_match"]


def test_csv_holds_every_filtered_row_and_neutralises_formulas(queue):
    settings, tenant, rows = queue
    key = _all(settings, tenant)[0]["key"]
    q.add_note(settings, tenant, key, "=HYPERLINK(\"http://x\")", "olga")
    text = q.to_csv(_all(settings, tenant, status="all"))
    parsed = list(csv.DictReader(io.StringIO(text)))
    assert len(parsed) == 60 and list(parsed[0]) == q.CSV_COLUMNS
    by_key = {f"{p['relation']}:{p['event_id']}": p for p in parsed}
    assert by_key[key]["note"] == "'=HYPERLINK(\"http://x\")"
    for r in rows:
        p = by_key[f"{r['relation']}:{r['event_id']}"]
        digits = 0 if r["currency"] == "JPY" else 2
        assert p["amount"] == f"{r['amount_minor'] / 10 ** digits:.{digits}f}"          # negative amounts stay numbers


def test_cli_works_the_queue_as_the_person_it_runs_as(queue, monkeypatch, capsys):
    settings, tenant, _ = queue
    monkeypatch.setenv("RECON_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("RECON_TENANT_CONFIG_DIR", str(settings.tenant_config_dir))
    key = _all(settings, tenant)[0]["key"]
    monkeypatch.setenv("RECON_ACTOR", "olga")
    assert main(["queue", "assign", "--tenant", tenant, "--key", key, "--to", "olga"]) == 0
    assert main(["queue", "write-off", "--tenant", tenant, "--key", key, "--reason", "too small"]) == 0
    out = capsys.readouterr().out
    assert "1 exception(s) assigned to olga by olga" in out and "proposed write_off as correction #" in out
    assert main(["queue", "list", "--tenant", tenant, "--assignee", "olga"]) == 0
    assert f"{tenant}: 1 exception(s) as of {AS_OF}" in capsys.readouterr().out
    monkeypatch.setenv("RECON_ACTOR", "aud")
    assert main(["queue", "assign", "--tenant", tenant, "--key", key, "--to", "oscar"]) == 1
    assert "aud may not assign exceptions" in capsys.readouterr().err
    assert main(["queue", "csv", "--tenant", tenant, "--status", "all"]) == 0
    assert len(list(csv.reader(io.StringIO(capsys.readouterr().out)))) == 61
