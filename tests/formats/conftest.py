"""Helpers for the format tests: land files in a lake folder and run their parser once per module."""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import pytest

from conftest import DATA, land_local

DAY = date(2026, 11, 20)
SAMPLES = DATA / "samples"
COMPOSED = DATA / "formats"
SALT = "test-salt"


@dataclass
class Parsed:
    """A parser's output, collected: events and quarantine rows by (file name, ordinal), stats by file."""
    formats: set[str]
    events: dict[tuple[str, int], object] = field(default_factory=dict)
    quarantine: dict[tuple[str, int | None], object] = field(default_factory=dict)
    stats: dict[str, object] = field(default_factory=dict)
    rejected: dict[str, tuple[str, str]] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)

    def of(self, file_name: str) -> list:
        return [e for (f, _), e in sorted(self.events.items()) if f == file_name]

    def reasons(self, file_name: str) -> dict[int, str]:
        return {o: q.reason_code for (f, o), q in self.quarantine.items() if f == file_name}

    def types(self, file_name: str) -> Counter:
        return Counter(e.event_type for e in self.of(file_name))


def parse_paths(spark, settings, paths: list[Path], names: list[str] | None = None) -> Parsed:
    """Land ``paths`` (under ``names``) and parse them with the parser(s) their content selects."""
    from jobs.formats import common as c
    from jobs.formats.registry import by_id
    from jobs.stages.parse import _parser

    files = [land_local(settings, "acme", Path(p), DAY, name) for p, name in zip(paths, names or [None] * len(paths))]
    by_format: dict[str, list] = {}
    for f in files:
        assert f.format != "unknown", f"{f.file_name} was not recognised"
        by_format.setdefault(f.format, []).append(f)
    out = Parsed(formats=set(by_format))
    for fmt, group in by_format.items():
        result = _parser(fmt)(spark, settings, by_id(fmt), group, c.ParseContext("acme", DAY, SALT))
        names_by_sha = {f.sha256: f.file_name for f in group}
        for e in result.events.collect():
            out.events[(e.file_name, e.record_ordinal)] = e
        for q in result.quarantine.collect():
            out.quarantine[(q.file_name, q.record_ordinal)] = q
        for s in result.stats.collect():
            out.stats[s.file_name] = s
        out.rejected.update({names_by_sha[sha]: v for sha, v in result.rejected.items()})
        out.notes.update({names_by_sha[sha]: v for sha, v in result.notes.items()})
    return out


@pytest.fixture(scope="module")
def lake_settings(tmp_path_factory):
    from jobs.settings import Settings

    return Settings(lake=str(tmp_path_factory.mktemp("lake")))


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("files")
