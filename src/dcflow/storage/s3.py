"""S3 (or MinIO) access: the client, a writability probe, and object and prefix transfers.

The standard variables configure it (``AWS_ENDPOINT_URL``, ``AWS_ACCESS_KEY_ID``,
``AWS_SECRET_ACCESS_KEY``); transient errors are retried with backoff (botocore's "standard" retry
mode), and every other failure becomes one :class:`~dcflow.errors.ServiceError` line.
"""

from __future__ import annotations

import os
import shutil
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from dcflow.errors import DataError, ServiceError


def s3_client(attempts: int = 5) -> Any:
    """A boto3 S3 client on ``AWS_ENDPOINT_URL`` with ``attempts`` standard-mode retries."""
    try:
        import boto3
        from botocore.config import Config
    except ImportError as exc:  # pragma: no cover - boto3 is a dependency
        raise ServiceError("boto3 is required for s3:// URIs") from exc
    cfg = Config(
        retries={"max_attempts": attempts, "mode": "standard"}, connect_timeout=5, read_timeout=30
    )
    return boto3.client("s3", endpoint_url=os.environ.get("AWS_ENDPOINT_URL") or None, config=cfg)


def check_s3_writable(uri: str, what: str) -> None:
    """Fail fast, before any stage runs, when ``s3://bucket/prefix`` cannot take writes.

    Writes and deletes one small probe object under the prefix, so a wrong endpoint, missing
    credentials, a missing bucket or a read-only key are all caught in seconds instead of after
    hours of training.

    Raises:
        ServiceError: one line naming ``what`` (e.g. "artifact store"), the URI and the cause.
    """
    import uuid

    from botocore.exceptions import BotoCoreError, ClientError

    bucket, prefix = split_s3(uri)
    if not bucket:
        raise ServiceError(f"{what} {uri}: no bucket in the URI (want s3://bucket/prefix)")
    key = f"{prefix.rstrip('/')}/.dcflow-probe-{uuid.uuid4().hex}".lstrip("/")
    endpoint = os.environ.get("AWS_ENDPOINT_URL") or "AWS"
    try:
        client = s3_client()  # the same retries as every later call: transient errors pass
        client.put_object(Bucket=bucket, Key=key, Body=b"dcflow write probe")
        client.delete_object(Bucket=bucket, Key=key)
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "?")
        raise ServiceError(f"{what} {uri} is not writable ({endpoint}): {code}") from None
    except BotoCoreError as exc:
        raise ServiceError(
            f"{what} {uri} is unusable ({endpoint}): {type(exc).__name__}: {exc}"
        ) from None


def s3_call(what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
    """``fn(*args, **kwargs)``; a boto error becomes one ``ServiceError`` line naming ``what``."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        return fn(*args, **kwargs)
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "?")
        raise ServiceError(f"S3 {what} failed: {code}") from None
    except BotoCoreError as exc:
        raise ServiceError(f"S3 {what} failed: {type(exc).__name__}: {exc}") from None


def split_s3(uri: str) -> tuple[str, str]:
    """``s3://bucket/a/b`` -> ``("bucket", "a/b")``."""
    parsed = urlparse(uri)
    return parsed.netloc, parsed.path.lstrip("/")


def fetch_object(uri: str, dest: str | Path) -> Path:
    """Download ``s3://bucket/key`` to ``dest`` (written under a temporary name, then renamed)."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}.tmp")
    bucket, key = split_s3(uri)
    try:
        s3_call(f"download of {uri}", s3_client().download_file, bucket, key, str(tmp))
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)
    return dest


def upload_dir(local: str | Path, uri: str) -> int:
    """Upload every file under ``local`` to ``s3://bucket/prefix`` (or copy to a directory)."""
    files = [p for p in Path(local).rglob("*") if p.is_file()]
    if uri.startswith("s3://"):
        bucket, prefix = split_s3(uri)
        client = s3_client()
        for p in files:
            key = f"{prefix.rstrip('/')}/{p.relative_to(local).as_posix()}".lstrip("/")
            s3_call("upload", client.upload_file, str(p), bucket, key)
    else:
        target = Path(uri)
        for p in files:
            out = target / p.relative_to(local)
            out.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(p, out)
    return len(files)


def download_prefix(uri: str, dest: str | Path) -> Path:
    """Download every object under ``s3://bucket/prefix`` into ``dest`` (keys become paths).

    Raises:
        ServiceError: S3 failures, or nothing under the prefix.
    """
    from dcflow.artifacts import safe_join

    bucket, prefix = split_s3(uri)
    client = s3_client()
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    keys = [o["Key"] for page in s3_call("list", list, pages) for o in page.get("Contents", [])]
    if not keys:
        raise ServiceError(f"nothing under {uri}")
    root = Path(dest)
    for key in keys:
        rel = key[len(prefix) :].lstrip("/") or Path(key).name
        target = safe_join(root, rel)
        target.parent.mkdir(parents=True, exist_ok=True)
        s3_call(f"download of s3://{bucket}/{key}", client.download_file, bucket, key, str(target))
    return root


@dataclass(frozen=True)
class S3Object:
    """One listed object: its key, its ETag (quotes stripped) and its size in bytes."""

    key: str
    etag: str
    size: int


CHANGED_CODES = {"PreconditionFailed", "412", "NoSuchKey", "404"}


def list_objects(uri: str) -> list[S3Object]:
    """Every object under ``s3://bucket/prefix`` (paginated ``list_objects_v2``), sorted by key.

    Raises:
        ServiceError: one line: no bucket in the URI, or the bucket cannot be listed (missing,
            unreachable, access denied).
    """
    bucket, prefix = split_s3(uri)
    if not bucket:
        raise ServiceError(f"{uri}: no bucket in the URI (want s3://bucket/prefix)")
    pages = s3_client().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    objects = [
        S3Object(o["Key"], str(o.get("ETag", "")).strip('"'), int(o.get("Size", 0)))
        for page in s3_call(f"listing of {uri}", list, pages)
        for o in page.get("Contents", [])
    ]
    return sorted(objects, key=lambda o: o.key)


def _get_to_file(client: Any, bucket: str, obj: S3Object, path: Path) -> None:
    extra = {"IfMatch": obj.etag} if obj.etag else {}
    body = client.get_object(Bucket=bucket, Key=obj.key, **extra)["Body"]
    with open(path, "wb") as fh:
        shutil.copyfileobj(body, fh)


def _download_listed(client: Any, bucket: str, obj: S3Object, dest: Path) -> None:
    from botocore.exceptions import BotoCoreError, ClientError

    uri = f"s3://{bucket}/{obj.key}"
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        _get_to_file(client, bucket, obj, tmp)
        os.replace(tmp, dest)
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "?")
        if code in CHANGED_CODES:
            raise DataError(f"{uri} changed or vanished since it was listed ({code})") from None
        raise ServiceError(f"S3 download of {uri} failed: {code}") from None
    except BotoCoreError as exc:
        raise ServiceError(f"S3 download of {uri} failed: {type(exc).__name__}: {exc}") from None
    finally:
        tmp.unlink(missing_ok=True)


def download_listed(bucket: str, items: list[tuple[S3Object, Path]], workers: int = 8) -> None:
    """Download listed objects to local paths, each only while it is still the listed version.

    Every object is fetched with ``If-Match: <listed ETag>`` into a temporary name beside its
    destination and then renamed, so a reader never sees half a file and a file never holds bytes
    other than the listed ones.

    Args:
        bucket: the bucket of every object.
        items: ``(object, destination)`` pairs.
        workers: parallel downloads (one shared client).

    Raises:
        DataError: an object was rewritten or deleted since it was listed.
        ServiceError: any other S3 failure.
    """
    if not items:
        return
    client = s3_client()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for _ in pool.map(lambda item: _download_listed(client, bucket, *item), items):
            pass
