"""Multi-task pretraining on Meta-World ML45, few-shot adaptation to its 5 test tasks, and the multi-task policy.

    python benchmarks/multitask.py pretrain                       # ML45-train pretraining (seed 0), timed
    python benchmarks/multitask.py fewshot --seeds 0 1 2          # BC(k) from scratch vs from the pretrained start
    python benchmarks/multitask.py detector --seeds 0 1 2         # steps-to-go detector of the adapted head
    python benchmarks/multitask.py practice --tasks door-lock-v3  # success vs steps-to-go practice from the start
    python benchmarks/multitask.py suite --suite mt10             # one policy on MT10 from 50 demos per task
    python benchmarks/multitask.py timing --policies mlp act diffusion  # pretraining throughput per class
    python benchmarks/multitask.py table                          # tables from the cache only

Stages and their cells (each a JSON under ``benchmarks/results/multitask/<stage>/``, committed, so
an interrupted run resumes; run folders go to ``--runs``):

* ``pretrain``: ``automimic pretrain`` on ML45's 45 training tasks, 50 demos each, an MLP with a
  steps-to-go head; the cell records how the wall time divided between recording and training.
* ``fewshot``: per test task (bin-picking, box-close, door-lock, door-unlock, hand-insert) and
  training seed: BC(1), BC(5), BC(50) from scratch, and BC(1), BC(5) from the pretrained policy
  with a full and an embedding-only fine-tune; 50 evaluation episodes each. The k demos are spread
  over 50 recorded per task (the same protocol as ``benchmarks/practice.py``).
* ``detector``: the fine-tuned BC(5) policy's steps-to-go detector, calibrated on 50 held-out
  rollouts with action noise 0.3 (``automimic calibrate``'s protocol): precision and recall at the
  calibrated threshold, and the best precision at recall >= 0.5.
* ``practice``: off-policy practice (``improve practice --init``) from the pretrained BC(5) start,
  with the simulator's success as reward and with the steps-to-go reward (which reads no success);
  ``steps-to-go`` fine-tunes the pretrained head on the trunk (its better detector),
  ``steps-to-go-detached`` detached (the success run's better BC start).
* ``suite``: ``automimic pretrain`` on a whole suite (MT10, MT50) and ``eval --suite`` on it: the
  multi-task policy's success per task, per difficulty tier, and the mean.
* ``--pretrain-steps`` and ``--pretrain-head detached|none`` (the steps-to-go head off the trunk, or
  no head) give any stage a variant pretraining, with its own cells and run folders (for example
  ``fewshot-head-detached/``); it trains on the default pretraining's recording when that exists.
* ``timing``: per policy class, ``--timing-steps`` training steps of the ML45 pretraining (its
  recording copied, its batch of 512 rows), timed from the training loop's samples/s; the full
  pretraining's training time is projected from it (a projection, labelled so: a full ACT or
  Diffusion Policy pretraining does not fit a session on two cores).

Every process uses one torch thread. Timings name the CPU and the load average when written.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
from harness import cached, cell, machine_line, markdown, summary, task_mean

from automimic.algos.bc import BCConfig, train_bc
from automimic.algos.calibration import choose_threshold, precision_recall
from automimic.algos.pretrain import PRETRAIN_TRAIN, PretrainConfig, run_pretrain
from automimic.envs.suites import suite_tasks
from automimic.evaluation.evaluate import EvalResult, evaluate
from automimic.evaluation.multitask import MultiTaskResult, evaluate_tasks
from automimic.policies import load_policy
from automimic.policies.steps_to_go_head import StepsToGoHeadConfig
from automimic.rollout.collect import collect_demos
from automimic.threads import configure_threads
from automimic.training.loop import TrainConfig

TEST_TASKS = [t.split("/", 1)[1] for t in suite_tasks("ml45-test")]
#: BC settings of every few-shot cell (from scratch: the practice benchmark's BC(50) settings).
SCRATCH_TRAIN = TrainConfig(steps=5000)
#: Fine-tuning a pretrained policy on k demos: fewer steps, so a few demos do not wash out the start.
FINETUNE_TRAIN = TrainConfig(steps=2000)
#: Cells measured before fine-tuning detached the pretrained steps-to-go head (before commit 0a7bcbd):
#: kept as the record the docs compare with; the current code does not recompute them.
RECORD = {"fewshot": "fewshot-shared-head", "detector": "detector-shared-head", "practice": "practice-shared-head"}
FEWSHOT = [("scratch", 1), ("scratch", 5), ("scratch", 50), ("full", 1), ("full", 5), ("embedding", 1),
           ("embedding", 5)]


def steps_label(args: argparse.Namespace) -> str:
    """``""`` for the default pretraining, else ``-steps<N>`` and/or ``-head-<kind>`` (its own cells and folders)."""
    steps = "" if args.pretrain_steps == PRETRAIN_TRAIN["steps"] else f"-steps{args.pretrain_steps}"
    return steps + ("" if args.pretrain_head == "shared" else f"-head-{args.pretrain_head}")


def stage_dir(args: argparse.Namespace, stage: str, root: Path | None = None) -> Path:
    """Cells (``root`` = ``args.out``) or run folders (``args.runs``) of ``stage`` from this pretraining:
    a non-default pretraining (``--pretrain-steps``, ``--pretrain-head``) gets its own, so its cells never
    answer for the default's."""
    return (args.out if root is None else root) / f"{stage}{steps_label(args)}"


def ml45_recording(args: argparse.Namespace, seed: int) -> Path:
    """The ML45 pretraining's recorded demos (whatever steps that run trained), which MT50 and the
    timing stage reuse instead of recording them again."""
    return args.runs / f"pretrain-ml45-train_s{seed}" / "demos.h5"


def pretrain_dir(args: argparse.Namespace, seed: int, suite: str = "ml45-train") -> Path:
    """Run folder of a pretraining."""
    return args.runs / f"pretrain-{suite}{steps_label(args)}_s{seed}"


def pretrain_cell(args: argparse.Namespace, seed: int, suite: str = "ml45-train") -> dict[str, Any]:
    """Record and train (resumable); the cell holds the timing split."""
    out = pretrain_dir(args, seed, suite)
    default = args.runs / f"pretrain-{suite}_s{seed}" / "demos.h5"
    if out.name != default.parent.name and default.exists() and not (out / "demos.h5").exists():
        # A variant pretraining trains on the default's recording (same tasks, same collect seeds):
        # copied, so its cell's recording time is ~0 and the comparison is on training alone.
        import shutil

        out.mkdir(parents=True, exist_ok=True)
        shutil.copy(default, out / "demos.h5")
    t = time.time()
    train = TrainConfig(**{**PRETRAIN_TRAIN, "steps": args.pretrain_steps})
    head = StepsToGoHeadConfig(detach=args.pretrain_head == "detached")
    run_pretrain(PretrainConfig(tasks=suite, demos_per_task=50, workers=args.workers, seed=seed, train=train,
                                steps_to_go=args.pretrain_head != "none", steps_to_go_head=head), out, progress=False)
    timing = json.loads((out / "timing.json").read_text())
    return {**timing, "seconds": time.time() - t, "workers": args.workers}


def demos_of(args: argparse.Namespace, task: str) -> Path:
    """50 recorded expert demos of a test task (recorded once; seed 0's collection block)."""
    path = args.demos / f"{task}_demos.h5"
    collect_demos(f"metaworld/{task}", 50, path, seed=0, workers=1, progress=False)
    return path


def fewshot_cell(args: argparse.Namespace, task: str, mode: str, k: int, seed: int) -> dict[str, Any]:
    """BC(k) on ``task`` from scratch or fine-tuned from the pretrained policy; 50 evaluation episodes."""
    t = time.time()
    data = str(demos_of(args, task))
    out = stage_dir(args, "fewshot", args.runs) / f"{task}_{mode}_k{k}_s{seed}"
    if mode == "scratch":
        cfg = BCConfig(data=data, episodes=k, train=SCRATCH_TRAIN, seed=seed)
    else:
        cfg = BCConfig(data=data, episodes=k, train=FINETUNE_TRAIN, seed=seed,
                       init=str(pretrain_dir(args, args.pretrain_seed)), finetune=mode)
    policy = train_bc(cfg, out, progress=False)
    r = evaluate(policy, f"metaworld/{task}", args.episodes, seed=seed, workers=1, progress=False)
    return {"successes": r.successes, "episodes": r.episodes, "seconds": time.time() - t,
            "train": dataclasses.asdict(cfg.train)}


def detector_cell(args: argparse.Namespace, task: str, seed: int) -> dict[str, Any]:
    """Calibrate the fine-tuned BC(5) (full) policy's steps-to-go detector on held-out rollouts."""
    from automimic.algos.calibration import default_tolerance
    from automimic.algos.learned_reward import LearnedReward
    from automimic.rollout.actors import ActorSpec
    from automimic.rollout.collector import run_episodes
    from automimic.rollout.workers import RolloutJob
    from automimic.seeding import episode_seeds

    t = time.time()
    cell(stage_dir(args, "fewshot") / f"{task}_full_k5_s{seed}.json", lambda: fewshot_cell(args, task, "full", 5, seed))
    policy = load_policy(stage_dir(args, "fewshot", args.runs) / f"{task}_full_k5_s{seed}" / "checkpoints" / "best.pt")
    env_id = f"metaworld/{task}"
    job = RolloutJob(env_id, ActorSpec.policy(policy, name="sft", action_noise=0.3), {}, source="self")
    rollouts = run_episodes(job, episode_seeds("calibrate", seed, 50), 1)
    d = [LearnedReward(policy, threshold=0.0).episode_steps_to_go(e) for e in rollouts]
    ok = [e.success for e in rollouts]
    tol = default_tolerance(policy)
    s = choose_threshold(d, ok, tol)
    p, r = precision_recall(d, ok, s, tol)
    # The best precision among thresholds that keep recall >= 0.5 (the operating point).
    best = max((precision_recall(d, ok, c, tol) for c in _cuts(d)), key=lambda pr: (pr[1] >= 0.5, pr[0]))
    return {"threshold": s, "precision": p, "recall": r, "precision_at_recall_0.5": best[0] if best[1] >= 0.5 else None,
            "recall_there": best[1], "successes": int(sum(ok)), "episodes": len(ok), "tolerance": tol,
            "seconds": time.time() - t}


def _cuts(d: list) -> list[float]:
    values = np.unique(np.concatenate([np.asarray(x, dtype=np.float64) for x in d]))
    return [float((a + b) / 2) for a, b in zip(values[:-1], values[1:])]


def practice_cell(args: argparse.Namespace, task: str, reward: str, seed: int) -> dict[str, Any]:
    """Off-policy practice from the pretrained start fine-tuned on 5 demos, with ``reward``."""
    from automimic.algos.practice import PracticeConfig, run_practice

    from automimic.algos.practice_rewards import LearnedRewardConfig

    t = time.time()
    # "steps-to-go-detached": the SFT stage fine-tunes the pretrained head detached (the better BC
    # start) instead of on the trunk (the better detector).
    head = "detached" if reward == "steps-to-go-detached" else "shared"
    cfg = PracticeConfig(data=str(demos_of(args, task)), env_id=f"metaworld/{task}", demos=5,
                         reward=reward.removesuffix("-detached"), budget=args.budget, eval_every=args.budget // 5,
                         eval_episodes=args.episodes, seed=seed, init=str(pretrain_dir(args, args.pretrain_seed)),
                         bc=FINETUNE_TRAIN, learned_reward=LearnedRewardConfig(pretrained_head=head))
    out = stage_dir(args, "practice", args.runs) / f"{task}_{reward}_s{seed}"
    rows = run_practice(cfg, out, progress=False,
                        on_row=lambda row: print(f"  {task} {reward} s={seed}: {row.line()}", flush=True))
    return {"successes": round(rows[-1].success * args.episodes), "episodes": args.episodes,
            "start": rows[0].success, "env_steps": rows[-1].env_steps,
            "curve": [[r.env_steps, r.success] for r in rows], "seconds": time.time() - t}


def suite_cell(args: argparse.Namespace, suite: str, seed: int) -> dict[str, Any]:
    """Pretrain on the whole ``suite`` and evaluate the one policy on each of its tasks."""
    out = pretrain_dir(args, seed, suite)
    ml45 = ml45_recording(args, seed)
    if suite == "mt50" and ml45.exists() and not (out / "demos.h5").exists():
        # MT50 = ML45's train + test tasks, recorded from the same collect seeds: the ML45 pretraining's
        # 45 tasks are copied rather than recorded again (the recording time counts only the 5 new ones).
        import shutil

        out.mkdir(parents=True, exist_ok=True)
        shutil.copy(ml45, out / "demos.h5")
    cell(args.out / "suite" / f"pretrain-{suite}{steps_label(args)}_s{seed}.json",
         lambda: pretrain_cell(args, seed, suite))
    policy = load_policy(out / "checkpoints" / "best.pt")
    t = time.time()
    result = evaluate_tasks(policy, suite_tasks(suite), args.episodes, seed=seed, workers=args.workers,
                            cache=out / f"eval_{suite}.cache.json", key=f"best:{suite}:{seed}", progress=False)
    return {**result.to_dict(), "eval_seconds": time.time() - t}


def timing_cell(args: argparse.Namespace, policy: str) -> dict[str, Any]:
    """Training throughput of a ``policy``-class ML45 pretraining, and the projected full training time."""
    import shutil

    out = args.runs / f"timing-{policy}_s{args.pretrain_seed}"
    ml45 = ml45_recording(args, args.pretrain_seed)
    if not (out / "demos.h5").exists():
        if not ml45.exists():
            raise SystemExit(f"{ml45}: run the pretrain stage first (its recording is what is trained on)")
        out.mkdir(parents=True, exist_ok=True)
        shutil.copy(ml45, out / "demos.h5")
    log_every = max(args.timing_steps // 4, 1)
    train = TrainConfig(**{**PRETRAIN_TRAIN, "steps": args.timing_steps, "log_every": log_every,
                           "checkpoint_every": 10 ** 9})
    run_pretrain(PretrainConfig(policy=policy, train=train, seed=args.pretrain_seed, workers=args.workers), out,
                 progress=False)
    rates = [json.loads(line)["samples_per_s"] for line in (out / "metrics.jsonl").read_text().splitlines()
             if "samples_per_s" in line]
    rate = float(np.median(rates[1:] or rates))  # the first interval carries the start-up
    full = PRETRAIN_TRAIN["steps"] * PRETRAIN_TRAIN["batch_size"]
    return {"policy": policy, "steps": args.timing_steps, "batch_size": train.batch_size, "samples_per_s": rate,
            "projected_train_min": full / rate / 60, "projected_for": f"{PRETRAIN_TRAIN['steps']} x "
                                                                  f"{PRETRAIN_TRAIN['batch_size']}"}


def render(args: argparse.Namespace) -> str:
    """The tables, from the cached cells only."""
    parts = []
    for seed_file in sorted([*(args.out / "pretrain").glob("*.json"), *(args.out / "suite").glob("pretrain-*.json")]):
        c = cached(seed_file)
        parts.append(f"Pretraining {seed_file.stem}: {c['tasks']} tasks, {c['episodes']} episodes, {c['steps']} steps; "
                     f"recording {c['record_s'] / 60:.1f} min ({c['workers']} workers), training "
                     f"{c['train_s'] / 60:.1f} min; {c['machine']}")
    # Current variants, then the record of full fine-tuning with the shared head (before it was detached).
    columns = [(f"{m} BC({k})", "fewshot", m, k) for m, k in FEWSHOT]
    columns += [(f"full, shared head BC({k}) (record)", RECORD["fewshot"], "full", k) for k in (1, 5)]
    # Few-shot cells from other pretrainings (``--pretrain-head``, ``--pretrain-steps``), whichever were run.
    columns += [(f"full BC({k}), pretraining {folder.name.removeprefix('fewshot-')}", folder.name, "full", k)
                for folder in sorted(args.out.glob("fewshot-*")) if folder.name != RECORD["fewshot"] for k in (1, 5)
                if any(folder.glob(f"*_full_k{k}_s*.json"))]
    rows = []
    for task in TEST_TASKS:
        row = [task]
        for _, folder, mode, k in columns:
            row.append(summary([c for s in range(10)
                                if (c := cached(args.out / folder / f"{task}_{mode}_k{k}_s{s}.json"))]))
        rows.append(row)
    rows.append(["**mean over tasks**", *(_task_mean(args, mode, k, folder) for _, folder, mode, k in columns)])
    parts.append(markdown(["task"] + [label for label, *_ in columns], rows))
    det = [[f"{f.stem}{note}", f"{c['precision']:.2f} / {c['recall']:.2f}", _fmt(c.get("precision_at_recall_0.5")),
            f"{c['successes']}/{c['episodes']}"]
           for folder, note in (("detector", ""), (RECORD["detector"], " (shared head, record)"))
           for f in sorted((args.out / folder).glob("*.json")) if (c := cached(f))]
    if det:
        parts.append(markdown(["cell", "precision / recall (calibrated)", "precision at recall >= 0.5",
                               "successful held-out rollouts"], det))
    prac = [[f"{f.stem}{note}", f"{c['start']:.2f}", f"{c['successes'] / c['episodes']:.2f}", c["env_steps"]]
            for folder, note in (("practice", ""), (RECORD["practice"], " (shared head, record)"))
            for f in sorted((args.out / folder).glob("*.json")) if (c := cached(f))]
    if prac:
        parts.append(markdown(["cell", "start (fine-tuned BC(5))", "after practice", "env steps"], prac))
    timing = [[c["policy"], f"{c['samples_per_s']:.0f}", f"{c['projected_train_min']:.0f} min ({c['projected_for']})",
               c["machine"]] for f in sorted((args.out / "timing").glob("*.json")) if (c := cached(f))]
    if timing:
        parts.append(markdown(["policy class", "training samples/s (ML45, batch 512)",
                               "projected training time of the full pretraining", "measured on"], timing))
    for f in sorted((args.out / "suite").glob("*.json")):
        c = cached(f)
        if "mean" in c:
            result = MultiTaskResult([EvalResult(**r) for r in c["tasks"]], c["seed"], c["horizon"],
                                     c["deterministic"], c["key"])
            parts.append(f"**{f.stem}** (one policy for all tasks, 50 demos per task):\n\n{result.markdown()}")
    return "\n\n".join(parts)


def _task_mean(args: argparse.Namespace, mode: str, k: int, folder: str = "fewshot") -> str:
    """Mean over the test tasks of each seed's success (:func:`harness.task_mean`)."""
    def by_seed(task: str) -> dict[int, dict[str, Any]]:
        return {s: c for s in range(10) if (c := cached(args.out / folder / f"{task}_{mode}_k{k}_s{s}.json"))}

    return task_mean({task: by_seed(task) for task in TEST_TASKS})


def _fmt(x: float | None) -> str:
    return "-" if x is None else f"{x:.2f}"


def parser() -> argparse.ArgumentParser:
    """The command line of every stage."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("stage", choices=["pretrain", "fewshot", "detector", "practice", "suite", "timing", "table"])
    p.add_argument("--tasks", nargs="+", default=TEST_TASKS)
    p.add_argument("--seeds", nargs="+", type=int, default=[0])
    p.add_argument("--modes", nargs="+", default=[f"{m}:{k}" for m, k in FEWSHOT],
                   help="few-shot cells as mode:k (scratch, full, embedding)")
    p.add_argument("--pretrain-seed", type=int, default=0)
    p.add_argument("--rewards", nargs="+", default=["success", "steps-to-go"],
                   help="practice stage: success, steps-to-go (head fine-tuned shared) or steps-to-go-detached")
    p.add_argument("--budget", type=int, default=100_000)
    p.add_argument("--suite", default="mt10")
    p.add_argument("--pretrain-steps", type=int, default=PRETRAIN_TRAIN["steps"],
                   help="training steps of the pretraining (other than the default: own cells and run folders)")
    p.add_argument("--pretrain-head", choices=["shared", "detached", "none"], default="shared",
                   help="the pretraining's steps-to-go head on the trunk (default), detached from it, or none "
                        "(other than the default: own cells and run folders)")
    p.add_argument("--policies", nargs="+", default=["mlp", "act", "diffusion"])
    p.add_argument("--timing-steps", type=int, default=200, help="training steps timed per policy class")
    p.add_argument("--episodes", type=int, default=50)
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--out", type=Path, default=Path("benchmarks/results/multitask"))
    p.add_argument("--runs", type=Path, default=Path("runs/benchmarks/multitask"))
    p.add_argument("--demos", type=Path, default=Path("runs/benchmarks/demos"))
    return p


def main() -> None:
    """Run the missing cells of one stage, then write the tables."""
    args = parser().parse_args()
    configure_threads(1)
    print(f"machine: {machine_line()}", flush=True)
    if args.stage == "pretrain":
        for seed in args.seeds:
            res = cell(args.out / "pretrain" / f"ml45-train{steps_label(args)}_s{seed}.json",
                       lambda: pretrain_cell(args, seed))
            print(f"pretrain seed {seed}: record {res['record_s']:.0f}s, train {res['train_s']:.0f}s", flush=True)
    elif args.stage == "fewshot":
        for task in args.tasks:
            for spec in args.modes:
                mode, k = spec.split(":")
                for seed in args.seeds:
                    res = cell(stage_dir(args, "fewshot") / f"{task}_{mode}_k{k}_s{seed}.json",
                               lambda: fewshot_cell(args, task, mode, int(k), seed))
                    print(f"{task:16s} {mode:9s} k={k:2s} s={seed}: {res['successes']}/{res['episodes']} "
                          f"({res['seconds']:.0f}s)", flush=True)
    elif args.stage == "detector":
        for task in args.tasks:
            for seed in args.seeds:
                res = cell(stage_dir(args, "detector") / f"{task}_s{seed}.json", lambda: detector_cell(args, task, seed))
                print(f"{task:16s} s={seed}: precision {res['precision']:.2f} recall {res['recall']:.2f}", flush=True)
    elif args.stage == "practice":
        for task in args.tasks:
            for reward in args.rewards:
                for seed in args.seeds:
                    res = cell(stage_dir(args, "practice") / f"{task}_{reward}_s{seed}.json",
                               lambda: practice_cell(args, task, reward, seed))
                    print(f"{task:16s} {reward:12s} s={seed}: {res['start']:.2f} -> "
                          f"{res['successes'] / res['episodes']:.2f}", flush=True)
    elif args.stage == "suite":
        for seed in args.seeds:
            res = cell(args.out / "suite" / f"{args.suite}{steps_label(args)}_s{seed}.json",
                       lambda: suite_cell(args, args.suite, seed))
            print(f"{args.suite} s={seed}: mean {res['mean']}", flush=True)
    elif args.stage == "timing":
        for policy in args.policies:
            res = cell(args.out / "timing" / f"{policy}_s{args.pretrain_seed}.json", lambda: timing_cell(args, policy))
            print(f"{policy}: {res['samples_per_s']:.0f} samples/s, full training ~{res['projected_train_min']:.0f} min",
                  flush=True)
    table = render(args)
    print(table)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "table.md").write_text(table + "\n")


if __name__ == "__main__":
    main()
