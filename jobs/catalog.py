"""Analysts' SQL: the lake's Delta tables in the Glue Data Catalog for Athena (engine v3 reads Delta natively), and
the analyst views of ``sql/athena/`` created through Athena. ``recon catalog sync`` does both, idempotently: a table
that is registered as it should be is left alone, one that differs is updated, a missing one created; every view is
``CREATE OR REPLACE``d. With ``RECON_SPECTRUM_GLUE_DATABASE`` it also registers, for Redshift Spectrum, each table's
symlink manifests (written by Delta when ``RECON_DELTA_SYMLINK_MANIFESTS`` is on) as a partitioned Parquet table with
its columns, and adds the partitions the manifests have that the catalog lacks (``sql/redshift/`` reads them).

A native Delta table in Glue is a location and ``table_type=DELTA``: Athena reads the schema and the files from the
Delta log, so a new column or day needs no catalog change. The views use the table names of ``jobs.lake.TABLES``
(``events``, ``matches``, ``item_status``, ``journal``...), resolved in the catalog database the queries run in.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

from jobs.settings import PROJECT_ROOT, ConfigurationError, Settings

VIEWS_DIR = PROJECT_ROOT / "sql" / "athena"


@dataclass(frozen=True)
class SyncResult:
    tables: dict[str, str]          # table -> created | updated | unchanged
    views: dict[str, str]           # view -> the Athena query execution id that created it
    spectrum: dict[str, str] = field(default_factory=dict)   # table -> its action and partitions added


def table_location(settings: Settings, path: str) -> str:
    """The S3 location Glue and Athena know a lake table by (``s3://``, not Spark's ``s3a://``)."""
    if not settings.lake_is_s3:
        raise ConfigurationError(f"the Glue catalog registers tables of a lake on S3; RECON_LAKE is {settings.lake!r}")
    base = settings.lake.rstrip("/")
    return ("s3://" + base[len("s3a://"):] if base.startswith("s3a://") else base) + "/" + path


def table_input(settings: Settings, name: str, path: str) -> dict:
    return {"Name": name, "TableType": "EXTERNAL_TABLE",
            "Description": f"psp-recon lake table {name} (Delta; schema from the Delta log)",
            "Parameters": {"table_type": "DELTA", "EXTERNAL": "TRUE", "classification": "delta"},
            "StorageDescriptor": {"Location": table_location(settings, path)}}


def views() -> dict[str, str]:
    """View name -> its ``CREATE OR REPLACE VIEW`` statement, from ``sql/athena/<name>.sql``."""
    out = {}
    for path in sorted(VIEWS_DIR.glob("*.sql")):
        text = path.read_text()
        if f"CREATE OR REPLACE VIEW {path.stem} AS" not in text:
            raise ConfigurationError(f"{path}: must create the view {path.stem} (CREATE OR REPLACE VIEW {path.stem} AS)")
        out[path.stem] = text
    return out


def view_select(statement: str) -> str:
    """The SELECT of a ``CREATE OR REPLACE VIEW ... AS`` statement (comments before it dropped)."""
    return statement.split(" AS\n", 1)[1] if " AS\n" in statement else statement.split(" AS ", 1)[1]


def sync_tables(settings: Settings, glue, database: str) -> dict[str, str]:
    """Every lake table registered in ``database`` as a native Delta table at its location."""
    from jobs.lake import TABLES

    try:
        glue.get_database(Name=database)
    except glue.exceptions.EntityNotFoundException:
        raise ConfigurationError(f"Glue database {database!r} does not exist (Terraform creates it: output "
                                 "glue_database)") from None
    def same(current: dict, wanted: dict) -> bool:
        return (current.get("TableType") == wanted["TableType"]
                and all(current.get("Parameters", {}).get(k) == v for k, v in wanted["Parameters"].items())
                and current.get("StorageDescriptor", {}).get("Location") == wanted["StorageDescriptor"]["Location"])

    return {name: put_table(glue, database, table_input(settings, name, table.path), same)
            for name, table in TABLES.items()}


def put_table(glue, database: str, wanted: dict, same) -> str:
    """Create the table ``wanted`` describes, or update it unless ``same(current, wanted)``: created | updated |
    unchanged."""
    try:
        current = glue.get_table(DatabaseName=database, Name=wanted["Name"])["Table"]
    except glue.exceptions.EntityNotFoundException:
        glue.create_table(DatabaseName=database, TableInput=wanted)
        return "created"
    if same(current, wanted):
        return "unchanged"
    glue.update_table(DatabaseName=database, TableInput=wanted)
    return "updated"


def sync_views(athena, database: str, workgroup: str, poll_seconds: float = 1.0, timeout: float = 300) -> dict[str, str]:
    """Every view of ``sql/athena`` created (or replaced) through Athena; raises if a statement fails."""
    done = {}
    for name, statement in views().items():
        query_id = athena.start_query_execution(QueryString=statement, QueryExecutionContext={"Database": database},
                                                WorkGroup=workgroup)["QueryExecutionId"]
        deadline = time.monotonic() + timeout
        while True:
            status = athena.get_query_execution(QueryExecutionId=query_id)["QueryExecution"]["Status"]
            if status["State"] == "SUCCEEDED":
                break
            if status["State"] in ("FAILED", "CANCELLED") or time.monotonic() > deadline:
                raise RuntimeError(f"Athena view {name}: query {query_id} {status['State']}: "
                                   f"{status.get('StateChangeReason', 'timed out')}")
            time.sleep(poll_seconds)
        done[name] = query_id
    return done


MANIFEST_DIR = "_symlink_format_manifest"


def spectrum_table_input(settings: Settings, name: str) -> dict:
    """A lake table's symlink manifests as the external table Redshift Spectrum reads: Parquet through
    ``SymlinkTextInputFormat``, the columns of the table's schema, partitioned like the lake (tenant, date)."""
    from jobs.lake import TABLES

    table = TABLES[name]
    partitions = table.partition_columns
    columns = [{"Name": f.name, "Type": f.dataType.simpleString()} for f in table.schema.fields
               if f.name not in partitions]
    keys = [{"Name": f.name, "Type": f.dataType.simpleString()} for f in table.schema.fields if f.name in partitions]
    return {"Name": name, "TableType": "EXTERNAL_TABLE",
            "Description": f"psp-recon lake table {name}: its Delta symlink manifests, for Redshift Spectrum",
            "Parameters": {"EXTERNAL": "TRUE", "classification": "parquet"},
            "PartitionKeys": sorted(keys, key=lambda k: partitions.index(k["Name"])),
            "StorageDescriptor": {
                "Columns": columns, "Location": f"{table_location(settings, table.path)}/{MANIFEST_DIR}/",
                "InputFormat": "org.apache.hadoop.hive.ql.io.SymlinkTextInputFormat",
                "OutputFormat": "org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat",
                "SerdeInfo": {"SerializationLibrary": "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"}}}


def manifest_partitions(s3, location: str) -> list[tuple[list[str], str]]:
    """(partition values, location) of every manifest under a table's manifest folder ``location`` (s3://...)."""
    bucket, _, prefix = location[len("s3://"):].partition("/")
    found = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            parts = obj["Key"][len(prefix):].split("/")
            if parts[-1] == "manifest" and all("=" in p for p in parts[:-1]):
                found.append(([p.split("=", 1)[1] for p in parts[:-1]],
                              f"s3://{bucket}/{prefix}{'/'.join(parts[:-1])}/"))
    return found


def sync_spectrum(settings: Settings, glue, s3, database: str) -> dict[str, str]:
    """Every lake table's manifests registered in ``database`` for Spectrum, with the partitions they have."""
    from jobs.lake import TABLES

    done = {}
    for name in TABLES:
        wanted = spectrum_table_input(settings, name)
        action = put_table(glue, database, wanted, lambda current, wanted: all(
            current.get("StorageDescriptor", {}).get(k) == wanted["StorageDescriptor"][k]
            for k in ("Columns", "Location")))
        known = {tuple(p["Values"]) for page in glue.get_paginator("get_partitions").paginate(
                 DatabaseName=database, TableName=name) for p in page["Partitions"]}
        new = [(values, where) for values, where in manifest_partitions(s3, wanted["StorageDescriptor"]["Location"])
               if tuple(values) not in known]
        descriptor = {k: v for k, v in wanted["StorageDescriptor"].items() if k != "Location"}
        for i in range(0, len(new), 100):                       # the API takes at most 100 per call
            response = glue.batch_create_partition(DatabaseName=database, TableName=name, PartitionInputList=[
                {"Values": values, "StorageDescriptor": {**descriptor, "Location": where}}
                for values, where in new[i:i + 100]])
            if response.get("Errors"):
                raise RuntimeError(f"Spectrum table {name}: partitions refused: {response['Errors'][:3]}")
        done[name] = f"{action}, {len(new)} partition(s) added"
    return done


def sync(settings: Settings, database: str | None = None, workgroup: str | None = None) -> SyncResult:
    """``recon catalog sync``: the tables, then the views (which read them)."""
    import boto3

    database = database or settings.glue_database
    workgroup = workgroup or settings.athena_workgroup
    if not database or not workgroup:
        raise ConfigurationError("recon catalog sync needs RECON_GLUE_DATABASE and RECON_ATHENA_WORKGROUP (Terraform "
                                 "outputs glue_database and athena_workgroup)")
    glue = boto3.client("glue", endpoint_url=settings.aws_endpoint_url)
    athena = boto3.client("athena", endpoint_url=settings.aws_endpoint_url)
    tables = sync_tables(settings, glue, database)
    views_done = sync_views(athena, database, workgroup)
    spectrum = {}
    if settings.spectrum_glue_database:
        s3 = boto3.client("s3", endpoint_url=settings.s3_endpoint_url or settings.aws_endpoint_url)
        spectrum = sync_spectrum(settings, glue, s3, settings.spectrum_glue_database)
    return SyncResult(tables, views_done, spectrum)
