"""The synthetic data generator: real-format files that add up, and a ground truth that is consistent
with them (plain pytest, small scales, no Spark)."""
from __future__ import annotations

import csv
import hashlib
import io
import json
import re
import time
import xml.etree.ElementTree as ET
from collections import Counter, defaultdict
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import numpy
import pytest

from jobs.generate import generate
from jobs.generate.cli import main
from jobs.money import CURRENCY_EXPONENTS, to_minor

END = date(2026, 11, 20)
BOOK_FIELDS = ["payment_id", "order_id", "psp", "psp_reference", "type", "amount", "currency", "created_at",
               "customer_email", "description"]
REASONS = {"MISSING_IN_PSP", "MISSING_IN_BOOK", "MISSING_IN_BANK", "PAYOUT_MISMATCH", "AMOUNT_MISMATCH",
           "CURRENCY_MISMATCH", "DUPLICATE"}
CAMT = "{urn:iso:std:iso:20022:tech:xsd:camt.053.001.02}"


# ---------------------------------------------------------------------------------------------- loading
def _kind(name: str) -> str:
    if name.startswith("book_payments_"):
        return "book"
    if name.startswith("stripe_payout_reconciliation_"):
        return "stripe"
    if name.startswith("settlement_detail_report_batch_"):
        return "adyen"
    assert name.startswith("camt053_"), name
    return "bank"


def _camt_entries(path: Path) -> tuple[list[dict], list[dict]]:
    root = ET.parse(path).getroot()
    stmts, entries = [], []
    for stmt in root.iter(CAMT + "Stmt"):
        ccy = stmt.findtext(f"{CAMT}Acct/{CAMT}Ccy")
        bal = {}
        for b in stmt.findall(CAMT + "Bal"):
            sign = 1 if b.findtext(CAMT + "CdtDbtInd") == "CRDT" else -1
            bal[b.findtext(f"{CAMT}Tp/{CAMT}CdOrPrtry/{CAMT}Cd")] = sign * to_minor(b.findtext(CAMT + "Amt"), ccy)
        mine = []
        for n in stmt.findall(CAMT + "Ntry"):
            amt = n.find(CAMT + "Amt")
            sign = 1 if n.findtext(CAMT + "CdtDbtInd") == "CRDT" else -1
            mine.append({"ccy": amt.get("Ccy"), "amount": sign * to_minor(amt.text, amt.get("Ccy")),
                         "ustrd": n.findtext(f".//{CAMT}Ustrd"), "e2e": n.findtext(f".//{CAMT}EndToEndId"),
                         "iban": stmt.findtext(f"{CAMT}Acct/{CAMT}Id/{CAMT}IBAN")})
        stmts.append({"iban": stmt.findtext(f"{CAMT}Acct/{CAMT}Id/{CAMT}IBAN"), "ccy": ccy, "bal": bal,
                      "sum": sum(e["amount"] for e in mine)})
        entries += mine
    return stmts, entries


def load(root: Path) -> dict:
    """name -> {day, path, kind, rows, copy_of}; rows are dicts (camt: entries in document order)."""
    files, seen = {}, {}
    for folder in sorted((root / "landing").iterdir()):
        for path in sorted(folder.iterdir()):
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            info = {"day": date.fromisoformat(folder.name), "path": path, "kind": _kind(path.name),
                    "copy_of": seen.get(digest)}
            seen.setdefault(digest, path.name)
            if path.suffix == ".jsonl":
                info["rows"] = [json.loads(line) for line in path.read_text().splitlines()]
            elif path.suffix == ".csv":                  # a byte order mark on the book at the high level
                text = path.read_text(encoding="utf-8-sig")
                info["rows"] = list(csv.DictReader(io.StringIO(text, newline="")))
                info["header"] = text.splitlines()[0]
            else:
                info["stmts"], info["rows"] = _camt_entries(path)
            files[path.name] = info
    return files


def truth(root: Path) -> tuple[list[dict], list[dict]]:
    read = lambda name: list(csv.DictReader((root / "truth" / name).open()))  # noqa: E731
    return read("groups.csv"), read("exceptions.csv")


def record(files: dict, name: str, ordinal: str) -> dict:
    return files[name]["rows"][int(ordinal) - 1]


def _gen(tmp_path_factory, noise: str, **kw) -> Path:
    out = tmp_path_factory.mktemp(f"gen_{noise}")
    args = dict(seed=7, end_date=END, days=9, payments_per_day=300, tenants=["acme"], noise=noise)
    args.update(kw)
    generate(out, **args)
    return out / args["tenants"][0]


@pytest.fixture(scope="module")
def high(tmp_path_factory):
    root = _gen(tmp_path_factory, "high")
    return root, load(root), *truth(root)


@pytest.fixture(scope="module")
def clean(tmp_path_factory):
    root = _gen(tmp_path_factory, "none")
    return root, load(root), *truth(root)


def _tree_bytes(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


# ------------------------------------------------------------------------------------------------ tests
def test_same_seed_gives_identical_bytes_and_another_seed_differs(tmp_path):
    common = ["--end-date", "2026-11-20", "--days", "4", "--payments-per-day", "150", "--noise", "high",
              "--tenants", "acme,beta"]
    assert main(["--out", str(tmp_path / "a"), "--seed", "3", *common]) == 0
    assert main(["--out", str(tmp_path / "b"), "--seed", "3", *common]) == 0
    assert main(["--out", str(tmp_path / "c"), "--seed", "4", *common]) == 0
    a, b, c = (_tree_bytes(tmp_path / x) for x in "abc")
    assert a == b and len(a) > 20
    book = "acme/landing/2026-11-20/book_payments_2026-11-20"
    a_book = next(v for k, v in a.items() if k.startswith(book))
    c_book = next(v for k, v in c.items() if k.startswith(book))
    assert a_book != c_book
    assert a["acme/truth/groups.csv"] != a["beta/truth/groups.csv"]


def test_book_files_parse_with_exact_decimals(high):
    _, files, _, _ = high
    books = [f for f in files.values() if f["kind"] == "book"]
    assert {f["path"].suffix for f in books} == {".csv", ".jsonl"}
    for f in books:
        if f["path"].suffix == ".csv":
            assert f["header"] == ",".join(BOOK_FIELDS)
        for row in f["rows"]:
            assert list(row) == BOOK_FIELDS
            exp = CURRENCY_EXPONENTS[row["currency"]]
            assert re.fullmatch(r"\d+" + (rf"\.\d{{{exp}}}" if exp else ""), row["amount"]), row
            assert row["type"] in ("payment", "refund") and row["psp"] in ("stripe", "adyen")
            assert datetime.fromisoformat(row["created_at"]).tzinfo is not None
            assert "@" in row["customer_email"]
    noted = [r for f in books if f["path"].suffix == ".csv" for r in f["rows"] if "\n" in r["description"]]
    assert noted, "the high level writes customer notes with line breaks inside quoted descriptions"


def test_stripe_net_per_payout_equals_bank_credit(high):
    _, files, _, exc = high
    bank = {e["ustrd"]: e for f in files.values() if f["kind"] == "bank" for e in f["rows"]}
    flagged = {(x["file_name"], x["reason_code"]) for x in exc}
    styles = {f["header"].split(",")[0] for f in files.values() if f["kind"] == "stripe"}
    assert styles == {'"automatic_payout_id"', "balance_transaction_id"}          # Dashboard and API styles
    checked = 0
    for name, f in files.items():
        if f["kind"] != "stripe" or f["copy_of"]:
            continue
        rows = {r["balance_transaction_id"]: r for r in f["rows"]}        # a repeated row is a duplicate
        total = 0
        for r in rows.values():
            ccy = r["currency"].upper()
            assert r["currency"] == r["currency"].lower()
            assert to_minor(r["gross"], ccy) - to_minor(r["fee"], ccy) == to_minor(r["net"], ccy)
            total += to_minor(r["net"], ccy)
        po = next(iter(rows.values()))["automatic_payout_id"]
        entry = bank.get(f"STRIPE {po}")
        if entry is None:
            assert (name, "MISSING_IN_BANK") in flagged or f["day"] == END
            continue
        mismatch = any(x["reason_code"] == "PAYOUT_MISMATCH" and record(files, x["file_name"], x["record_ordinal"])
                       is entry for x in exc)
        assert (entry["amount"] == total) != mismatch
        checked += 1
    assert checked >= 5


def _adyen_minor(row: dict, col: str, ccy: str) -> int:
    return to_minor(row[col], ccy) if row[col] else 0


def test_adyen_rows_add_up_and_merchant_payout_is_the_batch_sum(high):
    _, files, _, _ = high
    bank = {e["ustrd"]: e for f in files.values() if f["kind"] == "bank" for e in f["rows"]}
    layouts = set()
    for f in files.values():
        if f["kind"] != "adyen":
            continue
        layouts.add(len(f["header"].split(",")))
        credit = debit = 0
        for row in f["rows"]:
            fees = sum(_adyen_minor(row, c, "EUR") for c in ("Commission (NC)", "Markup (NC)", "Scheme Fees (NC)",
                                                               "Interchange (NC)"))
            nc, nd = _adyen_minor(row, "Net Credit (NC)", "EUR"), _adyen_minor(row, "Net Debit (NC)", "EUR")
            if row["Type"] in ("Settled", "Refunded", "Chargeback"):
                assert re.fullmatch(r"\d{16}", row["Psp Reference"])
                assert re.fullmatch(r"\d{16}", row["Modification Reference"])
                gross = Decimal(row["Gross Credit (GC)"] or row["Gross Debit (GC)"])
                exact = gross * Decimal(row["Exchange Rate"])
                converted = to_minor(exact.quantize(Decimal("0.01"), ROUND_HALF_UP), "EUR")
                assert (exact * 100) % 1 != Decimal("0.5")                 # never a rounding tie
                if row["Type"] == "Settled":
                    assert converted - fees == nc
                else:
                    assert converted + fees == nd
            assert row["TimeZone"] == "CET"                                    # November in Amsterdam
            if row["Type"] == "MerchantPayout":
                assert credit - debit == nd - nc
                tx = re.fullmatch(r"(TX\d{10}XT) batch (\d+), \w+", row["Modification Reference"])
                assert tx and row["Batch Number"] == tx.group(2)
                entry = bank.get(row["Modification Reference"])
                assert entry is None or entry["e2e"] == tx.group(1)
            credit, debit = credit + nc, debit + nd
        assert f["rows"][-1]["Type"] == "MerchantPayout" and f["rows"][-2]["Type"] == "Fee"
    assert layouts == {30, 32}


def test_camt_balances_add_up_and_chain_across_days(high):
    _, files, _, _ = high
    previous = {}
    for f in sorted((f for f in files.values() if f["kind"] == "bank"), key=lambda f: f["day"]):
        assert {s["ccy"] for s in f["stmts"]} == {"EUR", "USD"}
        for s in f["stmts"]:
            assert s["bal"]["OPBD"] + s["sum"] == s["bal"]["CLBD"]
            if s["iban"] in previous:
                assert s["bal"]["OPBD"] == previous[s["iban"]]
            previous[s["iban"]] = s["bal"]["CLBD"]
    assert len(files) and sum(len(f["rows"]) for f in files.values() if f["kind"] == "bank") >= 10


@pytest.mark.parametrize("dataset", ["high", "clean"])
def test_every_truth_record_exists_in_a_first_delivery(dataset, request):
    _, files, groups, exc = request.getfixturevalue(dataset)
    for x in groups + exc:
        f = files[x["file_name"]]
        assert f["copy_of"] is None
        assert 1 <= int(x["record_ordinal"]) <= len(f["rows"])
    assert len({(g["file_name"], g["record_ordinal"], g["relation"]) for g in groups}) == len(groups)


def test_clean_data_matches_fully(clean):
    _, files, groups, exc = clean
    assert [x for x in exc if date.fromisoformat(x["due_date"]) <= END] == []
    assert {x["reason_code"] for x in exc} <= {"MISSING_IN_PSP", "MISSING_IN_BANK"}   # only the window's tail
    membership = Counter((g["file_name"], g["record_ordinal"]) for g in groups if g["relation"] == "book_psp")
    pending = {(x["file_name"], x["record_ordinal"]) for x in exc if x["reason_code"] == "MISSING_IN_PSP"}
    assert {g["expected_level"] for g in groups} == {"1", "4"}
    grouped = 0
    for name, f in files.items():
        if f["kind"] != "book":
            continue
        for i in range(1, len(f["rows"]) + 1):
            key = (name, str(i))
            assert membership[key] + (key in pending) == 1, key
            grouped += membership[key]
    assert grouped > 0.6 * sum(len(f["rows"]) for f in files.values() if f["kind"] == "book")
    # every PSP payment/refund row has its book row; every PSP row and bank entry is in one payout group,
    # except the batches whose bank credit arrives after the window (flagged on the MerchantPayout row)
    in_payout = Counter((g["file_name"], g["record_ordinal"]) for g in groups if g["relation"] == "payout_bank")
    tail_batches = {x["file_name"] for x in exc if x["reason_code"] == "MISSING_IN_BANK"}
    for name, f in files.items():
        for i, row in enumerate(f["rows"], 1):
            key = (name, str(i))
            if f["kind"] == "book" or f["copy_of"]:
                continue
            if row.get("reporting_category") in ("charge", "refund") or row.get("Type") in ("Settled", "Refunded"):
                assert membership[key] == 1, key
            assert in_payout[key] == (0 if name in tail_batches else 1), key


def test_high_noise_yields_every_reason_code(high):
    _, _, groups, exc = high
    assert {x["reason_code"] for x in exc} == REASONS
    assert {g["expected_level"] for g in groups} == {"1", "2", "3", "4"}
    kinds = {g["kind"] for g in groups}
    assert {"exact", "fx", "empty_ref", "mangled_ref", "padded_ref", "amount_time", "fx_rounding", "split_capture",
            "late_settlement", "partial_refund", "refund", "payout", "ref_in_text"} <= kinds


def _psp_view(row: dict) -> tuple[str, str, int, str]:
    """(psp id the book should carry, merchant reference, presentment amount, currency) of a PSP row."""
    if "reporting_category" in row:
        ccy = row["customer_facing_currency"].upper()
        return row["source_id"], row["order_id"], abs(to_minor(row["customer_facing_amount"], ccy)), ccy
    ccy = row["Gross Currency"]
    amount = to_minor(row["Gross Credit (GC)"] or row["Gross Debit (GC)"], ccy)
    ref = row["Psp Reference"] if row["Type"] == "Settled" else row["Modification Reference"]
    return ref, row["Merchant Reference"], amount, ccy


def _business_days_after(day: date, n: int) -> date:
    return numpy.busday_offset(numpy.datetime64(day, "D"), n, roll="backward").astype(date)


def _norm_order(text: str) -> str:
    text = text.strip().upper().removeprefix("#").removeprefix("ORDER ").strip()
    return text


def test_truth_groups_agree_with_the_files(high):
    _, files, groups, exc = high
    by_group = defaultdict(list)
    for g in groups:
        by_group[g["group_id"]].append(g)
    seen_levels = Counter()
    for members in by_group.values():
        kinds = [files[m["file_name"]]["kind"] for m in members]
        rows = [record(files, m["file_name"], m["record_ordinal"]) for m in members]
        level = members[0]["expected_level"]
        assert max(files[m["file_name"]]["day"] for m in members).isoformat() == members[0]["available_date"]
        if members[0]["relation"] == "payout_bank":
            assert kinds.count("bank") == 1 and level == "4"
            entry = rows[kinds.index("bank")]
            if "adyen" in kinds:
                payout = next(r for r in rows if r.get("Type") == "MerchantPayout")
                expected = (_adyen_minor(payout, "Net Debit (NC)", "EUR")
                            - _adyen_minor(payout, "Net Credit (NC)", "EUR"))
            else:
                expected = sum(to_minor(r["net"], r["currency"].upper()) for r in rows if "net" in r)
            assert entry["amount"] == expected
            continue
        book = rows[kinds.index("book")]
        book_day = files[members[kinds.index("book")]["file_name"]]["day"]
        # the PSP side always arrives before the book row would age into MISSING_IN_PSP
        assert date.fromisoformat(members[0]["available_date"]) < _business_days_after(book_day, 3)
        psp = [_psp_view(r) for r, k in zip(rows, kinds) if k != "book"]
        amount, ccy = to_minor(book["amount"], book["currency"]), book["currency"]
        seen_levels[level] += 1
        if level == "4":
            assert members[0]["kind"] == "split_capture" and len(psp) in (2, 3)
            assert sum(p[2] for p in psp) == amount and len({p[0] for p in psp}) == 1
            continue
        (ref, order, psp_amount, psp_ccy), = psp
        if level == "1":
            assert book["psp_reference"].strip() == ref and (amount, ccy) == (psp_amount, psp_ccy)
        elif level == "2" and members[0]["kind"] == "ref_in_text":
            psp_row, = [r for r, k in zip(rows, kinds) if k != "book"]
            assert book["psp_reference"] == "" and order == "" and _order_in_text(psp_row["description"]) == \
                _norm_order(book["order_id"]).removeprefix("ORD-")
            assert (amount, ccy) == (psp_amount, psp_ccy)
        elif level == "2":
            assert book["psp_reference"].strip() != ref and _norm_order(book["order_id"]) == order
            assert (amount, ccy) == (psp_amount, psp_ccy)
        else:
            assert level == "3" and ccy == psp_ccy and abs(amount - psp_amount) <= 1
            assert (members[0]["kind"] == "fx_rounding") == (amount != psp_amount)
    assert set(seen_levels) == {"1", "2", "3", "4"}
    pairs = defaultdict(list)
    for x in exc:
        if x["reason_code"] in ("AMOUNT_MISMATCH", "CURRENCY_MISMATCH"):
            pairs[x["reason_code"]].append(record(files, x["file_name"], x["record_ordinal"]))
    assert len(pairs["AMOUNT_MISMATCH"]) % 2 == 0 and len(pairs["CURRENCY_MISMATCH"]) % 2 == 0


TEXT_SHAPES = (r"Order #(\d{14})", r"[A-Z0-9]+ order (\d{14})", r"Invoice INV-(\d{14}) / 20\d\d")


def _order_in_text(description: str) -> str:
    """The order number of a ``ref_in_text`` description, in one of the generator's shapes."""
    found = [m.group(1) for shape in TEXT_SHAPES if (m := re.fullmatch(shape, description))]
    assert len(found) == 1, description
    return found[0]


def test_high_noise_puts_some_order_references_only_in_psp_free_text(high, everything):
    """ref_in_text: the book row has no PSP id, the PSP row no order field and the order in its description,
    in every shape; some of these pairs differ in amount or currency, flagged on both records (truth kind)."""
    _, files, groups, exc = high
    texts = [record(files, g["file_name"], g["record_ordinal"]) for g in groups
             if g["kind"] == "ref_in_text" and files[g["file_name"]]["kind"] == "stripe"]
    assert len(texts) >= 10 and all(r["order_id"] == "" for r in texts)
    assert {next(i for i, shape in enumerate(TEXT_SHAPES) if re.fullmatch(shape, r["description"]))
            for r in texts} == set(range(len(TEXT_SHAPES)))
    flagged = defaultdict(list)
    for x in exc:
        if x["kind"].startswith("ref_in_text_"):
            flagged[x["kind"]].append((files[x["file_name"]]["kind"], record(files, x["file_name"], x["record_ordinal"])))
    assert set(flagged) == {"ref_in_text_amount_mismatch", "ref_in_text_currency_mismatch"}
    for kind, rows in flagged.items():
        book = {_norm_order(r["order_id"]).removeprefix("ORD-"): r for k, r in rows if k == "book"}
        psp = {_order_in_text(r["description"]): r for k, r in rows if k == "stripe"}
        assert set(book) == set(psp) and len(book) * 2 == len(rows)
        for order, b in book.items():
            _, psp_order, psp_amount, psp_ccy = _psp_view(psp[order])
            assert b["psp_reference"] == "" and psp_order == ""
            if kind == "ref_in_text_amount_mismatch":
                assert b["currency"] == psp_ccy and to_minor(b["amount"], b["currency"]) != psp_amount
            else:
                assert b["currency"] != psp_ccy
    assert {x["kind"] for x in exc} == {"", "amount_mismatch", "currency_mismatch", "ref_in_text_amount_mismatch",
                                         "ref_in_text_currency_mismatch"}
    # PayPal's settlement report carries them in its Custom Field (no Invoice ID)
    sales = []
    for path in sorted((everything / "landing").rglob("STL-*.CSV")):
        body, other = _sb_rows(path)
        col = {name: i + 1 for i, name in enumerate(next(r for r in other if r[0] == "CH")[1:])}
        sales += [(r[col["Invoice ID"]], r[col["Custom Field"]]) for r in body if r[col["Transaction Event Code"]] == "T0006"]
    in_text = [custom for invoice, custom in sales if invoice == ""]
    assert in_text and all(_order_in_text(custom) for custom in in_text)
    assert all(custom == f"ord:{invoice}" for invoice, custom in sales if invoice)


def test_redelivered_files_are_byte_identical_to_the_first_delivery(high):
    _, files, _, _ = high
    copies = [f for f in files.values() if f["copy_of"]]
    assert copies
    for f in copies:
        original = files[f["copy_of"]]
        assert f["path"].read_bytes() == original["path"].read_bytes()
        assert f["day"] > original["day"] and f["path"].name != original["path"].name


def test_timing_smoke_100k_payments(tmp_path):
    started = time.perf_counter()
    report = generate(tmp_path, seed=1, end_date=END, days=4, payments_per_day=25_000, noise="medium")
    elapsed = time.perf_counter() - started
    print(f"\n100k payments (4 days x 25k) generated in {elapsed:.2f}s: {dict(report.files)} {dict(report.records)}")
    assert report.records["book_rows"] >= 100_000
    assert report.files["stripe_payout_reconciliation"] >= 2 and report.files["adyen_settlement_detail"] >= 2
    lines = sum(sum(1 for _ in p.open("rb")) - (p.suffix == ".csv")
                for p in (tmp_path / "acme" / "landing").rglob("book_payments_*"))
    assert lines == report.records["book_rows"]


# ------------------------------------------------------------------------------------ other formats
ALL_PSPS = ["stripe", "adyen", "paypal", "braintree", "checkout"]


def _variant(tmp_path_factory, name: str, **kw) -> Path:
    out = tmp_path_factory.mktemp(f"gen_{name}")
    args = dict(seed=5, end_date=END, days=5, payments_per_day=150, tenants=["acme"], noise="high")
    args.update(kw)
    generate(out, **args)
    return out / "acme"


@pytest.fixture(scope="module")
def everything(tmp_path_factory):
    return _variant(tmp_path_factory, "all", psps=ALL_PSPS, bank_format="mt940", xlsx=["braintree"])


def _sb_rows(path: Path) -> tuple[list[list[str]], list[list[str]]]:
    rows = list(csv.reader(path.open()))
    return [r for r in rows if r[0] == "SB"], [r for r in rows if r[0] != "SB"]


def test_new_options_are_deterministic_and_leave_the_default_output_alone(tmp_path):
    kw = dict(seed=9, end_date=END, days=3, payments_per_day=60, noise="high", psps=ALL_PSPS,
              stripe_format="events", paypal_format="trr", bank_format="bai2", xlsx=["adyen", "book"])
    generate(tmp_path / "a", **kw)
    generate(tmp_path / "b", **kw)
    a, b = _tree_bytes(tmp_path / "a"), _tree_bytes(tmp_path / "b")
    assert a == b
    names = {Path(k).name.split("_")[0].split("-")[0] for k in a if "/landing/" in k}
    assert {"stripe", "settlement", "TRR", "braintree", "payouts", "bai2", "book"} <= names
    assert any(k.endswith(".xlsx") and "settlement_detail_report" in k for k in a)
    import zipfile                              # a workbook records no time of writing (two runs 2 s apart differed)
    for name in (k for k in a if k.endswith(".xlsx")):
        assert {i.date_time for i in zipfile.ZipFile(tmp_path / "a" / name).infolist()} == {(1980, 1, 1, 0, 0, 0)}
    with pytest.raises(ValueError):
        generate(tmp_path / "c", end_date=END, bank_format="mt942")


def test_paypal_footers_and_withdrawals_add_up(everything):
    reports = sorted((everything / "landing").rglob("STL-*.CSV"))
    assert reports
    withdrawals = 0
    for path in reports:
        body, other = _sb_rows(path)
        header = next(r for r in other if r[0] == "CH")[1:]
        col = {name: i + 1 for i, name in enumerate(header)}
        for footer in (r for r in other if r[0] == "SF"):
            mine = [r for r in body if r[col["Gross Transaction Currency"]] == footer[1]]
            gross = lambda dc: sum(int(r[col["Gross Transaction Amount"]]) for r in mine  # noqa: E731
                                   if r[col["Transaction Debit or Credit"]] == dc)
            fee = lambda dc: sum(int(r[col["Fee Amount"]] or 0) for r in mine if r[col["Fee Debit or Credit"]] == dc)  # noqa
            assert [int(x) for x in footer[2:6]] == [gross("CR"), gross("DR"), fee("CR"), fee("DR")]
            before = sum((1 if r[col["Transaction Debit or Credit"]] == "CR" else -1) * int(r[col["Gross Transaction Amount"]])
                         - (1 if r[col["Fee Debit or Credit"]] == "DR" else -1 if r[col["Fee Debit or Credit"]] else 0)
                         * int(r[col["Fee Amount"]] or 0) for r in mine if r[col["Transaction Event Code"]] != "T0400")
            out = [int(r[col["Gross Transaction Amount"]]) for r in mine if r[col["Transaction Event Code"]] == "T0400"]
            assert out == ([before] if before > 0 else [])          # the day's balance goes to the bank
            withdrawals += len(out)
        assert next(r for r in other if r[0] == "SC")[1] == str(len(body))
    assert withdrawals >= 3


def test_checkout_payouts_report_equals_its_settlement_breakdowns(everything):
    breakdown = defaultdict(int)
    for path in (everything / "landing").rglob("settlement-breakdown_*.csv"):
        if "(1)" in path.name:                                   # a redelivered copy
            continue
        for row in csv.DictReader(path.open()):
            ccy = row["Holding Currency"]
            net = to_minor(row["Net In Holding Currency"], ccy)
            assert to_minor(row["Gross In Holding Currency"], ccy) + to_minor(row["Deduction In Holding Currency"],
                                                                               ccy) == net
            breakdown[row["Payout ID"]] += net
    reports = list((everything / "landing").rglob("payouts_*.csv"))
    assert reports and breakdown
    for path in reports:
        for row in csv.DictReader(path.open()):
            ccy = row["Holding Currency"]
            parts = sum(to_minor(v, ccy) for k, v in row.items() if k not in (
                "Client Entity ID", "Client Entity Name", "Sub Entity ID", "Sub Entity Name", "Currency Account ID",
                "Currency Account Name", "Holding Currency", "Payout ID", "Payout Date", "Reporting Start Date",
                "Reporting End Date", "Payout Amount"))
            assert to_minor(row["Payout Amount"], ccy) == parts == breakdown[row["Payout ID"]]


def test_mt940_and_bai2_statements_balance_and_chain(everything, tmp_path_factory):
    from jobs.formats.mt940 import read_pages

    previous = {}
    for path in sorted((everything / "landing").rglob("mt940_*.sta")):
        for page in read_pages(path.read_text()):
            lines = sum((1 if ln.match.group("mark") == "C" else -1) * Decimal(ln.match.group("amount").replace(",", "."))
                        for ln in page.lines)
            assert page.opening + lines == page.closing
            assert previous.get(page.account, page.opening) == page.opening
            previous[page.account] = page.closing
    assert len(previous) == 2
    bai = _variant(tmp_path_factory, "bai2", psps=["paypal", "checkout"], bank_format="bai2")
    from jobs.formats import bai2, common

    for path in sorted((bai / "landing").rglob("bai2_*.bai")):
        from jobs.landing import LandedFile

        out = common.DriverRows(bai2.ROW_SCHEMA)
        f = LandedFile("acme", "0" * 64, path.name, str(path), "bank.bai2", "1.0", "bank", END)
        assert bai2.parse_file(path.read_bytes(), f, out)["control_totals_ok"] is True
        assert out.count == sum(1 for line in path.read_text().splitlines() if line.startswith("16,"))


def test_xlsx_delivery_keeps_the_rows(everything):
    from jobs.formats.xlsx import to_csv

    books = sorted((everything / "landing").rglob("braintree_transactions_*.xlsx"))
    assert books
    rows = list(csv.DictReader(io.StringIO(to_csv(books[0].read_bytes()).decode())))
    assert rows and {r["Transaction Type"] for r in rows} <= {"sale", "credit"}
    assert all(re.fullmatch(r"[a-z0-9]{8}", r["Transaction ID"]) for r in rows)
