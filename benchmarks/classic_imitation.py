"""The `imitation` library's BC, DAgger and GAIL on automimic's demos, seeds and evaluation protocol.

Runs inside benchmarks/.venv-imitation (made by benchmarks/imitation_venv.sh), where imitation 1.0.1
sits on gymnasium 1.4 + stable-baselines3 2.9.2 next to automimic itself:

    bash benchmarks/imitation_venv.sh
    V=benchmarks/.venv-imitation/bin/python
    $V benchmarks/classic_imitation.py --algo bc --data demos.h5 --env metaworld/push-v3 --out bc.json
    $V benchmarks/classic_imitation.py --algo dagger --data demos.h5 --dagger-rounds 4 --out dagger.json
    $V benchmarks/classic_imitation.py --algo gail --data demos.h5 --gail-steps 200000 --out gail.json

What is shared with automimic, so the numbers compare: the demos (``EpisodeStore``, successful
episodes only, ``select_episodes`` picks k of them), the env (``make_env``; training resets take
automimic's ``practice`` seeds in order, never a demo's or an evaluation start state), the
scripted expert that labels DAgger's states, and the evaluation: one deterministic episode per
``eval`` seed through ``run_episode`` (ends at success or the horizon), summarised with the same
Wilson interval. What is imitation's: the learners, their networks (library defaults unless
``--net-arch``) and their training loops.
"""

from __future__ import annotations

import time

_T0 = time.time()  # wall_seconds counts the heavy imports too: they are part of what a user waits for

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import tempfile  # noqa: E402
import warnings  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any, Sequence  # noqa: E402

# One thread: the benchmark machine has 2 cores shared with other work, and tiny MLPs gain nothing.
os.environ.setdefault("OMP_NUM_THREADS", "1")
# imitation's GAIL loop and SB3 draw tqdm bars that cannot be switched off by argument.
os.environ.setdefault("TQDM_DISABLE", "1")

# imitation 1.0.1's BC logs its loss terms with float(tensor), which torch 2.13 warns about every batch.
warnings.filterwarnings("ignore", message="Converting a tensor with requires_grad=True to a scalar")

import gymnasium as gym  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

ALGOS = ("bc", "dagger", "gail")


class SeedStream:
    """Hands out automimic's ``practice`` seeds in order, one per training episode.

    Shared by all envs of a vector env: DummyVecEnv resets its envs one after another, so the
    order, and with it every start state, repeats from run to run.
    """

    def __init__(self, run_seed: int) -> None:
        self.run_seed = run_seed
        self.used = 0

    def next(self) -> int:
        """The next unused practice seed."""
        from automimic.seeding import episode_seeds

        (seed,) = episode_seeds("practice", self.run_seed, 1, start=self.used)
        self.used += 1
        return seed


class StepCounter:
    """Counts every training env step, whichever library loop took it (the ``env_steps`` budget)."""

    def __init__(self) -> None:
        self.steps = 0


class FlatStateEnv(gym.Env):
    """An automimic env seen as imitation/SB3 expect it: ``Box`` observations (``obs["state"]``).

    automimic envs refuse unseeded resets, and SB3 either passes no seed or ``seed + env index``
    (small integers: automimic's *collect* range, i.e. the demos' own start states). Every reset
    therefore ignores the seed it is given and takes the next practice seed, so training never
    starts where a demo or an evaluation episode starts.

    Args:
        env_id: automimic env id.
        seeds: the shared practice-seed stream.
        counter: the shared step counter.
        end_on_success: end the episode when the task succeeds (``terminated``), as automimic's
            rollouts do; off for GAIL, whose trainer wants fixed-length episodes.
        horizon: step budget (the env's default when ``None``).
    """

    metadata = {"render_modes": []}

    def __init__(self, env_id: str, seeds: SeedStream, counter: StepCounter, end_on_success: bool,
                 horizon: int | None = None) -> None:
        from automimic.envs import make_env

        self.env = make_env(env_id, **({"horizon": horizon} if horizon else {}))
        self.observation_space = self.env.observation_space["state"]
        self.action_space = self.env.action_space
        self.horizon = self.env.horizon
        self.seeds, self.counter, self.end_on_success = seeds, counter, end_on_success

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict]:
        """Start the episode of the next practice seed (``seed`` is ignored, see the class doc)."""
        episode_seed = self.seeds.next()
        obs, _ = self.env.reset(seed=episode_seed)
        # Only plain values in info: imitation stores infos with DAgger's saved trajectories.
        return obs["state"], {"episode_seed": episode_seed}

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict]:
        """One env step; success ends the episode when ``end_on_success``."""
        obs, reward, terminated, truncated, info = self.env.step(action)
        self.counter.steps += 1
        success = bool(info["success"])
        terminated = terminated or (self.end_on_success and success)
        return obs["state"], reward, terminated, truncated, {"success": success}

    def close(self) -> None:
        """Close the simulator."""
        self.env.close()


def make_venv(env_id: str, n_envs: int, seeds: SeedStream, counter: StepCounter, end_on_success: bool,
              horizon: int | None) -> Any:
    """``n_envs`` flat envs, each cut at the automimic horizon, in one DummyVecEnv.

    DummyVecEnv rather than subprocesses: the machine has 2 cores and the seed order must repeat.
    """
    from gymnasium.wrappers import TimeLimit
    from stable_baselines3.common.vec_env import DummyVecEnv

    def one() -> gym.Env:
        env = FlatStateEnv(env_id, seeds, counter, end_on_success, horizon)
        return TimeLimit(env, max_episode_steps=env.horizon)

    return DummyVecEnv([one for _ in range(n_envs)])


def load_trajectories(path: str, k: int) -> list[Any]:
    """The first-class demos as imitation ``Trajectory`` s: successful episodes, ``k`` spread evenly.

    ``obs`` holds T + 1 rows (the observation after the last action closes the trajectory);
    ``terminal=True`` because every demo ended at the task's success.
    """
    from imitation.data.types import Trajectory

    from automimic.algos.bc import select_episodes
    from automimic.data.store import EpisodeStore

    episodes = select_episodes([e for e in EpisodeStore(path).episodes() if e.success], k)
    if not episodes:
        raise SystemExit(f"{path}: no successful episodes")
    trajs = []
    for e in episodes:
        if e.final_obs is None:
            raise SystemExit(f"{path}: an episode has no final observation; imitation needs T + 1 observations")
        obs = np.concatenate([e.obs["state"], e.final_obs["state"][None]]).astype(np.float32)
        trajs.append(Trajectory(obs=obs, acts=e.actions.astype(np.float32), infos=None, terminal=True))
    return trajs


def make_expert_policy(env_id: str, observation_space: gym.Space, action_space: gym.Space) -> Any:
    """automimic's scripted expert as an SB3 policy on flat observations (DAgger's labeller).

    Meta-World's scripted policies are stateless and ignore the seed, so one reset with any
    fixed seed serves every episode.
    """
    from imitation.policies.base import NonTrainablePolicy

    from automimic.envs import expert_for

    class ScriptedExpert(NonTrainablePolicy):
        """Maps one flat state to the expert's action."""

        def __init__(self) -> None:
            super().__init__(observation_space, action_space)
            self.expert = expert_for(env_id)
            self.expert.reset(0)

        def _choose_action(self, obs: np.ndarray) -> np.ndarray:
            return self.expert({"state": np.asarray(obs, dtype=np.float32)})

    return ScriptedExpert()


def make_bc_policy(observation_space: gym.Space, action_space: gym.Space, net_arch: list[int] | None) -> Any:
    """The BC/DAgger learner: imitation's default (``None``) or an SB3 actor-critic MLP of ``net_arch``."""
    if not net_arch:
        return None
    from stable_baselines3.common.policies import ActorCriticPolicy

    # BC trains with its own optimiser; the huge lr makes any accidental use of the policy's fail loudly
    # (imitation's own default policy does the same).
    return ActorCriticPolicy(observation_space, action_space, lr_schedule=lambda _: torch.finfo(torch.float32).max,
                             net_arch=net_arch)


class SB3Actor:
    """A trained SB3 policy as an automimic :class:`~automimic.rollout.actors.Actor` (mean action)."""

    def __init__(self, policy: Any, name: str) -> None:
        self.policy = policy
        self.name = name

    def reset(self, seed: int, slot: int = 0) -> None:
        """Nothing per episode: the policy is deterministic and memoryless."""

    def act(self, obs: Sequence[dict[str, np.ndarray]], slots: Sequence[int]) -> np.ndarray:
        """Deterministic actions ``(B, A)`` for the flat states, clipped to the action space by SB3."""
        x = np.stack([np.asarray(o["state"], dtype=np.float32) for o in obs])
        actions, _ = self.policy.predict(x, deterministic=True)
        return np.asarray(actions, dtype=np.float32).reshape(len(obs), -1)


def evaluate_policy(policy: Any, env_id: str, episodes: int, seed: int, horizon: int | None, name: str) -> Any:
    """automimic's evaluation protocol: one episode per ``eval`` seed, summarised with the Wilson interval."""
    from automimic.envs import make_env
    from automimic.evaluation.evaluate import summarize
    from automimic.rollout.episode_runner import run_episode
    from automimic.seeding import episode_seeds

    seeds = episode_seeds("eval", seed, episodes)
    env = make_env(env_id, **({"horizon": horizon} if horizon else {}))
    actor = SB3Actor(policy, name)
    successes, lengths = [], []
    try:
        for s in seeds:
            ep = run_episode(env, actor, s, source="self")
            successes.append(ep.success)
            lengths.append(ep.length)
    finally:
        env.close()
    return summarize(env_id, seeds, successes, lengths)


def policy_digest(policy: Any) -> str:
    """SHA-256 of the trained weights: equal digests show a rerun repeated training exactly."""
    import hashlib

    h = hashlib.sha256()
    for name, tensor in sorted(policy.state_dict().items()):
        h.update(name.encode())
        h.update(tensor.detach().cpu().numpy().tobytes())
    return h.hexdigest()[:16]


def bc_train_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    """``BC.train`` arguments: the budget, no progress bar, no extra evaluation rollouts."""
    budget = {"n_epochs": args.bc_epochs} if args.bc_epochs else {"n_batches": args.bc_batches}
    # log_rollouts_venv=None: otherwise DAgger rolls the policy out after training for its logs,
    # spending env steps (and practice seeds) that no algorithm needs.
    return {**budget, "progress_bar": False, "log_rollouts_venv": None}


def train_bc(args: argparse.Namespace, demos: list[Any], spaces: tuple[gym.Space, gym.Space], rng: np.random.Generator,
             logger: Any) -> Any:
    """Behaviour cloning on the demos; returns the trained policy."""
    from imitation.algorithms import bc

    trainer = bc.BC(observation_space=spaces[0], action_space=spaces[1], rng=rng, demonstrations=demos,
                    policy=make_bc_policy(*spaces, args.net_arch), batch_size=args.bc_batch_size, device="cpu",
                    custom_logger=logger)
    trainer.train(**bc_train_kwargs(args))
    return trainer.policy


def train_dagger(args: argparse.Namespace, demos: list[Any], venv: Any, rng: np.random.Generator, logger: Any,
                 scratch: Path) -> Any:
    """DAgger as automimic runs it: round 0 is BC on the demos, then ``--dagger-rounds`` rounds.

    Each round rolls out imitation's mixture (the expert's action with probability ``beta_r``,
    else the learner's, per step) for at least ``--dagger-episodes-per-round`` episodes, labels
    every visited state with the expert, and trains BC further on demos + everything labelled.
    ``beta_r`` follows automimic's schedule (:func:`automimic.algos.dagger.beta_for_round`).
    """
    from imitation.algorithms import bc
    from imitation.algorithms.dagger import SimpleDAggerTrainer
    from imitation.data import rollout

    from automimic.algos.dagger import beta_for_round

    spaces = (venv.observation_space, venv.action_space)
    learner = bc.BC(observation_space=spaces[0], action_space=spaces[1], rng=rng, demonstrations=demos,
                    policy=make_bc_policy(*spaces, args.net_arch), batch_size=args.bc_batch_size, device="cpu",
                    custom_logger=logger)
    learner.train(**bc_train_kwargs(args))  # round 0
    # imitation counts rounds from 0; its round i is automimic's round i + 1.
    schedule = lambda i: beta_for_round(args.dagger_beta_schedule, i + 1, args.dagger_rounds,  # noqa: E731
                                        args.dagger_beta, args.dagger_beta_decay)
    trainer = SimpleDAggerTrainer(venv=venv, scratch_dir=scratch, expert_policy=make_expert_policy(args.env, *spaces),
                                  rng=rng, expert_trajs=demos, bc_trainer=learner, beta_schedule=schedule,
                                  custom_logger=logger)
    for _ in range(args.dagger_rounds):
        collector = trainer.create_trajectory_collector()
        # Episodes ending in the other envs when the quota is met are labelled too (imitation's way).
        rollout.generate_trajectories(policy=trainer.expert_policy, venv=collector,
                                      sample_until=rollout.make_sample_until(min_episodes=args.dagger_episodes_per_round),
                                      deterministic_policy=True, rng=collector.rng)
        trainer.extend_and_update(bc_train_kwargs(args))
    return learner.policy


def train_gail(args: argparse.Namespace, demos: list[Any], venv: Any, logger: Any, scratch: Path) -> Any:
    """GAIL: a ``BasicRewardNet`` discriminator and an SB3 PPO generator (``MlpPolicy``)."""
    from imitation.algorithms.adversarial.gail import GAIL
    from imitation.rewards.reward_nets import BasicRewardNet
    from imitation.util.networks import RunningNorm
    from stable_baselines3 import PPO

    n_transitions = sum(len(t) for t in demos)
    policy_kwargs = {"net_arch": list(args.net_arch)} if args.net_arch else None
    gen = PPO("MlpPolicy", venv, n_steps=args.ppo_n_steps, batch_size=args.ppo_batch_size, n_epochs=args.ppo_epochs,
              learning_rate=args.ppo_lr, gamma=args.ppo_gamma, ent_coef=args.ppo_ent_coef, seed=args.seed,
              device="cpu", policy_kwargs=policy_kwargs, verbose=0)
    reward_net = BasicRewardNet(venv.observation_space, venv.action_space, normalize_input_layer=RunningNorm)
    round_steps = args.ppo_n_steps * venv.num_envs
    trainer = GAIL(demonstrations=demos,
                   # A demo batch cannot exceed the demos: 5 push demos hold only ~320 transitions.
                   demo_batch_size=min(args.gail_demo_batch_size, n_transitions),
                   gen_replay_buffer_capacity=round_steps, n_disc_updates_per_round=args.gail_disc_updates,
                   venv=venv, gen_algo=gen, reward_net=reward_net, log_dir=scratch, custom_logger=logger,
                   # The demos end at success (variable length); the generator's episodes all run
                   # to the horizon, so no termination signal leaks into the reward.
                   allow_variable_horizon=True)
    trainer.train(args.gail_steps)
    return gen.policy


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The command line."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--algo", choices=ALGOS, required=True)
    p.add_argument("--data", required=True, help="automimic HDF5 demo store")
    p.add_argument("--env", default="metaworld/push-v3", help="automimic env id")
    p.add_argument("--demos", type=int, default=5, help="successful demos to use, spread evenly (0: all)")
    p.add_argument("--eval-episodes", type=int, default=50)
    p.add_argument("--seed", type=int, default=0, help="run seed: weights, batches, practice and eval seeds")
    p.add_argument("--out", required=True, help="result JSON")
    p.add_argument("--horizon", type=int, default=None, help="step budget per episode (env default: 200)")
    p.add_argument("--n-envs", type=int, default=4, help="envs in the training DummyVecEnv (DAgger, GAIL)")
    p.add_argument("--net-arch", type=lambda s: [int(x) for x in s.split(",") if x], default=None,
                   help="hidden widths, e.g. 256,256,256 (automimic's MLP); default: the library's "
                        "(BC/DAgger 32,32; PPO 64,64)")
    g = p.add_argument_group("BC (also every DAgger round's update)")
    g.add_argument("--bc-batches", type=int, default=5000, help="gradient steps")
    g.add_argument("--bc-epochs", type=int, default=None, help="passes over the data instead of --bc-batches")
    g.add_argument("--bc-batch-size", type=int, default=32, help="imitation's default")
    g = p.add_argument_group("DAgger (defaults: automimic's DAggerConfig)")
    g.add_argument("--dagger-rounds", type=int, default=4)
    g.add_argument("--dagger-episodes-per-round", type=int, default=20)
    g.add_argument("--dagger-beta", type=float, default=0.5, help="expert's share in round 1")
    g.add_argument("--dagger-beta-schedule", choices=("constant", "linear", "exponential"), default="linear")
    g.add_argument("--dagger-beta-decay", type=float, default=0.5)
    g = p.add_argument_group("GAIL")
    g.add_argument("--gail-steps", type=int, default=200_000, help="total PPO env steps")
    g.add_argument("--gail-demo-batch-size", type=int, default=256)
    g.add_argument("--gail-disc-updates", type=int, default=4, help="discriminator updates per PPO round")
    g.add_argument("--ppo-n-steps", type=int, default=512, help="steps per env per PPO round")
    g.add_argument("--ppo-batch-size", type=int, default=64)
    g.add_argument("--ppo-epochs", type=int, default=5)
    g.add_argument("--ppo-lr", type=float, default=3e-4)
    g.add_argument("--ppo-gamma", type=float, default=0.99)
    g.add_argument("--ppo-ent-coef", type=float, default=0.0)
    args = p.parse_args(argv)
    if args.eval_episodes < 1:
        p.error("--eval-episodes must be >= 1")
    if args.algo == "gail" and args.gail_steps < args.ppo_n_steps * args.n_envs:
        # GAIL trains in whole PPO rounds of n_steps per env; fewer steps would train nothing.
        p.error(f"--gail-steps {args.gail_steps} is below one PPO round ({args.ppo_n_steps * args.n_envs} steps)")
    return args


def budget(args: argparse.Namespace) -> dict[str, Any]:
    """The settings that size the run, recorded with its result."""
    common = {"net_arch": args.net_arch, "horizon": args.horizon}
    bc_part = {"bc_batches": None if args.bc_epochs else args.bc_batches, "bc_epochs": args.bc_epochs,
               "bc_batch_size": args.bc_batch_size}
    if args.algo == "bc":
        return {**common, **bc_part}
    if args.algo == "dagger":
        return {**common, **bc_part, "n_envs": args.n_envs, "dagger_rounds": args.dagger_rounds,
                "dagger_episodes_per_round": args.dagger_episodes_per_round, "dagger_beta": args.dagger_beta,
                "dagger_beta_schedule": args.dagger_beta_schedule, "dagger_beta_decay": args.dagger_beta_decay}
    return {**common, "n_envs": args.n_envs, "gail_steps": args.gail_steps,
            "gail_demo_batch_size": args.gail_demo_batch_size, "gail_disc_updates": args.gail_disc_updates,
            "ppo_n_steps": args.ppo_n_steps, "ppo_batch_size": args.ppo_batch_size, "ppo_epochs": args.ppo_epochs,
            "ppo_lr": args.ppo_lr, "ppo_gamma": args.ppo_gamma, "ppo_ent_coef": args.ppo_ent_coef}


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Train one algorithm, evaluate it, write the JSON and print one line."""
    args = parse_args(argv)
    torch.set_num_threads(1)
    import imitation
    import stable_baselines3
    from imitation.util import logger as imit_logger
    from stable_baselines3.common.utils import set_random_seed

    # random, NumPy's global RNG and torch: BC's data loader shuffles with torch's global RNG and
    # GAIL's replay buffer samples with NumPy's.
    set_random_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    demos = load_trajectories(args.data, args.demos)
    seeds, counter = SeedStream(args.seed), StepCounter()
    with tempfile.TemporaryDirectory(prefix="classic-imitation-") as tmp:
        # No stdout/CSV tables: the script prints one line; imitation wants a folder all the same.
        logger = imit_logger.configure(folder=Path(tmp) / "log", format_strs=[])
        t = time.time()
        if args.algo == "bc":
            probe = make_venv(args.env, 1, seeds, counter, True, args.horizon)  # only for the spaces
            spaces = (probe.observation_space, probe.action_space)
            probe.close()
            policy = train_bc(args, demos, spaces, rng, logger)
        else:
            venv = make_venv(args.env, args.n_envs, seeds, counter, args.algo == "dagger", args.horizon)
            if args.algo == "dagger":
                policy = train_dagger(args, demos, venv, rng, logger, Path(tmp) / "dagger")
            else:
                policy = train_gail(args, demos, venv, logger, Path(tmp) / "gail")
            venv.close()
        train_s = time.time() - t
    policy.set_training_mode(False)
    t = time.time()
    result = evaluate_policy(policy, args.env, args.eval_episodes, args.seed, args.horizon, f"imitation:{args.algo}")
    eval_s = time.time() - t
    out = {"library": "imitation", "algo": args.algo, "env_id": args.env, "demos": len(demos),
           "demo_transitions": int(sum(len(d) for d in demos)), "seed": args.seed,
           "success": result.success_rate, "ci_low": result.ci_low, "ci_high": result.ci_high,
           "mean_length": result.mean_length, "eval_episodes": result.episodes,
           "train_seconds": round(train_s, 2), "eval_seconds": round(eval_s, 2),
           "wall_seconds": round(time.time() - _T0, 2), "env_steps": counter.steps,
           "practice_episodes": seeds.used, "policy_sha256": policy_digest(policy), **budget(args),
           "per_episode_success": result.per_episode_success, "per_episode_length": result.per_episode_length,
           "versions": {"imitation": imitation.__version__, "stable_baselines3": stable_baselines3.__version__,
                        "gymnasium": gym.__version__, "torch": torch.__version__}}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=1))
    print(f"imitation {args.algo} {args.env} ({len(demos)} demos, seed {args.seed}): {result.line()}; "
          f"train {train_s:.0f}s, eval {eval_s:.0f}s, {counter.steps} env steps -> {args.out}")
    return out


if __name__ == "__main__":
    main()
