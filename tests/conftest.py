"""Shared fixtures: small demonstration stores built once per session."""

from __future__ import annotations

import contextlib
import os

import pytest

from automimic.threads import ENV_VAR, configure_threads

os.environ.setdefault("MUJOCO_GL", "egl")
# Tests run in parallel processes on 2 cores; more threads than cores makes torch spin, not work.
# A user's AUTOMIMIC_THREADS would also reach the CLI commands the tests invoke: the suite runs at 1.
os.environ.pop(ENV_VAR, None)
configure_threads(1)


@pytest.fixture(scope="session")
def point_demos(tmp_path_factory):
    """60 successful point/reach expert episodes (about a second to record)."""
    from automimic.rollout.collect import collect_demos

    path = tmp_path_factory.mktemp("demos") / "point.h5"
    collect_demos("point/reach", 60, path, progress=False)
    return path


#: Tiny ACT and Diffusion Policy configs for tests that only need a chunked policy to run end to end.
CHUNKED_CONFIGS = {
    "act": {"history": 2, "chunk": 4, "d_model": 32, "heads": 2, "ff_dim": 64, "enc_layers": 1, "dec_layers": 1},
    "diffusion": {"history": 2, "chunk": 4, "execute_steps": 2, "down_dims": [16, 32], "feature_dim": 16,
                  "time_embed_dim": 16, "num_inference_steps": 4},
}


@pytest.fixture(params=sorted(CHUNKED_CONFIGS))
def chunked(request):
    """``(name, policy_config)`` of each chunked policy class, small enough for a test."""
    return request.param, dict(CHUNKED_CONFIGS[request.param])


@contextlib.contextmanager
def ray_backend():
    """Run the body with every collector on a local 2-CPU Ray instance (skips the test without Ray)."""
    ray = pytest.importorskip("ray")
    from automimic.rollout.collector import set_backend, start_ray_env

    start_ray_env()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        set_backend("ray")
        yield
    finally:
        set_backend("local")
        ray.shutdown()


def run_killed_at_update(monkeypatch, run, kill_at: int) -> None:
    """Run ``run()`` with the off-policy learner's ``kill_at``-th update raising KeyboardInterrupt (a kill
    mid-cycle, after that cycle's episodes are stored and before its checkpoint), then restore it."""
    import pytest

    from automimic.algos import practice as practice_mod

    calls = {"n": 0}
    real = practice_mod.OffPolicyLearner.update

    def dying(self, batch, generator, actor=True):
        calls["n"] += 1
        if calls["n"] == kill_at:
            raise KeyboardInterrupt
        return real(self, batch, generator, actor)

    monkeypatch.setattr(practice_mod.OffPolicyLearner, "update", dying)
    with pytest.raises(KeyboardInterrupt):
        run()
    monkeypatch.setattr(practice_mod.OffPolicyLearner, "update", real)
