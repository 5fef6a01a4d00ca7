"""publish.py writes the training side's part of the manifest contract: an entry without an
`ood` block, valid against models/manifest.schema.json (generated from the service's zod
schema), written atomically; a replaced entry's stale calibration is dropped; the score is
suggested from validation data only; the next step is the calibrate command."""
from __future__ import annotations

import argparse
import gzip
import json
import re
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

import publish
from data import train_val_split
from net import Net
from publish import (CANDIDATES, PublishError, build_entry, calibrate_command, manifest_errors,
                     merge_entry, suggest_score, validation_ood_sets, write_json_atomic)
from train import parse_args

REPO = Path(__file__).resolve().parents[2]
SHIPPED = json.loads((REPO / "models" / "manifest.json").read_text())
SHA = "0" * 64


def manifest_with(entry: dict) -> dict:
    return {"default": entry["name"], "models": [entry]}


@pytest.mark.parametrize("head", ["isomaxplus", "isomax", "softmax"])
def test_the_entry_has_no_ood_block_and_matches_the_json_schema(head):
    entry = build_entry(f"fashion-mnist-{head}", "1.0.0", head, SHA)
    assert "ood" not in entry, "only calibrate writes the OOD block"
    assert entry["output"]["holds"] == ("logits" if head == "softmax" else "negative-distances")
    assert manifest_errors(manifest_with(entry)) == []


def test_the_shipped_manifest_matches_the_json_schema():
    assert manifest_errors(SHIPPED) == []


@pytest.mark.parametrize("breaks, where", [
    (lambda e: e.update(sha256="abc"), "models[0].sha256"),
    (lambda e: e["input"].update(channels=2), "models[0].input.channels"),
    (lambda e: e["input"].update(fit="stretch"), "models[0].input.fit"),
    (lambda e: e.update(head="cosine"), "models[0].head"),
    (lambda e: e.update(name="Fashion MNIST"), "models[0].name"),
    (lambda e: e.update(labels=["only one"]), "models[0].labels"),
    (lambda e: e.update(extra=True), "models[0]"),
    (lambda e: e.pop("batching"), "models[0]"),
    # An OOD block from the training side must at least be complete; it has none by design.
    (lambda e: e.update(ood={"score": "mds", "threshold": "low"}), "models[0].ood"),
])
def test_a_bad_field_is_refused_and_named(breaks, where):
    entry = build_entry("m", "1.0.0", "isomaxplus", SHA)
    breaks(entry)
    errors = manifest_errors(manifest_with(entry))
    assert errors, "the JSON Schema accepted a broken entry"
    assert any(e.startswith(where) for e in errors), errors


def test_republishing_drops_the_stale_calibration_and_keeps_the_rest():
    name = SHIPPED["default"]
    old = next(m for m in SHIPPED["models"] if m["name"] == name)
    entry = build_entry(name, "2.0.0", old["head"], SHA)
    merged, dropped = merge_entry(SHIPPED, entry, make_default=False)
    assert dropped == old["ood"], "the replaced entry's OOD block is handed back, to report"
    new = next(m for m in merged["models"] if m["name"] == name)
    assert new == entry and "ood" not in new
    others = [m for m in merged["models"] if m["name"] != name]
    assert others == [m for m in SHIPPED["models"] if m["name"] != name], "other models untouched"
    assert [m["name"] for m in merged["models"]] == sorted(m["name"] for m in SHIPPED["models"])
    assert merged["default"] == SHIPPED["default"]
    assert "ood" in old, "the input manifest is not modified"
    assert manifest_errors(merged) == []


def test_a_new_model_is_added_and_becomes_default_only_when_asked_or_alone():
    entry = build_entry("new-model", "1.0.0", "softmax", SHA)
    merged, dropped = merge_entry(SHIPPED, entry, make_default=False)
    assert dropped is None and merged["default"] == SHIPPED["default"]
    assert len(merged["models"]) == len(SHIPPED["models"]) + 1
    assert merge_entry(SHIPPED, entry, make_default=True)[0]["default"] == "new-model"
    alone, _ = merge_entry(None, entry, make_default=False)
    assert alone == {"default": "new-model", "models": [entry]}


def test_json_is_written_atomically_and_never_as_nan(tmp_path):
    path = tmp_path / "manifest.json"
    write_json_atomic(path, {"a": 1})
    assert json.loads(path.read_text()) == {"a": 1} and path.read_text().endswith("\n")
    with pytest.raises(ValueError):
        write_json_atomic(path, {"a": float("nan")})
    assert json.loads(path.read_text()) == {"a": 1}, "a failed write leaves the old file"
    assert [p.name for p in tmp_path.iterdir()] == ["manifest.json"], "no temporary file left behind"


def test_calibrate_command_names_the_held_out_images(tmp_path):
    default = calibrate_command("m", "mds", publish.DEFAULT_FASHION_DIR, 0, publish.DEFAULT_SPLITS_DIR,
                                publish.DEFAULT_MANIFEST)
    assert default == "npm run calibrate -- --model m --score mds --data fashion-mnist:val"
    # Another seed holds out other images: the built-in set (seed 0's split) would be wrong.
    (tmp_path / "train-images-idx3-ubyte.gz").write_bytes(b"")
    other = calibrate_command("m", "msp", tmp_path, 3, tmp_path / "splits", tmp_path / "manifest.json")
    assert other == (f"npm run calibrate -- --model m --score msp --data {tmp_path}/train-images-idx3-ubyte.gz "
                     f"--indices {tmp_path}/splits/fashion-mnist-val-seed3.json --manifest {tmp_path}/manifest.json")


def test_validation_ood_sets_are_made_from_the_given_images_only():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(12, 28, 28), dtype=np.uint8)
    sets = validation_ood_sets(images, seed=1)
    assert list(sets) == list(publish.VALIDATION_SETS)
    for x in sets.values():
        assert x.shape == images.shape and x.dtype == np.uint8
    assert (sets["inverted"] == 255 - images).all()
    assert (np.sort(sets["pixel-shuffled"].reshape(12, -1)) == np.sort(images.reshape(12, -1))).all()
    assert not (sets["pixel-shuffled"] == images).all()
    halves = images.reshape(12, 14, 2, 14, 2).mean(axis=(2, 4))
    quadrant = sets["mosaic"][:, :14, :14].astype(float)
    assert all(np.abs(halves - q).max(axis=(1, 2)).min() <= 0.5 for q in quadrant), "each quadrant is a half-size image"


def test_the_suggested_score_is_the_best_on_validation_and_can_be_forced():
    # Confident ID rows; OOD rows with the same nearest distance but a flat profile: the
    # minimum distance cannot separate them, the entropic score can.
    id_logits = torch.tensor([[-0.5, -3.0, -3.0]] * 20)
    ood_logits = {"a": torch.tensor([[-0.5, -0.6, -0.6]] * 20), "b": torch.tensor([[-0.5, -0.7, -0.7]] * 20)}
    kind, why, table = suggest_score("isomaxplus", id_logits, ood_logits)
    assert kind == "entropic" and "validation OOD sets (a, b)" in why
    assert table[("a", "mds")] == 0.5 and table[("a", "entropic")] == 1.0
    assert suggest_score("isomaxplus", id_logits, ood_logits, forced="mds")[0] == "mds"
    # A tie goes to the head's own score, listed first.
    tied = {"a": id_logits.clone()}
    assert suggest_score("isomaxplus", id_logits, tied)[0] == CANDIDATES["isomaxplus"][0] == "mds"
    assert suggest_score("softmax", id_logits, tied)[0] == "msp"


# --- end to end on a tiny data set and an untrained tiny network --------------------------

def write_idx(path: Path, array: np.ndarray) -> None:
    header = bytes([0, 0, 8, array.ndim]) + struct.pack(">" + "I" * array.ndim, *array.shape)
    with gzip.open(path, "wb") as fh:
        fh.write(header + array.astype(np.uint8).tobytes())


def tiny_fashion(directory: Path, n_train: int = 60, n_test: int = 16) -> None:
    rng = np.random.default_rng(7)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        write_idx(directory / f"{prefix}-images-idx3-ubyte.gz", rng.integers(0, 256, size=(n, 28, 28)))
        write_idx(directory / f"{prefix}-labels-idx1-ubyte.gz", rng.integers(0, 10, size=n))


def publish_tiny(tmp_path: Path, head: str, manifest: dict | None, extra: list[str] = (),
                 preflight: bool = True) -> argparse.Namespace:
    data, models = tmp_path / "data", tmp_path / "models"
    data.mkdir()
    models.mkdir()
    tiny_fashion(data)
    if manifest is not None:
        (models / "manifest.json").write_text(json.dumps(manifest))
    args = parse_args(["--head", head, "--data", str(data), "--models-dir", str(models),
                       "--fixtures-dir", str(tmp_path / "fixtures"), "--splits-dir", str(tmp_path / "splits"),
                       "--width", "4", "--feature-dim", "8", "--seed", "0", *extra])
    torch.manual_seed(0)
    model = Net(head, width=4, feature_dim=8).eval()
    train_idx, val_idx = train_val_split(60, 20, 0)
    info = {"val_indices": val_idx, "n_train": len(train_idx), "n_val": len(val_idx), "train_seconds": 1.0,
            "history": [{"epoch": 1, "loss": 2.3, "train_acc": 0.1, "val_acc": 0.1, "elapsed_s": 1.0}]}
    if preflight:
        publish.check_can_publish(args.models_dir)  # as train.py does before training
    publish.publish(model, args, info, "/usr/bin/python3 training/train.py --head " + head)
    return args


def test_publish_writes_an_uncalibrated_entry_and_says_what_to_run_next(tmp_path, capsys):
    name = SHIPPED["default"]
    old = next(m for m in SHIPPED["models"] if m["name"] == name)
    args = publish_tiny(tmp_path, old["head"], SHIPPED, ["--name", name, "--version", "9.9.9"])
    out, err = capsys.readouterr()
    models = Path(args.models_dir)
    written = json.loads((models / "manifest.json").read_text())
    assert manifest_errors(written) == []
    entry = next(m for m in written["models"] if m["name"] == name)
    assert "ood" not in entry and entry["version"] == "9.9.9"
    assert entry["sha256"] == publish.sha256(models / name / "model.onnx")
    for m in written["models"]:
        if m["name"] != name:
            assert "ood" in m, "other models keep their calibration"
    assert f"dropped the OOD block of the previous {name} entry (score {old['ood']['score']}" in err
    # Seed 0, but not the default data directory: the built-in set would name other images.
    data, splits = Path(args.data), tmp_path / "splits"
    suggested = re.search(r"--score (\S+)", out).group(1)
    assert suggested in publish.CANDIDATES[old["head"]]
    assert (f"npm run calibrate -- --model {name} --score {suggested} --data {data}/train-images-idx3-ubyte.gz "
            f"--indices {splits}/fashion-mnist-val-seed0.json --manifest {models}/manifest.json") in out
    card = (models / name / "README.md").read_text()
    assert "no `ood` block" in card and "npm run calibrate -- --model " + name in card
    assert "measured once" in card and "chosen on validation data only" in card
    assert not re.search(r"[Tt]hreshold:? -?\d", card), "no threshold: calibrate sets it"
    assert sorted(p.name for p in (models / name).iterdir()) == ["README.md", "model.onnx"], "no staged file left"
    split = json.loads((tmp_path / "splits" / "fashion-mnist-val-seed0.json").read_text())
    assert len(split["indices"]) == 20 and "train_val_split(60, 20, seed=0)" in split["note"]
    assert (tmp_path / "fixtures" / f"{name}.json").exists()


@pytest.mark.parametrize("preflight", [True, False])
def test_publish_refuses_to_overwrite_an_invalid_manifest(tmp_path, preflight):
    broken = json.loads(json.dumps(SHIPPED))
    broken["models"][0]["sha256"] = "not hex"
    with pytest.raises(PublishError, match=r"models\[0\]\.sha256"):
        publish_tiny(tmp_path, "softmax", broken, preflight=preflight)
    assert json.loads((tmp_path / "models" / "manifest.json").read_text()) == broken, "left as it was"
    model_dir = tmp_path / "models" / "fashion-mnist-softmax"
    assert not model_dir.exists() or list(model_dir.iterdir()) == [], "no model.onnx, no staged file"
