"""Where the test suite's learned-behaviour thresholds come from: each measured over several seeds.

A threshold set from one run on one CPU sits inside the spread of float results across CPUs (a
different CPU, BLAS or thread count changes the bits, and training amplifies them). A different
seed moves a result at least as far as different float bits do, so each threshold in the tests
is set outside the spread over seeds, with a margin. This runs the tests' own helpers.

    .venv/bin/python benchmarks/test_margins.py --seeds 5            # ~15 min on one core
    .venv/bin/python benchmarks/test_margins.py --only ppo disc      # some cases only

Results go to benchmarks/results/test_margins.json (merged per case, so cases can be run apart).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

from automimic.threads import configure_threads

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results" / "test_margins.json"


def _tests(name: str) -> Any:
    """Import ``tests/<name>.py`` as a module (tests is not a package)."""
    spec = importlib.util.spec_from_file_location(name, ROOT / "tests" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def cases(demos: Path, scratch: Path) -> dict[str, tuple[str, Callable[[int], dict]]]:
    """name -> (test and its threshold, function of the seed returning the measured values)."""
    ppo, disc, stg = _tests("test_ppo"), _tests("test_discriminator"), _tests("test_steps_to_go")
    act, diffusion, training, image = (_tests(n) for n in ("test_act", "test_diffusion", "test_training",
                                                              "test_image_policy"))

    def ppo_case(seed: int) -> dict:
        before, after, kls = ppo.train_on_the_toy_task(seed)
        kls = sorted(kls)
        return {"before": before, "after": after, "median_kl": kls[len(kls) // 2], "max_kl": kls[-1]}

    def gail(inputs: str, penalty: float) -> Callable[[int], dict]:
        def run(seed: int) -> dict:
            accuracy, gap, _ = disc.discriminator_accuracy(demos, inputs, penalty, seed)
            return {"accuracy": accuracy, "reward_gap": gap}
        return run

    def airl(seed: int) -> dict:
        accuracy, gap = disc.airl_accuracy(demos, seed)
        return {"accuracy": accuracy, "reward_gap": gap}

    def bound(seed: int) -> dict:
        before, after = stg.bound_penalty_shrink(seed)
        return {"before": before, "after_over_before": after / before}

    def success(fn: Callable[[int], Any]) -> Callable[[int], dict]:
        def run(seed: int) -> dict:
            result = fn(seed)
            result = result[1] if isinstance(result, tuple) else result
            return {"success": result.success_rate, "mean_length": result.mean_length}
        return run

    def image_case(seed: int) -> dict:
        policy, result = image.image_policy_success(scratch, seed)
        return {"success": result.success_rate, "mean_length": result.mean_length,
                "pixel_sensitivity": image.pixel_sensitivity(policy)}

    def random_policy(seed: int) -> dict:
        # The floor every point/reach success bound must clear: uniform random actions, evaluation seeds.
        import numpy as np

        from automimic.envs import make_env
        from automimic.seeding import episode_seeds

        env, rng, wins, lengths = make_env("point/reach"), np.random.default_rng(seed), [], []
        for s in episode_seeds("eval", 0, 50):
            env.reset(seed=s)
            for t in range(env.horizon):
                *_, truncated, info = env.step(rng.uniform(-1, 1, 2))
                if info["success"] or truncated:
                    break
            wins.append(bool(info["success"]))
            lengths.append(t + 1)
        return {"success": float(np.mean(wins)), "mean_length": float(np.mean(lengths))}

    return {
        "random": ("floor: a uniform random policy on point/reach (50 evaluation seeds)", random_policy),
        "ppo": ("test_ppo: before > 0.2, after < 0.1, median KL < 0.2, max KL < 10", ppo_case),
        "disc_sa": ("test_discriminator sa: accuracy > 0.70", gail("sa", 0.0)),
        "disc_ss": ("test_discriminator ss: accuracy > 0.64", gail("ss", 0.0)),
        "disc_sa_penalty": ("test_discriminator sa + penalty: accuracy > 0.58", gail("sa", 1.0)),
        "airl": ("test_discriminator airl: accuracy > 0.66", airl),
        "value": ("test_steps_to_go value baseline: error < 0.05 of the variance",
                  lambda seed: {"error_over_variance": stg.value_fit_error(seed)}),
        "bound": ("test_steps_to_go bound penalty: after < 0.5 before", bound),
        "reinforce": ("test_steps_to_go REINFORCE toy: before < -0.3, after > -0.15",
                      lambda seed: dict(zip(("before", "after"), stg.reinforce_toy(seed)))),
        "bc": ("test_training BC: success >= 0.7 of 50, mean length < 100", success(lambda s: training.bc_success(scratch, s))),
        "act": ("test_act: success >= 0.7 of 30, mean length < 100", success(lambda s: act.act_success(demos, scratch / f"act{s}", s))),
        "diffusion": ("test_diffusion: success >= 0.7 of 20, mean length < 100",
                      success(lambda s: diffusion.diffusion_success(demos, scratch / f"dp{s}", s))),
        "image": ("test_image_policy: success >= 0.3 of 30, pixel sensitivity > 0.05", image_case),
    }


def main() -> None:
    """Run the chosen cases over the seeds; print each value as it comes; merge into the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=5, help="seeds 0..N-1")
    parser.add_argument("--seed-list", type=int, nargs="*", default=None,
                        help="these seeds instead, added to the case's saved rows (replacing the same seeds)")
    parser.add_argument("--only", nargs="*", default=None, help="case names (default: all)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    configure_threads()
    sys.path.insert(0, str(ROOT / "tests"))
    from automimic.rollout.collect import collect_demos

    with tempfile.TemporaryDirectory() as tmp:
        scratch = Path(tmp)
        demos = scratch / "point.h5"
        collect_demos("point/reach", 60, demos, progress=False)  # the suite's point_demos fixture
        chosen = cases(demos, scratch)
        saved = json.loads(args.out.read_text()) if args.out.exists() else {}
        for name in args.only or list(chosen):
            label, fn = chosen[name]
            seeds = args.seed_list if args.seed_list is not None else list(range(args.seeds))
            keep = [r for r in saved.get(name, {}).get("rows", []) if r["seed"] not in seeds] if args.seed_list else []
            rows = []
            t0 = time.time()
            for seed in seeds:
                rows.append({"seed": seed, **fn(seed)})
                print(name, json.dumps(rows[-1]), flush=True)
            rows = sorted(keep + rows, key=lambda r: r["seed"])
            spread = {k: [min(r[k] for r in rows), max(r[k] for r in rows)] for k in rows[0] if k != "seed"}
            saved[name] = {"test": label, "seeds": len(rows), "spread": spread, "rows": rows,
                           "seconds_this_call": round(time.time() - t0, 1), "date": time.strftime("%Y-%m-%d")}
            print(f"{name}: {label}; measured {spread}", flush=True)
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps(saved, indent=2) + "\n")


if __name__ == "__main__":
    main()
