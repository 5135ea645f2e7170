"""Every registered algorithm's run folder passes through ``automimic eval``, and ``automimic report``
where the algorithm has one: one parametrised test over the registry, so a new algorithm must join."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from automimic.algos import registry
from automimic.cli import app
from automimic.config import load_config

SMALL_RL = ["demos=3", "bc.steps=20", "rl.iterations=1", "rl.steps_per_iteration=100", "rl.eval_episodes=2",
            "rl.workers=1", "rl.robots=2"]
#: The smallest run of each algorithm (point/reach demos; pretrain records two Meta-World reach demos).
RUNS: dict[str, list[str]] = {
    "bc": ["train.steps=20", "policy_config.hidden=[16]"],
    "dagger": ["demos=3", "rounds=1", "episodes_per_round=2", "train.steps=20", "eval_episodes=2", "workers=1",
               "policy_config.hidden=[16]"],
    "seil": ["demos=3", "rounds=1", "practice_episodes=2", "keep=1", "eval_episodes=2", "workers=1", "train.steps=20",
             "policy_config.hidden=[16]"],
    "gail": [*SMALL_RL, "policy_config.hidden=[16]", "disc_steps=2"],
    "airl": [*SMALL_RL, "policy_config.hidden=[16]", "disc_steps=2"],
    "bc-rl": [*SMALL_RL, "policy_config.hidden=[16]"],
    "residual": [*SMALL_RL, "base_config.hidden=[16]"],
    "steps-to-go": ["demos=20", "sft.steps=300", "head.bins=20", "head.max_steps=60", "calibrate_episodes=8",
                    "robots=2", "iterations=1", "steps_per_iteration=100", "eval_episodes=2", "workers=1",
                    "policy_config.hidden=[64,64]"],
    "practice": ["env_id=point/reach", "demos=2", "budget=400", "bc.steps=20", "eval_every=400", "eval_episodes=2",
                 "robots=2", "actor_hidden=[16]", "critic_hidden=[16]", "update.batch=32"],
    "pretrain": ["tasks=reach-v3", "demos_per_task=2", "workers=1", "train.steps=20", "train.batch_size=32",
                 "policy_config.hidden=[16]"],
}


def test_the_table_covers_every_registered_algorithm():
    assert set(RUNS) == set(registry.names()), "add the new algorithm's smallest run to RUNS"


@pytest.mark.parametrize("name", sorted(RUNS))
def test_every_run_folder_passes_eval_and_report(name, point_demos, tmp_path):
    algorithm = registry.get(name)
    data = [] if name == "pretrain" else [f"data={point_demos}"]
    cfg = load_config(algorithm.config, None, [*algorithm.overrides, *data, *RUNS[name]])
    out = tmp_path / name
    algorithm.run(cfg, out, False, None)
    runner = CliRunner()
    where = ["--suite", "reach-v3"] if name == "pretrain" else []
    result = runner.invoke(app, ["eval", str(out), "--episodes", "2", *where], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "success" in result.output
    if algorithm.report is not None:
        result = runner.invoke(app, ["report", str(out)], catch_exceptions=False)
        assert result.exit_code == 0 and (out / "report.md").exists(), result.output
