"""Weights store and artifact sync: the only package that imports boto3.

A weights store is a local directory (default), a ``file://`` URI or an ``s3://bucket/prefix`` URI.
Weights live at ``<store>/<method>/<key>/weights.pt`` beside ``weights.pt.sha256``; the key hashes
the method, the data fingerprint, the pretrain config and the seed. S3 access uses the standard
variables (``AWS_ENDPOINT_URL``, ``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``) and retries
transient errors with backoff (botocore's "standard" retry mode).
"""

from dcflow.storage.s3 import (
    CHANGED_CODES,
    S3Object,
    check_s3_writable,
    download_listed,
    download_prefix,
    fetch_object,
    list_objects,
    s3_call,
    s3_client,
    split_s3,
    upload_dir,
)
from dcflow.storage.weights import (
    CURVES_FILE,
    SHA_SUFFIX,
    WEIGHTS_FILE,
    StoredWeights,
    WeightsStore,
    fetch_curves,
    fetch_weights,
    sha256_file,
)

__all__ = [
    "CHANGED_CODES",
    "CURVES_FILE",
    "S3Object",
    "SHA_SUFFIX",
    "StoredWeights",
    "WEIGHTS_FILE",
    "WeightsStore",
    "check_s3_writable",
    "download_listed",
    "download_prefix",
    "fetch_curves",
    "fetch_object",
    "fetch_weights",
    "list_objects",
    "s3_call",
    "s3_client",
    "sha256_file",
    "split_s3",
    "upload_dir",
]
