"""How many CPU threads torch may use in this process: one documented choice, made on purpose.

torch's default is one thread per core. That is fastest for a job alone on the machine, and
ruinous as soon as a second job shares the cores: OpenMP threads that outnumber the free cores spin
against each other instead of waiting. Measured on a 2-core AMD EPYC (``benchmarks/threads.py``, a
BC training step; docs/rollouts.md's "Threads" section has the table): alone, 2 threads ran 182 steps/s
and 1 thread 144; two identical jobs side by side ran 16 and 14 steps/s each with 2 threads
(under a tenth of solo) but 138 and 137 with 1 thread each. So every automimic process uses
:data:`DEFAULT_THREADS` = 1 unless told otherwise, by ``--threads`` on the command line, the
``AUTOMIMIC_THREADS`` environment variable, or an argument to :func:`configure_threads` (Python API
users call it themselves; the CLI, the rollout workers and the benchmark scripts do).
"""

from __future__ import annotations

import os

#: Threads per process unless ``--threads`` / ``AUTOMIMIC_THREADS`` say otherwise. One, because a
#: process never knows whether another job will share the cores: a second thread gains ~1.3x alone
#: and loses ~10x beside a second job (measured, see the module docstring).
DEFAULT_THREADS = 1
#: The environment variable read when no explicit count is given.
ENV_VAR = "AUTOMIMIC_THREADS"


def resolve_threads(n: int | None = None) -> int:
    """The thread count to use: ``n`` if given, else ``$AUTOMIMIC_THREADS``, else :data:`DEFAULT_THREADS`.

    Raises:
        ValueError: ``n`` or the environment variable is not a whole number >= 1.
    """
    if n is not None:
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"threads: expected a whole number >= 1, got {n!r}")
        return n
    raw = os.environ.get(ENV_VAR)
    if raw is None or raw.strip() == "":
        return DEFAULT_THREADS
    try:
        value = int(raw.strip())
    except ValueError:
        value = 0
    if value < 1:
        raise ValueError(f"{ENV_VAR}: expected a whole number >= 1, got {raw!r}")
    return value


def configure_threads(n: int | None = None) -> int:
    """Set torch's intra-op thread count for this process (see :func:`resolve_threads`); return it."""
    import torch

    threads = resolve_threads(n)
    torch.set_num_threads(threads)
    return threads
