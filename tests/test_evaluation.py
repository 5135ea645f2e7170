"""Evaluation: Wilson intervals, disjoint seeds, parallel workers, videos."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from automimic.algos.bc import BCConfig, train_bc
from automimic.data import EpisodeStore
from automimic.evaluation.evaluate import evaluate, record_videos
import math

from automimic.evaluation.stats import seed_interval, wilson_interval
from automimic.seeding import episode_seeds, purpose_of
from automimic.training.loop import TrainConfig


def test_seed_interval_is_the_t_interval_over_seed_means():
    mean, low, high = seed_interval([0.6, 0.7, 0.8])
    # sd 0.1, t(0.975, 2) = 4.303: half-width 4.303 * 0.1 / sqrt(3) = 0.2484.
    assert mean == pytest.approx(0.7) and low == pytest.approx(0.4516, abs=1e-4) and high == pytest.approx(0.9484, abs=1e-4)
    assert seed_interval([0.9, 1.0, 1.0])[2] == 1.0  # clipped to [0, 1]
    one = seed_interval([0.5])
    assert one[0] == 0.5 and math.isnan(one[1]) and math.isnan(one[2])


def test_wilson_matches_known_values():
    # Reference values from the closed form (e.g. Wilson 1927; statsmodels proportion_confint 'wilson').
    low, high = wilson_interval(8, 10)
    assert low == pytest.approx(0.4902, abs=1e-4) and high == pytest.approx(0.9433, abs=1e-4)
    assert wilson_interval(0, 50)[0] == 0.0 and wilson_interval(0, 50)[1] == pytest.approx(0.0713, abs=1e-4)
    assert wilson_interval(50, 50)[1] == 1.0
    # Every n: the interval holds the observed rate (6/6 once rounded to 0.9999999999999999).
    assert all(lo <= k / n <= hi for n in range(1, 60) for k in range(n + 1) for lo, hi in [wilson_interval(k, n)])
    with pytest.raises(ValueError):
        wilson_interval(3, 2)


def test_evaluation_seeds_never_meet_collection_seeds(point_demos):
    collected = {e.seed for e in EpisodeStore(point_demos).episodes()}
    assert {purpose_of(s) for s in collected} == {"collect"}
    for run_seed in (0, 1, 999):
        eval_seeds = set(episode_seeds("eval", run_seed, 1000))
        assert not eval_seeds & set(episode_seeds("collect", run_seed, 100_000))
        assert not eval_seeds & set(episode_seeds("practice", run_seed, 100_000))
        assert not eval_seeds & set(episode_seeds("validate", run_seed, 100_000))
    assert max(episode_seeds("eval", 999, 1, start=99_999)) < 2**31


@pytest.fixture(scope="module")
def small_policy(point_demos, tmp_path_factory):
    cfg = BCConfig(data=str(point_demos), train=TrainConfig(steps=300, batch_size=128))
    return train_bc(cfg, tmp_path_factory.mktemp("eval") / "run", progress=False)


def test_parallel_workers_give_identical_results(small_policy):
    one = evaluate(small_policy, "point/reach", 12, progress=False)
    two = evaluate(small_policy, "point/reach", 12, workers=2, progress=False)
    assert one.seeds == two.seeds == episode_seeds("eval", 0, 12)
    assert one.per_episode_success == two.per_episode_success
    assert one.per_episode_length == two.per_episode_length
    assert one.successes == sum(one.per_episode_success)
    assert np.isclose(one.mean_length, np.mean(one.per_episode_length))
    assert one.ci_low <= one.success_rate <= one.ci_high


def test_video_of_point_reach(small_policy, tmp_path):
    import imageio.v3 as iio

    paths = record_videos(small_policy, "point/reach", tmp_path, count=2, image_size=64)
    assert len(paths) == 2 and all(p.suffix == ".mp4" for p in paths)
    frames = iio.imread(paths[0])
    assert frames.ndim == 4 and frames.shape[-1] == 3 and len(frames) >= 2


def test_metaworld_renders_offscreen():
    from automimic.envs import make_env

    env = make_env("metaworld/push-v3", render_mode="rgb_array", image_size=64)
    env.reset(seed=0)
    frame = env.render()
    assert frame.shape == (64, 64, 3) and frame.std() > 0
    env.close()


def test_missing_renderer_gives_a_clear_message(small_policy, tmp_path):
    code = (
        "import sys\n"
        "from automimic.evaluation.video import open_render_env, RenderUnavailable\n"
        "try:\n"
        "    open_render_env('metaworld/push-v3', 32)\n"
        "except RenderUnavailable as err:\n"
        "    print(err); sys.exit(3)\n"
    )
    env = {**os.environ, "MUJOCO_GL": "osmesa", "PYOPENGL_PLATFORM": "osmesa"}
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    if proc.returncode == 0:
        pytest.skip("OSMesa is installed here, so rendering works under MUJOCO_GL=osmesa too")
    assert proc.returncode == 3, proc.stderr[-2000:]
    assert "offscreen rendering failed with MUJOCO_GL=osmesa" in proc.stdout
    assert "libosmesa6" in proc.stdout
