"""The live service the client tests run against (test/oip/run-client.sh starts it and sets
ISOMAX_URL and ISOMAX_INPUTS, and puts this folder on PYTHONPATH): its address, the inputs
triton/make-inputs.ts made, and POST /classify's answer as the reference every client must match."""
from __future__ import annotations

import json
import os
import urllib.request
from pathlib import Path

URL = os.environ["ISOMAX_URL"]
INPUTS = Path(os.environ["ISOMAX_INPUTS"])
SPEC = json.loads((INPUTS / "inputs.json").read_text())
MODEL = SPEC["model"]


def images() -> list[bytes]:
    return [(INPUTS / name).read_bytes() for name in SPEC["images"]]


def classify(image: bytes) -> dict:
    """What POST /classify answers for the same image (the reference)."""
    content_type = "image/png" if image[:4] == b"\x89PNG" else "image/jpeg"
    req = urllib.request.Request(f"{URL}/classify", data=image, headers={"Content-Type": content_type}, method="POST")
    with urllib.request.urlopen(req, timeout=30) as res:
        return json.loads(res.read())


# host:port of the Open Inference Protocol over gRPC (run-client.sh sets it; GRPC_PORT).
GRPC = os.environ.get("ISOMAX_GRPC", "")


# Every output a model with a confidence threshold answers, in the order the metadata lists them.
OUTPUTS = ["logits", "label", "class_index", "ood_score", "ood_threshold", "ood_reject", "ood_p_value", "min_distance",
           "confidence", "confidence_threshold", "reject", "reject_reasons"]


def assert_matches_classify(result, batch: list[bytes]) -> list[dict]:
    """A tritonclient result (HTTP or gRPC: both have as_numpy) against POST /classify on the same
    images: every value equal, scores within 1e-6. Returns /classify's answers."""
    import numpy as np

    expected = [classify(img) for img in batch]
    assert [b.decode() for b in result.as_numpy("label")] == [e["label"] for e in expected]
    assert result.as_numpy("class_index").tolist() == [e["classIndex"] for e in expected]
    assert result.as_numpy("ood_reject").tolist() == [e["ood"]["reject"] for e in expected]
    for output, field in [("ood_score", "score"), ("ood_p_value", "pValue"), ("min_distance", "minDistance"), ("ood_threshold", "threshold")]:
        np.testing.assert_allclose(result.as_numpy(output), [e["ood"][field] for e in expected], atol=1e-6, rtol=0)
    # The verdict over both reasons, as POST /classify gives it.
    assert result.as_numpy("reject").tolist() == [e["reject"] for e in expected]
    assert [b.decode() for b in result.as_numpy("reject_reasons")] == [",".join(e["rejectReasons"]) for e in expected]
    np.testing.assert_allclose(result.as_numpy("confidence"), [e["confidence"]["value"] for e in expected], atol=1e-6, rtol=0)
    np.testing.assert_allclose(result.as_numpy("confidence_threshold"), [e["confidence"]["threshold"] for e in expected], atol=1e-6, rtol=0)
    assert result.as_numpy("logits").shape == (len(batch), len(SPEC["labels"]))
    return expected


def assert_top_classes(top, batch: list[bytes]) -> list[str]:
    """The classification extension's rows ("value:index:label", best first) against POST /classify:
    each image's first entry names its class. Returns the first entries' values."""
    values = []
    for row, img in zip(top, batch, strict=True):
        expected = classify(img)
        value, index, label = row[0].decode().split(":", 2)
        assert int(index) == expected["classIndex"] and label == expected["label"]
        values.append(value)
    return values
