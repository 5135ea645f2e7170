"""Task-conditioned policies, multi-task stores, pretraining and ``--init`` adaptation."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from automimic.algos.bc import BCConfig, fit_policy, train_bc
from automimic.data.episode import Episode
from automimic.data.store import MULTITASK, EpisodeStore, StoreError
from automimic.data.transitions import Transitions
from automimic.policies import build_policy, load_policy, save_policy
from automimic.policies.multitask import MultiTaskPolicy, freeze_for_finetune
from automimic.training.loop import TrainConfig

TASKS = ("task/a", "task/b")


def _episode(env_id: str, action: float, seed: int, length: int = 30) -> Episode:
    # Both tasks see the same kind of states; only the task says which way to push.
    rng = np.random.default_rng(seed)
    obs = rng.normal(size=(length, 3)).astype(np.float32)
    actions = np.full((length, 2), action, dtype=np.float32)
    return Episode({"state": obs}, actions, np.zeros(length, np.float32), True, env_id=env_id, seed=seed)


def _two_task_episodes() -> list[Episode]:
    return [_episode(TASKS[i % 2], 0.5 if i % 2 == 0 else -0.5, i) for i in range(8)]


def _multitask(base: str = "mlp", base_config: dict | None = None, tasks=TASKS) -> dict:
    return {"base": base, "base_config": base_config or {"hidden": (64, 64)}, "tasks": tasks, "task_dim": 8}


def _fit(tmp_path, episodes, policy="multitask", config=None, steps=400, **kw):
    return fit_policy(episodes, "", tmp_path, policy=policy, policy_config=config or _multitask(),
                      train=TrainConfig(steps=steps, batch_size=64, log_every=100, checkpoint_every=200),
                      progress=False, **kw)


def test_task_vector_decides_the_action(tmp_path):
    episodes = _two_task_episodes()
    policy = _fit(tmp_path / "mt", episodes)
    obs = np.random.default_rng(99).normal(size=(16, 3)).astype(np.float32)
    acts = {}
    for task in TASKS:
        policy.set_task(task)
        acts[task] = policy.act(obs)
    # Same observations, opposite demonstrated actions (+0.5 / -0.5): only the task vector separates them.
    assert acts["task/a"].mean() > 0.25 and acts["task/b"].mean() < -0.25
    # A single-task MLP on the same rows cannot tell the tasks apart and lands between them.
    single = _fit(tmp_path / "single", episodes, policy="mlp", config={"hidden": (64, 64)})
    assert abs(float(single.act(obs).mean())) < 0.25


def test_task_columns_pass_the_normaliser_unchanged():
    data = Transitions.from_episodes(_two_task_episodes())
    policy = build_policy("multitask", {**_multitask(), "obs_keys": data.obs_keys}, 3, 2)
    policy.fit_normalizers(data)
    norm = policy.base.obs_norm
    assert torch.equal(norm.mean[3:], torch.zeros(8)) and torch.equal(norm.std[3:], torch.ones(8))
    assert torch.allclose(norm.mean[:3], data.obs.mean(0))


def test_rows_carry_their_task_and_unknown_tasks_are_refused():
    episodes = _two_task_episodes()
    data = Transitions.from_episodes(episodes).with_tasks(episodes, TASKS)
    expected = np.concatenate([np.full(e.length, TASKS.index(e.env_id)) for e in episodes])
    assert np.array_equal(data.task.numpy(), expected)
    assert np.array_equal(data.batch(torch.tensor([0, 35]))["task"].numpy(), expected[[0, 35]])
    assert np.array_equal(data.batch(torch.tensor([0, 35]), history=2, chunk=3)["task"].numpy(), expected[[0, 35]])
    with pytest.raises(ValueError, match=r"task\(s\) \['task/a'\]"):
        Transitions.from_episodes(episodes).with_tasks(episodes, ("task/b",))
    # Episodes that name no env (an imported file) count as the run's task.
    unnamed = [_episode("", 0.1, 1)]
    assert Transitions.from_episodes(unnamed).with_tasks(unnamed, TASKS, default="task/b").task.unique().tolist() == [1]
    with pytest.raises(ValueError, match=r"task\(s\) \[''\]"):
        Transitions.from_episodes(unnamed).with_tasks(unnamed, TASKS)


def test_new_task_starts_at_the_mean_vector_and_keeps_the_rest(tmp_path):
    policy = _fit(tmp_path, _two_task_episodes(), steps=100)
    grown = policy.with_task("task/c")
    assert grown.tasks == (*TASKS, "task/c") and grown.config.task == "task/c"
    table = grown.task_encoder.table.weight
    assert torch.allclose(table[2], policy.task_encoder.table.weight.mean(0))
    obs = np.random.default_rng(1).normal(size=(4, 3)).astype(np.float32)
    for task in TASKS:
        policy.set_task(task)
        grown.set_task(task)
        assert np.array_equal(policy.act(obs), grown.act(obs))
    with pytest.raises(ValueError, match="has no task 'task/z'"):
        grown.set_task("task/z")


def test_embedding_finetune_moves_only_task_vectors(tmp_path):
    pretrained = _fit(tmp_path / "pre", _two_task_episodes(), steps=100)
    start = pretrained.with_task("task/c")
    before = {k: v.clone() for k, v in start.state_dict().items()}
    new = [_episode("task/c", 0.2, 50 + i) for i in range(2)]
    tuned = _fit(tmp_path / "ft", new, init=start, finetune="embedding", steps=50)
    after = tuned.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed == {"task_encoder.table.weight"}
    # Only the new task's row had data; the others move by AdamW's weight decay alone (~1e-7 per step).
    moved = (before["task_encoder.table.weight"] - after["task_encoder.table.weight"]).abs().amax(1)
    assert moved[2] > 1e-2 and moved[:2].max() < 1e-4
    with pytest.raises(ValueError, match="has none"):
        freeze_for_finetune(build_policy("mlp", {}, 3, 2), "embedding")


def test_full_finetune_trains_the_pretrained_head_detached(tmp_path):
    """The pretrained steps-to-go head keeps learning on the new task, but only behaviour cloning moves the trunk."""
    from automimic.policies.steps_to_go_head import StepsToGoHeadConfig

    head = StepsToGoHeadConfig(bins=10, max_steps=40.0)
    pretrained = _fit(tmp_path / "pre", _two_task_episodes(), steps=100, steps_to_go=head)
    assert not pretrained.steps_to_go.config.detach
    start = pretrained.with_task("task/c")
    new = [_episode("task/c", 0.2, 50 + i) for i in range(2)]
    tuned = _fit(tmp_path / "ft", new, init=start, finetune="full", steps=50)
    assert tuned.steps_to_go.config.detach
    moved = {k for k, v in start.state_dict().items() if not torch.equal(v, tuned.state_dict()[k])}
    assert any(k.startswith("steps_to_go.") for k in moved) and any(not k.startswith("steps_to_go.") for k in moved)
    # A run whose reward is the head (steps-to-go practice) fine-tunes it shared, as it was pretrained.
    shared = _fit(tmp_path / "ft-shared", new, init=start, finetune="full", steps=50, shared_head=True)
    assert not shared.steps_to_go.config.detach


def test_checkpoint_keeps_tasks_and_acting_task(tmp_path):
    policy = _fit(tmp_path, _two_task_episodes(), steps=50)
    policy.set_task("task/b")
    save_policy(policy, tmp_path / "p.pt")
    loaded = load_policy(tmp_path / "p.pt")
    assert isinstance(loaded, MultiTaskPolicy) and loaded.config.task == "task/b" and loaded.tasks == TASKS
    obs = np.ones((2, 3), np.float32)
    assert np.array_equal(loaded.act(obs), policy.act(obs))


def test_chunked_base_trains_and_predicts(tmp_path, chunked):
    name, config = chunked
    policy = _fit(tmp_path, _two_task_episodes(), config=_multitask(name, config), steps=3)
    chunk = policy.predict_chunk(np.zeros((2, policy.history, 3), np.float32))
    assert chunk.shape == (2, policy.chunk, 2) and policy.chunk == config["chunk"]


def test_multitask_store_holds_several_envs(tmp_path):
    store = EpisodeStore(tmp_path / "mt.h5", env_id=MULTITASK)
    for ep in _two_task_episodes()[:3]:
        store.append(ep)
    assert store.env_id() is None and store.tasks() == {"task/a": 2, "task/b": 1}
    with pytest.raises(StoreError, match="must name its env"):
        store.append(_episode("", 0.0, 7))
    single = EpisodeStore(tmp_path / "one.h5", env_id="task/a")
    single.append(_episode("task/a", 0.0, 1))
    with pytest.raises(StoreError, match="refusing to append one of 'task/b'"):
        single.append(_episode("task/b", 0.0, 2))


def test_bad_init_and_finetune_are_one_line(tmp_path):
    with pytest.raises(ValueError, match="give it with init"):
        BCConfig(finetune="embedding")
    with pytest.raises(ValueError, match="expected one of"):
        BCConfig(init="x", finetune="half")
    with pytest.raises(FileNotFoundError, match="--init nowhere: no such run folder"):
        train_bc(BCConfig(data="unused.h5", init="nowhere"), tmp_path / "out", progress=False)
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="holds no checkpoints/best.pt"):
        train_bc(BCConfig(data="unused.h5", init=str(tmp_path / "empty")), tmp_path / "out", progress=False)


def test_pretrain_then_adapt_from_the_command_line(tmp_path):
    """``automimic pretrain`` on two Meta-World tasks, ``eval --suite`` on them, ``train bc --init`` on a
    third task with both fine-tune modes, and a resumed pretrain that redoes nothing."""
    from typer.testing import CliRunner

    from automimic.cli import app
    from automimic.rollout.collect import collect_demos

    runner = CliRunner()
    pre = tmp_path / "pre"
    args = ["pretrain", "--tasks", "reach-v3,push-v3", "--demos-per-task", "2", "--workers", "1", "--out", str(pre),
            "--set", "train.steps=40", "--set", "train.batch_size=32", "--set", "policy_config.hidden=[32,32]"]
    result = runner.invoke(app, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    store = EpisodeStore(pre / "demos.h5")
    assert store.tasks() == {"metaworld/reach-v3": 2, "metaworld/push-v3": 2} and store.env_id() is None
    info = runner.invoke(app, ["data", "info", str(pre / "demos.h5")], catch_exceptions=False).output
    assert "2 tasks (multi-task store)" in info and "metaworld/push-v3: 2" in info
    policy = load_policy(pre / "checkpoints" / "best.pt")
    assert policy.tasks == ("metaworld/reach-v3", "metaworld/push-v3") and policy.steps_to_go is not None
    timing = (pre / "timing.json").read_text()
    stamp = (pre / "checkpoints" / "last.pt").stat().st_mtime_ns
    assert runner.invoke(app, args, catch_exceptions=False).exit_code == 0
    assert (pre / "checkpoints" / "last.pt").stat().st_mtime_ns == stamp and EpisodeStore(pre / "demos.h5").tasks() == store.tasks()
    assert '"episodes": 4' in timing

    result = runner.invoke(app, ["eval", str(pre), "--suite", "reach-v3,push-v3", "--episodes", "2"],
                           catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "metaworld/reach-v3" in result.output and "metaworld/push-v3" in result.output

    demos = collect_demos("metaworld/drawer-close-v3", 2, tmp_path / "new.h5", progress=False).path
    for mode in ("full", "embedding"):
        out = tmp_path / f"adapt-{mode}"
        result = runner.invoke(app, ["train", "bc", "--data", str(demos), "--out", str(out), "--init", str(pre),
                                     "--finetune", mode, "--set", "train.steps=20"], catch_exceptions=False)
        assert result.exit_code == 0, result.output
        adapted = load_policy(out / "checkpoints" / "best.pt")
        assert adapted.tasks[-1] == "metaworld/drawer-close-v3" and adapted.config.task == adapted.tasks[-1]
        same = torch.equal(adapted.base.head.weight, policy.base.head.weight)
        assert same == (mode == "embedding")

    # A pretrained policy whose observations the env does not give is refused in one line.
    point = collect_demos("point/reach", 2, tmp_path / "point.h5", progress=False).path
    result = runner.invoke(app, ["train", "bc", "--data", str(point), "--out", str(tmp_path / "bad"), "--init", str(pre)])
    assert result.exit_code == 2 and "--init" in result.output and "39" in result.output


@pytest.mark.parametrize("method", ["seil", "practice", "steps-to-go"])
def test_every_self_improvement_method_starts_from_init(point_demos, tmp_path, method):
    """SEIL, off-policy practice and steps-to-go practice fine-tune the pretrained policy (with a new
    task vector for the env) instead of training from scratch."""
    import dataclasses

    from automimic.algos.practice import PracticeConfig, run_practice
    from automimic.algos.seil import SEILConfig, run_seil
    from automimic.algos.steps_to_go import StepsToGoConfig, run_steps_to_go
    from automimic.policies.steps_to_go_head import StepsToGoHeadConfig

    head = StepsToGoHeadConfig(bins=20, max_steps=60.0)
    other = [dataclasses.replace(e, env_id="point/other") for e in EpisodeStore(point_demos).episodes(limit=10)]
    config = _multitask(base_config={"head": "gaussian", "hidden": (32, 32)}, tasks=("point/other",))
    _fit(tmp_path / "pre", other, config=config, steps=100, steps_to_go=head)
    init = str(tmp_path / "pre")
    small = TrainConfig(steps=30, batch_size=32, checkpoint_every=30)
    out = tmp_path / method
    if method == "seil":
        run_seil(SEILConfig(data=str(point_demos), demos=3, rounds=0, eval_episodes=2, workers=1, train=small,
                            init=init), out, progress=False)
        stage = out / "round_0"
    elif method == "practice":
        run_practice(PracticeConfig(data=str(point_demos), env_id="point/reach", demos=2, budget=200, bc=small,
                                    eval_every=200, eval_episodes=2, robots=2, actor_hidden=(16,),
                                    critic_hidden=(16,), init=init), out, progress=False)
        stage = out / "bc"
    else:
        run_steps_to_go(StepsToGoConfig(data=str(point_demos), demos=3, head=head, sft=small, calibrate_episodes=4,
                                        robots=2, iterations=0, eval_episodes=2, workers=1, init=init), out,
                        progress=False)
        stage = out / "sft"
    policy = load_policy(stage / "checkpoints" / "last.pt")
    assert isinstance(policy, MultiTaskPolicy)
    assert policy.tasks == ("point/other", "point/reach") and policy.config.task == "point/reach"


@pytest.mark.parametrize("pretrained_head", ["shared", "detached"])
def test_steps_to_go_practice_fine_tunes_the_pretrained_head_as_asked(point_demos, tmp_path, pretrained_head):
    """``learned_reward.pretrained_head`` decides whether steps-to-go practice's SFT stage fine-tunes a
    pretrained head on the trunk (the default, as pretrained) or detached (as ``train bc --init``)."""
    import dataclasses

    from automimic.algos.practice import PracticeConfig, prior_settings, run_practice
    from automimic.algos.practice_rewards import LearnedRewardConfig
    from automimic.policies.steps_to_go_head import StepsToGoHeadConfig

    head = StepsToGoHeadConfig(bins=20, max_steps=60.0)
    other = [dataclasses.replace(e, env_id="point/other") for e in EpisodeStore(point_demos).episodes(limit=10)]
    config = _multitask(base_config={"head": "gaussian", "hidden": (32, 32)}, tasks=("point/other",))
    _fit(tmp_path / "pre", other, config=config, steps=100, steps_to_go=head)
    cfg = PracticeConfig(data=str(point_demos), env_id="point/reach", demos=2, budget=200, reward="steps-to-go",
                         bc=TrainConfig(steps=30, batch_size=32, checkpoint_every=30), eval_every=200,
                         eval_episodes=2, robots=2, actor_hidden=(16,), critic_hidden=(16,), init=str(tmp_path / "pre"),
                         learned_reward=LearnedRewardConfig(threshold=5.0, pretrained_head=pretrained_head))
    run_practice(cfg, tmp_path / "run", progress=False)
    prior = load_policy(tmp_path / "run" / "bc" / "checkpoints" / "last.pt")
    assert prior.steps_to_go.config.detach == (pretrained_head == "detached")
    # The two priors differ, so a run of one kind never reuses the other's bc/ stage.
    other_kind = "shared" if pretrained_head == "detached" else "detached"
    flipped = dataclasses.replace(cfg, learned_reward=dataclasses.replace(cfg.learned_reward, pretrained_head=other_kind))
    assert prior_settings(flipped) != prior_settings(cfg)
    with pytest.raises(ValueError, match="pretrained_head must be one of"):
        LearnedRewardConfig(pretrained_head="frozen")


def _multitask_benchmark():
    """``benchmarks/multitask.py`` as a module (it imports its sibling ``harness``)."""
    import importlib.util
    import sys

    folder = Path(__file__).resolve().parent.parent / "benchmarks"
    sys.path.insert(0, str(folder))
    try:
        spec = importlib.util.spec_from_file_location("multitask_benchmark", folder / "multitask.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(folder))
    return module


def test_a_variant_pretraining_never_answers_for_the_default_pretrainings_cells(tmp_path):
    bench = _multitask_benchmark()
    where = ["--out", str(tmp_path / "cells"), "--runs", str(tmp_path / "runs")]
    default = bench.parser().parse_args(["fewshot", *where])
    detached = bench.parser().parse_args(["fewshot", "--pretrain-head", "detached", *where])
    longer = bench.parser().parse_args(["fewshot", "--pretrain-steps", "60000", *where])
    for stage in ("fewshot", "detector", "practice"):
        folders = {bench.stage_dir(a, stage, root) for a in (default, detached, longer)
                   for root in (None, a.runs)}
        assert len(folders) == 6, stage
    assert len({bench.pretrain_dir(a, 0) for a in (default, detached, longer)}) == 3
    # The variant's few-shot cells show up in the table as their own column, next to the default's.
    cell = {"successes": 40, "episodes": 50}
    for args, value in ((default, 20), (detached, 40)):
        path = bench.stage_dir(args, "fewshot") / "box-close-v3_full_k5_s0.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({**cell, "successes": value}))
    table = bench.render(default)
    header = next(line for line in table.splitlines() if line.startswith("| task"))
    assert "full BC(5), pretraining head-detached" in header
    row = next(line for line in table.splitlines() if line.startswith("| box-close-v3")).split("|")
    columns = [c.strip() for c in header.split("|")]
    assert row[columns.index("full BC(5)")].strip().startswith("0.40")
    assert row[columns.index("full BC(5), pretraining head-detached")].strip().startswith("0.80")
