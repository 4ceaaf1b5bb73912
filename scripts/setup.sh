#!/usr/bin/env bash
# Install everything chiplex needs on a fresh Debian machine with Python 3.11:
# MiniZinc (apt, when missing), a venv, torch 2.13.0 (CPU), torch-scatter built against it, chiplex.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${VENV:-.venv}"
PYTHON="${PYTHON:-python3.11}"
command -v "$PYTHON" >/dev/null 2>&1 || PYTHON=python3

if ! command -v minizinc >/dev/null 2>&1; then
  echo "==> installing MiniZinc (Debian package minizinc, with Gecode)"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq minizinc >/dev/null
fi

if [ ! -x "$VENV/bin/python" ]; then
  echo "==> creating $VENV with $("$PYTHON" --version)"
  "$PYTHON" -m venv "$VENV"
fi
PIP="$VENV/bin/pip --disable-pip-version-check -q"
$PIP install --upgrade pip setuptools wheel
# Pinned exactly: any other torch version pulls a multi-GB CUDA build.
$PIP install torch==2.13.0
if ! "$VENV/bin/python" -c "import torch_scatter" >/dev/null 2>&1; then
  echo "==> building torch-scatter 2.1.2 against torch 2.13.0 (about 5 minutes)"
  $PIP install --no-build-isolation torch-scatter==2.1.2
fi
# The ray extra too, so the Ray executor's tests run in CI (docs/scale-out.md).
$PIP install -e ".[dev,ray]"
"$VENV/bin/python" -c "import chiplex, torch, torch_scatter, xdsl, minizinc; print('chiplex ready: torch', torch.__version__, '| minizinc', minizinc.default_driver.minizinc_version if minizinc.default_driver else 'missing')"
