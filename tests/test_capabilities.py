"""Policy capabilities: what a class with a config can do, known before anything is built."""

from __future__ import annotations

import pytest
import torch

from automimic.algos.on_policy import check_rl_policy
from automimic.data.transitions import Transitions
from automimic.policies import STOCHASTIC, ResidualPolicy, build_policy
from automimic.policies.base import policy_capabilities, require_stochastic, stochastic_problem

GAUSSIAN = {"head": "gaussian"}
TASKS = ("task/a", "task/b")
CASES = [  # (class, config, stochastic)
    ("mlp", {}, False),
    ("mlp", {"head": "deterministic"}, False),
    ("mlp", GAUSSIAN, True),
    ("act", {}, True),
    ("diffusion", {}, True),
    ("multitask", {"tasks": TASKS}, False),
    ("multitask", {"tasks": TASKS, "base_config": GAUSSIAN}, True),
    ("multitask", {"tasks": TASKS, "base": "act"}, True),
    ("residual", {}, True),  # its own Gaussian around the corrected action, whatever the base
    ("prior-actor", {}, False),
]


@pytest.mark.parametrize("name,config,stochastic", CASES)
def test_capabilities_come_from_class_and_config(name, config, stochastic):
    assert (STOCHASTIC in policy_capabilities(name, config)) == stochastic
    assert (stochastic_problem(name, config) is None) == stochastic


def _data(n: int = 64) -> Transitions:
    g = torch.Generator().manual_seed(0)
    obs = torch.randn(n, 5, generator=g)
    return Transitions(obs, torch.tanh(obs[:, :2]), torch.zeros(n, dtype=torch.long), ("state",), torch.full((n,), -1.0))


@pytest.mark.parametrize("config", [{}, GAUSSIAN, {"tasks": TASKS}, {"tasks": TASKS, "base_config": GAUSSIAN}])
def test_a_built_policy_has_a_distribution_exactly_when_its_config_says(config):
    name = "multitask" if "tasks" in config else "mlp"
    policy = build_policy(name, {**config, "obs_keys": ("state",)}, 5, 2)
    policy.fit_normalizers(_data())
    # The class answers from the config dataclass too (what a loaded policy carries).
    stochastic = STOCHASTIC in type(policy).capabilities(policy.config)
    assert stochastic == (STOCHASTIC in policy_capabilities(name, config))
    if stochastic:
        assert policy.action_distribution(_data().obs[:3]).sample().shape == (3, 2)
    else:
        with pytest.raises(ValueError, match="head=gaussian"):
            policy.action_distribution(_data().obs[:3])


def test_a_residual_is_stochastic_around_a_deterministic_base():
    base = build_policy("mlp", {"obs_keys": ("state",), "hidden": (16,)}, 5, 2)
    base.fit_normalizers(_data())
    residual = ResidualPolicy.from_base(base, _data())
    assert STOCHASTIC in type(residual).capabilities(residual.config)
    assert residual.action_distribution(_data().obs[:3]).sample().shape == (3, 2)


def test_refusals_are_one_line_and_name_what_to_set():
    with pytest.raises(ValueError, match=r"^on-policy RL needs .*: policy_config\.head must be 'gaussian'$"):
        check_rl_policy("mlp", {"hidden": (8,)})
    with pytest.raises(ValueError, match=r"^practice needs .*: policy_config\.base_config\.head must be 'gaussian'$"):
        require_stochastic("multitask", {"tasks": TASKS}, "practice")
    with pytest.raises(ValueError, match="policy 'prior-actor' has no action distribution") as err:
        require_stochastic("prior-actor", {}, "on-policy RL")
    assert "\n" not in str(err.value) and "mlp with head=gaussian" in str(err.value)
    with pytest.raises(ValueError, match="unknown policy 'transformer'"):
        require_stochastic("transformer", {}, "on-policy RL")
    require_stochastic("multitask", {"tasks": TASKS, "base": "diffusion"}, "on-policy RL")


def test_practice_from_init_asks_the_loaded_policy_its_capabilities():
    from automimic.algos.steps_to_go import check_practicable

    head = {"bins": 5, "max_steps": 20.0}
    diffusion = build_policy("diffusion", {"obs_keys": ("state",), "history": 2, "chunk": 4, "execute_steps": 2, "down_dims": (8, 16),
                                           "feature_dim": 8, "time_embed_dim": 8}, 3, 2, steps_to_go=head)
    check_practicable(diffusion, "--init d")  # its distribution needs a latent; the capability does not
    deterministic = build_policy("mlp", {"obs_keys": ("state",), "hidden": (8,)}, 3, 2, steps_to_go=head)
    with pytest.raises(ValueError, match=r"^--init m: policy_config\.head must be 'gaussian' \(on-policy practice"):
        check_practicable(deterministic, "--init m")
