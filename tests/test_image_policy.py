"""Camera observations end to end: recorded into the store, trained on, read back at evaluation."""

from __future__ import annotations

import numpy as np
import pytest

from automimic.algos.bc import fit_policy
from automimic.data.store import EpisodeStore
from automimic.envs import make_env
from automimic.envs.cameras import camera_env_kwargs, camera_of
from automimic.evaluation.evaluate import evaluate
from automimic.rollout.collect import collect_demos
from automimic.training.loop import TrainConfig


def test_camera_observations_are_recorded_compressed_with_proprioception(tmp_path):
    store = collect_demos("point/reach", 2, tmp_path / "img.h5", cameras=["top"], image_size=24, progress=False)
    ep = store.episodes()[0]
    assert ep.obs["top_image"].shape == (ep.length, 24, 24, 3) and ep.obs["top_image"].dtype == np.uint8
    np.testing.assert_array_equal(ep.obs["proprio"], ep.obs["state"][:, :4])
    import h5py

    with h5py.File(tmp_path / "img.h5") as f:
        assert f["data/demo_0/obs/top_image"].compression == "gzip"
    # The frame shows the world: two starts with different goals give different images.
    env = make_env("point/reach", cameras=["top"], image_size=24)
    a, b = env.reset(seed=1)[0]["top_image"], env.reset(seed=2)[0]["top_image"]
    assert not np.array_equal(a, b)


def test_camera_errors_are_one_line():
    with pytest.raises(ValueError, match="point/reach has one camera, 'top'"):
        make_env("point/reach", cameras=["side"])
    with pytest.raises(ValueError, match="one camera per env"):
        make_env("point/reach", cameras=["top", "top"])
    with pytest.raises(ValueError, match="names no camera"):
        camera_of("depth")
    assert camera_env_kwargs({"image_keys": ["corner_image"], "image_size": 64}) == {"cameras": ["corner"],
                                                                                     "image_size": 64}


def image_policy_success(folder, seed: int = 0):
    """ACT on camera frames, 1500 steps from ``seed``: (policy, its evaluation over 30 episodes)."""
    path = folder / "img.h5"
    store = EpisodeStore(path) if path.exists() else collect_demos("point/reach", 60, path, cameras=["top"],
                                                                   image_size=32, progress=False)
    act = {"obs_keys": ["proprio"], "image_keys": ["top_image"], "image_size": 32, "image_width": 8, "chunk": 8,
           "d_model": 64, "ff_dim": 128, "enc_layers": 1, "dec_layers": 1}
    policy = fit_policy(store.episodes(), "point/reach", folder / f"image{seed}", policy="act", policy_config=act,
                        train=TrainConfig(steps=1500, batch_size=32), seed=seed, progress=False)
    return policy, evaluate(policy, "point/reach", 30, progress=False)


@pytest.mark.slow
def test_image_policy_learns_point_reach_and_reads_the_goal_from_pixels(tmp_path):
    # The policy reads the point's own position/velocity ('proprio') and the camera; the goal is in
    # the pixels only. Seeds 0-2 (1,500 steps, ~100 s on one core): success 0.47-0.70 over 30
    # episodes, pixel sensitivity 0.84-1.16. Random actions already reach the goal 0.48-0.72 of the
    # time (benchmarks/test_margins.py), so the success bound (0.45 was one episode under seed 1) only
    # says the image pipeline runs end to end; that the policy reads the goal from the pixels is
    # what the sensitivity check shows.
    policy, result = image_policy_success(tmp_path)
    assert result.success_rate >= 0.3, result.line()
    assert pixel_sensitivity(policy) > 0.05


def pixel_sensitivity(policy) -> float:
    """Same proprioception, goal drawn elsewhere: how far the predicted motion moves with the pixels."""
    env = make_env("point/reach", cameras=["top"], image_size=32)
    a, b = env.reset(seed=1)[0], env.reset(seed=2)[0]
    proprio = a["proprio"][None, None]
    first = policy.predict_chunk(proprio, {"top_image": a["top_image"][None, None]})
    second = policy.predict_chunk(proprio, {"top_image": b["top_image"][None, None]})
    return float(np.abs(first - second).max())
