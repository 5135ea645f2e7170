"""Steps-to-go self-improvement on the point mass, against the public reference.

    python benchmarks/steps_to_go_pointmass.py                       # defaults below, a few minutes
    python benchmarks/steps_to_go_pointmass.py --iterations 64 --lr 2e-5

Reference (public point-mass code of arXiv 2509.15155): SFT success ~0.92 and mean episode length
~69 with waypoint-detour demos; after 2,048 REINFORCE updates (64 iterations of 2,048 env steps in
minibatches of 64) success ~1.00 and length ~13. This script records expert demos of
``point/reach``, runs ``run_steps_to_go`` (resumable: the run folder is reused) and prints the
table: the expert, the SFT policy (iteration 0) and the practised policy, with 95% intervals,
mean episode length on the evaluation seeds, the detector's precision/recall there, and wall time.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from automimic.algos.steps_to_go import StepsToGoConfig, run_steps_to_go, write_report
from automimic.data.store import EpisodeStore
from automimic.evaluation.report import markdown_table
from automimic.rollout.collect import collect_demos
from automimic.training.loop import TrainConfig
from automimic.threads import configure_threads


def main() -> None:
    """Run (or resume) the benchmark and print its table."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--demos", type=int, default=500)
    p.add_argument("--sft-steps", type=int, default=3000)
    p.add_argument("--iterations", type=int, default=64)
    p.add_argument("--lr", type=float, default=None, help="practice learning rate (default: StepsToGoConfig's)")
    p.add_argument("--baseline", default=None, help="none | batch | pace | value (default: StepsToGoConfig's)")
    p.add_argument("--update", default=None, help="reinforce | ppo (default: StepsToGoConfig's)")
    p.add_argument("--anchor", type=float, default=None,
                   help="weight of the imitation anchor during practice (default: StepsToGoConfig's; 0: off)")
    p.add_argument("--robots", type=int, default=8)
    p.add_argument("--eval-every", type=int, default=8)
    p.add_argument("--episodes", type=int, default=100, help="evaluation episodes")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=Path("benchmarks/results/steps_to_go_pointmass"))
    args = p.parse_args()
    configure_threads()  # $AUTOMIMIC_THREADS, else 1: see automimic.threads
    args.out.mkdir(parents=True, exist_ok=True)
    demos = args.out / f"demos{args.demos}.h5"
    collect_demos("point/reach", args.demos, demos, seed=args.seed, progress=False)
    demo_lengths = [e.length for e in EpisodeStore(demos).episodes()]
    extra = {k: v for k, v in (("lr", args.lr), ("baseline", args.baseline), ("update", args.update),
                                              ("anchor_weight", args.anchor)) if v is not None}
    cfg = StepsToGoConfig(data=str(demos), sft=TrainConfig(steps=args.sft_steps), iterations=args.iterations,
                          robots=args.robots, eval_every=args.eval_every, eval_episodes=args.episodes,
                          seed=args.seed, workers=1, **extra)
    name = (f"k{args.demos}_it{args.iterations}_lr{cfg.lr:g}_{cfg.baseline}{'_ppo' if cfg.update == 'ppo' else ''}"
            f"{'_learnstd' if cfg.learn_std else ''}{f'_anchor{cfg.anchor_weight:g}' if cfg.anchor_weight else ''}_seed{args.seed}")
    t = time.time()
    rows = run_steps_to_go(cfg, args.out / name, progress=False,
                           on_iteration=lambda r: print(r.line(), flush=True),
                           on_calibration=lambda c: print(c.line(), flush=True))
    calib = json.loads((args.out / name / "calibration.json").read_text())
    print(f"report: {write_report(args.out / name)}")
    evaluated = [r for r in rows if r.success is not None]
    first, last = evaluated[0], evaluated[-1]
    print("\nevaluation along practice (iteration: success, mean length): " +
          "; ".join(f"{r.iteration}: {r.success:.2f}, {r.eval_length:.1f}" for r in evaluated))

    def cell(r) -> list[str]:
        return [f"{r.success:.2f} [{r.ci_low:.2f}, {r.ci_high:.2f}]", f"{r.eval_length:.1f}",
                f"{r.precision:.2f} / {r.recall:.2f}"]

    table = markdown_table(
        ["policy", "success (95% CI)", "mean length", "detector P / R", "practice env steps"],
        [["expert demos", "1.00 (successes kept)", f"{np.mean(demo_lengths):.1f}", "-", "-"],
         ["SFT (BC + steps-to-go)", *cell(first), "0"],
         [f"after {last.iteration} iterations", *cell(last), str(last.env_steps)],
         ["reference SFT → practised", "0.92 → 1.00", "69 → 13", "-", "131,072"]])
    print(f"\n{args.demos} demos, detector s = {calib['threshold']:.2f} (calibration P {calib['precision']:.2f} "
          f"R {calib['recall']:.2f}), lr {cfg.lr:g}, baseline {cfg.baseline}, update {cfg.update}, {args.episodes} eval episodes, "
          f"{time.time() - t:.0f}s this call\n")
    print(table)


if __name__ == "__main__":
    main()
