#!/usr/bin/env bash
# The generated Open Inference Protocol client (open-inference-openapi) against a live
# isomax-serve; ends with
#   open-inference-openapi: N passed, F failed
#   bash test/oip/openapi-client/run.sh VENV_PYTHON
here="$(cd "$(dirname "$0")" && pwd)"
exec bash "$here/../run-client.sh" open-inference-openapi "${1:-/tmp/isomax-venv/bin/python}" "$here/test_openapi_client.py" \
  'import open_inference.openapi.client, pytest' test/oip/openapi-client/requirements.txt
