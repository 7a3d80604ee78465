"""Worker of the data-parallel equality tests (tests/train/test_distributed.py).

Run alone it is the one-process reference; under ``torchrun --nproc_per_node N`` every process
takes its shard of the same global batch. Either way rank 0 writes ``out.pt``: the global value of
every loss (the mean of the per-process values) and the parameters after one optimiser step.
"""

from __future__ import annotations

import sys

import torch
import torch.nn.functional as F

from dcflow.losses.cc import cluster_contrastive_loss, instance_contrastive_loss
from dcflow.losses.hsd import hsd_loss
from dcflow.losses.ntxent import ntxent_loss
from dcflow.losses.propos import alignment_loss, prototype_scattering_loss
from dcflow.losses.scan import scan_loss, selflabel_loss
from dcflow.methods.uldc import RefineConfig, uldc_terms
from dcflow.models.cc_backbones import build_cc_network
from dcflow.train import distributed as D

GLOBAL_BATCH, DIM, K = 16, 8, 4


def batch() -> dict[str, torch.Tensor]:
    """The fixed global batch every run draws (same seed on every process)."""
    g = torch.Generator().manual_seed(7)
    return {
        "a": torch.randn(GLOBAL_BATCH, DIM, generator=g),
        "b": torch.randn(GLOBAL_BATCH, DIM, generator=g),
        "p1": torch.randn(GLOBAL_BATCH, K, generator=g),
        "p2": torch.randn(GLOBAL_BATCH, K, generator=g),
        "labels": torch.randint(0, K, (GLOBAL_BATCH,), generator=g),
        "x": torch.rand(GLOBAL_BATCH, 1, 6, 6, generator=g),
        "x2": torch.rand(GLOBAL_BATCH, 1, 6, 6, generator=g),
    }


def losses(part: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Every loss of the shard, with the gradient of each with respect to the shard's inputs."""
    a = F.normalize(part["a"], dim=1).requires_grad_()
    b = F.normalize(part["b"], dim=1).requires_grad_()
    p1 = part["p1"].softmax(1).requires_grad_()
    p2 = part["p2"].softmax(1).requires_grad_()
    logits_a = part["p1"].clone().requires_grad_()  # SCAN anchors, self-label strong views
    logits_s = part["p2"].clone().requires_grad_()
    out = {
        "ntxent_sym": ntxent_loss(a, b, 0.5, "symmetric"),
        "ntxent_one": ntxent_loss(a, b, 0.5, "one_way"),
        "cc_instance": instance_contrastive_loss(part["a"], part["b"], 0.5),
        "cc_cluster": cluster_contrastive_loss(p1, p2, 1.0, 1.0),
        "align": alignment_loss(a, b),
        "psl": prototype_scattering_loss(a, b, part["labels"], K, 0.5),
        "hsd": hsd_loss(a, b, 0.5),
        "scan": scan_loss(logits_a, part["p2"], 5.0)[0],
        "uldc": uldc(a, b),
    }
    # a confident set spread over both shards, and one with no confident sample in one shard
    sharp = (part["p1"] * 4).softmax(1)
    out["selflabel"] = _selflabel(logits_s, sharp, 0.5)
    out["selflabel_one_shard"] = _selflabel(logits_s, sharp, 0.995)
    total = torch.stack(list(out.values())).sum()
    total.backward()
    w = D.world()
    # gradients of the global loss (mean over processes) with respect to every input row
    for name, t in {"a": a, "b": b, "p1": p1, "p2": p2, "la": logits_a, "ls": logits_s}.items():
        assert t.grad is not None
        out[f"grad_{name}"] = D.gather_constant(t.grad) / w.size
    return out


def uldc(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """ULDC's loss of the gathered global batch (every process computes the whole of it)."""
    cfg = RefineConfig(k_sim=4, k_unc=4, k_cut=2)
    return uldc_terms(D.gather_batch(a)[0], D.gather_batch(b)[0], cfg)["total"]


def _selflabel(logits: torch.Tensor, weak: torch.Tensor, threshold: float) -> torch.Tensor:
    loss, _ = selflabel_loss(logits, weak, threshold)
    assert loss is not None
    return loss


def step(full: dict[str, torch.Tensor], kind: str) -> dict[str, torch.Tensor]:
    """One optimiser step of a CC network (MLP with batch norm) on the CC loss; its state after."""
    torch.manual_seed(0)
    net = build_cc_network("mlp", (1, 6, 6), K, [16], 8, 16, "imagenet")
    net = D.prepare(net, torch.device("cpu"))
    if kind == "adam":
        # A bias right before batch norm has a zero gradient in exact arithmetic; Adam divides
        # its round-off by sqrt(v) into full-size steps of random sign, in one process as in two.
        # Freeze those redundant biases so that the comparison measures the training step.
        mods = list(net.modules())
        norm = torch.nn.modules.batchnorm._BatchNorm
        for lin, bn in zip(mods, mods[1:], strict=False):
            if isinstance(lin, torch.nn.Linear) and isinstance(bn, norm):
                lin.bias.requires_grad_(False)
    opt: torch.optim.Optimizer = (
        torch.optim.SGD(net.parameters(), lr=0.5, momentum=0.9)
        if kind == "sgd"
        else torch.optim.Adam([p for p in net.parameters() if p.requires_grad], lr=1e-2)
    )
    idx = D.shard(torch.arange(GLOBAL_BATCH))
    for _ in range(2):
        z1, q1 = net(full["x"][idx])
        z2, q2 = net(full["x2"][idx])
        loss = instance_contrastive_loss(z1, z2, 0.5) + cluster_contrastive_loss(q1, q2)
        opt.zero_grad()
        loss.backward()
        D.average_gradients(net)
        opt.step()
    return {f"{kind}.{k}": v.detach().clone() for k, v in net.state_dict().items()}


def ruc_step(full: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """RUC's ``L_X``, ``L_U``, ``L_S`` (gathered MixUp, global counts) and one SGD step of a
    small CNN with batch norm. The strong views are random: drawn for the global batch's clean
    rows, of which each process keeps its own."""
    from dcflow.models.cluster import ModelConfig, build_model
    from dcflow.train.ruc import RUCRefineConfig, _losses
    from dcflow.transforms.views import ViewConfig

    torch.manual_seed(0)
    net = build_model(ModelConfig(backbone="small_cnn", widths=[4, 8], proj_dim=4), (1, 6, 6), K, 1)
    net = D.prepare(net, torch.device("cpu"))
    opt = torch.optim.SGD(net.parameters(), lr=0.5, momentum=0.9)
    cfg = RUCRefineConfig(strong_view=ViewConfig(rotation=20.0, translate=0.1, cutout=2))
    idx = D.shard(torch.arange(GLOBAL_BATCH))
    clean = torch.arange(GLOBAL_BATCH) % 3 != 0  # 11 clean rows: 6 in shard 0, 5 in shard 1
    targets = full["p1"].softmax(1)
    views = (full["x"][idx], full["x2"][idx], full["x"][idx].flip(3))
    gen = torch.Generator().manual_seed(5)
    lx, lu, ls = _losses(net, views, targets[idx], full["labels"][idx], clean[idx], cfg, gen)
    loss = lx + 3.0 * lu + ls
    opt.zero_grad()
    loss.backward()
    D.average_gradients(net)
    opt.step()
    out = {
        f"ruc_{k}": D.mean_over_processes(v.detach())
        for k, v in zip("xus", (lx, lu, ls), strict=True)
    }
    return {**out, **{f"ruc.{k}": v.detach().clone() for k, v in net.state_dict().items()}}


def estep() -> dict[str, torch.Tensor]:
    """ProPos's E-step pattern: each process embeds its rows of an 11-row pool, the rows are
    gathered, k-means runs everywhere and rank 0's labels and centres are broadcast."""
    from dcflow.clustering import KMeans

    g = torch.Generator().manual_seed(3)
    pool, proj = torch.randn(11, DIM, generator=g), torch.randn(DIM, 3, generator=g)
    rows = D.process_rows(11)
    z = D.gather_rows(F.normalize(pool[rows] @ proj, dim=1), 11)
    km = KMeans(K, n_init=2, seed=0).fit(z)
    D.broadcast_(km.labels_, km.cluster_centers_)
    return {"estep_z": z, "estep_labels": km.labels_, "estep_centers": km.cluster_centers_}


def trainers() -> dict[str, torch.Tensor]:
    """One epoch of the SimCLR, SCAN and self-labelling trainers with random views.

    Every process draws the views of the whole global batch from the shared generator and trains
    on its shard, so the parameters after the epoch are those of one process (float tolerance).
    """
    from dcflow.models.cluster import ModelConfig, build_model
    from dcflow.progress import Curves
    from dcflow.train.scan import ScanConfig, scan_train
    from dcflow.train.selflabel import SelfLabelConfig, selflabel_train
    from dcflow.train.simclr import SimCLRConfig, simclr_train
    from dcflow.transforms.views import ViewConfig

    g = torch.Generator().manual_seed(11)
    x = torch.rand(24, 1, 8, 8, generator=g)
    view = ViewConfig(rotation=15.0, translate=0.1, jitter_p=0.8, brightness=0.4, cutout=3)
    torch.manual_seed(0)
    net = build_model(ModelConfig(backbone="small_cnn", widths=[4, 8], proj_dim=8), (1, 8, 8), K, 1)
    out: dict[str, torch.Tensor] = {}
    sim = SimCLRConfig(epochs=1, batch_size=12, optimizer="adam", lr=1e-2, view=view)
    simclr_train(net, x, sim, torch.Generator().manual_seed(1), Curves())
    out.update({f"simclr.{k}": v.clone() for k, v in net.state_dict().items()})
    neighbors = torch.stack([torch.arange(24), (torch.arange(24) + 1) % 24], 1)
    scan = ScanConfig(epochs=1, batch_size=12, neighbors=1, lr=1e-2, view=view)
    scan_train(net, x, neighbors, scan, torch.Generator().manual_seed(2), Curves())
    out.update({f"scan_train.{k}": v.clone() for k, v in net.state_dict().items()})
    sl = SelfLabelConfig(epochs=1, batch_size=12, threshold=0.0, lr=1e-2, view=view)
    selflabel_train(net, x, sl, torch.Generator().manual_seed(3), Curves())
    out.update({f"selflabel_train.{k}": v.clone() for k, v in net.state_dict().items()})
    return out


def main(out_path: str) -> None:
    w = D.init_from_env(torch.device("cpu"))
    full = batch()
    idx = D.shard(torch.arange(GLOBAL_BATCH))
    part = {k: v[idx] for k, v in full.items()}
    result = {
        k: (v if k.startswith("grad_") else D.mean_over_processes(v.detach()))
        for k, v in losses(part).items()
    }
    result.update(step(full, "sgd"))
    result.update(step(full, "adam"))
    result.update(estep())
    result.update(ruc_step(full))
    result.update(trainers())
    if w.main:
        torch.save({"world": w.size, **result}, out_path)


if __name__ == "__main__":
    main(sys.argv[1])
