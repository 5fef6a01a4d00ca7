#!/usr/bin/env bash
# Makes (or checks) the Python venv `npm run models -- quantize` runs training/quantize/quantize.py
# in: VENV (default .venv-tools at the repository root, git-ignored) with the pinned
# training/quantize/requirements.txt, rebuilt when that file changes (a sha256 stamp, as
# scripts/test/setup.sh does for the test venv). Quick and offline when it is already there.
# Prints the venv's python on stdout; everything else goes to stderr.
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 2
VENV="${1:-.venv-tools}"
REQUIREMENTS=training/quantize/requirements.txt
PYTHON="${PYTHON:-/usr/bin/python3}"
stamp="$VENV/.requirements.sha256"
want="$(sha256sum "$REQUIREMENTS" | cut -d' ' -f1)"
if [ ! -x "$VENV/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "quantize: creating the venv $VENV (onnxruntime's quantization tooling, pinned in $REQUIREMENTS)" >&2
  rm -rf "$VENV"
  "$PYTHON" -m venv "$VENV" >&2 || { echo "quantize: $PYTHON -m venv failed (Debian: apt-get install python3-venv)" >&2; exit 1; }
  "$VENV/bin/pip" install -q --disable-pip-version-check -r "$REQUIREMENTS" >&2 || { echo "quantize: pip install -r $REQUIREMENTS failed" >&2; rm -rf "$VENV"; exit 1; }
  echo "$want" > "$stamp"
fi
echo "$(cd "$VENV" && pwd)/bin/python"
