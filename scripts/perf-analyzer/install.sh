#!/usr/bin/env bash
# Installs Triton's perf_analyzer the way a Debian 12 machine can, into a venv of its own
# (default .ci/.venv-perf), and writes VENV/bin/perf-analyzer, a wrapper that sets
# LD_LIBRARY_PATH and runs it:
#   - tritonclient 2.50.0's wheel (requirements.txt), whose bin/perf_analyzer runs on glibc 2.36;
#   - libcudart.so.12 from PyPI's nvidia-cuda-runtime-cu12 (linked even for CPU-only use);
#   - libb64.so.0d from Debian's libb64-0d: installed with apt-get when run as root and
#     PERF_ANALYZER_APT is not 0; otherwise its .deb is fetched (apt-get download, no root) and
#     unpacked into the venv, and the apt-get command is printed.
#   bash scripts/perf-analyzer/install.sh [VENV]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
venv="${1:-$repo/.ci/.venv-perf}"
python="${PYTHON:-python3}"

[ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check -r "$here/requirements.txt"
cudart="$("$venv/bin/python" -c 'import nvidia.cuda_runtime, os; print(os.path.join(nvidia.cuda_runtime.__path__[0], "lib"))')"

libdirs="$cudart"
if ! /sbin/ldconfig -p 2>/dev/null | grep -q 'libb64\.so\.0d'; then
  if [ "$(id -u)" = 0 ] && [ "${PERF_ANALYZER_APT:-1}" != 0 ]; then
    apt-get install -y --no-install-recommends libb64-0d
  else
    echo "install.sh: libb64.so.0d missing; as root: apt-get install -y libb64-0d (unpacking it into $venv/lib/b64 meanwhile)" >&2
    tmp="$(mktemp -d)"
    (cd "$tmp" && apt-get download libb64-0d >/dev/null 2>&1)
    dpkg-deb -x "$tmp"/libb64-0d_*.deb "$tmp/x"
    mkdir -p "$venv/lib/b64"
    cp "$tmp"/x/usr/lib/*/libb64.so.0d* "$venv/lib/b64/"
    rm -rf "$tmp"
    libdirs="$libdirs:$venv/lib/b64"
  fi
fi

cat > "$venv/bin/perf-analyzer" <<WRAP
#!/usr/bin/env bash
# Written by scripts/perf-analyzer/install.sh: perf_analyzer with the libraries it links.
export LD_LIBRARY_PATH="$libdirs\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}"
exec "$venv/bin/perf_analyzer" "\$@"
WRAP
chmod +x "$venv/bin/perf-analyzer"
missing="$(LD_LIBRARY_PATH="$libdirs" ldd "$venv/bin/perf_analyzer" | grep 'not found' || true)"
[ -z "$missing" ] || { echo "install.sh: perf_analyzer still lacks: $missing" >&2; exit 1; }
echo "$venv/bin/perf-analyzer"
