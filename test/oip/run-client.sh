#!/usr/bin/env bash
# One Python client's pytest file against a live isomax-serve, for test/oip/<client>/run.sh:
# builds the service, makes the inputs (triton/make-inputs.ts: real PNG and JPEG images, and
# the tensors preprocess() makes of two), starts dist/src/server.js on a free port, runs the
# tests with ISOMAX_URL and ISOMAX_INPUTS set and this folder on PYTHONPATH (live_service.py),
# and ends with one line for CI to grep:
#   NAME: N passed, F failed
#   bash test/oip/run-client.sh NAME VENV_PYTHON TEST_FILE IMPORT_CHECK REQUIREMENTS
set -uo pipefail
name="$1"; py="$2"; test_file="$3"; import_check="$4"; requirements="$5"
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
cd "$repo" || exit 2
work="$(mktemp -d)"
server_pid=""
cleanup () {
  if [ -n "$server_pid" ]; then kill -TERM "$server_pid" 2>/dev/null; wait "$server_pid" 2>/dev/null; fi
  rm -rf "$work"
}
trap cleanup EXIT
fail () { echo "run-$name: $1" >&2; echo "$name: 0 passed, 1 failed"; exit 1; }

"$py" -c "$import_check" 2>/dev/null || fail "'$py' lacks what the tests import: pip install -r $requirements"
npm run build --silent || fail "npm run build failed"
node --import @tapjs/typescript/import test/oip/triton/make-inputs.ts "$work/inputs" || fail "could not make the inputs"
port="$("$py" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')"
grpc_port="$("$py" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')"
EXECUTION_PROVIDER=cpu INFERENCE_WORKERS=1 LOG_LEVEL=warn PORT="$port" GRPC_PORT="$grpc_port" HOST=127.0.0.1 node dist/src/server.js >"$work/server.log" 2>&1 &
server_pid=$!
for _ in $(seq 1 240); do
  if "$py" -c "import urllib.request, sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:$port/v2/health/ready', timeout=2).status == 200 else 1)" 2>/dev/null; then break; fi
  kill -0 "$server_pid" 2>/dev/null || { tail -20 "$work/server.log" >&2; fail "the server exited"; }
  sleep 0.5
done
ISOMAX_URL="http://127.0.0.1:$port" ISOMAX_GRPC="127.0.0.1:$grpc_port" ISOMAX_INPUTS="$work/inputs" PYTHONDONTWRITEBYTECODE=1 PYTHONPATH="$here${PYTHONPATH:+:$PYTHONPATH}" \
  "$py" -m pytest -q -p no:cacheprovider "$test_file" 2>&1 | tee "$work/pytest.log"
status=${PIPESTATUS[0]}
# -a: a failure's report may quote binary bytes, and grep would then only say "binary file matches".
passed=$(grep -aEo '[0-9]+ passed' "$work/pytest.log" | tail -1 | awk '{ print $1 + 0 }')
failed=$(grep -aEo '[0-9]+ (failed|errors?)' "$work/pytest.log" | awk '{ s += $1 } END { print s + 0 }')
[ -z "$passed" ] && passed=0
if [ "$status" != "0" ] && [ "$failed" = "0" ]; then failed=1; fi
echo "$name: ${passed} passed, ${failed} failed"
exit "$status"
