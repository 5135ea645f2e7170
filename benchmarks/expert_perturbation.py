"""Scripted-expert success on MT10 with and without start perturbation (50 starts each).

    python benchmarks/expert_perturbation.py [--sigmas 0 0.02 0.04] [--starts 50]

Starts are drawn from the ``practice`` seed range, where perturbation is used. Prints a Markdown
table of success with 95% Wilson intervals and the mean episode length of successes.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from automimic.envs import make_env
from automimic.envs.metaworld import DEFAULT_PERTURB
from automimic.evaluation.stats import wilson_interval
from automimic.rollout.actors import ExpertActor
from automimic.rollout.episode_runner import run_episode
from automimic.seeding import episode_seeds
from harness import MT10  # benchmarks/ is on the path



def main() -> None:
    """Measure and print the table."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tasks", nargs="+", default=MT10)
    p.add_argument("--sigmas", nargs="+", type=float, default=[0.0, DEFAULT_PERTURB, 2 * DEFAULT_PERTURB])
    p.add_argument("--starts", type=int, default=50)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    seeds = episode_seeds("practice", args.seed, args.starts)
    t0 = time.time()
    lines = ["| task | " + " | ".join(f"σ = {s:g} m" for s in args.sigmas) + " |",
             "|" + "---|" * (len(args.sigmas) + 1)]
    for task in args.tasks:
        env_id = f"metaworld/{task}"
        cells = []
        for sigma in args.sigmas:
            env = make_env(env_id, perturb=sigma)
            actor = ExpertActor(env_id)
            eps = [run_episode(env, actor, s) for s in seeds]
            k = sum(e.success for e in eps)
            lo, hi = wilson_interval(k, len(eps))
            length = np.mean([e.length for e in eps if e.success]) if k else float("nan")
            cells.append(f"{k / len(eps):.2f} [{lo:.2f}, {hi:.2f}], {length:.0f} steps")
            env.close()
        lines.append(f"| {task} | " + " | ".join(cells) + " |")
        print(lines[-1], flush=True)
    print(f"\n{args.starts} starts per cell (practice seeds of run seed {args.seed}), {time.time() - t0:.0f} s\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
