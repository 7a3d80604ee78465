"""Weights store and artifact sync: the only module that imports boto3.

A weights store is a local directory (default), a ``file://`` URI or an ``s3://bucket/prefix`` URI.
Weights live at ``<store>/<method>/<key>/weights.pt`` beside ``weights.pt.sha256``; the key hashes
the method, the data fingerprint, the pretrain config and the seed. S3 access uses the standard
variables (``AWS_ENDPOINT_URL``, ``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``) and retries
transient errors with backoff (botocore's "standard" retry mode).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import threading
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from dcflow.errors import DataError, ServiceError, WeightsError

WEIGHTS_FILE = "weights.pt"
SHA_SUFFIX = ".sha256"
CURVES_FILE = "curves.json"  # the pretraining's per-step curves, beside the weights


def sha256_file(path: str | Path) -> str:
    """Hex sha256 of a file, streamed."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _s3_client(attempts: int = 5) -> Any:
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
        client = _s3_client()  # the same retries as every later call: transient errors pass
        client.put_object(Bucket=bucket, Key=key, Body=b"dcflow write probe")
        client.delete_object(Bucket=bucket, Key=key)
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "?")
        raise ServiceError(f"{what} {uri} is not writable ({endpoint}): {code}") from None
    except BotoCoreError as exc:
        raise ServiceError(
            f"{what} {uri} is unusable ({endpoint}): {type(exc).__name__}: {exc}"
        ) from None


def _s3_call(what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
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


@dataclass(frozen=True)
class StoredWeights:
    """A weights file in a store: where it is and the sha256 it must have."""

    uri: str
    sha256: str


class WeightsStore:
    """Content-addressed cache of pretrained weights.

    Args:
        uri: local path, ``file://`` URI or ``s3://bucket/prefix``.
    """

    def __init__(self, uri: str) -> None:
        self.uri = uri.rstrip("/")
        self.is_s3 = self.uri.startswith("s3://")
        if not self.is_s3:
            self.root = Path(
                urlparse(self.uri).path if self.uri.startswith("file://") else self.uri
            )

    def _location(self, method: str, key: str) -> str:
        return f"{self.uri}/{method}/{key}/{WEIGHTS_FILE}"

    def lookup(self, method: str, key: str) -> StoredWeights | None:
        """Weights stored under (method, key), or ``None`` when absent."""
        if self.is_s3:
            bucket, prefix = split_s3(self._location(method, key))
            client = _s3_client()
            from botocore.exceptions import ClientError

            try:
                body = client.get_object(Bucket=bucket, Key=prefix + SHA_SUFFIX)["Body"].read()
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") in {
                    "NoSuchKey",
                    "404",
                    "NoSuchBucket",
                }:
                    return None
                raise ServiceError(
                    f"S3 lookup failed: {exc.response['Error'].get('Code')}"
                ) from None
            except Exception as exc:  # noqa: BLE001 - connection errors of any kind
                raise ServiceError(f"S3 lookup failed: {type(exc).__name__}: {exc}") from None
            return StoredWeights(self._location(method, key), body.decode().strip())
        path = self.root / method / key / WEIGHTS_FILE
        sha = path.with_name(WEIGHTS_FILE + SHA_SUFFIX)
        if path.is_file() and sha.is_file():
            return StoredWeights(str(path.resolve()), sha.read_text().strip())
        return None

    def publish(
        self, method: str, key: str, local: str | Path, curves: dict[str, Any] | None = None
    ) -> StoredWeights:
        """Copy a weights file into the store (sha256 sidecar written last).

        Locally the first writer of a key wins: a run that finds the weights already published
        (two runs of one key side by side) returns those, with their sha256, so that every stage
        of either run verifies the file that is actually there.

        Args:
            method: owner of the weights (``weights_name``).
            key: cache key of the weights.
            local: the weights file.
            curves: the pretraining's per-step curves, stored beside the weights as
                ``curves.json`` so that every later run (cached or not) can log them.
        """
        digest = sha256_file(local)
        body = json.dumps(curves or {}).encode()
        if self.is_s3:
            bucket, prefix = split_s3(self._location(method, key))
            client = _s3_client()
            _s3_call("upload", client.upload_file, str(local), bucket, prefix)
            curves_key = prefix.rsplit("/", 1)[0] + "/" + CURVES_FILE
            _s3_call("put", client.put_object, Bucket=bucket, Key=curves_key, Body=body)
            _s3_call(
                "put",
                client.put_object,
                Bucket=bucket,
                Key=prefix + SHA_SUFFIX,
                Body=digest.encode(),
            )
            return StoredWeights(self._location(method, key), digest)
        target = self.root / method / key / WEIGHTS_FILE
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{WEIGHTS_FILE}.{os.getpid()}.tmp")
        sha_tmp = target.with_name(f".sha.{os.getpid()}.tmp")
        try:
            shutil.copyfile(local, tmp)
            try:  # first writer wins: a concurrent run of the same key may have published
                os.link(tmp, target)
            except FileExistsError:
                return StoredWeights(str(target.resolve()), sha256_file(target))
            except OSError:  # a file system without hard links
                os.replace(tmp, target)
            tmp.unlink(missing_ok=True)
            tmp.write_bytes(body)
            os.replace(tmp, target.with_name(CURVES_FILE))
            sha_tmp.write_text(digest + "\n")  # the sidecar last: it marks the entry complete
            os.replace(sha_tmp, target.with_name(WEIGHTS_FILE + SHA_SUFFIX))
        finally:
            for leftover in (tmp, sha_tmp):
                leftover.unlink(missing_ok=True)
        return StoredWeights(str(target.resolve()), digest)


def fetch_weights(uri: str, sha256: str, dest: str | Path) -> Path:
    """Copy weights from ``uri`` (path, file://, s3://, https://) to ``dest`` and verify sha256.

    Raises:
        WeightsError: missing file or checksum mismatch (the bad copy is deleted).
        ServiceError: S3 / HTTP failures.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}.tmp")
    try:
        if uri.startswith("s3://"):
            bucket, key = split_s3(uri)
            _s3_call("download", _s3_client().download_file, bucket, key, str(tmp))
        elif uri.startswith(("http://", "https://")):
            try:
                with urllib.request.urlopen(uri, timeout=60) as resp, open(tmp, "wb") as fh:
                    shutil.copyfileobj(resp, fh)
            except OSError as exc:
                raise ServiceError(f"download of {uri} failed: {exc}") from None
        else:
            src = Path(urlparse(uri).path if uri.startswith("file://") else uri)
            if not src.is_file():
                raise WeightsError(f"weights file not found: {src}")
            shutil.copyfile(src, tmp)
        actual = sha256_file(tmp)
        if sha256 and actual != sha256.lower():
            raise WeightsError(
                f"sha256 mismatch for {uri}: expected {sha256[:12]}…, got {actual[:12]}…"
            )
        os.replace(tmp, dest)
    finally:
        if tmp.exists():
            tmp.unlink()
    return dest


def fetch_curves(weights_uri: str) -> dict[str, Any]:
    """The pretraining curves stored beside ``weights_uri`` (``{}`` when there are none).

    Weights published before curves were stored, or a store that cannot be read, give ``{}``:
    the curves are for the record, never a reason to fail a run.
    """
    if not weights_uri:
        return {}
    base = weights_uri.rsplit("/", 1)[0] + "/" + CURVES_FILE
    try:
        if base.startswith("s3://"):
            bucket, key = split_s3(base)
            text = _s3_client().get_object(Bucket=bucket, Key=key)["Body"].read().decode()
        elif base.startswith(("http://", "https://")):
            with urllib.request.urlopen(base, timeout=30) as resp:
                text = resp.read().decode()
        else:
            path = Path(urlparse(base).path if base.startswith("file://") else base)
            text = path.read_text()
        curves = json.loads(text)
    except Exception:  # noqa: BLE001 - absent or unreadable: no curves
        return {}
    return curves if isinstance(curves, dict) else {}


def fetch_object(uri: str, dest: str | Path) -> Path:
    """Download ``s3://bucket/key`` to ``dest`` (written under a temporary name, then renamed)."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}.tmp")
    bucket, key = split_s3(uri)
    try:
        _s3_call(f"download of {uri}", _s3_client().download_file, bucket, key, str(tmp))
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)
    return dest


def upload_dir(local: str | Path, uri: str) -> int:
    """Upload every file under ``local`` to ``s3://bucket/prefix`` (or copy to a directory)."""
    files = [p for p in Path(local).rglob("*") if p.is_file()]
    if uri.startswith("s3://"):
        bucket, prefix = split_s3(uri)
        client = _s3_client()
        for p in files:
            key = f"{prefix.rstrip('/')}/{p.relative_to(local).as_posix()}".lstrip("/")
            _s3_call("upload", client.upload_file, str(p), bucket, key)
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
    client = _s3_client()
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    keys = [o["Key"] for page in _s3_call("list", list, pages) for o in page.get("Contents", [])]
    if not keys:
        raise ServiceError(f"nothing under {uri}")
    root = Path(dest)
    for key in keys:
        rel = key[len(prefix) :].lstrip("/") or Path(key).name
        target = safe_join(root, rel)
        target.parent.mkdir(parents=True, exist_ok=True)
        _s3_call(f"download of s3://{bucket}/{key}", client.download_file, bucket, key, str(target))
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
    pages = _s3_client().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    objects = [
        S3Object(o["Key"], str(o.get("ETag", "")).strip('"'), int(o.get("Size", 0)))
        for page in _s3_call(f"listing of {uri}", list, pages)
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
    client = _s3_client()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for _ in pool.map(lambda item: _download_listed(client, bucket, *item), items):
            pass
