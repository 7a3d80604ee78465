"""``dcflow run --runner docker``: every stage in the dcflow image (``kfp.local.DockerRunner``).

The containers use host networking (a local MLflow or S3 server on 127.0.0.1 is reachable, and
dockerd may run without a bridge). kfp.local mounts the pipeline root at the same path; every
other path a stage reads or writes (weights store, stage cache, local MLflow store, pending MLflow
records, the data) is mounted at its own path too, read-only where the stages only read it.

Nothing runs as root. As a regular user the containers run under your uid (in group 0, which owns
the image's home), so the files they write are yours. When dcflow itself runs as root, the
containers run as the image's user (uid 10001, group 0) and the writable directories are handed
to that uid before the run (root can still read and write them).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dcflow.errors import ConfigError, ServiceError

IMAGE_UID = 10001
BUILD_HINT = "build it with `docker/build.sh` (see docs/deploy.md) or pass --image TAG"
# Variables a stage may need that only the host knows; passed through when set.
PASSTHROUGH = (
    "AWS_ENDPOINT_URL",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_DEFAULT_REGION",
    "AWS_REGION",
    "MLFLOW_S3_ENDPOINT_URL",
    "MLFLOW_TRACKING_USERNAME",
    "MLFLOW_TRACKING_PASSWORD",
    "MLFLOW_TRACKING_TOKEN",
    "MLFLOW_TRACKING_INSECURE_TLS",
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES",
    "MLFLOW_HTTP_REQUEST_TIMEOUT",
    "DCFLOW_STAGE_CACHE",
    "DCFLOW_RESUME",
    "DCFLOW_CACHE_DIR",
)
FILE_VARS = ("AWS_CA_BUNDLE",)  # variables naming a host file: mounted read-only, then passed


@dataclass
class DockerPlan:
    """What the containers mount, as whom they run, and their environment.

    Attributes:
        image: the dcflow image tag.
        writable: host directories the stages write (mounted read-write at the same path).
        readable: host paths the stages only read (mounted read-only at the same path).
        env: environment of every stage container.
    """

    image: str
    writable: list[Path] = field(default_factory=list)
    readable: list[Path] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)

    def add_writable(self, path: str | Path) -> None:
        """Mount ``path`` read-write (created when missing)."""
        p = Path(path).resolve()
        p.mkdir(parents=True, exist_ok=True)
        self.writable.append(p)

    def add_readable(self, path: str | Path) -> None:
        """Mount ``path`` read-only (ignored when it does not exist)."""
        p = Path(path).resolve()
        if p.exists():
            self.readable.append(p)

    def mounts(self) -> list[tuple[Path, bool]]:
        """``(path, read_only)`` pairs, with paths already inside a writable mount dropped.

        The pipeline root itself is mounted by kfp.local and is not listed here.
        """
        rw = _outermost(self.writable)
        ro = [p for p in _outermost(self.readable) if not any(_inside(p, w) for w in rw)]
        return [(p, False) for p in rw] + [(p, True) for p in ro]


def _inside(path: Path, parent: Path) -> bool:
    return path == parent or parent in path.parents


def _outermost(paths: list[Path]) -> list[Path]:
    unique = sorted(set(paths), key=lambda p: len(p.parts))
    kept: list[Path] = []
    for p in unique:
        if not any(_inside(p, k) for k in kept):
            kept.append(p)
    return kept


def container_user() -> tuple[str, list[str]]:
    """``(user, extra groups)`` of the stage containers: never root.

    A regular user's own uid:gid (plus group 0, which owns the image's home directory); for root,
    the image's user ``10001:0``.
    """
    uid, gid = os.getuid(), os.getgid()
    if uid == 0:
        return f"{IMAGE_UID}:0", []
    return f"{uid}:{gid}", ["0"]


def hand_over(paths: list[Path]) -> None:
    """As root, give the writable trees to the image's user so its containers can write them."""
    if os.getuid() != 0:
        return
    for top in paths:
        for dirpath, dirnames, filenames in os.walk(top):
            os.chown(dirpath, IMAGE_UID, 0)
            for name in [*dirnames, *filenames]:
                target = os.path.join(dirpath, name)
                if not os.path.islink(target):
                    os.chown(target, IMAGE_UID, 0)


def passthrough_env(plan: DockerPlan) -> None:
    """Copy the host variables a stage needs into ``plan.env`` (files mounted read-only)."""
    for key in PASSTHROUGH:
        if os.environ.get(key):
            plan.env[key] = os.environ[key]
    for key in FILE_VARS:
        value = os.environ.get(key, "")
        if value and Path(value).is_file():
            plan.add_readable(value)
            plan.env[key] = str(Path(value).resolve())


def check_image(image: str) -> None:
    """Fail with one line when dockerd does not answer or the image is not on this machine."""
    try:
        from docker.errors import DockerException, ImageNotFound

        import docker
    except ImportError:  # pragma: no cover - docker is installed with mlflow
        raise ServiceError("--runner docker needs the `docker` Python package") from None
    try:
        client = docker.from_env(timeout=10)
        client.ping()
    except DockerException as exc:
        raise ServiceError(f"the Docker daemon does not answer ({type(exc).__name__})") from None
    try:
        client.images.get(image)
    except ImageNotFound:
        raise ConfigError(f"image {image} is not on this machine: {BUILD_HINT}") from None
    except DockerException as exc:
        raise ServiceError(f"docker image lookup failed: {exc}") from None
    finally:
        client.close()


def make_runner(plan: DockerPlan, pipeline_root: Path) -> Any:
    """The ``kfp.local.DockerRunner`` for ``plan`` (host network, mounts, non-root user).

    ``pipeline_root`` is mounted by kfp.local itself; it is only handed over here.
    """
    from docker.types import Mount
    from kfp import local

    user, groups = container_user()
    hand_over([pipeline_root, *(p for p, ro in plan.mounts() if not ro)])
    mounts = [
        Mount(target=str(p), source=str(p), type="bind", read_only=ro) for p, ro in plan.mounts()
    ]
    return local.DockerRunner(
        network_mode="host",
        user=user,
        group_add=groups,
        mounts=mounts,
        environment=dict(plan.env),
    )


def set_image(pipeline: Any, image: str) -> None:
    """Point every executor of an in-memory pipeline at ``image``."""
    executors = pipeline.pipeline_spec.deployment_spec["executors"]
    for name in executors:
        executors[name]["container"]["image"] = image
