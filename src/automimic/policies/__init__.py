"""Policy classes; importing this package registers them."""

from automimic.policies.base import (STOCHASTIC, Policy, build_policy, check_policy_config, cpu_train_defaults,
                                     load_policy, policy_capabilities, policy_from_payload, policy_names,
                                     policy_payload, register_policy, require_stochastic, save_policy,
                                     stochastic_problem)
from automimic.policies.act import ACTConfig, ACTPolicy
from automimic.policies.diffusion import DiffusionConfig, DiffusionPolicy
from automimic.policies.mlp import MLPConfig, MLPPolicy
from automimic.policies.multitask import MultiTaskConfig, MultiTaskPolicy
from automimic.policies.prior_actor import PriorActorConfig, PriorActorPolicy
from automimic.policies.residual import ResidualConfig, ResidualPolicy

__all__ = ["STOCHASTIC", "ACTConfig", "ACTPolicy", "DiffusionConfig", "DiffusionPolicy", "MLPConfig", "MLPPolicy", "MultiTaskConfig", "MultiTaskPolicy", "Policy", "PriorActorConfig", "PriorActorPolicy", "ResidualConfig", "ResidualPolicy",
           "build_policy", "check_policy_config", "cpu_train_defaults", "load_policy", "policy_capabilities", "policy_from_payload", "policy_names",
           "policy_payload", "register_policy", "require_stochastic", "save_policy", "stochastic_problem"]
