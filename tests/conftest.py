"""Shared fixtures: small demonstration stores built once per session."""

from __future__ import annotations

import os

import pytest
import torch

os.environ.setdefault("MUJOCO_GL", "egl")
# Tests run in parallel processes on 2 cores; more threads than cores makes torch spin, not work.
torch.set_num_threads(1)


@pytest.fixture(scope="session")
def point_demos(tmp_path_factory):
    """60 successful point/reach expert episodes (about a second to record)."""
    from automimic.rollout.collect import collect_demos

    path = tmp_path_factory.mktemp("demos") / "point.h5"
    collect_demos("point/reach", 60, path, progress=False)
    return path
