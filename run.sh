#!/usr/bin/env bash
# xembody set-up and entry points. Safe to run again: each step checks before it installs.
#   bash run.sh demo [xembody demo options]   the end-to-end demo on the CPU
#   bash run.sh test [pytest options]         the default test suite
#   bash run.sh setup                         install only
set -euo pipefail
cd "$(dirname "$0")"

# Debian packages: libusb for open3d; EGL + Mesa so MuJoCo renders pictures without a GPU;
# chromium for the browser teleop page's test (playwright drives it; no browser download).
SYSTEM_PACKAGES=(libusb-1.0-0 libegl1 libegl-mesa0 libgl1-mesa-dri chromium)

ensure_system() {
  local missing=()
  for pkg in "${SYSTEM_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
    echo "run.sh: installing Debian packages: ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "run.sh: warning: missing Debian packages ${missing[*]} (install them as root); open3d or pictures may fail" >&2
  fi
}

ensure_python() {
  local py=python3
  command -v python3.11 >/dev/null && py=python3.11
  [ -x .venv/bin/python ] || "$py" -m venv .venv
  local want have
  want=$(cat pyproject.toml run.sh | sha256sum | cut -c1-16)
  have=$(cat .venv/.xembody-installed 2>/dev/null || true)
  if [ "$want" != "$have" ]; then
    echo "run.sh: installing Python packages into .venv (CPU torch 2.13.0, MuJoCo, rsl-rl, pinocchio, zarr, open3d, ROS 2 wheels, PyAV, pyarrow)"
    .venv/bin/python -m pip install -q --upgrade pip
    # The CPU build of torch first: an unpinned torch would pull a multi-GB CUDA build.
    .venv/bin/python -m pip install -q torch==2.13.0
    .venv/bin/python -m pip install -q -e '.[ros,dev]'
    echo "$want" > .venv/.xembody-installed
  fi
}

cmd=${1:-demo}
shift || true
ensure_system
ensure_python
case "$cmd" in
  setup) echo "run.sh: ready (.venv)";;
  demo) exec .venv/bin/xembody demo "$@";;
  test) exec .venv/bin/python -m pytest "$@";;
  *) echo "usage: bash run.sh demo|test|setup [args]" >&2; exit 2;;
esac
