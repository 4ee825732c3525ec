"""Byte storage for the raw zone: a local folder or S3, chosen by the URI. Writes are atomic.

Local: write to a temporary file in the target folder, fsync, then rename (a reader never sees a
partial file). S3: a single PUT or a completed multipart upload is atomic by S3's semantics, and
boto3's ``upload_file`` completes the multipart upload only after every part arrived.

The S3 client: with ``RECON_S3_CONN_ID`` set (inside Airflow), the Amazon provider's ``S3Hook`` for
that Airflow connection (credentials, region and ``endpoint_url`` from the connection); otherwise
boto3's default credential chain with ``RECON_S3_ENDPOINT_URL`` (moto, MinIO) when set.
"""
from __future__ import annotations

import os
import shutil
import tempfile
import threading
from pathlib import Path
from typing import BinaryIO, Iterator
from urllib.parse import urlparse

from jobs.settings import Settings


def _is_s3(uri: str) -> bool:
    return uri.startswith(("s3://", "s3a://"))


def _split_s3(uri: str) -> tuple[str, str]:
    parsed = urlparse(uri)
    return parsed.netloc, parsed.path.lstrip("/")


_clients: dict[tuple[str | None, str | None], object] = {}
_clients_lock = threading.Lock()


def s3_client(settings: Settings):
    """A (cached, thread-safe) S3 client: the S3Hook's when RECON_S3_CONN_ID names a connection."""
    conn_id = settings.s3_conn_id
    key = (conn_id, None if conn_id else settings.s3_endpoint_url)
    with _clients_lock:
        client = _clients.get(key)
        if client is None:
            if conn_id:
                from airflow.providers.amazon.aws.hooks.s3 import S3Hook

                client = S3Hook(aws_conn_id=conn_id).get_conn()
            else:
                import boto3

                client = boto3.client("s3", endpoint_url=settings.s3_endpoint_url)
            _clients[key] = client
    return client


def join(base: str, *parts: str) -> str:
    return "/".join([base.rstrip("/"), *[p.strip("/") for p in parts]])


def _write_local_atomically(dest: Path, write) -> None:
    """Write through ``write(fileobj)`` into a temporary file next to ``dest``, fsync, then rename."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out:
            write(out)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, dest)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _encryption(settings: Settings, uri: str) -> dict:
    """S3 arguments of an object at ``uri``: in the raw zone (files as delivered, which may hold card numbers)
    encrypted with the raw zone's own KMS key (``RECON_RAW_KMS_KEY_ID``), which only landing and parsing may use."""
    if settings.raw_kms_key_id and uri.startswith(join(settings.lake, "raw") + "/"):
        return {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": settings.raw_kms_key_id}
    return {}


def put_file(settings: Settings, src: Path, uri: str) -> None:
    """Copy a local file to ``uri`` atomically (no reader ever sees half of it)."""
    if _is_s3(uri):
        bucket, key = _split_s3(uri)
        s3_client(settings).upload_file(str(src), bucket, key, ExtraArgs=_encryption(settings, uri) or None)
        return
    with src.open("rb") as inp:
        _write_local_atomically(Path(uri), lambda out: shutil.copyfileobj(inp, out, 1 << 20))


def put_stream(settings: Settings, uri: str, write) -> None:
    """Write ``uri`` through ``write(fileobj)`` atomically: locally into a temporary file beside it,
    renamed when ``write`` returns (if it raises, nothing appears); on S3 through a local temporary
    file uploaded afterwards."""
    if not _is_s3(uri):
        _write_local_atomically(Path(uri), write)
        return
    with tempfile.NamedTemporaryFile(prefix="upload-", suffix=".part") as tmp:
        write(tmp)
        tmp.flush()
        put_file(settings, Path(tmp.name), uri)


def put_bytes(settings: Settings, data: bytes, uri: str) -> None:
    if _is_s3(uri):
        bucket, key = _split_s3(uri)
        s3_client(settings).put_object(Bucket=bucket, Key=key, Body=data, **_encryption(settings, uri))
        return
    _write_local_atomically(Path(uri), lambda out: out.write(data))


def delete(settings: Settings, uri: str) -> None:
    """Remove one object or file (no error when it is already gone)."""
    if _is_s3(uri):
        bucket, key = _split_s3(uri)
        s3_client(settings).delete_object(Bucket=bucket, Key=key)
        return
    Path(uri).unlink(missing_ok=True)


def exists(settings: Settings, uri: str) -> bool:
    if _is_s3(uri):
        bucket, key = _split_s3(uri)
        resp = s3_client(settings).list_objects_v2(Bucket=bucket, Prefix=key, MaxKeys=1)
        return any(o["Key"] == key for o in resp.get("Contents", []))
    return Path(uri).exists()


def read_head(settings: Settings, uri: str, size: int = 64 * 1024) -> bytes:
    if _is_s3(uri):
        bucket, key = _split_s3(uri)
        resp = s3_client(settings).get_object(Bucket=bucket, Key=key, Range=f"bytes=0-{size - 1}")
        return resp["Body"].read()
    with open(uri, "rb") as fh:
        return fh.read(size)


def size(settings: Settings, uri: str) -> int:
    """The object's size in bytes."""
    if _is_s3(uri):
        bucket, key = _split_s3(uri)
        return int(s3_client(settings).head_object(Bucket=bucket, Key=key)["ContentLength"])
    return Path(uri).stat().st_size


def read_bytes(settings: Settings, uri: str) -> bytes:
    if _is_s3(uri):
        bucket, key = _split_s3(uri)
        return s3_client(settings).get_object(Bucket=bucket, Key=key)["Body"].read()
    return Path(uri).read_bytes()


def open_read(settings: Settings, uri: str) -> BinaryIO:
    if _is_s3(uri):
        bucket, key = _split_s3(uri)
        return s3_client(settings).get_object(Bucket=bucket, Key=key)["Body"]
    return open(uri, "rb")


def list_files(settings: Settings, prefix_uri: str) -> Iterator[str]:
    if _is_s3(prefix_uri):
        bucket, prefix = _split_s3(prefix_uri)
        paginator = s3_client(settings).get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
            for obj in page.get("Contents", []):
                yield f"s3://{bucket}/{obj['Key']}"
        return
    root = Path(prefix_uri)
    if root.exists():
        yield from (str(p) for p in sorted(root.rglob("*")) if p.is_file() and not p.name.startswith("."))


def spark_uri(uri: str) -> str:
    """The same location as Spark's Hadoop file systems name it."""
    return "s3a://" + uri[len("s3://"):] if uri.startswith("s3://") else uri
