"""Threads: BC-style training speed with 1 and 2 torch threads, alone and beside a second job.

The training step is automimic's BC default at the size the issue measured: a 3x256 GELU MLP,
batch 256, Adam, obs 39 -> action 4 (Meta-World's sizes), on random data (speed does not depend on
the data). Every measurement runs in its own fresh process, so one setting cannot leak into the
next; "beside" starts two identical processes that begin timing at the same moment.

    .venv/bin/python benchmarks/threads.py                 # ~4.5 min; writes benchmarks/results/threads.json

The table names the CPU and what else was running (load average, busiest other processes), because
the numbers mean little without them.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

from harness import cpu_model  # noqa: E402 - benchmarks/ is on the path when a script here runs

RESULTS = Path(__file__).resolve().parent / "results" / "threads.json"
#: (label, thread counts of the jobs started together); the first job is the one reported.
CONDITIONS = [
    ("alone", (1,)),
    ("alone", (2,)),
    ("beside a 1-thread job", (1, 1)),
    ("beside a 2-thread job", (2, 2)),
    ("beside a 2-thread job", (1, 2)),
    ("beside a 1-thread job", (2, 1)),
]


def train_speed(threads: int, seconds: float, start_at: float) -> dict:
    """Steps/s of the BC-style training step over ``seconds``, timing from wall-clock ``start_at``."""
    import torch

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    layers, width = [], 39
    for _ in range(3):
        layers += [torch.nn.Linear(width, 256), torch.nn.GELU()]
        width = 256
    net = torch.nn.Sequential(*layers, torch.nn.Linear(width, 4))
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    obs, act = torch.randn(4096, 39), torch.randn(4096, 4)
    gen = torch.Generator().manual_seed(0)

    def step() -> None:
        idx = torch.randint(0, 4096, (256,), generator=gen)
        loss = torch.nn.functional.mse_loss(net(obs[idx]), act[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for _ in range(20):  # warm-up: allocator, thread pool
        step()
    while time.time() < start_at:
        time.sleep(0.01)
    steps, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        step()
        steps += 1
    return {"threads": threads, "steps": steps, "steps_per_s": steps / (time.perf_counter() - t0)}


def busy_processes(exclude: set[int], top: int = 5) -> list[str]:
    """The busiest other processes (``ps``: %CPU averaged over their life, then the command)."""
    try:
        out = subprocess.run(["ps", "-eo", "pid,pcpu,args", "--sort=-pcpu"], capture_output=True, text=True,
                             timeout=10).stdout.splitlines()[1:]
    except (OSError, subprocess.SubprocessError):
        return []
    rows = []
    for line in out:
        pid, pcpu, args = (line.split(None, 2) + ["", ""])[:3]
        if int(pid) in exclude or float(pcpu) < 1.0:
            continue
        rows.append(f"{pcpu:>5}% {args[:100]}")
        if len(rows) == top:
            break
    return rows


def measure(threads: tuple[int, ...], seconds: float) -> list[dict]:
    """Start one process per entry of ``threads`` together; return each one's measurement."""
    start_at = time.time() + 8.0  # time enough for every process to import torch and warm up
    procs = [subprocess.Popen([sys.executable, __file__, "--worker", str(t), "--seconds", str(seconds),
                               "--start-at", str(start_at)], stdout=subprocess.PIPE, text=True)
             for t in threads]
    results = []
    for p in procs:
        out, _ = p.communicate()
        if p.returncode != 0:
            raise RuntimeError(f"benchmark worker exited with {p.returncode}")
        results.append(json.loads(out.strip().splitlines()[-1]))
    return results


def main() -> None:
    """Run every condition, print the table, write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="timed seconds per measurement")
    parser.add_argument("--repeats", type=int, default=2, help="measurements per condition (the median is reported)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--label", default="latest",
                        help="name of this run in the results file (e.g. 'quiet', 'beside other work')")
    parser.add_argument("--worker", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--start-at", type=float, default=0.0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(train_speed(args.worker, args.seconds, args.start_at)))
        return

    me = {os.getpid()}
    context = {"cpu": cpu_model(), "cores": os.cpu_count(), "date": time.strftime("%Y-%m-%d %H:%M"),
               "python": platform.python_version(), "load_before": os.getloadavg(),
               "other_processes_before": busy_processes(me)}
    import torch

    context["torch"] = torch.__version__
    rows = []
    for label, threads in CONDITIONS:
        runs = [measure(threads, args.seconds) for _ in range(args.repeats)]
        mine = sorted(run[0]["steps_per_s"] for run in runs)
        rows.append({"threads": threads[0], "condition": label, "steps_per_s": statistics.median(mine),
                     "range": [mine[0], mine[-1]], "runs": mine,
                     "others_steps_per_s": [statistics.median(run[j]["steps_per_s"] for run in runs)
                                            for j in range(1, len(threads))]})
    context["load_after"] = os.getloadavg()
    context["other_processes_after"] = busy_processes(me)
    solo = {r["threads"]: r["steps_per_s"] for r in rows if r["condition"] == "alone"}
    for r in rows:
        # Against its own solo speed (the criterion: >= 1/3) and against the fastest solo setting.
        r["fraction_of_solo"] = r["steps_per_s"] / solo[r["threads"]]
        r["fraction_of_best_solo"] = r["steps_per_s"] / max(solo.values())

    print(f"CPU: {context['cpu']} ({context['cores']} cores), torch {context['torch']}, {context['date']}")
    print(f"load average before {tuple(round(x, 2) for x in context['load_before'])}, "
          f"after {tuple(round(x, 2) for x in context['load_after'])}")
    for line in context["other_processes_before"]:
        print(f"  running before: {line}")
    print(f"{'threads':>7}  {'condition':<24} {'steps/s':>8}  {'range':>11}  {'of solo':>7}  {'of best':>7}  "
          "other job steps/s")
    for r in rows:
        others = ", ".join(f"{x:.0f}" for x in r["others_steps_per_s"]) or "-"
        spread = f"{r['range'][0]:.0f}-{r['range'][1]:.0f}"
        print(f"{r['threads']:>7}  {r['condition']:<24} {r['steps_per_s']:>8.1f}  {spread:>11}  "
              f"{r['fraction_of_solo']:>7.2f}  {r['fraction_of_best_solo']:>7.2f}  {others}")
    # One file, one entry per label: a run beside other work and a run on a quiet machine both stay.
    args.out.parent.mkdir(parents=True, exist_ok=True)
    saved = json.loads(args.out.read_text()) if args.out.exists() else {"runs": {}}
    saved["runs"][args.label] = {"context": context, "seconds": args.seconds, "repeats": args.repeats, "rows": rows}
    args.out.write_text(json.dumps(saved, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
