#!/usr/bin/env bash
# npm run test:e2e: the long end-to-end and load checks, after the same set-up as npm test; CI
# runs it after npm test. Ends with "N passed, N failed".
#   test/**/*.slow.ts  tap tests of the tools over whole data sets and many processes (bench,
#                      calibrate and evaluate on the 5,000/10,000-image splits, the
#                      bring-your-own-model example, 8 concurrent `models add`): their asserts
#   test:hostile     the worst allowed inputs under the 1 GiB limit, then every hostile class
#                    at c=8 for 30 s: /health/live p99 <= 50 ms, no 5xx
#   test:monitoring  Debian's Prometheus over 3 replicas: the drift alert fires on MNIST and
#                    resolves on Fashion-MNIST, every dashboard query runs
#   test:monitoring:grpc  the same with the traffic over gRPC (ModelInfer): the alert fires on it
#   test:deploy      Debian's nginx in front of 3 replicas: distribution, rolling restart, failover
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 2
bash scripts/test/setup.sh || { echo "0 passed, 1 failed"; exit 1; }
pass=0
fail=0

echo "== tap: the slow tier (test/**/*.slow.ts)"
log=$(mktemp)
mapfile -t slow < <(find test -name '*.slow.ts' | sort)
npx tap --disable-coverage "${slow[@]}" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
totals=$(grep -E '^# \{ total: ' "$log" | tail -1)
p=$(echo "$totals" | grep -Eo 'pass: [0-9]+' | grep -Eo '[0-9]+'); f=$(echo "$totals" | grep -Eo 'fail: [0-9]+' | grep -Eo '[0-9]+')
p=${p:-0}; f=${f:-0}
if [ "$status" != "0" ] && [ "$f" = "0" ]; then f=1; fi
pass=$((pass + p)); fail=$((fail + f))
[ "$f" != "0" ] && echo "== FAILED: the slow tap tier ($f)"
rm -f "$log"

for s in test:hostile test:monitoring test:monitoring:grpc test:deploy; do
  echo "== npm run $s"
  t0=$SECONDS
  if npm run "$s"; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "== FAILED: $s"; fi
  echo "== $s: $((SECONDS - t0)) s"
done
echo "${pass} passed, ${fail} failed"
[ "$fail" = "0" ]
