"""BC success on the MT10 tasks from k = 1, 5, 10, 50 expert demos, per training seed, resumable.

    python benchmarks/bc_fewshot.py --seeds 0 1 2               # the full table, 3 training seeds
    python benchmarks/bc_fewshot.py --tasks push-v3 --ks 1 5 --seeds 0   # one task
    python benchmarks/bc_fewshot.py --table-only                # the table from the cached cells

A cell is (task, k, seed): an MLP (``automimic train bc`` defaults: 3x256, 5,000 steps of 256) on k
demos spread evenly over 50 recorded per task (``linspace``, the SEIL protocol; the same stores as
``benchmarks/practice.py``), evaluated on 50 episodes of the seed's evaluation block. Cells go to
``benchmarks/results/bc_fewshot/<task>_k<k>_s<seed>.json`` (committed, so an interrupted run resumes);
run folders to ``--runs``. Every process here uses one torch thread.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from harness import MT10, cached, cell, machine_line, markdown, summary, task_mean  # benchmarks/ is on the path

from automimic.algos.bc import BCConfig, train_bc  # noqa: E402
from automimic.evaluation.evaluate import evaluate  # noqa: E402
from automimic.rollout.collect import collect_demos  # noqa: E402
from automimic.threads import configure_threads  # noqa: E402
from automimic.training.loop import TrainConfig  # noqa: E402


def bc_cell(args: argparse.Namespace, demos: Path, task: str, k: int, seed: int) -> dict:
    """Train BC(k) with ``seed`` and evaluate it on 50 episodes."""
    t = time.time()
    cfg = BCConfig(data=str(demos), episodes=k, train=TrainConfig(steps=args.steps), seed=seed)
    policy = train_bc(cfg, args.runs / f"{task}_k{k}_s{seed}", progress=False)
    train_s = time.time() - t
    r = evaluate(policy, f"metaworld/{task}", args.episodes, seed=seed, workers=1, progress=False)
    return {"successes": r.successes, "episodes": r.episodes, "train_s": train_s, "seconds": time.time() - t}


def main() -> None:
    """Run every missing cell, then print and write the table."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tasks", nargs="+", default=MT10)
    p.add_argument("--ks", nargs="+", type=int, default=[1, 5, 10, 50])
    p.add_argument("--seeds", nargs="+", type=int, default=[0])
    p.add_argument("--episodes", type=int, default=50, help="evaluation episodes per cell")
    p.add_argument("--steps", type=int, default=5000, help="BC training steps")
    p.add_argument("--table-only", action="store_true")
    p.add_argument("--out", type=Path, default=Path("benchmarks/results/bc_fewshot"))
    p.add_argument("--runs", type=Path, default=Path("runs/benchmarks/bc_fewshot"))
    p.add_argument("--demos", type=Path, default=Path("runs/benchmarks/demos"))
    args = p.parse_args()
    configure_threads(1)  # one thread per process: benchmark processes may run side by side
    print(f"machine: {machine_line()}", flush=True)
    if not args.table_only:
        for task in args.tasks:
            demos = args.demos / f"{task}_demos.h5"
            collect_demos(f"metaworld/{task}", 50, demos, seed=0, workers=1, progress=False)
            for k in args.ks:
                for seed in args.seeds:
                    res = cell(args.out / f"{task}_k{k}_s{seed}.json", lambda: bc_cell(args, demos, task, k, seed))
                    print(f"{task:26s} k={k:<3d} seed={seed}: {res['successes']}/{res['episodes']} "
                          f"({res['seconds']:.0f}s)", flush=True)
    found = {(t, k): {s: c for s in range(10) if (c := cached(args.out / f"{t}_k{k}_s{s}.json"))}
             for t in args.tasks for k in args.ks}
    rows = [[task, *(summary(list(found[(task, k)].values())) for k in args.ks)] for task in args.tasks]
    rows.append(["**mean over tasks**", *(task_mean({t: found[(t, k)] for t in args.tasks}) for k in args.ks)])
    table = markdown(["task", *(f"BC({k})" for k in args.ks)], rows)
    print(table)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "table.md").write_text(table + "\n")


if __name__ == "__main__":
    main()
