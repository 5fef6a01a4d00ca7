"""Bad input to the training script: one clear line on stderr and a non-zero exit."""
from __future__ import annotations

import gzip
import json
import subprocess
import sys
from pathlib import Path

TRAIN = Path(__file__).resolve().parent.parent / "train.py"


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(TRAIN), *args], capture_output=True, text=True, timeout=120)


def test_unknown_head():
    r = run("--head", "cosine")
    assert r.returncode == 2
    assert "unknown head 'cosine'" in r.stderr


def test_missing_dataset_path(tmp_path):
    r = run("--head", "isomaxplus", "--data", str(tmp_path / "nowhere"))
    assert r.returncode == 2
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and "nowhere" in last and "not found" in last


def test_bad_idx_magic(tmp_path):
    for stem in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"):
        with gzip.open(tmp_path / f"{stem}.gz", "wb") as fh:
            fh.write(b"\x12\x34\x56\x78" + b"\x00" * 16)
    r = run("--head", "isomaxplus", "--data", str(tmp_path))
    assert r.returncode == 2
    assert "bad magic number" in r.stderr.strip().splitlines()[-1]


def test_score_that_does_not_fit_the_head():
    r = run("--head", "softmax", "--score", "mds")
    assert r.returncode == 2
    assert "--score mds needs a distance head" in r.stderr


def test_invalid_manifest_is_refused_before_training(tmp_path):
    (tmp_path / "manifest.json").write_text(json.dumps({"default": "m", "models": []}))
    r = run("--head", "isomaxplus", "--models-dir", str(tmp_path), "--data", str(tmp_path / "nowhere"))
    assert r.returncode == 2
    last = r.stderr.strip().splitlines()
    assert last[0].startswith("error: ") and "does not match manifest.schema.json" in last[0]
    assert any(line.strip().startswith("models: ") for line in last[1:]), r.stderr
    assert "epoch" not in r.stderr, "refused before training"
