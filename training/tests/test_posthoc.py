"""training/posthoc.py: the ONNX graph evaluated in torch matches ONNX Runtime's fixture; the
Gaussian fit recovers a known Mahalanobis distance; the export-friendly form equals the
definition; the graph surgery keeps logits bit for bit and adds a correct `mahalanobis` output;
the score is chosen before any test image or MNIST digit is loaded; the published model folder
and manifest entry agree with each other and the schema."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch

import ood_sets
import posthoc
from data import load_fashion, train_val_split
from mahalanobis import add_score_output, distances_direct, distances_export_form, fit_gaussian
from mahalanobis import score as mahalanobis_score
from onnx_eval import OnnxEvalError, OnnxGraph
from publish import manifest_errors, sha256

torch.set_num_threads(2)
REPO = Path(__file__).resolve().parents[2]
BASE = REPO / "models" / "fashion-mnist-isomaxplus" / "model.onnx"
FIXTURE = json.loads((REPO / "test" / "fixtures" / "parity" / "fashion-mnist-isomaxplus.json").read_text())
PUBLISHED = REPO / "models" / "fashion-mnist-isomaxplus-md"


@pytest.fixture(scope="module")
def base():
    return OnnxGraph(BASE)


@pytest.fixture(scope="module")
def small(base):
    """Features of 1,000 training-split images and 200 held-out images (the real split)."""
    images, labels = load_fashion(split="train")
    train_idx, val_idx = train_val_split(len(images), 5000, 0)
    return {"train": posthoc.extract(base, images[train_idx[:1000]]), "train_y": labels[train_idx[:1000]],
            "val_x": images[val_idx[:200]]}


def fixture_input() -> torch.Tensor:
    return torch.tensor(FIXTURE["input"], dtype=torch.float32).reshape(FIXTURE["shape"])


# --- the evaluator ------------------------------------------------------------------------------

def test_the_evaluator_reproduces_the_parity_fixture(base):
    logits = base.run(fixture_input())["logits"].double()
    assert (logits - torch.tensor(FIXTURE["logits"], dtype=torch.float64)).abs().max().item() <= 1e-5
    # and the fixture's input is the service's transform of its images
    images = np.asarray(FIXTURE["images"], dtype=np.uint8).reshape(-1, 28, 28)
    assert torch.equal(posthoc.to_tensor(images), fixture_input())


def test_the_evaluator_returns_intermediate_tensors_and_starts_from_given_ones(base):
    out = base.run(fixture_input(), ["logits", *posthoc.FEATURE_TENSORS.values()])
    assert out[posthoc.FEATURE_TENSORS["pooled"]].shape == (8, 128)
    assert out[posthoc.FEATURE_TENSORS["head-input"]].shape == (8, 128)
    assert (out[posthoc.FEATURE_TENSORS["head-input"]] >= 0).all()  # a ReLU output
    again = base.run(None, ["logits"], given={posthoc.FEATURE_TENSORS["pooled"]: out[posthoc.FEATURE_TENSORS["pooled"]]})
    assert torch.equal(again["logits"], out["logits"])
    with pytest.raises(OnnxEvalError, match="no tensor named"):
        base.run(fixture_input(), ["nope"])
    with pytest.raises(OnnxEvalError, match="need the graph input"):
        base.run(None, ["logits"])


def test_an_unknown_operator_is_refused_by_name():
    model = onnx.load(str(BASE))
    model.graph.node[1].op_type = "Elu"
    with pytest.raises(OnnxEvalError, match="Elu"):
        OnnxGraph(model)


# --- the Gaussian ------------------------------------------------------------------------------

def test_the_fit_recovers_a_known_mahalanobis_distance():
    rng = np.random.default_rng(0)
    d, c, n = 4, 3, 60_000
    means = rng.normal(0, 3, size=(c, d))
    a = rng.normal(size=(d, d))
    cov = a @ a.T + 0.5 * np.eye(d)
    y = rng.integers(0, c, size=n)
    x = means[y] + rng.multivariate_normal(np.zeros(d), cov, size=n)
    g = fit_gaussian(x, y, c, normalise=False)
    probes = rng.normal(0, 3, size=(50, d))
    diff = probes[:, None, :] - means[None]
    truth = np.einsum("ncd,de,nce->nc", diff, np.linalg.inv(cov), diff)
    assert np.allclose(distances_direct(g, probes), truth, rtol=0.03, atol=0.05)
    assert np.allclose(g.means, means, atol=0.05)
    assert np.allclose(g.covariance, cov, rtol=0.05, atol=0.05)
    assert np.allclose(mahalanobis_score(g, probes), -truth.min(axis=1), rtol=0.03, atol=0.05)


def test_the_fit_is_the_pooled_within_class_covariance_and_normalises_when_asked():
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(300, 5)) + 2, np.repeat(np.arange(3), 100)
    g = fit_gaussian(x, y, 3, normalise=True)
    xn = x / np.linalg.norm(x, axis=1, keepdims=True)
    mu = np.stack([xn[y == k].mean(0) for k in range(3)])
    r = xn - mu[y]
    assert np.allclose(g.means, mu)
    assert np.allclose(g.covariance, r.T @ r / 300)
    assert np.allclose(g.whiten @ g.whiten.T, np.linalg.inv(g.covariance))
    with pytest.raises(np.linalg.LinAlgError, match="ridge"):
        fit_gaussian(np.repeat(x[:, :1], 5, axis=1), y, 3, normalise=False)  # rank 1
    assert fit_gaussian(np.repeat(x[:, :1], 5, axis=1), y, 3, normalise=False, ridge=1e-3).condition > 1


def test_the_export_form_equals_the_direct_form():
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(2000, 16)) * rng.uniform(0.1, 3, size=16) + 1, rng.integers(0, 10, 2000)
    for normalise in (False, True):
        g = fit_gaussian(x, y, 10, normalise)
        probes = rng.normal(size=(100, 16)) * 2
        assert np.allclose(distances_export_form(g, probes), distances_direct(g, probes), rtol=1e-10, atol=1e-9)


# --- the graph surgery ------------------------------------------------------------------------

@pytest.mark.parametrize("detector", ["mahalanobis-pooled-l2", "mahalanobis-head"])
def test_the_surgery_keeps_logits_and_adds_a_correct_mahalanobis_output(base, small, detector):
    feature, normalise = posthoc.DETECTORS[detector]
    g = fit_gaussian(small["train"][feature], small["train_y"], 10, normalise)
    model = add_score_output(base.model, g, posthoc.FEATURE_TENSORS[feature])
    onnx.checker.check_model(model)
    assert [o.name for o in model.graph.output] == ["logits", "mahalanobis"]
    assert model.graph.output[0] == base.model.graph.output[0]
    assert list(model.graph.node)[:len(base.model.graph.node)] == list(base.model.graph.node)
    out = model.graph.output[1].type.tensor_type
    assert out.elem_type == onnx.TensorProto.FLOAT and [d.dim_param for d in out.shape.dim] == ["batch"]
    assert [o.version for o in model.opset_import] == [o.version for o in base.model.opset_import]

    images = np.concatenate([np.asarray(FIXTURE["images"], dtype=np.uint8).reshape(-1, 28, 28), small["val_x"]])
    check = posthoc.check_surgery(base, OnnxGraph(model), g, feature, images)
    assert check["max_rel"] <= 1e-4 and check["shape"] == [len(images)]
    new = OnnxGraph(model).run(fixture_input())
    assert torch.equal(new["logits"], base.run(fixture_input())["logits"])
    with pytest.raises(ValueError, match="already has"):
        add_score_output(model, g, posthoc.FEATURE_TENSORS[feature])


# --- selection sees validation data only ------------------------------------------------------

def test_select_score_takes_the_best_mean_and_breaks_ties_by_order():
    rng = np.random.default_rng(3)
    ident = {k: rng.normal(1, 1, 400) for k in posthoc.CANDIDATES}
    ood = {s: {k: rng.normal(0, 1, 300) for k in posthoc.CANDIDATES} for s in ("a", "b")}
    ood["a"]["mahalanobis-head"] = ood["a"]["mahalanobis-head"] - 5
    assert posthoc.select_score(ident, ood)[0] == "mahalanobis-head"
    same = {k: ident["mds"] for k in posthoc.CANDIDATES}
    tied = {s: {k: ood["b"]["mds"] for k in posthoc.CANDIDATES} for s in ("a", "b")}
    assert posthoc.select_score(same, tied)[0] == "mds"


def test_the_score_is_chosen_before_any_test_image_or_mnist_digit_exists(monkeypatch, capsys):
    """Runs the whole command on small subsets with the test split and MNIST locked until the
    choice is made: any read of them before select_score has returned fails the run."""
    events = []
    real_load, real_mnist, real_select = posthoc.load_fashion, ood_sets.load_mnist, posthoc.select_score

    def guard(what):
        if "selected" not in events:
            raise AssertionError(f"{what} loaded before the score was chosen")
        events.append(what)

    def load_fashion(directory, split="train"):
        if split != "train":
            guard(f"fashion-mnist {split}")
        return real_load(directory, split)

    def load_mnist(*a, **k):
        guard("mnist")
        return real_mnist(*a, **k)

    def select_score(val_id, val_ood):
        for arrays in [val_id, *val_ood.values()]:
            assert all(len(v) == 250 for v in arrays.values())  # the held-out subset and sets made from it
        result = real_select(val_id, val_ood)
        events.append("selected")
        return result

    monkeypatch.setattr(posthoc, "load_fashion", load_fashion)
    monkeypatch.setattr(ood_sets, "load_mnist", load_mnist)
    monkeypatch.setattr(posthoc, "select_score", select_score)
    assert posthoc.main(["--limit", "250", "--no-write", "--no-ort"]) == 0
    assert events == ["selected", "fashion-mnist test", "mnist"]
    printed = capsys.readouterr().out
    assert "chosen:" in printed and "reported once" in printed
    assert "npm run calibrate -- --model fashion-mnist-isomaxplus-md --score mahalanobis --data fashion-mnist:val" in printed


def test_validation_sets_come_from_the_given_images_and_validation_seeds():
    val = np.random.default_rng(4).integers(0, 256, size=(40, 28, 28), dtype=np.uint8)
    sets = ood_sets.validation_sets(val, 4321)
    assert set(sets) == {"inverted", "pixel-shuffled", "mosaic", "gaussian-noise", "uniform-noise", "glyphs"}
    assert all(s.shape == val.shape and s.dtype == np.uint8 for s in sets.values())
    assert np.array_equal(sets["inverted"], 255 - val)
    assert np.array_equal(np.sort(sets["pixel-shuffled"].reshape(40, -1)), np.sort(val.reshape(40, -1)))
    assert sets["glyphs"].max() > 100 and (sets["glyphs"].reshape(40, -1) > 0).mean() < 0.5  # strokes on black


# --- the service's built-in OOD sets, reproduced ----------------------------------------------

def test_mulberry32_matches_the_services_prng():
    # prng(1234)() ×3 and prng(5000)() from src/tools/datasets/builtin.ts, run under node
    assert list(ood_sets.mulberry32(1234, 3)) == [0.07329497812315822, 0.7034119898453355, 0.9028560190927237]
    assert ood_sets.mulberry32(5000, 1)[0] == 0.02629107586108148
    assert np.array_equal(ood_sets.mulberry32(1234, 2, start=1), ood_sets.mulberry32(1234, 3)[1:])


def test_average_precision_matches_the_services_definition():
    pos, neg = np.array([3.0, 2.0, 2.0, 0.5]), np.array([2.0, 1.0, 0.0])
    # ranked: 3 (P) → P 1/1 at recall ¼; the tie at 2 (2P, 1N) one step → 3/4 at recall ¾; 1 (N); 0.5 (P) → 4/6
    assert posthoc.average_precision(pos, neg) == pytest.approx(0.25 * 1 + 0.5 * 0.75 + 0.25 * 4 / 6)
    m = posthoc.metrics(np.arange(10.0) + 10, np.arange(10.0))
    assert m == {"auroc": 1.0, "tnr_at_95_tpr": 1.0, "aupr_in": 1.0, "aupr_out": 1.0}


# --- what is published --------------------------------------------------------------------------

def test_the_md_entry_matches_the_json_schema_and_has_no_ood_block():
    entry = posthoc.build_md_entry("fashion-mnist-isomaxplus-md", "1.0.0", "0" * 64)
    assert "ood" not in entry
    assert entry["output"] == {"name": "logits", "holds": "negative-distances", "scores": {"mahalanobis": "mahalanobis"}}
    validator = posthoc.manifest_validator()
    assert manifest_errors({"default": "x", "models": [entry]}, validator) == []


def test_a_schema_without_output_scores_is_extended_with_a_warning(tmp_path, capsys):
    schema = json.loads(posthoc.SCHEMA_PATH.read_text())
    schema["properties"]["models"]["items"]["properties"]["output"]["properties"].pop("scores", None)
    (tmp_path / "old.json").write_text(json.dumps(schema))
    entry = posthoc.build_md_entry("m", "1.0.0", "0" * 64)
    assert manifest_errors({"default": "m", "models": [entry]}, posthoc.manifest_validator(tmp_path / "old.json")) == []
    assert "no output.scores" in capsys.readouterr().err
    entry["output"]["scores"] = {"energy": "mahalanobis"}  # only graph score kinds may be named
    assert manifest_errors({"default": "m", "models": [entry]}, posthoc.manifest_validator(tmp_path / "old.json"))


def test_the_published_model_agrees_with_its_entry_and_fixture():
    manifest = json.loads((REPO / "models" / "manifest.json").read_text())
    entry = next(m for m in manifest["models"] if m["name"] == PUBLISHED.name)
    assert "ood" not in entry or entry["ood"]["score"] == "mahalanobis"
    assert entry["sha256"] == sha256(PUBLISHED / "model.onnx")
    assert entry["output"]["scores"] == {"mahalanobis": "mahalanobis"}
    assert manifest["default"] == PUBLISHED.name  # the shipped default since issue 13
    assert manifest_errors(manifest, posthoc.manifest_validator()) == []
    graph = OnnxGraph(PUBLISHED / "model.onnx")
    fixture = json.loads((PUBLISHED / "parity.json").read_text())
    out = graph.run(torch.tensor(fixture["input"], dtype=torch.float32).reshape(fixture["shape"]))
    assert out["logits"].double().sub(torch.tensor(FIXTURE["logits"], dtype=torch.float64)).abs().max() <= 1e-5
    assert np.allclose(out["mahalanobis"].numpy(), fixture["mahalanobis"], rtol=1e-6)
    assert fixture["input"] == FIXTURE["input"]  # the same 8 test images as the base model's fixture


def test_validation_only_writes_the_validation_table_and_never_loads_a_test_image(monkeypatch, tmp_path, capsys):
    """Issue 23: a retrained model is compared with the served one on validation data before
    anything else is looked at; --validation-only must stop before the test split or MNIST."""
    real_load = posthoc.load_fashion

    def load_fashion(directory, split="train"):
        assert split == "train", f"fashion-mnist {split} loaded by --validation-only"
        return real_load(directory, split)

    def load_mnist(*a, **k):
        raise AssertionError("mnist loaded by --validation-only")

    monkeypatch.setattr(posthoc, "load_fashion", load_fashion)
    monkeypatch.setattr(ood_sets, "load_mnist", load_mnist)
    out = tmp_path / "val.json"
    assert posthoc.main(["--limit", "250", "--validation-only", str(out)]) == 0
    table = json.loads(out.read_text())
    assert table["n_id"] == 250 and table["sets"] == list(ood_sets.validation_sets(np.zeros((1, 28, 28), np.uint8), 1))
    assert set(table["auroc"]) == set(posthoc.CANDIDATES) == set(table["tnr_at_95_tpr"])
    best = max(posthoc.CANDIDATES, key=lambda k: table["auroc"][k]["mean"])
    assert table["choice"] == best
    for k in posthoc.CANDIDATES:
        assert table["auroc"][k]["mean"] == pytest.approx(np.mean([table["auroc"][k][s] for s in table["sets"]]))
        assert all(0 <= table["tnr_at_95_tpr"][k][s] <= 1 for s in table["sets"])
    assert 0.8 < table["validation_accuracy"] <= 1
    printed = capsys.readouterr().out
    assert "validation TNR at 95 % TPR" in printed and "reported once" not in printed
    assert not (posthoc.REPO_ROOT / "models" / "fashion-mnist-isomaxplus-md" / ".model.onnx.staged").exists()
