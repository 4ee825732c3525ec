"""The format tests share one parse run: every test module registers the files it needs (``@files``),
the session fixture ``formats_run`` lands them all and runs the real parse stage (``parse_files``: every
parser once, into the Delta tables), and the tests read what each file produced from the lake. One
Spark job per format instead of one per test keeps the suite fast."""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Callable

import pytest

from conftest import DATA, land_local

DAY = date(2026, 11, 20)
SAMPLES = DATA / "samples"
COMPOSED = DATA / "formats"
SALT = "test-salt"
TENANT = "formats"
BUILDERS: list[Callable[[Path], list[Path]]] = []


def files(builder: Callable[[Path], list[Path]]):
    """Register a function that writes (or names) the files a test module needs."""
    BUILDERS.append(builder)
    return builder


@dataclass
class Parsed:
    """What the parse stage stored, by file: events and quarantine rows by (file name, ordinal), file stats,
    whole-file refusals (reason, detail)."""
    settings: object = None
    events: dict[tuple[str, int], object] = field(default_factory=dict)
    quarantine: dict[tuple[str, int], object] = field(default_factory=dict)
    stats: dict[str, object] = field(default_factory=dict)
    rejected: dict[str, tuple[str, str]] = field(default_factory=dict)
    landed: dict[str, str] = field(default_factory=dict)            # file name -> detected format
    paths: dict[str, Path] = field(default_factory=dict)            # file name -> the file as delivered

    def of(self, file_name: str) -> list:
        return [e for (f, _), e in sorted(self.events.items()) if f == file_name]

    def reasons(self, file_name: str) -> dict[int, str]:
        return {o: q.reason_code for (f, o), q in self.quarantine.items() if f == file_name}

    def types(self, file_name: str) -> Counter:
        return Counter(e.event_type for e in self.of(file_name))


@pytest.fixture(scope="session")
def formats_run(spark_session, tmp_path_factory) -> Parsed:
    spark = spark_session
    from jobs import lake
    from jobs.settings import Settings
    from jobs.stages.parse import parse_files

    work = tmp_path_factory.mktemp("format_files")
    paths = [p for build in BUILDERS for p in build(work)]
    names = [p.name for p in paths]
    assert len(names) == len(set(names)), "test files need distinct names"
    settings = Settings(lake=str(tmp_path_factory.mktemp("formats_lake")))
    landed = [land_local(settings, TENANT, p, DAY) for p in paths]
    assert len({f.sha256 for f in landed}) == len(landed), "test files need distinct contents"
    parse_files(spark, settings, TENANT, DAY, landed, SALT)
    out = Parsed(settings=settings, landed={f.file_name: f.format for f in landed}, paths={p.name: p for p in paths})
    for e in lake.read(spark, settings, "events", TENANT).collect():
        out.events[(e.file_name, e.record_ordinal)] = e
    for q in lake.read(spark, settings, "quarantine", TENANT).collect():
        if q.record_ordinal is None:
            out.rejected[q.file_name] = (q.reason_code, q.reason_detail)
        else:
            out.quarantine[(q.file_name, q.record_ordinal)] = q
    for s in lake.read(spark, settings, "file_stats", TENANT).collect():
        out.stats[s.file_name] = s
    return out
