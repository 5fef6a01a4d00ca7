#!/usr/bin/env bash
# The set-up `npm test` needs, done or checked before any test runs, so that a fresh Debian 12
# machine with only Node.js passes README's test command and a missing piece fails at once with
# the command that fixes it (not as knock-on test failures):
#   1. Debian packages (apt-get as root; otherwise the exact command to run, exit 1),
#   2. node_modules (npm ci when missing or older than package-lock.json),
#   3. the Python venv of PyPI test tools (schemathesis, tritonclient, kserve,
#      open-inference-openapi, kubernetes-validate), versions pinned (.ci/.venv; rebuilt when a
#      requirements file changes), Triton's perf_analyzer in its own (.ci/.venv-perf), and the
#      quantizer's (.venv-tools, training/quantize/venv.sh).
# Idempotent and quick when everything is there (no network then).
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 2

# Debian packages, and what needs each:
#   python3-{torch,onnx,numpy,pil,jsonschema,pytest}  training/ tests, the preprocessing reference,
#                                          test/tools/cli's symbolic ONNX models
#   python3-venv        the venv below      dataset-fashion-mnist  calibration/evaluation tests
#   prometheus          promtool (alert rule tests)   nginx-light  load-balancer tests
#   chromium, fonts-dejavu-core   the page's browser test (playwright-core drives Debian's Chromium)
#   libb64-0d           Triton's perf_analyzer (test/perf)
PACKAGES=(python3-torch python3-onnx python3-pytest python3-numpy python3-jsonschema python3-pil
  python3-venv dataset-fashion-mnist prometheus nginx-light chromium fonts-dejavu-core libb64-0d)
VENV=.ci/.venv
REQUIREMENTS=(test/property/requirements.txt test/oip/triton/requirements.txt deploy/check/requirements.txt
  test/oip/kserve/requirements.txt test/oip/openapi-client/requirements.txt)

say () { echo "npm test: $*" >&2; }

if ! command -v dpkg-query >/dev/null; then
  say "needs a Debian-like system with these packages: ${PACKAGES[*]}"
  exit 1
fi
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" = "0" ]; then
    say "installing Debian packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    # apt's own chatter (debconf's notes) only when it fails.
    apt_log=$(mktemp)
    { apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}"; } >"$apt_log" 2>&1 || { cat "$apt_log" >&2; say "apt-get failed"; exit 1; }
    rm -f "$apt_log"
  else
    say "missing Debian packages: ${missing[*]}. Install them, then run npm test again:"
    echo "  sudo apt-get update && sudo apt-get install -y --no-install-recommends ${missing[*]}" >&2
    exit 1
  fi
fi

if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  say "npm ci (node_modules missing or older than package-lock.json)"
  npm ci --no-audit --no-fund || { say "npm ci failed"; exit 1; }
fi

stamp="$VENV/.requirements.sha256"
want="$(cat "${REQUIREMENTS[@]}" | sha256sum | cut -d' ' -f1)"
if [ ! -x "$VENV/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  say "creating the test venv $VENV (schemathesis, tritonclient, kserve, open-inference-openapi, kubernetes-validate; pinned)"
  rm -rf "$VENV"
  /usr/bin/python3 -m venv "$VENV" || { say "python3 -m venv failed"; exit 1; }
  req_args=()
  for r in "${REQUIREMENTS[@]}"; do req_args+=(-r "$r"); done
  "$VENV/bin/pip" install -q --disable-pip-version-check "${req_args[@]}" || { say "pip install failed"; rm -rf "$VENV"; exit 1; }
  echo "$want" > "$stamp"
fi

# Triton's perf_analyzer: tritonclient 2.50.0's binary (later wheels need glibc 2.38).
perf_stamp=.ci/.venv-perf/.requirements.sha256
perf_want="$(sha256sum scripts/perf-analyzer/requirements.txt | cut -d' ' -f1)"
if [ ! -x .ci/.venv-perf/bin/perf-analyzer ] || [ "$(cat "$perf_stamp" 2>/dev/null)" != "$perf_want" ]; then
  say "installing perf_analyzer into .ci/.venv-perf (scripts/perf-analyzer/install.sh)"
  PYTHON=/usr/bin/python3 bash scripts/perf-analyzer/install.sh .ci/.venv-perf >/dev/null || { say "perf_analyzer install failed"; exit 1; }
  echo "$perf_want" > "$perf_stamp"
fi

# The venv `npm run models -- quantize` runs onnxruntime's quantiser in (.venv-tools; the
# command makes it on first use too, but then a newcomer's first quantize test needs PyPI late).
if ! bash training/quantize/venv.sh >/dev/null; then say "the quantize venv failed (training/quantize/venv.sh)"; exit 1; fi
