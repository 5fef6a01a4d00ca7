"""isomax-serve as Triton's own gRPC client sees it (tritonclient[grpc], pinned).

Run by test/oip/triton/run-grpc.sh against a live server (ISOMAX_GRPC, ISOMAX_URL) with the
inputs of make-inputs.ts (ISOMAX_INPUTS). For the same images, every value that comes back over
gRPC must equal what POST /classify answers (scores within 1e-6), at batch 1, 7 and the
advertised maximum, from encoded images and from FP32 tensors.
"""
from __future__ import annotations

import numpy as np
import pytest
import tritonclient.grpc as grpcclient
from tritonclient.utils import InferenceServerException
from live_service import GRPC, INPUTS, MODEL, OUTPUTS, SPEC, assert_matches_classify, assert_top_classes, classify, images  # test/oip/live_service.py


@pytest.fixture(scope="module")
def client():
    assert GRPC, "ISOMAX_GRPC is not set (test/oip/triton/run-grpc.sh sets it)"
    c = grpcclient.InferenceServerClient(url=GRPC)
    yield c
    c.close()


def image_input(batch: list[bytes]) -> grpcclient.InferInput:
    # [N, 1], as the model config's dims [1] per sample say (what perf_analyzer sends too).
    inp = grpcclient.InferInput("image", [len(batch), 1], "BYTES")
    inp.set_data_from_numpy(np.array(batch, dtype=np.object_).reshape(len(batch), 1))
    return inp


def batch_of(n: int) -> list[bytes]:
    base = images()
    return [base[i % len(base)] for i in range(n)]


def test_live_ready_and_metadata(client):
    assert client.is_server_live()
    assert client.is_server_ready()
    assert client.is_model_ready(MODEL)
    assert client.is_model_ready(MODEL, model_version=SPEC["version"])
    meta = client.get_server_metadata(as_json=True)
    assert meta["name"] == "isomax-serve"
    assert {"binary_tensor_data", "classification", "model_configuration", "statistics"} <= set(meta["extensions"])
    model = client.get_model_metadata(MODEL, as_json=True)
    assert model["name"] == MODEL and model["versions"] == [SPEC["version"]]
    assert model["inputs"] == [{"name": "image", "datatype": "BYTES", "shape": ["-1", "1"]}]
    assert [o["name"] for o in model["outputs"]] == OUTPUTS


def test_model_config_and_its_maximum_batch(client):
    config = client.get_model_config(MODEL, as_json=True)["config"]
    assert config["name"] == MODEL
    limit = int(config["max_batch_size"])
    assert limit == 16
    assert [i["name"] for i in config["input"]] == ["image"]
    assert config["input"][0]["data_type"] == "TYPE_STRING"
    c, h, w = SPEC["shape"]
    assert f'"{SPEC["tensorName"]}" (FP32 [N, {c}, {h}, {w}]' in config["parameters"]["request_inputs"]["string_value"]
    with pytest.raises(InferenceServerException) as err:
        client.infer(MODEL, [image_input(batch_of(limit + 1))])
    assert err.value.status() == "StatusCode.INVALID_ARGUMENT"
    assert "MAX_FILES" in err.value.message()


@pytest.mark.parametrize("n", [1, 7, 16])
def test_images_match_classify(client, n):
    batch = batch_of(n)
    result = client.infer(MODEL, [image_input(batch)], request_id=f"batch-{n}")
    assert result.get_response().id == f"batch-{n}"
    assert_matches_classify(result, batch)
    params = result.get_response(as_json=True)["parameters"]
    assert params["ood_score_kind"]["string_param"] == classify(batch[0])["ood"]["kind"]


def tensors() -> np.ndarray:
    c, h, w = SPEC["shape"]
    return np.stack([np.fromfile(INPUTS / f"tensor-{i}.f32", dtype="<f4").reshape(c, h, w) for i in range(2)])


def test_fp32_tensors_give_the_images_results(client):
    data = tensors()
    inp = grpcclient.InferInput(SPEC["tensorName"], list(data.shape), "FP32")
    inp.set_data_from_numpy(data)
    result = client.infer(MODEL, [inp])
    from_images = client.infer(MODEL, [image_input(images()[:2])])
    np.testing.assert_array_equal(result.as_numpy("logits"), from_images.as_numpy("logits"))
    assert_matches_classify(result, images()[:2])


def test_requested_outputs_and_the_classification_extension(client):
    batch = images()[:2]
    outputs = [grpcclient.InferRequestedOutput("logits", class_count=3), grpcclient.InferRequestedOutput("ood_reject")]
    result = client.infer(MODEL, [image_input(batch)], outputs=outputs)
    assert [o.name for o in result.get_response().outputs] == ["logits", "ood_reject"]
    top = result.as_numpy("logits")
    assert top.shape == (2, 3)
    assert_top_classes(top, batch)
    assert result.as_numpy("label") is None


def test_statistics_count_grpc_requests(client):
    before = client.get_inference_statistics(MODEL, as_json=True)["model_stats"][0]
    client.infer(MODEL, [image_input(images()[:3])])
    after = client.get_inference_statistics(MODEL, as_json=True)["model_stats"][0]
    assert int(after["inference_count"]) - int(before["inference_count"]) == 3
    assert int(after["inference_stats"]["success"]["count"]) - int(before["inference_stats"]["success"]["count"]) == 1


def test_errors_are_status_codes_with_the_servers_messages(client):
    with pytest.raises(InferenceServerException) as err:
        client.infer("no-such-model", [image_input(images()[:1])])
    assert err.value.status() == "StatusCode.NOT_FOUND"
    assert 'Model "no-such-model" is not served here' in err.value.message()
    with pytest.raises(InferenceServerException) as err:
        client.infer(MODEL, [image_input([b"not an image at all"])])
    assert err.value.status() == "StatusCode.INVALID_ARGUMENT"
    assert "not a PNG, JPEG or WebP" in err.value.message()
    bad = grpcclient.InferInput(SPEC["tensorName"], [1, *SPEC["shape"]], "FP32")
    bad.set_data_from_numpy(np.full([1, *SPEC["shape"]], np.nan, dtype=np.float32))
    with pytest.raises(InferenceServerException) as err:
        client.infer(MODEL, [bad])
    assert err.value.status() == "StatusCode.INVALID_ARGUMENT"
    assert "finite" in err.value.message()
    with pytest.raises(InferenceServerException) as err:
        client.get_model_repository_index()
    assert err.value.status() == "StatusCode.UNIMPLEMENTED", "no ADMIN_TOKEN: no repository RPCs"
