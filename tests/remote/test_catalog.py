"""Analysts' SQL: ``recon catalog sync`` registers every lake table in the Glue catalog as a native Delta table and
creates the views of ``sql/athena`` through Athena (moto in server mode), idempotently. That the views give the right
figures over a real lake is checked where one exists: the end-to-end test (``tests/analyst_views.py``)."""
from __future__ import annotations

import pytest

from jobs import catalog, lake
from jobs.cli import main
from jobs.settings import ConfigurationError, Settings

DATABASE, WORKGROUP = "psp_recon_test", "psp-recon-analysts"



@pytest.fixture(scope="module")
def aws(aws_endpoint):
    import boto3

    glue = boto3.client("glue", endpoint_url=aws_endpoint)
    glue.create_database(DatabaseInput={"Name": DATABASE})
    athena = boto3.client("athena", endpoint_url=aws_endpoint)
    athena.create_work_group(Name=WORKGROUP, Configuration={"ResultConfiguration": {
        "OutputLocation": "s3://psp-recon-athena/results/"}})
    return {"glue": glue, "athena": athena, "endpoint": aws_endpoint}


def test_catalog_sync_registers_every_table_as_native_delta_and_creates_every_view(aws, capsys, monkeypatch):
    for name, value in {"RECON_LAKE": "s3://psp-recon-lake/lake", "RECON_AWS_ENDPOINT_URL": aws["endpoint"],
                        "RECON_GLUE_DATABASE": DATABASE, "RECON_ATHENA_WORKGROUP": WORKGROUP}.items():
        monkeypatch.setenv(name, value)
    assert main(["catalog", "sync"]) == 0
    out = capsys.readouterr().out
    assert all(f"table {name}: created" in out for name in lake.TABLES), out
    tables = {t["Name"]: t for t in aws["glue"].get_tables(DatabaseName=DATABASE)["TableList"]}
    assert set(tables) == set(lake.TABLES)
    for name, table in lake.TABLES.items():
        assert tables[name]["Parameters"]["table_type"] == "DELTA" and tables[name]["TableType"] == "EXTERNAL_TABLE"
        assert tables[name]["StorageDescriptor"]["Location"] == f"s3://psp-recon-lake/lake/{table.path}"
    statements = [q["Query"] for q in _queries(aws["athena"])]
    assert sorted(s.split(" AS\n", 1)[0].split()[-1] for s in statements) == sorted(catalog.views())

    assert main(["catalog", "sync"]) == 0                          # again: nothing to change
    out = capsys.readouterr().out
    assert all(f"table {name}: unchanged" in out for name in lake.TABLES), out
    assert main(["catalog", "sync", "--lake", "s3a://psp-recon-lake/moved"]) == 0      # the lake moved
    assert "table journal: updated" in capsys.readouterr().out
    journal = aws["glue"].get_table(DatabaseName=DATABASE, Name="journal")["Table"]
    assert journal["StorageDescriptor"]["Location"] == "s3://psp-recon-lake/moved/gold/journal_entries"
    assert len(aws["glue"].get_tables(DatabaseName=DATABASE)["TableList"]) == len(lake.TABLES)

    assert main(["catalog", "sync", "--lake", "/tmp/local-lake"]) == 2          # Athena reads S3 only
    assert "registers tables of a lake on S3" in capsys.readouterr().err
    with pytest.raises(ConfigurationError, match="Glue database 'nope' does not exist"):
        catalog.sync(Settings(lake="s3://b/l", aws_endpoint_url=aws["endpoint"]), "nope", WORKGROUP)


def _queries(athena) -> list[dict]:
    ids = athena.list_query_executions(WorkGroup=WORKGROUP)["QueryExecutionIds"]
    return [athena.get_query_execution(QueryExecutionId=i)["QueryExecution"] for i in ids]
