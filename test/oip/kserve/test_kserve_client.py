"""isomax-serve as KServe's Python SDK sees it: kserve.InferenceRESTClient (async, httpx) over
the v2 protocol, pinned in requirements.txt.

Run by test/oip/kserve/run.sh against a live server (ISOMAX_URL) with the inputs that
test/oip/triton/make-inputs.ts makes (ISOMAX_INPUTS). The SDK reads a server's message only from
an error whose Content-Type is exactly "application/json": every error here must reach the
exception the client raises with the server's words in it.
"""
from __future__ import annotations

import asyncio
import base64

import httpx
import numpy as np
import pytest
from kserve import InferInput, InferRequest
from kserve.inference_client import InferenceRESTClient, RESTConfig
from live_service import MODEL, URL, classify, images  # test/oip/live_service.py


def run(coro_fn):
    """Each test on a fresh event loop and client (the SDK's client is async)."""
    async def main():
        client = InferenceRESTClient(RESTConfig(protocol="v2", retries=0, timeout=30))
        try:
            return await coro_fn(client)
        finally:
            await client.close()
    return asyncio.run(main())


def image_request(batch: list[bytes], model: str = MODEL) -> InferRequest:
    inp = InferInput("image", [len(batch)], "BYTES")
    inp.set_data_from_numpy(np.array(batch, dtype=np.object_), binary_data=True)
    return InferRequest(model_name=model, infer_inputs=[inp])


def error_of(coro_fn) -> httpx.HTTPStatusError:
    with pytest.raises(httpx.HTTPStatusError) as err:
        run(coro_fn)
    return err.value


def test_server_and_model_readiness():
    async def go(client):
        return (await client.is_server_live(URL), await client.is_server_ready(URL),
                await client.is_model_ready(URL, MODEL), await client.is_model_ready(URL, "no-such-model"))
    assert run(go) == (True, True, True, False)


def test_binary_images_give_what_classify_answers():
    batch = images()[:4]

    async def go(client):
        return await client.infer(URL, image_request(batch), model_name=MODEL)
    res = run(go)
    outputs = {o.name: o for o in res.outputs}
    expected = [classify(img) for img in batch]
    assert [x.decode() if isinstance(x, bytes) else x for x in outputs["label"].as_numpy().tolist()] == [e["label"] for e in expected]
    assert outputs["ood_reject"].as_numpy().tolist() == [e["ood"]["reject"] for e in expected]
    np.testing.assert_allclose(outputs["ood_score"].as_numpy(), [e["ood"]["score"] for e in expected], atol=1e-6, rtol=0)


def test_json_request_as_a_dict():
    img = images()[0]
    body = {"inputs": [{"name": "image", "shape": [1], "datatype": "BYTES", "data": [base64.b64encode(img).decode()]}]}

    async def go(client):
        return await client.infer(URL, body, model_name=MODEL)
    res = run(go)
    assert [o.name for o in res.outputs][:2] == ["logits", "label"]


def test_an_unknown_model_raises_with_the_servers_message():
    err = error_of(lambda client: client.infer(URL, image_request(images()[:1], "no-such-model"), model_name="no-such-model"))
    assert err.response.status_code == 404
    assert 'Model "no-such-model" is not served here' in str(err)


def test_a_bad_image_raises_with_the_servers_message():
    err = error_of(lambda client: client.infer(URL, image_request([b"not an image at all"]), model_name=MODEL))
    assert err.response.status_code == 400
    assert "not a PNG, JPEG or WebP" in str(err)


def test_a_bad_input_raises_with_the_servers_message():
    body = {"inputs": [{"name": "pixels", "shape": [1], "datatype": "INT8", "data": [1]}]}
    err = error_of(lambda client: client.infer(URL, body, model_name=MODEL))
    assert err.response.status_code == 400
    assert 'unknown input "pixels" (INT8)' in str(err)
