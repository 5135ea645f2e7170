"""Does the OT reward rank practice episodes by success? Embeddings and demo padding, at practice's fixed length.

    python benchmarks/ot_ranking.py --tasks reach-v3 push-v3 pick-place-v3 peg-insert-side-v3
    python benchmarks/ot_ranking.py --table-only

Practice with a learned reward runs every episode to the horizon (nothing says it succeeded), so
the question is whether, among episodes *of the same length*, the OT return is higher for the ones
that succeeded. (The diagnostics on evaluation episodes cannot answer it: those stop at success, and a
shorter episode sums fewer negative rewards whatever it did.)

A cell is (task, k, seed): the practice benchmark's BC(k) prior for that seed (same demos, settings and
seed, so the same policy as its practice cells start from) rolls out ``--episodes`` episodes on
seeds 10,000 + i, which no evaluation uses, to the env's horizon without stopping at success; a
third each with Gaussian action noise 0, 0.3 and 0.6 (in action units) so that some fail. Each
episode's OT return (Sinkhorn, eps 0.01, against its closest of the k demos) is computed under
every (embedding, hold) pair, and the cell keeps, per pair, the ROC AUC of return against the
simulator's success (the chance that a random success outscores a random failure; 0.5 is no
ranking) and the mean return of successes and failures. Embeddings:

* ``obs``: the observation vector (standardised by the demos' statistics, as the reward does);
* ``policy``: the frozen BC prior's trunk features (standardised alike; the reward's default);
* ``relative``: Meta-World's hand-object, object-goal and hand-goal vectors plus the gripper: a
  hand-made, task-aware embedding, a reference for what the generic two leave on the table. The
  reward does not offer it.

Results: ``benchmarks/results/ot_ranking/<task>_k<k>_s<seed>.json`` (committed) and ``table.md``.
One torch thread per process.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from harness import cached, cell, machine_line, markdown

from automimic.algos.on_policy import rl_setup
from automimic.algos.ot_reward import OTReward
from automimic.algos.practice import PracticeConfig, practice_prior
from automimic.algos.practice_rewards import policy_features
from automimic.algos.run_config import load_sized_config
from automimic.config import to_dict
from automimic.data.episode import Episode
from automimic.rollout.actors import ActorSpec
from automimic.rollout.collect import collect_demos
from automimic.rollout.collector import run_episodes
from automimic.rollout.workers import RolloutJob
from automimic.threads import configure_threads

NOISES = (0.0, 0.3, 0.6)
PAIRS = [(embedding, hold) for embedding in ("obs", "policy", "relative") for hold in (True, False)]


def relative_positions(states: np.ndarray) -> np.ndarray:
    """Meta-World's 39-d state as hand - object, object - goal, hand - goal and the gripper opening ``(T, 10)``."""
    hand, gripper, obj, goal = states[:, 0:3], states[:, 3:4], states[:, 4:7], states[:, 36:39]
    return np.concatenate([hand - obj, obj - goal, hand - goal, gripper], axis=1)


def auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """ROC AUC of ``scores`` for boolean ``labels`` (ties count half; NaN without both classes)."""
    from scipy.stats import mannwhitneyu

    pos, neg = scores[labels], scores[~labels]
    if not len(pos) or not len(neg):
        return float("nan")
    return float(mannwhitneyu(pos, neg).statistic / (len(pos) * len(neg)))  # AUC = U / (n1 n2)


def run_cell(args: argparse.Namespace, task: str, k: int, seed: int) -> dict:
    """Roll the BC(k) prior out to the horizon and score every (embedding, hold) pair (see the module docstring)."""
    t = time.time()
    env_id = f"metaworld/{task}"
    fields = dict(data=str(args.demos / f"{task}_demos.h5"), env_id=env_id, demos=k, seed=seed)
    cfg = load_sized_config(PracticeConfig, None, [f"{key}={value}" for key, value in fields.items()])
    out = args.runs / f"{task}_k{k}_s{seed}"
    _, demos = rl_setup(cfg.data, env_id, k, out, {"algo": "practice", **to_dict(cfg)})
    prior = practice_prior(cfg, demos, env_id, out, progress=False)
    episodes: list[Episode] = []
    for i, noise in enumerate(NOISES):
        job = RolloutJob(env_id, ActorSpec.policy(prior, name="bc", action_noise=noise), stop_on_success=False)
        episodes += run_episodes(job, [10_000 + j for j in range(i, args.episodes, len(NOISES))])
    success = np.array([bool(e.success) for e in episodes])
    embeds = {"obs": None, "policy": policy_features(prior), "relative": relative_positions}
    scores = {}
    for embedding, hold in PAIRS:
        source = OTReward(demos, prior.obs_keys, hold=hold, embed=embeds[embedding])
        returns = np.array([source.episode_rewards(e).sum() for e in episodes])
        scores[f"{embedding}/{'held' if hold else 'as recorded'}"] = {
            "auc": auc(returns, success), "success_return": float(returns[success].mean()) if success.any() else None,
            "failure_return": float(returns[~success].mean()) if (~success).any() else None}
    return {"episodes": len(episodes), "successes": int(success.sum()), "lengths": sorted({e.length for e in episodes}),
            "noises": list(NOISES), "scores": scores, "seconds": time.time() - t}


def render(results: dict[tuple, dict]) -> str:
    """AUC per task (rows) and (embedding, hold) pair (columns), with each cell's successes."""
    header = ["task", "k", "seed", "successes", *[f"{e} {'held' if h else 'as recorded'}" for e, h in PAIRS]]
    rows = []
    for (task, k, seed), res in sorted(results.items()):
        rows.append([task, k, seed, f"{res['successes']}/{res['episodes']}",
                     *[f"{res['scores'][f'''{e}/{'held' if h else 'as recorded'}''']['auc']:.2f}" for e, h in PAIRS]])
    return markdown(header, rows)


def main() -> None:
    """Run every missing cell, then print and write the table."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tasks", nargs="+", default=["reach-v3", "push-v3", "pick-place-v3", "peg-insert-side-v3"])
    p.add_argument("--ks", nargs="+", type=int, default=[5])
    p.add_argument("--seeds", nargs="+", type=int, default=[0])
    p.add_argument("--episodes", type=int, default=60, help="rollouts per cell (a third per noise level)")
    p.add_argument("--out", type=Path, default=Path("benchmarks/results/ot_ranking"))
    p.add_argument("--runs", type=Path, default=Path("runs/benchmarks/ot_ranking"))
    p.add_argument("--demos", type=Path, default=Path("runs/benchmarks/demos"))
    p.add_argument("--table-only", action="store_true")
    args = p.parse_args()
    configure_threads(1)  # one thread per process: benchmark processes may run side by side
    print(f"machine: {machine_line()}", flush=True)
    results = {}
    for task in args.tasks:
        if not args.table_only:
            collect_demos(f"metaworld/{task}", 50, args.demos / f"{task}_demos.h5", seed=0, workers=1, progress=False)
        for k in args.ks:
            for seed in args.seeds:
                path = args.out / f"{task}_k{k}_s{seed}.json"
                res = cached(path) if args.table_only else cell(path, lambda: run_cell(args, task, k, seed))
                if res is not None:
                    results[(task, k, seed)] = res
    table = render(results)
    print(table)
    if results:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "table.md").write_text(table + "\n")


if __name__ == "__main__":
    main()
