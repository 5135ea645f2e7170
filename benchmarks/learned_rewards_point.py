"""Does off-policy practice with a learned reward raise a weak BC prior? point/reach, a few seeds (issue 18).

    python benchmarks/learned_rewards_point.py --out /tmp/lr --seeds 0 1 2 --rewards success steps-to-go ot

The setting of ``tests/test_practice.py::test_practice_raises_a_weak_point_reach_policy`` (5 demos,
a 300-step BC prior, 8,000 env steps, 64 x 64 networks, utd 1), with the reward swapped. Per run it
prints the evaluation at env step 0 (the prior) and at the end (50 episodes each, the run seed's
eval seeds); at the end a table with the mean gain over seeds and its 95% t-interval. Run folders go
to ``--out`` (not committed); one torch thread, rollouts in-process.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from automimic.algos.offpolicy import UpdateConfig
from automimic.algos.practice import PracticeConfig, run_practice
from automimic.algos.practice_rewards import LearnedRewardConfig
from automimic.rollout.collect import collect_demos
from automimic.training.loop import TrainConfig


def config(data: Path, reward: str, seed: int, budget: int) -> PracticeConfig:
    """The weak-prior practice run of the test, with ``reward``."""
    return PracticeConfig(
        data=str(data), env_id="point/reach", demos=5, budget=budget, reward=reward, seed=seed,
        learned_reward=LearnedRewardConfig(calibrate_episodes=10), bc=TrainConfig(steps=300, checkpoint_every=10**6),
        eval_every=2000, eval_episodes=50, warmup_updates=100, actor_start=1000, utd=1.0, actor_hidden=(64, 64),
        critic_hidden=(64, 64), robots=8, update=UpdateConfig(batch=128))


def t_interval(x: list[float]) -> tuple[float, float]:
    """95% t-interval of the mean (NaN with fewer than 2 values)."""
    from scipy import stats

    if len(x) < 2:
        return float("nan"), float("nan")
    half = stats.t.ppf(0.975, len(x) - 1) * np.std(x, ddof=1) / np.sqrt(len(x))
    return float(np.mean(x) - half), float(np.mean(x) + half)


def main() -> None:
    """Run every (reward, seed) cell into ``--out`` (finished ones are read back) and print the table."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--rewards", nargs="+", default=["success", "steps-to-go", "ot"])
    ap.add_argument("--budget", type=int, default=8000)
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    data = args.out / "demos.h5"
    if not data.exists():
        collect_demos("point/reach", 20, data, progress=False)
    lines = []
    for reward in args.rewards:
        gains, starts, ends = [], [], []
        for seed in args.seeds:
            rows = run_practice(config(data, reward, seed, args.budget), args.out / f"{reward}_s{seed}", progress=False)
            cell = {"start": rows[0].success, "end": rows[-1].success, "env_steps": rows[-1].env_steps,
                    "curve": [r.success for r in rows], "reward_info": [r.reward_info for r in rows]}
            print(reward, seed, json.dumps(cell), flush=True)
            starts.append(cell["start"])
            ends.append(cell["end"])
            gains.append(cell["end"] - cell["start"])
        lo, hi = t_interval(gains)
        lines.append(f"| {reward} | {np.mean(starts):.2f} | {np.mean(ends):.2f} | {np.mean(gains):+.2f} "
                     f"[{lo:+.2f}, {hi:+.2f}] | {', '.join(f'{g:+.2f}' for g in gains)} |")
    print("| reward | start | end | gain [95% t] | per seed |\n|---|---|---|---|---|\n" + "\n".join(lines))


if __name__ == "__main__":
    main()
