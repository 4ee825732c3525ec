"""No card number reaches the lake: Luhn-valid PANs are planted in every field of every format, the files
go through the real parse stage (``parse_files``) into the Delta tables, and every string column of the
events, quarantine and file_stats tables is scanned for a 13-19 digit Luhn-valid run."""
from __future__ import annotations

import copy
import csv
import io
import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from conftest import DATA
from formats.conftest import COMPOSED, SAMPLES, files
from reference.cards import luhn as luhn_ok

pytestmark = pytest.mark.spark
PANS = ["4111111111111111", "5500-0000-0000-0004", "3782 822463 10005", "6011000990139424"]
DIGESTS = {"event_id", "file_sha256", "customer_email_hash", "counterparty_name_hash"}


def card_numbers(text: str) -> list[str]:
    """Every Luhn-valid run of 13-19 digits (single spaces/dashes allowed inside) starting at any digit that
    follows a non-digit and ending before a non-digit: brute force over all such windows."""
    found = []
    for start in range(len(text)):
        if not text[start].isdigit() or (start and text[start - 1].isdigit()):
            continue
        for end in range(start + 13, min(len(text), start + 37) + 1):
            chunk = text[start:end]
            if not re.fullmatch(r"[0-9](?:[ -]?[0-9])*", chunk) or (end < len(text) and text[end].isdigit()):
                continue
            digits = re.sub(r"[ -]", "", chunk)
            if 13 <= len(digits) <= 19 and luhn_ok(digits):
                found.append(chunk)
    return found


def test_card_numbers_are_masked_wherever_they_sit(spark):
    from pyspark.sql import functions as F

    from jobs.formats.common import mask_card_numbers, mask_text

    cases = {
        "evt_1 4111111111111111": "evt_1 411111******1111",            # after another number and a space
        "4111111111111111 12": "411111******1111 12",                  # followed by one
        "3782 822463 10005": "378282*****0005",
        "a 5500-0000-0000-0004 b": "a 550000******0004 b",
        "ref 4242424242424241": "ref 4242424242424241",                # fails Luhn: an id, kept
        "order 123456789012": "order 123456789012",                    # 12 digits
        "12345678901234567890": "12345678901234567890",                # 20 digits, no window at a group start
    }
    df = spark.createDataFrame([(k,) for k in cases], "t string")
    got = {r.t: r.m for r in df.select("t", mask_card_numbers(F.col("t")).alias("m")).collect()}
    assert got == cases and {k: mask_text(k) for k in cases} == cases


def reference_mask(text: str) -> str:
    """The masking rule from the brute-force window list: windows longest first, then left to right,
    each Luhn-valid window's text replaced wherever it occurs."""
    windows = sorted(((len(re.sub(r"[ -]", "", w)), -i, w) for i, w in enumerate(card_numbers(text))), reverse=True)
    for _, _, chunk in windows:
        digits = re.sub(r"[ -]", "", chunk)
        text = text.replace(chunk, digits[:6] + "*" * (len(digits) - 10) + digits[-4:])
    return text


def test_the_jvm_masking_agrees_with_the_brute_force_reader_on_random_text(spark):
    """3,000 random strings of digits, spaces, dashes and letters, with card numbers planted in a third
    of them (half of those between spaces, the others where they fall, often glued to other digits): the JVM function the parsers use and the Python twin for driver-side text both give what
    the brute-force window search gives."""
    import random

    from pyspark.sql import functions as F

    from jobs.formats.common import mask_card_numbers, mask_text

    rng = random.Random(20261205)
    alphabet = "0123456789" * 4 + "  --ab/."
    texts = []
    for i in range(3000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 60)))
        if i % 3 == 0:
            at = rng.randint(0, len(text))
            text = text[:at] + (f" {pan(i)} " if i % 2 else pan(i)) + text[at:]
        texts.append(text)
    df = spark.createDataFrame([(t,) for t in texts], "t string")
    got = [r.m for r in df.select(mask_card_numbers(F.col("t")).alias("m")).collect()]
    expected = [reference_mask(t) for t in texts]
    assert sum(e != t for e, t in zip(expected, texts)) > 500      # most planted numbers stand alone
    assert [(t, g) for t, g, e in zip(texts, got, expected) if g != e] == []
    assert [t for t, e in zip(texts, expected) if mask_text(t) != e] == []


def test_a_value_packed_with_card_numbers_is_masked_in_place(spark):
    """A damaged file read as one record: 200,000 card numbers in one value. Each one's middle digits
    become ``*`` where they stand (no search-and-replace per window over the whole value, which is
    quadratic); nothing Luhn-valid is left, and the Python twin agrees."""
    from pyspark.sql import functions as F

    from jobs.formats.common import mask_card_numbers, mask_text

    value = " ".join(pan(i) for i in range(200_000))
    df = spark.createDataFrame([(value,)], "t string")
    got = df.select(mask_card_numbers(F.col("t"))).first()[0]
    assert got.startswith("411111******1111 5500-00**-****-0004 3782 82**** *0005 601100******9424 411111******1111 ")
    assert len(got) == len(value) and got.count("*") == sum(len(re.sub(r"[ -]", "", pan(i))) - 10 for i in range(200_000))
    assert mask_text(value) == got


def pan(i: int) -> str:
    return PANS[i % len(PANS)]


# ------------------------------------------------------------------------------ planting, per format
def plant_csv(src: Path, dst: Path, row: int = 1) -> None:
    """Header + one copy of data row ``row`` per column, that column carrying a card number."""
    rows = list(csv.reader(io.StringIO(src.read_text())))
    out = [rows[0]]
    for j in range(len(rows[0])):
        copy_ = list(rows[row])
        copy_[j] = f"{copy_[j]} card {pan(j)}".strip()
        out.append(copy_)
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(out)
    dst.write_text(buf.getvalue())


def plant_paypal(src: Path, dst: Path) -> None:
    lines = src.read_text().splitlines()
    rows = list(csv.reader(io.StringIO("\n".join(lines))))
    head = [ln for ln, r in zip(lines, rows) if r[0] in ("RH", "FH", "SH", "CH")]
    body = next(r for r in rows if r[0] == "SB")
    out = []
    for j in range(1, len(body)):
        copy_ = list(body)
        copy_[j] = f"{copy_[j]} {pan(j)}".strip()
        buf = io.StringIO()
        csv.writer(buf, lineterminator="").writerow(copy_)
        out.append(buf.getvalue())
    dst.write_text("\n".join(head + out) + "\n")                   # no footers: totals not verifiable


def _leaf_variants(obj, path=()):
    """Paths of every string/number leaf of a JSON value."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _leaf_variants(v, (*path, k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from _leaf_variants(v, (*path, i))
    elif isinstance(obj, (str, int)) and not isinstance(obj, bool):
        yield path


def _with(obj, path, value):
    obj = copy.deepcopy(obj)
    node = obj
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return obj


def plant_events(dst: Path) -> None:
    charge = json.loads((SAMPLES / "stripe" / "charge_ch_fakefakefakefakefake0001.json").read_text())
    charge["metadata"]["order_id"] = "ORD-1"
    charge["billing_details"]["email"] = "a@example.com"
    dispute = json.loads((SAMPLES / "stripe" / "dispute_dp_fakefakefakefake01.json").read_text())
    base = [{"id": "evt_1", "object": "event", "api_version": "2024-06-20", "created": 1557995177, "type": kind,
             "data": {"object": obj}, "livemode": False, "pending_webhooks": 1, "account": "acct_1"}
            for kind, obj in (("charge.succeeded", charge), ("charge.dispute.created", dispute),
                              ("payout.paid", {"id": "po_1", "object": "payout", "amount": 1000, "currency": "usd",
                                               "arrival_date": 1629676800, "created": 1629594221,
                                               "trace_id": {"status": "supported", "value": "T1"},
                                               "statement_descriptor": "ACME", "description": "STRIPE PAYOUT"}))]
    lines = []
    for event in base:
        for i, path in enumerate(_leaf_variants(event)):
            value = _with(event, path, f"{event_value(event, path)} {pan(i)}")
            lines.append(json.dumps(value, separators=(",", ":")))
    dst.write_text("\n".join(lines) + "\n")


def event_value(obj, path):
    for key in path:
        obj = obj[key]
    return obj


def plant_book_jsonl(dst: Path) -> None:
    row = next(csv.DictReader((DATA / "slice" / "book_payments_2026-11-19.csv").open()))
    dst.write_text("".join(json.dumps({**row, k: f"{v} {pan(i)}"}) + "\n" for i, (k, v) in enumerate(row.items())))


def plant_camt(dst: Path) -> None:
    ns = "urn:iso:std:iso:20022:tech:xsd:camt.053.001.02"
    ET.register_namespace("", ns)
    tree = ET.parse(DATA / "slice" / "camt053_2026-11-20.xml")
    root = tree.getroot()
    for stmt in root.iter(f"{{{ns}}}Stmt"):
        for bal in stmt.findall(f"{{{ns}}}Bal"):
            stmt.remove(bal)                                       # totals not verifiable: every entry loads
        stmt.find(f"{{{ns}}}Id").text += f" {pan(0)}"
        stmt.find(f"{{{ns}}}Acct/{{{ns}}}Id/{{{ns}}}IBAN").text += f" {pan(1)}"
        entry = stmt.find(f"{{{ns}}}Ntry")
        leaves = [el for el in entry.iter() if el.text and el.text.strip() and len(el) == 0]
        for i in range(len(leaves)):
            variant = copy.deepcopy(entry)
            target = [el for el in variant.iter() if el.text and el.text.strip() and len(el) == 0][i]
            target.text = f"{target.text} {pan(i)}"
            stmt.append(variant)
    tree.write(dst, encoding="utf-8", xml_declaration=True)


def plant_mt940(dst: Path) -> None:
    p = PANS
    dst.write_text("\n".join([
        f":20:ST{p[0]}", f":25:NL91ABNA0417164300 {p[1]}", ":28C:1/1", ":60F:C240611EUR1000,00",
        f":61:2406120612C1,00NTRF{p[0]}//{p[3]}", f"supplementary {p[1]}", f":86:free text {p[2]} end",
        ":61:2406120612C2,00NTRFNONREF//B1", f":86:/EREF/{p[0]}//CNTP/NL12ADYB0000000001/ADYBNL2A/HOLDER {p[1]}/"
        f"//REMI/USTD//{p[3]}/",
        ":61:2406120612D3,00NTRFNONREF//B2", f":86:166?00GUTSCHRIFT?20EREF+{p[0]}?21SVWZ+{p[2]}?32NAME {p[3]}",
        f":61:2406120612C4,00N044{p[0][:10]}      W.P. {p[1]}", f":61:2406120612C5,{p[3]}NTRFNONREF", "-"]) + "\n")


def plant_bai2(dst: Path) -> None:
    p = PANS
    details = [f"16,142,100,0,{p[0]},{p[1]},TEXT {p[2]}", f"16,495,200,0,B2,C2,PAID {p[3]}",
               f"88,CONTINUED {p[0]}", "16,142,300,0,B3,,ok/"]
    amounts = 100 + 200 + 300
    account = [f"03,{p[0]},USD,010,+0,,/", *details]
    records = 1 + 1 + len(account) + 1 + 1 + 1
    dst.write_text("\n".join(["01,SENDER,RECEIVER,240612,0600,1,,,2/", "02,RECEIVER,SENDER,1,240611,2400,USD,2/",
                              *account, f"49,+{amounts},{len(account) + 1}/", f"98,+{amounts},1,{len(account) + 3}/",
                              f"99,+{amounts},1,{records}/"]) + "\n")


def plant_xlsx(src_csv: Path, dst: Path) -> None:
    from openpyxl import Workbook

    wb = Workbook()
    for row in csv.reader(src_csv.open()):
        wb.active.append(row)
    wb.save(dst)


@files
def planted(work: Path) -> list[Path]:
    d = work / "pans"
    d.mkdir()
    csvs = {
        "pan_stripe_itemized.csv": DATA / "slice" / "stripe_payout_po_TEST1.csv",
        "pan_stripe_history.csv": COMPOSED / "stripe" / "balance_history_2024-06.csv",
        "pan_stripe_report.csv": COMPOSED / "stripe" / "balance_report_payouts_itemized.csv",
        "pan_adyen_sdr.csv": COMPOSED / "adyen" / "settlement_detail_report_batch_412.csv",
        "pan_braintree.csv": COMPOSED / "braintree" / "transaction_search_2024-06-10.csv",
        "pan_checkout_breakdown.csv": COMPOSED / "checkout" / "settlement-breakdown_ent_acme_20240611_0000000K3P9Q_1.csv",
        "pan_checkout_payouts.csv": COMPOSED / "checkout" / "payouts_ent_acme_20240611_20240612_1.csv",
        "pan_book.csv": DATA / "slice" / "book_payments_2026-11-19.csv",
    }
    paths = []
    for name, src in csvs.items():
        plant_csv(src, d / name)
        paths.append(d / name)
    for name, src in (("pan_stl.csv", COMPOSED / "paypal" / "STL-20240610.01.009.CSV"),
                      ("pan_trr.csv", COMPOSED / "paypal" / "TRR-20240610.01.008.CSV")):
        plant_paypal(src, d / name)
        paths.append(d / name)
    for name, plant in (("pan_events.jsonl", plant_events), ("pan_book.jsonl", plant_book_jsonl), ("pan_camt.xml", plant_camt),
                        ("pan_statement.sta", plant_mt940), ("pan_bank.bai", plant_bai2)):
        plant(d / name)
        paths.append(d / name)
    plant_xlsx(d / "pan_adyen_sdr.csv", d / "pan_adyen_sdr.xlsx")
    paths.append(d / "pan_adyen_sdr.xlsx")
    return paths


def test_planted_pans_reach_neither_events_quarantine_nor_file_stats(spark, formats_run):
    from jobs import lake
    from jobs.formats.registry import REGISTRY

    planted_files = {name: fmt for name, fmt in formats_run.landed.items() if name.startswith("pan_")}
    assert set(planted_files.values()) == {spec.format_id for spec in REGISTRY}      # every registered format
    assert all(formats_run.stats[name].records_loaded > 0 for name in planted_files)  # real parsing happened
    scanned = 0
    for table in ("events", "quarantine", "file_stats"):
        df = lake.read(spark, formats_run.settings, table, "formats")
        text_columns = [f.name for f in df.schema.fields if f.dataType.simpleString() == "string"]
        for row in df.select(*text_columns).collect():
            for name in text_columns:
                value = row[name]
                if value is None:
                    continue
                scanned += 1
                assert not any(p in value or re.sub(r"[ -]", "", p) in value for p in PANS), (table, name, value)
                if name not in DIGESTS:                           # hex digests are not text
                    assert not card_numbers(value), (table, name, value)
    assert scanned > 5000
    planted_raw = [q for (f, _), q in formats_run.quarantine.items() if f.startswith("pan_") and q.raw]
    assert len(planted_raw) >= 20                                 # a card number in an amount field is a bad row
