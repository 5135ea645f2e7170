#!/usr/bin/env bash
# Set up benchmarks/.venv-imitation: the `imitation` library (1.0.1) next to automimic, for
# benchmarks/classic_imitation.py.
#
# Why a venv of its own: imitation 1.0.1 pins gymnasium ~0.29 and stable-baselines3 ~2.2.1, while
# Meta-World (and automimic) need gymnasium >= 1.0. So imitation is installed with its own
# dependencies first, then gymnasium 1.4.0 and stable-baselines3 2.9.2 are laid over it with
# --no-deps (imitation's BC, DAgger and GAIL run on them; pip reports the broken pin, which is
# expected and filtered below). automimic itself goes in with --no-deps so its pins cannot undo
# the overlay; its runtime imports are installed explicitly, at the versions of the main venv.
#
# Idempotent: a marker holding this recipe's version skips everything once the venv is complete.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=benchmarks/.venv-imitation
RECIPE="imitation==1.0.1 gymnasium==1.4.0 stable-baselines3==2.9.2 torch==2.13.0 v1"
MARKER="$VENV/.automimic-complete"
if [ -f "$MARKER" ] && [ "$(cat "$MARKER")" = "$RECIPE" ] && [ -x "$VENV/bin/python" ]; then
  echo "imitation venv already set up in $VENV"
  exit 0
fi
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null || PY=python3
[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
PIP=("$VENV/bin/python" -m pip install --quiet)
# pip ends an install that leaves imitation's pins broken with a conflict report; that break is
# the point of the overlay, so only those lines are dropped (a failing install shows everything).
pip_install() {
  local log rc=0
  log=$(mktemp)
  "${PIP[@]}" "$@" 2>"$log" || rc=$?
  if [ "$rc" -ne 0 ]; then cat "$log" >&2; else
    grep -vE "dependency resolver does not currently take|^WARNING: Location .* is ignored|^(imitation|seals) [0-9.]+ requires" "$log" >&2 || true; fi
  rm -f "$log"
  return "$rc"
}
# torch first and pinned: anything depending on an unpinned torch would pull a multi-GB CUDA build.
pip_install "torch==2.13.0"
pip_install "imitation==1.0.1"
pip_install --no-deps "gymnasium==1.4.0" "stable-baselines3==2.9.2"
# automimic's runtime imports, at the main venv's versions so the simulator is the same one.
pip_install "metaworld==3.1.1" "mujoco==3.3.0" "numpy==2.4.6" "h5py==3.16.0" "pyyaml==6.0.3" tqdm rich \
  packaging imageio scipy
pip_install --no-deps -e .
"$VENV/bin/python" - <<'EOF'
# Fail here, not in the first benchmark, if the overlay did not take.
import gymnasium, stable_baselines3, imitation, torch, metaworld, automimic  # noqa: F401
from imitation.algorithms import bc, dagger  # noqa: F401
from imitation.algorithms.adversarial import gail  # noqa: F401
assert gymnasium.__version__ == "1.4.0", gymnasium.__version__
assert stable_baselines3.__version__ == "2.9.2", stable_baselines3.__version__
assert "+cpu" in torch.__version__, torch.__version__
EOF
echo "$RECIPE" > "$MARKER"
echo "imitation venv is set up in $VENV ($("$VENV/bin/python" -c 'import imitation, gymnasium, stable_baselines3 as s, torch; print(f"imitation {imitation.__version__}, gymnasium {gymnasium.__version__}, sb3 {s.__version__}, torch {torch.__version__}")'))"
