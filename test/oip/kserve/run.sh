#!/usr/bin/env bash
# KServe's Python SDK (kserve.InferenceRESTClient, v2) against a live isomax-serve; ends with
#   kserve: N passed, F failed
#   bash test/oip/kserve/run.sh VENV_PYTHON
here="$(cd "$(dirname "$0")" && pwd)"
exec bash "$here/../run-client.sh" kserve "${1:-/tmp/isomax-venv/bin/python}" "$here/test_kserve_client.py" \
  'import kserve.inference_client, pytest' test/oip/kserve/requirements.txt
