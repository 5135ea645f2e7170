"""Environments: Meta-World, the built-in point mass and any Gymnasium env, behind ``make_env``."""

from automimic.envs.base import AutomimicEnv, Expert, Obs, StartRecord
from automimic.envs.registry import (Family, default_perturb, env_ids, env_spec, expert_for, make_env,
                                    register_family)


def _register_builtin() -> None:
    from automimic.envs import metaworld as mw
    from automimic.envs.gym_adapter import GymnasiumEnv
    from automimic.envs.point import DEFAULT_PERTURB as POINT_PERTURB
    from automimic.envs.point import PointReachEnv, PointReachExpert

    register_family(Family("point", lambda name, **kw: PointReachEnv(**kw), lambda: ["reach"],
                           expert=lambda name: PointReachExpert(), default_perturb=POINT_PERTURB))
    register_family(Family("metaworld", lambda name, **kw: mw.MetaWorldEnv(name, **kw), mw.task_names,
                           expert=mw.MetaWorldExpert, default_perturb=mw.DEFAULT_PERTURB))
    register_family(Family("gym", lambda name, **kw: GymnasiumEnv(name, **kw), lambda: [], open_ended=True))


_register_builtin()

__all__ = ["AutomimicEnv", "Expert", "Family", "Obs", "StartRecord", "default_perturb", "env_ids", "env_spec", "expert_for",
           "make_env", "register_family"]
