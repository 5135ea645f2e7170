"""The on-policy RL stage shared by GAIL, AIRL, BC -> RL and residual RL: collect, reward, PPO, evaluate.

One loop, parameterised by where rewards come from (a :class:`RewardModel`: the env's own reward,
a GAIL or AIRL discriminator) and by an optional extra loss (BC -> RL's behaviour-cloning
regulariser). Every iteration gathers ``steps_per_iteration`` env steps of sampled episodes with
the current weights (through the same collectors as every other rollout: in-process, local
workers or Ray), lets the reward model learn from them (a discriminator's step), scores them,
and runs the PPO core (:mod:`automimic.algos.ppo`) with a learned value function as critic.

Episodes end at the horizon, when the env terminates, or (``stop_on_success``) when the task
succeeds. Only the env's own ``terminated`` is a true end; a success stop is treated like a cut
(bootstrapped with ``V``), so ending early never looks like losing the rest of the episode's
reward (with Meta-World's dense reward it otherwise would, and the policy would learn to avoid
succeeding).

Run folder (inside the algorithm's own)::

    out/rl.pt              policy, optimiser, value function, reward model, RNG and rows after the last iteration
    out/iterations.jsonl   one line per finished iteration (iteration 0 = the starting policy)
    out/metrics.jsonl, out/tb/   the same numbers for TensorBoard
"""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Protocol

import numpy as np
import torch
from tqdm import tqdm

from automimic.algos.bc import checked_demos, fit_policy
from automimic.algos.ppo import PPOConfig, gae, ppo_update
from automimic.algos.value_baseline import ValueBaseline
from automimic.data.episode import Episode
from automimic.data.transitions import Transitions, flatten_obs
from automimic.envs import make_env
from automimic.evaluation.evaluate import evaluate
from automimic.policies import Policy, build_policy, has_action_distribution, policy_from_payload, policy_payload
from automimic.rollout.actors import ActorSpec
from automimic.rollout.chunking import history_windows
from automimic.rollout.collector import Collector, make_collector
from automimic.rollout.workers import RolloutJob
from automimic.seeding import BLOCK, episode_seeds, seed_everything
from automimic.training.loop import TrainConfig
from automimic.training.run_dir import RunDir, append_row


@dataclass
class OnPolicyConfig:
    """Settings of the on-policy RL stage (defaults: common PPO settings for continuous control).

    Args:
        iterations: PPO iterations.
        steps_per_iteration: env steps gathered per update.
        gamma: discount.
        lr: Adam learning rate of the policy (ours: 3e-5; from a BC start with its std near the
            floor, 3e-4 moved the policy by an approximate KL of 4-10 in one epoch on point/reach).
        ppo: the PPO update's settings (clip, epochs, minibatch, GAE lambda, entropy, KL stop).
        min_std: floor on the policy's action std while sampling and scoring, in normalised action
            units (a BC policy's std is often ~0.01, too little to explore).
        learn_std: let PPO change the action std.
        reward_scale: factor on every reward before the value fit and GAE (keeps value targets
            near unit size; Meta-World's dense reward reaches 10 per step).
        stop_on_success: end an episode when the task succeeds (bootstrapped, see the module docstring).
        perturb: start-position perturbation of the sampled episodes.
        horizon: step budget per episode (0: the env's default).
        robots: envs each worker steps together, one batched policy query per step; results
            depend on it (it fixes the query's batch size), not on ``workers`` or the backend.
        eval_every: evaluate on the eval seeds every this many iterations (and after the last).
        eval_episodes: evaluation episodes.
        workers: rollout workers (processes, or Ray actors with ``--backend ray``).
    """

    iterations: int = 20
    steps_per_iteration: int = 2048
    gamma: float = 0.99
    lr: float = 3e-5
    ppo: PPOConfig = field(default_factory=PPOConfig)
    min_std: float = 0.1
    learn_std: bool = True
    reward_scale: float = 1.0
    stop_on_success: bool = True
    perturb: float = 0.0
    horizon: int = 0
    robots: int = 8
    eval_every: int = 5
    eval_episodes: int = 50
    workers: int = 2

    def __post_init__(self) -> None:
        for name in ("steps_per_iteration", "robots", "eval_every", "eval_episodes", "workers"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.iterations < 0 or self.horizon < 0:
            raise ValueError("iterations and horizon must be >= 0")
        if not 0.0 <= self.gamma <= 1.0:
            raise ValueError(f"gamma must be in [0, 1], got {self.gamma}")
        if self.reward_scale <= 0:
            raise ValueError(f"reward_scale must be > 0, got {self.reward_scale}")


@dataclass(frozen=True)
class RLIteration:
    """One line of ``iterations.jsonl``; evaluation fields are ``None`` on iterations without one."""

    iteration: int
    env_steps: int
    episodes: int
    mean_length: float
    mean_return: float
    env_return: float
    practice_success: float
    success: float | None
    ci_low: float | None
    ci_high: float | None
    eval_length: float | None
    approx_kl: float
    clip_fraction: float
    seconds: float
    dropped: int = 0
    reward_info: dict[str, float] = field(default_factory=dict)

    def line(self) -> str:
        """The per-iteration progress line."""
        text = (f"iter {self.iteration}: env steps {self.env_steps}, episodes {self.episodes}, "
                f"length {self.mean_length:.1f}, return {self.mean_return:.2f}, env return {self.env_return:.1f}, "
                f"practice success {self.practice_success:.2f}, kl {self.approx_kl:.3f}")
        text += "".join(f", {k} {v:.2f}" for k, v in self.reward_info.items())
        if self.success is not None:
            text += f" | eval {self.success:.2f} [{self.ci_low:.2f}, {self.ci_high:.2f}], length {self.eval_length:.1f}"
        return text + f", {self.seconds:.0f}s"


class RewardModel(Protocol):
    """Where the RL stage's rewards come from."""

    name: str

    def update(self, episodes: list[Episode], policy: Policy, generator: torch.Generator) -> dict[str, float]:
        """Learn from this iteration's episodes before they are scored (a discriminator's steps); returns stats."""

    def rewards(self, episodes: list[Episode], policy: Policy) -> list[np.ndarray]:
        """The reward ``(T,)`` of every step of every episode."""

    def state(self) -> dict[str, Any]:
        """Everything needed to resume (weights, optimiser)."""

    def load(self, state: dict[str, Any]) -> None:
        """Inverse of :meth:`state`."""


class EnvReward:
    """The env's own reward (BC -> RL and residual RL)."""

    name = "env"

    def update(self, episodes: list[Episode], policy: Policy, generator: torch.Generator) -> dict[str, float]:
        """Nothing to learn."""
        return {}

    def rewards(self, episodes: list[Episode], policy: Policy) -> list[np.ndarray]:
        """The rewards the env returned."""
        return [np.asarray(e.rewards, dtype=np.float32) for e in episodes]

    def state(self) -> dict[str, Any]:
        """No state."""
        return {}

    def load(self, state: dict[str, Any]) -> None:
        """No state."""


def episode_states(episode: Episode, keys: tuple[str, ...]) -> np.ndarray:
    """The flattened observations ``(T + 1, D)`` of an episode: the ``T`` acted on, then the final one."""
    final = flatten_obs({k: v[None] for k, v in episode.final_obs.items()}, keys)
    return np.concatenate([flatten_obs(episode.obs, keys), final])


def gae_batch(states: list[np.ndarray], rewards: list[np.ndarray], terminals: list[bool], kept: list[np.ndarray],
              value: ValueBaseline, gamma: float, lam: float,
              history: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(obs, kept actions, GAE advantages, value targets) of a batch of episodes for PPO.

    Per episode: ``states`` ``(T + 1, D)`` (the last is the state after the last step),
    ``rewards`` ``(T,)``, whether it ended for good (else the last state is bootstrapped with
    ``V``), and what the sampling actor kept per step. With ``history > 0`` the observations are
    each step's history window ``(N, history, D)``, as a chunked policy read them.
    """
    obs, advs, rets = [], [], []
    for s, r, terminal in zip(states, rewards, terminals):
        v = value(torch.as_tensor(s)).numpy()
        adv, ret = gae(r, v[:-1], float(v[-1]), gamma, lam, terminal=terminal)
        obs.append(history_windows(s[:-1], history) if history > 0 else s[:-1])
        advs.append(adv)
        rets.append(ret)
    return (torch.as_tensor(np.concatenate(obs)), torch.as_tensor(np.concatenate(kept)),
            torch.as_tensor(np.concatenate(advs)), torch.as_tensor(np.concatenate(rets)))


def practice_rollouts(collector: Collector, job: RolloutJob, seed: int, start: int, min_steps: int,
                      max_episodes: int | None, expected_length: float, robots: int) -> tuple[list[Episode], int]:
    """The sampled episodes of one iteration and how many more were run and dropped.

    The iteration takes practice seeds from index ``start`` in order until their episodes hold
    ``min_steps`` env steps (or ``max_episodes`` are taken): a rule on seeds alone, so every backend
    and worker count takes the same episodes. Seeds are requested in batches sized from
    ``expected_length`` (rounded up to whole multiples of ``robots``); episodes beyond the rule
    come from the current weights but would be stale after the update, so they are dropped and
    their seeds run again with the next weights.
    """
    taken: list[Episode] = []
    steps = dropped = 0
    index = start
    while steps < min_steps and (max_episodes is None or len(taken) < max_episodes):
        n = int(np.ceil((min_steps - steps) / max(expected_length, 1.0)))
        n = int(np.ceil(n / robots)) * robots
        if max_episodes is not None:
            n = min(n, max_episodes - len(taken))
        if index + n > BLOCK:
            raise ValueError(f"practice would use more than the {BLOCK} practice seeds of run seed {seed}")
        for ep in collector.episodes(job, episode_seeds("practice", seed, n, start=index)):
            if steps >= min_steps or (max_episodes is not None and len(taken) >= max_episodes):
                dropped += 1
                continue
            taken.append(ep)
            steps += ep.length
            index += 1
    return taken, dropped


def rl_setup(data: str, env_id: str, demos: int, out: Path, config: dict[str, Any],
             growable: tuple[str, ...] = ()) -> tuple[str, list[Episode]]:
    """The env id and the demos (``demos`` successful ones spread over the store; 0: all) of an RL run,
    whose ``config`` (plus the resolved env id) is written to ``out/config.yaml`` (``growable``: see
    :meth:`RunDir.write_config`)."""
    episodes, env_id = checked_demos(data, env_id, demos, policy=config.get("policy"),
                                     policy_config=config.get("policy_config"))
    if not env_id:
        raise ValueError(f"{data}: the store names no env; pass env_id")
    RunDir(out).write_config({**config, "env_id": env_id}, growable)
    return env_id, episodes


def check_rl_policy(policy: str, policy_config: dict[str, Any]) -> None:
    """Refuse a policy class PPO cannot train (it needs the policy's action log-probabilities)."""
    if not has_action_distribution(policy):
        raise ValueError(f"policy {policy!r} has no action distribution, which on-policy RL needs "
                         "(use mlp with head=gaussian, act or diffusion)")
    if policy == "mlp" and policy_config.get("head", "deterministic") != "gaussian":
        raise ValueError("policy_config.head must be 'gaussian': on-policy RL needs the policy's action log-probabilities")


def action_bounds(env_id: str, cfg: OnPolicyConfig) -> tuple[np.ndarray, np.ndarray]:
    """The env's action low and high (env units)."""
    env = make_env(env_id, **({"horizon": cfg.horizon} if cfg.horizon else {}))
    try:
        return (np.asarray(env.action_space.low, dtype=np.float32), np.asarray(env.action_space.high, dtype=np.float32))
    finally:
        env.close()


def initial_policy(demos: list[Episode], env_id: str, out: Path, *, policy: str, policy_config: dict[str, Any],
                   train: TrainConfig, seed: int, warm_start: bool = True, progress: bool = True) -> Policy:
    """The policy RL starts from: behaviour-cloned on ``demos`` into ``out`` (resumable), or, without
    ``warm_start``, freshly initialised with normalisers fitted on the demos."""
    if warm_start:
        RunDir(out).write_config({"algo": "bc-warm-start", "env_id": env_id, "train_episodes": len(demos)})
        return fit_policy(demos, env_id, out, policy=policy, policy_config=policy_config, train=train, seed=seed,
                          progress=progress)
    seed_everything(seed)
    data = Transitions.from_episodes(demos, policy_config.get("obs_keys"))
    model = build_policy(policy, {**policy_config, "obs_keys": data.obs_keys}, data.obs.shape[1],
                         data.actions.shape[1])
    model.fit_normalizers(data)
    return model.eval()


def bc_regulariser(policy: Policy, demos: list[Episode], weight: float,
                   minibatch: int = 256) -> Callable[[torch.Generator], torch.Tensor]:
    """``weight`` times ``policy``'s own imitation loss on a random demo minibatch, for :func:`ppo_update`.

    The loss is taken on whatever module is passed to the closure's owner at call time, i.e. the
    policy being trained, so it keeps pulling PPO back towards the demos (BC -> RL without forgetting).
    """
    data = Transitions.from_episodes(demos, policy.obs_keys)

    def loss(generator: torch.Generator) -> torch.Tensor:
        idx = torch.randint(len(data), (min(minibatch, len(data)),), generator=generator)
        return weight * policy.loss(data.batch(idx, policy.history, policy.chunk))["loss"]

    return loss


def _eval(policy: Policy, env_id: str, cfg: OnPolicyConfig, seed: int, collector: Collector) -> dict[str, float]:
    result = evaluate(policy, env_id, cfg.eval_episodes, seed=seed, workers=collector, horizon=cfg.horizon or None,
                      progress=False)
    return {"success": result.success_rate, "ci_low": result.ci_low, "ci_high": result.ci_high,
            "eval_length": result.mean_length}


def run_on_policy(policy: Policy, reward: RewardModel, cfg: OnPolicyConfig, out: str | Path, env_id: str, seed: int,
                  *, extra_loss: Callable[[Policy], Callable[[torch.Generator], torch.Tensor]] | None = None,
                  progress: bool = True, on_iteration: Callable[[RLIteration], None] | None = None) -> list[RLIteration]:
    """Run (or resume from ``out/rl.pt``) PPO on ``reward`` starting from ``policy``; one row per iteration.

    ``extra_loss(policy)`` builds the per-minibatch extra loss for the policy being trained
    (rebuilt after a resume, since the policy object is then a new one).
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    run = RunDir(out)
    policy.practice_execution()
    policy.eval()
    gen = torch.Generator().manual_seed(seed)
    value = ValueBaseline(policy.obs_dim)
    state_path = out / "rl.pt"
    rows: list[RLIteration] = []
    next_episode = 0
    opt = torch.optim.Adam([p for p in policy.parameters() if p.requires_grad], lr=cfg.lr)
    if state_path.exists():
        state = torch.load(state_path, map_location="cpu", weights_only=False)
        policy = policy_from_payload(state["policy"])
        policy.practice_execution()
        policy.eval()
        opt = torch.optim.Adam([p for p in policy.parameters() if p.requires_grad], lr=cfg.lr)
        opt.load_state_dict(state["optimizer"])
        gen.set_state(state["generator"])
        value.load(state["value"])
        reward.load(state["reward"])
        next_episode = state["next_episode"]
        rows = [RLIteration(**row) for row in state["rows"]]
        run.drop_metrics_after(rows[-1].iteration)
    # Rewritten from the checkpoint, so a kill between the two writes leaves no stray line.
    (out / "iterations.jsonl").write_text("".join(json.dumps(dataclasses.asdict(r)) + "\n" for r in rows))
    extra = extra_loss(policy) if extra_loss is not None else None

    def save(row: RLIteration) -> None:
        rows.append(row)
        payload = {"policy": policy_payload(policy), "optimizer": opt.state_dict(), "generator": gen.get_state(),
                   "value": value.state(), "reward": reward.state(), "next_episode": next_episode,
                   "rows": [dataclasses.asdict(r) for r in rows]}
        tmp = state_path.with_suffix(".tmp")
        torch.save(payload, tmp)
        tmp.replace(state_path)
        append_row(out / "iterations.jsonl", row)
        numbers = {k: v for k, v in dataclasses.asdict(row).items()
                   if isinstance(v, (int, float)) and not isinstance(v, bool) and k != "iteration"}
        run.log(row.iteration, {**numbers, **{f"reward/{k}": v for k, v in row.reward_info.items()}})
        if on_iteration is not None:
            on_iteration(row)

    env_kwargs = {"perturb": cfg.perturb, **({"horizon": cfg.horizon} if cfg.horizon else {})}
    bar = tqdm(total=cfg.iterations, initial=max(len(rows) - 1, 0), desc=f"rl ({reward.name} reward)", unit="iter",
               disable=not progress)
    # One set of workers for sampling and evaluation, kept between iterations.
    with make_collector(cfg.workers, envs_per_worker=cfg.robots) as collector:
        try:
            if not rows:
                t0 = time.time()
                save(RLIteration(0, 0, 0, 0.0, 0.0, 0.0, 0.0, **_eval(policy, env_id, cfg, seed, collector),
                                 approx_kl=0.0, clip_fraction=0.0, seconds=time.time() - t0))
            for it in range(len(rows), cfg.iterations + 1):
                t0 = time.time()
                job = RolloutJob(env_id, ActorSpec.sample(policy, cfg.min_std), env_kwargs, source="self",
                                 stop_on_success=cfg.stop_on_success)
                expected = rows[-1].mean_length or rows[-1].eval_length or 100.0
                episodes, dropped = practice_rollouts(collector, job, seed, next_episode, cfg.steps_per_iteration,
                                                      None, expected, cfg.workers * cfg.robots)
                next_episode += len(episodes)
                info = reward.update(episodes, policy, gen)
                rewards = [r * cfg.reward_scale for r in reward.rewards(episodes, policy)]
                obs, acts, advantages, targets = gae_batch(
                    [episode_states(e, policy.obs_keys) for e in episodes], rewards,
                    [bool(e.attrs["terminated"]) for e in episodes], [e.attrs["kept"] for e in episodes],
                    value, cfg.gamma, cfg.ppo.gae_lambda, policy.history)
                stats = ppo_update(policy, opt, obs, acts, advantages, cfg.ppo, gen, cfg.min_std, cfg.learn_std,
                                   extra_loss=extra)
                value.fit(obs if obs.dim() == 2 else obs[:, -1], targets, gen)
                evaluation: dict[str, float | None] = dict.fromkeys(("success", "ci_low", "ci_high", "eval_length"))
                if it % cfg.eval_every == 0 or it == cfg.iterations:
                    evaluation = _eval(policy, env_id, cfg, seed, collector)
                save(RLIteration(
                    it, rows[-1].env_steps + len(obs), len(episodes), float(np.mean([e.length for e in episodes])),
                    float(np.mean([r.sum() for r in rewards])), float(np.mean([e.rewards.sum() for e in episodes])),
                    float(np.mean([e.success for e in episodes])), **evaluation, approx_kl=stats.approx_kl,
                    clip_fraction=stats.clip_fraction, seconds=time.time() - t0, dropped=dropped, reward_info=info))
                bar.update(1)
        finally:
            bar.close()
            run.close()
    return rows


def load_rl_policy(out: str | Path) -> Policy:
    """The policy after the last finished RL iteration of a run folder (``out/rl.pt``)."""
    path = Path(out) / "rl.pt"
    if not path.exists():
        raise FileNotFoundError(f"{out}: no RL checkpoint ({path}); has the RL stage run?")
    return policy_from_payload(torch.load(path, map_location="cpu", weights_only=False)["policy"])
