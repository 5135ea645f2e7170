"""MLP vs ACT vs Diffusion Policy by BC on MT10 tasks (state observations), plus one image row.

    python benchmarks/policies.py                                  # 4 tasks x k = 5, 50 x 3 policies + image row
    python benchmarks/policies.py --tasks push-v3 --ks 5 --policies act --no-image   # one cell
    python benchmarks/policies.py --table-only                     # the table of what has finished

Every policy trains for the same number of steps at the same batch size on the same k demos
(spread evenly over the 50 recorded by benchmarks/bc_fewshot.py, so the BC table's MLP numbers are
comparable) and is evaluated on the same 50 evaluation seeds. Reported per cell: success with its
95% interval, training throughput (samples/s, one torch thread) and inference latency per executed
action (ms, one env, one thread: a chunked policy's query cost is spread over the actions it yields).
The image row trains ACT on 'proprio' (hand position, gripper) plus a corner camera (--image-size,
random crops of 90%), so the object and goal positions come from pixels only. Cells are cached as JSON under --out and resume.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from automimic.algos.bc import fit_policy, select_episodes
from automimic.data.store import EpisodeStore
from automimic.data.transitions import flatten_obs
from automimic.evaluation.evaluate import evaluate
from automimic.policies import Policy
from automimic.rollout.chunking import ChunkRunner
from automimic.rollout.collect import collect_demos
from automimic.training.loop import TrainConfig
from automimic.threads import configure_threads

TASKS = ["push-v3", "pick-place-v3", "reach-v3", "drawer-open-v3"]
POLICIES = {"mlp": {}, "act": {}, "diffusion": {}}
IMAGE_TASKS = ["button-press-topdown-v3", "drawer-close-v3"]


def latency_ms(policy: Policy, episode_obs: dict[str, np.ndarray], steps: int = 200) -> float:
    """Mean wall time per executed action when the rollout engine runs ``policy`` over recorded observations."""
    runner = ChunkRunner(policy)
    flat = flatten_obs(episode_obs, policy.obs_keys)
    images = {k: episode_obs[k] for k in policy.image_keys}
    torch.manual_seed(0)
    t = time.perf_counter()
    for i in range(steps):
        j = i % len(flat)
        runner.act(flat[j: j + 1], {k: v[j: j + 1] for k, v in images.items()})
    return 1000 * (time.perf_counter() - t) / steps


def run_cell(name: str, task: str, k: int, demos: Path, policy: str, policy_config: dict, args) -> dict:
    """Train, time and evaluate one cell."""
    episodes = select_episodes(EpisodeStore(demos).episodes(), k)
    train = TrainConfig(steps=args.steps, batch_size=args.batch, log_every=max(1, args.steps // 10),
                        checkpoint_every=max(1, args.steps // 4))
    t = time.time()
    model = fit_policy(episodes, f"metaworld/{task}", args.out / "runs" / name, policy=policy,
                       policy_config=policy_config, train=train, seed=args.seed, progress=False)
    train_s = time.time() - t
    model.eval()
    ms = latency_ms(model, episodes[0].obs)
    r = evaluate(model, f"metaworld/{task}", args.episodes, seed=args.seed, workers=args.workers, progress=False)
    return {"task": task, "k": k, "policy": name.split("__")[-1], "success": r.success_rate,
            "ci": [r.ci_low, r.ci_high], "samples_per_s": args.steps * args.batch / train_s, "train_s": train_s,
            "latency_ms": ms, "eval_s": time.time() - t - train_s}


def render(cells: list[dict]) -> str:
    """The Markdown table."""
    lines = ["| task | k | policy | success [95% CI] | train samples/s | ms / action | train s |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for c in cells:
        lines.append(f"| {c['task']} | {c['k']} | {c['policy']} | {c['success']:.2f} [{c['ci'][0]:.2f}, "
                     f"{c['ci'][1]:.2f}] | {c['samples_per_s']:.0f} | {c['latency_ms']:.2f} | {c['train_s']:.0f} |")
    return "\n".join(lines)


def main() -> None:
    """Run the missing cells and print the table."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tasks", nargs="*", default=TASKS, help="state-observation tasks (none: only the image row)")
    p.add_argument("--ks", nargs="+", type=int, default=[5, 50])
    p.add_argument("--policies", nargs="+", default=list(POLICIES), choices=list(POLICIES))
    p.add_argument("--steps", type=int, default=3000, help="training steps, equal for every policy")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--episodes", type=int, default=50, help="evaluation episodes per cell")
    p.add_argument("--image-task", default="button-press-topdown-v3")
    p.add_argument("--image-size", type=int, default=84, help="camera frame side (the crop is 90%% of it)")
    p.add_argument("--image-steps", type=int, default=3000)
    p.add_argument("--image-batch", type=int, default=32)
    p.add_argument("--no-image", action="store_true", help="skip the image-observation row")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--demos", type=Path, default=Path("runs/benchmarks/demos"))
    p.add_argument("--out", type=Path, default=Path("benchmarks/results/policies"))
    p.add_argument("--table-only", action="store_true")
    args = p.parse_args()
    configure_threads()  # $AUTOMIMIC_THREADS, else 1: see automimic.threads
    args.out.mkdir(parents=True, exist_ok=True)
    if not args.table_only:
        for task in args.tasks:
            demos = args.demos / f"{task}_demos.h5"
            collect_demos(f"metaworld/{task}", 50, demos, seed=args.seed, workers=args.workers, progress=False)
            for k in args.ks:
                for policy in args.policies:
                    name = f"{task}_k{k}__{policy}"
                    cell = args.out / f"{name}.json"
                    if not cell.exists():
                        cell.write_text(json.dumps(run_cell(name, task, k, demos, policy, POLICIES[policy], args)))
                    print(render([json.loads(cell.read_text())]).splitlines()[-1], flush=True)
        if not args.no_image:
            task, size = args.image_task, args.image_size
            demos = args.out / f"{task}_corner{size}_demos.h5"
            collect_demos(f"metaworld/{task}", 50, demos, seed=args.seed, workers=args.workers,
                          cameras=["corner"], image_size=size, progress=False)
            name = f"{task}_k50__act+image{size}"
            cell = args.out / f"{name}.json"
            if not cell.exists():
                config = {"obs_keys": ["proprio"], "image_keys": ["corner_image"], "image_size": size,
                          "crop_size": int(0.9 * size)}
                image_args = argparse.Namespace(**{**vars(args), "steps": args.image_steps, "batch": args.image_batch})
                cell.write_text(json.dumps(run_cell(name, task, 50, demos, "act", config, image_args)))
            print(render([json.loads(cell.read_text())]).splitlines()[-1], flush=True)
    cells = [json.loads(f.read_text()) for f in sorted(args.out.glob("*.json"))]
    order = {t: i for i, t in enumerate(TASKS + IMAGE_TASKS)}
    cells.sort(key=lambda c: (order.get(c["task"], 99), c["k"], c["policy"]))
    print(render(cells))


if __name__ == "__main__":
    main()
