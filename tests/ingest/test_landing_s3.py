"""Landing through the storage layer into a local lake and into S3 (moto's server, through S3Hook):
exactly once under concurrency, the raw path shape, and formats recognised after landing."""
from __future__ import annotations

import threading

import boto3
import pytest

from jobs import storage
from jobs.formats.registry import by_id
from jobs.landing import files_for_date, land_bytes, redetect_unknown
from jobs.store.db import connect

from .conftest import BUCKET, DAY

pytestmark = pytest.mark.postgres
CONTENT = b'{"id":"evt_1","object":"event","type":"charge.succeeded"}\n'


@pytest.fixture(params=["local", "s3"])
def lake_settings(request, settings, s3_settings, connections):
    if request.param == "local":
        return settings
    # S3 through S3Hook: the endpoint comes only from the Airflow connection's extra (endpoint_url)
    return s3_settings.with_(s3_endpoint_url=None, s3_conn_id="recon_s3")


def test_the_same_content_landed_concurrently_by_eight_connectors_lands_once(lake_settings, recorded_tenant,
                                                                            s3_endpoint):
    tenant_id, results, barrier = recorded_tenant, [], threading.Barrier(8)

    def land(i: int) -> None:
        with connect(lake_settings, tenant_id) as conn:
            barrier.wait()
            results.append(land_bytes(lake_settings, conn, tenant_id, DAY, CONTENT, f"events_{i % 3}.jsonl",
                                      f"connector-{i}", f"/remote/{i}", source_hint="stripe"))

    threads = [threading.Thread(target=land, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)

    assert sorted(r.outcome for r in results) == ["already_landed"] * 7 + ["landed"]
    assert len({r.raw_uri for r in results}) == 1
    objects = list(storage.list_files(lake_settings, storage.join(lake_settings.lake, "raw")))
    assert objects == [results[0].raw_uri]                       # the losers removed their own copies
    assert storage.read_bytes(lake_settings, objects[0]) == CONTENT
    with connect(lake_settings, tenant_id) as conn:
        (landed,) = files_for_date(conn, tenant_id, DAY)
        deliveries = conn.execute("SELECT count(*) AS n FROM raw_file_delivery WHERE tenant_id = %s",
                                  (tenant_id,)).fetchone()["n"]
    assert deliveries == 8 and landed.source == "stripe" and landed.format == "unknown"
    assert f"/raw/tenant={tenant_id}/source=stripe/received_date=2026-11-20/{landed.sha256}-events_" in landed.raw_uri
    if lake_settings.lake_is_s3:
        assert landed.raw_uri.startswith(f"s3://{BUCKET}/lake-{tenant_id}/raw/")
        keys = [o["Key"] for o in boto3.client("s3", endpoint_url=s3_endpoint).list_objects_v2(
            Bucket=BUCKET, Prefix=f"lake-{tenant_id}/")["Contents"]]
        assert keys == [landed.raw_uri.split(f"{BUCKET}/", 1)[1]]


def test_a_format_recognised_later_is_recorded_without_moving_the_file(settings, recorded_tenant, monkeypatch):
    import jobs.landing as landing

    with connect(settings, recorded_tenant) as conn:
        first = land_bytes(settings, conn, recorded_tenant, DAY, CONTENT, "stripe_events_0000000001.jsonl",
                           "stripe-hooks", source_hint="stripe")
        assert first.format == "unknown" and redetect_unknown(settings, conn, recorded_tenant, DAY) == 0
        spec = by_id("book.jsonl")                               # stands in for a parser added later
        monkeypatch.setattr(landing, "detect", lambda head: spec if head.startswith(b'{"id":"evt_') else None)
        assert redetect_unknown(settings, conn, recorded_tenant, DAY) == 1
        (now,) = files_for_date(conn, recorded_tenant, DAY)
    assert (now.format, now.parser_version, now.raw_uri) == ("book.jsonl", spec.version, first.raw_uri)


def test_the_raw_zone_is_encrypted_with_its_own_key_on_s3(s3_settings, recorded_tenant, s3_endpoint):
    """Files as delivered may hold card numbers: in the raw zone they are encrypted with the raw zone's KMS key
    (which only landing and parsing may use); the rest of the lake keeps the bucket's default encryption."""
    key_id = boto3.client("kms", endpoint_url=s3_endpoint).create_key(Description="raw zone")["KeyMetadata"]["KeyId"]
    settings = s3_settings.with_(raw_kms_key_id=key_id)
    with connect(settings, recorded_tenant) as conn:
        raw = land_bytes(settings, conn, recorded_tenant, DAY, b"card 4111111111111111\n", "notes.txt", "sftp:psp")
    elsewhere = storage.join(settings.lake, "reports", "day.html")
    storage.put_bytes(settings, b"<html/>", elsewhere)
    s3 = boto3.client("s3", endpoint_url=s3_endpoint)
    heads = {uri: s3.head_object(Bucket=BUCKET, Key=uri.split(f"{BUCKET}/", 1)[1]) for uri in (raw.raw_uri, elsewhere)}
    assert (heads[raw.raw_uri]["ServerSideEncryption"], heads[raw.raw_uri]["SSEKMSKeyId"].split("/")[-1]) == \
        ("aws:kms", key_id)
    assert "SSEKMSKeyId" not in heads[elsewhere]
