"""Off-policy practice against BC(k), SEIL(k) and BC(50) on Meta-World, cell by cell, resumable.

    python benchmarks/practice.py --tasks push-v3 --ks 5 --seeds 0            # one task, one seed
    python benchmarks/practice.py --tasks reach-v3 push-v3 pick-place-v3 peg-insert-side-v3 --ks 5 --seeds 0 1 2
    python benchmarks/practice.py --table-only                                 # tables and plot from the cache
    python benchmarks/practice.py --methods practice --set prior=residual --tag residual   # a variant
    python benchmarks/practice.py --table-only --set reward=ot --tag ot --compare default  # + share of its gain

A cell is (method, task, k, seed). Methods:
  bc        BC(k): the practice run's own BC prior, evaluated (50 episodes, eval seeds of the run seed);
            a variant whose --set changes the prior (policy, bc, ..., or the steps-to-go reward's SFT
            prior) gets its own cells under bc-<tag>/
  practice  off-policy practice (``automimic improve practice``) with the given budget; its curve is kept
  seil      SEIL(k) with rounds x practice episodes sized to the same budget (its env steps are counted)
  bc50      BC on all 50 demos (k is ignored)

The k demos are spread over 50 recorded per task (``linspace``, the SEIL protocol; the same files as
``benchmarks/bc_fewshot.py``). Results go to ``benchmarks/results/practice/<tag>/<method>/<task>_k<k>_s<seed>.json``
(committed); run folders go to ``--runs`` (not committed). Every process here uses one torch thread
and rollouts run in-process, so two benchmark processes side by side do not fight over the cores.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from harness import MT10, cached, cell, machine_line, markdown, summary  # benchmarks/ is on the path

from automimic.algos.bc import BCConfig, train_bc  # noqa: E402
from automimic.algos.practice import (PracticeConfig, practice_prior, prior_settings, run_practice,  # noqa: E402
                                      write_report)
from automimic.algos.run_config import load_sized_config  # noqa: E402
from automimic.config import from_dict, to_dict  # noqa: E402
from automimic.data.store import EpisodeStore  # noqa: E402
from automimic.evaluation.evaluate import evaluate  # noqa: E402
from automimic.rollout.collect import collect_demos  # noqa: E402
from automimic.threads import configure_threads  # noqa: E402
from automimic.training.loop import TrainConfig  # noqa: E402

METHODS = ("bc", "practice", "seil", "bc50")


def practice_config(args: argparse.Namespace, demos: Path, task: str, k: int, seed: int,
                    overrides: list[str] | None = None) -> PracticeConfig:
    """The practice run of a cell: what ``automimic improve practice`` would build (defaults sized to
    the policy class), the cell's fields, then ``overrides`` (default ``--set``)."""
    fields = dict(data=str(demos), env_id=f"metaworld/{task}", demos=k, budget=args.budget,
                  eval_every=args.eval_every, eval_episodes=args.episodes, seed=seed)
    sets = args.set if overrides is None else overrides
    return load_sized_config(PracticeConfig, None, [f"{key}={value}" for key, value in fields.items()] + sets)


def bc_tag(args: argparse.Namespace) -> str:
    """Result folder of the BC(k) cells: ``bc``, or ``bc-<tag>`` when ``--set`` changes the prior
    (an ACT residual variant practises from an ACT prior, the steps-to-go reward from an SFT prior),
    or ``bc-<--bc-tag>`` when that tag's practice cells were run from the same prior (checked)."""
    cell = (args, args.demos / "any.h5", "push-v3", 5, 0)
    mine = prior_settings(practice_config(*cell))
    if args.bc_tag:
        stored = sorted((args.out / args.bc_tag).glob("*.json"))
        if not stored:
            raise SystemExit(f"--bc-tag {args.bc_tag}: no practice cells in {args.out / args.bc_tag} to check its prior")
        theirs = from_dict(PracticeConfig, json.loads(stored[0].read_text())["config"])
        if prior_settings(theirs) != mine:
            raise SystemExit(f"--bc-tag {args.bc_tag}: its practice ({stored[0]}) trained another prior than --set gives")
        return f"bc-{args.bc_tag}"
    return "bc" if mine == prior_settings(practice_config(*cell, overrides=[])) else f"bc-{args.tag}"


def run_cell(method: str, args: argparse.Namespace, demos: Path, task: str, k: int, seed: int) -> dict:
    """Measure one cell (see the module docstring)."""
    env_id = f"metaworld/{task}"
    t = time.time()
    if method in ("bc", "practice"):
        cfg = practice_config(args, demos, task, k, seed)
        out = args.runs / args.tag / f"{task}_k{k}_s{seed}"
        if method == "bc":
            # The practice run's own prior: the same demos, BC settings and seed, trained once.
            from automimic.algos.on_policy import rl_setup

            _, eps = rl_setup(cfg.data, env_id, k, out, {"algo": "practice", **to_dict(cfg)})
            policy = practice_prior(cfg, eps, env_id, out, progress=False)
            r = evaluate(policy, env_id, args.episodes, seed=seed, workers=1, progress=False)
            return {"successes": r.successes, "episodes": r.episodes, "seconds": time.time() - t}
        rows = run_practice(cfg, out, progress=False, on_row=lambda row: print(f"  {task} k={k} s={seed}: {row.line()}",
                                                                              flush=True))
        write_report(out)
        last = rows[-1]
        return {"successes": round(last.success * args.episodes), "episodes": args.episodes,
                "env_steps": last.env_steps, "curve": [[r.env_steps, r.success] for r in rows],
                "updates_per_s": sum(r.updates_per_s for r in rows[1:]) / max(len(rows) - 1, 1),
                "env_steps_per_s": sum(r.env_steps_per_s for r in rows[1:]) / max(len(rows) - 1, 1),
                "config": to_dict(cfg), "seconds": time.time() - t}
    if method == "bc50":
        policy = train_bc(BCConfig(data=str(demos), episodes=50, train=TrainConfig(steps=5000), seed=seed),
                          args.runs / "bc50" / f"{task}_s{seed}", progress=False)
        r = evaluate(policy, env_id, args.episodes, seed=seed, workers=1, progress=False)
        return {"successes": r.successes, "episodes": r.episodes, "seconds": time.time() - t}
    from automimic.algos.seil import SEILConfig, run_seil

    # Two models (policy and EMA) practise per round; 4 rounds of 2 x practice episodes of at most
    # 200 steps each stay within the budget.
    per_model = max(1, args.budget // (4 * 2 * 200))
    out = args.runs / "seil" / f"{task}_k{k}_s{seed}"
    rounds = run_seil(SEILConfig(data=str(demos), env_id=env_id, demos=k, rounds=4, practice_episodes=per_model,
                                 eval_episodes=args.episodes, workers=1, seed=seed), out, progress=False)
    practised = [i for i in EpisodeStore(out / "episodes.h5").index() if i.source == "self"]
    # The curve's x is the env steps practised by the end of each round (round 0 is BC: none).
    curve = [[sum(i.length for i in practised if i.round <= x.round), x.success] for x in rounds]
    last = rounds[-1]
    return {"successes": round(last.success * args.episodes), "episodes": args.episodes, "env_steps": curve[-1][0],
            "curve": curve, "seconds": time.time() - t}


def main() -> None:
    """Run every missing cell, then print the table (and write it with the plot)."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tasks", nargs="+", default=["reach-v3", "push-v3", "pick-place-v3", "peg-insert-side-v3"],
                   choices=MT10 + [t for t in []], metavar="TASK")
    p.add_argument("--ks", nargs="+", type=int, default=[5])
    p.add_argument("--seeds", nargs="+", type=int, default=None,
                   help="training seeds (default: 0; with --table-only, every seed in the cache)")
    p.add_argument("--methods", nargs="+", default=["bc", "practice"], choices=METHODS)
    p.add_argument("--budget", type=int, default=100_000, help="env steps of practice per cell")
    p.add_argument("--eval-every", type=int, default=10_000)
    p.add_argument("--episodes", type=int, default=50, help="evaluation episodes per cell")
    p.add_argument("--set", action="append", default=[], help="PracticeConfig override, e.g. prior=residual")
    p.add_argument("--tag", default="default", help="name of this practice variant's result folder")
    p.add_argument("--bc-tag", default="",
                   help="read BC(k) from bc-<this> (a variant that changes practice, not its prior, e.g. steps-to-go)")
    p.add_argument("--out", type=Path, default=Path("benchmarks/results/practice"))
    p.add_argument("--runs", type=Path, default=Path("runs/benchmarks/practice"))
    p.add_argument("--demos", type=Path, default=Path("runs/benchmarks/demos"))
    p.add_argument("--table-only", action="store_true")
    p.add_argument("--compare", default="",
                   help="another practice tag (e.g. default): its cells join the table, and the table ends with "
                        "the share of that tag's gain over BC(k) this one recovers")
    args = p.parse_args()
    configure_threads(1)  # one thread per process: benchmark processes may run side by side
    print(f"machine: {machine_line()}", flush=True)
    if args.seeds is None:
        found = {int(f.stem.rsplit("_s", 1)[1]) for f in args.out.glob("*/*_k*_s*.json")} if args.table_only else set()
        args.seeds = sorted(found) or [0]
    results: dict[tuple, dict] = {}
    for task in args.tasks:
        demos = args.demos / f"{task}_demos.h5"
        if not args.table_only:
            collect_demos(f"metaworld/{task}", 50, demos, seed=0, workers=1, progress=False)
        for method in args.methods:
            for k in ([50] if method == "bc50" else args.ks):
                for seed in args.seeds:
                    tag = {"practice": args.tag, "bc": bc_tag(args)}.get(method, method)
                    path = args.out / tag / f"{task}_k{k}_s{seed}.json"
                    if args.table_only:
                        res = cached(path)
                    else:
                        res = cell(path, lambda: run_cell(method, args, demos, task, k, seed))
                        print(f"{method:9s} {task:20s} k={k} seed={seed}: {res['successes']}/{res['episodes']}"
                              f" ({res['seconds']:.0f}s)", flush=True)
                    if res is not None:
                        results[(method, task, k, seed)] = res
                    other = args.out / args.compare / f"{task}_k{k}_s{seed}.json"
                    if method == "practice" and args.compare and other.exists():
                        results[("compare", task, k, seed)] = cached(other)
    table = render(results, args)
    print(table)
    if results:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / f"table_{args.tag}.md").write_text(table + "\n")
        plot(results, args, args.out / f"curves_{args.tag}.png")


def plot(results: dict[tuple, dict], args: argparse.Namespace, path: Path) -> None:
    """Success against env steps of practice, one panel per task: each practice seed's curve, BC(k)
    and BC(50) as levels, and SEIL(k)'s rounds at the env steps practised by their end."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks = [t for t in args.tasks if any(key[1] == t for key in results)]
    fig, axes = plt.subplots(1, len(tasks), figsize=(4 * len(tasks), 3.2), dpi=110, squeeze=False)
    for ax, task in zip(axes[0], tasks):
        for (method, t, k, seed), res in sorted(results.items()):
            if t != task:
                continue
            rate = res["successes"] / res["episodes"]
            if method == "practice":
                xs, ys = zip(*res["curve"])
                ax.plot(xs, ys, marker="o", markersize=3, label=f"practice k={k} s{seed}")
            elif method in ("bc", "bc50"):
                ax.axhline(rate, linestyle="--" if method == "bc" else ":", color="grey" if method == "bc" else "k",
                           label=f"{'BC(50)' if method == 'bc50' else f'BC({k})'} s{seed}")
            elif res.get("curve"):
                xs, ys = zip(*res["curve"])
                ax.plot(xs, ys, marker="s", markersize=3, linestyle="--", label=f"SEIL({k}) s{seed}")
        ax.set(title=task, xlabel="env steps of practice", ylabel="success (50 eval episodes)", ylim=(-0.02, 1.02))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def render(results: dict[tuple, dict], args: argparse.Namespace) -> str:
    """One row per (task, k): each method's mean over seeds with its intervals (and ``--compare``'s
    cells, followed by the share of their gain recovered)."""
    methods = [*args.methods, *(["compare"] if args.compare else [])]
    rows = []
    for task in args.tasks:
        for k in args.ks:
            row: list[object] = [task, k]
            for method in methods:
                kk = 50 if method == "bc50" else k
                row.append(summary([v for (m, t, kx, _), v in results.items() if (m, t, kx) == (method, task, kk)]))
            rows.append(row)
    header = ["task", "k", *args.methods, *([f"practice ({args.compare})"] if args.compare else [])]
    return markdown(header, rows) + (recovered(results, args) if args.compare else "")


def recovered(results: dict[tuple, dict], args: argparse.Namespace) -> str:
    """Per k: the mean gain over BC(k) of this tag and of ``--compare``, over the tasks and seeds all three
    cells have, and the share recovered."""
    def rate(method: str, task: str, k: int, seed: int) -> float | None:
        res = results.get((method, task, k, seed))
        return None if res is None else res["successes"] / res["episodes"]

    lines = []
    for k in args.ks:
        pairs = {}  # task -> [(gain, compared gain)] over the seeds that have all three cells
        for (m, task, kx, seed) in results:
            rates = [rate(x, task, k, seed) for x in ("bc", "practice", "compare")]
            if m == "practice" and kx == k and None not in rates:
                pairs.setdefault(task, []).append((rates[1] - rates[0], rates[2] - rates[0]))
        if not pairs:
            continue
        gain = np.mean([np.mean([g for g, _ in v]) for v in pairs.values()])
        other = np.mean([np.mean([c for _, c in v]) for v in pairs.values()])
        seeds = ", ".join(f"{t} {len(v)}" for t, v in pairs.items())
        share = f"{gain / other:.0%}" if other > 0 else "n/a"
        lines.append(f"\n\nk={k}: mean gain over BC(k) {gain:+.2f} against {other:+.2f} for `{args.compare}`, "
                     f"{share} recovered (tasks and seeds: {seeds}).")
    return "".join(lines)


if __name__ == "__main__":
    main()
