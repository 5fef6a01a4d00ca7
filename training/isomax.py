"""IsoMax+ / IsoMax / SoftMax classification heads and the IsoMax loss.

Reference: Macêdo & Ludermir, "Enhanced Isotropy Maximization Loss" (IsoMax+), and
Macêdo et al., "Entropic Out-of-Distribution Detection" (IsoMax). The heads return
*logits*: for the distance heads that is the negative distance to each class
prototype. The entropic scale lives in the loss only, so the exported graph (and
therefore the served model) never sees it.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

ENTROPIC_SCALE = 10.0


def normalized_distance(features: torch.Tensor, prototypes: torch.Tensor) -> torch.Tensor:
    """‖f̂ − P̂_j‖₂ for L2-normalised rows, in the export-friendly form.

    For unit vectors ‖a − b‖² = 2 − 2 a·b, so the distance is a matmul plus an
    elementwise sqrt: no cdist op, which ONNX lacks. The clamp removes tiny
    negative values that rounding produces when a feature sits on a prototype.
    """
    f = F.normalize(features, dim=1)
    p = F.normalize(prototypes, dim=1)
    return torch.sqrt(torch.clamp(2.0 - 2.0 * f @ p.t(), min=0.0))


def euclidean_distance(features: torch.Tensor, prototypes: torch.Tensor) -> torch.Tensor:
    """‖f − P_j‖₂ for unnormalised rows, export-friendly (‖f‖² + ‖P‖² − 2 f·P)."""
    f2 = (features * features).sum(dim=1, keepdim=True)
    p2 = (prototypes * prototypes).sum(dim=1).unsqueeze(0)
    return torch.sqrt(torch.clamp(f2 + p2 - 2.0 * features @ prototypes.t(), min=0.0))


class IsoMaxPlusHead(nn.Module):
    """IsoMax+: logits = −|s|·‖f̂ − P̂_j‖₂ with prototypes ~ N(0, 1) and s initialised to 1."""

    kind = "isomaxplus"

    def __init__(self, num_features: int, num_classes: int) -> None:
        super().__init__()
        self.prototypes = nn.Parameter(torch.empty(num_classes, num_features))
        self.distance_scale = nn.Parameter(torch.empty(1))
        nn.init.normal_(self.prototypes, mean=0.0, std=1.0)
        nn.init.constant_(self.distance_scale, 1.0)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return -torch.abs(self.distance_scale) * normalized_distance(features, self.prototypes)


class IsoMaxHead(nn.Module):
    """Plain IsoMax: logits = −‖f − P_j‖₂, unnormalised, prototypes initialised to 0, no scale."""

    kind = "isomax"

    def __init__(self, num_features: int, num_classes: int) -> None:
        super().__init__()
        self.prototypes = nn.Parameter(torch.zeros(num_classes, num_features))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return -euclidean_distance(features, self.prototypes)


class SoftMaxHead(nn.Module):
    """The ordinary linear layer that the SoftMax loss trains."""

    kind = "softmax"

    def __init__(self, num_features: int, num_classes: int) -> None:
        super().__init__()
        self.linear = nn.Linear(num_features, num_classes)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.linear(features)


HEADS = {"isomaxplus": IsoMaxPlusHead, "isomax": IsoMaxHead, "softmax": SoftMaxHead}


def make_head(kind: str, num_features: int, num_classes: int) -> nn.Module:
    if kind not in HEADS:
        raise ValueError(f"unknown head {kind!r}: expected one of {', '.join(HEADS)}")
    return HEADS[kind](num_features, num_classes)


def isomax_loss(logits: torch.Tensor, targets: torch.Tensor, entropic_scale: float = ENTROPIC_SCALE) -> torch.Tensor:
    """Cross-entropy on entropic_scale × logits (log_softmax inside cross_entropy keeps it stable).

    The scale is applied here and nowhere else: at inference the logits are used as they are.
    """
    return F.cross_entropy(entropic_scale * logits, targets)


def softmax_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(logits, targets)


def loss_for(kind: str):
    return softmax_loss if kind == "softmax" else isomax_loss
