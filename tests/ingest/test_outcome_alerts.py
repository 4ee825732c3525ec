"""Alerts on a daily run's outcome, delivered through the providers' notifiers to real receivers on 127.0.0.1
(they live with the ingestion tests' servers): PagerDuty's Events API and a Slack webhook (HTTP servers), e-mail
(an SMTP server, read back over IMAP) and SNS (moto, through an SQS subscription). Routed by priority, one open
alert per condition, rate-limited per channel, resolved with an all-clear when the condition clears; a replayed
earlier day speaks only for itself."""
from __future__ import annotations

import email
import imaplib
import json
import secrets
from datetime import date, timedelta

import pytest

from conftest import write_tenant_config
from jobs.alerts.outcomes import check
from jobs.pipeline import prepare

from .conftest import MAIL_PASSWORD, MAIL_USER, PAGERDUTY_KEY

pytestmark = pytest.mark.postgres
DAY = date(2026, 11, 20)                      # a Friday
TOPIC = "arn:aws:sns:us-east-1:123456789012:recon-alerts"
ROUTES = {"P1": ["recon_alert_pagerduty", "recon_alert_slack"], "P2": ["recon_alert_slack", "recon_alert_email"],
          "P3": ["recon_alert_email", "recon_sns"]}
THRESHOLDS = {"match_rate": {"minimum": "0.90", "max_drop_points": "5"}, "open_exceptions_max": 2,
              "unreconciled_max": {"*": "1000.00"}, "expected_sources": ["stripe", "bank"]}


@pytest.fixture
def tenant(settings, tenant_id, connections):
    def configure(**alerts):
        write_tenant_config(settings.tenant_config_dir, tenant_id,
                            alerts={"channels": ROUTES, **THRESHOLDS, **alerts}, config_version=100 + len(alerts))
        prepare(settings, tenant_id)
    configure()
    return tenant_id, configure


@pytest.fixture(scope="module")
def sns_queue(s3_endpoint):
    """An SQS queue subscribed to the alert topic: what SNS published, read back."""
    import boto3

    sns = boto3.client("sns", endpoint_url=s3_endpoint, region_name="us-east-1")
    sqs = boto3.client("sqs", endpoint_url=s3_endpoint, region_name="us-east-1")
    topic = sns.create_topic(Name="recon-alerts")["TopicArn"]
    assert topic == TOPIC
    url = sqs.create_queue(QueueName=f"alerts-{secrets.token_hex(3)}")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn)
    return sqs, url


def sns_messages(sns_queue, tenant_id: str) -> list[dict]:
    sqs, url = sns_queue
    found = []
    while True:
        batch = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", [])
        if not batch:
            return [m for m in found if m["MessageAttributes"]["tenant_id"]["Value"] == tenant_id]
        for m in batch:
            found.append(json.loads(m["Body"]))
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])


def mails(mail_server, tenant_id: str) -> list[tuple[str, str]]:
    client = imaplib.IMAP4("127.0.0.1", mail_server.imap_port)
    client.login(MAIL_USER, MAIL_PASSWORD)
    client.select("INBOX")
    _, data = client.uid("SEARCH", None, f'(SUBJECT "{tenant_id}")')
    out = []
    for uid in data[0].split():
        message = email.message_from_bytes(client.uid("FETCH", uid, "(RFC822)")[1][0][1])
        body = next(p.get_payload(decode=True).decode() for p in message.walk() if p.get_content_type() == "text/html")
        out.append((message["Subject"], body))
    client.logout()
    return sorted(out)


def posts(psp_api, since: int, path: str) -> list[dict]:
    return [json.loads(body) for p, body in psp_api.posts[since:] if p == path]


def seed_run(db, tenant_id: str, day: date, matched: int = 950, total: int = 1000, ledger=(500, 500)) -> None:
    db.execute("INSERT INTO recon_run (tenant_id, business_date, run_id, status) VALUES (%s, %s, 'r', 'succeeded') "
               "ON CONFLICT DO NOTHING", (tenant_id, day))
    db.execute("DELETE FROM run_metric WHERE tenant_id = %s AND business_date = %s", (tenant_id, day))
    for metric, dim, value in (("book_records", "total", total), ("book_records", "matched", matched),
                               ("ledger_debit_minor", "EUR", ledger[0]), ("ledger_credit_minor", "EUR", ledger[1])):
        db.execute("INSERT INTO run_metric (tenant_id, business_date, metric, dimension, value) VALUES (%s, %s, %s, %s, "
                   "%s)", (tenant_id, day, metric, dim, value))
    db.commit()


def seed_file(db, tenant_id: str, day: date, source: str) -> None:
    db.execute("INSERT INTO raw_file (tenant_id, sha256, size_bytes, file_name, source, format, raw_uri, received_date, "
               "connector, parsed_at) VALUES (%s, %s, 1, %s, %s, 'x', 'file:///x', %s, 'manual', now())",
               (tenant_id, secrets.token_hex(32), f"{source}-{day}.csv", source, day))
    db.commit()


def seed_exceptions(db, tenant_id: str, n: int, amount_minor: int, first_seen: date = DAY) -> None:
    for i in range(n):
        db.execute("INSERT INTO exception_item (tenant_id, event_id, relation, reason_code, source, event_type, "
                   "amount_minor, currency, file_name, record_ordinal, first_seen_date, last_seen_date) VALUES "
                   "(%s, %s, 'book_psp', 'MISSING_IN_PSP', 'book', 'payment', %s, 'EUR', 'b.csv', %s, %s, %s)",
                   (tenant_id, f"e{i}-{secrets.token_hex(3)}", amount_minor, i, first_seen, first_seen))
    db.commit()


def alerts(db, tenant_id: str) -> dict[str, dict]:
    return {r["kind"]: r for r in db.execute("SELECT * FROM alert WHERE tenant_id = %s ORDER BY alert_id",
                                             (tenant_id,)).fetchall()}


def test_each_channel_carries_its_priority_and_the_all_clear(settings, db, tenant, psp_api, mail_server, sns_queue,
                                                             monkeypatch, capsys):
    tenant_id, _ = tenant
    seed_run(db, tenant_id, DAY, ledger=(500, 490))          # P1: the ledger is off by 10 cents
    seed_file(db, tenant_id, DAY, "stripe")                  # P2: no bank statement
    seed_exceptions(db, tenant_id, 3, 100)                   # P3: three open exceptions, more than 2
    before = len(psp_api.posts)

    result = check(settings, tenant_id, DAY)

    assert sorted(result["conditions"]) == [f"ledger_unbalanced:{tenant_id}:{DAY}:EUR", f"open_exceptions:{tenant_id}:",
                                            f"source_missing:{tenant_id}:{DAY}:bank"]
    rows = alerts(db, tenant_id)
    assert {k: (r["priority"], r["delivered_via"], r["delivery_errors"]) for k, r in rows.items()} == {
        "ledger_unbalanced": ("P1", ROUTES["P1"], None), "source_missing": ("P2", ROUTES["P2"], None),
        "open_exceptions": ("P3", ROUTES["P3"], None)}
    (page,) = posts(psp_api, before, "/v2/enqueue")
    assert page == {"event_action": "trigger", "action": "trigger", "routing_key": PAGERDUTY_KEY,
                    "dedup_key": f"ledger_unbalanced:{tenant_id}:{DAY}:EUR", "payload": {
                        "summary": f"[psp-recon P1 critical] {tenant_id}: the journals of 2026-11-20 do not balance in "
                                   "EUR: debits 5.00, credits 4.90", "severity": "critical", "source": "psp-recon",
                        "group": tenant_id, "class": "ledger_unbalanced", "custom_details": {
                            "currency": "EUR", "debit_minor": 500, "credit_minor": 490, "priority": "P1",
                            "alert_id": rows["ledger_unbalanced"]["alert_id"]}}}
    assert [p["text"] for p in posts(psp_api, before, "/hooks/T000/B000/alerts")] == [
        f"[psp-recon P1 critical] {tenant_id}: the journals of 2026-11-20 do not balance in EUR: debits 5.00, "
        "credits 4.90",
        f"[psp-recon P2 error] {tenant_id}: no bank file was received and parsed for 2026-11-20"]
    sent = mails(mail_server, tenant_id)
    assert [s for s, _ in sent] == [f"psp-recon P2: source_missing {tenant_id} 2026-11-20",
                                    f"psp-recon P3: open_exceptions {tenant_id} 2026-11-20"]
    assert f"{tenant_id}: 3 open exceptions on 2026-11-20, more than 2" in sent[1][1]
    (published,) = sns_messages(sns_queue, tenant_id)
    assert (published["Subject"], published["Message"], published["MessageAttributes"]["priority"]["Value"]) == (
        f"psp-recon P3: open_exceptions {tenant_id} 2026-11-20",
        f"[psp-recon P3 warning] {tenant_id}: 3 open exceptions on 2026-11-20, more than 2", "P3")

    # the same figures checked again: nothing is sent twice, the open alerts are counted
    before = len(psp_api.posts)
    assert check(settings, tenant_id, DAY)["raised"] == []
    assert len(psp_api.posts) == before and len(mails(mail_server, tenant_id)) == 2
    assert not sns_messages(sns_queue, tenant_id)
    assert {r["seen_count"] for r in alerts(db, tenant_id).values()} == {2}

    # the day rerun with the statement and a balanced ledger, the exceptions worked: every alert resolves
    seed_run(db, tenant_id, DAY)
    seed_file(db, tenant_id, DAY, "bank")
    db.execute("UPDATE exception_item SET is_open = false WHERE tenant_id = %s", (tenant_id,))
    db.commit()
    result = check(settings, tenant_id, DAY)
    assert result["conditions"] == [] and len(result["resolved"]) == 3
    rows = alerts(db, tenant_id)
    assert all(r["resolved_at"] is not None and r["resolved_by"] == f"check of {DAY}" for r in rows.values())
    assert rows["ledger_unbalanced"]["resolved_via"] == ROUTES["P1"]
    (resolve,) = posts(psp_api, before, "/v2/enqueue")
    assert (resolve["event_action"], resolve["dedup_key"]) == ("resolve", f"ledger_unbalanced:{tenant_id}:{DAY}:EUR")
    assert [p["text"][:35] for p in posts(psp_api, before, "/hooks/T000/B000/alerts")] == [
        f"[psp-recon resolved] {tenant_id}: the"[:35], f"[psp-recon resolved] {tenant_id}: no "[:35]]
    assert [s for s, _ in mails(mail_server, tenant_id)][2:] == [
        f"psp-recon resolved: open_exceptions {tenant_id} 2026-11-20",
        f"psp-recon resolved: source_missing {tenant_id} 2026-11-20"]
    (cleared,) = sns_messages(sns_queue, tenant_id)
    assert cleared["Message"].startswith(f"[psp-recon resolved] {tenant_id}: 3 open exceptions")

    # the condition back later is a new alert
    seed_run(db, tenant_id, DAY, ledger=(500, 499))
    assert check(settings, tenant_id, DAY)["raised"] == [f"ledger_unbalanced:{tenant_id}:{DAY}:EUR"]
    assert db.execute("SELECT count(*) AS n FROM alert WHERE tenant_id = %s AND kind = 'ledger_unbalanced'",
                      (tenant_id,)).fetchone()["n"] == 2

    from jobs.cli import main                                    # what an operator reads: `recon alerts --all`
    monkeypatch.setenv("RECON_DATABASE_URL", settings.database_url)
    capsys.readouterr()
    assert main(["alerts", "--tenant", tenant_id, "--all"]) == 0
    listed = capsys.readouterr().out.splitlines()
    assert len(listed) == 4 and " OPEN P1 ledger_unbalanced " in listed[0]
    assert f" resolved (check of {DAY}) P3 open_exceptions {tenant_id}: {tenant_id}: 3 open exceptions" in listed[1]
    assert listed[1].endswith("(via recon_alert_email, recon_sns; seen 2 times)")


def test_a_busy_channel_holds_back_p2_and_p3_never_p1(settings, db, tenant, psp_api):
    tenant_id, configure = tenant
    configure(rate_limit_per_hour=1, expected_sources=["stripe", "adyen", "bank"])
    seed_run(db, tenant_id, DAY, ledger=(500, 400))
    before = len(psp_api.posts)
    check(settings, tenant_id, DAY)
    rows = {r["dedupe_key"].rsplit(":", 1)[-1]: r for r in db.execute(
        "SELECT dedupe_key, priority, delivered_via, rate_limited_via FROM alert WHERE tenant_id = %s ORDER BY alert_id",
        (tenant_id,)).fetchall()}
    # raised in this order: the ledger (P1: both channels), then the three missing sources (P2): Slack carried the
    # ledger's alert, e-mail the first missing source's
    assert (rows["EUR"]["delivered_via"], rows["EUR"]["rate_limited_via"]) == (ROUTES["P1"], [])
    assert (rows["stripe"]["delivered_via"], rows["stripe"]["rate_limited_via"]) == (["recon_alert_email"],
                                                                                    ["recon_alert_slack"])
    assert (rows["adyen"]["delivered_via"], rows["adyen"]["rate_limited_via"]) == ([], ROUTES["P2"])
    assert (rows["bank"]["delivered_via"], rows["bank"]["rate_limited_via"]) == ([], ROUTES["P2"])
    assert len(posts(psp_api, before, "/hooks/T000/B000/alerts")) == 1


def test_the_match_rate_alert_is_one_per_condition_and_only_the_latest_run_decides_it(settings, db, tenant, psp_api):
    tenant_id, _ = tenant
    for i in range(5, 0, -1):                                   # five good days before, then a bad one
        seed_run(db, tenant_id, DAY - timedelta(days=i), matched=960)
    seed_run(db, tenant_id, DAY, matched=880)
    for source in ("stripe", "bank"):
        seed_file(db, tenant_id, DAY, source)
    raised = check(settings, tenant_id, DAY)["raised"]
    assert raised == [f"match_rate_low:{tenant_id}:", f"match_rate_drop:{tenant_id}:"]
    detail = alerts(db, tenant_id)["match_rate_drop"]["detail"]
    assert detail == {"match_rate": "0.880000", "trailing_median": "0.960000", "runs": 5, "max_drop_points": "5"}

    earlier = DAY - timedelta(days=3)                           # a replay of a good earlier day
    for source in ("stripe", "bank"):
        seed_file(db, tenant_id, earlier, source)
    assert check(settings, tenant_id, earlier) == {"conditions": [], "raised": [], "resolved": []}
    assert alerts(db, tenant_id)["match_rate_low"]["resolved_at"] is None

    next_day = DAY + timedelta(days=3)                          # Monday: the rate is back
    seed_run(db, tenant_id, next_day, matched=955)
    for source in ("stripe", "bank"):
        seed_file(db, tenant_id, next_day, source)
    assert sorted(check(settings, tenant_id, next_day)["resolved"]) == [f"match_rate_drop:{tenant_id}:",
                                                                        f"match_rate_low:{tenant_id}:"]


def test_a_failed_task_alerts_once_and_its_later_success_or_the_run_resolves_it(settings, db, tenant, psp_api,
                                                                                 monkeypatch):
    """The callbacks every DAG's tasks get, called as Airflow calls a notifier (with the task's context)."""
    from datetime import datetime, timezone
    from types import SimpleNamespace

    from jobs.alerts.callbacks import TaskFailed, TaskSucceeded

    tenant_id, _ = tenant
    monkeypatch.setenv("RECON_DATABASE_URL", settings.database_url)      # what the worker's callbacks connect to

    def context(task_id: str, try_number: int = 3, error: BaseException | None = None) -> dict:
        ti = SimpleNamespace(dag_id="reconcile_daily", task_id=f"reconcile.{task_id}", run_id="scheduled__2026-11-20",
                             map_index=0, try_number=try_number)
        return {"ti": ti, "task": SimpleNamespace(op_kwargs={"stage": task_id, "tenant": tenant_id}), "params": {},
                "data_interval_start": datetime(2026, 11, 20, tzinfo=timezone.utc), "exception": error}

    before = len(psp_api.posts)
    TaskFailed()(context("match", error=RuntimeError("the lake said no")))
    TaskFailed()(context("match", error=RuntimeError("the lake said no")))         # cleared and failed again
    (row,) = db.execute("SELECT * FROM alert WHERE tenant_id = %s", (tenant_id,)).fetchall()
    assert (row["kind"], row["priority"], row["seen_count"], row["delivered_via"]) == (
        "task_failed", "P1", 2, ROUTES["P1"])
    assert row["message"] == (f"{tenant_id}: task reconcile_daily.reconcile.match failed for 2026-11-20 (run "
                              "scheduled__2026-11-20, try 3): RuntimeError: the lake said no")
    (page,) = posts(psp_api, before, "/v2/enqueue")
    assert page["dedup_key"] == f"task_failed:{tenant_id}:reconcile_daily:2026-11-20:reconcile.match[0]"

    TaskSucceeded()(context("parse"))                                   # another task's success: nothing to resolve
    assert db.execute("SELECT resolved_at FROM alert WHERE tenant_id = %s", (tenant_id,)).fetchone()["resolved_at"] \
        is None
    TaskSucceeded()(context("match", try_number=4))                     # the retry succeeded: resolved, all clear
    row = db.execute("SELECT * FROM alert WHERE tenant_id = %s", (tenant_id,)).fetchone()
    assert row["resolved_by"] == "reconcile.match succeeded in scheduled__2026-11-20"
    assert [p["event_action"] for p in posts(psp_api, before, "/v2/enqueue")] == ["trigger", "resolve"]

    TaskFailed()(context("ledger", error=ValueError("unbalanced journal j-1: EUR off by 5")))
    TaskFailed()(context("report", error=OSError("the lake said no")))  # beside the check, after publish
    seed_run(db, tenant_id, DAY)                                        # the day's run got through publish after all
    for source in ("stripe", "bank"):
        seed_file(db, tenant_id, DAY, source)
    assert check(settings, tenant_id, DAY)["resolved"] == [
        f"task_failed:{tenant_id}:reconcile_daily:2026-11-20:reconcile.ledger[0]"]    # not the report's: its own
    assert db.execute("SELECT resolved_at FROM alert WHERE dedupe_key LIKE %s", ("%reconcile.report[0]",)
                      ).fetchone()["resolved_at"] is None

    # the DAG's own callbacks, called as Airflow calls them, with the serialized DAG (no template environment)
    from jobs.alerts.callbacks import RunFailed, RunSucceeded

    run = {"dag": SimpleNamespace(dag_id="reconcile_daily"), "run_id": "scheduled__2026-11-20",
           "params": {"tenant": tenant_id}, "reason": "task_failure",
           "data_interval_start": datetime(2026, 11, 20, tzinfo=timezone.utc)}
    RunFailed()(dict(run))
    failed = db.execute("SELECT message, resolved_at FROM alert WHERE dedupe_key = %s",
                        (f"run_failed:{tenant_id}:reconcile_daily:2026-11-20",)).fetchone()
    assert failed["message"] == (f"{tenant_id}: run scheduled__2026-11-20 of reconcile_daily for 2026-11-20 failed: "
                                 "task_failure") and failed["resolved_at"] is None
    RunSucceeded()({**run, "run_id": "manual__rerun"})
    assert db.execute("SELECT resolved_by FROM alert WHERE dedupe_key = %s",
                      (f"run_failed:{tenant_id}:reconcile_daily:2026-11-20",)).fetchone()["resolved_by"] == \
        "run manual__rerun succeeded"
