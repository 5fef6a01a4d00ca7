"""Small, fast checks of the heads, the loss, the scores and the export (run by .ci/run)."""
from __future__ import annotations

import math

import numpy as np
import onnx
import pytest
import torch
from onnx import numpy_helper

from export import INPUT_NAME, OUTPUT_NAME, export_onnx
from isomax import (ENTROPIC_SCALE, IsoMaxHead, IsoMaxPlusHead, euclidean_distance,
                    isomax_loss, make_head, normalized_distance)
from net import Net
from ood_metrics import auroc, threshold_at_tpr, tnr_at_tpr
from scores import score

torch.manual_seed(0)


@pytest.mark.parametrize("head", ["isomaxplus", "isomax", "softmax"])
def test_shapes(head):
    net = Net(head, width=8, feature_dim=16)
    out = net(torch.randn(5, 1, 28, 28))
    assert out.shape == (5, 10)


def test_isomaxplus_init_and_logits_are_negative_distances():
    h = IsoMaxPlusHead(16, 10)
    assert h.distance_scale.item() == 1.0
    assert abs(h.prototypes.std().item() - 1.0) < 0.2, "prototypes ~ N(0, 1)"
    f = torch.randn(7, 16)
    expected = torch.abs(h.distance_scale) * torch.cdist(
        torch.nn.functional.normalize(f), torch.nn.functional.normalize(h.prototypes))
    assert torch.allclose(h(f), -expected, atol=1e-5)
    assert (h(f) <= 0).all()


def test_isomax_init_and_logits():
    h = IsoMaxHead(16, 10)
    assert torch.count_nonzero(h.prototypes) == 0, "plain IsoMax prototypes start at 0"
    with torch.no_grad():
        h.prototypes.normal_()
    f = torch.randn(7, 16) * 3
    assert torch.allclose(h(f), -torch.cdist(f, h.prototypes), atol=1e-4)


def test_export_friendly_distance_equals_cdist():
    f, p = torch.randn(64, 32), torch.randn(10, 32)
    ref = torch.cdist(torch.nn.functional.normalize(f), torch.nn.functional.normalize(p))
    assert (normalized_distance(f, p) - ref).abs().max().item() <= 1e-5
    ref2 = torch.cdist(f, p)
    assert ((euclidean_distance(f, p) - ref2).abs() / ref2.clamp(min=1)).max().item() <= 1e-5
    # A feature sitting exactly on a prototype: the clamp keeps sqrt's argument ≥ 0.
    assert normalized_distance(p[:1], p).min().item() == pytest.approx(0.0, abs=1e-3)
    assert not torch.isnan(normalized_distance(p[:1], p)).any()


def test_loss_is_explicit_negative_log_softmax_of_scaled_logits():
    """The seed's formula written out by hand: mean over the batch of −log softmax(E·logits)[y],
    with the softmax as exp / Σ exp, so the check does not reuse what isomax_loss calls."""
    gen = torch.Generator().manual_seed(3)
    logits = -3 * torch.rand(6, 10, generator=gen, dtype=torch.float64)  # negative distances
    y = torch.tensor([0, 1, 2, 3, 9, 9])
    expected = 0.0
    for row, target in zip(logits.tolist(), y.tolist()):
        scaled = [10.0 * v for v in row]  # E = 10, written as a literal on purpose
        top = max(scaled)  # shifting by the max changes nothing but keeps exp() finite
        exps = [math.exp(v - top) for v in scaled]
        expected += -math.log(exps[target] / sum(exps))
    expected /= len(y)
    assert ENTROPIC_SCALE == 10.0
    assert isomax_loss(logits, y).item() == pytest.approx(expected, rel=1e-12)
    # Without the scale the value differs: the check would catch a loss that forgot E.
    assert isomax_loss(logits, y, entropic_scale=1.0).item() != pytest.approx(expected, rel=1e-3)


def test_score_direction():
    confident = torch.tensor([[-0.1, -1.9, -1.8]])
    unsure = torch.tensor([[-1.2, -1.3, -1.25]])
    for kind in ("mds", "entropic", "msp", "maxlogit", "energy"):
        assert score(kind, confident).item() > score(kind, unsure).item(), kind
    assert score("entropic", torch.zeros(1, 4)).item() == pytest.approx(-np.log(4), abs=1e-6)


def test_unknown_head():
    with pytest.raises(ValueError, match="unknown head"):
        make_head("cosine", 8, 2)


def test_one_training_step_lowers_the_loss():
    torch.manual_seed(1)
    net = Net("isomaxplus", width=8, feature_dim=16)
    x, y = torch.randn(32, 1, 28, 28), torch.randint(0, 10, (32,))
    opt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9)
    net.train()
    before = isomax_loss(net(x), y)
    for _ in range(5):
        opt.zero_grad()
        loss = isomax_loss(net(x), y)
        loss.backward()
        opt.step()
    after = isomax_loss(net(x), y)
    assert after.item() < before.item()


def _constants(model: onnx.ModelProto) -> list[np.ndarray]:
    values = [numpy_helper.to_array(t) for t in model.graph.initializer]
    for node in model.graph.node:
        if node.op_type == "Constant":
            values += [numpy_helper.to_array(a.t) for a in node.attribute if a.name == "value"]
    return values


@pytest.mark.parametrize("head", ["isomaxplus", "isomax"])
def test_export_has_no_entropic_scale_and_dynamic_batch(tmp_path, head):
    net = Net(head, width=8, feature_dim=16).eval()
    path = tmp_path / "m.onnx"
    export_onnx(net, path)
    model = onnx.load(str(path))
    assert [i.name for i in model.graph.input] == [INPUT_NAME]
    assert [o.name for o in model.graph.output] == [OUTPUT_NAME]
    assert model.opset_import[0].version >= 13
    assert model.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"
    scalars = [v.item() for v in _constants(model) if v.size == 1]
    assert ENTROPIC_SCALE not in scalars, "the entropic scale belongs to the loss, not the graph"
    assert not any(n.op_type in ("Softmax", "LogSoftmax") for n in model.graph.node), "outputs are raw logits"


def test_metrics_by_hand():
    assert auroc(np.array([2.0, 3.0]), np.array([0.0, 1.0])) == 1.0
    assert auroc(np.array([0.0, 1.0]), np.array([2.0, 3.0])) == 0.0
    assert auroc(np.ones(5), np.ones(7)) == 0.5
    ids = np.arange(1, 101, dtype=float)
    assert threshold_at_tpr(ids, 0.95) == 5.0
    assert tnr_at_tpr(ids, np.array([0.0, 4.9, 5.0, 50.0]), 0.95) == 0.5
