"""Bad input never stops a batch and never loses a good row.

A seeded fuzzer builds ``FUZZ_FILES`` mutated files from the real samples (``tests/data/samples``,
``tests/data/formats``, ``tests/data/slice`` and a few files derived from them: Stripe webhook events,
book JSON Lines, XLSX workbooks): truncated at random offsets, bytes flipped, re-encoded (UTF-16,
Latin-1), empty, header only, binary garbage, duplicated header lines and columns, another format's
header, a valid file under another format's extension, ... It lands them in ``FUZZ_BATCHES`` batches
together with the unmutated samples, detected by content like landing does, and runs the real parse
stage on each batch. Each batch takes the samples and mutants of a share of the formats (mutants may
turn into another format, or none), so that no batch plans every format's queries. Measured on 2 cores
(2026-12-05, another test run sharing the machine for part of it): the reference run of the 39 good
files of 16 formats 97 s, the two batches of 500 134 + 62 s, the whole file 5.6 min. It took 21.5 min
quiet before the card-number masking became one JVM function and the e-mail expression linear time:
the e-mail expression rescanned a mutated file read as one megabyte-long record from every position.
Then:

* nothing raises out of the parse stage;
* every good file is loaded completely: the same records (ordinal, amount, currency), statistics and
  quarantine reasons as when the good files are parsed on their own;
* every mutated file has its statistics row and is parsed, quarantined with reasons (row by row, or
  whole: a reason on a whole-file row), or refused as ``UNKNOWN_FORMAT``; no record is lost silently:
  records_read = loaded + quarantined + skipped, and the tables hold exactly that many rows of it.

``RECON_FUZZ_SEED`` / ``RECON_FUZZ_FILES`` / ``RECON_FUZZ_BATCHES`` explore other inputs; the defaults
are what ``make test`` runs. ``pytest -s`` shows the one-line summary.
"""
from __future__ import annotations

import codecs
import csv
import hashlib
import io
import json
import os
import random
import re
import time
from collections import Counter, defaultdict
from datetime import date, timedelta
from pathlib import Path

import pytest

from conftest import DATA, land_local

pytestmark = pytest.mark.spark

SEED = int(os.environ.get("RECON_FUZZ_SEED", "20261120"))
FUZZ_FILES = int(os.environ.get("RECON_FUZZ_FILES", "1000"))
FUZZ_BATCHES = int(os.environ.get("RECON_FUZZ_BATCHES", "2"))
TENANT = "fuzz"
SALT = "fuzz-salt"
DAY = date(2026, 12, 1)
SKIPPED = re.compile(r"(\d+) record\(s\) without a money movement skipped")
TEXT_EXTENSIONS = (".csv", ".CSV", ".xml", ".sta", ".txt", ".bai", ".json", ".jsonl", ".xlsx", ".mt940", ".tsv")


# --- the good files -----------------------------------------------------------------------------------

def _detected(path: Path) -> bool:
    from jobs.formats.registry import detect

    return detect(path.read_bytes()[:65536]) is not None


def _derived_seeds(work: Path) -> list[Path]:
    """Formats the sample folders hold only in another shape: webhook events wrapping the sample API
    objects, the book CSV as JSON Lines, two CSVs as workbooks."""
    from openpyxl import Workbook

    stripe = DATA / "samples" / "stripe"
    wrapped = [("charge.succeeded", "charge_ch_fakefakefakefakefake0001.json"),
               ("charge.dispute.created", "dispute_dp_fakefakefakefake01.json"),
               ("charge.dispute.closed", "dispute_dp_funds_reinstated_full.json"),
               ("payout.paid", "payout_custom_bank_account.json")]
    events = [json.dumps({"id": f"evt_fuzz{i}", "object": "event", "type": kind, "created": 1763600000 + i,
                          "api_version": "2024-06-20", "pending_webhooks": 1,
                          "data": {"object": json.loads((stripe / name).read_text())}})
              for i, (kind, name) in enumerate(wrapped)]
    events.append((stripe / "event_external_account_bank_account_created.json").read_text().replace("\n", " "))
    out = [work / "stripe_events.jsonl"]
    out[0].write_text("\n".join(events) + "\n")
    book = DATA / "slice" / "book_payments_2026-11-19.csv"
    with book.open() as fh:
        rows = list(csv.DictReader(fh))
    out.append(work / "book_payments.jsonl")
    out[-1].write_text("".join(json.dumps(r) + "\n" for r in rows))
    for src in (book, DATA / "slice" / "settlement_detail_report_batch_7.csv"):
        wb = Workbook()
        for row in csv.reader(src.open()):
            wb.active.append([v if v != "" else None for v in row])
        out.append(work / f"{src.stem}.xlsx")
        wb.save(out[-1])
        _fixed_time(out[-1])
    return out


def _fixed_time(xlsx: Path) -> None:
    """openpyxl stamps the time of saving into a workbook (its properties and every zip entry); fixed here, so
    that the seeded mutations, which draw offsets from each seed's length and bytes, are the same in every run."""
    import zipfile

    with zipfile.ZipFile(xlsx) as archive:
        entries = [(info.filename, archive.read(info.filename)) for info in archive.infolist()]
    with zipfile.ZipFile(xlsx, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in entries:
            if name == "docProps/core.xml":
                data = re.sub(rb"(<dcterms:(?:created|modified)[^>]*>)[^<]*", rb"\g<1>2026-11-20T00:00:00Z", data)
            archive.writestr(zipfile.ZipInfo(name, date_time=(2026, 11, 20, 0, 0, 0)), data, zipfile.ZIP_DEFLATED)


def good_files(work: Path) -> list[Path]:
    found = [p for folder in ("samples", "formats", "slice") for p in sorted((DATA / folder).rglob("*"))
             if p.is_file() and _detected(p)]
    return found + _derived_seeds(work)


# --- the mutations ------------------------------------------------------------------------------------

def _lines(data: bytes) -> list[bytes]:
    return data.splitlines(keepends=True) or [b""]


def _first_line(data: bytes) -> bytes:
    return _lines(data)[0]


def truncate(rng, data, seeds):
    return data[:rng.randrange(1, max(2, len(data)))]


def truncate_in_header(rng, data, seeds):
    return data[:rng.randrange(1, max(2, len(_first_line(data))))]


def flip_bytes(rng, data, seeds):
    b = bytearray(data)
    for _ in range(rng.randint(1, 8)):
        b[rng.randrange(len(b))] ^= rng.randrange(1, 256)
    return bytes(b)


def flip_header_byte(rng, data, seeds):
    b = bytearray(data)
    b[rng.randrange(len(_first_line(data)))] ^= rng.randrange(1, 256)
    return bytes(b)


def utf16(rng, data, seeds):
    return data.decode("utf-8", errors="replace").encode(rng.choice(["utf-16", "utf-16-le", "utf-16-be"]))


def latin1(rng, data, seeds):
    """Non-ASCII text (names, descriptions) written in Latin-1 instead of UTF-8."""
    lines = data.decode("utf-8", errors="replace").splitlines(keepends=True)
    for _ in range(rng.randint(1, 4)):
        i = rng.randrange(len(lines))
        j = rng.randrange(len(lines[i]) + 1)
        lines[i] = lines[i][:j] + rng.choice(["Müller", "Café", "Ñandú", "Grüße", "€5", "Ørsted"]) + lines[i][j:]
    return "".join(lines).encode("latin-1", errors="replace")


def header_only(rng, data, seeds):
    line = _first_line(data)
    return line if rng.random() < 0.5 else line.rstrip(b"\r\n")


def garbage(rng, data, seeds):
    return rng.randbytes(rng.randint(1, 4096))


def header_then_garbage(rng, data, seeds):
    return _first_line(data) + rng.randbytes(rng.randint(1, 2048))


def duplicated_header_line(rng, data, seeds):
    lines = _lines(data)
    header = lines[0] if lines[0].endswith(b"\n") else lines[0] + b"\n"
    lines.insert(rng.randrange(1, len(lines) + 1), header)
    return b"".join(lines)


def duplicated_column(rng, data, seeds):
    """One column twice, header and rows (a report builder configured twice); other formats: a line twice."""
    text = data.decode("utf-8", errors="replace")
    try:
        rows = list(csv.reader(io.StringIO(text)))
    except csv.Error:
        rows = []
    if len(rows) < 2 or len(rows[0]) < 2:
        lines = _lines(data)
        i = rng.randrange(len(lines))
        return b"".join(lines[:i + 1] + [lines[i]] + lines[i + 1:])
    j = rng.randrange(len(rows[0]))
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    for row in rows:
        writer.writerow(row[:j + 1] + row[j:j + 1] + row[j + 1:] if len(row) > j else row)
    return out.getvalue().encode()


def other_header(rng, data, seeds):
    """Another sample's first line over this file's body."""
    donor = rng.choice(seeds).read_bytes()
    return _first_line(donor) + b"".join(_lines(data)[1:])


def line_surgery(rng, data, seeds):
    """A line dropped, repeated, moved, or a blank line inserted."""
    lines = _lines(data)
    i = rng.randrange(len(lines))
    op = rng.choice(["drop", "repeat", "move", "blank"])
    if op == "drop" and len(lines) > 1:
        del lines[i]
    elif op == "repeat":
        lines.insert(i, lines[i])
    elif op == "move":
        lines.insert(rng.randrange(len(lines)), lines.pop(i))
    else:
        lines.insert(i, b"\n")
    return b"".join(lines)


def insert_noise(rng, data, seeds):
    """NUL bytes, a stray quote, a 20-4,000 digit number or a very long field at a random place."""
    noise = rng.choice([b"\x00" * rng.randint(1, 8), b'"', b"9" * rng.randint(20, 4000),
                        b"x" * rng.randint(1000, 200_000), b"\r", b",,,,", b"\xef\xbb\xbf"])
    i = rng.randrange(len(data) + 1)
    return data[:i] + noise + data[i:]


def line_endings(rng, data, seeds):
    """CRLF <-> LF, old Mac CR, a BOM, trailing whitespace lines: shapes that must parse like the original."""
    choice = rng.choice(["crlf", "lf", "cr", "bom", "trailing"])
    if choice == "crlf":
        return data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    if choice == "lf":
        return data.replace(b"\r\n", b"\n") + b"\n"
    if choice == "cr":
        return data.replace(b"\r\n", b"\n").replace(b"\n", b"\r")
    if choice == "bom":
        return codecs.BOM_UTF8 + data
    return data + b"\n \n\t\n"


def renamed(rng, data, seeds):
    """A valid file delivered again under another format's extension (one more newline: new content, same
    records; a byte-identical copy would be recognised as already landed)."""
    return data + b"\n"


MUTATIONS = [  # (weight, mutation)
    (10, truncate), (4, truncate_in_header), (10, flip_bytes), (4, flip_header_byte), (4, utf16), (5, latin1),
    (4, header_only), (3, garbage), (3, header_then_garbage), (5, duplicated_header_line),
    (3, duplicated_column), (3, other_header), (10, line_surgery), (8, insert_noise), (6, line_endings),
    (5, renamed),
]


def mutants(rng: random.Random, seeds: list[Path], count: int, taken: set[str]) -> list[tuple[str, str, bytes]]:
    """``count`` mutated files (name, mutation, bytes) of ``seeds`` (a format, then one of its samples, at
    random), all of distinct content (``taken``: the sha256s already used); the first is the empty file."""
    from jobs.formats.registry import detect

    weights, ops = zip(*MUTATIONS)
    by_format = defaultdict(list)
    for p in seeds:
        by_format[detect(p.read_bytes()[:65536]).format_id].append(p)
    formats = sorted(by_format)
    out = []
    if hashlib.sha256(b"").hexdigest() not in taken:
        taken.add(hashlib.sha256(b"").hexdigest())
        out.append(("empty.csv", "empty", b""))
    while len(out) < count:
        seed = rng.choice(by_format[rng.choice(formats)])
        op = rng.choices(ops, weights)[0]
        data = op(rng, seed.read_bytes(), seeds)
        sha = hashlib.sha256(data).hexdigest()
        if sha in taken:
            continue
        taken.add(sha)
        ext = seed.suffix
        if op is renamed:
            ext = rng.choice([e for e in TEXT_EXTENSIONS if e.lower() != seed.suffix.lower()])
        out.append((f"{len(taken):05d}_{op.__name__}_{seed.stem[:40]}{ext}", op.__name__, data))
    return out


# --- running the parse stage and reading back what it stored --------------------------------------------

def _stored(spark, settings):
    """(events, quarantine, stats) of the tenant by (ingest_date, file_name)."""
    from jobs import lake

    events, quarantine, stats = defaultdict(list), defaultdict(list), {}
    for e in lake.read(spark, settings, "events", TENANT).select(
            "ingest_date", "file_name", "record_ordinal", "amount_minor", "currency").collect():
        events[(e.ingest_date, e.file_name)].append((e.record_ordinal, e.amount_minor, e.currency))
    for q in lake.read(spark, settings, "quarantine", TENANT).select(
            "ingest_date", "file_name", "record_ordinal", "reason_code", "reason_detail").collect():
        quarantine[(q.ingest_date, q.file_name)].append(q)
    for s in lake.read(spark, settings, "file_stats", TENANT).collect():
        stats[(s.ingest_date, s.file_name)] = s
    return events, quarantine, stats


def _outcome(day, name, events, quarantine, stats) -> str:
    """What the stage did with one file, checking that none of its records went missing."""
    s = stats.get((day, name))
    assert s is not None, f"{name}: no file_stats row (the file vanished from the batch)"
    rows = quarantine.get((day, name), [])
    whole = [q for q in rows if q.record_ordinal is None]
    assert all(q.reason_code for q in rows), f"{name}: quarantine row without a reason"
    if whole:
        assert len(whole) == 1 and s.detail and s.detail.startswith(whole[0].reason_code), (name, whole, s.detail)
        assert s.records_loaded == 0 and not events.get((day, name)), f"{name}: refused whole yet loaded"
        return f"refused {whole[0].reason_code}"
    skipped = sum(int(n) for n in SKIPPED.findall(s.detail or ""))
    assert s.records_read == s.records_loaded + s.records_quarantined + skipped, (
        f"{name}: read {s.records_read} != loaded {s.records_loaded} + quarantined {s.records_quarantined} "
        f"+ skipped {skipped}")
    assert len(events.get((day, name), [])) == s.records_loaded, f"{name}: events table != records_loaded"
    assert len(rows) == s.records_quarantined, f"{name}: quarantine table != records_quarantined"
    return "parsed, rows quarantined" if s.records_quarantined else "parsed clean"


def _fingerprint(day, name, events, quarantine, stats):
    s = stats[(day, name)]
    return {"events": sorted(events.get((day, name), [])),
            "stats": (s.records_read, s.records_loaded, s.records_quarantined, s.control_totals_ok),
            "quarantine": sorted((q.record_ordinal or 0, q.reason_code) for q in quarantine.get((day, name), []))}


def test_bad_files_never_stop_a_batch_nor_lose_a_good_row(spark, tmp_path, capsys):
    from jobs.formats.registry import detect
    from jobs.settings import Settings
    from jobs.stages.parse import parse_files

    started = time.monotonic()
    rng = random.Random(SEED)
    settings = Settings(lake=str(tmp_path / "lake"))
    work = tmp_path / "files"
    work.mkdir()
    seeds = good_files(work)
    assert len({p.name for p in seeds}) == len(seeds)
    taken = {hashlib.sha256(p.read_bytes()).hexdigest() for p in seeds}
    assert len(taken) == len(seeds), "the good files need distinct contents"

    # the reference: the good files on their own
    run_seconds = [time.monotonic()]
    parse_files(spark, settings, TENANT, DAY, [land_local(settings, TENANT, p, DAY) for p in seeds], SALT)
    run_seconds[0] = time.monotonic() - run_seconds[0]

    formats = sorted({detect(p.read_bytes()[:65536]).format_id for p in seeds})
    per_batch = -(-FUZZ_FILES // FUZZ_BATCHES)
    made: dict[date, tuple[list[Path], list[tuple[str, str]]]] = {}
    for b in range(FUZZ_BATCHES):
        day = DAY + timedelta(days=b + 1)
        folder = work / f"batch{b}"
        folder.mkdir()
        share = formats[b::FUZZ_BATCHES]
        good = [p for p in seeds if detect(p.read_bytes()[:65536]).format_id in share]
        batch = mutants(rng, good, min(per_batch, FUZZ_FILES - b * per_batch), taken)
        landed = [land_local(settings, TENANT, p, day) for p in good]
        for name, _, data in batch:
            (folder / name).write_bytes(data)
            landed.append(land_local(settings, TENANT, folder / name, day))
        rng.shuffle(landed)
        made[day] = (good, [(name, op) for name, op, _ in batch])
        run_seconds.append(time.monotonic())
        parse_files(spark, settings, TENANT, day, landed, SALT)      # must not raise
        run_seconds[-1] = time.monotonic() - run_seconds[-1]

    events, quarantine, stats = _stored(spark, settings)
    outcomes, by_op, lost = Counter(), defaultdict(Counter), 0
    for day, (good, batch) in made.items():
        for p in good:
            want = _fingerprint(DAY, p.name, events, quarantine, stats)
            got = _fingerprint(day, p.name, events, quarantine, stats)
            lost += max(0, len(want["events"]) - len(got["events"]))
            assert got == want, f"good file {p.name} in the batch of {day}: {got} != {want} (alone)"
        for name, op in batch:
            outcome = _outcome(day, name, events, quarantine, stats)
            outcomes[outcome] += 1
            by_op[op][outcome] += 1
    tried = sum(len(b) for _, b in made.values())
    assert tried == FUZZ_FILES and lost == 0
    good_rows = sum(len(events.get((DAY, p.name), [])) for p in seeds)
    with capsys.disabled():
        print(f"\nfuzz: seed {SEED}, {tried} mutated files of {len(formats)} formats in {FUZZ_BATCHES} batches "
              f"with the {len(seeds)} good files of their formats ({good_rows} good rows in all), 1+{FUZZ_BATCHES} "
              f"parse runs ({' + '.join(f'{t:.0f}' for t in run_seconds)} s), good rows lost {lost}, "
              f"{time.monotonic() - started:.0f} s in all; outcomes: "
              + ", ".join(f"{k} {v}" for k, v in sorted(outcomes.items())))
        if os.environ.get("RECON_FUZZ_VERBOSE"):
            for op, counts in sorted(by_op.items()):
                print(f"  {op}: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))


# --- the isolation itself, on a parser made to fail (cheap: no real parsing) ------------------------------

FAKE, FINE = "test.fails_on_purpose", "test.another_format"


def _fake_parser(spark, settings, spec, files, ctx):
    """Three events per file. A file named ``driver*`` makes the call raise; ``stats*`` / ``write*`` make the
    rows fail only when Spark computes them: the file statistics, or the events (first seen by the write)."""
    from pyspark.sql import functions as F

    from jobs.formats import common as c
    from jobs.schema import EVENT_SCHEMA, FILE_STATS_SCHEMA, QUARANTINE_SCHEMA

    if any(f.file_name.startswith("driver") for f in files):
        raise ValueError("cannot read card 4111 1111 1111 1111 here\nsecond line of the message")
    events = spark.createDataFrame(
        [{"tenant_id": ctx.tenant_id, "ingest_date": ctx.ingest_date, "event_id": f"{f.sha256[:8]}{i}",
          "schema_version": 1, "source": "test", "source_kind": "psp", "format": spec.format_id,
          "parser_version": "1", "event_type": "payment", "amount_minor": 100 * i, "fee_minor": 0,
          "net_minor": 100 * i, "currency": "EUR", "file_sha256": f.sha256, "file_name": f.file_name,
          "record_ordinal": i} for f in files for i in (1, 2, 3)], EVENT_SCHEMA)
    stats = spark.createDataFrame(
        [{"tenant_id": ctx.tenant_id, "ingest_date": ctx.ingest_date, "file_sha256": f.sha256,
          "file_name": f.file_name, "source": "test", "format": spec.format_id, "parser_version": "1",
          "records_read": 3, "records_loaded": 3, "records_quarantined": 0} for f in files], FILE_STATS_SCHEMA)

    def failing(df, prefix, column, message):
        bad = F.col("file_name").startswith(prefix)
        return df.withColumn(column, F.when(bad, F.raise_error(F.lit(message)).cast(df.schema[column].dataType))
                             .otherwise(F.col(column)))

    events = failing(events, "write", "description", "late failure for card 4111111111111111")
    stats = failing(stats, "stats", "records_read", "failure while counting")
    return c.ParseOutput(events, spark.createDataFrame([], QUARANTINE_SCHEMA), stats)


@pytest.fixture
def fake_formats(monkeypatch):
    """Two formats parsed by ``_fake_parser``."""
    import dataclasses

    from jobs.formats import registry
    from jobs.stages import parse

    specs = {f: dataclasses.replace(registry.REGISTRY[0], format_id=f, source="test") for f in (FAKE, FINE)}
    real_by_id, real_parser = parse.by_id, parse._parser
    monkeypatch.setattr(parse, "by_id", lambda format_id: specs.get(format_id) or real_by_id(format_id))
    monkeypatch.setattr(parse, "_parser", lambda format_id: _fake_parser if format_id in specs else
                        real_parser(format_id))


def _fake_files(settings, tmp_path, day, format_id, names):
    from jobs.landing import LandedFile

    out = []
    for name in names:
        path = tmp_path / name
        path.write_text(f"content of {name}\n")
        landed = land_local(settings, TENANT, path, day)
        out.append(LandedFile(**{**landed.__dict__, "format": format_id, "parser_version": "1", "source": "test"}))
    return out


def test_a_parser_that_raises_loses_only_the_files_it_raises_on(spark, tmp_path, fake_formats):
    """Raising in the call, while the statistics are computed, or only when the events are written: each
    failing file is refused whole (PARSE_ERROR, the error on one line, card numbers masked); every other
    file of its group and of the batch is loaded."""
    from jobs import lake
    from jobs.settings import Settings
    from jobs.stages.parse import parse_files

    settings = Settings(lake=str(tmp_path / "lake"))
    good = [f"good{i}.txt" for i in range(5)]
    bad = ["driver.txt", "stats.txt", "write.txt"]
    files = (_fake_files(settings, tmp_path, DAY, FAKE, [good[0], bad[0], good[1], bad[1], good[2], good[3], bad[2],
                                                         good[4]])
             + _fake_files(settings, tmp_path, DAY, FINE, ["other0.txt", "other1.txt"]))
    summary = {s.file_name: s for s in parse_files(spark, settings, TENANT, DAY, files, SALT)}
    events = Counter(r.file_name for r in lake.read(spark, settings, "events", TENANT).collect())
    refused = {q.file_name: q for q in lake.read(spark, settings, "quarantine", TENANT).collect()
               if q.record_ordinal is None}
    assert dict(events) == {n: 3 for n in good + ["other0.txt", "other1.txt"]}
    assert set(refused) == set(bad) and set(summary) == {f.file_name for f in files}
    for name in bad:
        q, s = refused[name], summary[name]
        assert q.reason_code == "PARSE_ERROR" and "\n" not in q.reason_detail
        assert s.detail == f"PARSE_ERROR: {q.reason_detail}" and (s.records_read, s.records_loaded) == (0, 0)
    assert refused["driver.txt"].reason_detail == "ValueError: cannot read card 411111******1111 here"
    assert "failure while counting" in refused["stats.txt"].reason_detail
    assert "late failure for card 411111******1111" in refused["write.txt"].reason_detail


def test_a_lake_that_cannot_be_read_still_fails_the_stage(spark, tmp_path):
    """An I/O error says nothing about the file: the stage fails (and is retried) instead of refusing it."""
    from jobs import storage
    from jobs.settings import Settings
    from jobs.stages.parse import parse_files

    settings = Settings(lake=str(tmp_path / "lake"))
    gone = land_local(settings, TENANT, DATA / "slice" / "stripe_payout_po_TEST1.csv", DAY)
    storage.delete(settings, gone.raw_uri)
    with pytest.raises(FileNotFoundError):
        parse_files(spark, settings, TENANT, DAY, [gone], SALT)


# --- crashes the fuzzer found, fixed in the parsers (no Spark needed) -------------------------------------

def test_a_damaged_workbook_is_unreadable_not_a_crash(tmp_path):
    """Bytes flipped inside a workbook's ZIP: bad CRC, broken deflate stream, bad header, 'encrypted' flag."""
    import zipfile

    from openpyxl import Workbook

    from jobs.formats import xlsx

    wb = Workbook()
    wb.active.append(["payment_id", "amount"])
    wb.active.append(["P1", "1.00"])
    wb.save(tmp_path / "book.xlsx")
    data = (tmp_path / "book.xlsx").read_bytes()
    with zipfile.ZipFile(tmp_path / "book.xlsx") as zf:
        sheet = zf.getinfo("xl/worksheets/sheet1.xml")
    start = sheet.header_offset + 30 + len(sheet.filename) + len(sheet.extra)      # its compressed bytes
    raised = Counter()
    for i in range(start, start + sheet.compress_size):
        for flip in (0x01, 0x80):
            damaged = data[:i] + bytes([data[i] ^ flip]) + data[i + 1:]
            try:
                xlsx.to_csv(damaged)
            except xlsx.UNREADABLE as exc:
                raised[type(exc).__name__] += 1
    name, central = sheet.filename.encode(), data.index(b"PK\x01\x02")              # its central directory entry
    while data[central + 46:central + 46 + len(name)] != name:
        central = data.index(b"PK\x01\x02", central + 4)
    flag = bytearray(data)
    flag[central + 8] |= 0x01                                                        # "encrypted"
    with pytest.raises(xlsx.UNREADABLE):
        xlsx.to_csv(bytes(flag))
    assert raised["BadZipFile"] and raised["error"]          # bad CRC-32; zlib: invalid deflate data


def test_json_and_paypal_footers_that_crashed_the_driver():
    from jobs.formats.csvread import column_positions
    from jobs.formats.paypal import _int
    from jobs.formats.stripe_events import is_json_lines

    assert not is_json_lines(b'{"object": "event", "amount": ' + b"9" * 5000 + b"}\n")   # int() digit limit
    assert not is_json_lines(b"{" + b'"a": [' * 3000 + b"\n")
    assert _int("\u00b2") is None and _int(" 12 ") == 12                                  # '²'.isdigit()
    assert column_positions({"f": ["transaction_id", "gross", "transaction_id", "file_name", "", "fee"]}) == {
        "transaction_id": {0: ["f"]}, "gross": {1: ["f"]}, "fee": {5: ["f"]}}
