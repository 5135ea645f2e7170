"""Offscreen rendering check and MP4 writing for rollout videos."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np


class RenderUnavailable(RuntimeError):
    """Offscreen rendering cannot work on this machine; the message says how to fix it."""


def open_render_env(env_id: str, image_size: int = 256, **env_kwargs):
    """Make ``env_id`` with offscreen rendering and prove it works by rendering one frame.

    Raises :class:`RenderUnavailable` (one line, with the fix) when no GL backend works here.
    """
    from automimic.envs import make_env

    backend = os.environ.get("MUJOCO_GL", "egl")
    try:
        env = make_env(env_id, render_mode="rgb_array", image_size=image_size, **env_kwargs)
        env.reset(seed=0)
        frame = env.render()
    except Exception as err:  # MuJoCo and PyOpenGL raise many types depending on the backend
        raise RenderUnavailable(
            f"offscreen rendering failed with MUJOCO_GL={backend} ({type(err).__name__}: {str(err)[:120]}); "
            "use MUJOCO_GL=egl with a working EGL driver, or `apt-get install libosmesa6` and MUJOCO_GL=osmesa"
        ) from None
    if frame is None or np.asarray(frame).ndim != 3:
        raise RenderUnavailable(f"{env_id} rendered no RGB frame; it needs render_mode='rgb_array'")
    return env


def write_mp4(frames: list[np.ndarray], path: str | Path, fps: int = 30) -> Path:
    """Encode ``frames`` (H, W, 3 uint8) as an H.264 MP4 with imageio-ffmpeg."""
    import imageio.v2 as imageio

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with imageio.get_writer(path, fps=fps, codec="libx264", macro_block_size=1) as writer:
        for frame in frames:
            writer.append_data(np.asarray(frame, dtype=np.uint8))
    return path
