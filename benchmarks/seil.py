"""SEIL against BC on MT10: BC(k), BC(50), SEIL(k) and SEIL(k) with one part removed.

    python benchmarks/seil.py                                   # full grid (hours on 2 cores)
    python benchmarks/seil.py --tasks push-v3 --ks 5 --variants seil   # one cell
    python benchmarks/seil.py --table-only                      # the table of what has finished

Uses the demos recorded by benchmarks/bc_fewshot.py and practice.py (or records them), so the
k demos and the evaluation seeds are the same as in the BC table. Each (task, k, variant) cell is a
SEIL run folder under --out and resumes if interrupted; the Markdown table is printed at the end.

Variants (equal practice budget: 2 x practice per round, i.e. 400 episodes over 4 rounds):
  seil        EMA + perturbation + the default selector
  no-ema      the primary model alone practises twice as many episodes
  no-perturb  practice starts are not perturbed
  select-all  every success is kept (selector 'all')
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from automimic.algos.seil import SEILConfig, run_seil
from automimic.rollout.collect import collect_demos
from automimic.training.loop import TrainConfig
from automimic.threads import configure_threads
from harness import MT10, cached  # benchmarks/ is on the path

from automimic.evaluation.stats import wilson_interval

VARIANTS = {
    "seil": {},
    "no-ema": {"use_ema": False, "double_practice": True},
    "no-perturb": {"perturb": 0.0},
    "select-all": {"selector": "all"},
}


def main() -> None:
    """Run every missing cell and print the table."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tasks", nargs="+", default=MT10)
    p.add_argument("--ks", nargs="+", type=int, default=[1, 5])
    p.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    p.add_argument("--rounds", type=int, default=4)
    p.add_argument("--practice", type=int, default=50, help="practice episodes per model per round")
    p.add_argument("--keep", type=int, default=20)
    p.add_argument("--noise", type=float, default=None, help="practice action noise (default: SEILConfig's)")
    p.add_argument("--gaussian", action="store_true", help="Gaussian-head MLP that samples while practising")
    p.add_argument("--selector", default=None, help="override the default selector of the 'seil' variant")
    p.add_argument("--steps", type=int, default=3000, help="training steps per round")
    p.add_argument("--episodes", type=int, default=50, help="evaluation episodes per round")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--demos", type=Path, default=Path("runs/benchmarks/demos"),
                   help="folder with <task>_demos.h5 (50 demos each; the stores of bc_fewshot.py and practice.py)")
    p.add_argument("--bc", type=Path, default=Path("benchmarks/results/bc_fewshot"),
                   help="bc_fewshot.py's cells, for the BC(50) column (the run seed's cell)")
    p.add_argument("--out", type=Path, default=Path("benchmarks/results/seil"))
    p.add_argument("--table-only", action="store_true",
                   help="print the table from the finished cells under --out, running nothing ('-' where missing)")
    args = p.parse_args()
    configure_threads()  # $AUTOMIMIC_THREADS, else 1: see automimic.threads
    if args.table_only:
        print(render(finished_rows(args), args.variants))
        return
    rows = []
    for task in args.tasks:
        demos = args.demos / f"{task}_demos.h5"
        collect_demos(f"metaworld/{task}", 50, demos, seed=args.seed, workers=args.workers, progress=False)
        for k in args.ks:
            row = {"task": task, "k": k}
            row["bc50"] = bc50_cell(args, task)
            for variant in args.variants:
                extra = dict(VARIANTS[variant])
                if args.selector and variant != "select-all":
                    extra.setdefault("selector", args.selector)
                if args.noise is not None:
                    extra["action_noise"] = args.noise
                double = extra.pop("double_practice", False)
                cfg = SEILConfig(data=str(demos), demos=k, rounds=args.rounds,
                                 practice_episodes=args.practice * (2 if double else 1), keep=args.keep,
                                 eval_episodes=args.episodes, workers=args.workers, seed=args.seed,
                                 train=TrainConfig(steps=args.steps),
                                 sample_actions=args.gaussian,
                                 policy_config={"head": "gaussian"} if args.gaussian else {}, **extra)
                folder = args.out / f"{task}_k{k}_{variant}"
                t = time.time()
                results = run_seil(cfg, folder, progress=False)
                first = json.loads((folder / "rounds.jsonl").read_text().splitlines()[0])
                row[variant] = {"final": results[-1].__dict__, "bc": first,
                                "practice": sum(r.practice for r in results), "seconds": sum(r.seconds for r in results)}
                print(f"{task:24s} k={k} {variant:10s} BC {first['success']:.2f} -> {results[-1].success:.2f} "
                      f"[{results[-1].ci_low:.2f}, {results[-1].ci_high:.2f}] practice {row[variant]['practice']} "
                      f"({time.time() - t:.0f}s this call)", flush=True)
            rows.append(row)
    (args.out / "summary.json").write_text(json.dumps(rows, indent=1))
    print(render(rows, args.variants))


def bc50_cell(args: argparse.Namespace, task: str) -> dict | None:
    """BC(50) of ``task`` at the run seed from bc_fewshot.py's cells, as ``success`` and Wilson ``ci``."""
    found = cached(args.bc / f"{task}_k50_s{args.seed}.json")
    if found is None:
        return None
    return {"success": found["successes"] / found["episodes"], "ci": list(wilson_interval(found["successes"],
                                                                                       found["episodes"]))}


def finished_rows(args: argparse.Namespace) -> list[dict]:
    """Table rows from the cells under ``args.out`` that ran all their rounds; missing cells are None."""
    rows = []
    for task in args.tasks:
        for k in args.ks:
            row = {"task": task, "k": k, "bc50": bc50_cell(args, task)}
            for variant in args.variants:
                path = args.out / f"{task}_k{k}_{variant}" / "rounds.jsonl"
                lines = [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []
                row[variant] = None if len(lines) < args.rounds + 1 else {
                    "final": lines[-1], "bc": lines[0], "practice": sum(x["practice"] for x in lines),
                    "seconds": sum(x["seconds"] for x in lines)}
            if any(row[v] is not None for v in args.variants):
                rows.append(row)
    return rows


def _cell(success: float, low: float, high: float) -> str:
    return f"{success:.2f} [{low:.2f}, {high:.2f}]"


def render(rows: list[dict], variants: list[str]) -> str:
    """Markdown table: one row per (task, k); success after the last round with its 95% interval.

    The mean row averages each column over the rows where every variant ran, so columns compare.
    """
    header = ["task", "k", "BC(k)", "BC(50)"] + [f"{v}" for v in variants] + ["practice eps", "SEIL time (s)"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        ran = [row[v] for v in variants if row[v] is not None]
        first = ran[0]["bc"]
        bc50 = row["bc50"]
        cells = [row["task"], str(row["k"]), _cell(first["success"], first["ci_low"], first["ci_high"]),
                 _cell(bc50["success"], *bc50["ci"]) if bc50 else "-"]
        for v in variants:
            f = row[v]["final"] if row[v] is not None else None
            cells.append(_cell(f["success"], f["ci_low"], f["ci_high"]) if f else "-")
        cells += [str(ran[0]["practice"]), f"{ran[0]['seconds']:.0f}"]
        lines.append("| " + " | ".join(cells) + " |")
    for k in sorted({r["k"] for r in rows}):
        sub = [r for r in rows if r["k"] == k and all(r[v] is not None for v in variants)]
        if not sub:
            continue

        def mean(pick) -> str:
            vals = [pick(r) for r in sub if pick(r) is not None]
            return f"**{sum(vals) / len(vals):.2f}**" if vals else "-"
        cells = [f"**mean** ({len(sub)} tasks)", str(k),
                 mean(lambda r: next(r[v] for v in variants if r[v] is not None)["bc"]["success"]),
                 mean(lambda r: r["bc50"]["success"] if r["bc50"] else None)]
        cells += [mean(lambda r, v=v: r[v]["final"]["success"]) for v in variants] + ["", ""]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
