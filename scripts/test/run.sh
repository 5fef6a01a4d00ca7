#!/usr/bin/env bash
# npm test: README's test command. Sets up what it needs (setup.sh), then runs every check the
# service's promises rest on and ends with one line, the last it prints:
#   N passed, N failed
# Steps: ESLint and tsc (one check each), pytest over training/, tap over test/ (asserts),
# schemathesis against the live API, and three Open Inference Protocol clients against the live
# service: Triton's, KServe's and the generated open-inference-openapi one.
# The long load and end-to-end scripts (npm run test:e2e) run in CI after this.
# Exit status: non-zero when any step failed.
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 2

bash scripts/test/setup.sh || { echo "0 passed, 1 failed"; exit 1; }

VENV=.ci/.venv
pass=0
fail=0
failed_steps=()
started=$SECONDS
declare -A took

# step NAME PASSED FAILED STATUS: adds a step's counts; a non-zero status with nothing counted
# as failed still counts one failure, so a crashed runner cannot pass.
step () {
  local name=$1 p=${2:-0} f=${3:-0} status=$4
  [ -z "$p" ] && p=0
  [ -z "$f" ] && f=0
  if [ "$status" != "0" ] && [ "$f" = "0" ]; then f=1; fi
  pass=$((pass + p)); fail=$((fail + f))
  if [ "$f" != "0" ]; then failed_steps+=("$name ($f)"); fi
}

log=$(mktemp -d)
trap 'rm -rf "$log"' EXIT

echo "== ESLint"
t0=$SECONDS; npm run lint --silent; s=$?; took[lint]=$((SECONDS - t0))
step lint "$([ $s = 0 ] && echo 1 || echo 0)" 0 "$s"

echo "== tsc (typecheck)"
t0=$SECONDS; npm run typecheck --silent; s=$?; took[typecheck]=$((SECONDS - t0))
step typecheck "$([ $s = 0 ] && echo 1 || echo 0)" 0 "$s"

echo "== pytest (training/)"
t0=$SECONDS
/usr/bin/python3 -m pytest -q -p no:cacheprovider training/tests 2>&1 | tee "$log/pytest"
s=${PIPESTATUS[0]}; took[pytest]=$((SECONDS - t0))
# pytest exits 5 when it collected nothing: that is a failure here.
step pytest "$(grep -Eo '[0-9]+ passed' "$log/pytest" | tail -1 | grep -Eo '[0-9]+')" \
  "$(grep -Eo '[0-9]+ (failed|errors?)' "$log/pytest" | awk '{ s += $1 } END { print s + 0 }')" "$s"

echo "== tap (test/)"
t0=$SECONDS
# perf_analyzer's test fails, not skips, when setup.sh's install of it did not work.
REQUIRE_PERF_ANALYZER=1 npx tap 2>&1 | tee "$log/tap"
s=${PIPESTATUS[0]}; took[tap]=$((SECONDS - t0))
# tap ends with "# { total: N, pass: N, fail: N, ... }"
totals=$(grep -E '^# \{ total: ' "$log/tap" | tail -1)
step tap "$(echo "$totals" | grep -Eo 'pass: [0-9]+' | grep -Eo '[0-9]+')" "$(echo "$totals" | grep -Eo 'fail: [0-9]+' | grep -Eo '[0-9]+')" "$s"

echo "== schemathesis (test/property): the live API against openapi/openapi.json"
t0=$SECONDS
bash test/property/run-schemathesis.sh "$VENV/bin/python" 2>&1 | tee "$log/st"
s=${PIPESTATUS[0]}; took[schemathesis]=$((SECONDS - t0))
# "schemathesis: N operations, M test cases, F failures"
line=$(grep -E '^schemathesis: [0-9]+ operations, [0-9]+ test cases, [0-9]+ failures$' "$log/st" | tail -1)
cases=$(echo "$line" | awk '{ print $4 + 0 }'); st_fail=$(echo "$line" | awk '{ print $8 + 0 }')
[ -z "$line" ] && { cases=0; st_fail=1; }
step schemathesis "$((cases - st_fail < 0 ? 0 : cases - st_fail))" "$st_fail" "$s"

echo "== tritonclient (test/oip/triton): Triton's own client against the live service"
t0=$SECONDS
bash test/oip/triton/run.sh "$VENV/bin/python" 2>&1 | tee "$log/tc"
s=${PIPESTATUS[0]}; took[tritonclient]=$((SECONDS - t0))
line=$(grep -aE '^tritonclient: [0-9]+ passed, [0-9]+ failed$' "$log/tc" | tail -1)
[ -z "$line" ] && line="tritonclient: 0 passed, 1 failed"
step tritonclient "$(echo "$line" | awk '{ print $2 }')" "$(echo "$line" | awk '{ print $4 }')" "$s"

echo "== tritonclient-grpc (test/oip/triton): Triton's gRPC client against the live service"
t0=$SECONDS
bash test/oip/triton/run-grpc.sh "$VENV/bin/python" 2>&1 | tee "$log/tcg"
s=${PIPESTATUS[0]}; took[tritonclient-grpc]=$((SECONDS - t0))
line=$(grep -aE '^tritonclient-grpc: [0-9]+ passed, [0-9]+ failed$' "$log/tcg" | tail -1)
[ -z "$line" ] && line="tritonclient-grpc: 0 passed, 1 failed"
step tritonclient-grpc "$(echo "$line" | awk '{ print $2 }')" "$(echo "$line" | awk '{ print $4 }')" "$s"

for client in kserve openapi-client; do
  name=$([ "$client" = kserve ] && echo kserve || echo open-inference-openapi)
  echo "== $name (test/oip/$client): its client against the live service"
  t0=$SECONDS
  bash "test/oip/$client/run.sh" "$VENV/bin/python" 2>&1 | tee "$log/$client"
  s=${PIPESTATUS[0]}; took[$client]=$((SECONDS - t0))
  line=$(grep -aE "^$name: [0-9]+ passed, [0-9]+ failed$" "$log/$client" | tail -1)
  [ -z "$line" ] && line="$name: 0 passed, 1 failed"
  step "$name" "$(echo "$line" | awk '{ print $2 }')" "$(echo "$line" | awk '{ print $4 }')" "$s"
done

echo
echo "npm test: $((SECONDS - started)) s (lint ${took[lint]} s, typecheck ${took[typecheck]} s, pytest ${took[pytest]} s, tap ${took[tap]} s, schemathesis ${took[schemathesis]} s, tritonclient ${took[tritonclient]} s, tritonclient-grpc ${took[tritonclient-grpc]} s, kserve ${took[kserve]} s, open-inference-openapi ${took[openapi-client]} s)"
if [ "${#failed_steps[@]}" -gt 0 ]; then
  echo "npm test: FAILED in ${failed_steps[*]}"
else
  echo "npm test: all steps passed"
fi
echo "${pass} passed, ${fail} failed"
[ "$fail" = "0" ]
