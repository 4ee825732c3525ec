"""The real parse stage on a lake in S3 (moto's server): files landed through boto3, read by Spark over
s3a://, Delta tables written to S3 and read back."""
from __future__ import annotations

import boto3
import pytest

from jobs.landing import land_file
from jobs.pipeline import stage_parse
from jobs.store.db import connect

from conftest import DATA, use_s3a
from .conftest import BUCKET, DAY

pytestmark = [pytest.mark.spark, pytest.mark.postgres]
SLICE = DATA / "slice"


def test_parse_stage_reads_s3a_and_writes_delta_to_s3(spark, s3_settings, recorded_tenant, s3_endpoint):
    use_s3a(spark, s3_settings)
    files = [SLICE / "stripe_payout_po_TEST1.csv"]
    with connect(s3_settings, recorded_tenant) as conn:
        for path in files:
            assert land_file(s3_settings, conn, recorded_tenant, DAY, path, connector="psp-sftp").outcome == "landed"

    summaries = stage_parse(spark, s3_settings, recorded_tenant, DAY)

    loaded = {s.file_name: s.records_loaded for s in summaries}
    assert loaded == {"stripe_payout_po_TEST1.csv": 5}
    events = spark.read.format("delta").load(s3_settings.lake_path("silver", "events")).where(
        f"tenant_id = '{recorded_tenant}'")
    assert events.count() == 5
    keys = [o["Key"] for o in boto3.client("s3", endpoint_url=s3_endpoint).list_objects_v2(
        Bucket=BUCKET, Prefix=f"lake-{recorded_tenant}/silver/events/_delta_log/")["Contents"]]
    assert any(k.endswith(".json") for k in keys)
    with connect(s3_settings, recorded_tenant) as conn:
        parsed = conn.execute("SELECT count(*) AS n FROM raw_file WHERE tenant_id = %s AND parsed_at IS NOT NULL",
                              (recorded_tenant,)).fetchone()["n"]
    assert parsed == 1
