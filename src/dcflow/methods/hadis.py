"""HaDis: ProPos plus hardness-aware self-distillation (HSD).

H.-X. Zhang, D. Huang, "Deep Clustering with Diffused Sampling and Hardness-aware
Self-distillation", arXiv 2401.14038 (2024). Re-implemented from docs/specs/hadis.md.

HaDis is ProPos unchanged (the noisy alignment is renamed *diffused sampling alignment*) with one
extra loss term, active from the first warm-up epoch with weight ``hsd.weight`` (Sec. III-C):
``L = L_align + w_hsd L_hsd + lambda [epoch > W] L_psl``. HSD uses the teacher ``t = k`` (target
embedding of the other view) and the student ``s = normalise(g(v))`` of the same direction; the two
directions are averaged like the other terms. Everything else (stages, schedules, E-step, outputs,
``proba.npy``) is :class:`~dcflow.methods.propos.ProPos`'s, so ``dcflow run propos`` and
``dcflow run hadis`` with the same settings differ by HSD alone (the ablation of
``benchmarks/ablation_hadis.py``).

Upstream defects handled: the predictor runs once per step and its output feeds both the
alignment and HSD (pitfall 10: upstream ran it twice, updating BN statistics twice); HSD is
computed in float32 with boolean masks instead of a 1e5 placeholder distance (pitfall 11); no
``.cuda()`` and no distributed calls (pitfalls 12, 15); the broken ``forward_v2`` path does not
exist (pitfall 9). The warm-up includes HSD, so HaDis caches its own warm-up weights (it cannot
share ProPos's).
"""

from __future__ import annotations

import torch

from dcflow.losses.hsd import hsd_loss
from dcflow.methods.propos import ProPos
from dcflow.methods.propos_config import HaDisConfig
from dcflow.methods.registry import register_method


@register_method
class HaDis(ProPos):
    """HaDis (Zhang & Huang, arXiv 2401.14038): ProPos + hardness-aware self-distillation."""

    name = "hadis"
    paper = "Zhang & Huang, Diffused sampling and hardness-aware self-distillation, arXiv 2024"
    Config = HaDisConfig
    pretrain_sections = ("model", "augment", "optim", "train", "hsd")
    cfg: HaDisConfig

    def _extra_losses(
        self, p: torch.Tensor, k_other: torch.Tensor, b: int
    ) -> dict[str, torch.Tensor]:
        """HSD of both directions on the shared predictor output ``p`` ``[2B, d]``."""
        h = self.cfg.hsd
        if h.weight == 0:
            return {}
        loss = hsd_loss(p[:b], k_other[:b], h.temperature)
        loss = loss + hsd_loss(p[b:], k_other[b:], h.temperature)
        return {"hsd": h.weight * loss / 2}
