"""Reading checkpoint files, with a one-line error for a damaged one instead of a library traceback."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch


def read_checkpoint(path: str | Path, what: str = "checkpoint") -> Any:
    """``torch.load`` of ``path`` on the CPU; a missing, empty, truncated or foreign file raises a
    ``FileNotFoundError``/``ValueError`` that names the file and what was expected.

    ``weights_only=False``: our checkpoints hold configs and RNG states next to tensors; only load
    files you trust, as with any pickle.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such {what}")
    if path.stat().st_size == 0:
        raise ValueError(f"{path}: empty file; expected an automimic {what} (delete it to start over)")
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except Exception as err:  # torch raises RuntimeError, EOFError, UnpicklingError, ... by damage kind
        first = str(err).strip().splitlines()[0] if str(err).strip() else ""
        raise ValueError(f"{path}: not a readable automimic {what} ({type(err).__name__}"
                         + (f": {first[:120]}" if first else "") + "); it may be truncated or another kind of file"
                         ) from None
