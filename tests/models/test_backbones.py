"""Pins of every backbone as the methods build it: state-dict layout, initial weights, eval output.

Each variant is built the way a method builds it (preset model section + the method's constructor)
after ``torch.manual_seed(0)``. Three fingerprints per variant, recorded from the code before the
backbone factory replaced the per-method backbones: (a) sha256 of the ordered state-dict keys with
shapes and dtypes (cached weights in users' stores load by key), (b) sha256 of the concatenated
state-dict bytes (initial parameters and buffers), (c) sha256 of the eval-mode output on a fixed
input (one CPU thread, set in ``tests/conftest.py``). Any change to a layer, its order, its
initialisation or its forward shows up here.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from functools import partial
from types import SimpleNamespace
from typing import Any

import pytest
import torch
from torch import nn

from dcflow.config import build_run_config
from dcflow.methods.registry import get_method
from dcflow.models.cluster import ClusterModel, build_model
from dcflow.models.propos_net import ProPosNet
from dcflow.models.self_cc import image_classifier

SHAPES = {
    "digits": (1, 8, 8),
    "usps": (1, 16, 16),
    "mnist": (1, 28, 28),
    "fashion-mnist": (1, 28, 28),
    "cifar10": (3, 32, 32),
    "cifar20": (3, 32, 32),
    "stl10": (3, 96, 96),
    "imagenet-dogs": (3, 64, 64),
}
CLUSTERS = {"cifar20": 20, "imagenet-dogs": 15}

Built = tuple[
    nn.Module, torch.Tensor, Callable[[nn.Module, torch.Tensor], tuple[torch.Tensor, ...]]
]


def _cfg(method: str, dataset: str, overrides: tuple[str, ...] = ()) -> Any:
    cls = get_method(method)
    run = build_run_config(method, cls.Config, {"name": dataset}, overrides=list(overrides))
    return cls(run).cfg


def _input(shape: tuple[int, ...]) -> torch.Tensor:
    return torch.rand(2, *shape, generator=torch.Generator().manual_seed(1))


def _cluster_out(m: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
    assert isinstance(m, ClusterModel)
    heads = (m(x),) if len(m.cluster_head) else ()
    return (m.features(x), m.project(x), *heads)


def _call(m: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
    out = m(x)
    return tuple(out) if isinstance(out, tuple) else (out,)


def scan_family(method: str, dataset: str, *overrides: str, heads: int = 2) -> Built:
    """SCAN / RUC (and Self-CC's SimCLR FE): ``build_model`` with the preset's model section."""
    cfg, shape = _cfg(method, dataset, overrides), SHAPES[dataset]
    model_cfg = cfg.pretrain.model if method == "self-cc" else cfg.model
    torch.manual_seed(0)
    model = build_model(model_cfg, shape, CLUSTERS.get(dataset, 10), heads)
    return model, _input(shape), _cluster_out


def cc_family(method: str, dataset: str, *overrides: str) -> Built:
    """CC / ULDC: the method's own ``network(ctx)``."""
    cls = get_method(method)
    run = build_run_config(method, cls.Config, {"name": dataset}, overrides=list(overrides))
    data = SimpleNamespace(image_shape=SHAPES[dataset], n_clusters=CLUSTERS.get(dataset, 10))
    ctx: Any = SimpleNamespace(data=data, device=torch.device("cpu"))
    method_obj: Any = cls(run)
    torch.manual_seed(0)
    net = method_obj.network(ctx)
    return net, _input(method_obj._input_shape(ctx)), _call


def propos_family(method: str, dataset: str, *overrides: str) -> Built:
    """ProPos / HaDis: ``ProPosNet`` with the preset's model section (as ``ProPos._net``)."""
    m, shape = _cfg(method, dataset, overrides).model, SHAPES[dataset]
    torch.manual_seed(0)
    return ProPosNet(m.backbone, shape, m.widths, m.hidden, m.dim), _input(shape), _call


def rtds(dataset: str, which: str, *overrides: str) -> Built:
    """Self-CC RTDS image classifiers (``rtds.arch = resnet18``) on flattened views."""
    r, shape = _cfg("self-cc", dataset, overrides).rtds, SHAPES[dataset]
    hidden = r.classifier1 if which == "classifier1" else r.classifier2
    torch.manual_seed(0)
    net = image_classifier(shape, hidden, CLUSTERS.get(dataset, 10), r.stem, r.width)
    return net, _input(shape).flatten(1), _call


def _variants() -> dict[str, Callable[[], Built]]:
    sets = ("digits", "usps", "mnist", "fashion-mnist", "cifar10")
    v: dict[str, Callable[[], Built]] = {}
    for d in ("digits", "usps", "mnist", "cifar10", "cifar20", "stl10"):
        v[f"scan-{d}"] = partial(scan_family, "scan", d)
        v[f"ruc-{d}"] = partial(scan_family, "ruc", d)
    v["scan-small_cnn-widths4"] = partial(scan_family, "scan", "digits", "model.widths=[4]")
    v["scan-small_cnn-widths4-usps"] = partial(scan_family, "scan", "usps", "model.widths=[4]")
    v["scan-small_cnn-widths8,16"] = partial(scan_family, "scan", "digits", "model.widths=[8,16]")
    v["scan-resnet18-width16"] = partial(scan_family, "scan", "cifar10", "model.width=16")
    v["scan-pretrain-no-heads"] = partial(scan_family, "scan", "digits", heads=0)
    for d in ("cifar10", "stl10"):
        v[f"self-cc-fe-{d}"] = partial(scan_family, "self-cc", d, heads=0)
        for c in ("classifier1", "classifier2"):
            v[f"self-cc-rtds-{d}-{c}"] = partial(rtds, d, c)
    v["self-cc-rtds-width16"] = partial(rtds, "cifar10", "classifier1", "rtds.width=16")
    for d in (*sets, "imagenet-dogs"):
        v[f"cc-{d}"] = partial(cc_family, "cc", d)
        v[f"uldc-{d}"] = partial(cc_family, "uldc", d)
    v["cc-smoke"] = partial(cc_family, "cc", "digits", *get_method("cc").smoke)
    r18, native = "model.arch=resnet18", "model.image_size=null"
    v["cc-resnet18-imagenet"] = partial(cc_family, "cc", "cifar10", r18, "model.image_size=64")
    v["cc-resnet34-cifar-stem"] = partial(cc_family, "cc", "cifar10", "model.stem=cifar", native)
    v["cc-resnet18-cifar-stem"] = partial(
        cc_family, "cc", "cifar10", r18, "model.stem=cifar", native
    )
    v["cc-cnn-three-convs"] = partial(cc_family, "cc", "usps", "model.widths=[8,16,32,24]")
    v["cc-cnn-one-conv"] = partial(
        cc_family, "cc", "digits", "model.arch=cnn", "model.widths=[8,24]"
    )
    for d in (*sets, "stl10"):
        v[f"propos-{d}"] = partial(propos_family, "propos", d)
        v[f"hadis-{d}"] = partial(propos_family, "hadis", d)
    v["propos-auto-digits"] = partial(propos_family, "propos", "digits", "model.backbone=auto")
    v["propos-auto-usps"] = partial(propos_family, "propos", "usps", "model.backbone=auto")
    return v


VARIANTS = _variants()


def fingerprint(built: Built) -> tuple[str, int, str, tuple[float, float, float, float]]:
    """``(sha of keys+shapes, number of keys, sha of state bytes, output summary)``.

    The eval-mode output is summarised, not hashed: its last bits differ between CPUs (SIMD
    kernels), so the summary (sum, sum of squares, a fixed +-1 projection and sum |x|) is
    compared with a tolerance far below what any change of layer, order or forward produces.
    """
    model, x, forward = built
    state = model.state_dict()
    listing = "\n".join(f"{k}:{list(v.shape)}:{v.dtype}" for k, v in state.items())
    weights = hashlib.sha256()
    for v in state.values():
        weights.update(v.detach().contiguous().cpu().numpy().tobytes())
    model.eval()
    with torch.no_grad():
        out = torch.cat([t.detach().double().flatten() for t in forward(model, x)])
    sign = torch.randint(0, 2, out.shape, generator=torch.Generator().manual_seed(2)) * 2 - 1
    summary = (
        float(out.sum()),
        float(out.pow(2).sum()),
        float(out @ sign.double()),
        float(out.abs().sum()),
    )
    return hashlib.sha256(listing.encode()).hexdigest(), len(state), weights.hexdigest(), summary


PINS: dict[str, tuple[str, int, str, tuple[float, float, float, float]]] = {
    "cc-cifar10": (
        "d2576381aa6a0bcd9201dd1aa13935bd17ba178256d212f037887f528e93b4f2",
        224,
        "0bfabd64be3b668dd49c41a99708062c103c54041487d4f7d83742c5be709c80",
        (6.942334709936404, 2.200170429305934, -0.19912196161749307, 20.800958021558472),
    ),
    "cc-cnn-one-conv": (
        "75a9a5cb37f5cc1bab24dc78c44cef111170d8acb2b070ded74021b7d7176a74",
        21,
        "c76dc8f242b2fc4c019c8a371a9f3edd0e6ad311fc41de4f7c60b0e131796c31",
        (5.121224159025587, 2.2002722110615904, -0.5862846201052889, 14.957829249207862),
    ),
    "cc-cnn-three-convs": (
        "507ecaf126e215c82eab5cbb743defab9200beb6c59bb390dbf8fbc6346e15ed",
        33,
        "f3e713eb729f63414914929860f2a2c8235649459f86743d244abda9461fd14a",
        (0.811518299450654, 2.200491004253124, 0.6692987520955285, 14.881015815016326),
    ),
    "cc-digits": (
        "4132392c09c3e2757b63d9357f4d737412ef9b15e8ce95414012afb4a20ec30e",
        22,
        "b88399f3f845c3539c3b7c8b911598a5771e9f408948ac9783758e600839a776",
        (4.396916174679063, 2.2002972347127425, 2.8786900421837345, 15.334578028065152),
    ),
    "cc-fashion-mnist": (
        "4dcda1b50931a6d0b4483cf8c8cb803acd91c3c549d938a66734b02974cf9564",
        33,
        "e3cb12a809903503cc0a42a1531553d187f65ebd6ac5130c87a7a951ba6016ca",
        (3.5272627664962783, 2.2001856559937023, 0.2157619500067085, 15.291168791474774),
    ),
    "cc-imagenet-dogs": (
        "b9e3a5ef58f54220ddc0e79f8056a3da348ca1b332596e67c7e1e5244d0f7362",
        224,
        "66b4b40fbeb0039eddea3d543f03165304a30e5df8456ee26e228d80934cc7a4",
        (6.94233479189279, 2.13343732520941, -0.4121236524224514, 20.80095810351486),
    ),
    "cc-mnist": (
        "4dcda1b50931a6d0b4483cf8c8cb803acd91c3c549d938a66734b02974cf9564",
        33,
        "e3cb12a809903503cc0a42a1531553d187f65ebd6ac5130c87a7a951ba6016ca",
        (3.5272627664962783, 2.2001856559937023, 0.2157619500067085, 15.291168791474774),
    ),
    "cc-resnet18-cifar-stem": (
        "3747847640e4347823bf95b6d1cc61f9f394116f7ca554ac7afeb8fc01c64bb1",
        128,
        "842f6e4ea2582070537d827a94036cde6b68108c5f262a6963daf2a70e75831c",
        (2.634398546011653, 2.200197640889624, 0.6820195215404965, 20.933579274860676),
    ),
    "cc-resnet18-imagenet": (
        "1358306eb01722a8238d04b354b1ad5a89fbcbe72c3142cb531ebf115ba60652",
        128,
        "b395523005792505a2b29310f43de6158442fd2e05ae10469213b4a1c887ff5f",
        (4.3495065459865145, 2.200156299801424, 1.037397842563223, 21.774804131302517),
    ),
    "cc-resnet34-cifar-stem": (
        "e098b31d1532d637c0d1aa3d467b4b74ba4fe12e05344580e12344e604783556",
        224,
        "9e94a59d887cca8f292ed63813b0df77a5d8bd9954b812b9a0722fde77251136",
        (0.8912317045032978, 2.2000777032102983, 1.6670738346874714, 21.217183786444366),
    ),
    "cc-smoke": (
        "e00e179f7a65e6942b5c7cfea522a4a64120a4fccd32005e6b5c60635a87abca",
        15,
        "afeda39938a8422aa5519a32c8e2809ec3b72c769ef704dbd70cf189130fd9f8",
        (0.8512800699099898, 2.2029460061693964, -1.4739963123574853, 8.590757175348699),
    ),
    "cc-usps": (
        "7e07d54595229301dee476a2599a80d084ea68df53ba0e5a3c0c25da8c0c84dc",
        33,
        "133cd2647234c1db572d81a058c79663aa7c620b5bb42b4c84f1cd54cf5f1c44",
        (0.3395773402880877, 2.2001371704085426, 1.3626760069746524, 15.651787352981046),
    ),
    "hadis-cifar10": (
        "1b87e63fbb00a963886abdb75daeef02dc405b84fe56fcd49a2755ca15fb6d2f",
        267,
        "d294f1bbbe36afa027296f5d66826cf88bbb96a21ce66100043d7028abdd5e19",
        (-3.476169900612149, 2.123583934502996, -1.7950019394556875, 33.0224916932566),
    ),
    "hadis-digits": (
        "08a5baea2e9d01f5ac8b596e131c78194cb467d4c81c83b84500c70b85aa1939",
        55,
        "b07a189dd1369e7ff794cadd4c1dff4518026d8915dfdb69b371a0bb411e6c6a",
        (3.1706943955505267, 2.209707770571014, 1.7670229148352519, 17.652069608331658),
    ),
    "hadis-fashion-mnist": (
        "f9e1ddd476e504d2040a44ac01c0c71055674b22c25c1328bf0f7838920e30c9",
        63,
        "80e068978a4082e0046234531135c58bba7f90f6c6fd241061bc535adcc1e3b5",
        (-0.9212428107857704, 2.2295118461571835, -0.5609892718493938, 17.628429463133216),
    ),
    "hadis-mnist": (
        "f9e1ddd476e504d2040a44ac01c0c71055674b22c25c1328bf0f7838920e30c9",
        63,
        "80e068978a4082e0046234531135c58bba7f90f6c6fd241061bc535adcc1e3b5",
        (-0.9212428107857704, 2.2295118461571835, -0.5609892718493938, 17.628429463133216),
    ),
    "hadis-stl10": (
        "1b87e63fbb00a963886abdb75daeef02dc405b84fe56fcd49a2755ca15fb6d2f",
        267,
        "d294f1bbbe36afa027296f5d66826cf88bbb96a21ce66100043d7028abdd5e19",
        (-3.4020918809401337, 2.126220163968843, -1.7997862813354004, 33.09876377452747),
    ),
    "hadis-usps": (
        "f9e1ddd476e504d2040a44ac01c0c71055674b22c25c1328bf0f7838920e30c9",
        63,
        "80e068978a4082e0046234531135c58bba7f90f6c6fd241061bc535adcc1e3b5",
        (-0.9936309338081628, 2.2261963981048027, -0.600812065647915, 17.587168405530974),
    ),
    "propos-auto-digits": (
        "08a5baea2e9d01f5ac8b596e131c78194cb467d4c81c83b84500c70b85aa1939",
        55,
        "b07a189dd1369e7ff794cadd4c1dff4518026d8915dfdb69b371a0bb411e6c6a",
        (3.1706943955505267, 2.209707770571014, 1.7670229148352519, 17.652069608331658),
    ),
    "propos-auto-usps": (
        "f9e1ddd476e504d2040a44ac01c0c71055674b22c25c1328bf0f7838920e30c9",
        63,
        "80e068978a4082e0046234531135c58bba7f90f6c6fd241061bc535adcc1e3b5",
        (-0.9936309338081628, 2.2261963981048027, -0.600812065647915, 17.587168405530974),
    ),
    "propos-cifar10": (
        "1b87e63fbb00a963886abdb75daeef02dc405b84fe56fcd49a2755ca15fb6d2f",
        267,
        "d294f1bbbe36afa027296f5d66826cf88bbb96a21ce66100043d7028abdd5e19",
        (-3.476169900612149, 2.123583934502996, -1.7950019394556875, 33.0224916932566),
    ),
    "propos-digits": (
        "08a5baea2e9d01f5ac8b596e131c78194cb467d4c81c83b84500c70b85aa1939",
        55,
        "b07a189dd1369e7ff794cadd4c1dff4518026d8915dfdb69b371a0bb411e6c6a",
        (3.1706943955505267, 2.209707770571014, 1.7670229148352519, 17.652069608331658),
    ),
    "propos-fashion-mnist": (
        "f9e1ddd476e504d2040a44ac01c0c71055674b22c25c1328bf0f7838920e30c9",
        63,
        "80e068978a4082e0046234531135c58bba7f90f6c6fd241061bc535adcc1e3b5",
        (-0.9212428107857704, 2.2295118461571835, -0.5609892718493938, 17.628429463133216),
    ),
    "propos-mnist": (
        "f9e1ddd476e504d2040a44ac01c0c71055674b22c25c1328bf0f7838920e30c9",
        63,
        "80e068978a4082e0046234531135c58bba7f90f6c6fd241061bc535adcc1e3b5",
        (-0.9212428107857704, 2.2295118461571835, -0.5609892718493938, 17.628429463133216),
    ),
    "propos-stl10": (
        "1b87e63fbb00a963886abdb75daeef02dc405b84fe56fcd49a2755ca15fb6d2f",
        267,
        "d294f1bbbe36afa027296f5d66826cf88bbb96a21ce66100043d7028abdd5e19",
        (-3.4020918809401337, 2.126220163968843, -1.7997862813354004, 33.09876377452747),
    ),
    "propos-usps": (
        "f9e1ddd476e504d2040a44ac01c0c71055674b22c25c1328bf0f7838920e30c9",
        63,
        "80e068978a4082e0046234531135c58bba7f90f6c6fd241061bc535adcc1e3b5",
        (-0.9936309338081628, 2.2261963981048027, -0.600812065647915, 17.587168405530974),
    ),
    "ruc-cifar10": (
        "c3ab07c5c8f39b8b72b1ad5504635c46cdfcca835e1fef5d2ba09901219132ee",
        130,
        "499da37457cf19632c63cfcca151bd02f2ce4ab573d9d7bff128db78147116db",
        (12.607433612185105, 2.3440274316941756, 0.09675303888116105, 31.825398264645173),
    ),
    "ruc-cifar20": (
        "31ab49b49a72ffd478f596ad4995f055a7a5b13fb228879c78e92def50926f97",
        130,
        "9bfd226f49ecb4c7010fc03c453d5293f8deb3f7582d5db87e9955fa5c167eb1",
        (12.63442540513961, 2.370530688097557, 0.44199266978148444, 32.70799349174513),
    ),
    "ruc-digits": (
        "202b4546448352cec14b4318fcb5ac055a83a937d502392106b2f6c4c0348e9d",
        28,
        "99c102ee741407b8b9680a5b283055dbf70f79d150902505206bc1326400632e",
        (6.944272800057661, 2.341056589795027, -3.6651559252059087, 18.836694544821512),
    ),
    "ruc-mnist": (
        "d5277533fd7b39c61ce8e91333aecee5107a736d82955a0fa21b29f94112970e",
        28,
        "99c102ee741407b8b9680a5b283055dbf70f79d150902505206bc1326400632e",
        (7.779140570055461, 2.522461183334753, -3.9909134870686103, 20.103909196186578),
    ),
    "ruc-stl10": (
        "c3ab07c5c8f39b8b72b1ad5504635c46cdfcca835e1fef5d2ba09901219132ee",
        130,
        "499da37457cf19632c63cfcca151bd02f2ce4ab573d9d7bff128db78147116db",
        (19.940107881154063, 2.922023253170984, 0.07428410538454955, 39.34303199529381),
    ),
    "ruc-usps": (
        "d5277533fd7b39c61ce8e91333aecee5107a736d82955a0fa21b29f94112970e",
        28,
        "99c102ee741407b8b9680a5b283055dbf70f79d150902505206bc1326400632e",
        (7.537128374548047, 2.4477836113222065, -3.938563792631612, 19.76632249132672),
    ),
    "scan-cifar10": (
        "c3ab07c5c8f39b8b72b1ad5504635c46cdfcca835e1fef5d2ba09901219132ee",
        130,
        "499da37457cf19632c63cfcca151bd02f2ce4ab573d9d7bff128db78147116db",
        (12.607433612185105, 2.3440274316941756, 0.09675303888116105, 31.825398264645173),
    ),
    "scan-cifar20": (
        "31ab49b49a72ffd478f596ad4995f055a7a5b13fb228879c78e92def50926f97",
        130,
        "9bfd226f49ecb4c7010fc03c453d5293f8deb3f7582d5db87e9955fa5c167eb1",
        (12.63442540513961, 2.370530688097557, 0.44199266978148444, 32.70799349174513),
    ),
    "scan-digits": (
        "202b4546448352cec14b4318fcb5ac055a83a937d502392106b2f6c4c0348e9d",
        28,
        "99c102ee741407b8b9680a5b283055dbf70f79d150902505206bc1326400632e",
        (6.944272800057661, 2.341056589795027, -3.6651559252059087, 18.836694544821512),
    ),
    "scan-mnist": (
        "d5277533fd7b39c61ce8e91333aecee5107a736d82955a0fa21b29f94112970e",
        28,
        "99c102ee741407b8b9680a5b283055dbf70f79d150902505206bc1326400632e",
        (7.779140570055461, 2.522461183334753, -3.9909134870686103, 20.103909196186578),
    ),
    "scan-pretrain-no-heads": (
        "6040324ad419d720cb82a8c75606ea9c5b3a6e4f2993a533cea395ec939e64f4",
        24,
        "30805beca7da8b068d5900192fc818177e5937c9961b229faf6a74ffde99897f",
        (6.06329702649964, 2.1164713380201334, -3.7150010414188728, 16.19937896047486),
    ),
    "scan-resnet18-width16": (
        "1fd5b95fdd6720c098af28e149dc657f1ea068fa0ce89f56c1f470aae15a5d64",
        130,
        "559aa6b65a15093160ee2b06b5c6450d9e72c36e3b65e16b31aefee1cd716934",
        (2.1654214633417723, 2.1562781983335526, 1.6613066550671647, 23.864919017334614),
    ),
    "scan-small_cnn-widths4": (
        "407cdb8715fd3cc86f8cad932643ff92a51c0812140d9e74ad0722eb8c80cb96",
        16,
        "88a9dfdccbef3f9f7945221f80e09e7531ac3bd77131796bd4a97b25f7f889c9",
        (0.7715100022614934, 5.51192454496898, 0.2918595756054856, 23.34520795062417),
    ),
    "scan-small_cnn-widths4-usps": (
        "407cdb8715fd3cc86f8cad932643ff92a51c0812140d9e74ad0722eb8c80cb96",
        16,
        "88a9dfdccbef3f9f7945221f80e09e7531ac3bd77131796bd4a97b25f7f889c9",
        (1.0231976629729616, 6.306625602420313, 0.6542206524609355, 24.536270793076255),
    ),
    "scan-small_cnn-widths8,16": (
        "a8381c1887cd7312189af9edd8a73d63f56a410a1f8448af3ca36f84e3f8a9db",
        22,
        "3bea0ee34ffe263994532977bf724bc41c8a01616291e3802d69726408a43a8a",
        (2.523430294386344, 3.7550946544550508, 3.7427327055775095, 22.761765866569476),
    ),
    "scan-stl10": (
        "c3ab07c5c8f39b8b72b1ad5504635c46cdfcca835e1fef5d2ba09901219132ee",
        130,
        "499da37457cf19632c63cfcca151bd02f2ce4ab573d9d7bff128db78147116db",
        (19.940107881154063, 2.922023253170984, 0.07428410538454955, 39.34303199529381),
    ),
    "scan-usps": (
        "d5277533fd7b39c61ce8e91333aecee5107a736d82955a0fa21b29f94112970e",
        28,
        "99c102ee741407b8b9680a5b283055dbf70f79d150902505206bc1326400632e",
        (7.537128374548047, 2.4477836113222065, -3.938563792631612, 19.76632249132672),
    ),
    "self-cc-fe-cifar10": (
        "aa5a0291d2c861ac89e8ae96b86990602fc4341bcf31d83efcaf272cf1e3cd38",
        126,
        "57d354609cb5b2f5a1670c98910ed5fcab208bc5444b8bbbe00b1a4845ee8ac7",
        (12.597311374458059, 2.3143661440402212, 0.2800538935193799, 30.896492103307082),
    ),
    "self-cc-fe-stl10": (
        "aa5a0291d2c861ac89e8ae96b86990602fc4341bcf31d83efcaf272cf1e3cd38",
        126,
        "57d354609cb5b2f5a1670c98910ed5fcab208bc5444b8bbbe00b1a4845ee8ac7",
        (19.94373283168966, 2.8844185337696557, 0.2327319931330294, 38.2783367422569),
    ),
    "self-cc-rtds-cifar10-classifier1": (
        "9ad962d48c9483b422652d8f908715a1c87deaa8996be70b4b6ea72159dab59d",
        124,
        "4e0d74b3b7737d96ec81c224a9820e1d5b205853841048bfc7089efb6e0cf1e6",
        (0.006355155259370804, 0.013495781371789424, 0.05250931158661842, 0.48027029260993004),
    ),
    "self-cc-rtds-cifar10-classifier2": (
        "656cf271b324fd45f4238ca002794e60207bcfc8833b443df6da00509f7cc498",
        124,
        "27069ecf61487519258a4d4a3d9605252863f41d04c5f003671657f8fd266ec2",
        (-0.08607742376625538, 0.036458515634228486, 0.0489583071321249, 0.7555090542882681),
    ),
    "self-cc-rtds-stl10-classifier1": (
        "9ad962d48c9483b422652d8f908715a1c87deaa8996be70b4b6ea72159dab59d",
        124,
        "4e0d74b3b7737d96ec81c224a9820e1d5b205853841048bfc7089efb6e0cf1e6",
        (-0.03401235304772854, 0.014605550002882283, 0.0425924826413393, 0.4852722566574812),
    ),
    "self-cc-rtds-stl10-classifier2": (
        "656cf271b324fd45f4238ca002794e60207bcfc8833b443df6da00509f7cc498",
        124,
        "27069ecf61487519258a4d4a3d9605252863f41d04c5f003671657f8fd266ec2",
        (-0.04950927942991257, 0.03998833441239805, 0.06703784316778183, 0.7888389304280281),
    ),
    "self-cc-rtds-width16": (
        "a78eb82ae8e4a674ab1eb99724c257f982484d2481d4ecb53aa6712a338c7d7c",
        124,
        "1efcf35c043f44fea9d13dbda7b2ad197eb76cc1956b18f2dc237a36a5a4e35d",
        (-0.3800550876185298, 0.0171838433935384, -0.13057236652821302, 0.5292208669707179),
    ),
    "uldc-cifar10": (
        "d2576381aa6a0bcd9201dd1aa13935bd17ba178256d212f037887f528e93b4f2",
        224,
        "0bfabd64be3b668dd49c41a99708062c103c54041487d4f7d83742c5be709c80",
        (6.942334709936404, 2.200170429305934, -0.19912196161749307, 20.800958021558472),
    ),
    "uldc-digits": (
        "4132392c09c3e2757b63d9357f4d737412ef9b15e8ce95414012afb4a20ec30e",
        22,
        "b88399f3f845c3539c3b7c8b911598a5771e9f408948ac9783758e600839a776",
        (4.396916174679063, 2.2002972347127425, 2.8786900421837345, 15.334578028065152),
    ),
    "uldc-fashion-mnist": (
        "4dcda1b50931a6d0b4483cf8c8cb803acd91c3c549d938a66734b02974cf9564",
        33,
        "e3cb12a809903503cc0a42a1531553d187f65ebd6ac5130c87a7a951ba6016ca",
        (3.5272627664962783, 2.2001856559937023, 0.2157619500067085, 15.291168791474774),
    ),
    "uldc-imagenet-dogs": (
        "b9e3a5ef58f54220ddc0e79f8056a3da348ca1b332596e67c7e1e5244d0f7362",
        224,
        "66b4b40fbeb0039eddea3d543f03165304a30e5df8456ee26e228d80934cc7a4",
        (6.94233479189279, 2.13343732520941, -0.4121236524224514, 20.80095810351486),
    ),
    "uldc-mnist": (
        "4dcda1b50931a6d0b4483cf8c8cb803acd91c3c549d938a66734b02974cf9564",
        33,
        "e3cb12a809903503cc0a42a1531553d187f65ebd6ac5130c87a7a951ba6016ca",
        (3.5272627664962783, 2.2001856559937023, 0.2157619500067085, 15.291168791474774),
    ),
    "uldc-usps": (
        "7e07d54595229301dee476a2599a80d084ea68df53ba0e5a3c0c25da8c0c84dc",
        33,
        "133cd2647234c1db572d81a058c79663aa7c620b5bb42b4c84f1cd54cf5f1c44",
        (0.3395773402880877, 2.2001371704085426, 1.3626760069746524, 15.651787352981046),
    ),
}


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_backbone_variant_matches_the_pin(name: str) -> None:
    built = VARIANTS[name]()
    got = fingerprint(built)
    keys, n, weights, output = PINS[name]
    listing = [f"{k}:{list(v.shape)}" for k, v in built[0].state_dict().items()]
    assert (got[0], got[1]) == (keys, n), f"state-dict keys changed: {listing}"
    assert got[2] == weights, "initial parameters / buffers changed"
    tol = 1e-5 * (1.0 + output[3])  # float noise across CPUs is ~1e-7 of sum |x|
    assert got[3] == pytest.approx(output, rel=1e-5, abs=tol), "eval-mode output changed"


def test_every_variant_is_pinned() -> None:
    assert set(PINS) == set(VARIANTS)
