"""isomax-serve as Triton's own HTTP client sees it (tritonclient[http], pinned).

Run by test/oip/triton/run.sh against a live server (ISOMAX_URL) with inputs made by
make-inputs.ts (ISOMAX_INPUTS). For the same images, the labels, scores, p-values and reject
flags that come back through the Open Inference Protocol must equal what POST /classify
answers (scores within 1e-6).
"""
from __future__ import annotations

import json
import urllib.request

import numpy as np
import pytest
import tritonclient.http as httpclient
from tritonclient.utils import InferenceServerException
from live_service import INPUTS, MODEL, OUTPUTS, SPEC, URL, assert_matches_classify, assert_top_classes, classify, images  # test/oip/live_service.py


@pytest.fixture(scope="module")
def client():
    c = httpclient.InferenceServerClient(url=URL.removeprefix("http://"))
    yield c
    c.close()


def image_input(batch: list[bytes], binary: bool = True) -> httpclient.InferInput:
    data = np.array(batch, dtype=np.object_)
    inp = httpclient.InferInput("image", [len(batch)], "BYTES")
    inp.set_data_from_numpy(data, binary_data=binary)
    return inp


def test_server_and_model_health_and_metadata(client):
    assert client.is_server_live()
    assert client.is_server_ready()
    assert client.is_model_ready(MODEL)
    assert client.is_model_ready(MODEL, model_version=SPEC["version"])
    assert not client.is_model_ready("no-such-model")
    meta = client.get_server_metadata()
    assert meta["name"] == "isomax-serve"
    assert {"binary_tensor_data", "classification"} <= set(meta["extensions"])
    model = client.get_model_metadata(MODEL)
    assert model["name"] == MODEL and model["versions"] == [SPEC["version"]]
    assert model["inputs"] == [{"name": "image", "datatype": "BYTES", "shape": [-1, 1]}]
    assert [o["name"] for o in model["outputs"]] == OUTPUTS


def test_eight_png_and_jpeg_images_in_binary_match_classify(client):
    batch = images()
    assert len(batch) == 8
    result = client.infer(MODEL, [image_input(batch)])
    expected = assert_matches_classify(result, batch)
    params = result.get_response()["parameters"]
    assert params["ood_score_kind"] == expected[0]["ood"]["kind"]
    assert params["ood_calibration"] in ("global", "per-class")
    np.testing.assert_allclose(result.as_numpy("ood_threshold"), [e["ood"]["threshold"] for e in expected], atol=1e-4, rtol=0)


def tensors() -> np.ndarray:
    c, h, w = SPEC["shape"]
    return np.stack([np.fromfile(INPUTS / f"tensor-{i}.f32", dtype="<f4").reshape(c, h, w) for i in range(2)])


@pytest.mark.parametrize("binary", [False, True], ids=["json", "binary"])
def test_fp32_tensors_give_the_images_results(client, binary):
    data = tensors()
    inp = httpclient.InferInput(SPEC["tensorName"], list(data.shape), "FP32")
    inp.set_data_from_numpy(data, binary_data=binary)
    outputs = [httpclient.InferRequestedOutput(name, binary_data=binary) for name in ("logits", "ood_score", "label")]
    result = client.infer(MODEL, [inp], outputs=outputs)
    from_images = client.infer(MODEL, [image_input(images()[:2])])
    np.testing.assert_array_equal(result.as_numpy("logits"), from_images.as_numpy("logits"))
    np.testing.assert_allclose(result.as_numpy("ood_score"), from_images.as_numpy("ood_score"), atol=1e-6, rtol=0)
    # BYTES come back as str from JSON and as bytes from binary: compare the text.
    text = [x.decode() if isinstance(x, bytes) else x for x in result.as_numpy("label").tolist()]
    assert text == [x.decode() for x in from_images.as_numpy("label").tolist()]


def test_a_requested_subset_of_outputs(client):
    outputs = [httpclient.InferRequestedOutput("ood_score"), httpclient.InferRequestedOutput("ood_reject")]
    result = client.infer(MODEL, [image_input(images()[:3])], outputs=outputs)
    assert [o["name"] for o in result.get_response()["outputs"]] == ["ood_score", "ood_reject"]
    assert result.as_numpy("label") is None


def test_the_classification_extension(client):
    batch = images()[:2]
    result = client.infer(MODEL, [image_input(batch)], outputs=[httpclient.InferRequestedOutput("logits", class_count=3)])
    top = result.as_numpy("logits")
    assert top.shape == (2, 3)
    for value, img in zip(assert_top_classes(top, batch), batch):
        assert float(value) == pytest.approx(max(result_logits(img)), abs=1e-6)


def result_logits(img: bytes) -> list[float]:
    req = urllib.request.Request(f"{URL}/classify?include=logits", data=img, headers={"Content-Type": "image/png" if img[:4] == b"\x89PNG" else "image/jpeg"}, method="POST")
    with urllib.request.urlopen(req, timeout=30) as res:
        return json.loads(res.read())["logits"]


def test_an_unknown_model_raises_with_the_servers_message(client):
    with pytest.raises(InferenceServerException) as err:
        client.infer("no-such-model", [image_input(images()[:1])])
    assert 'Model "no-such-model" is not served here' in str(err.value)


def test_a_bad_image_raises_with_the_servers_message(client):
    with pytest.raises(InferenceServerException) as err:
        client.infer(MODEL, [image_input([b"not an image at all"])])
    assert "not a PNG, JPEG or WebP" in str(err.value)


@pytest.mark.parametrize("algorithm", ["gzip", "deflate"])
def test_compressed_requests_give_the_same_answer(client, algorithm):
    """request_compression_algorithm: the body goes with Content-Encoding gzip or deflate."""
    batch = images()[:3]
    plain = client.infer(MODEL, [image_input(batch)])
    packed = client.infer(MODEL, [image_input(batch)], request_compression_algorithm=algorithm)
    for name in ("label", "class_index", "ood_reject"):
        assert packed.as_numpy(name).tolist() == plain.as_numpy(name).tolist()
    np.testing.assert_array_equal(packed.as_numpy("logits"), plain.as_numpy("logits"))
    data = tensors()
    inp = httpclient.InferInput(SPEC["tensorName"], list(data.shape), "FP32")
    inp.set_data_from_numpy(data, binary_data=True)
    tensor = client.infer(MODEL, [inp], request_compression_algorithm=algorithm)
    np.testing.assert_array_equal(tensor.as_numpy("logits"), client.infer(MODEL, [image_input(images()[:2])]).as_numpy("logits"))


def test_a_response_compression_request_is_answered_uncompressed(client):
    """response_compression_algorithm sends Accept-Encoding; the service answers identity,
    which HTTP allows and the client reads (it inflates only what says Content-Encoding)."""
    batch = images()[:2]
    result = client.infer(MODEL, [image_input(batch)], response_compression_algorithm="gzip")
    assert [b.decode() for b in result.as_numpy("label")] == [classify(img)["label"] for img in batch]


def test_model_config_states_what_a_request_may_carry(client):
    config = client.get_model_config(MODEL)
    assert config["name"] == MODEL
    # max_batch_size is the most images one request may carry (MAX_FILES, 16 by default):
    # that many are served, one more is refused.
    limit = config["max_batch_size"]
    assert limit == 16
    one = images()[0]
    assert len(client.infer(MODEL, [image_input([one] * limit)]).as_numpy("label")) == limit
    with pytest.raises(InferenceServerException) as err:
        client.infer(MODEL, [image_input([one] * (limit + 1))])
    assert "MAX_FILES" in str(err.value)
    # The one input a request requires, as metadata lists it (what perf_analyzer reads); the
    # preprocessed FP32 tensor is the alternative the config names in its parameters.
    inputs = {i["name"]: i for i in config["input"]}
    assert set(inputs) == {"image"}
    assert inputs["image"]["data_type"] == "TYPE_STRING"
    c, h, w = SPEC["shape"]
    alternative = config["parameters"]["request_inputs"]["string_value"]
    assert f'"{SPEC["tensorName"]}" (FP32 [N, {c}, {h}, {w}]' in alternative
    outputs = {o["name"] for o in config["output"]}
    assert {"logits", "label", "ood_score", "ood_reject"} <= outputs


def model_stats(client) -> dict:
    stats = client.get_inference_statistics(MODEL)["model_stats"]
    assert [s["name"] for s in stats] == [MODEL]
    return stats[0]


def test_inference_statistics_count_the_requests_sent(client):
    """Triton's semantics: inference_stats.success counts requests, inference_count the
    inferences (images) in them; a failed request counts in fail."""
    before = model_stats(client)
    sent_images = 0
    for n in (1, 2, 3):
        client.infer(MODEL, [image_input(images()[:n])])
        sent_images += n
    with pytest.raises(InferenceServerException):
        client.infer(MODEL, [image_input([b"not an image at all"])])
    after = model_stats(client)
    success = after["inference_stats"]["success"]["count"] - before["inference_stats"]["success"]["count"]
    assert after["inference_count"] - before["inference_count"] == sent_images
    assert success == 3, f"success counts requests: 3 sent, {success} counted"
    assert after["inference_stats"]["fail"]["count"] - before["inference_stats"]["fail"]["count"] == 1
    assert after["inference_stats"]["success"]["ns"] > before["inference_stats"]["success"]["ns"]
    assert after["execution_count"] > before["execution_count"]
    assert after["last_inference"] >= before["last_inference"] > 0 or after["last_inference"] > 0
