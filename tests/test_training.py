"""The shared training loop: run folder, determinism, resume after interruption, BC learns."""

from __future__ import annotations

import json

import pytest
import torch

from automimic.algos.bc import BCConfig, load_run_policy, select_episodes, train_bc
from automimic.evaluation.evaluate import evaluate
from automimic.training.loop import TrainConfig


def bc_config(data, steps=200, validate_every=0, **kw) -> BCConfig:
    return BCConfig(data=str(data), train=TrainConfig(steps=steps, batch_size=64, log_every=50, checkpoint_every=50,
                                                      validate_every=validate_every),
                    policy_config={"hidden": [64, 64]}, **kw)


def weights(policy):
    return {k: v.clone() for k, v in policy.state_dict().items()}


def test_run_folder_contents(point_demos, tmp_path):
    train_bc(bc_config(point_demos), tmp_path / "run", progress=False)
    run = tmp_path / "run"
    assert (run / "config.yaml").exists() and (run / "checkpoints/last.pt").exists()
    assert (run / "checkpoints/best.pt").exists()
    assert any((run / "tb").iterdir())
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [50, 100, 150, 200]
    assert records[-1]["loss"] < records[0]["loss"]
    assert "env_id: point/reach" in (run / "config.yaml").read_text()


def test_same_seed_same_weights_and_resume_matches_uninterrupted(point_demos, tmp_path):
    straight = train_bc(bc_config(point_demos), tmp_path / "a", progress=False)
    again = train_bc(bc_config(point_demos), tmp_path / "b", progress=False)
    for k, v in weights(straight).items():
        torch.testing.assert_close(v, weights(again)[k], rtol=0, atol=0)

    # Interrupt for real: raise from inside the loop right after step 150 is logged, before its
    # checkpoint, so the resume starts from step 100 and must drop the step-150 record.
    cfg = bc_config(point_demos)
    import automimic.training.loop as loop

    original = loop.RunDir.log

    def log_then_die(self, step, metrics):
        original(self, step, metrics)
        if step == 150:
            raise KeyboardInterrupt

    loop.RunDir.log = log_then_die
    try:
        with pytest.raises(KeyboardInterrupt):
            train_bc(cfg, tmp_path / "c", progress=False)
    finally:
        loop.RunDir.log = original
    lines = (tmp_path / "c" / "metrics.jsonl").read_text().splitlines()
    assert json.loads(lines[-1])["step"] == 150
    resumed = train_bc(bc_config(point_demos), tmp_path / "c", progress=False)
    for k, v in weights(straight).items():
        torch.testing.assert_close(v, weights(resumed)[k], rtol=0, atol=0)
    steps = [json.loads(line)["step"] for line in (tmp_path / "c" / "metrics.jsonl").read_text().splitlines()]
    assert steps == [50, 100, 150, 200]


def test_resume_refuses_a_changed_config(point_demos, tmp_path):
    train_bc(bc_config(point_demos, steps=50), tmp_path / "r", progress=False)
    with pytest.raises(ValueError, match="different config"):
        train_bc(bc_config(point_demos, steps=50, seed=1), tmp_path / "r", progress=False)


def test_a_refused_resume_names_each_changed_leaf_with_its_old_and_new_value(tmp_path):
    from automimic.training.run_dir import RunDir

    run = RunDir(tmp_path / "r")
    run.write_config({"seed": 0, "learned_reward": {"source": "ot", "scale": 1.0}, "budget": 10})
    with pytest.raises(ValueError) as err:
        run.write_config({"seed": 0, "learned_reward": {"source": "ot", "scale": 2.0, "hold": True}, "budget": 20},
                         growable=("budget",))
    message = str(err.value)
    assert "learned_reward.hold absent -> true; learned_reward.scale 1.0 -> 2.0" in message
    assert "budget 10 -> 20" in message and "seed" not in message
    assert len(message.splitlines()) == 1
    assert run.read_config()["learned_reward"] == {"source": "ot", "scale": 1.0}  # nothing overwritten


def test_select_episodes_spreads_evenly():
    assert select_episodes(list(range(50)), 5) == [0, 12, 24, 37, 49]
    assert select_episodes(list(range(50)), 1) == [0]
    assert select_episodes(list(range(3)), 0) == [0, 1, 2]


def test_validation_rollouts_pick_best(point_demos, tmp_path):
    cfg = bc_config(point_demos, steps=100, val_episodes=4, validate_every=50)
    train_bc(cfg, tmp_path / "v", progress=False)
    records = [json.loads(line) for line in (tmp_path / "v" / "metrics.jsonl").read_text().splitlines()]
    assert all("val_success" in r for r in records)
    best = torch.load(tmp_path / "v/checkpoints/best.pt", weights_only=False)
    assert best["extra"]["score"] == max(r["val_success"] for r in records)


def bc_success(folder, seed: int = 0):
    """BC on 100 point/reach demos, 3000 steps from ``seed``; the best policy's evaluation over 50 episodes."""
    from automimic.rollout.collect import collect_demos

    demos = folder / "point100.h5"
    if not demos.exists():
        collect_demos("point/reach", 100, demos, progress=False)
    cfg = BCConfig(data=str(demos), train=TrainConfig(steps=3000), seed=seed)
    run = folder / f"run{seed}"
    train_bc(cfg, run, progress=False)
    return evaluate(load_run_policy(run, "best"), "point/reach", 50, progress=False)


@pytest.mark.slow
def test_bc_learns_point_reach(tmp_path):
    result = bc_success(tmp_path)
    # Seeds 0-4: success 0.84-0.98 over 50 episodes, mean length 40-67 steps. The old bound 0.9 failed
    # 3 of those 5 seeds: it held only for seed 0's float bits. Random actions reach the goal 0.48-0.72
    # of the time in 121-160 steps on average (benchmarks/test_margins.py), so the length is what
    # shows that BC learned; both bounds sit well outside the seed spread.
    assert result.success_rate >= 0.7 and result.mean_length < 100, result.line()


def test_ema_follows_the_decay_and_differs_from_the_primary(point_demos, tmp_path):
    from automimic.policies import build_policy, load_policy
    from automimic.training.ema import EMA

    policy = build_policy("mlp", {"obs_keys": ["state"], "hidden": [8]}, 6, 2)
    ema = EMA(policy, decay=0.9)
    before = [p.clone() for p in ema.model.parameters()]
    with torch.no_grad():
        for p in policy.parameters():
            p.add_(1.0)
    ema.update(policy)
    for old, avg, new in zip(before, ema.model.parameters(), policy.parameters()):
        torch.testing.assert_close(avg, 0.9 * old + 0.1 * new)
    with pytest.raises(ValueError, match="ema decay must be in"):
        EMA(policy, 1.0)

    cfg = bc_config(point_demos, steps=100)
    cfg.train.ema_decay = 0.95
    trained = train_bc(cfg, tmp_path / "ema", progress=False)
    averaged = load_policy(tmp_path / "ema/checkpoints/ema.pt")
    diffs = [(a - b).abs().max().item() for a, b in zip(averaged.parameters(), trained.parameters())]
    assert max(diffs) > 1e-4  # a real average, not a copy
    torch.testing.assert_close(averaged.obs_norm.mean, trained.obs_norm.mean)


def test_a_run_killed_before_its_first_checkpoint_logs_each_step_once(point_demos, tmp_path):
    # The state such a kill leaves: metrics.jsonl holds records, checkpoints/ holds nothing.
    cfg = bc_config(point_demos, steps=150)
    train_bc(cfg, tmp_path / "run", progress=False)
    import shutil

    shutil.rmtree(tmp_path / "run" / "checkpoints")
    train_bc(cfg, tmp_path / "run", progress=False)
    steps = [json.loads(line)["step"] for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert steps == sorted(set(steps)) and steps
