"""isomax-serve as the generated Open Inference Protocol client sees it (open-inference-openapi,
Fern-generated from the protocol's OpenAPI document; pinned in requirements.txt).

Run by test/oip/openapi-client/run.sh against a live server (ISOMAX_URL) with the inputs that
test/oip/triton/make-inputs.ts makes (ISOMAX_INPUTS). The client sends every optional field it
was given, None included, as JSON null (`"outputs": null`), which the service must read as absent.
"""
from __future__ import annotations

import base64

import pytest
from open_inference.openapi.client import OpenInferenceClient
from open_inference.openapi.core.api_error import ApiError
from open_inference.openapi.core.jsonable_encoder import jsonable_encoder
from open_inference.openapi.types import InferenceRequest, RequestInput, RequestOutput
from live_service import MODEL, SPEC, URL, classify, images  # test/oip/live_service.py


@pytest.fixture(scope="module")
def client():
    return OpenInferenceClient(base_url=URL, timeout=30)


def image_input(batch: list[bytes], parameters=None) -> RequestInput:
    return RequestInput(name="image", shape=[len(batch)], datatype="BYTES", parameters=parameters,
                        data=[base64.b64encode(b).decode() for b in batch])


def test_health_and_metadata(client):
    client.check_server_liveness()
    client.check_server_readiness()
    client.check_model_readiness(MODEL)
    assert client.read_server_metadata().name == "isomax-serve"
    meta = client.read_model_metadata(MODEL)
    assert meta.name == MODEL and meta.versions == [SPEC["version"]]
    assert "label" in [o.name for o in meta.outputs]


def test_infer_with_outputs_none_sends_nulls_and_gets_every_output(client):
    batch = images()[:3]
    request = InferenceRequest(id=None, parameters=None, inputs=[image_input(batch, parameters=None)], outputs=None)
    wire = jsonable_encoder(request)
    assert wire["outputs"] is None and wire["id"] is None and wire["inputs"][0]["parameters"] is None, "the client sends nulls"
    res = client.model_infer(MODEL, request=request)
    names = [o.name for o in res.outputs]
    assert names[:4] == ["logits", "label", "class_index", "ood_score"]
    outputs = {o.name: o for o in res.outputs}
    expected = [classify(img) for img in batch]
    assert list(outputs["label"].data.__root__) == [e["label"] for e in expected]
    assert [int(x) for x in outputs["class_index"].data.__root__] == [e["classIndex"] for e in expected]


def test_infer_with_requested_outputs(client):
    request = InferenceRequest(inputs=[image_input(images()[:2])], outputs=[RequestOutput(name="label", parameters=None)])
    res = client.model_version_infer(MODEL, SPEC["version"], request=request)
    assert [o.name for o in res.outputs] == ["label"]


def test_errors_carry_the_servers_message(client):
    with pytest.raises(ApiError) as err:
        client.model_infer("no-such-model", request=InferenceRequest(inputs=[image_input(images()[:1])], outputs=None))
    assert err.value.status_code == 404
    assert 'Model "no-such-model" is not served here' in err.value.body["error"]
    with pytest.raises(ApiError) as bad:
        client.model_infer(MODEL, request=InferenceRequest(inputs=[image_input([b"not an image at all"])], outputs=None))
    assert bad.value.status_code == 400
    assert "not a PNG, JPEG or WebP" in bad.value.body["error"]
