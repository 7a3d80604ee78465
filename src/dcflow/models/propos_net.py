"""The BYOL-style online/target pair of ProPos / HaDis, its EMA update and its schedules.

ProPos (Huang et al., TPAMI 2022) Sec. 3.1 and docs/specs/hadis.md §4.1 and §4.3:
online = backbone + projector (trained), target = their EMA copies (no gradient), predictor on the
online side only (no target copy). Heads follow ProPos Sec. 4 / BYOL: ``Linear-BN-ReLU-Linear``
for the projector and the predictor. Backbones come from
:func:`~dcflow.models.backbones.build_backbone` in ProPos's parameter names; the CPU-scale ones are
the spec's suggestion (``docs/specs/hadis.md`` section 5, not from either paper): digits 8x8 use
an MLP ``64-256-256``; USPS 16x16, MNIST and Fashion-MNIST 28x28 three stride-2 conv blocks
(32/64/128) with global average pooling.
"""

from __future__ import annotations

import copy
import math
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from dcflow.data.bank import Images
from dcflow.errors import ConfigError
from dcflow.models.backbones import Backbone, build_backbone

BackboneName = Literal["auto", "mlp", "cnn", "resnet18"]
PREDICTOR_INIT_STD = 0.01


def mlp_head(in_dim: int, hidden: int, out_dim: int, init_std: float | None = None) -> nn.Module:
    """``Linear(in, hidden)-BN-ReLU-Linear(hidden, out)`` (projector / predictor).

    Args:
        in_dim: input width.
        hidden: hidden width (4096 in the paper).
        out_dim: output width ``d`` (256 in the paper).
        init_std: when given, linear weights ~ N(0, init_std^2) and biases 0 (the predictor's
            upstream initialisation, std 0.01).
    """
    head = nn.Sequential(
        nn.Linear(in_dim, hidden),
        nn.BatchNorm1d(hidden),
        nn.ReLU(inplace=True),
        nn.Linear(hidden, out_dim),
    )
    if init_std is not None:
        for m in head.modules():
            if isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, std=init_std)
                nn.init.zeros_(m.bias)
    return head


def resolve_backbone(
    name: BackboneName, image_shape: tuple[int, int, int]
) -> Literal["mlp", "cnn", "resnet18"]:
    """``auto`` picks ``mlp`` for images of at most 8x8 pixels, ``cnn`` otherwise."""
    if name != "auto":
        return name
    return "mlp" if image_shape[1] * image_shape[2] <= 64 else "cnn"


def propos_backbone(
    name: BackboneName, image_shape: tuple[int, int, int], widths: list[int]
) -> Backbone:
    """The ProPos / HaDis backbone for ``image_shape`` ``(C, H, W)``.

    ``mlp``: ``Linear-BN-ReLU`` per width; ``cnn``: stride-2 ``Conv3x3-BN-ReLU`` blocks and global
    average pooling (CPU scale); ``resnet18``: the CIFAR-stem ResNet-18 of
    the paper. ``widths`` are ignored by ``resnet18``.

    Raises:
        ConfigError: ``resnet18`` on images smaller than 16x16.
    """
    kind = resolve_backbone(name, image_shape)
    if kind == "resnet18" and min(image_shape[1:]) < 16:
        h, w = image_shape[1:]
        raise ConfigError(f"model.backbone=resnet18 needs images of 16x16 or more, got {h}x{w}")
    return build_backbone(
        kind,
        image_shape,
        widths=widths,
        stride=2,
        pool_after=(),
        head="gap",
        stack="net",
        stem="cifar",
        block_layout="flat",
    )


class ProPosNet(nn.Module):
    """Online encoder, its EMA target and the predictor.

    Args:
        backbone: backbone name (see :func:`propos_backbone`).
        image_shape: ``(C, H, W)``.
        widths: backbone widths (ignored by ``resnet18``).
        hidden: projector / predictor hidden width (4096 in the paper).
        dim: embedding dim ``d`` (256 in the paper).
    """

    def __init__(
        self,
        backbone: BackboneName,
        image_shape: tuple[int, int, int],
        widths: list[int],
        hidden: int,
        dim: int,
    ) -> None:
        super().__init__()
        bb = propos_backbone(backbone, image_shape, widths)
        self.online = nn.Sequential(bb, mlp_head(bb.out_dim, hidden, dim))
        self.target = copy.deepcopy(self.online)
        self.target.requires_grad_(False)
        self.predictor = mlp_head(dim, hidden, dim, init_std=PREDICTOR_INIT_STD)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Online projections ``q`` ``[B, d]`` and normalised target embeddings ``k`` ``[B, d]``."""
        q = self.online(x)
        with torch.no_grad():
            k = F.normalize(self.target(x), dim=1)
        return q, k

    @torch.no_grad()
    def embed_target(self, x: Images, batch_size: int = 1024) -> torch.Tensor:
        """L2-normalised target embeddings ``[N, d]`` in eval mode (the E-step features)."""
        was_training = self.target.training
        self.target.eval()
        out = torch.cat([F.normalize(self.target(b), dim=1) for b in x.split(batch_size)])
        self.target.train(was_training)
        return out

    @torch.no_grad()
    def ema_update(self, m: float) -> None:
        """``xi <- m xi + (1 - m) theta`` on every parameter of backbone + projector."""
        ema_update(self.target, self.online, m)


@torch.no_grad()
def ema_update(target: nn.Module, online: nn.Module, m: float) -> None:
    """In-place EMA ``xi <- m xi + (1 - m) theta`` of ``target``'s parameters.

    ``m = 1`` leaves the target unchanged, ``m = 0`` copies the online weights. Buffers (BN
    statistics) are not averaged: the target keeps its own.
    """
    t_params: list[torch.Tensor] = [p.data for p in target.parameters()]
    o_params: list[torch.Tensor] = [p.detach() for p in online.parameters()]
    if m == 1.0:
        return
    if m == 0.0:
        torch._foreach_copy_(t_params, o_params)
        return
    torch._foreach_lerp_(t_params, o_params, 1.0 - m)


def learning_rate(
    epoch: float, base: float, warmup: int, total: int, eta_min: float = 0.0
) -> float:
    """ProPos LR at fractional epoch ``e`` (``iteration / iterations-per-epoch``).

    ``e < W``: ``base e / W``; else ``lr_min + (base - lr_min)(1 + cos(pi (e - W) / E)) / 2`` with
    ``lr_min = base * eta_min``. The cosine divides by ``E``, not ``E - W`` (docs/specs/hadis.md
    pitfall 3, kept for faithfulness): the LR ends near ``base (1 + cos(pi (E - W) / E)) / 2``, not
    at ``lr_min``.
    """
    if epoch < warmup:
        return base * epoch / warmup
    lr_min = base * eta_min
    return lr_min + 0.5 * (base - lr_min) * (1.0 + math.cos(math.pi * (epoch - warmup) / total))


def ema_momentum(step: int, total_steps: int, base: float, increase: bool) -> float:
    """EMA momentum at iteration ``t`` of ``T``.

    Constant ``m``, or with ``momentum_increase`` ``m_t = 1 - (1 - m)(cos(pi t / T) + 1) / 2``,
    non-decreasing and reaching 1.0 at ``t = T``.
    """
    if not increase:
        return base
    frac = min(step, total_steps) / max(total_steps, 1)
    return 1.0 - (1.0 - base) * (math.cos(math.pi * frac) + 1.0) / 2.0


def make_optimizer(
    net: ProPosNet, momentum: float, weight_decay: float, predictor_lr_factor: float
) -> torch.optim.SGD:
    """SGD over online backbone+projector (LR x1) and predictor (LR x ``predictor_lr_factor``).

    Weight decay applies to every parameter, BN and biases included (as the paper's configs).
    Each group carries ``lr_factor``; the caller sets ``lr = factor * schedule`` every step.
    """
    groups = [
        {"params": list(net.online.parameters()), "lr_factor": 1.0},
        {"params": list(net.predictor.parameters()), "lr_factor": predictor_lr_factor},
    ]
    return torch.optim.SGD(groups, lr=0.0, momentum=momentum, weight_decay=weight_decay)


def checkpoint_state(net: ProPosNet, opt: torch.optim.Optimizer) -> dict[str, torch.Tensor]:
    """A flat tensor dict: ``net.*`` (all three networks) and ``optim.<i>`` momentum buffers."""
    state = {f"net.{k}": v for k, v in net.state_dict().items()}
    params = [p for g in opt.param_groups for p in g["params"]]
    for i, p in enumerate(params):
        buf = opt.state.get(p, {}).get("momentum_buffer")
        if buf is not None:
            state[f"optim.{i}"] = buf
    return state


def restore_checkpoint(
    state: dict[str, torch.Tensor], net: ProPosNet, opt: torch.optim.Optimizer
) -> None:
    """Inverse of :func:`checkpoint_state` (raises ``RuntimeError`` on a shape mismatch)."""
    net.load_state_dict({k[4:]: v for k, v in state.items() if k.startswith("net.")})
    params = [p for g in opt.param_groups for p in g["params"]]
    for i, p in enumerate(params):
        if f"optim.{i}" in state:
            opt.state[p]["momentum_buffer"] = state[f"optim.{i}"].to(p.device)
