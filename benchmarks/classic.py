"""The classic toolbox side by side with the `imitation` library: BC, DAgger and GAIL (plus automimic's BC -> RL
and residual RL) on Meta-World tasks from k expert demos, same demos, same evaluation seeds.

    python benchmarks/classic.py                                  # the table in docs/classic.md (several hours on 2 cores)
    python benchmarks/classic.py --tasks push-v3 --episodes 10 --rl-steps 8192   # a quick look
    python benchmarks/classic.py --table-only                     # render whatever cells have finished

Per task, 50 expert demos are recorded once and the k used are spread evenly over them (the SEIL
protocol), for both libraries. `imitation` 1.0.1 pins gymnasium 0.29, which Meta-World cannot use,
so its side runs in a virtual environment of its own (`benchmarks/imitation_venv.sh` makes it on
first use) through `benchmarks/classic_imitation.py`, one subprocess per cell, evaluated with
automimic's env wrapper, seeds and interval so both sides are scored identically. Every cell is a
JSON file in --out: an interrupted run resumes, and the Markdown table is written to
--out/table.md. Wall time is the cell's whole time, training and its evaluations included.
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import time
from pathlib import Path

from automimic.threads import configure_threads

HERE = Path(__file__).resolve().parent
TASKS = ["reach-v3", "push-v3", "pick-place-v3", "peg-insert-side-v3"]
ALGOS = ["bc", "dagger", "gail", "bc-rl", "residual"]
IMITATION_ALGOS = ("bc", "dagger", "gail")
IMITATION_PYTHON = HERE / ".venv-imitation" / "bin" / "python"


def _automimic_cell(algo: str, demos: Path, env_id: str, args: argparse.Namespace, run: Path) -> dict:
    """Train and evaluate one automimic cell; the success of its final policy on the eval seeds."""
    from automimic.algos.adversarial import AdversarialConfig, run_adversarial
    from automimic.algos.bc import BCConfig, train_bc
    from automimic.algos.bc_rl import BCRLConfig, run_bc_rl
    from automimic.algos.dagger import DAggerConfig, run_dagger
    from automimic.algos.on_policy import OnPolicyConfig
    from automimic.algos.residual_rl import ResidualRLConfig, run_residual_rl
    from automimic.evaluation.evaluate import evaluate
    from automimic.training.loop import TrainConfig

    train = TrainConfig(steps=args.bc_steps)
    if algo == "bc":
        policy = train_bc(BCConfig(data=str(demos), episodes=args.k, train=train, seed=args.seed), run, progress=False)
        r = evaluate(policy, env_id, args.episodes, seed=args.seed, workers=args.workers, progress=False)
        return {"success": r.success_rate, "ci_low": r.ci_low, "ci_high": r.ci_high, "env_steps": 0}
    if algo == "dagger":
        rows = run_dagger(DAggerConfig(data=str(demos), demos=args.k, rounds=args.dagger_rounds,
                                       episodes_per_round=args.dagger_episodes, train=train,
                                       eval_episodes=args.episodes, workers=args.workers, seed=args.seed),
                          run, progress=False)
        last = rows[-1]
        return {"success": last.success, "ci_low": last.ci_low, "ci_high": last.ci_high,
                "env_steps": None, "labelled_episodes": sum(r.labelled for r in rows)}
    iterations = math.ceil(args.rl_steps / 2048)
    rl = dict(iterations=iterations, eval_every=iterations, eval_episodes=args.episodes, workers=args.workers)
    if algo == "gail":
        rows = run_adversarial(AdversarialConfig(algo="gail", data=str(demos), demos=args.k, bc=train,
                                                 rl=OnPolicyConfig(**rl), seed=args.seed), run, progress=False)
    elif algo == "bc-rl":
        rows = run_bc_rl(BCRLConfig(data=str(demos), demos=args.k, bc=train,
                                    rl=OnPolicyConfig(reward_scale=0.01, **rl), seed=args.seed), run, progress=False)
    else:
        rows = run_residual_rl(ResidualRLConfig(data=str(demos), demos=args.k, bc=train,
                                                rl=OnPolicyConfig(reward_scale=0.01, min_std=0.0, **rl), seed=args.seed),
                               run, progress=False)
    last = rows[-1]
    return {"success": last.success, "ci_low": last.ci_low, "ci_high": last.ci_high, "env_steps": last.env_steps,
            "start_success": rows[0].success}


def _imitation_cell(algo: str, demos: Path, env_id: str, args: argparse.Namespace, out: Path) -> dict:
    """Run one `imitation` cell in its own virtual environment; its JSON result."""
    if not IMITATION_PYTHON.exists():
        subprocess.run(["bash", str(HERE / "imitation_venv.sh")], check=True)
    cmd = [str(IMITATION_PYTHON), str(HERE / "classic_imitation.py"), "--algo", algo, "--data", str(demos),
           "--env", env_id, "--demos", str(args.k), "--eval-episodes", str(args.episodes), "--seed", str(args.seed),
           "--out", str(out), "--bc-batches", str(args.bc_steps), "--dagger-rounds", str(args.dagger_rounds),
           "--dagger-episodes-per-round", str(args.dagger_episodes), "--gail-steps", str(args.rl_steps)]
    subprocess.run(cmd, check=True)
    return json.loads(out.read_text())


def _fmt(cell: dict | None) -> tuple[str, str]:
    if cell is None:
        return "not run", ""
    return f"{cell['success']:.2f} [{cell['ci_low']:.2f}, {cell['ci_high']:.2f}]", f"{cell['wall_seconds']:.0f}"


def write_table(out: Path, tasks: list[str]) -> str:
    """The Markdown table of every finished cell (written to ``out/table.md``)."""
    lines = ["| task | algorithm | automimic success [95% CI] | wall (s) | imitation success [95% CI] | wall (s) |",
             "| --- | --- | --- | --- | --- | --- |"]
    for task in tasks:
        for algo in ALGOS:
            cells = [json.loads(p.read_text()) if (p := out / task / f"{lib}-{algo}.json").exists() else None
                     for lib in ("automimic", "imitation")]
            if cells == [None, None]:
                continue
            ours, theirs = _fmt(cells[0]), _fmt(cells[1]) if algo in IMITATION_ALGOS else ("n/a", "")
            lines.append(f"| {task} | {algo} | {ours[0]} | {ours[1]} | {theirs[0]} | {theirs[1]} |")
    table = "\n".join(lines) + "\n"
    (out / "table.md").write_text(table)
    return table


def main() -> None:
    """Run every cell not already cached, then print the table."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tasks", nargs="+", default=TASKS)
    p.add_argument("--algos", nargs="+", default=ALGOS, choices=ALGOS)
    p.add_argument("--libraries", nargs="+", default=["automimic", "imitation"], choices=["automimic", "imitation"])
    p.add_argument("--k", type=int, default=5, help="expert demos")
    p.add_argument("--pool", type=int, default=50, help="demos recorded per task (the k are spread over them)")
    p.add_argument("--episodes", type=int, default=50, help="evaluation episodes per cell")
    p.add_argument("--bc-steps", type=int, default=5000, help="BC gradient steps (both libraries, batch 256 vs its own)")
    p.add_argument("--dagger-rounds", type=int, default=4)
    p.add_argument("--dagger-episodes", type=int, default=20, help="learner episodes labelled per DAgger round")
    p.add_argument("--rl-steps", type=int, default=32768, help="env steps of the RL stage (GAIL, BC -> RL, residual)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=int, default=2, help="automimic's rollout workers")
    p.add_argument("--out", type=Path, default=Path("benchmarks/results/classic"))
    p.add_argument("--table-only", action="store_true", help="only render the finished cells")
    args = p.parse_args()
    configure_threads()  # $AUTOMIMIC_THREADS, else 1: see automimic.threads
    if not args.table_only:
        from automimic.rollout.collect import collect_demos

        for task in args.tasks:
            env_id = f"metaworld/{task}"
            folder = args.out / task
            folder.mkdir(parents=True, exist_ok=True)
            demos = folder / "demos.h5"
            collect_demos(env_id, args.pool, demos, seed=args.seed, workers=args.workers, progress=False)
            for algo in args.algos:
                for lib in args.libraries:
                    cell = folder / f"{lib}-{algo}.json"
                    if cell.exists() or (lib == "imitation" and algo not in IMITATION_ALGOS):
                        continue
                    t0 = time.time()
                    if lib == "automimic":
                        result = _automimic_cell(algo, demos, env_id, args, folder / f"run-{algo}")
                    else:
                        result = _imitation_cell(algo, demos, env_id, args, folder / f"imitation-{algo}.raw.json")
                    # imitation's side reports its own wall time, without its interpreter's start-up.
                    wall = result.pop("wall_seconds", None) or time.time() - t0
                    result = {"library": lib, "algo": algo, "task": task, "k": args.k, **result, "wall_seconds": wall}
                    cell.write_text(json.dumps(result, indent=1))
                    print(f"{task} {lib} {algo}: {_fmt(result)[0]}, {result['wall_seconds']:.0f}s", flush=True)
    print(write_table(args.out, args.tasks))


if __name__ == "__main__":
    sys.exit(main())
