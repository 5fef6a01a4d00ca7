"""posthoc.py --pooling mean-std (issue 23): the mean+std pooling computed in the ONNX graph, and the
`mahalanobis` output built on it, equal meanstd_candidate.py's reference (float64 features from the
graph's last block, the Gaussian fitted on the training split) on real images; the published
fashion-mnist-isomaxplus-msd graph is that detector fitted on the whole training split.

Tolerances: the pooled features 1e-5 absolute (float32 graph against the float64 reference of the
same float32 block output; the features are O(1)); the score 1e-4 relative, posthoc.py's own bound."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch

import meanstd_candidate
import posthoc
from data import load_fashion, train_val_split
from mahalanobis import add_score_output, fit_gaussian
from mahalanobis import score as mahalanobis_score
from onnx_eval import OnnxGraph

torch.set_num_threads(2)
REPO = Path(__file__).resolve().parents[2]
BASE = REPO / "models" / "fashion-mnist-isomaxplus" / "model.onnx"
FIXTURE = json.loads((REPO / "test" / "fixtures" / "parity" / "fashion-mnist-isomaxplus.json").read_text())
PUBLISHED = REPO / "models" / "fashion-mnist-isomaxplus-msd"


@pytest.fixture(scope="module")
def base():
    return OnnxGraph(BASE)


@pytest.fixture(scope="module")
def split():
    images, labels = load_fashion(split="train")
    train_idx, val_idx = train_val_split(len(images), 5000, 0)
    fixture_images = np.asarray(FIXTURE["images"], dtype=np.uint8).reshape(-1, 28, 28)
    return {"train_x": images[train_idx], "train_y": labels[train_idx],
            "check_x": np.concatenate([fixture_images, images[val_idx[:200]]])}


@pytest.fixture(autouse=True)
def avg_pooling_after():
    yield
    posthoc.use_pooling("avg")


def test_use_pooling_adds_the_mean_std_candidate_and_resets():
    posthoc.use_pooling("mean-std")
    assert posthoc.CANDIDATES[-1] == "mahalanobis-meanstd-l2" and len(posthoc.CANDIDATES) == 7
    assert posthoc.DETECTORS["mahalanobis-meanstd-l2"] == ("meanstd", True)
    posthoc.use_pooling("avg")
    assert "mahalanobis-meanstd-l2" not in posthoc.CANDIDATES and len(posthoc.DETECTORS) == 4
    with pytest.raises(ValueError, match="pooling"):
        posthoc.use_pooling("max")


def test_the_graph_pools_mean_and_std_as_the_candidate_does(base, split):
    model, tensor = meanstd_candidate.add_mean_std_pooling(base.model)
    onnx.checker.check_model(model)
    assert list(model.graph.node)[:len(base.model.graph.node)] == list(base.model.graph.node)
    x = split["check_x"]
    got = OnnxGraph(model).run(meanstd_candidate.to_tensor(x), [tensor])[tensor].numpy()
    want = meanstd_candidate.mean_std_features(base, x)
    assert got.shape == want.shape == (len(x), 256) and got.dtype == np.float32
    assert np.max(np.abs(got - want)) <= 1e-5
    # posthoc.extract computes the same features batch by batch
    posthoc.use_pooling("mean-std")
    assert np.array_equal(posthoc.extract(base, x, batch=64)["meanstd"], want)


def test_the_mahalanobis_output_equals_the_candidates_score_on_real_images(base, split):
    n = 3000  # enough training images for a well-conditioned 256-d covariance, quick to extract
    g = fit_gaussian(meanstd_candidate.mean_std_features(base, split["train_x"][:n]), split["train_y"][:n], 10, True)
    pooled, tensor = meanstd_candidate.add_mean_std_pooling(base.model)
    model = add_score_output(pooled, g, tensor)
    onnx.checker.check_model(model)
    assert [o.name for o in model.graph.output] == ["logits", "mahalanobis"]
    x = split["check_x"]
    out = OnnxGraph(model).run(meanstd_candidate.to_tensor(x), ["logits", "mahalanobis"])
    want = mahalanobis_score(g, meanstd_candidate.mean_std_features(base, x))
    rel = np.abs(out["mahalanobis"].numpy().astype(np.float64) - want) / np.abs(want)
    assert rel.max() <= 1e-4
    assert torch.equal(out["logits"], base.run(meanstd_candidate.to_tensor(x), ["logits"])["logits"])
    posthoc.use_pooling("mean-std")
    assert posthoc.check_surgery(base, OnnxGraph(model), g, "meanstd", x)["max_rel"] <= 1e-4


@pytest.mark.skipif(not PUBLISHED.is_dir(), reason="fashion-mnist-isomaxplus-msd not published")
def test_the_published_msd_graph_is_the_candidate_fitted_on_the_training_split(base, split):
    """The reference is meanstd_candidate.py's own fit: every training-split image (55,000), features
    from the shipped graph, L2-normalised, tied covariance — the data the validation table used."""
    feats = np.concatenate([meanstd_candidate.mean_std_features(base, split["train_x"][i:i + 5000])
                            for i in range(0, len(split["train_x"]), 5000)])
    g = fit_gaussian(feats, split["train_y"], 10, True)
    assert g.n == 55000
    x = split["check_x"]
    want = mahalanobis_score(g, meanstd_candidate.mean_std_features(base, x))
    published = OnnxGraph(PUBLISHED / "model.onnx")
    got = published.run(meanstd_candidate.to_tensor(x), ["mahalanobis"])["mahalanobis"].numpy().astype(np.float64)
    assert np.max(np.abs(got - want) / np.abs(want)) <= 1e-4
    # and the parity fixture (ONNX Runtime was checked against it at publishing) is this graph's output
    parity = json.loads((PUBLISHED / "parity.json").read_text())
    assert np.allclose(np.asarray(parity["mahalanobis"]), got[:8], rtol=1e-5)
