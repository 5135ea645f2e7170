"""Does off-policy practice with a learned reward raise a weak BC prior? point/reach, a few seeds (issue 18).

    python benchmarks/learned_rewards_point.py --seeds 0 1 2 --rewards success steps-to-go ot
    python benchmarks/learned_rewards_point.py --table-only

The setting of ``tests/test_practice.py::test_practice_raises_a_weak_point_reach_policy`` (5 demos,
a 300-step BC prior, 8,000 env steps, 64 x 64 networks, utd 1), with the reward swapped. A cell is
(reward, seed): the evaluation at env step 0 (the prior) and at the end (50 episodes each, the run
seed's eval seeds), cached in ``benchmarks/results/learned_rewards_point/`` (committed) with the
table ``table.md``: the mean gain over seeds and its 95% t-interval, and the share of the success
reward's gain each learned reward recovers. Run folders go to ``--runs`` (not committed); one torch
thread, rollouts in-process.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from harness import cached, cell, markdown

from automimic.algos.offpolicy import UpdateConfig
from automimic.algos.practice import PracticeConfig, run_practice
from automimic.algos.practice_rewards import LearnedRewardConfig
from automimic.rollout.collect import collect_demos
from automimic.threads import configure_threads
from automimic.training.loop import TrainConfig

REWARDS = ("success", "steps-to-go", "ot")


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


def run_cell(args: argparse.Namespace, data: Path, reward: str, seed: int) -> dict:
    """One practice run; its start, end and curve."""
    cfg = config(data, reward, seed, args.budget)
    rows = run_practice(cfg, args.runs / f"{reward}_s{seed}", progress=False)
    return {"start": rows[0].success, "end": rows[-1].success, "episodes": cfg.eval_episodes,
            "env_steps": rows[-1].env_steps,
            "curve": [r.success for r in rows], "reward_info": [r.reward_info for r in rows]}


def table(out: Path) -> str:
    """Gain per reward over the cached seeds, and the share of the success reward's gain (seed-matched)."""
    cells = {r: {int(p.stem.rsplit("_s", 1)[1]): cached(p) for p in sorted(out.glob(f"{r}_s*.json"))} for r in REWARDS}
    rows = []
    for reward in REWARDS:
        by_seed = cells[reward]
        if not by_seed:
            continue
        gains = [c["end"] - c["start"] for c in by_seed.values()]
        lo, hi = t_interval(gains)
        both = [s for s in by_seed if s in cells["success"]]
        share = "-"
        if reward != "success" and both:
            ref = np.mean([cells["success"][s]["end"] - cells["success"][s]["start"] for s in both])
            mine = np.mean([by_seed[s]["end"] - by_seed[s]["start"] for s in both])
            share = f"{mine / ref:.0%} ({len(both)} seeds)" if ref > 0 else "n/a (no success-reward gain)"
        rows.append([reward, f"{np.mean([c['start'] for c in by_seed.values()]):.2f}",
                     f"{np.mean([c['end'] for c in by_seed.values()]):.2f}",
                     f"{np.mean(gains):+.2f} [{lo:+.2f}, {hi:+.2f}]" if len(gains) > 1 else f"{gains[0]:+.2f}",
                     ", ".join(f"{g:+.2f}" for g in gains), share])
    return markdown(["reward", "start", "end", "gain [95% t over seeds]", "per seed (seeds "
                     + ", ".join(str(s) for s in sorted({s for c in cells.values() for s in c})) + ")",
                     "share of the success reward's gain"], rows)


def main() -> None:
    """Run the missing (reward, seed) cells, then write the table from the cache."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--rewards", nargs="+", default=list(REWARDS), choices=REWARDS)
    ap.add_argument("--budget", type=int, default=8000)
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/learned_rewards_point"))
    ap.add_argument("--runs", type=Path, default=Path("runs/benchmarks/learned_rewards_point"))
    ap.add_argument("--table-only", action="store_true")
    args = ap.parse_args()
    configure_threads(1)
    if not args.table_only:
        args.runs.mkdir(parents=True, exist_ok=True)
        data = args.runs / "demos.h5"
        if not data.exists():
            collect_demos("point/reach", 20, data, progress=False)
        for reward in args.rewards:
            for seed in args.seeds:
                res = cell(args.out / f"{reward}_s{seed}.json", lambda: run_cell(args, data, reward, seed))
                print(f"{reward} s={seed}: {res['start']:.2f} -> {res['end']:.2f}", flush=True)
    text = table(args.out)
    print(text)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "table.md").write_text(text + "\n")


if __name__ == "__main__":
    main()
