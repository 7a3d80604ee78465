"""Fixed-recipe views of CC / ULDC, ProPos / HaDis and ASPC-DA / Self-CC over the shared primitives.

* :class:`CCView`: CC (Li et al., AAAI 2021, section 4.2) and C3 / ULDC draw each view with random
  resized crop, horizontal flip, colour jitter (brightness, contrast, saturation ``0.8 s``, hue
  ``0.2 s``, p 0.8), grey-scale (p 0.2) and, for ImageNet-Dogs, Gaussian blur; for grey digits the
  specs (docs/specs/uldc.md §5) suggest a small affine (rotation, shift, zoom) plus pixel noise
  instead.
* :func:`affine_view`, :func:`simclr_view`: ProPos / HaDis (docs/specs/hadis.md §4.1
  and §5): the CPU-scale affine (rotation, shift, isotropic scale, pixel noise) and the papers'
  SimCLR views (crop area 0.08-1, flip, jitter 0.4 p 0.8, grey p 0.2; hue is left out).
* :class:`RandomAffine`: Keras' ``ImageDataGenerator`` of ASPC-DA (Guo et al., TKDE 2019,
  "data augmentation"): rotation ``U(-r, r)`` degrees and shifts ``U(-s, s)`` of the side, filled
  from the nearest edge pixel; also Self-CC's views of the selected samples.

Each recipe keeps its own order and arithmetic of draws (they define the recorded runs); the warp,
crop box, colour, blur, noise and stroke operations are the shared ones.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from dcflow.transforms import colour
from dcflow.transforms.blur import gaussian_blur
from dcflow.transforms.noise import add_noise
from dcflow.transforms.sample import coin, crop_box, per_image, uniform
from dcflow.transforms.stroke import stroke_blend
from dcflow.transforms.warp import Mode, Padding, affine_matrices, warp


@dataclass(frozen=True)
class CCView:
    """One random CC / ULDC view of a batch; the fields mirror the method's ``augment`` section.

    Attributes:
        size: output side length (``None``: keep the input size).
        crop_area: random resized crop area range (fraction of the image), ``None`` disables it.
        aspect: crop aspect-ratio range (log-uniform).
        rotation: maximum absolute rotation in degrees.
        shift: maximum shift as a fraction of the side (without a crop).
        zoom: zoom factor range (>1 enlarges; without a crop).
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
        """``[n, 2, 3]`` sampling matrices ``R(theta) diag(sx, sy)`` (output -> input)."""
        if self.crop_area is not None:
            sx, sy, tx, ty = crop_box(n, self.crop_area, self.aspect, gen, device)
        else:
            sx = sy = 1.0 / uniform(n, *self.zoom, gen, device)
            tx = uniform(n, -1, 1, gen, device) * 2 * self.shift
            ty = uniform(n, -1, 1, gen, device) * 2 * self.shift
        flip = torch.where(coin(n, self.hflip, gen, device), -1.0, 1.0)
        theta = uniform(n, -1, 1, gen, device) * math.radians(self.rotation)
        return affine_matrices(tx, ty, theta=theta, cols=(sx, sy), flip=flip)

    def colour(self, x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        """Colour jitter (clamped after every part) then random grey-scale on RGB ``x``."""
        n, dev, s = x.shape[0], x.device, self.jitter
        if s > 0:
            on = per_image(coin(n, self.jitter_p, gen, dev))
            lo, hi = max(0.0, 1 - 0.8 * s), 1 + 0.8 * s
            b, c, sat = (per_image(uniform(n, lo, hi, gen, dev)) for _ in range(3))
            angle = uniform(n, -0.2 * s, 0.2 * s, gen, dev) * 2 * math.pi
            x = colour.jitter(x, on, (b, c, sat), angle, clamp_each=True)
        if self.grayscale_p > 0:
            x = colour.random_grey(x, per_image(coin(n, self.grayscale_p, gen, dev)))
        return x

    def __call__(self, x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        """A random view of ``x`` (``[B, C, H, W]`` in ``[0, 1]``) -> ``[B, C, size, size]``."""
        n, c, h, w = x.shape
        size = (self.size or h, self.size or w)
        pad: Padding = "reflection" if self.crop_area is not None else "zeros"
        out = warp(x, self.geometry(n, gen, x.device), size, padding=pad)
        if c == 3:
            out = self.colour(out, gen)
        if self.blur_p > 0:
            kernel = min(self.blur_kernel, 2 * ((min(size) - 1) // 2) - 1)  # reflect-pad limit
            blurred = gaussian_blur(out, uniform(n, 0.1, 2.0, gen, x.device), max(kernel, 1))
            on = per_image(coin(n, self.blur_p, gen, x.device))
            out = torch.where(on, blurred, out)
        if self.noise > 0:
            out = add_noise(out, self.noise, gen)
        return out


def affine_view(
    x: torch.Tensor,
    gen: torch.Generator,
    rotation: float = 10.0,
    shift: float = 0.125,
    scale: float = 0.1,
    noise: float = 0.0,
) -> torch.Tensor:
    """ProPos' CPU-scale view: rotate, scale, shift ``x`` ``[B, C, H, W]`` (zero fill), noise."""
    b, dev = x.shape[0], x.device
    theta = uniform(b, -1.0, 1.0, gen, dev) * math.radians(rotation)
    inv = 1.0 / uniform(b, 1.0 - scale, 1.0 + scale, gen, dev)  # sampling grid shrinks to zoom in
    tx, ty = (uniform(b, -2.0 * shift, 2.0 * shift, gen, dev) for _ in range(2))
    out = warp(x, affine_matrices(tx, ty, theta=theta, cols=(inv, inv)))
    return add_noise(out, noise, gen) if noise > 0 else out


def simclr_view(
    x: torch.Tensor,
    gen: torch.Generator,
    crop_min: float = 0.08,
    jitter: float = 0.4,
    jitter_p: float = 0.8,
    grey_p: float = 0.2,
) -> torch.Tensor:
    """ProPos' paper view: random resized crop + h-flip + colour jitter + grey of ``x``."""
    b, dev, s = x.shape[0], x.device, jitter
    sw, sh, tx, ty = crop_box(b, (crop_min, 1.0), (3 / 4, 4 / 3), gen, dev)
    flip = torch.where(coin(b, 0.5, gen, dev), -1.0, 1.0)
    out = warp(x, affine_matrices(tx, ty, cols=(sw, sh), flip=flip))
    on = per_image(coin(b, jitter_p, gen, dev))
    fb, fc, fs = (per_image(uniform(b, 1.0 - s, 1.0 + s, gen, dev)) for _ in range(3))
    out = colour.jitter(out, on, (fb, fc, fs), clamp_each=True, mean_of=colour.luma)
    if x.shape[1] == 3:
        out = colour.random_grey(out, per_image(coin(b, grey_p, gen, dev)))
    return out


class RandomAffine:
    """Random rotation and translation of a batch ``[B, C, H, W]`` on its own device.

    Args:
        rotation: maximum absolute rotation in degrees.
        shift: maximum shift as a fraction of width/height.
        interpolation: ``bilinear`` or ``nearest`` resampling.
        stroke: maximum stroke-width jitter after the warp (:func:`stroke_blend`; 0 = off, and
            then no random number is drawn for it).
    """

    def __init__(
        self,
        rotation: float = 10.0,
        shift: float = 0.1,
        interpolation: Mode = "bilinear",
        stroke: float = 0.0,
    ) -> None:
        self.rotation = rotation
        self.shift = shift
        self.interpolation: Mode = interpolation
        self.stroke = stroke

    def matrices(self, n: int, gen: torch.Generator, device: torch.device) -> torch.Tensor:
        """Draw ``[n, 2, 3]`` affine matrices (rotation then translation, normalised coords)."""
        u = uniform((n, 3), -1.0, 1.0, gen, device)
        theta = u[:, 0] * math.radians(self.rotation)
        tx, ty = u[:, 1] * 2.0 * self.shift, u[:, 2] * 2.0 * self.shift
        return affine_matrices(tx, ty, theta=theta)

    def apply(self, x: torch.Tensor, mats: torch.Tensor) -> torch.Tensor:
        """Warp ``x`` ``[B, C, H, W]`` with given matrices ``[B, 2, 3]`` (edge fill)."""
        return warp(x, mats, mode=self.interpolation, padding="border")

    def __call__(self, x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        """A fresh random augmentation of every image in ``x``."""
        out = self.apply(x, self.matrices(x.shape[0], gen, x.device))
        if self.stroke > 0:
            out = stroke_blend(out, uniform(x.shape[0], -1.0, 1.0, gen) * self.stroke)
        return out
