#!/usr/bin/env bash
# Property-based test of the live HTTP API against openapi/openapi.json, with schemathesis.
#
#   bash test/property/run-schemathesis.sh [VENV_PYTHON]
#
# VENV_PYTHON (or $ST_PYTHON) is the python of a venv with test/property/requirements.txt
# installed; default /tmp/isomax-venv/bin/python. Builds the service (npm run build, incremental),
# starts `node dist/src/server.js` on a free port of 127.0.0.1, waits for /health/ready = 200,
# runs schemathesis (all phases, bounded examples per operation, fixed seed) with the checks
#   not_a_server_error_but_not_ready (custom: a readiness route's documented 503 is no fault), response_schema_conformance, status_code_conformance,
#   content_type_conformance, error_body_shape (custom: test/property/hooks.py)
# and ends with one line for CI to grep:
#   schemathesis: N operations, M test cases, F failures
# Exit status: 0 only when schemathesis passed and found nothing. The server is stopped on exit.
#
# Knobs (environment): ST_MAX_EXAMPLES (default 200 per operation), ST_SEED (default 20261128),
# ST_REPORT_DIR (keep the JSON + JUnit reports there; default a temp dir, removed at exit),
# ST_READY_TIMEOUT_S (default 120), ST_EXTRA_ARGS (appended to `st run`, word-split).
set -uo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
cd "$repo" || exit 2

py="${1:-${ST_PYTHON:-/tmp/isomax-venv/bin/python}}"
max_examples="${ST_MAX_EXAMPLES:-200}"
seed="${ST_SEED:-20261128}"
ready_timeout="${ST_READY_TIMEOUT_S:-120}"

summary_fail () {
  # A harness failure still prints the summary line, so CI's grep finds it.
  echo "run-schemathesis: $1" >&2
  echo "schemathesis: 0 operations, 0 test cases, 1 failures"
  exit 1
}

if ! "$py" -c 'import schemathesis' 2>/dev/null; then
  summary_fail "no schemathesis in '$py': create a venv and pip install -r test/property/requirements.txt"
fi

work="$(mktemp -d)"
server_pid=""
st_pid=""
# shellcheck disable=SC2317 # called by the EXIT trap
cleanup () {
  if [ -n "$st_pid" ]; then kill -TERM "$st_pid" 2>/dev/null; wait "$st_pid" 2>/dev/null; fi
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
    kill -TERM "$server_pid" 2>/dev/null
    for _ in $(seq 1 50); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.2; done
    kill -KILL "$server_pid" 2>/dev/null
    wait "$server_pid" 2>/dev/null
  fi
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

report_dir="${ST_REPORT_DIR:-$work/report}"
mkdir -p "$report_dir" || summary_fail "cannot create $report_dir"
rm -f "$report_dir/schemathesis.json"  # never read an earlier run's report

echo "== run-schemathesis: npm run build"
npm run build --silent || summary_fail "npm run build failed"

port="$("$py" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')" \
  || summary_fail "could not pick a free port"
base_url="http://127.0.0.1:$port"
server_log="$work/server.log"

echo "== run-schemathesis: starting node dist/src/server.js on $base_url"
# The admin routes exist only with a token; schemathesis calls them with it (reloads of an
# unchanged manifest keep every session, so they are cheap).
admin_token="schemathesis-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"
EXECUTION_PROVIDER=cpu INFERENCE_WORKERS=1 LOG_LEVEL=warn PORT="$port" GRPC_PORT=off HOST=127.0.0.1 ADMIN_TOKEN="$admin_token" \
  node dist/src/server.js >"$server_log" 2>&1 &
server_pid=$!

server_log_tail () {
  [ -s "$server_log" ] || return 0
  echo "-- server log (last 40 lines) --" >&2
  tail -n 40 "$server_log" >&2
}

if ! "$py" - "$base_url/health/ready" "$ready_timeout" "$server_pid" <<'EOF'
import os, sys, time, urllib.request, urllib.error
url, timeout, pid = sys.argv[1], float(sys.argv[2]), int(sys.argv[3])
deadline = time.monotonic() + timeout
while time.monotonic() < deadline:
    try:
        os.kill(pid, 0)
    except OSError:
        sys.exit("server exited before it was ready")
    try:
        with urllib.request.urlopen(url, timeout=2) as r:
            if r.status == 200:
                sys.exit(0)
    except (urllib.error.URLError, OSError):
        pass
    time.sleep(0.25)
sys.exit(f"{url} did not return 200 within {timeout:g} s")
EOF
then
  server_log_tail
  summary_fail "server did not become ready"
fi

echo "== run-schemathesis: schemathesis (max $max_examples examples per operation, seed $seed)"
# shellcheck disable=SC2086 # ST_EXTRA_ARGS is word-split on purpose
HYPOTHESIS_STORAGE_DIRECTORY="$work/hypothesis" PYTHONDONTWRITEBYTECODE=1 SCHEMATHESIS_HOOKS="$here/hooks.py" "$py" -m schemathesis.cli --no-color \
  --config-file "$here/schemathesis.toml" \
  run openapi/openapi.json \
  --url "$base_url" \
  --header "Authorization: Bearer $admin_token" \
  --phases examples,coverage,fuzzing,stateful \
  --checks not_a_server_error_but_not_ready,response_schema_conformance,status_code_conformance,content_type_conformance,error_body_shape \
  --max-examples "$max_examples" \
  --seed "$seed" \
  --generation-database none \
  --suppress-health-check too_slow \
  --workers 1 \
  --request-timeout 30 \
  --report json,junit \
  --report-json-path "$report_dir/schemathesis.json" \
  --report-junit-path "$report_dir/schemathesis-junit.xml" \
  ${ST_EXTRA_ARGS:-} &
# In the background + wait, so a TERM/INT to this script is handled at once (cleanup stops both).
st_pid=$!
wait "$st_pid"
st_status=$?
st_pid=""

if ! kill -0 "$server_pid" 2>/dev/null; then
  echo "run-schemathesis: the server died during the run" >&2
  server_log_tail
  st_status=1
elif [ "$st_status" != "0" ]; then
  server_log_tail
fi

counts="$("$py" - "$report_dir/schemathesis.json" <<'EOF'
import json, sys
try:
    with open(sys.argv[1]) as f:
        report = json.load(f)
    ops = report["operations"]["tested"]
    cases = report["test_cases"]["generated"]
    failures = report["test_cases"]["unique_failures"] + len(report.get("errors", []))
except (OSError, ValueError, KeyError, TypeError) as exc:
    print(f"run-schemathesis: no usable JSON report ({exc!r})", file=sys.stderr)
    ops, cases, failures = 0, 0, 1
print(ops, cases, failures)
EOF
)"
read -r ops cases failures <<<"${counts:-0 0 1}"
# A non-zero exit with nothing counted (a crash, a usage error, the server dying) is a failure too.
if [ "$st_status" != "0" ] && [ "$failures" = "0" ]; then failures=1; fi
echo "schemathesis: $ops operations, $cases test cases, $failures failures"
if [ "$st_status" != "0" ] || [ "$failures" != "0" ]; then exit 1; fi
exit 0
