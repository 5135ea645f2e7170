"""BC success on the MT10 tasks from k = 1, 5, 10, 50 expert demos (50 eval episodes, 95% Wilson CI).

    python benchmarks/bc_fewshot.py                      # full table (~30 min on 2 cores)
    python benchmarks/bc_fewshot.py --tasks push-v3 --ks 1 5 --episodes 10   # a quick look

The k demos are spread evenly over 50 recorded ones (linspace, the SEIL protocol); every cell uses
the same evaluation seeds. Results are cached in --out (JSON per cell), so an interrupted run
resumes; the Markdown table is printed at the end and written to --out/table.md.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from automimic.algos.bc import BCConfig, train_bc
from automimic.evaluation.evaluate import evaluate
from automimic.rollout.collect import collect_demos
from automimic.threads import configure_threads
from automimic.training.loop import TrainConfig
from harness import MT10  # benchmarks/ is on the path



def main() -> None:
    """Run every (task, k) cell not already cached and print the table."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tasks", nargs="+", default=MT10)
    p.add_argument("--ks", nargs="+", type=int, default=[1, 5, 10, 50])
    p.add_argument("--pool", type=int, default=50, help="demos recorded per task")
    p.add_argument("--episodes", type=int, default=50, help="evaluation episodes per cell")
    p.add_argument("--steps", type=int, default=5000, help="BC training steps")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--out", type=Path, default=Path("benchmarks/results/bc_fewshot"))
    p.add_argument("--threads", type=int, default=None,
                   help="torch threads for training (default $AUTOMIMIC_THREADS, else 1; see automimic.threads)")
    args = p.parse_args()
    configure_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    cells = {}
    for task in args.tasks:
        env_id = f"metaworld/{task}"
        demos = args.out / f"{task}_demos.h5"
        t = time.time()
        collect_demos(env_id, args.pool, demos, seed=args.seed, workers=args.workers, progress=False)
        collect_s = time.time() - t
        for k in args.ks:
            cell = args.out / f"{task}_k{k}.json"
            if not cell.exists():
                t = time.time()
                cfg = BCConfig(data=str(demos), episodes=k, train=TrainConfig(steps=args.steps), seed=args.seed)
                policy = train_bc(cfg, args.out / "runs" / f"{task}_k{k}", progress=False)
                train_s = time.time() - t
                r = evaluate(policy, env_id, args.episodes, seed=args.seed, workers=args.workers, progress=False)
                cell.write_text(json.dumps({"task": task, "k": k, "success": r.success_rate, "ci": [r.ci_low, r.ci_high],
                                            "episodes": r.episodes, "train_s": train_s,
                                            "eval_s": time.time() - t - train_s, "collect_s": collect_s}))
            cells[(task, k)] = json.loads(cell.read_text())
            c = cells[(task, k)]
            print(f"{task:26s} k={k:<3d} success {c['success']:.2f} [{c['ci'][0]:.2f}, {c['ci'][1]:.2f}] "
                  f"train {c['train_s']:.0f}s eval {c['eval_s']:.0f}s", flush=True)
    header = "| task | " + " | ".join(f"k={k}" for k in args.ks) + " | wall time (s) |"
    lines = [header, "|" + "---|" * (len(args.ks) + 2)]
    for task in args.tasks:
        row = [f"{cells[(task, k)]['success']:.2f} [{cells[(task, k)]['ci'][0]:.2f}, {cells[(task, k)]['ci'][1]:.2f}]"
               for k in args.ks]
        wall = cells[(task, args.ks[0])]["collect_s"] + sum(cells[(task, k)]["train_s"] + cells[(task, k)]["eval_s"]
                                                             for k in args.ks)
        lines.append(f"| {task} | " + " | ".join(row) + f" | {wall:.0f} |")
    means = [sum(cells[(t, k)]["success"] for t in args.tasks) / len(args.tasks) for k in args.ks]
    lines.append("| **mean** | " + " | ".join(f"**{m:.2f}**" for m in means) + " | |")
    table = "\n".join(lines)
    (args.out / "table.md").write_text(table + "\n")
    print(table)


if __name__ == "__main__":
    main()
