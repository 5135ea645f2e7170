"""Steps-to-go practice on MT10 against BC with 8x the demos and SEIL at the same practice budget.

    python benchmarks/steps_to_go.py                                   # MT10, k = 5, budgets 250 / 500
    python benchmarks/steps_to_go.py --tasks push-v3 --budgets 100     # one task, one budget

Per task, from the k demos of benchmarks/bc_fewshot.py's stores (same demos, same evaluation seeds):
SFT(k) (BC + steps-to-go, iteration 0 of the practice run), the practised policy after each practice
budget (in practice *episodes*; the simulator's success is never read in practice), BC on 8k demos,
and SEIL whose rounds spend the largest budget (100 practice episodes per round). Every cell is a
run folder under --out and resumes. The issue's budgets, "+10% and +50% more episodes than the
demos", are 0.5 and 2.5 episodes at k = 5, less than one REINFORCE iteration, so the budgets are
explicit here; the defaults match SEIL's cap of 500 practice episodes per task.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from automimic.algos.bc import fit_policy, select_episodes
from automimic.algos.seil import SEILConfig, run_seil
from automimic.algos.steps_to_go import StepsToGoConfig, run_steps_to_go
from automimic.data.store import EpisodeStore
from automimic.evaluation.evaluate import evaluate
from automimic.evaluation.report import markdown_table
from automimic.rollout.collect import collect_demos
from automimic.training.loop import TrainConfig
from automimic.training.run_dir import RunDir
from automimic.threads import configure_threads

MT10 = ["reach-v3", "push-v3", "pick-place-v3", "door-open-v3", "drawer-open-v3", "drawer-close-v3",
        "button-press-topdown-v3", "peg-insert-side-v3", "window-open-v3", "window-close-v3"]


def _cell(r: dict) -> str:
    return f"{r['success']:.2f} [{r['ci_low']:.2f}, {r['ci_high']:.2f}]"


def bc_cell(task: str, demos: Path, k: int, args: argparse.Namespace) -> dict:
    """BC on ``k`` demos spread over the store, evaluated on the shared seeds (cached as JSON)."""
    path = args.out / f"{task}_bc{k}.json"
    if path.exists():
        return json.loads(path.read_text())
    run = RunDir(args.out / f"{task}_bc{k}")
    run.write_config({"algo": "bc", "env_id": f"metaworld/{task}", "k": k})
    episodes = select_episodes([e for e in EpisodeStore(demos).episodes() if e.success], k)
    policy = fit_policy(episodes, f"metaworld/{task}", run.path, train=TrainConfig(steps=args.steps),
                        seed=args.seed, progress=False)
    res = evaluate(policy, f"metaworld/{task}", args.episodes, seed=args.seed, workers=args.workers, progress=False)
    cell = {"success": res.success_rate, "ci_low": res.ci_low, "ci_high": res.ci_high}
    path.write_text(json.dumps(cell))
    return cell


def main() -> None:
    """Run every missing cell and print the table with the issue's two comparisons."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tasks", nargs="+", default=MT10)
    p.add_argument("--k", type=int, default=5)
    p.add_argument("--budgets", nargs="+", type=int, default=[250, 500], help="practice episodes")
    p.add_argument("--steps", type=int, default=3000, help="SFT / BC / SEIL training steps")
    p.add_argument("--anchor", type=float, default=StepsToGoConfig.anchor_weight,
                   help="weight of the imitation anchor on demo minibatches during practice "
                        "(StepsToGoConfig.anchor_weight; 0: off, the reference's update)")
    p.add_argument("--episodes", type=int, default=50, help="evaluation episodes")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--demos", type=Path, default=Path("runs/benchmarks/demos"))
    p.add_argument("--out", type=Path, default=Path("benchmarks/results/steps_to_go"))
    args = p.parse_args()
    configure_threads()  # $AUTOMIMIC_THREADS, else 1: see automimic.threads
    args.out.mkdir(parents=True, exist_ok=True)
    budgets = sorted(args.budgets)
    seil_rounds = max(1, budgets[-1] // 100)
    anchor = f"_anchor{args.anchor:g}" if args.anchor else ""
    rows, gains = [], []
    for task in args.tasks:
        demos = args.demos / f"{task}_demos.h5"
        collect_demos(f"metaworld/{task}", 50, demos, seed=args.seed, workers=args.workers, progress=False)
        practised = []
        for budget in budgets:
            cfg = StepsToGoConfig(data=str(demos), demos=args.k, sft=TrainConfig(steps=args.steps), iterations=10_000,
                                  episode_budget=budget, eval_every=10_000, eval_episodes=args.episodes,
                                  workers=args.workers, seed=args.seed, anchor_weight=args.anchor)
            res = run_steps_to_go(cfg, args.out / f"{task}_k{args.k}_stg{budget}{anchor}", progress=False)
            practised.append(res)
        sft, finals = practised[0][0].__dict__, [r[-1].__dict__ for r in practised]
        calib = json.loads((args.out / f"{task}_k{args.k}_stg{budgets[0]}{anchor}" / "calibration.json").read_text())
        bc8 = bc_cell(task, demos, 8 * args.k, args)
        seil_cfg = SEILConfig(data=str(demos), demos=args.k, rounds=seil_rounds, practice_episodes=50,
                              eval_episodes=args.episodes, workers=args.workers, seed=args.seed,
                              train=TrainConfig(steps=args.steps))
        seil = run_seil(seil_cfg, args.out / f"{task}_k{args.k}_seil{100 * seil_rounds}", progress=False)
        seil_first, seil_last = seil[0].__dict__, seil[-1].__dict__
        rows.append([task, _cell(sft), *[_cell(f) for f in finals], _cell(bc8), _cell(seil_last),
                     f"{calib['precision']:.2f} / {calib['recall']:.2f}"])
        gains.append((sft["success"], finals[-1]["success"], bc8["success"], seil_first["success"], seil_last["success"]))
        print(f"{task}: SFT {sft['success']:.2f} -> {finals[-1]['success']:.2f}; BC({8 * args.k}) {bc8['success']:.2f}; "
              f"SEIL {seil_first['success']:.2f} -> {seil_last['success']:.2f}", flush=True)
    g = np.array(gains)
    rows.append(["**mean**", f"**{g[:, 0].mean():.2f}**", *[""] * (len(budgets) - 1), f"**{g[:, 1].mean():.2f}**",
                 f"**{g[:, 2].mean():.2f}**", f"**{g[:, 4].mean():.2f}**", ""])
    header = ["task", f"SFT({args.k})", *[f"practised, {b} eps" for b in budgets], f"BC({8 * args.k})",
              f"SEIL, {100 * seil_rounds} eps", "detector P / R"]
    print(markdown_table(header, rows))
    seil_gain = g[:, 4].mean() - g[:, 3].mean()
    stg_gain = g[:, 1].mean() - g[:, 0].mean()
    print(f"\nsteps-to-go gain {stg_gain:+.2f} vs SEIL gain {seil_gain:+.2f} "
          f"({stg_gain / seil_gain:.0%} recovered; target >= 70%)" if seil_gain > 0 else
          f"\nsteps-to-go gain {stg_gain:+.2f}; SEIL gained {seil_gain:+.2f}")
    print(f"practised {g[:, 1].mean():.2f} vs BC({8 * args.k}) {g[:, 2].mean():.2f} (target: above)")


if __name__ == "__main__":
    main()
