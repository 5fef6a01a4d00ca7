"""OOD detection metrics with in-distribution as the positive class (higher score = more ID).

Definitions match src/tools/evaluation/metrics.ts in the service so that the model card and
`npm run evaluate` agree.
"""
from __future__ import annotations

import math

import numpy as np


def threshold_at_tpr(id_scores: np.ndarray, tpr: float) -> float:
    """The k-th smallest ID score, k = ⌊(1 − tpr)(n + 1)⌋ (at least 1): accept score ≥ δ.

    This finite-sample order statistic keeps at least `tpr` of exchangeable ID scores above
    the threshold, the conformal guarantee: (1 + #{cal <= s}) / (n + 1) is a valid p-value.
    """
    s = np.sort(np.asarray(id_scores, dtype=np.float64))
    k = max(1, math.floor((1.0 - tpr) * (len(s) + 1)))
    return float(s[k - 1])


def auroc(id_scores: np.ndarray, ood_scores: np.ndarray) -> float:
    """P(score_ID > score_OOD) + ½ P(equal): the Mann–Whitney U statistic with average ranks."""
    id_scores = np.asarray(id_scores, dtype=np.float64)
    ood_scores = np.asarray(ood_scores, dtype=np.float64)
    allv = np.concatenate([id_scores, ood_scores])
    order = np.argsort(allv, kind="mergesort")
    ranks = np.empty(len(allv), dtype=np.float64)
    sorted_v = allv[order]
    i = 0
    while i < len(sorted_v):
        j = i
        while j + 1 < len(sorted_v) and sorted_v[j + 1] == sorted_v[i]:
            j += 1
        ranks[order[i:j + 1]] = (i + j) / 2.0 + 1.0
        i = j + 1
    n1, n0 = len(id_scores), len(ood_scores)
    u = ranks[:n1].sum() - n1 * (n1 + 1) / 2.0
    return float(u / (n1 * n0))


def tnr_at_tpr(id_scores: np.ndarray, ood_scores: np.ndarray, tpr: float = 0.95) -> float:
    delta = threshold_at_tpr(id_scores, tpr)
    return float(np.mean(np.asarray(ood_scores) < delta))
