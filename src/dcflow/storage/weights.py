"""The weights store: a content-addressed cache of pretrained weights, and verified fetches.

Weights live at ``<store>/<method>/<key>/weights.pt`` beside ``weights.pt.sha256`` and the
pretraining's ``curves.json``; the key hashes the method, the data fingerprint, the pretrain config
and the seed. A store is a local directory, a ``file://`` URI or an ``s3://bucket/prefix``.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from dcflow.errors import ServiceError, WeightsError
from dcflow.storage.s3 import s3_call, s3_client, split_s3

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
            client = s3_client()
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
            client = s3_client()
            s3_call("upload", client.upload_file, str(local), bucket, prefix)
            curves_key = prefix.rsplit("/", 1)[0] + "/" + CURVES_FILE
            s3_call("put", client.put_object, Bucket=bucket, Key=curves_key, Body=body)
            s3_call(
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
            s3_call("download", s3_client().download_file, bucket, key, str(tmp))
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
            text = s3_client().get_object(Bucket=bucket, Key=key)["Body"].read().decode()
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
