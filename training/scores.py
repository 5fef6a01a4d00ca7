"""OOD scores computed from logits; higher = more in-distribution for every score.

Mirrors src/ood/scores.ts in the service: both sides must agree on directions.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

SCORE_KINDS = ("mds", "entropic", "msp", "maxlogit", "energy")


def mds(logits: torch.Tensor) -> torch.Tensor:
    """Minimum distance score: max_j logits_j = −min_j d_j for distance heads."""
    return logits.max(dim=1).values


def entropic(logits: torch.Tensor) -> torch.Tensor:
    """Negative entropy Σ p log p of softmax(logits): 0 for a one-hot, −log C for uniform."""
    logp = F.log_softmax(logits, dim=1)
    return (logp.exp() * logp).sum(dim=1)


def msp(logits: torch.Tensor) -> torch.Tensor:
    return F.softmax(logits, dim=1).max(dim=1).values


def maxlogit(logits: torch.Tensor) -> torch.Tensor:
    return logits.max(dim=1).values


def energy(logits: torch.Tensor) -> torch.Tensor:
    return torch.logsumexp(logits, dim=1)


SCORES = {"mds": mds, "entropic": entropic, "msp": msp, "maxlogit": maxlogit, "energy": energy}


def score(kind: str, logits: torch.Tensor) -> torch.Tensor:
    if kind not in SCORES:
        raise ValueError(f"unknown score {kind!r}: expected one of {', '.join(SCORES)}")
    return SCORES[kind](logits)
