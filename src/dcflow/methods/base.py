"""Shared base of all methods: declared stages, config class, and the stage hooks.

A method subclasses :class:`Method`, declares its ``stages`` tuple and its pydantic ``Config``, and
overrides the hooks it uses. Each stage file (:mod:`dcflow.stages`) opens the stage, builds a
:class:`StageContext`, loads the typed outputs of the stages before it
(:mod:`dcflow.handoff`), calls the hook and saves the typed output the hook returns. Hooks never
touch artifact files; ``evaluate`` is generic and lives in :mod:`dcflow.stages.evaluate`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import torch
from pydantic import BaseModel

from dcflow.config import RunConfig, StrictModel, validate_model
from dcflow.data import Dataset
from dcflow.data.bank import ImageBank
from dcflow.handoff import ClusterInitOut, PredictOut, PretrainOut, RefineOut, SelectionOut
from dcflow.progress import Curves

STAGES = (
    "download-weights",
    "pretrain",
    "cluster-init",
    "confident-sample-selection",
    "refine",
    "evaluate",
)


@dataclass
class StageContext:
    """What a stage hook may use.

    Attributes:
        data: the dataset with ``y`` removed (only ``evaluate`` sees labels).
        device: torch device chosen once for the run.
        seed: the run's seed.
        weights: verified local copy of the pretrained weights, when the stage consumes them.
        curves: per-step metrics recorded for MLflow.
    """

    data: Dataset
    device: torch.device
    seed: int
    weights: Path | None = None
    curves: Curves = field(default_factory=Curves)
    _images: ImageBank | None = field(default=None, init=False, repr=False)

    def images(self) -> ImageBank:
        """The dataset ``[N, C, H, W]`` as float32 batches on ``device`` (one bank per stage).

        The pixels stay uint8: on CPU the bank shares memory with ``data.x``; on a GPU a pool
        that fits is copied there once (uint8), a larger one streams from pinned host memory.
        """
        if self._images is None:
            self._images = ImageBank(self.data.x, self.device)
        return self._images

    def generator(self, offset: int = 0) -> torch.Generator:
        """A CPU generator seeded from the run seed (``offset`` separates streams)."""
        return torch.Generator().manual_seed(self.seed * 1000 + offset)


class Method:
    """Base class of every clustering method.

    Class attributes:
        name: registry name (``aspc-da``).
        paper: short citation shown by ``dcflow methods``.
        Config: pydantic model of the method's hyper-parameters (paper defaults).
        stages: the stages this method's pipeline runs, in order.
        training_stages: stages that request a GPU on a cluster.
        pretrain_sections: top-level config keys that determine the pretrained weights.
        weights_owner: method whose weights this one starts from (``uldc`` from ``cc``); the
            weights cache is keyed by it, so either method reuses the other's pretraining.
        smoke: ``--set`` overrides that make every stage run in seconds on the ``fake`` dataset;
            the method contract test (``tests/methods/test_contract.py``) runs them.
        pretrain_uses_k: whether the pretrained weights depend on the number of clusters (CC
            trains its cluster head in pretrain). Then K is part of the weights-cache key, and
            ``dcflow sweep-k`` pretrains once per K instead of once for all.
        data_parallel: stages whose hook trains data-parallel under torchrun (``--nproc``, a
            Trainer job): it shards each global batch (:mod:`dcflow.train.distributed`), averages
            gradients and leaves artifacts to rank 0. Other stages run in one process.
    """

    name: ClassVar[str] = ""
    paper: ClassVar[str] = ""
    Config: ClassVar[type[StrictModel]] = StrictModel
    stages: ClassVar[tuple[str, ...]] = STAGES
    training_stages: ClassVar[frozenset[str]] = frozenset({"pretrain", "refine"})
    pretrain_sections: ClassVar[tuple[str, ...]] = ("pretrain",)
    weights_owner: ClassVar[str] = ""
    smoke: ClassVar[tuple[str, ...]] = ()
    pretrain_uses_k: ClassVar[bool] = False
    data_parallel: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, run: RunConfig) -> None:
        self.run = run
        self.cfg: Any = validate_model(self.Config, run.params, self.name)

    def proba_kind(self) -> str:
        """What the final ``proba`` is, so that reports can label its ECE.

        ``model``: the network's own output (a softmax head, fuzzy memberships); ``constructed``:
        built from distances to centres after the fact (a Gaussian-mixture posterior of a k-means
        or merge read-out), whose calibration is a property of that construction; ``none``: no
        probabilities (no ECE).
        """
        return "model"

    @classmethod
    def config_model(cls) -> type[BaseModel]:
        """The pydantic class validating ``params``."""
        return cls.Config

    @classmethod
    def weights_name(cls) -> str:
        """Name under which this method's pretrained weights are cached."""
        return cls.weights_owner or cls.name

    def pretrain_config(self) -> dict[str, Any]:
        """The part of the config that determines the pretrained weights (cache key input)."""
        dumped = self.cfg.model_dump(mode="json")
        return {k: dumped[k] for k in self.pretrain_sections if k in dumped}

    def weights_key_config(self, n_clusters: int) -> dict[str, Any]:
        """What keys the cached weights: :meth:`pretrain_config`, plus K when the weights use it."""
        config = self.pretrain_config()
        if self.run.nproc > 1 and "pretrain" in self.data_parallel:
            # N processes sum in another order: equal weights only to round-off, kept apart
            config = {**config, "nproc": self.run.nproc}
        return {**config, "n_clusters": n_clusters} if self.pretrain_uses_k else config

    def pretrain(self, ctx: StageContext) -> PretrainOut:
        """Train the backbone; return its state dict."""
        raise NotImplementedError(f"{self.name} has no pretrain stage")

    def cluster_init(self, ctx: StageContext) -> ClusterInitOut:
        """Initial clustering from the pretrained weights (``ctx.weights``)."""
        raise NotImplementedError(f"{self.name} has no cluster-init stage")

    def select(self, ctx: StageContext, init: ClusterInitOut) -> SelectionOut:
        """Confident-sample selection from the initial clustering."""
        raise NotImplementedError(f"{self.name} has no confident-sample-selection stage")

    def refine(
        self, ctx: StageContext, init: ClusterInitOut, selection: SelectionOut | None
    ) -> RefineOut:
        """Refinement from the initial clustering (and the selection, when the method has one)."""
        raise NotImplementedError(f"{self.name} has no refine stage")

    def predict(
        self, ctx: StageContext, init: ClusterInitOut, final: RefineOut | None
    ) -> PredictOut:
        """Assign ``ctx.data`` (new images) with the finished run's model, without re-training.

        Args:
            ctx: the new data (no labels), device, seed and the run's verified pretrained weights.
            init: the run's cluster-init output.
            final: the run's refine output (``None`` for methods without refine).

        Returns:
            Labels in the run's cluster numbering; on the data the run was fitted on they must
            reproduce the run's own final assignment (tests/methods/test_contract.py).
        """
        raise NotImplementedError(f"{self.name} has no predict")
