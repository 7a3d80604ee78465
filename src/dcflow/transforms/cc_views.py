"""Batched, on-device augmentations for Contrastive Clustering / ULDC views.

CC (Li et al., AAAI 2021, Sec. 4.2) and C3 draw each view with random resized crop, horizontal
flip, colour jitter (brightness, contrast, saturation 0.8s, hue 0.2s, p 0.8), grayscale (p 0.2)
and, for ImageNet-Dogs, Gaussian blur. For grey digits the spec suggests a small affine (rotation,
shift, zoom) plus pixel noise instead. Everything here acts on a whole ``[B, C, H, W]`` batch:
crop/flip/rotation/zoom/resize are one ``affine_grid`` + ``grid_sample``; jitter, grayscale, blur
and noise are tensor arithmetic with per-sample random factors. Jitter applies its four parts in
a fixed order (torchvision shuffles the order per call).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

_LUMA = (0.299, 0.587, 0.114)


def _u(n: int, lo: float, hi: float, gen: torch.Generator, device: torch.device) -> torch.Tensor:
    return (torch.rand(n, generator=gen) * (hi - lo) + lo).to(device)


def gray(x: torch.Tensor) -> torch.Tensor:
    """Luma ``[B, 1, H, W]`` of an RGB batch ``[B, 3, H, W]`` (ITU-R 601 weights)."""
    w = torch.tensor(_LUMA, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    return (x * w).sum(1, keepdim=True)


def rotate_hue(x: torch.Tensor, turns: torch.Tensor) -> torch.Tensor:
    """Rotate the hue of ``[B, 3, H, W]`` by ``turns`` (``[B]``, fraction of a circle) in YIQ."""
    to_yiq = torch.tensor(
        [[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]],
        dtype=x.dtype,
        device=x.device,
    )
    yiq = torch.einsum("ij,bjhw->bihw", to_yiq, x)
    ang = turns * 2 * math.pi
    cos, sin = torch.cos(ang).view(-1, 1, 1), torch.sin(ang).view(-1, 1, 1)
    i, q = yiq[:, 1], yiq[:, 2]
    yiq = torch.stack([yiq[:, 0], cos * i - sin * q, sin * i + cos * q], dim=1)
    return torch.einsum("ij,bjhw->bihw", torch.linalg.inv(to_yiq), yiq)


def gaussian_blur(x: torch.Tensor, sigma: torch.Tensor, kernel: int) -> torch.Tensor:
    """Blur each image of ``[B, C, H, W]`` with its own ``sigma`` (``[B]``); separable."""
    b, c, h, w = x.shape
    r = torch.arange(kernel, dtype=x.dtype, device=x.device) - kernel // 2
    k = torch.exp(-(r[None] ** 2) / (2 * sigma[:, None].to(x.dtype) ** 2))
    k = (k / k.sum(1, keepdim=True)).repeat_interleave(c, 0)  # [B*C, kernel]
    flat = F.pad(x.reshape(1, b * c, h, w), [kernel // 2] * 4, mode="reflect")
    flat = F.conv2d(flat, k.view(b * c, 1, kernel, 1), groups=b * c)
    flat = F.conv2d(flat, k.view(b * c, 1, 1, kernel), groups=b * c)
    return flat.view(b, c, h, w)


@dataclass(frozen=True)
class ViewAugment:
    """One random view of a batch; the settings mirror the method config's ``augment`` section.

    Attributes:
        size: output side length (``None``: keep the input size).
        crop_area: random resized crop area range (fraction of the image), ``None`` disables it.
        aspect: crop aspect-ratio range (log-uniform).
        rotation: maximum absolute rotation in degrees.
        shift: maximum shift as a fraction of the side.
        zoom: zoom factor range (>1 enlarges).
        hflip: probability of a horizontal flip.
        jitter: colour jitter strength ``s`` (0 disables).
        jitter_p: probability of applying the jitter.
        grayscale_p: probability of converting to grey (RGB only).
        blur_p: probability of a Gaussian blur.
        blur_kernel: odd blur kernel size.
        noise: standard deviation of additive pixel noise.
    """

    size: int | None = None
    crop_area: tuple[float, float] | None = None
    aspect: tuple[float, float] = (3 / 4, 4 / 3)
    rotation: float = 0.0
    shift: float = 0.0
    zoom: tuple[float, float] = (1.0, 1.0)
    hflip: float = 0.0
    jitter: float = 0.0
    jitter_p: float = 0.8
    grayscale_p: float = 0.0
    blur_p: float = 0.0
    blur_kernel: int = 23
    noise: float = 0.0

    def geometry(self, n: int, gen: torch.Generator, device: torch.device) -> torch.Tensor:
        """``[n, 2, 3]`` sampling matrices (output -> input, normalised coordinates)."""
        if self.crop_area is not None:
            area = _u(n, *self.crop_area, gen, device)
            log_ratio = (math.log(self.aspect[0]), math.log(self.aspect[1]))
            ratio = torch.exp(_u(n, *log_ratio, gen, device))
            sx, sy = (area * ratio).sqrt().clamp(max=1.0), (area / ratio).sqrt().clamp(max=1.0)
            tx, ty = _u(n, -1, 1, gen, device) * (1 - sx), _u(n, -1, 1, gen, device) * (1 - sy)
        else:
            sx = sy = 1.0 / _u(n, *self.zoom, gen, device)
            tx = _u(n, -1, 1, gen, device) * 2 * self.shift
            ty = _u(n, -1, 1, gen, device) * 2 * self.shift
        flip = torch.where(_u(n, 0, 1, gen, device) < self.hflip, -1.0, 1.0)
        ang = _u(n, -1, 1, gen, device) * math.radians(self.rotation)
        cos, sin = torch.cos(ang), torch.sin(ang)
        row0 = torch.stack([cos * sx * flip, -sin * sy, tx], 1)
        row1 = torch.stack([sin * sx * flip, cos * sy, ty], 1)
        return torch.stack([row0, row1], 1)

    def colour(self, x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        """Colour jitter then random grayscale on ``[B, 3, H, W]`` in ``[0, 1]``."""
        n, dev, s = x.shape[0], x.device, self.jitter
        if s > 0:
            on = (_u(n, 0, 1, gen, dev) < self.jitter_p).view(-1, 1, 1, 1)
            b = _u(n, max(0.0, 1 - 0.8 * s), 1 + 0.8 * s, gen, dev).view(-1, 1, 1, 1)
            c = _u(n, max(0.0, 1 - 0.8 * s), 1 + 0.8 * s, gen, dev).view(-1, 1, 1, 1)
            sat = _u(n, max(0.0, 1 - 0.8 * s), 1 + 0.8 * s, gen, dev).view(-1, 1, 1, 1)
            hue = _u(n, -0.2 * s, 0.2 * s, gen, dev)
            y = (x * b).clamp(0, 1)
            y = (y - gray(y).mean((2, 3), keepdim=True)) * c + gray(y).mean((2, 3), keepdim=True)
            y = y.clamp(0, 1)
            y = ((y - gray(y)) * sat + gray(y)).clamp(0, 1)
            y = rotate_hue(y, hue).clamp(0, 1)
            x = torch.where(on, y, x)
        if self.grayscale_p > 0:
            g = (_u(n, 0, 1, gen, dev) < self.grayscale_p).view(-1, 1, 1, 1)
            x = torch.where(g, gray(x).expand_as(x), x)
        return x

    def __call__(self, x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        """A random view of ``x`` (``[B, C, H, W]`` in ``[0, 1]``) -> ``[B, C, size, size]``."""
        n, c, h, w = x.shape
        size = (self.size or h, self.size or w)
        grid = F.affine_grid(
            self.geometry(n, gen, x.device).to(x.dtype), [n, c, *size], align_corners=False
        )
        pad = "reflection" if self.crop_area is not None else "zeros"
        out = F.grid_sample(x, grid, mode="bilinear", padding_mode=pad, align_corners=False)
        if c == 3:
            out = self.colour(out, gen)
        if self.blur_p > 0:
            kernel = min(self.blur_kernel, 2 * ((min(size) - 1) // 2) - 1)  # reflect-pad limit
            blurred = gaussian_blur(out, _u(n, 0.1, 2.0, gen, x.device), max(kernel, 1))
            on = (_u(n, 0, 1, gen, x.device) < self.blur_p).view(-1, 1, 1, 1)
            out = torch.where(on, blurred, out)
        if self.noise > 0:
            eps = torch.randn(out.shape, generator=gen).to(out.device)
            out = (out + self.noise * eps).clamp(0, 1)
        return out


def resize(x: torch.Tensor, size: int | None) -> torch.Tensor:
    """Test-time view: bilinear resize of ``[B, C, H, W]`` to ``size`` (no-op when ``None``)."""
    if size is None or (x.shape[2] == size and x.shape[3] == size):
        return x
    return F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
