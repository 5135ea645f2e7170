"""Meta-World suites and difficulty tiers; evaluating one policy over many tasks, resumably."""

from __future__ import annotations

import json

import pytest
import torch

from automimic.data.transitions import Transitions
from automimic.envs.suites import SUITES, TIERS, resolve_tasks, suite_label, suite_tasks, tier_of
from automimic.evaluation.evaluate import evaluate
from automimic.evaluation.multitask import MultiTaskResult, evaluate_tasks, policy_digest
from automimic.policies.mlp import MLPConfig, MLPPolicy

TASKS = ["metaworld/reach-v3", "metaworld/push-v3"]
FAST = {"episodes": 2, "horizon": 20, "progress": False}


def test_tiers_partition_mt50_exactly():
    mt50 = suite_tasks("mt50")
    assert len(mt50) == len(set(mt50)) == 50
    tiered = [f"metaworld/{t}" for tasks in TIERS.values() for t in tasks]
    assert len(tiered) == len(set(tiered)) and set(tiered) == set(mt50)
    assert {tier: len(tasks) for tier, tasks in TIERS.items()} == {"easy": 28, "medium": 11, "hard": 6, "very hard": 5}
    assert tier_of("metaworld/push-v3") == "hard" and tier_of("metaworld/shelf-place-v3") == "very hard"
    assert tier_of("metaworld/sweep-into-v3") == "medium" and tier_of("metaworld/reach-v3") == "easy"
    assert tier_of("point/reach") is None
    with pytest.raises(ValueError, match="not an MT50 task"):
        tier_of("metaworld/pushh-v3")


def test_suites_come_from_metaworld_as_env_ids():
    sizes = {"mt10": 10, "mt50": 50, "ml10-train": 10, "ml10-test": 5, "ml45-train": 45, "ml45-test": 5}
    assert set(sizes) == set(SUITES)
    for name, size in sizes.items():
        tasks = suite_tasks(name)
        assert len(tasks) == size and all(t.startswith("metaworld/") and t.endswith("-v3") for t in tasks), name
    assert suite_tasks("mt10")[:2] == ["metaworld/reach-v3", "metaworld/push-v3"]
    assert not set(suite_tasks("ml45-train")) & set(suite_tasks("ml45-test"))
    assert set(suite_tasks("ml45-train")) | set(suite_tasks("ml45-test")) == set(suite_tasks("mt50"))


def test_a_spec_is_a_suite_or_a_task_list_less_the_excluded():
    assert resolve_tasks("mt10") == suite_tasks("mt10")
    assert resolve_tasks("MT10", exclude=["push-v3", "metaworld/reach-v3"]) == suite_tasks("mt10")[2:]
    assert resolve_tasks("mt10", exclude=["push-v3,reach-v3", "shelf-place-v3"]) == suite_tasks("mt10")[2:]
    assert resolve_tasks("push-v3, metaworld/reach-v3,push-v3") == ["metaworld/push-v3", "metaworld/reach-v3"]
    assert suite_label("mt10") == "mt10" and suite_label("push-v3,metaworld/reach-v3") == "push+reach"
    assert suite_label(",".join(suite_tasks("mt10"))).startswith("tasks-10-")
    # A partial evaluation gets its own files, so it cannot overwrite the whole suite's.
    assert suite_label("mt50", ["push-v3", "metaworld/reach-v3"]) == "mt50-without-push+reach"
    assert suite_label("mt50", ["push-v3,reach-v3"]) == "mt50-without-push+reach"
    assert suite_label("mt50", []) == "mt50"


@pytest.mark.parametrize("spec, exclude, expected", [
    ("mt11", (), "unknown suite or Meta-World task 'mt11'"),
    ("push-v3,pick-plase-v3", (), "'pick-plase-v3' (did you mean pick-place-v3?)"),
    ("mt10", ("push-v9",), "--exclude: unknown suite or Meta-World task 'push-v9'"),
    ("push-v3", ("push-v3",), "nothing left to evaluate"),
])
def test_a_bad_spec_is_one_line_naming_the_valid_names(spec, exclude, expected):
    with pytest.raises(ValueError) as err:
        resolve_tasks(spec, exclude)
    text = str(err.value)
    assert expected in text and "\n" not in text
    if "unknown" in expected:
        assert "mt10" in text and "ml45-test" in text and "window-open-v3" in text


class Recording(MLPPolicy):
    """The MLP, recording every task it is switched to (rollouts use a copy built from its payload)."""

    calls: list[str]

    def set_task(self, env_id: str) -> None:
        self.calls.append(env_id)


@pytest.fixture(scope="module")
def policy():
    """An untrained Meta-World-sized MLP (39 -> 4) with normalisers fitted on random data."""
    torch.manual_seed(0)
    p = Recording(MLPConfig(obs_keys=("state",), hidden=(16,)), 39, 4)
    n = 64
    p.fit_normalizers(Transitions(torch.randn(n, 39), torch.rand(n, 4) * 2 - 1, torch.zeros(n, dtype=torch.long),
                                  ("state",), torch.full((n,), -1)))
    p.eval()
    p.calls = []
    return p


def test_evaluate_tasks_sets_each_task_and_matches_direct_evaluation(policy):
    policy.calls.clear()
    result = evaluate_tasks(policy, TASKS, **FAST)
    assert policy.calls == TASKS
    for env_id, r in zip(TASKS, result.results):
        assert r == evaluate(policy, env_id, 2, horizon=20, progress=False)
    assert [g.name for g in result.tiers()] == ["easy", "hard"]
    mean = result.mean()
    assert mean.episodes == 4 and mean.successes == sum(r.successes for r in result.results)
    assert mean.success_rate == pytest.approx(sum(r.success_rate for r in result.results) / 2)
    assert mean.ci_low <= mean.success_rate <= mean.ci_high
    table = result.markdown()
    assert "| metaworld/push-v3 | hard |" in table and "**tier: easy** (1 task)" in table
    assert "**mean** (2 tasks)" in table and "2 episodes each" in table
    assert table.index("reach-v3 |") < table.index("tier: easy") < table.index("tier: hard") < table.index("**mean**")


def test_a_restarted_evaluation_runs_only_the_missing_task(policy, tmp_path):
    cache = tmp_path / "eval.cache.json"
    key = policy_digest(policy)
    policy.calls.clear()
    full = evaluate_tasks(policy, TASKS, **FAST, cache=cache, key=key)
    assert set(json.loads(cache.read_text())["results"]) == set(TASKS)
    # Killed after the first task: its result is all the cache holds.
    data = json.loads(cache.read_text())
    data["results"] = {TASKS[0]: data["results"][TASKS[0]]}
    cache.write_text(json.dumps(data))
    policy.calls.clear()
    again = evaluate_tasks(policy, TASKS, **FAST, cache=cache, key=key)
    assert policy.calls == [TASKS[1]]
    assert again.markdown() == full.markdown() and again.results == full.results
    assert set(json.loads(cache.read_text())["results"]) == set(TASKS)
    # Everything cached: nothing runs; a cache for other settings or another policy is refused.
    policy.calls.clear()
    assert evaluate_tasks(policy, TASKS[::-1], **FAST, cache=cache, key=key).results == full.results[::-1]
    assert policy.calls == []
    for change in ({"key": "other"}, {"episodes": 3}, {"seed": 1}, {"horizon": 21}):
        with pytest.raises(ValueError, match="cache written for") as err:
            evaluate_tasks(policy, TASKS, **{**FAST, "key": key, **change}, cache=cache)
        assert "\n" not in str(err.value)
    # The saved result reads back whole.
    full.save(tmp_path / "eval.json")
    assert MultiTaskResult.load(tmp_path / "eval.json") == full


def test_a_task_the_policy_does_not_know_is_refused_before_anything_runs(policy, monkeypatch):
    monkeypatch.setattr(type(policy), "tasks", ("metaworld/reach-v3",))
    policy.calls.clear()
    with pytest.raises(ValueError, match="not metaworld/push-v3"):
        evaluate_tasks(policy, TASKS, **FAST)
    assert policy.calls == []


def test_eval_suite_from_the_command_line(policy, tmp_path):
    from typer.testing import CliRunner

    from automimic.cli import app
    from automimic.policies import save_policy

    run = tmp_path / "run"
    save_policy(policy, run / "checkpoints" / "best.pt")
    (run / "config.yaml").write_text("algo: bc\nenv_id: metaworld/reach-v3\n")
    args = ["eval", str(run), "--suite", "push-v3,reach-v3,pick-place-v3", "--exclude", "pick-place-v3",
            "--episodes", "2", "--horizon", "20"]
    r = CliRunner().invoke(app, args, catch_exceptions=False)
    assert r.exit_code == 0, r.output
    assert "| metaworld/push-v3 | hard |" in r.output and "**mean** (2 tasks)" in r.output
    saved = MultiTaskResult.load(run / "eval_push+reach+pick-place-without-pick-place.json")
    assert [x.env_id for x in saved.results] == ["metaworld/push-v3", "metaworld/reach-v3"]
    assert (run / "eval_push+reach+pick-place-without-pick-place.md").read_text() == saved.markdown()
    assert (run / "eval_push+reach+pick-place-without-pick-place.cache.json").exists()
    r = CliRunner().invoke(app, ["eval", str(run), "--suite", "mt11"], catch_exceptions=False)
    assert r.exit_code == 2 and "unknown suite or Meta-World task 'mt11'" in r.output


def test_tier_and_mean_rows_pool_the_episodes_of_their_tasks():
    from automimic.evaluation.evaluate import summarize
    from automimic.evaluation.stats import wilson_interval

    def result(env_id, flags):
        return summarize(env_id, list(range(len(flags))), flags, [10 + i for i in range(len(flags))])

    r = MultiTaskResult([result("metaworld/push-v3", [1, 1, 1, 0]), result("metaworld/assembly-v3", [0, 0, 0, 1]),
                         result("metaworld/reach-v3", [1, 1, 1, 1]), result("point/reach", [0, 0, 0, 0])])
    mean = r.mean()
    assert (mean.successes, mean.episodes, mean.success_rate) == (8, 16, 0.5)
    assert (mean.ci_low, mean.ci_high) == wilson_interval(8, 16) and mean.mean_length == 11.5
    tiers = {g.name: g for g in r.tiers()}
    assert list(tiers) == ["easy", "hard"] and tiers["hard"].tasks == ["metaworld/push-v3", "metaworld/assembly-v3"]
    assert tiers["hard"].success_rate == 0.5 and (tiers["hard"].ci_low, tiers["hard"].ci_high) == wilson_interval(4, 8)
    assert "| point/reach |  | 0.00 |" in r.markdown()
    with pytest.raises(ValueError, match="same episode count"):
        MultiTaskResult([result("metaworld/push-v3", [1, 0]), result("metaworld/reach-v3", [1, 0, 1])])
