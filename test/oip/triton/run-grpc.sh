#!/usr/bin/env bash
# tritonclient.grpc (Triton's own Python gRPC client) against a live isomax-serve
# (test/oip/run-client.sh: build, inputs, server on free HTTP and gRPC ports, pytest); ends
# with one line for CI to grep:
#   tritonclient-grpc: N passed, F failed
#   bash test/oip/triton/run-grpc.sh VENV_PYTHON
here="$(cd "$(dirname "$0")" && pwd)"
exec bash "$here/../run-client.sh" tritonclient-grpc "${1:-/tmp/isomax-venv/bin/python}" "$here/test_grpc.py" \
  'import tritonclient.grpc, pytest' test/oip/triton/requirements.txt
