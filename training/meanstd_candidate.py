"""Issue 23's post-hoc probe candidate, recomputed on validation data only: a Mahalanobis detector
on the last conv block's output pooled by spatial mean AND standard deviation (2 × 128 = 256-d,
L2-normalised, tied covariance fitted on the training split), scored with the same validation
OOD sets, ID images and metrics as posthoc.py's candidates (training/ood-candidates.md).

    /usr/bin/python3 training/meanstd_candidate.py --model models/fashion-mnist-isomaxplus \
        --out training/ood-candidates/served-meanstd-validation.json

Never loads a test image or an MNIST digit unless --report-test is given: then, after the
validation table is written, accuracy and AUROC / TNR@95 / AUPR on the service's built-in OOD sets
(training/ood_sets.py reported_sets, the sets posthoc.py reports) are added to the JSON — for
reporting once, after the choice made on validation data (training/ood-candidates.md).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import onnx
import torch
from onnx import helper

sys.path.insert(0, str(Path(__file__).resolve().parent))

from data import DEFAULT_FASHION_DIR, load_fashion, train_val_split  # noqa: E402
from mahalanobis import fit_gaussian, score  # noqa: E402
from ood_metrics import auroc, tnr_at_tpr  # noqa: E402
from ood_sets import validation_sets  # noqa: E402
from publish import VALIDATION_OOD_SEED, write_text_atomic  # noqa: E402
from train import to_tensor  # noqa: E402

LAST_BLOCK = "/features/features.6/features.6.2/Relu_output_0"  # (N, 128, 7, 7), before global average pooling
NAME = "mahalanobis-meanstd-l2"


def mean_std_features(graph, images: np.ndarray, with_logits: bool = False):
    """(N, 256): per-channel spatial mean and standard deviation of the last conv block (and the
    logits, when asked)."""
    out = graph.run_batched(to_tensor(images), [LAST_BLOCK, "logits"])
    flat = out[LAST_BLOCK].double().flatten(2)
    feats = torch.cat([flat.mean(2), flat.std(2, unbiased=False)], dim=1).numpy()
    return (feats, out["logits"].numpy()) if with_logits else feats


def pooling_multiply_adds(channels: int = 128, spatial: int = 49) -> int:
    """Per image, what add_mean_std_pooling's nodes cost (every elementwise operation counted as one):
    the mean, x − mean, its square, their mean, and the square root."""
    return 4 * channels * spatial + channels


def add_mean_std_pooling(model: onnx.ModelProto, block: str = LAST_BLOCK, prefix: str = "/meanstd") -> tuple[onnx.ModelProto, str]:
    """A copy of `model` with nodes computing mean_std_features(block) in the graph — per channel,
    the spatial mean and the population standard deviation sqrt(mean((x − mean)²)), concatenated
    to (N, 2C) — and the name of that tensor, for mahalanobis.add_score_output. Nothing existing
    changes; opset-13 forms (ReduceMean's axes as an attribute)."""
    out = onnx.ModelProto()
    out.CopyFrom(model)

    def name(s: str) -> str:
        return f"{prefix}/{s}"

    if block not in {o for node in out.graph.node for o in node.output}:
        raise ValueError(f"no node of the graph produces {block!r}")
    out.graph.node.extend([
        helper.make_node("ReduceMean", [block], [name("mean4d")], name=name("ReduceMean"), axes=[2, 3], keepdims=1),
        helper.make_node("Sub", [block, name("mean4d")], [name("centred")], name=name("Sub")),
        helper.make_node("Mul", [name("centred"), name("centred")], [name("squared")], name=name("Mul")),
        helper.make_node("ReduceMean", [name("squared")], [name("variance")], name=name("ReduceMean_1"),
                         axes=[2, 3], keepdims=0),
        helper.make_node("Sqrt", [name("variance")], [name("std")], name=name("Sqrt")),
        helper.make_node("Flatten", [name("mean4d")], [name("mean")], name=name("Flatten"), axis=1),
        helper.make_node("Concat", [name("mean"), name("std")], [name("features")], name=name("Concat"), axis=1),
    ])
    return out, name("features")


def main(argv=None) -> int:
    from onnx_eval import OnnxGraph

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", required=True, help="folder with model.onnx")
    p.add_argument("--out", required=True, help="JSON file for the validation table")
    p.add_argument("--data", default=DEFAULT_FASHION_DIR)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--limit", type=int, help="first N images of every set (smoke tests)")
    p.add_argument("--report-test", action="store_true",
                   help="after the validation table: test accuracy and the built-in OOD sets, reported once")
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
    if args.report_test:
        from ood_sets import reported_sets
        from posthoc import metrics

        test_x, test_y = load_fashion(args.data, "test")
        test_x, test_y = test_x[lim], test_y[lim]
        feats, logits = mean_std_features(graph, test_x, with_logits=True)
        id_scores = score(g, feats)
        rows = {name: metrics(id_scores, score(g, mean_std_features(graph, x)))
                for name, x in reported_sets(test_x, args.limit).items()}
        out["test"] = {"accuracy": float((logits.argmax(1) == test_y).mean()), "n": len(test_y), "sets": rows}
        write_text_atomic(Path(args.out), json.dumps(out, indent=2) + "\n")
        print(f"reported once: test accuracy {100 * out['test']['accuracy']:.2f} %; " + "; ".join(
            f"{k} AUROC {m['auroc']:.4f} TNR@95 {100 * m['tnr_at_95_tpr']:.1f} %" for k, m in rows.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
