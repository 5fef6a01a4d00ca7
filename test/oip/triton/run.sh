#!/usr/bin/env bash
# tritonclient (Triton's own Python client) against a live isomax-serve: builds the service,
# makes the inputs (make-inputs.ts), starts dist/src/server.js on a free port, runs
# test_tritonclient.py with pytest, and ends with one line for CI to grep:
#   tritonclient: N passed, F failed
#   bash test/oip/triton/run.sh VENV_PYTHON
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../../.." && pwd)"
cd "$repo" || exit 2
py="${1:-/tmp/isomax-venv/bin/python}"
work="$(mktemp -d)"
server_pid=""
cleanup () {
  if [ -n "$server_pid" ]; then kill -TERM "$server_pid" 2>/dev/null; wait "$server_pid" 2>/dev/null; fi
  rm -rf "$work"
}
trap cleanup EXIT
fail () { echo "run-tritonclient: $1" >&2; echo "tritonclient: 0 passed, 1 failed"; exit 1; }

"$py" -c 'import tritonclient.http, pytest' 2>/dev/null || fail "no tritonclient/pytest in '$py': pip install -r test/oip/triton/requirements.txt"
npm run build --silent || fail "npm run build failed"
node --import @tapjs/typescript/import test/oip/triton/make-inputs.ts "$work/inputs" || fail "could not make the inputs"
port="$("$py" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')"
EXECUTION_PROVIDER=cpu INFERENCE_WORKERS=1 LOG_LEVEL=warn PORT="$port" HOST=127.0.0.1 node dist/src/server.js >"$work/server.log" 2>&1 &
server_pid=$!
for _ in $(seq 1 240); do
  if "$py" -c "import urllib.request, sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:$port/v2/health/ready', timeout=2).status == 200 else 1)" 2>/dev/null; then break; fi
  kill -0 "$server_pid" 2>/dev/null || { tail -20 "$work/server.log" >&2; fail "the server exited"; }
  sleep 0.5
done
ISOMAX_URL="http://127.0.0.1:$port" ISOMAX_INPUTS="$work/inputs" PYTHONDONTWRITEBYTECODE=1 \
  "$py" -m pytest -q -p no:cacheprovider "$here/test_tritonclient.py" 2>&1 | tee "$work/pytest.log"
status=${PIPESTATUS[0]}
passed=$(grep -aEo '[0-9]+ passed' "$work/pytest.log" | tail -1 | awk '{ print $1 + 0 }')
failed=$(grep -aEo '[0-9]+ (failed|errors?)' "$work/pytest.log" | awk '{ s += $1 } END { print s + 0 }')
[ -z "$passed" ] && passed=0
if [ "$status" != "0" ] && [ "$failed" = "0" ]; then failed=1; fi
echo "tritonclient: ${passed} passed, ${failed} failed"
exit "$status"
