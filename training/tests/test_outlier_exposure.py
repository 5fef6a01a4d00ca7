"""Outlier exposure (issue 23): the synthetic outliers, the uniform-target loss, a training step
with outliers, and the checkpoint that lets a run be judged on validation data before publishing."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import train
from data import FASHION_MEAN, FASHION_STD, load_fashion
from isomax import ENTROPIC_SCALE, isomax_loss
from net import Net
from outlier_exposure import elastic_warp, smooth_noise, synthetic_outliers, uniform_loss

BLACK = -FASHION_MEAN / FASHION_STD  # a 0 pixel after the service's normalisation
WHITE = (1 - FASHION_MEAN) / FASHION_STD


@pytest.fixture(scope="module")
def real_batch() -> torch.Tensor:
    images, _ = load_fashion(split="train")
    return train.to_tensor(images[:32])


def test_outliers_are_valid_inputs_of_the_right_shape(real_batch):
    out = synthetic_outliers(real_batch, torch.Generator().manual_seed(0))
    assert out.shape == real_batch.shape and out.dtype == torch.float32
    assert torch.isfinite(out).all()
    assert out.min() >= BLACK - 1e-5 and out.max() <= WHITE + 1e-5, "pixels stay in [0, 255]"


def test_elastic_warp_destroys_the_outline_but_keeps_the_grey_levels(real_batch):
    warped = elastic_warp(real_batch, torch.Generator().manual_seed(1))
    px, wpx = real_batch * FASHION_STD + FASHION_MEAN, warped * FASHION_STD + FASHION_MEAN
    # Far from a small shift: the object masks overlap much less than the originals with themselves.
    a, b = px > 0.1, wpx > 0.1
    iou = ((a & b).sum((1, 2, 3)).float() / (a | b).sum((1, 2, 3)).float())
    assert iou.median() < 0.7
    assert abs(wpx.mean().item() - px.mean().item()) < 0.15  # same kind of brightness, not noise


def test_smooth_noise_is_low_frequency_unlike_iid_noise():
    fields = smooth_noise(64, torch.Generator().manual_seed(2)) * FASHION_STD + FASHION_MEAN
    iid = torch.rand(64, 1, 28, 28)

    def roughness(x: torch.Tensor) -> float:
        return (x[..., 1:] - x[..., :-1]).abs().mean().item() / (x.std().item() + 1e-12)

    assert roughness(fields) < 0.25 * roughness(iid)
    assert len({round(v, 4) for v in fields.mean((1, 2, 3)).tolist()}) > 32, "varied fields, not one pattern"


def test_outliers_are_seeded():
    x = torch.randn(6, 1, 28, 28)
    a = synthetic_outliers(x, torch.Generator().manual_seed(3))
    b = synthetic_outliers(x, torch.Generator().manual_seed(3))
    assert torch.equal(a, b)


def test_uniform_loss_is_zero_at_uniform_and_positive_otherwise():
    assert uniform_loss(torch.full((4, 10), -0.7)).item() == pytest.approx(0.0, abs=1e-6)
    peaked = torch.zeros(1, 10)
    peaked[0, 3] = 1.0
    # by hand: softmax(10·logits) has p₃ = e¹⁰/(e¹⁰+9); the loss is −mean log p − log 10
    log_p = torch.log_softmax(ENTROPIC_SCALE * peaked, 1)
    assert uniform_loss(peaked).item() == pytest.approx(-log_p.mean().item() - math.log(10), rel=1e-6)
    assert uniform_loss(peaked).item() > 1.0


def test_one_oe_training_step_lowers_both_losses(real_batch):
    torch.manual_seed(0)
    images, labels = load_fashion(split="train")
    y = torch.from_numpy(labels[:32])
    model = Net("isomaxplus", width=8, feature_dim=16)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    outliers = synthetic_outliers(real_batch, torch.Generator().manual_seed(4))

    def losses() -> tuple[float, float]:
        model.eval()
        with torch.no_grad():
            return isomax_loss(model(real_batch), y).item(), uniform_loss(model(outliers)).item()

    before = losses()
    for _ in range(15):
        model.train()
        both = model(torch.cat([real_batch, outliers]))
        loss = isomax_loss(both[:32], y) + 0.5 * uniform_loss(both[32:])
        opt.zero_grad()
        loss.backward()
        opt.step()
    after = losses()
    assert after[0] < before[0] and after[1] < before[1], (before, after)


def test_oe_options_are_checked():
    with pytest.raises(SystemExit):
        train.parse_args(["--head", "softmax", "--oe-weight", "0.5"])
    with pytest.raises(SystemExit):
        train.parse_args(["--head", "isomaxplus", "--oe-weight", "-1"])
    with pytest.raises(SystemExit):
        train.parse_args(["--head", "isomaxplus", "--save-checkpoint", "a", "--from-checkpoint", "b"])
    args = train.parse_args(["--head", "isomaxplus", "--oe-weight", "0.5"])
    assert args.oe_weight == 0.5 and args.oe_batch == 64


def test_checkpoint_round_trip_and_architecture_check(tmp_path):
    args = train.parse_args(["--head", "isomaxplus", "--width", "8", "--feature-dim", "16", "--oe-weight", "0.5",
                             "--save-checkpoint", str(tmp_path)])
    model = Net("isomaxplus", width=8, feature_dim=16).eval()
    train.save_checkpoint(model, {"val_indices": np.arange(3), "history": []}, args, "the command")
    assert (tmp_path / "model.onnx").exists()
    loaded, info, command = train.load_checkpoint(
        train.parse_args(["--head", "isomaxplus", "--width", "8", "--feature-dim", "16", "--from-checkpoint", str(tmp_path)]))
    x = torch.randn(3, 1, 28, 28)
    assert torch.equal(loaded(x), model(x)) and command == "the command" and list(info["val_indices"]) == [0, 1, 2]
    with pytest.raises(train.DataError, match="--width 32 differs"):
        train.load_checkpoint(train.parse_args(["--head", "isomaxplus", "--feature-dim", "16",
                                                "--from-checkpoint", str(tmp_path)]))


def test_init_onnx_reloads_the_shipped_weights_exactly():
    """--init-onnx: the BatchNorm folded into each conv by the export is unfolded, so the torch
    network reproduces the shipped graph's logits (ONNX Runtime's parity fixture)."""
    import json
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    fixture = json.loads((root / "test" / "fixtures" / "parity" / "fashion-mnist-isomaxplus.json").read_text())
    model = Net("isomaxplus")
    train.load_onnx_weights(model, str(root / "models" / "fashion-mnist-isomaxplus" / "model.onnx"))
    model.eval()
    x = torch.tensor(fixture["input"], dtype=torch.float32).reshape(fixture["shape"])
    assert torch.allclose(model(x), torch.tensor(fixture["logits"]), atol=1e-5)
    with pytest.raises(train.DataError, match="do not belong"):
        train.load_onnx_weights(Net("softmax"), str(root / "models" / "fashion-mnist-isomaxplus" / "model.onnx"))


def test_freeze_batchnorm_keeps_the_statistics_during_training_steps():
    model = Net("isomaxplus", width=8, feature_dim=16)
    before = {k: v.clone() for k, v in model.state_dict().items() if "running" in k}
    model.train()
    train.freeze_batchnorm(model)
    model(torch.randn(16, 1, 28, 28)).sum().backward()
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())
    assert any(m.training for m in model.modules())  # the rest still trains
