"""Meta-World v3 (MuJoCo) tasks behind the automimic env contract, with their scripted experts.

Start states: Meta-World samples one "random vector" per reset (the concatenated 3-D placements of
the task's objects and goal) and its own ``reset(seed=)`` ignores the seed. We therefore replace the
env's sampler per instance: each reset draws that vector from ``np.random.default_rng(seed)``, so a
seed names one start state exactly, and the perturbation adds a Gaussian (x, y) offset to every
block that moves an observed object, along the axes the task randomises (z untouched; goal-only
blocks untouched; an axis fixed by the task, such as drawer-open's y, untouched). Meta-World's own
rejection loops (e.g. "goal too close to object, resample") keep working because every call of the
sampler draws afresh from the same seeded stream.
"""

from __future__ import annotations

import functools
import os
import types
import warnings
from typing import Any

import gymnasium as gym
import numpy as np

from automimic.envs.base import AutomimicEnv, Obs, StartRecord

# Meta-World's scripted policies warn on every call whose raw action exceeds [-1, 1]; we clip to the
# action space ourselves, so the warning carries no information and floods collection logs.
warnings.filterwarnings("ignore", message=r"Constant\(s\) may be too high", category=UserWarning)

#: Step budget per episode. Meta-World allows 500; every scripted expert on MT10 finishes well
#: inside 200 (the horizon the reference BC numbers use), and failures cost the full budget.
DEFAULT_HORIZON = 200
#: Default start perturbation (metres): 2 cm per axis, about a fifth of a typical object range.
DEFAULT_PERTURB = 0.02
#: Observation slice holding the two object poses (pos + quat each).
_OBJECT_OBS = slice(4, 18)


def task_names() -> list[str]:
    """All Meta-World v3 task names, e.g. ``pick-place-v3``."""
    from metaworld.env_dict import ALL_V3_ENVIRONMENTS

    return sorted(ALL_V3_ENVIRONMENTS)


def _make_raw(task: str, render_mode: str | None, camera: str, image_size: int) -> Any:
    """Build the bare Meta-World env with the goal observable (MT1 convention)."""
    os.environ.setdefault("MUJOCO_GL", "egl")
    from metaworld.env_dict import ALL_V3_ENVIRONMENTS

    env = ALL_V3_ENVIRONMENTS[task](render_mode=render_mode, camera_name=camera if render_mode else None,
                                    width=image_size, height=image_size)
    env._partially_observable = False
    # The observation bounds were cached for a hidden goal; step() clips to them, zeroing the goal.
    env.__dict__.pop("sawyer_observation_space", None)
    env._set_task_called = True  # we own start sampling, so Meta-World's task objects are not needed
    env._freeze_rand_vec = False
    env.seeded_rand_vec = True
    return env


class _Rejected(Exception):
    """Meta-World's reset asked for a second placement while probing a fixed one."""


@functools.lru_cache(maxsize=None)
def object_blocks(task: str) -> tuple[int, ...]:
    """Indices of the 3-D blocks of the start vector that place an observed object.

    Found by experiment rather than by a hand-kept table: nudge one block at a time and see whether
    the observed object poses move. Goal-only blocks (a target site) do not move them.
    """
    env = _make_raw(task, None, "corner", 64)
    space = env._random_reset_space
    rng = np.random.default_rng(0)

    def observe(vec: np.ndarray) -> np.ndarray:
        calls: list[int] = []

        def fixed(raw: Any) -> np.ndarray:
            # Each reset samples twice (reset_model runs in reset and in MujocoEnv.reset); more
            # calls mean Meta-World rejected this placement and would ask forever.
            if len(calls) >= 4:
                raise _Rejected
            calls.append(1)
            raw._last_rand_vec = vec
            return vec

        env._get_state_rand_vec = types.MethodType(fixed, env)
        obs, _ = env.reset()
        return obs[_OBJECT_OBS].copy()

    for _ in range(100):
        base = rng.uniform(space.low, space.high)
        try:
            reference = observe(base.copy())
            blocks = []
            for b in range(len(base) // 3):
                nudged = base.copy()
                nudged[3 * b] += 0.01
                if not np.allclose(observe(nudged), reference, atol=1e-6):
                    blocks.append(b)
            break
        except _Rejected:
            continue
    else:
        raise RuntimeError(f"metaworld/{task}: found no accepted start placement to probe")
    env.close()
    return tuple(blocks)


class MetaWorldEnv(AutomimicEnv):
    """One Meta-World v3 task; obs ``{"state": (39,)}``; action (4,) in ``[-1, 1]``; ``info["success"]``."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": 80}

    def __init__(self, task: str, perturb: float = 0.0, horizon: int = DEFAULT_HORIZON,
                 render_mode: str | None = None, camera: str = "corner", image_size: int = 128) -> None:
        self.env_id = f"metaworld/{task}"
        self.task = task
        self.perturb = float(perturb)
        self.horizon = min(int(horizon), 500)
        self.render_mode = render_mode
        self.camera = camera
        self._env = _make_raw(task, render_mode, camera, image_size)
        self._steps = 0
        self._fast_render = False
        self._blocks = object_blocks(task) if self.perturb > 0 else ()
        self._env._get_state_rand_vec = types.MethodType(_seeded_sampler, self._env)
        self.observation_space = gym.spaces.Dict(
            {"state": gym.spaces.Box(-np.inf, np.inf, shape=(39,), dtype=np.float32)}
        )
        self.action_space = gym.spaces.Box(-1.0, 1.0, shape=(4,), dtype=np.float32)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Obs, dict]:
        """Place objects from ``seed`` (plus the perturbation, if any) and return the first observation."""
        seed = self.require_seed(seed)
        super().reset(seed=seed)
        raw = self._env
        raw.seed(seed)
        raw._start_rng = np.random.default_rng(seed)
        raw._perturb_rng = np.random.default_rng([seed, 1])
        raw._perturb_sigma = self.perturb
        raw._perturb_blocks = self._blocks
        import mujoco  # here, not at the top: under MUJOCO_GL=osmesa without OSMesa the import fails

        raw.reset()
        self._steps = 0
        # Some tasks (drawer-open, window-open, window-close) move a body in the model after the
        # reset's last physics step, so Meta-World's first observation still shows the previous
        # placement. Forward kinematics once and observe again; both stacked frames are this one.
        mujoco.mj_forward(raw.model, raw.data)
        obs = raw._get_obs()
        obs[18:36] = obs[:18]
        offsets = raw._last_offsets
        start = StartRecord(seed, self.perturb, offsets, np.asarray(raw._last_rand_vec, dtype=np.float64))
        return {"state": obs.astype(np.float32)}, {"start": start.as_info(), "success": False}

    def step(self, action: np.ndarray) -> tuple[Obs, float, bool, bool, dict]:
        """One control step (5 MuJoCo steps); ``info["success"]`` is the task's success flag.

        ``truncated`` is true from the ``horizon``-th step since the reset on, as Gymnasium's
        ``TimeLimit`` would set it. ``terminated`` is always false: Meta-World tasks have no terminal
        state (success is a flag, not an end), so a cut episode is always bootstrapped by RL.
        """
        obs, reward, _terminated, inner_truncated, info = self._env.step(np.asarray(action, dtype=np.float64))
        self._steps += 1
        info = dict(info)
        info["success"] = bool(info.get("success", 0.0))
        # Meta-World's own limit (500) is a time limit too; the horizon is capped at it, so it never
        # fires first, but should it, it can only mean truncation.
        truncated = self._steps >= self.horizon or bool(inner_truncated)
        return {"state": obs.astype(np.float32)}, float(reward), False, truncated, info

    def proprioception(self, obs: Obs) -> np.ndarray:
        """Hand position and gripper opening (objects and goal are world state, seen only in images)."""
        return obs["state"][:4]

    def render(self) -> np.ndarray:
        """An RGB frame from the configured camera (corner cameras come out upside down: flipped).

        Shadows, reflections and the skybox are switched off: on CPU rendering they cost about
        three quarters of the frame time (measured 143 -> 38 ms at 84 px) and carry no task information.
        """
        if not self._fast_render:
            import mujoco

            viewer = self._env.mujoco_renderer._get_viewer("rgb_array")
            for flag in (mujoco.mjtRndFlag.mjRND_SHADOW, mujoco.mjtRndFlag.mjRND_REFLECTION,
                         mujoco.mjtRndFlag.mjRND_SKYBOX):
                viewer.scn.flags[flag] = 0
            self._fast_render = True
        frame = self._env.render()
        if self.camera.startswith("corner"):
            frame = frame[::-1]
        return np.ascontiguousarray(frame)

    def close(self) -> None:
        """Release the MuJoCo renderer, if one was opened."""
        self._env.close()


def _seeded_sampler(self: Any) -> np.ndarray:
    """Replacement for ``SawyerXYZEnv._get_state_rand_vec``: seeded draw plus object-only perturbation.

    Meta-World may call it several times in one reset (rejection sampling); each call draws afresh
    from the per-reset streams, so the final placement is still a function of the seed alone. The
    perturbation moves an object only along the axes the task itself randomises.
    """
    space = self._random_reset_space
    vec = self._start_rng.uniform(space.low, space.high, size=space.low.size)
    offsets = np.zeros((len(self._perturb_blocks), 2))
    if self._perturb_sigma > 0:
        offsets = self._perturb_rng.normal(0.0, self._perturb_sigma, size=offsets.shape)
        for row, block in enumerate(self._perturb_blocks):
            xy = slice(3 * block, 3 * block + 2)
            # An axis the task never varies (drawer-open's y, window-close's x) is left alone: a shift
            # there makes starts that evaluation never has, so practice there teaches nothing evaluated.
            offsets[row] *= space.high[xy] > space.low[xy]
            vec[xy] += offsets[row]
    self._last_rand_vec = vec
    self._last_offsets = offsets
    return vec


class MetaWorldExpert:
    """The task's scripted policy from ``metaworld.policies`` (deterministic; the seed is unused)."""

    def __init__(self, task: str) -> None:
        from metaworld.policies import ENV_POLICY_MAP

        self._policy = ENV_POLICY_MAP[task]()

    def reset(self, seed: int) -> None:
        """Nothing to prepare: Meta-World's scripted policies are stateless."""

    def __call__(self, obs: Obs) -> np.ndarray:
        """Action for one observation, as the scripted policy computes it from the 39-D state."""
        return np.clip(self._policy.get_action(obs["state"].astype(np.float64)), -1.0, 1.0).astype(np.float32)
