"""Outlier exposure (Hendrycks et al., "Deep Anomaly Detection with Outlier Exposure") for the
IsoMax+ head, with synthetic outliers made from the training batch itself (issue 23).

The outliers must share nothing with any set a score is chosen or reported on
(training/ood_sets.py: inverted, pixel-shuffled and 2×2-mosaic images, i.i.d. Gaussian and
uniform noise, rendered letters; MNIST digits, geometric shapes). So there are no intensity
inversions, no pixel or patch permutations, no mosaics, no i.i.d. pixel noise, no glyphs or
hard-edged primitives here, only two families:

- heavy elastic warps: a training image resampled through a smooth random displacement field
  (a coarse grid of Gaussian offsets, bicubically upsampled) strong enough to tear the garment's
  outline apart while keeping its texture and grey levels;
- low-frequency noise fields: a coarse uniform grid, bicubically upsampled and pushed through a
  random soft threshold, giving smooth blobs and ridges at the garments' brightness scale.

The loss on outliers is the cross-entropy from the entropically scaled logits to the uniform
distribution, minus log K so that it is 0 at the optimum: it pushes an outlier's feature to be
equally far from every prototype, i.e. a high-entropy, low-MDS point.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from data import FASHION_MEAN, FASHION_STD
from isomax import ENTROPIC_SCALE

SIZE = 28


def _to_pixels(x: torch.Tensor) -> torch.Tensor:
    return x * FASHION_STD + FASHION_MEAN


def _to_input(px: torch.Tensor) -> torch.Tensor:
    return (px.clamp(0.0, 1.0) - FASHION_MEAN) / FASHION_STD


def elastic_warp(x: torch.Tensor, gen: torch.Generator, grid: int = 4, strength: float = 0.4) -> torch.Tensor:
    """Resample normalised images (N, 1, 28, 28) through a smooth random displacement field.

    `strength` is the std of the coarse offsets in grid_sample's [-1, 1] coordinates (0.4 ≈ 5.6
    pixels): far beyond the ±2-pixel translation of training augmentation, so the outline breaks."""
    n = x.shape[0]
    coarse = torch.randn(n, 2, grid, grid, generator=gen) * strength
    field = F.interpolate(coarse, size=(SIZE, SIZE), mode="bicubic", align_corners=True)
    identity = F.affine_grid(torch.eye(2, 3).expand(n, 2, 3), [n, 1, SIZE, SIZE], align_corners=False)
    warped = F.grid_sample(_to_pixels(x), identity + field.permute(0, 2, 3, 1), mode="bilinear",
                           padding_mode="zeros", align_corners=False)  # zeros = black background
    return _to_input(warped)


def smooth_noise(n: int, gen: torch.Generator) -> torch.Tensor:
    """n low-frequency noise fields (N, 1, 28, 28), normalised like the service's input."""
    out = torch.empty(n, 1, SIZE, SIZE)
    sizes = torch.randint(3, 8, (n,), generator=gen)
    for g in sizes.unique().tolist():
        idx = (sizes == g).nonzero(as_tuple=True)[0]
        coarse = torch.rand(len(idx), 1, g, g, generator=gen)
        out[idx] = F.interpolate(coarse, size=(SIZE, SIZE), mode="bicubic", align_corners=True)
    threshold = 0.2 + 0.5 * torch.rand(n, 1, 1, 1, generator=gen)
    gain = 1.0 + 4.0 * torch.rand(n, 1, 1, 1, generator=gen)
    peak = 0.5 + 0.5 * torch.rand(n, 1, 1, 1, generator=gen)
    return _to_input(peak * ((out - threshold) * gain).clamp(0.0, 1.0))


def synthetic_outliers(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """As many outliers as `x` has images: the first half elastic warps of them, the rest
    low-frequency noise fields."""
    n = x.shape[0]
    half = n // 2
    return torch.cat([elastic_warp(x[:half], gen), smooth_noise(n - half, gen)])


def uniform_loss(logits: torch.Tensor, entropic_scale: float = ENTROPIC_SCALE) -> torch.Tensor:
    """Mean cross-entropy from softmax(entropic_scale · logits) to the uniform distribution,
    minus log K: ≥ 0, and 0 exactly when every class is equally likely."""
    k = logits.shape[1]
    return -F.log_softmax(entropic_scale * logits, dim=1).mean(dim=1).mean() - math.log(k)
