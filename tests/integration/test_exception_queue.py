"""The exceptions queue in PostgreSQL, refreshed the way the publish stage refreshes it
(``jobs.stages.publish.refresh_queue``): new exceptions in, known ones kept with people's columns,
reruns changing nothing, what a run no longer reports closed; the tenant reference enforced per
statement (V005) as strictly as the foreign key it replaced."""
from datetime import date

import psycopg
import pyarrow as pa
import pytest

from jobs.stages.publish import STAGE_COLUMNS, refresh_queue
from jobs.store.db import connect, sql

pytestmark = pytest.mark.postgres
D1, D2 = date(2026, 11, 19), date(2026, 11, 20)


def _batch(event_ids, reason="MISSING_IN_PSP"):
    n = len(event_ids)
    return pa.record_batch({
        "event_id": event_ids, "relation": ["book_psp"] * n, "reason_code": [reason] * n,
        "reason_detail": ["no PSP record"] * n, "source": ["book"] * n, "event_type": ["payment"] * n,
        "amount_minor": pa.array(range(100, 100 + n), pa.int64()), "currency": ["EUR"] * n,
        "file_name": ["book.csv"] * n, "record_ordinal": pa.array(range(1, n + 1), pa.int32())}).select(STAGE_COLUMNS)


def _tenant(conn, tenant):
    conn.execute("INSERT INTO tenant (tenant_id, name, config, config_version, config_sha256) "
                 "VALUES (%s, %s, '{}'::jsonb, 1, 'test')", (tenant, tenant))


def _queue(conn, tenant):
    return {r["event_id"]: r for r in conn.execute(
        "SELECT event_id, reason_code, is_open, first_seen_date, last_seen_date, workflow_status, updated_at "
        "FROM exception_item WHERE tenant_id = %s", (tenant,))}


def test_refresh_inserts_keeps_people_columns_changes_nothing_on_rerun_and_closes(settings, tenant_id):
    with connect(settings, tenant_id) as conn:
        _tenant(conn, tenant_id)
        assert refresh_queue(conn, tenant_id, D1, [_batch(["e3", "e1"]), _batch(["e2"])]) == 3
    with connect(settings, tenant_id) as conn:
        conn.execute("UPDATE exception_item SET workflow_status = 'investigating' WHERE tenant_id = %s "
                     "AND event_id = 'e1'", (tenant_id,))
        before = _queue(conn, tenant_id)
    assert sorted(before) == ["e1", "e2", "e3"] and all(r["is_open"] for r in before.values())

    steps = []
    with connect(settings, tenant_id) as conn:                       # the same day again: nothing changes
        refresh_queue(conn, tenant_id, D1, [_batch(["e1", "e2", "e3"])], steps.append)
    assert steps == ["copy", "upsert", "close"]
    with connect(settings, tenant_id) as conn:
        assert _queue(conn, tenant_id) == before

    with connect(settings, tenant_id) as conn:                       # next day: e3 matched since, e1's reason changed
        refresh_queue(conn, tenant_id, D2, [_batch(["e1"], "AMOUNT_MISMATCH"), _batch(["e2"])])
        after = _queue(conn, tenant_id)
    assert not after["e3"]["is_open"] and after["e3"]["last_seen_date"] == D1
    assert after["e1"]["reason_code"] == "AMOUNT_MISMATCH" and after["e1"]["workflow_status"] == "investigating"
    assert after["e1"]["first_seen_date"] == D1 and after["e1"]["last_seen_date"] == D2
    assert after["e2"]["is_open"] and after["e2"]["reason_code"] == "MISSING_IN_PSP"


def test_tenant_reference_is_enforced_per_statement_like_a_foreign_key(settings, tenant_id):
    unknown = tenant_id + "x"
    with pytest.raises(psycopg.errors.ForeignKeyViolation, match=f'tenant "{unknown}" is not in table'):
        with connect(settings, unknown) as conn:                     # the publish path: INSERT ... ON CONFLICT
            refresh_queue(conn, unknown, D1, [_batch(["a"])])
    # rows of two tenants in one statement: row-level security refuses them to the application; the owner
    # (migrations; RLS does not bind it here) still meets the constraint
    with pytest.raises(psycopg.errors.ForeignKeyViolation):
        with psycopg.connect(settings.database_admin_url) as conn:   # one bad row among good ones refuses the statement
            _tenant(conn, tenant_id)
            conn.execute("INSERT INTO exception_item (tenant_id, event_id, relation, reason_code, source, event_type, "
                         "amount_minor, currency, file_name, record_ordinal, first_seen_date, last_seen_date) "
                         "VALUES (%s, 'a', 'book_psp', 'DUPLICATE', 'book', 'payment', 1, 'EUR', 'f', 1, %s, %s), "
                         "(%s, 'b', 'book_psp', 'DUPLICATE', 'book', 'payment', 1, 'EUR', 'f', 1, %s, %s)",
                         (tenant_id, D1, D1, unknown, D1, D1))
    with connect(settings, tenant_id) as conn:
        _tenant(conn, tenant_id)
        refresh_queue(conn, tenant_id, D1, [_batch(["a"])])

    for statement in ("DELETE FROM tenant WHERE tenant_id = %(t)s",
                      "UPDATE tenant SET tenant_id = %(t)s || 'y' WHERE tenant_id = %(t)s",
                      "UPDATE exception_item SET tenant_id = 'acme' WHERE tenant_id = %(t)s"):
        with pytest.raises(psycopg.errors.ForeignKeyViolation):
            with psycopg.connect(settings.database_admin_url) as conn:
                conn.execute(statement, {"t": tenant_id})
    with connect(settings, tenant_id) as conn:                       # other changes to the tenant row are allowed
        conn.execute("UPDATE tenant SET name = 'renamed' WHERE tenant_id = %s", (tenant_id,))
        assert len(_queue(conn, tenant_id)) == 1


def _nodes(plan):
    yield plan
    for child in plan.get("Plans", []):
        yield from _nodes(child)


def test_closing_never_rescans_the_staging_table_per_open_exception(settings, tenant_id):
    """A tenant's first large day: exception_item's statistics still say it is empty, so the planner joins the
    close step's lookups with a nested loop. Each open exception must then probe the staging table's key, not scan
    the whole table (772 s for 126,492 exceptions at bench 1M, 2026-12-07, before the key was indexed)."""
    plans = []

    def explain_close(step):
        if step == "upsert":
            plans.append(conn.execute("EXPLAIN (FORMAT JSON) " + sql("exceptions_close"),
                                      {"tenant_id": tenant_id, "business_date": D1}).fetchone())

    with connect(settings, tenant_id) as conn:
        _tenant(conn, tenant_id)
        refresh_queue(conn, tenant_id, D1, [_batch([f"e{i}" for i in range(3000)])], explain_close)
    (row,) = plans
    nodes = list(_nodes(next(iter(row.values()))[0]["Plan"]))
    loops = [n for n in nodes if n["Node Type"] == "Nested Loop"]
    assert not any(c["Node Type"] == "Seq Scan" and c.get("Relation Name") == "exception_stage"
                   for loop in loops for c in loop["Plans"]), [n["Node Type"] for n in nodes]
    with connect(settings, tenant_id) as conn:
        assert sum(r["is_open"] for r in _queue(conn, tenant_id).values()) == 3000
