"""The analyst views of ``sql/athena`` and the finance marts of ``sql/redshift``, transpiled from Athena's and
Redshift's SQL to DuckDB's with sqlglot, over a real lake (its Delta tables read with delta-rs):
``assert_views_agree`` checks that each gives the figures the run published to PostgreSQL (``run_metric``) or that a
direct computation over the same tables gives."""
from __future__ import annotations

from collections import Counter, defaultdict
from datetime import date

from jobs import catalog, lake
from jobs.settings import PROJECT_ROOT
from jobs.store.db import connect

MARTS = sorted(p for p in (PROJECT_ROOT / "sql" / "redshift").glob("*.sql") if p.stem != "external_schema")


def duckdb_over_lake(settings):
    """A DuckDB database with every lake table (read with delta-rs) and every analyst view, transpiled."""
    import duckdb
    import sqlglot
    from deltalake import DeltaTable

    con = duckdb.connect()
    for name in lake.TABLES:
        con.register(f"{name}_arrow", DeltaTable(lake.table_path(settings, name)).to_pyarrow_table())
        con.execute(f"CREATE TABLE {name} AS SELECT * FROM {name}_arrow")
    for name, statement in catalog.views().items():
        select = sqlglot.transpile(catalog.view_select(statement), read="athena", write="duckdb")[0]
        con.execute(f"CREATE VIEW {name} AS {select}")
    # Redshift: the lake's tables in the external schema recon_lake, the marts in recon_marts (late-binding views)
    con.execute("CREATE SCHEMA recon_lake; CREATE SCHEMA recon_marts")
    for name in lake.TABLES:
        con.execute(f"CREATE VIEW recon_lake.{name} AS SELECT * FROM main.{name}")
    for path in MARTS:
        statement = path.read_text()
        assert f"CREATE OR REPLACE VIEW recon_marts.{path.stem} AS" in statement and "WITH NO SCHEMA BINDING" in statement
        body = statement.split(" AS\n", 1)[1].rsplit("WITH NO SCHEMA BINDING", 1)[0]
        select = sqlglot.transpile(body, read="redshift", write="duckdb")[0]
        con.execute(f"CREATE VIEW recon_marts.{path.stem} AS {select}")
    return con


def rows(con, sql: str) -> list[dict]:
    cursor = con.execute(sql)
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, r)) for r in cursor.fetchall()]


def assert_views_agree(settings, tenant: str, day: date) -> None:
    """Every view over ``settings``' lake agrees with the run of ``day`` (the last day run) for ``tenant``."""
    with connect(settings, tenant) as conn:
        metrics = defaultdict(dict)
        for r in conn.execute("SELECT metric, dimension, value FROM run_metric WHERE tenant_id = %s AND "
                              "business_date = %s", (tenant, day)).fetchall():
            metrics[r["metric"]][r["dimension"]] = r["value"]
    con = duckdb_over_lake(settings)
    on_day = f"tenant_id = '{tenant}' AND run_date = DATE '{day}'"

    by_level = Counter()
    groups = Counter()
    for r in rows(con, f"SELECT * FROM matches_by_level WHERE {on_day}"):
        by_level[f"{r['relation']}/L{r['level']}"] += r["matched_records"]
        groups[f"{r['relation']}/L{r['level']}"] += r["match_groups"]
    assert by_level and dict(by_level) == metrics["matched_records"]
    assert dict(groups) == metrics["match_groups"]

    exceptions = Counter()
    for r in rows(con, f"SELECT reason_code, age_bucket, records FROM open_exceptions WHERE {on_day}"):
        exceptions[r["reason_code"]] += r["records"]
        assert r["age_bucket"] in ("0-7 days", "8-30 days", "31-90 days", "over 90 days")
    assert exceptions and dict(exceptions) == metrics["exceptions"]

    fees = Counter()
    for r in rows(con, f"SELECT status, records FROM fees_vs_rate_card WHERE {on_day}"):   # per PSP and currency
        fees[r["status"]] += r["records"]
    assert fees and dict(fees) == metrics["fee_checks"]

    # the book match rate per landing day and PSP, against the same count made in Python over the tables
    book = con.execute(f"SELECT event_id, ingest_date, psp FROM events WHERE tenant_id = '{tenant}' AND "
                       "source_kind = 'book'").fetchall()
    matched = {e for (e,) in con.execute("SELECT event_id FROM matches WHERE relation = 'book_psp' AND role = 'book'"
                                         f" AND tenant_id = '{tenant}'").fetchall()}
    expected = Counter((d, p or "unknown", e in matched) for e, d, p in book)
    rates = rows(con, f"SELECT * FROM match_rate_daily WHERE tenant_id = '{tenant}'")
    assert len(rates) == len({(d, p) for d, p, _ in expected}) > 2
    for r in rates:
        key = (r["ingest_date"], r["psp"])
        assert r["book_records"] == expected[(*key, True)] + expected[(*key, False)]
        assert r["matched_records"] == expected[(*key, True)] and 0 <= r["match_rate"] <= 1
    assert sum(r["matched_records"] for r in rates) == metrics["book_records"]["matched"]

    # money: what is open sums to the exception queue's and item status's amounts; the ledger's FX lines balance
    open_amount = {(r["status"], r["currency"]): r["amount_minor"] for r in rows(
        con, f"SELECT status, currency, sum(amount_minor) AS amount_minor FROM unreconciled_amount WHERE {on_day} "
             "GROUP BY status, currency")}
    direct = {(s, c): a for s, c, a in con.execute(
        f"SELECT status, currency, sum(amount_minor) FROM item_status WHERE {on_day} GROUP BY status, currency").fetchall()}
    assert open_amount and open_amount == direct
    fx = rows(con, f"SELECT * FROM fx_gain_loss WHERE tenant_id = '{tenant}'")
    fx_lines = con.execute(f"SELECT sum(credit_minor - debit_minor) FROM journal WHERE tenant_id = '{tenant}' AND "
                           "component = 'fx.difference'").fetchone()[0] or 0
    assert sum(r["gain_minor"] for r in fx) == fx_lines
    payouts = rows(con, f"SELECT * FROM payouts_not_in_bank WHERE {on_day}")
    assert all(r["status"] in ("EXPECTED", "EXCEPTION") for r in payouts)
    assert len(payouts) == con.execute(f"SELECT count(*) FROM item_status WHERE {on_day} AND relation = 'payout_bank' "
                                       "AND event_type = 'payout'").fetchone()[0]
    chargebacks = rows(con, f"SELECT * FROM chargebacks WHERE tenant_id = '{tenant}'")
    assert sum(r["records"] for r in chargebacks) == con.execute(
        f"SELECT count(*) FROM events WHERE tenant_id = '{tenant}' AND event_type LIKE '%chargeback%'").fetchone()[0]

    # Redshift's finance marts over the same lake
    trial = rows(con, f"SELECT currency, sum(debit_minor) AS dr, sum(credit_minor) AS cr, sum(movement_minor) AS net "
                      f"FROM recon_marts.trial_balance_daily WHERE tenant_id = '{tenant}' AND business_date = DATE "
                      f"'{day}' GROUP BY currency")
    assert trial and all(r["net"] == 0 and r["dr"] == r["cr"] for r in trial)            # the day's ledger balances
    assert {r["currency"]: r["dr"] for r in trial} == metrics["ledger_debit_minor"]
    assert {r["currency"]: r["cr"] for r in trial} == metrics["ledger_credit_minor"]
    ageing = rows(con, f"SELECT sum(items) AS items, sum(amount_minor) AS amount FROM recon_marts.open_items_ageing "
                       f"WHERE {on_day}")[0]
    assert (ageing["items"], ageing["amount"]) == con.execute(
        f"SELECT count(*), sum(amount_minor) FROM item_status WHERE {on_day}").fetchone()
    variance = rows(con, f"SELECT status, sum(records) AS records FROM recon_marts.fee_variance WHERE {on_day} "
                         "GROUP BY status")
    assert {r["status"]: r["records"] for r in variance} == dict(con.execute(
        f"SELECT status, count(*) FROM fee_checks WHERE {on_day} GROUP BY status").fetchall())
