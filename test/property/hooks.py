"""Schemathesis hooks for test/property/run-schemathesis.sh (loaded via SCHEMATHESIS_HOOKS).

Registers two custom checks. `not_a_server_error_but_not_ready` is schemathesis' not_a_server_error
with one exception: a readiness route (`/health/ready`, `/v2/health/ready`, `/v2/models/{name}/ready`)
answering its documented 503, "not ready" — for a model the repository lists but does not serve (an
earlier case unloaded it through the repository API), that is the answer, not a fault. `error_body_shape`: every 4xx/5xx response must be JSON of
exactly the documented Error shape, {"error": {"code": <str>, "message": <str>}}, with
Content-Type application/json — or, on the Open Inference Protocol's routes (/v2/...), that
protocol's own shape, {"error": <str>}, which Triton's and KServe's clients read. response_schema_conformance already covers the statuses the
OpenAPI document lists with the Error schema; this check also covers statuses it does not
list (405, 406, 500, ...), so no error of any kind can slip out in another shape.
"""
from __future__ import annotations

import json

import schemathesis


def _fail(message: str, response) -> None:
    body = response.content[:500].decode("utf-8", errors="replace")
    raise AssertionError(f"{message}\nStatus: {response.status_code}\nBody: {body}")


READY_ROUTES = ("/health/ready", "/v2/health/ready")


@schemathesis.check
def not_a_server_error_but_not_ready(ctx, response, case):
    """No 5xx, except a readiness route's documented 503 (not ready)."""
    if response.status_code < 500:
        return None
    path = case.formatted_path if hasattr(case, "formatted_path") else case.path
    if response.status_code == 503 and (path in READY_ROUTES or (path.startswith("/v2/models/") and path.endswith("/ready"))):
        return None
    _fail(f"Server error {response.status_code}", response)
    return None


@schemathesis.check
def error_body_shape(ctx, response, case):
    """Error responses are {"error": {"code": string, "message": string}} JSON."""
    if response.status_code < 400:
        return None
    content_type = ";".join(response.headers.get("content-type", [])).split(";")[0].strip().lower()
    if content_type != "application/json":
        _fail(f"Error response has Content-Type {content_type or '(none)'!r}, not application/json", response)
    try:
        body = json.loads(response.content)
    except ValueError as exc:
        _fail(f"Error response body is not valid JSON ({exc})", response)
    if not isinstance(body, dict) or set(body) != {"error"}:
        _fail('Error response body is not an object with exactly one key, "error"', response)
    error = body["error"]
    path = case.formatted_path if hasattr(case, "formatted_path") else case.path
    if path == "/v2" or path.startswith("/v2/"):
        if not isinstance(error, str) or error == "":
            _fail('"error" on an Open Inference Protocol route is not a non-empty string', response)
        return None
    if not isinstance(error, dict):
        _fail('"error" is not an object', response)
    for key in ("code", "message"):
        if not isinstance(error.get(key), str) or error[key] == "":
            _fail(f'"error.{key}" is missing, empty or not a string', response)
    extra = sorted(set(error) - {"code", "message"})
    if extra:
        _fail(f'"error" has undocumented keys: {", ".join(extra)}', response)
    return None
