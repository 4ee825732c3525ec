"""A wrong command line gets one line on stderr and exit code 2, never a traceback; nothing has run yet."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import write_tenant_config

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def tenants(tmp_path, monkeypatch) -> Path:
    """A tenant configuration folder with acme and a configuration whose file name is not a valid tenant id;
    no database (a command that got as far as connecting would fail differently)."""
    folder = tmp_path / "tenants"
    write_tenant_config(folder, "acme")
    write_tenant_config(folder, "Bad-Name")
    monkeypatch.setenv("RECON_TENANT_CONFIG_DIR", str(folder))
    monkeypatch.setenv("RECON_DATABASE_URL", "postgresql://nobody@127.0.0.1:1/none")
    monkeypatch.setenv("RECON_LAKE", str(tmp_path / "lake"))
    return folder


def recon(argv: list[str], capsys) -> tuple[int, str]:
    from jobs.cli import main

    try:
        code = main(argv)
    except SystemExit as exc:          # argparse exits
        code = exc.code
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.count("\n") == 1 and err.startswith("recon"), err
    return code, err.strip()


def test_tenant_rule_is_the_database_rule():
    from jobs.settings import TENANT_ID_PATTERN

    sql = (ROOT / "sql" / "migrations" / "V001__core.sql").read_text()
    assert re.search(r"tenant_id\s+text PRIMARY KEY CHECK \(tenant_id ~ '([^']+)'\)", sql).group(1) == TENANT_ID_PATTERN


@pytest.mark.parametrize("tenant", ["acme", "acme_eu", "t1a2b3c4", "ab", "a" + "b" * 62])
def test_valid_tenant_ids(tenant):
    from jobs.settings import check_tenant_id

    assert check_tenant_id(tenant) == tenant


@pytest.mark.parametrize("tenant", ["Bad-Name", "a", "1acme", "acme-eu", "ACME", "a" * 64, "acme;drop", "",
                                    "_acme", "acme\n", "acmé"])
def test_invalid_tenant_id_is_one_line(tenant, tenants, capsys):
    code, err = recon(["summary", "--tenant", tenant, "--business-date", "2026-11-20"], capsys)
    assert code == 2 and f"invalid tenant id {tenant!r}" in err
    assert "lower-case letters, digits and '_', starting with a letter" in err


def test_invalid_tenant_id_is_refused_by_every_command(tenants, capsys):
    for argv in (["run", "--tenant", "Bad-Name", "--business-date", "2026-11-20"],
                 ["export", "--tenant", "Bad-Name", "--what", "files", "--out", str(tenants / "x.csv")],
                 ["stage", "parse", "--tenant", "Bad-Name", "--business-date", "2026-11-20", "--run-id", "r"],
                 ["connector", "runs", "--tenant", "Bad-Name"],
                 ["period", "list", "--tenant", "Bad-Name"]):
        code, err = recon(argv, capsys)
        assert code == 2 and "invalid tenant id 'Bad-Name'" in err, argv


def test_recon_run_with_a_bad_tenant_id_prints_one_line(tenants):
    """The real console entry: before, a psycopg CheckViolation traceback once the tenant was recorded."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-m", "jobs.cli", "run", "--tenant", "Bad-Name", "--business-date",
                           "2026-11-20"], capture_output=True, text=True, env=env, cwd=ROOT, timeout=120)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    assert done.stderr.startswith("recon: invalid tenant id 'Bad-Name'")


def test_unknown_tenant(tenants, capsys):
    for argv in (["summary", "--tenant", "nobody", "--business-date", "2026-11-20"],
                 ["export", "--tenant", "nobody", "--what", "matches", "--out", str(tenants / "m.csv")],
                 ["unmatch", "--tenant", "nobody", "--relation", "book_psp", "--record", "f.csv#1", "--reason", "x"]):
        code, err = recon(argv, capsys)
        assert code == 2 and "unknown tenant 'nobody'" in err and "configured tenants: Bad-Name, acme" in err, argv
    assert not (tenants / "m.csv").exists()


def test_broken_tenant_configuration(tenants, capsys):
    (tenants / "broken.yaml").write_text("tenant_id: broken\npsps: [stripe\n")
    code, err = recon(["summary", "--tenant", "broken", "--business-date", "2026-11-20"], capsys)
    assert code == 2 and err.startswith("recon: configuration error: invalid YAML")


@pytest.mark.parametrize("argv, message", [
    (["run", "--tenant", "acme", "--business-date", "2026-13-45"], "not a date (YYYY-MM-DD): '2026-13-45'"),
    (["summary", "--tenant", "acme", "--business-date", "yesterday"], "not a date (YYYY-MM-DD): 'yesterday'"),
    (["run", "--tenant", "acme", "--business-date", "2026-11-20", "--landing", "/no/such/folder"],
     "argument --landing: '/no/such/folder' does not exist"),
    (["run", "--tenant", "acme", "--business-date", "2026-11-20", "--landing", str(ROOT / "README.md")],
     "is not a folder"),
    (["export", "--tenant", "acme", "--what", "files", "--out", "/no/such/folder/files.csv"],
     "folder '/no/such/folder' does not exist"),
    (["export", "--tenant", "acme", "--what", "everything", "--out", "x.csv"], "invalid choice: 'everything'"),
    (["run", "--tenant", "acme"], "the following arguments are required: --business-date"),
    (["match", "--tenant", "acme", "--relation", "book_psp", "--record", "f.csv", "--reason", "x"],
     "expected FILE_NAME#RECORD_ORDINAL, got 'f.csv'"),
    (["nonsense"], "invalid choice: 'nonsense'"),
])
def test_bad_arguments(argv, message, tenants, capsys):
    code, err = recon(argv, capsys)
    assert code == 2 and message in err and "--help" in err
