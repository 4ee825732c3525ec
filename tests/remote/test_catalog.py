"""Analysts' SQL: ``recon catalog sync`` registers every lake table in the Glue catalog as a native Delta table and
creates the views of ``sql/athena`` through Athena (moto in server mode), idempotently. That the views give the right
figures over a real lake is checked where one exists: the end-to-end test (``tests/analyst_views.py``)."""
from __future__ import annotations

from pathlib import Path

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


def test_spectrum_tables_and_their_partitions_come_from_the_manifests(aws):
    """Each table's manifests as a partitioned Parquet table for Redshift Spectrum; partitions added once."""
    import boto3

    s3 = boto3.client("s3", endpoint_url=aws["endpoint"])
    s3.create_bucket(Bucket="psp-recon-spectrum")
    spectrum_db = "psp_recon_test_spectrum"
    aws["glue"].create_database(DatabaseInput={"Name": spectrum_db})
    settings = Settings(lake="s3://psp-recon-spectrum/lake", aws_endpoint_url=aws["endpoint"])
    for tenant, day in (("acme", "2026-11-19"), ("acme", "2026-11-20"), ("globex", "2026-11-20")):
        s3.put_object(Bucket="psp-recon-spectrum", Body=b"s3://psp-recon-spectrum/lake/gold/journal_entries/x.parquet\n",
                      Key=f"lake/gold/journal_entries/_symlink_format_manifest/tenant_id={tenant}/business_date={day}/manifest")
    s3.put_object(Bucket="psp-recon-spectrum", Body=b"", Key="lake/gold/journal_entries/_delta_log/00000.json")

    done = catalog.sync_spectrum(settings, aws["glue"], s3, spectrum_db)
    assert done["journal"] == "created, 3 partition(s) added" and done["events"] == "created, 0 partition(s) added"
    table = aws["glue"].get_table(DatabaseName=spectrum_db, Name="journal")["Table"]
    descriptor = table["StorageDescriptor"]
    assert descriptor["Location"] == "s3://psp-recon-spectrum/lake/gold/journal_entries/_symlink_format_manifest/"
    assert descriptor["InputFormat"] == "org.apache.hadoop.hive.ql.io.SymlinkTextInputFormat"
    assert [k["Name"] for k in table["PartitionKeys"]] == ["tenant_id", "business_date"]
    columns = {c["Name"]: c["Type"] for c in descriptor["Columns"]}
    assert len(columns) == len(lake.TABLES["journal"].schema.fields) - 2
    assert columns["debit_minor"] == "bigint" and columns["source_event_ids"] == "array<string>"
    partitions = aws["glue"].get_partitions(DatabaseName=spectrum_db, TableName="journal")["Partitions"]
    assert sorted(tuple(p["Values"]) for p in partitions) == [("acme", "2026-11-19"), ("acme", "2026-11-20"),
                                                               ("globex", "2026-11-20")]
    assert all(p["StorageDescriptor"]["Location"].endswith(f"tenant_id={p['Values'][0]}/business_date="
                                                           f"{p['Values'][1]}/") for p in partitions)
    again = catalog.sync_spectrum(settings, aws["glue"], s3, spectrum_db)
    assert again["journal"] == "unchanged, 0 partition(s) added"


@pytest.mark.spark
def test_with_manifests_on_every_write_leaves_a_manifest_of_the_partitions_files(spark, settings):
    """What Spectrum reads: Delta's symlink manifest per partition, listing exactly the table's current files."""
    from datetime import date

    from pyspark.sql import functions as F

    on = settings.with_(delta_symlink_manifests=True)
    tenant = "manifests"
    for run in range(2):                                       # the second write replaces the first's files
        rows = spark.range(3).select(F.lit(tenant).alias("tenant_id"), F.lit(date(2026, 11, 20)).alias("run_date"),
                                     F.concat(F.lit(f"e{run}-"), F.col("id").cast("string")).alias("event_id"),
                                     F.lit("stripe").alias("psp"), F.lit("payment").alias("event_type"),
                                     F.lit("EUR").alias("currency"), F.lit(1000).cast("long").alias("base_minor"),
                                     F.lit("fee").alias("component"), F.lit(30).cast("long").alias("charged_minor"),
                                     F.lit(0).cast("long").alias("tolerance_minor"), F.lit("OK").alias("status"),
                                     F.lit(1).alias("rate_card_version"),
                                     F.lit(date(2026, 11, 20)).alias("first_seen_date"), F.lit("f.csv").alias("file_name"),
                                     F.col("id").cast("int").alias("record_ordinal"), F.lit(f"r{run}").alias("run_id"))
        lake.replace_partition(spark, on, "fee_checks", rows, tenant, date(2026, 11, 20))
    path = Path(lake.table_path(on, "fee_checks"))
    manifest = path / "_symlink_format_manifest" / f"tenant_id={tenant}" / "run_date=2026-11-20" / "manifest"
    listed = {Path(line.replace("file:", "")).name for line in manifest.read_text().split()}
    current = {Path(f).name for f in spark.read.format("delta").load(str(path)).where(
        f"tenant_id = '{tenant}'").inputFiles()}
    assert listed and listed == current
    props = {r["key"]: r["value"] for r in spark.sql(f"SHOW TBLPROPERTIES delta.`{path}`").collect()}
    assert props["delta.compatibility.symlinkFormatManifest.enabled"] == "true"
    assert props["delta.enableDeletionVectors"] == "false"
