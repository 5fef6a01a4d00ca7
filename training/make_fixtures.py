"""Golden preprocessing fixtures for the service's tests: real Fashion-MNIST test images as
8-bit greyscale PNGs, and the tensors the *training* transform (train.to_tensor) makes of them.
test/preprocess/golden.test.ts requires the service's preprocessing to reproduce them.

    /usr/bin/python3 training/make_fixtures.py
"""
from __future__ import annotations

import json
import struct
import sys
import zlib
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from data import DEFAULT_FASHION_DIR, FASHION_LABELS, load_fashion  # noqa: E402
from train import to_tensor  # noqa: E402

OUT = Path(__file__).resolve().parent.parent / "test" / "fixtures" / "fashion"
INDICES = list(range(0, 16))


def png_grey8(image: np.ndarray) -> bytes:
    """Minimal PNG encoder (colour type 0, bit depth 8, filter 0): no imaging library needed."""
    h, w = image.shape

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    raw = b"".join(b"\x00" + image[y].tobytes() for y in range(h))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))


def main() -> int:
    images, labels = load_fashion(DEFAULT_FASHION_DIR, "test")
    OUT.mkdir(parents=True, exist_ok=True)
    entries = []
    for i in INDICES:
        name = f"test-{i:05d}-{FASHION_LABELS[labels[i]].replace('/', '-').replace(' ', '-').lower()}.png"
        (OUT / name).write_bytes(png_grey8(images[i]))
        tensor = to_tensor(images[i:i + 1]).numpy().reshape(-1)
        entries.append({"index": i, "label": int(labels[i]), "file": name,
                        "tensor": [float(f"{v:.7g}") for v in tensor]})
    (OUT / "golden.json").write_text(json.dumps({
        "source": "Fashion-MNIST t10k images, training/train.py to_tensor()",
        "shape": [1, 28, 28], "images": entries}) + "\n")
    print(f"wrote {len(entries)} PNGs and golden.json to {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
