#!/usr/bin/env bash
# tritonclient (Triton's own Python client) against a live isomax-serve (test/oip/run-client.sh:
# build, inputs, server on a free port, pytest); ends with one line for CI to grep:
#   tritonclient: N passed, F failed
#   bash test/oip/triton/run.sh VENV_PYTHON
here="$(cd "$(dirname "$0")" && pwd)"
exec bash "$here/../run-client.sh" tritonclient "${1:-/tmp/isomax-venv/bin/python}" "$here/test_tritonclient.py" \
  'import tritonclient.http, pytest' test/oip/triton/requirements.txt
