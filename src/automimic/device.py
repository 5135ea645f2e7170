"""Which torch device trains: one documented choice per process, like the thread count.

ACT and Diffusion Policy at their papers' sizes (d_model 512, U-Net widths 256-512-1024) are sized
for a GPU, not for the CPU defaults this project measures with. So training (:func:`train_policy
<automimic.training.loop.train_policy>`) and an off-policy learner's updates run on
:func:`compute_device`, which is CUDA whenever torch sees a GPU, unless told otherwise by
``--device`` on the command line, the ``AUTOMIMIC_DEVICE`` environment variable, or
:func:`set_device` (Python API users call it themselves; the CLI does).

Rollouts and evaluation stay on the CPU whatever the setting: the environments step on the CPU,
a rollout queries the policy with a handful of observations per env step, so a GPU would spend
its time copying tiny batches back and forth, and rollout workers (spawned processes, Ray actors)
would each need a GPU of their own. Trained weights come back to the CPU and every checkpoint holds
CPU tensors, so a policy trained on a GPU evaluates and loads on a machine without one.

The CPU is the tested default: this project's CI has no GPU. On a GPU the float results differ in
their last bits from the CPU's (other kernels, other summation orders), so a GPU run is
reproducible only on the same GPU and software, and never equal to a CPU run.
"""

from __future__ import annotations

import os
import re

import torch

#: What ``--device`` / ``AUTOMIMIC_DEVICE`` mean when not given: CUDA if available, else the CPU.
DEFAULT_DEVICE = "auto"
#: The environment variable read when no explicit device is given.
ENV_VAR = "AUTOMIMIC_DEVICE"
#: The forms a device name may take (what error messages say was expected).
EXPECTED = "auto, cpu, cuda or cuda:N"

_FORM = re.compile(r"(auto|cpu|cuda)(?::(\d+))?")
# The process's choice once set_device has run (None: resolve from the environment on each call).
_chosen: torch.device | None = None


def resolve_device(name: str | None = None) -> torch.device:
    """The device ``name`` means: ``auto`` (CUDA if available, else the CPU), ``cpu``, ``cuda`` or ``cuda:N``.

    Without ``name``, ``$AUTOMIMIC_DEVICE``, else :data:`DEFAULT_DEVICE`.

    Raises:
        ValueError: (one line) ``name`` is none of those forms, or asks for a GPU this machine lacks.
    """
    where = "device"
    if name is None:
        raw = os.environ.get(ENV_VAR, "")
        name, where = (raw, ENV_VAR) if raw.strip() else (DEFAULT_DEVICE, where)
    if not isinstance(name, str):
        raise ValueError(f"{where}: expected {EXPECTED}, got {name!r}")
    match = _FORM.fullmatch(name.strip().lower())
    if match is None or (match.group(2) is not None and match.group(1) != "cuda"):
        raise ValueError(f"{where}: expected {EXPECTED}, got {name!r}")
    kind, index = match.group(1), match.group(2)
    if kind == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if kind == "cpu":
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise ValueError(f"{where}: {name!r} asks for a GPU, but torch sees none (no CUDA device or a CPU-only "
                         f"torch build); use cpu or auto")
    if index is None:
        return torch.device("cuda")
    count = torch.cuda.device_count()
    if int(index) >= count:
        raise ValueError(f"{where}: {name!r} names GPU {index}, but torch sees {count} (cuda:0 to cuda:{count - 1})")
    return torch.device("cuda", int(index))


def set_device(name: str | None = None) -> torch.device:
    """Make :func:`compute_device` return the device ``name`` means (see :func:`resolve_device`); return it."""
    global _chosen
    _chosen = resolve_device(name)
    return _chosen


def compute_device() -> torch.device:
    """Where this process trains: the device :func:`set_device` chose, else what ``$AUTOMIMIC_DEVICE``
    or ``auto`` means now."""
    return _chosen if _chosen is not None else resolve_device()


def to_device(value: object, device: torch.device) -> object:
    """``value`` with every tensor in it (nested in dicts, lists or tuples) on ``device``.

    A tensor already there is returned as it is (no copy), so on the CPU this changes nothing.
    """
    if isinstance(value, torch.Tensor):
        return value.to(device)
    if isinstance(value, dict):
        return {k: to_device(v, device) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(to_device(v, device) for v in value)
    return value
