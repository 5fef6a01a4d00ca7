"""ONNX export of a trained network, and the parity fixture the node test checks it with.

Python's onnxruntime is not installable here, so parity is proven on the serving side:
torch's logits for a few real images are written next to the images, and
test/export-parity.test.ts runs the ONNX file with onnxruntime-node against them.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import torch

INPUT_NAME = "input"
OUTPUT_NAME = "logits"
OPSET = 13


def export_onnx(model: torch.nn.Module, path: Path, height: int = 28, width: int = 28) -> None:
    """Export with a dynamic batch axis; the graph holds the head's logits and nothing of the loss."""
    model.eval()
    path.parent.mkdir(parents=True, exist_ok=True)
    dummy = torch.zeros(1, 1, height, width)
    torch.onnx.export(
        model, dummy, str(path),
        input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
        dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}},
        opset_version=OPSET, do_constant_folding=True,
    )
    onnx.checker.check_model(onnx.load(str(path)))


def parity_fixture(model_name: str, images: np.ndarray, labels: np.ndarray, tensor: torch.Tensor,
                   outputs: dict[str, torch.Tensor]) -> dict:
    """test/fixtures/parity's format: real uint8 images, the exact float input tensor, and the
    model's outputs for it by name (`logits`, and any score output)."""
    return {
        "model": model_name,
        "shape": list(tensor.shape),
        "labels": labels.tolist(),
        "images": images.astype(int).reshape(len(images), -1).tolist(),
        "input": [float(v) for v in tensor.numpy().reshape(-1)],
        **{name: out.numpy().astype(float).tolist() for name, out in outputs.items()},
    }


def write_parity_fixture(model: torch.nn.Module, images: np.ndarray, labels: np.ndarray,
                         tensor: torch.Tensor, path: Path, model_name: str) -> None:
    """Real uint8 images, the exact float input tensor and torch's logits for them."""
    model.eval()
    with torch.no_grad():
        logits = model(tensor)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(parity_fixture(model_name, images, labels, tensor, {"logits": logits})) + "\n")
