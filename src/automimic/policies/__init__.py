"""Policy classes; importing this package registers them."""

from automimic.policies.base import (Policy, build_policy, load_policy, policy_from_payload, policy_names,
                                     policy_payload, register_policy, save_policy)
from automimic.policies.mlp import MLPConfig, MLPPolicy

__all__ = ["MLPConfig", "MLPPolicy", "Policy", "build_policy", "load_policy", "policy_from_payload",
           "policy_names", "policy_payload", "register_policy", "save_policy"]
