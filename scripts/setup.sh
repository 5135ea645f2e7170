#!/usr/bin/env bash
# Set up automimic in ./.venv on a machine that has only Python 3.11 and pip.
# torch goes in first and pinned: the CPU build is installed from the local wheel this workplace
# provides; asking pip for anything that depends on an unpinned torch first would pull a multi-GB
# CUDA build.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null || PY=python3
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip 2>/dev/null || true
.venv/bin/python -m pip install --quiet "torch==2.13.0"
.venv/bin/python -m pip install --quiet -e ".[dev,ray,lerobot]"
echo "automimic is set up in .venv ($(.venv/bin/python -c 'import automimic; print(automimic.__version__)'))"
