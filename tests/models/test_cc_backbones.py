"""CC networks: output contracts, ResNet-34 presets on fake data, cc/uldc preset consistency."""

from __future__ import annotations

import pytest
import torch

from dcflow.config import build_run_config, config_dir
from dcflow.losses.cc import cluster_contrastive_loss, instance_contrastive_loss
from dcflow.methods.registry import get_method
from dcflow.models.cc_backbones import build_cc_network

DATASETS = ["digits", "usps", "mnist", "fashion-mnist", "cifar10", "imagenet-dogs"]


def _preset(method: str, dataset: str, extra: list[str] | None = None):  # type: ignore[no-untyped-def]
    cls = get_method(method)
    path = config_dir() / method / f"{dataset}.yaml"
    cfg = build_run_config(
        method, cls.Config, {"name": "fake"}, config_file=str(path), overrides=extra or []
    )
    return cls(cfg)


@pytest.mark.parametrize("dataset", DATASETS)
def test_cc_and_uldc_presets_share_the_pretrain_sections(dataset: str) -> None:
    cc, uldc = _preset("cc", dataset), _preset("uldc", dataset)
    assert cc.pretrain_config() == uldc.pretrain_config()
    assert set(cc.pretrain_config()) == {"model", "augment", "pretrain"}


@pytest.mark.parametrize(("arch", "shape"), [("mlp", (1, 8, 8)), ("cnn", (1, 16, 16))])
def test_small_networks_output_unit_embeddings_and_probabilities(
    arch: str, shape: tuple[int, int, int]
) -> None:
    net = build_cc_network(arch, shape, 10, [32, 64, 48], 16, 24)  # type: ignore[arg-type]
    z, p = net(torch.rand(5, *shape))
    assert z.shape == (5, 16) and torch.allclose(z.norm(dim=1), torch.ones(5), atol=1e-5)
    assert p.shape == (5, 10) and torch.allclose(p.sum(1), torch.ones(5), atol=1e-5)


@pytest.mark.parametrize("dataset", ["cifar10", "imagenet-dogs"])
def test_gpu_presets_build_and_train_a_few_steps_on_fake_data(dataset: str) -> None:
    # the paper's ResNet-34 and augmentation, on 48-px fake RGB images to stay fast on a CPU
    method = _preset("uldc", dataset, ["model.image_size=48"])
    torch.manual_seed(0)
    k = 15 if dataset == "imagenet-dogs" else 10
    m = method.cfg.model
    assert (m.arch, m.instance_dim, m.head_hidden) == ("resnet34", 128, 512)
    shape = (3, m.image_size, m.image_size)
    net = build_cc_network(m.arch, shape, k, m.widths, m.instance_dim, m.head_hidden, m.stem)
    aug, gen = method.views(), torch.Generator().manual_seed(0)
    x = torch.rand(6, 3, 32, 32)
    opt = torch.optim.Adam(net.parameters(), lr=3e-4)
    for _ in range(2):
        (z1, p1), (z2, p2) = net(aug(x, gen)), net(aug(x, gen))
        loss = instance_contrastive_loss(z1, z2, 0.5) + cluster_contrastive_loss(p1, p2)
        opt.zero_grad()
        loss.backward()
        opt.step()
    x = torch.rand(24, 3, 32, 32)  # k_unc = 20 needs a batch of 20 or more
    h1, h2 = net.backbone(aug(x, gen)), net.backbone(aug(x, gen))
    terms = method.uldc_loss(net.embed_features(h1), net.embed_features(h2))
    terms["total"].backward()
    assert torch.isfinite(loss) and torch.isfinite(terms["total"])
    assert z1.shape == (6, 128) and p1.shape == (6, k)


def test_cnn_needs_conv_channels_and_an_output_size() -> None:
    from dcflow.errors import ConfigError

    with pytest.raises(ConfigError, match="widths"):
        build_cc_network("cnn", (1, 16, 16), 10, [32], 16, 24)
