"""Do independently trained steps-to-go heads agree where off-policy practice gamed one head?

    python benchmarks/stg_ensemble_probe.py            # the four practice tasks; writes the table

Reads the run folders of the steps-to-go practice cells (seed 0; run them first with
``python benchmarks/practice.py --methods practice --budget 50000 --set reward=steps-to-go --tag steps-to-go``):
their frozen BC prior (``bc/``) and their practice episodes (``practice.h5``). Five heads are
trained afresh on the prior's (detached) features of the same 5 demos (labels ``T - t``; 2,000 Adam
steps at 1e-3, batches of 256, seeds 100-104), then ``d`` is read at the final states of: the 45
held-out demos (true goals), their first and middle states, and the first and last 40 practice
episodes (the last ones are where practice ended up gaming the single head). Writes
``benchmarks/results/practice/stg_ensemble_probe.md``. One torch thread; no simulator is stepped.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from harness import machine_line, markdown  # benchmarks/ is on the path

from automimic.algos.bc import select_episodes  # noqa: E402
from automimic.data.store import EpisodeStore  # noqa: E402
from automimic.data.transitions import flatten_obs, steps_to_go_labels  # noqa: E402
from automimic.policies import load_policy  # noqa: E402
from automimic.policies.steps_to_go_head import StepsToGoHead, StepsToGoHeadConfig  # noqa: E402
from automimic.threads import configure_threads  # noqa: E402

TASKS = ["push-v3", "reach-v3", "pick-place-v3", "peg-insert-side-v3"]


def fresh_heads(features: torch.Tensor, labels: torch.Tensor, n: int = 5) -> list[StepsToGoHead]:
    """``n`` heads trained from different initialisations on the same labelled features."""
    heads = []
    for k in range(n):
        torch.manual_seed(100 + k)
        head = StepsToGoHead(StepsToGoHeadConfig(), features.shape[1])
        opt = torch.optim.Adam(head.parameters(), 1e-3)
        g = torch.Generator().manual_seed(k)
        for _ in range(2000):
            idx = torch.randint(len(features), (256,), generator=g)
            loss = head.loss(features[idx], labels[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
        heads.append(head.eval())
    return heads


def probe(task: str, runs: Path, demos_dir: Path) -> list[list[object]]:
    """Rows (task, group, n, the practised head's d, the fresh heads' mean d and std) for one task."""
    run = runs / f"{task}_k5_s0"
    prior = load_policy(run / "bc" / "checkpoints" / "last.pt").eval()
    keys = prior.obs_keys
    demos = EpisodeStore(demos_dir / f"{task}_demos.h5").episodes()
    train = select_episodes(demos, 5)  # the practice run's 5 demos
    held = [d for d in demos if not any(d is t for t in train)]
    obs = torch.as_tensor(np.concatenate([flatten_obs(d.obs, keys) for d in train]), dtype=torch.float32)
    labels = torch.as_tensor(np.concatenate([steps_to_go_labels(d.length, True) for d in train]))
    with torch.no_grad():
        features = prior.features(obs)
    heads = fresh_heads(features, labels)

    def final(ep):
        return flatten_obs({k: v[None] for k, v in ep.final_obs.items()}, keys)

    practice = EpisodeStore(run / "practice.h5").episodes()
    groups = {"held-out demos, goal state": [final(d) for d in held],
              "held-out demos, first state": [flatten_obs(d.obs, keys)[:1] for d in held],
              "held-out demos, middle state": [flatten_obs(d.obs, keys)[d.length // 2][None] for d in held],
              "first 40 practice episodes, last state": [final(e) for e in practice[:40]],
              "last 40 practice episodes, last state": [final(e) for e in practice[-40:]]}
    rows = []
    for name, states in groups.items():
        x = torch.as_tensor(np.concatenate(states), dtype=torch.float32)
        with torch.no_grad():
            f = prior.features(x)
            d = torch.stack([h.expected(h(f)) for h in heads])
            own = prior.expected_steps_to_go(x)
        rows.append([task, name, len(x), f"{own.mean():.1f}", f"{d.mean(0).mean():.1f}", f"{d.std(0).mean():.2f}"])
    return rows


def main() -> None:
    """Probe every task and write the table."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tasks", nargs="+", default=TASKS)
    p.add_argument("--runs", type=Path, default=Path("runs/benchmarks/practice/steps-to-go"))
    p.add_argument("--demos", type=Path, default=Path("runs/benchmarks/demos"))
    p.add_argument("--out", type=Path, default=Path("benchmarks/results/practice/stg_ensemble_probe.md"))
    args = p.parse_args()
    configure_threads(1)
    rows = [row for task in args.tasks for row in probe(task, args.runs, args.demos)]
    table = markdown(["task", "states", "n", "d, practised head", "d, 5 fresh heads (mean)", "std over them"], rows)
    text = f"{table}\n\nmachine: {machine_line()}\n"
    print(text)
    args.out.write_text(text)


if __name__ == "__main__":
    main()
