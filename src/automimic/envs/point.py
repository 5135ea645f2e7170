"""``point/reach``: a 2-D point mass driven by accelerations to a goal, in pure NumPy.

It is the fast built-in task of the steps-to-go paper's public code: state = (position, velocity,
goal), success within 0.15 of the goal. Its expert is deliberately sub-optimal — a PD controller
that detours through random waypoints before heading for the goal — so imitation leaves room for
self-improvement (the reference: ~0.9 BC success, ~69-step episodes, ~13 steps after practice).
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from automimic.envs.base import AutomimicEnv, Obs, StartRecord

GOAL_RADIUS = 0.15
ACCEL = 0.05  # velocity change per step at full action
DAMPING = 0.95  # velocity kept per step; bounds top speed at ACCEL / (1 - DAMPING) = 1.0 / step
ARENA = 1.0  # positions live in [-ARENA, ARENA]^2
MIN_START_GOAL = 0.5
#: Start perturbation SEIL's practice uses by default: 1% of the arena's width, the value practice
#: used here before each env chose its own (so earlier point/reach results stand).
DEFAULT_PERTURB = 0.02


class PointReachEnv(AutomimicEnv):
    """Point mass in ``[-1, 1]^2``; action = 2-D acceleration in ``[-1, 1]``; obs ``state`` = (pos, vel, goal)."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": 20}

    def __init__(self, perturb: float = 0.0, horizon: int = 200, render_mode: str | None = None,
                 image_size: int = 128, camera: str = "top") -> None:
        if camera != "top":
            raise ValueError(f"point/reach has one camera, 'top'; got {camera!r}")
        self.env_id = "point/reach"
        self.horizon = horizon
        self.perturb = float(perturb)
        self.render_mode = render_mode
        self.image_size = image_size
        self.observation_space = gym.spaces.Dict(
            {"state": gym.spaces.Box(-np.inf, np.inf, shape=(6,), dtype=np.float32)}
        )
        self.action_space = gym.spaces.Box(-1.0, 1.0, shape=(2,), dtype=np.float32)
        self._pos = np.zeros(2)
        self._vel = np.zeros(2)
        self._goal = np.zeros(2)
        self._steps = 0

    def _obs(self) -> Obs:
        return {"state": np.concatenate([self._pos, self._vel, self._goal]).astype(np.float32)}

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Obs, dict]:
        """Sample start position and goal from ``seed``; the perturbation shifts the start position."""
        seed = self.require_seed(seed)
        super().reset(seed=seed)
        rng = np.random.default_rng(seed)
        pos = rng.uniform(-0.8 * ARENA, 0.8 * ARENA, size=2)
        goal = rng.uniform(-0.8 * ARENA, 0.8 * ARENA, size=2)
        while np.linalg.norm(goal - pos) < MIN_START_GOAL:
            goal = rng.uniform(-0.8 * ARENA, 0.8 * ARENA, size=2)
        # The perturbation draws from its own stream so that sigma=0 and sigma>0 share the base start.
        offset = np.random.default_rng([seed, 1]).normal(0.0, self.perturb, size=2) if self.perturb else np.zeros(2)
        self._pos = np.clip(pos + offset, -ARENA, ARENA)
        self._vel = np.zeros(2)
        self._goal = goal
        self._steps = 0
        start = StartRecord(seed, self.perturb, offset[None, :], np.concatenate([self._pos, goal]))
        return self._obs(), {"start": start.as_info(), "success": self._success()}

    def _success(self) -> bool:
        return bool(np.linalg.norm(self._pos - self._goal) <= GOAL_RADIUS)

    def step(self, action: np.ndarray) -> tuple[Obs, float, bool, bool, dict]:
        """Integrate one step; reward is the negative distance to the goal (only for RL baselines).

        ``truncated`` is true from the ``horizon``-th step since the reset on (Gymnasium's
        ``TimeLimit`` convention). ``terminated`` is always false: reaching the goal is
        ``info["success"]``, not an end of the world; whoever runs the episode decides to stop there.
        """
        a = np.clip(np.asarray(action, dtype=np.float64).reshape(2), -1.0, 1.0)
        self._vel = DAMPING * self._vel + ACCEL * a
        new_pos = self._pos + self._vel
        hit_wall = np.abs(new_pos) > ARENA
        self._vel[hit_wall] = 0.0
        self._pos = np.clip(new_pos, -ARENA, ARENA)
        success = self._success()
        self._steps += 1
        truncated = self._steps >= self.horizon
        return self._obs(), -float(np.linalg.norm(self._pos - self._goal)), False, truncated, {"success": success}

    def proprioception(self, obs: Obs) -> np.ndarray:
        """The point's own position and velocity (the goal is world state, seen only in images)."""
        return obs["state"][:4]

    def render(self) -> np.ndarray:
        """Draw the arena as an RGB array: goal disc in green, point in blue."""
        n = self.image_size
        img = np.full((n, n, 3), 240, dtype=np.uint8)
        yy, xx = np.mgrid[0:n, 0:n]

        def to_px(p: np.ndarray) -> tuple[float, float]:
            return (p[0] + ARENA) / (2 * ARENA) * (n - 1), (ARENA - p[1]) / (2 * ARENA) * (n - 1)

        gx, gy = to_px(self._goal)
        img[(xx - gx) ** 2 + (yy - gy) ** 2 <= (GOAL_RADIUS / (2 * ARENA) * n) ** 2] = (120, 200, 120)
        px, py = to_px(self._pos)
        img[(xx - px) ** 2 + (yy - py) ** 2 <= 9] = (40, 60, 200)
        return img


class PointReachExpert:
    """PD controller that visits ``n_waypoints`` random waypoints before going to the goal.

    The waypoints are drawn from the seed passed to ``reset`` and are not visible in the
    observation, which is what makes the demonstrations sub-optimal and multi-modal.
    """

    def __init__(self, n_waypoints: int = 5, kp: float = 3.0, kd: float = 6.0,
                 waypoint_radius: float = 1.0, reach: float = 0.12) -> None:
        self.n_waypoints = n_waypoints
        self.kp, self.kd = kp, kd
        self.waypoint_radius = waypoint_radius
        self.reach = reach
        self._targets: list[np.ndarray] = []

    def reset(self, seed: int) -> None:
        """Draw this episode's waypoints (they are placed once the first observation shows the goal)."""
        self._rng = np.random.default_rng([seed, 2])
        self._targets = []
        self._started = False

    def __call__(self, obs: Obs) -> np.ndarray:
        """PD acceleration toward the current waypoint; switches waypoint once within ``reach``."""
        s = obs["state"]
        pos, vel, goal = s[0:2], s[2:4], s[4:6]
        if not self._started:
            # Waypoints scatter around the straight path, so the detour is real but bounded.
            fractions = np.sort(self._rng.uniform(0.1, 0.9, size=self.n_waypoints))
            jitter = self._rng.uniform(-self.waypoint_radius, self.waypoint_radius, size=(self.n_waypoints, 2))
            points = pos + fractions[:, None] * (goal - pos) + jitter
            self._targets = [np.clip(p, -0.9 * ARENA, 0.9 * ARENA) for p in points]
            self._started = True
        while self._targets and np.linalg.norm(self._targets[0] - pos) < self.reach:
            self._targets.pop(0)
        target = self._targets[0] if self._targets else goal
        return np.clip(self.kp * (target - pos) - self.kd * vel, -1.0, 1.0).astype(np.float32)
