"""Issue 23's post-hoc probe candidate, recomputed on validation data only: a Mahalanobis detector
on the last conv block's output pooled by spatial mean AND standard deviation (2 × 128 = 256-d,
L2-normalised, tied covariance fitted on the training split), scored with the same validation
OOD sets, ID images and metrics as posthoc.py's candidates (training/ood-candidates.md).

    /usr/bin/python3 training/meanstd_candidate.py --model models/fashion-mnist-isomaxplus \
        --out training/ood-candidates/served-meanstd-validation.json

Never loads a test image or an MNIST digit; writes nothing but the JSON.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from data import DEFAULT_FASHION_DIR, load_fashion, train_val_split  # noqa: E402
from mahalanobis import fit_gaussian, score  # noqa: E402
from ood_metrics import auroc, tnr_at_tpr  # noqa: E402
from ood_sets import validation_sets  # noqa: E402
from publish import VALIDATION_OOD_SEED, write_text_atomic  # noqa: E402
from train import to_tensor  # noqa: E402

LAST_BLOCK = "/features/features.6/features.6.2/Relu_output_0"  # (N, 128, 7, 7), before global average pooling
NAME = "mahalanobis-meanstd-l2"


def mean_std_features(graph, images: np.ndarray) -> np.ndarray:
    """(N, 256): per-channel spatial mean and standard deviation of the last conv block."""
    fmap = graph.run_batched(to_tensor(images), [LAST_BLOCK])[LAST_BLOCK].double()
    flat = fmap.flatten(2)
    return torch.cat([flat.mean(2), flat.std(2, unbiased=False)], dim=1).numpy()


def main(argv=None) -> int:
    from onnx_eval import OnnxGraph

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", required=True, help="folder with model.onnx")
    p.add_argument("--out", required=True, help="JSON file for the validation table")
    p.add_argument("--data", default=DEFAULT_FASHION_DIR)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--limit", type=int, help="first N images of every set (smoke tests)")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    graph = OnnxGraph(Path(args.model) / "model.onnx")
    images, labels = load_fashion(args.data, "train")
    train_idx, val_idx = train_val_split(len(images), 5000, args.seed)
    lim = slice(None, args.limit) if args.limit else slice(None)
    g = fit_gaussian(mean_std_features(graph, images[train_idx][lim]), labels[train_idx][lim], 10, True)
    val_x = images[val_idx][lim]
    id_scores = score(g, mean_std_features(graph, val_x))
    sets = validation_sets(val_x, VALIDATION_OOD_SEED)
    au, tnr = {}, {}
    for name, x in sets.items():
        s = score(g, mean_std_features(graph, x))
        au[name], tnr[name] = auroc(id_scores, s), tnr_at_tpr(id_scores, s, 0.95)
    out = {"model": args.model, "candidate": NAME, "feature": LAST_BLOCK, "dims": int(g.means.shape[1]),
           "condition": g.condition, "n_train": g.n, "n_id": len(val_x), "sets": list(sets),
           "auroc": {**au, "mean": float(np.mean(list(au.values())))},
           "tnr_at_95_tpr": {**tnr, "mean": float(np.mean(list(tnr.values())))}}
    write_text_atomic(Path(args.out), json.dumps(out, indent=2) + "\n")
    print(f"{NAME}: " + " ".join(f"{k}={v:.4f}" for k, v in out["auroc"].items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
