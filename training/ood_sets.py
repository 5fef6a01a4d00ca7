"""OOD image sets for training/posthoc.py, as uint8 (N, 28, 28) arrays.

Two families, kept apart on purpose:

- validation sets, to CHOOSE a score: made from the held-out training images alone (inverted,
  pixel-shuffled, 2×2 mosaics: publish.validation_ood_sets) plus Gaussian and uniform noise with
  validation-only seeds and rendered letters (no digits). Nothing here is ever reported.
- test sets, to REPORT once: the service's built-in OOD sets (src/tools/datasets/builtin.ts),
  reproduced image for image — the same mulberry32 generator, seeds and arithmetic — so these
  figures and `npm run evaluate -- --builtin-ood` describe the same images.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from data import FASHION_MEAN, FASHION_STD, gaussian_noise, load_mnist, uniform_noise

M32 = np.uint64(0xFFFFFFFF)
SIZE = 28
# Seeds of the service's built-in sets (src/tools/datasets/builtin.ts); reported, never chosen on.
SERVICE_SEEDS = {"gaussian-noise": 1234, "uniform-noise": 1235, "shapes": 1236, "pixel-shuffled-fashion-mnist": 5000}
FONT_DIR = Path("/usr/share/fonts/truetype/dejavu")
# Letters and a few symbols, no digits: the reported near-OOD set (MNIST) is digits, and the
# selection sets must not be a stand-in for it.
GLYPHS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz&@#%?$§¶"


# --- validation (selection) sets ------------------------------------------------------------

def render_glyphs(n: int, seed: int) -> np.ndarray:
    """n single letters or symbols, white on black, random DejaVu face, size, offset and
    rotation; PIL's built-in bitmap font when DejaVu is not installed."""
    from PIL import Image, ImageDraw, ImageFont

    rng = np.random.default_rng(seed)
    faces = sorted(FONT_DIR.glob("DejaVu*.ttf"))
    fonts: dict[tuple[int, int], object] = {}
    out = np.zeros((n, SIZE, SIZE), dtype=np.uint8)
    for i in range(n):
        ch = GLYPHS[rng.integers(len(GLYPHS))]
        size = int(rng.integers(16, 27))
        face = int(rng.integers(len(faces))) if faces else -1
        if (face, size) not in fonts:
            fonts[(face, size)] = ImageFont.truetype(str(faces[face]), size) if faces else ImageFont.load_default()
        font = fonts[(face, size)]
        canvas = Image.new("L", (2 * SIZE, 2 * SIZE), 0)
        draw = ImageDraw.Draw(canvas)
        box = draw.textbbox((0, 0), ch, font=font)
        x = SIZE - (box[0] + box[2]) / 2 + rng.uniform(-3, 3)
        y = SIZE - (box[1] + box[3]) / 2 + rng.uniform(-3, 3)
        draw.text((x, y), ch, fill=int(rng.integers(160, 256)), font=font)
        canvas = canvas.rotate(float(rng.uniform(-20, 20)), resample=Image.BILINEAR, center=(SIZE, SIZE))
        out[i] = np.asarray(canvas.crop((SIZE // 2, SIZE // 2, SIZE // 2 + SIZE, SIZE // 2 + SIZE)))
    return out


def validation_sets(val_images: np.ndarray, seed: int) -> dict[str, np.ndarray]:
    """The selection sets: transforms of the held-out training images, and synthetic images
    whose seeds (seed + 1, + 2, + 3) differ from every reported set's."""
    from publish import validation_ood_sets

    n = len(val_images)
    sets = validation_ood_sets(val_images, seed)
    sets["gaussian-noise"] = gaussian_noise(n, seed + 1)
    sets["uniform-noise"] = uniform_noise(n, seed + 2)
    sets["glyphs"] = render_glyphs(n, seed + 3)
    return sets


# --- the service's built-in sets, reproduced --------------------------------------------------

def mulberry32(seed: int, count: int, start: int = 0) -> np.ndarray:
    """Draws start … start+count−1 of builtin.ts's prng(seed), as float64 in [0, 1).

    mulberry32 is counter based: draw k depends only on seed + (k+1)·0x6d2b79f5 (mod 2³²), so
    the whole stream vectorises. JS's Math.imul is the low 32 bits of the product."""
    k = np.arange(start + 1, start + count + 1, dtype=np.uint64)
    a = (np.uint64(seed & 0xFFFFFFFF) + k * np.uint64(0x6D2B79F5)) & M32
    t = (((a ^ (a >> np.uint64(15))) * (a | np.uint64(1))) & M32)
    t = t ^ ((t + (((t ^ (t >> np.uint64(7))) * (t | np.uint64(61))) & M32)) & M32)
    return ((t ^ (t >> np.uint64(14))) & M32).astype(np.float64) / 4294967296.0


def _js_round(x: np.ndarray) -> np.ndarray:
    return np.floor(x + 0.5)  # Math.round: halves go up, unlike np.rint


def service_gaussian_noise(n: int = 10_000, seed: int = SERVICE_SEEDS["gaussian-noise"]) -> np.ndarray:
    r = mulberry32(seed, 2 * n * SIZE * SIZE).reshape(-1, 2)
    z = np.sqrt(-2 * np.log(1 - r[:, 0])) * np.cos(2 * math.pi * r[:, 1])
    px = np.clip(_js_round(255 * (FASHION_MEAN + FASHION_STD * z)), 0, 255)
    return px.astype(np.uint8).reshape(n, SIZE, SIZE)


def service_uniform_noise(n: int = 10_000, seed: int = SERVICE_SEEDS["uniform-noise"]) -> np.ndarray:
    return np.floor(mulberry32(seed, n * SIZE * SIZE) * 256).astype(np.uint8).reshape(n, SIZE, SIZE)


def service_inverted(test_images: np.ndarray) -> np.ndarray:
    return (255 - test_images).astype(np.uint8)


def service_pixel_shuffled(test_images: np.ndarray, base_seed: int = SERVICE_SEEDS["pixel-shuffled-fashion-mnist"]) -> np.ndarray:
    """Image i: a Fisher–Yates shuffle driven by prng(base_seed + i), as builtin.ts does."""
    n = len(test_images)
    out = test_images.reshape(n, -1).copy()
    length = out.shape[1]
    draws = np.stack([mulberry32(base_seed + i, length - 1) for i in range(n)])  # (n, 783)
    rows = np.arange(n)
    for step, j in enumerate(range(length - 1, 0, -1)):
        k = np.floor(draws[:, step] * (j + 1)).astype(np.int64)
        tmp = out[rows, j].copy()
        out[rows, j] = out[rows, k]
        out[rows, k] = tmp
    return out.reshape(test_images.shape)


def service_shapes(n: int = 10_000, seed: int = SERVICE_SEEDS["shapes"]) -> np.ndarray:
    """builtin.ts drawShapes: 1–3 filled circles, rectangles, triangles or thick lines,
    supersampled 4× on a Float32 canvas, each draw consumed in the same order."""
    ss = 4
    size = SIZE * ss
    stream = mulberry32(seed, n * 34 + 1)  # at most 1 + 3·11 draws per image
    pos = 0

    def rand() -> float:
        nonlocal pos
        pos += 1
        return float(stream[pos - 1])

    grid = np.arange(size, dtype=np.float64) + 0.5
    x, y = np.meshgrid(grid, grid)  # x varies along columns
    out = np.zeros((n, SIZE, SIZE), dtype=np.uint8)
    for i in range(n):
        canvas = np.zeros((size, size), dtype=np.float32)
        for _ in range(1 + math.floor(rand() * 3)):
            kind = math.floor(rand() * 4)
            value = 0.5 + 0.5 * rand()
            cx = (4 + rand() * 20) * ss
            cy = (4 + rand() * 20) * ss
            r = (3 + rand() * 8) * ss
            angle = rand() * math.pi
            ax = [cx + r * math.cos(angle), cx + r * math.cos(angle + 2.1), cx + r * math.cos(angle + 4.2)]
            ay = [cy + r * math.sin(angle), cy + r * math.sin(angle + 2.1), cy + r * math.sin(angle + 4.2)]
            w = (2 + rand() * 10) * ss
            h = (2 + rand() * 10) * ss
            thick = (1 + rand() * 2) * ss
            x2 = (2 + rand() * 24) * ss
            y2 = (2 + rand() * 24) * ss
            if kind == 0:
                inside = (x - cx) ** 2 + (y - cy) ** 2 <= r * r
            elif kind == 1:
                inside = (np.abs(x - cx) <= w) & (np.abs(y - cy) <= h)
            elif kind == 2:
                def sign(a: int, b: int) -> np.ndarray:
                    return (x - ax[b]) * (ay[a] - ay[b]) - (ax[a] - ax[b]) * (y - ay[b])
                d1, d2, d3 = sign(0, 1), sign(1, 2), sign(2, 0)
                inside = ~(((d1 < 0) | (d2 < 0) | (d3 < 0)) & ((d1 > 0) | (d2 > 0) | (d3 > 0)))
            else:
                dx, dy = x2 - cx, y2 - cy
                len2 = dx * dx + dy * dy or 1
                tt = np.clip(((x - cx) * dx + (y - cy) * dy) / len2, 0, 1)
                inside = (x - cx - tt * dx) ** 2 + (y - cy - tt * dy) ** 2 <= thick * thick
            canvas[inside] = value
        blocks = canvas.astype(np.float64).reshape(SIZE, ss, SIZE, ss)
        total = np.zeros((SIZE, SIZE))
        for dy in range(ss):  # the same summation order as the JS loop
            for dx in range(ss):
                total += blocks[:, dy, :, dx]
        out[i] = np.clip(_js_round(255 * total / (ss * ss)), 0, 255).astype(np.uint8)
    return out


def reported_sets(test_images: np.ndarray, n: int | None = None) -> dict[str, np.ndarray]:
    """The reported OOD sets, named as `npm run evaluate -- --builtin-ood` names them; `n` keeps
    the first n images of each (the same images the full sets start with), for smoke tests."""
    mnist, _ = load_mnist()
    count = 10_000 if n is None else n
    return {
        "mnist": mnist[:count],
        "gaussian-noise": service_gaussian_noise(count),
        "uniform-noise": service_uniform_noise(count),
        "inverted-fashion-mnist": service_inverted(test_images[:count]),
        "pixel-shuffled-fashion-mnist": service_pixel_shuffled(test_images[:count]),
        "shapes": service_shapes(count),
    }
