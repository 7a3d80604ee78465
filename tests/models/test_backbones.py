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


def fingerprint(built: Built) -> tuple[str, int, str, str]:
    """``(sha of keys+shapes, number of keys, sha of state bytes, sha of eval output)``."""
    model, x, forward = built
    state = model.state_dict()
    listing = "\n".join(f"{k}:{list(v.shape)}:{v.dtype}" for k, v in state.items())
    weights = hashlib.sha256()
    for v in state.values():
        weights.update(v.detach().contiguous().cpu().numpy().tobytes())
    model.eval()
    with torch.no_grad():
        out = torch.cat([t.detach().float().flatten() for t in forward(model, x)])
    return (
        hashlib.sha256(listing.encode()).hexdigest(),
        len(state),
        weights.hexdigest(),
        hashlib.sha256(out.numpy().tobytes()).hexdigest(),
    )


PINS: dict[str, tuple[str, int, str, str]] = {
    "cc-cifar10": (
        "d2576381aa6a0bcd9201dd1aa13935bd17ba178256d212f037887f528e93b4f2",
        224,
        "0bfabd64be3b668dd49c41a99708062c103c54041487d4f7d83742c5be709c80",
        "17505afb9fbdaa5c4c8872c629b04124f2dc90edc8c30e1893e37fa8aaaa354b",
    ),
    "cc-cnn-one-conv": (
        "75a9a5cb37f5cc1bab24dc78c44cef111170d8acb2b070ded74021b7d7176a74",
        21,
        "c76dc8f242b2fc4c019c8a371a9f3edd0e6ad311fc41de4f7c60b0e131796c31",
        "f370c6801ef3d0faf56f48241e099b7faecbaff3191b294bc6806b11133b9c84",
    ),
    "cc-cnn-three-convs": (
        "507ecaf126e215c82eab5cbb743defab9200beb6c59bb390dbf8fbc6346e15ed",
        33,
        "f3e713eb729f63414914929860f2a2c8235649459f86743d244abda9461fd14a",
        "5f864574efe84a0942435bc42191aa5311a0ceb85a28f4ffb903e986976280a9",
    ),
    "cc-digits": (
        "4132392c09c3e2757b63d9357f4d737412ef9b15e8ce95414012afb4a20ec30e",
        22,
        "b88399f3f845c3539c3b7c8b911598a5771e9f408948ac9783758e600839a776",
        "3d2bdc09e8d927e3e6ca2fa0d2ed254bcb8f1a74ffb5f7fd507f26720c114ab8",
    ),
    "cc-fashion-mnist": (
        "4dcda1b50931a6d0b4483cf8c8cb803acd91c3c549d938a66734b02974cf9564",
        33,
        "e3cb12a809903503cc0a42a1531553d187f65ebd6ac5130c87a7a951ba6016ca",
        "6ac1079d1006482f867d82ec4dc546dd4a56ed0f42517e3f62d525ced42b0925",
    ),
    "cc-imagenet-dogs": (
        "b9e3a5ef58f54220ddc0e79f8056a3da348ca1b332596e67c7e1e5244d0f7362",
        224,
        "66b4b40fbeb0039eddea3d543f03165304a30e5df8456ee26e228d80934cc7a4",
        "17231472539f468baa4ff2d167c2138d3d3589206a114b58289420fc40d13e6c",
    ),
    "cc-mnist": (
        "4dcda1b50931a6d0b4483cf8c8cb803acd91c3c549d938a66734b02974cf9564",
        33,
        "e3cb12a809903503cc0a42a1531553d187f65ebd6ac5130c87a7a951ba6016ca",
        "6ac1079d1006482f867d82ec4dc546dd4a56ed0f42517e3f62d525ced42b0925",
    ),
    "cc-resnet18-cifar-stem": (
        "3747847640e4347823bf95b6d1cc61f9f394116f7ca554ac7afeb8fc01c64bb1",
        128,
        "842f6e4ea2582070537d827a94036cde6b68108c5f262a6963daf2a70e75831c",
        "08091808d63cdfd24adc15bb8c51af37a629e6aee2a23c0e26fa26413e46919d",
    ),
    "cc-resnet18-imagenet": (
        "1358306eb01722a8238d04b354b1ad5a89fbcbe72c3142cb531ebf115ba60652",
        128,
        "b395523005792505a2b29310f43de6158442fd2e05ae10469213b4a1c887ff5f",
        "d83d189ca14a2680807b7168c92dcffa2004e3c072db04a2e892a4fc43f97470",
    ),
    "cc-resnet34-cifar-stem": (
        "e098b31d1532d637c0d1aa3d467b4b74ba4fe12e05344580e12344e604783556",
        224,
        "9e94a59d887cca8f292ed63813b0df77a5d8bd9954b812b9a0722fde77251136",
        "9e217f05a1eae9afa4bdc0d2c9b8204e63df58aab288a7603f2d94e6c88324bb",
    ),
    "cc-smoke": (
        "e00e179f7a65e6942b5c7cfea522a4a64120a4fccd32005e6b5c60635a87abca",
        15,
        "afeda39938a8422aa5519a32c8e2809ec3b72c769ef704dbd70cf189130fd9f8",
        "f414810005249d2996a6afac02c0a6d46c066ba238eecc2f80a21a2614ea5c84",
    ),
    "cc-usps": (
        "7e07d54595229301dee476a2599a80d084ea68df53ba0e5a3c0c25da8c0c84dc",
        33,
        "133cd2647234c1db572d81a058c79663aa7c620b5bb42b4c84f1cd54cf5f1c44",
        "f1447a4bb0453936b51abb8067ea6cdc036f87c180a19a562e37ef1f8bcf0ea3",
    ),
    "hadis-cifar10": (
        "1b87e63fbb00a963886abdb75daeef02dc405b84fe56fcd49a2755ca15fb6d2f",
        267,
        "d294f1bbbe36afa027296f5d66826cf88bbb96a21ce66100043d7028abdd5e19",
        "df84d436c1bea7a65b141c22171b11bf938912e9c2ee041d15c1ff96e4b927a2",
    ),
    "hadis-digits": (
        "08a5baea2e9d01f5ac8b596e131c78194cb467d4c81c83b84500c70b85aa1939",
        55,
        "b07a189dd1369e7ff794cadd4c1dff4518026d8915dfdb69b371a0bb411e6c6a",
        "0259be4df3f9491015a7c811413840032954098ac15fe5806266776fabd19c9b",
    ),
    "hadis-fashion-mnist": (
        "f9e1ddd476e504d2040a44ac01c0c71055674b22c25c1328bf0f7838920e30c9",
        63,
        "80e068978a4082e0046234531135c58bba7f90f6c6fd241061bc535adcc1e3b5",
        "34f7882096751761984af1cd2dd5ca6d463e11c21693d3f07673afbcffb2c91d",
    ),
    "hadis-mnist": (
        "f9e1ddd476e504d2040a44ac01c0c71055674b22c25c1328bf0f7838920e30c9",
        63,
        "80e068978a4082e0046234531135c58bba7f90f6c6fd241061bc535adcc1e3b5",
        "34f7882096751761984af1cd2dd5ca6d463e11c21693d3f07673afbcffb2c91d",
    ),
    "hadis-stl10": (
        "1b87e63fbb00a963886abdb75daeef02dc405b84fe56fcd49a2755ca15fb6d2f",
        267,
        "d294f1bbbe36afa027296f5d66826cf88bbb96a21ce66100043d7028abdd5e19",
        "8783deb7dd18421086885b4f3f052b3b8e5b06e86c214629ca5a302d113e437b",
    ),
    "hadis-usps": (
        "f9e1ddd476e504d2040a44ac01c0c71055674b22c25c1328bf0f7838920e30c9",
        63,
        "80e068978a4082e0046234531135c58bba7f90f6c6fd241061bc535adcc1e3b5",
        "bcb5908149e986a1135042b55a9ace1ba548933e3450e45d7dc1599b4b193484",
    ),
    "propos-auto-digits": (
        "08a5baea2e9d01f5ac8b596e131c78194cb467d4c81c83b84500c70b85aa1939",
        55,
        "b07a189dd1369e7ff794cadd4c1dff4518026d8915dfdb69b371a0bb411e6c6a",
        "0259be4df3f9491015a7c811413840032954098ac15fe5806266776fabd19c9b",
    ),
    "propos-auto-usps": (
        "f9e1ddd476e504d2040a44ac01c0c71055674b22c25c1328bf0f7838920e30c9",
        63,
        "80e068978a4082e0046234531135c58bba7f90f6c6fd241061bc535adcc1e3b5",
        "bcb5908149e986a1135042b55a9ace1ba548933e3450e45d7dc1599b4b193484",
    ),
    "propos-cifar10": (
        "1b87e63fbb00a963886abdb75daeef02dc405b84fe56fcd49a2755ca15fb6d2f",
        267,
        "d294f1bbbe36afa027296f5d66826cf88bbb96a21ce66100043d7028abdd5e19",
        "df84d436c1bea7a65b141c22171b11bf938912e9c2ee041d15c1ff96e4b927a2",
    ),
    "propos-digits": (
        "08a5baea2e9d01f5ac8b596e131c78194cb467d4c81c83b84500c70b85aa1939",
        55,
        "b07a189dd1369e7ff794cadd4c1dff4518026d8915dfdb69b371a0bb411e6c6a",
        "0259be4df3f9491015a7c811413840032954098ac15fe5806266776fabd19c9b",
    ),
    "propos-fashion-mnist": (
        "f9e1ddd476e504d2040a44ac01c0c71055674b22c25c1328bf0f7838920e30c9",
        63,
        "80e068978a4082e0046234531135c58bba7f90f6c6fd241061bc535adcc1e3b5",
        "34f7882096751761984af1cd2dd5ca6d463e11c21693d3f07673afbcffb2c91d",
    ),
    "propos-mnist": (
        "f9e1ddd476e504d2040a44ac01c0c71055674b22c25c1328bf0f7838920e30c9",
        63,
        "80e068978a4082e0046234531135c58bba7f90f6c6fd241061bc535adcc1e3b5",
        "34f7882096751761984af1cd2dd5ca6d463e11c21693d3f07673afbcffb2c91d",
    ),
    "propos-stl10": (
        "1b87e63fbb00a963886abdb75daeef02dc405b84fe56fcd49a2755ca15fb6d2f",
        267,
        "d294f1bbbe36afa027296f5d66826cf88bbb96a21ce66100043d7028abdd5e19",
        "8783deb7dd18421086885b4f3f052b3b8e5b06e86c214629ca5a302d113e437b",
    ),
    "propos-usps": (
        "f9e1ddd476e504d2040a44ac01c0c71055674b22c25c1328bf0f7838920e30c9",
        63,
        "80e068978a4082e0046234531135c58bba7f90f6c6fd241061bc535adcc1e3b5",
        "bcb5908149e986a1135042b55a9ace1ba548933e3450e45d7dc1599b4b193484",
    ),
    "ruc-cifar10": (
        "c3ab07c5c8f39b8b72b1ad5504635c46cdfcca835e1fef5d2ba09901219132ee",
        130,
        "499da37457cf19632c63cfcca151bd02f2ce4ab573d9d7bff128db78147116db",
        "4aa1a04ff21cf5740523d79f74501242632e6dc6cc6b80ee9ee8feb59be1bd87",
    ),
    "ruc-cifar20": (
        "31ab49b49a72ffd478f596ad4995f055a7a5b13fb228879c78e92def50926f97",
        130,
        "9bfd226f49ecb4c7010fc03c453d5293f8deb3f7582d5db87e9955fa5c167eb1",
        "4697ef2e33159173091ea6d985a49a48b51372fa35f0b303e0f68bb869368104",
    ),
    "ruc-digits": (
        "202b4546448352cec14b4318fcb5ac055a83a937d502392106b2f6c4c0348e9d",
        28,
        "99c102ee741407b8b9680a5b283055dbf70f79d150902505206bc1326400632e",
        "4aa71f1861756233b532c85e0f1efabb84d306e4beee89655cee789cb6111661",
    ),
    "ruc-mnist": (
        "d5277533fd7b39c61ce8e91333aecee5107a736d82955a0fa21b29f94112970e",
        28,
        "99c102ee741407b8b9680a5b283055dbf70f79d150902505206bc1326400632e",
        "d946be3ad366abcfbe378404b4da4a7f6ee5f27b24ea15542d38529dedb0de8b",
    ),
    "ruc-stl10": (
        "c3ab07c5c8f39b8b72b1ad5504635c46cdfcca835e1fef5d2ba09901219132ee",
        130,
        "499da37457cf19632c63cfcca151bd02f2ce4ab573d9d7bff128db78147116db",
        "a6d70dcae5f6e132ffc3c9b17bfb314b673d0335a504e8211ca44d3dc02f9c68",
    ),
    "ruc-usps": (
        "d5277533fd7b39c61ce8e91333aecee5107a736d82955a0fa21b29f94112970e",
        28,
        "99c102ee741407b8b9680a5b283055dbf70f79d150902505206bc1326400632e",
        "d58a55041c90cb5e5347ab2ae63b22135bbb09deb10394c6fe672fd523249d0c",
    ),
    "scan-cifar10": (
        "c3ab07c5c8f39b8b72b1ad5504635c46cdfcca835e1fef5d2ba09901219132ee",
        130,
        "499da37457cf19632c63cfcca151bd02f2ce4ab573d9d7bff128db78147116db",
        "4aa1a04ff21cf5740523d79f74501242632e6dc6cc6b80ee9ee8feb59be1bd87",
    ),
    "scan-cifar20": (
        "31ab49b49a72ffd478f596ad4995f055a7a5b13fb228879c78e92def50926f97",
        130,
        "9bfd226f49ecb4c7010fc03c453d5293f8deb3f7582d5db87e9955fa5c167eb1",
        "4697ef2e33159173091ea6d985a49a48b51372fa35f0b303e0f68bb869368104",
    ),
    "scan-digits": (
        "202b4546448352cec14b4318fcb5ac055a83a937d502392106b2f6c4c0348e9d",
        28,
        "99c102ee741407b8b9680a5b283055dbf70f79d150902505206bc1326400632e",
        "4aa71f1861756233b532c85e0f1efabb84d306e4beee89655cee789cb6111661",
    ),
    "scan-mnist": (
        "d5277533fd7b39c61ce8e91333aecee5107a736d82955a0fa21b29f94112970e",
        28,
        "99c102ee741407b8b9680a5b283055dbf70f79d150902505206bc1326400632e",
        "d946be3ad366abcfbe378404b4da4a7f6ee5f27b24ea15542d38529dedb0de8b",
    ),
    "scan-pretrain-no-heads": (
        "6040324ad419d720cb82a8c75606ea9c5b3a6e4f2993a533cea395ec939e64f4",
        24,
        "30805beca7da8b068d5900192fc818177e5937c9961b229faf6a74ffde99897f",
        "9a80e55d06a2b4d6b2159429b67fd6107f40771eccd24c331469e6d0f204c722",
    ),
    "scan-resnet18-width16": (
        "1fd5b95fdd6720c098af28e149dc657f1ea068fa0ce89f56c1f470aae15a5d64",
        130,
        "559aa6b65a15093160ee2b06b5c6450d9e72c36e3b65e16b31aefee1cd716934",
        "f8762bb4462bbfac0a6d450ad93e20202498f3a901e5052371c98a59d76eeb48",
    ),
    "scan-small_cnn-widths4": (
        "407cdb8715fd3cc86f8cad932643ff92a51c0812140d9e74ad0722eb8c80cb96",
        16,
        "88a9dfdccbef3f9f7945221f80e09e7531ac3bd77131796bd4a97b25f7f889c9",
        "4b0e77040d211cbc0a52f6f9105f3f095c6e24ead551d771646ad63a05bb733b",
    ),
    "scan-small_cnn-widths4-usps": (
        "407cdb8715fd3cc86f8cad932643ff92a51c0812140d9e74ad0722eb8c80cb96",
        16,
        "88a9dfdccbef3f9f7945221f80e09e7531ac3bd77131796bd4a97b25f7f889c9",
        "fc6f18941dcba1f127a94cc4928153b6ba3a76fae3059782151a4e0c9085746b",
    ),
    "scan-small_cnn-widths8,16": (
        "a8381c1887cd7312189af9edd8a73d63f56a410a1f8448af3ca36f84e3f8a9db",
        22,
        "3bea0ee34ffe263994532977bf724bc41c8a01616291e3802d69726408a43a8a",
        "c21978130030309ecea63be0bf104b92d7f438bfd2dd9e00a7a4ff25c42fb476",
    ),
    "scan-stl10": (
        "c3ab07c5c8f39b8b72b1ad5504635c46cdfcca835e1fef5d2ba09901219132ee",
        130,
        "499da37457cf19632c63cfcca151bd02f2ce4ab573d9d7bff128db78147116db",
        "a6d70dcae5f6e132ffc3c9b17bfb314b673d0335a504e8211ca44d3dc02f9c68",
    ),
    "scan-usps": (
        "d5277533fd7b39c61ce8e91333aecee5107a736d82955a0fa21b29f94112970e",
        28,
        "99c102ee741407b8b9680a5b283055dbf70f79d150902505206bc1326400632e",
        "d58a55041c90cb5e5347ab2ae63b22135bbb09deb10394c6fe672fd523249d0c",
    ),
    "self-cc-fe-cifar10": (
        "aa5a0291d2c861ac89e8ae96b86990602fc4341bcf31d83efcaf272cf1e3cd38",
        126,
        "57d354609cb5b2f5a1670c98910ed5fcab208bc5444b8bbbe00b1a4845ee8ac7",
        "846fa8bfc683ab296d020c4a1ac45a501aff336e9d26f53ef607bdb5be6df8b7",
    ),
    "self-cc-fe-stl10": (
        "aa5a0291d2c861ac89e8ae96b86990602fc4341bcf31d83efcaf272cf1e3cd38",
        126,
        "57d354609cb5b2f5a1670c98910ed5fcab208bc5444b8bbbe00b1a4845ee8ac7",
        "f48c37ba7137cb11f3f1f98c663199bdbc54a77b595d5b516139c52db93906c2",
    ),
    "self-cc-rtds-cifar10-classifier1": (
        "9ad962d48c9483b422652d8f908715a1c87deaa8996be70b4b6ea72159dab59d",
        124,
        "4e0d74b3b7737d96ec81c224a9820e1d5b205853841048bfc7089efb6e0cf1e6",
        "d08fac4b7e4aaefa3e7b1d1ef9175357e4fd129b83ab300c13d75884670c07c8",
    ),
    "self-cc-rtds-cifar10-classifier2": (
        "656cf271b324fd45f4238ca002794e60207bcfc8833b443df6da00509f7cc498",
        124,
        "27069ecf61487519258a4d4a3d9605252863f41d04c5f003671657f8fd266ec2",
        "832f9dc067466790e92e5e4e64365e0c5e769004d98a6fb174ae5dd061fac96f",
    ),
    "self-cc-rtds-stl10-classifier1": (
        "9ad962d48c9483b422652d8f908715a1c87deaa8996be70b4b6ea72159dab59d",
        124,
        "4e0d74b3b7737d96ec81c224a9820e1d5b205853841048bfc7089efb6e0cf1e6",
        "df89c9bd62a5cd10cbb1ae2b838f5e2f5c483b08b0bba337da9b5626e21e709e",
    ),
    "self-cc-rtds-stl10-classifier2": (
        "656cf271b324fd45f4238ca002794e60207bcfc8833b443df6da00509f7cc498",
        124,
        "27069ecf61487519258a4d4a3d9605252863f41d04c5f003671657f8fd266ec2",
        "400680b3bd9706795c4a0451a3ea81d399d2f3e9da5e0be9f8be462fcef5728a",
    ),
    "self-cc-rtds-width16": (
        "a78eb82ae8e4a674ab1eb99724c257f982484d2481d4ecb53aa6712a338c7d7c",
        124,
        "1efcf35c043f44fea9d13dbda7b2ad197eb76cc1956b18f2dc237a36a5a4e35d",
        "bf3e8bba12a5bb5dff2f60dee01dc9f7f1ff5fe26902c2cf8e30fa3126abae20",
    ),
    "uldc-cifar10": (
        "d2576381aa6a0bcd9201dd1aa13935bd17ba178256d212f037887f528e93b4f2",
        224,
        "0bfabd64be3b668dd49c41a99708062c103c54041487d4f7d83742c5be709c80",
        "17505afb9fbdaa5c4c8872c629b04124f2dc90edc8c30e1893e37fa8aaaa354b",
    ),
    "uldc-digits": (
        "4132392c09c3e2757b63d9357f4d737412ef9b15e8ce95414012afb4a20ec30e",
        22,
        "b88399f3f845c3539c3b7c8b911598a5771e9f408948ac9783758e600839a776",
        "3d2bdc09e8d927e3e6ca2fa0d2ed254bcb8f1a74ffb5f7fd507f26720c114ab8",
    ),
    "uldc-fashion-mnist": (
        "4dcda1b50931a6d0b4483cf8c8cb803acd91c3c549d938a66734b02974cf9564",
        33,
        "e3cb12a809903503cc0a42a1531553d187f65ebd6ac5130c87a7a951ba6016ca",
        "6ac1079d1006482f867d82ec4dc546dd4a56ed0f42517e3f62d525ced42b0925",
    ),
    "uldc-imagenet-dogs": (
        "b9e3a5ef58f54220ddc0e79f8056a3da348ca1b332596e67c7e1e5244d0f7362",
        224,
        "66b4b40fbeb0039eddea3d543f03165304a30e5df8456ee26e228d80934cc7a4",
        "17231472539f468baa4ff2d167c2138d3d3589206a114b58289420fc40d13e6c",
    ),
    "uldc-mnist": (
        "4dcda1b50931a6d0b4483cf8c8cb803acd91c3c549d938a66734b02974cf9564",
        33,
        "e3cb12a809903503cc0a42a1531553d187f65ebd6ac5130c87a7a951ba6016ca",
        "6ac1079d1006482f867d82ec4dc546dd4a56ed0f42517e3f62d525ced42b0925",
    ),
    "uldc-usps": (
        "7e07d54595229301dee476a2599a80d084ea68df53ba0e5a3c0c25da8c0c84dc",
        33,
        "133cd2647234c1db572d81a058c79663aa7c620b5bb42b4c84f1cd54cf5f1c44",
        "f1447a4bb0453936b51abb8067ea6cdc036f87c180a19a562e37ef1f8bcf0ea3",
    ),
}


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_backbone_variant_is_bit_identical_to_the_pin(name: str) -> None:
    built = VARIANTS[name]()
    got = fingerprint(built)
    keys, n, weights, output = PINS[name]
    listing = [f"{k}:{list(v.shape)}" for k, v in built[0].state_dict().items()]
    assert (got[0], got[1]) == (keys, n), f"state-dict keys changed: {listing}"
    assert got[2] == weights, "initial parameters / buffers changed"
    assert got[3] == output, "eval-mode output changed"


def test_every_variant_is_pinned() -> None:
    assert set(PINS) == set(VARIANTS)
