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
