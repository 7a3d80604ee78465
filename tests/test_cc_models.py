"""CC networks, ResNet presets on fake data, batched views, and cc/uldc preset consistency."""

from __future__ import annotations

import pytest
import torch

from dcflow.config import build_run_config, config_dir
from dcflow.losses.cc import cluster_contrastive_loss, instance_contrastive_loss
from dcflow.methods.registry import get_method
from dcflow.models.cc_backbones import build_cc_network
from dcflow.models.cc_resnet import ResNet
from dcflow.transforms.cc_views import ViewAugment, gaussian_blur, gray, resize, rotate_hue

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


@pytest.mark.parametrize("depth", ["resnet18", "resnet34"])
def test_resnet_parameter_counts_match_the_torchvision_layout(depth: str) -> None:
    # torchvision resnet18 / resnet34 without fc: 11,176,512 / 21,284,672 parameters
    expected = {"resnet18": 11_176_512, "resnet34": 21_284_672}[depth]
    net = ResNet(depth, 3, "imagenet")  # type: ignore[arg-type]
    assert sum(p.numel() for p in net.parameters()) == expected


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


def test_views_are_batched_seeded_and_in_range() -> None:
    aug = ViewAugment(rotation=10, shift=0.1, zoom=(0.9, 1.1), noise=0.05)
    x = torch.rand(20, 1, 8, 8)
    a = aug(x, torch.Generator().manual_seed(1))
    b = aug(x, torch.Generator().manual_seed(1))
    c = aug(x, torch.Generator().manual_seed(2))
    assert a.shape == x.shape and torch.equal(a, b) and not torch.equal(a, c)
    assert float(a.min()) >= 0.0 and float(a.max()) <= 1.0


def test_identity_view_leaves_images_unchanged() -> None:
    x = torch.rand(4, 3, 10, 10)
    assert torch.allclose(ViewAugment()(x, torch.Generator().manual_seed(0)), x, atol=1e-5)


def test_resized_crop_flip_and_colour_output_size() -> None:
    aug = ViewAugment(size=24, crop_area=(0.08, 1.0), hflip=0.5, jitter=0.5, grayscale_p=0.2)
    out = aug(torch.rand(7, 3, 32, 32), torch.Generator().manual_seed(0))
    assert out.shape == (7, 3, 24, 24)
    assert float(out.min()) >= 0.0 and float(out.max()) <= 1.0


def test_colour_helpers_closed_forms() -> None:
    x = torch.rand(3, 3, 5, 5)
    assert torch.allclose(rotate_hue(x, torch.zeros(3)), x, atol=1e-5)
    grey = gray(x).expand(-1, 3, -1, -1)
    assert torch.allclose(rotate_hue(grey, torch.full((3,), 0.3)), grey, atol=1e-5)
    const = torch.full((2, 3, 9, 9), 0.4)
    assert torch.allclose(gaussian_blur(const, torch.tensor([0.5, 2.0]), 5), const, atol=1e-6)
    blurred = gaussian_blur(torch.rand(2, 1, 9, 9), torch.tensor([1.0, 1.0]), 5)
    assert blurred.shape == (2, 1, 9, 9)


def test_resize_is_a_no_op_at_native_size() -> None:
    x = torch.rand(2, 1, 8, 8)
    assert resize(x, None) is x and resize(x, 8) is x
    assert resize(x, 16).shape == (2, 1, 16, 16)


def test_cnn_needs_conv_channels_and_an_output_size() -> None:
    from dcflow.errors import ConfigError

    with pytest.raises(ConfigError, match="widths"):
        build_cc_network("cnn", (1, 16, 16), 10, [32], 16, 24)
