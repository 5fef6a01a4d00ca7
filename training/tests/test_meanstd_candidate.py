"""meanstd_candidate.py (issue 23): the mean+std features, and the validation table written without
a test image or an MNIST digit; --report-test adds the test figures afterwards."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import meanstd_candidate
import ood_sets

ROOT = Path(__file__).resolve().parents[2]
MODEL = ROOT / "models" / "fashion-mnist-isomaxplus"


def test_mean_std_features_are_the_last_blocks_spatial_mean_and_std():
    from onnx_eval import OnnxGraph

    graph = OnnxGraph(MODEL / "model.onnx")
    images = np.random.default_rng(0).integers(0, 256, size=(3, 28, 28), dtype=np.uint8)
    feats, logits = meanstd_candidate.mean_std_features(graph, images, with_logits=True)
    fmap = graph.run(meanstd_candidate.to_tensor(images), [meanstd_candidate.LAST_BLOCK])[meanstd_candidate.LAST_BLOCK]
    assert feats.shape == (3, 256) and logits.shape == (3, 10)
    # The first half is the global average pool the network itself computes.
    pooled = graph.run(meanstd_candidate.to_tensor(images), ["/features/features.8/Flatten_output_0"])
    assert np.allclose(feats[:, :128], pooled["/features/features.8/Flatten_output_0"].numpy(), atol=1e-5)
    assert np.allclose(feats[:, 128:], fmap.double().flatten(2).std(2, unbiased=False).numpy())


def test_validation_table_without_test_data_then_the_report(monkeypatch, tmp_path):
    real_load = meanstd_candidate.load_fashion
    loaded = []

    def load_fashion(directory, split="train"):
        loaded.append(split)
        return real_load(directory, split)

    monkeypatch.setattr(meanstd_candidate, "load_fashion", load_fashion)
    monkeypatch.setattr(ood_sets, "load_mnist", lambda *a, **k: pytest.fail("mnist loaded without --report-test"))
    out = tmp_path / "v.json"
    assert meanstd_candidate.main(["--model", str(MODEL), "--out", str(out), "--limit", "300"]) == 0
    assert loaded == ["train"]
    table = json.loads(out.read_text())
    assert table["dims"] == 256 and table["n_id"] == 300 and "test" not in table
    assert table["auroc"]["mean"] == pytest.approx(np.mean([table["auroc"][s] for s in table["sets"]]))
    assert all(0.5 < table["auroc"][s] <= 1 for s in table["sets"])
