"""Card numbers planted in a day's files reach no table of the lake, no row of PostgreSQL and no log line of the
run: only the raw zone keeps the files as delivered (README, Controls: where card data can be)."""
import json
import logging

import pytest

from conftest import DATA, SLICE_DAY
from jobs import lake
from jobs.pipeline import run_all
from jobs.store.db import connect
from reference.cards import card_numbers_in

pytestmark = [pytest.mark.postgres, pytest.mark.spark]
PLANTED = {"4111 1111 1111 1111", "5500000000000004", "6011-0009-9013-9424", "378282246310005", "4012888888881881",
           "3530111333300000"}


def _plant(folder):
    """The slice's files (one of each kind: the book, Stripe, Adyen, camt.053) with card numbers in free text, a
    reference, an amount, a PSP's merchant reference and the bank statement's text."""
    book = (DATA / "slice" / "book_payments_2026-11-19.csv").read_text()
    book = book.replace("ann@example.com,Order ORD-1001", "ann@example.com,Order ORD-1001 paid with 4111 1111 1111 1111")
    book = book.replace("P2,ORD-1002,", "P2,ORD-6011-0009-9013-9424,")
    book += "P9,ORD-1009,stripe,,payment,378282246310005,EUR,2026-11-18T12:00:00+01:00,eve@example.com,card in amount\n"
    (folder / "book_payments_2026-11-19.csv").write_text(book)
    stripe = (DATA / "slice" / "stripe_payout_po_TEST1.csv").read_text()
    (folder / "stripe_payout_po_TEST1.csv").write_text(stripe.replace('"Order ORD-1001"', '"Order ORD-1001 card 5500000000000004"', 1))
    adyen = (DATA / "slice" / "settlement_detail_report_batch_7.csv").read_text()
    (folder / "settlement_detail_report_batch_7.csv").write_text(
        adyen.replace("visaclassic,,7,", "visaclassic,refund of card 4012888888881881,7,", 1))
    camt = (DATA / "slice" / "camt053_2026-11-20.xml").read_text()
    (folder / "camt053_2026-11-20.xml").write_text(camt.replace(
        "<AddtlNtryInf>SEPA CREDIT TRANSFER ADYEN N.V.", "<AddtlNtryInf>SEPA CREDIT TRANSFER ADYEN N.V. 3530111333300000"))
    planted = " ".join(p.read_text() for p in folder.iterdir())
    assert {c for c in PLANTED if c in planted} == PLANTED


def test_planted_card_numbers_are_only_in_the_raw_zone(spark, settings, tenant_id, tmp_path, caplog):
    landing = tmp_path / "landing"
    landing.mkdir()
    _plant(landing)
    with caplog.at_level(logging.DEBUG):
        run_all(settings, tenant_id, SLICE_DAY, landing, "pan-run", spark=spark)

    found: dict[str, list] = {}
    with connect(settings, tenant_id) as conn:                      # every table that holds the tenant's rows
        tables = [r["table_name"] for r in conn.execute(
            "SELECT table_name FROM information_schema.columns WHERE table_schema = 'public' AND "
            "column_name = 'tenant_id'").fetchall()]
        rows = 0
        for table in tables:
            for r in conn.execute(f'SELECT row_to_json(t)::text AS j FROM "{table}" t').fetchall():
                rows += 1
                found.setdefault(f"postgres.{table}", []).extend(card_numbers_in(r["j"]))
    assert rows > 50
    scanned = 0
    for name, table in lake.TABLES.items():                         # every table of the lake (raw is files)
        df = lake.read(spark, settings, name, tenant_id)
        text = [f.name for f in df.schema.fields if f.dataType.simpleString() in ("string", "array<string>")]
        for row in df.select(*text).collect():
            value = json.dumps(row.asDict(), default=str)
            scanned += 1
            found.setdefault(f"lake.{name}", []).extend(
                c for c in card_numbers_in(value) if not _inside_digest(value, c))
    assert scanned > 50
    ours = [r for r in caplog.records if r.name.split(".")[0] in ("jobs", "dags", "plugins")]
    assert len(ours) >= 5                                            # the run's log was captured
    found["log"] = card_numbers_in("\n".join(r.getMessage() for r in ours))
    # Every library's log too (py4j logs each command sent to the JVM at DEBUG), but only for the planted numbers:
    # its epoch-millisecond timestamps are 13-digit runs, one in ten of which passes Luhn.
    found["library log"] = [c for c in card_numbers_in(caplog.text) if _digits(c) in {_digits(p) for p in PLANTED}]
    assert {where: cards for where, cards in found.items() if cards} == {}
    raw = [p for p in (tmp_path / "lake").rglob("*") if p.is_file() and "/raw/" in str(p)]
    assert any("4111 1111 1111 1111" in p.read_text(errors="replace") for p in raw)   # the raw zone: as delivered


def _digits(run: str) -> str:
    return run.replace(" ", "").replace("-", "")


def _inside_digest(text: str, run: str) -> bool:
    """A run of digits inside a 64-hex digest (event ids, hashed e-mails) is part of the digest, not a number."""
    import re

    return any(run in m.group() for m in re.finditer(r"[0-9a-f]{64}", text))
