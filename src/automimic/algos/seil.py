"""SEIL, self-evolved imitation learning (arXiv 2509.19460): a few-shot policy that turns its own
successes into demonstrations.

Round r (1..R): the round r-1 policy and its EMA copy practise from fresh ``practice`` seeds with
perturbed starts; the simulator's success flag filters the episodes; a selector keeps some of
the successes; the policy is retrained on the expert demos plus everything selected so far and
evaluated on the fixed ``eval`` seeds. Round 0 is plain BC on the expert demos.

Run folder::

    out/config.yaml          resolved SEILConfig
    out/episodes.h5          expert demos (round 0) + every practice episode, with provenance:
                             round, seed, perturbation, extra.model (primary|ema), extra.selected
    out/round_<r>/           the training run of round r (checkpoints, metrics, TensorBoard)
    out/rounds.jsonl         one line per finished round (resume skips these rounds)

Every step of a round is idempotent, so a run killed anywhere resumes in that round: practice
skips seeds already stored, selection is recomputed with the same RNG, training resumes from its
``last.pt``.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
from tqdm import tqdm

from automimic.algos.bc import fit_policy, pretrained_policy, start_round_store
from automimic.algos.registry import Algorithm, register
from automimic.algos.run_config import DemoSource, PolicyChoice, PretrainedStart
from automimic.algos.selectors import make_candidates, select, selector_names, start_features
from automimic.config import to_dict
from automimic.data.episode import Episode
from automimic.data.store import EpisodeStore
from automimic.envs import default_perturb
from automimic.evaluation.evaluate import evaluate
from automimic.policies import Policy, load_policy
from automimic.rollout.actors import ActorSpec
from automimic.rollout.collector import iter_episodes
from automimic.rollout.workers import RolloutJob
from automimic.seeding import BLOCK, episode_seeds
from automimic.training.loop import TrainConfig
from automimic.training.run_dir import RunDir, append_row, read_rows


@dataclass
class SEILConfig(PretrainedStart, PolicyChoice, DemoSource):
    """Self-evolution run. Defaults the paper did not publish are marked (default, ours).

    It has the fields of :class:`~automimic.algos.run_config.DemoSource`,
    :class:`~automimic.algos.run_config.PolicyChoice` and
    :class:`~automimic.algos.run_config.PretrainedStart` (``seed``, ``data``, ``env_id``, ``demos``,
    ``policy``, ``policy_config``, ``init``, ``finetune``), and:

    Args:
        rounds: self-evolution rounds after the BC round.
        patience: stop when evaluation success has not risen for this many rounds (0: run all).
        practice_episodes: practice rollouts per model per round (default, ours: 50).
        use_ema: also roll out the EMA copy of the weights (model-level augmentation).
        ema_decay: EMA decay per training step (default, ours: 0.999).
        perturb: start-position perturbation of practice rollouts (env-level augmentation, metres);
            ``None``: the env's own default (:func:`automimic.envs.default_perturb`: 0.02 on
            Meta-World and the point mass, 0 on Gymnasium envs, which place no objects).
        action_noise: std of Gaussian noise added to practice actions (default, ours: 0.3). A
            deterministic policy's practice only repeats what it already does; noise lets it succeed
            from starts it fails on (push-v3 at 5 demos: 0.72 -> 0.68 without, 0.82 with). The
            recorded action is the one executed.
        sample_actions: practise with actions sampled from the policy's distribution (Gaussian
            head) instead of its mean: exploration shaped by the policy's own uncertainty.
        selector: one of :func:`automimic.algos.selectors.selector_names`.
        keep: successes kept per round by the selector (``all`` ignores it).
        warm_start: start each round's training from the previous policy instead of from scratch.
        eval_episodes: evaluation episodes per round, on the fixed ``eval`` seeds.
        workers: worker processes for practice and evaluation.
        train: optimisation settings of every round.
    """

    rounds: int = 4
    patience: int = 0
    practice_episodes: int = 50
    use_ema: bool = True
    ema_decay: float = 0.999
    perturb: float | None = None
    action_noise: float = 0.3
    sample_actions: bool = False
    selector: str = "uncertain-diverse"
    keep: int = 20
    warm_start: bool = False
    eval_episodes: int = 50
    workers: int = 2
    train: TrainConfig = field(default_factory=TrainConfig)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.selector not in selector_names():
            raise ValueError(f"selector must be one of {selector_names()}, got {self.selector!r}")
        if self.rounds < 0 or self.practice_episodes < 1 or self.keep < 0 or self.patience < 0:
            raise ValueError("rounds, keep and patience must be >= 0 and practice_episodes >= 1")
        if 2 * self.practice_episodes * (self.rounds + 1) > BLOCK:
            raise ValueError(f"rounds x practice_episodes exceeds the {BLOCK} practice seeds of one run seed")


@dataclass(frozen=True)
class RoundResult:
    """One line of ``rounds.jsonl``."""

    round: int
    practice: int
    successes: int
    selected: int
    train_episodes: int
    success: float
    ci_low: float
    ci_high: float
    mean_length: float
    seconds: float

    def line(self) -> str:
        """The per-round progress line."""
        return (f"round {self.round}: practice {self.practice}, successes {self.successes}, selected {self.selected}, "
                f"train on {self.train_episodes} episodes, eval {self.success:.2f} "
                f"[{self.ci_low:.2f}, {self.ci_high:.2f}], {self.seconds:.0f}s")


def _finished_rounds(out: Path) -> list[RoundResult]:
    return read_rows(out / "rounds.jsonl", RoundResult)


def rounds_without_gain(results: list[RoundResult]) -> int:
    """How many rounds since evaluation success last reached a new high (0 right after one)."""
    best, stale = -1.0, 0
    for row in results:
        stale = 0 if row.success > best else stale + 1
        best = max(best, row.success)
    return stale


def practice_perturb(cfg: SEILConfig, env_id: str) -> float:
    """The start perturbation of practice rollouts: the config's, else the env's default."""
    return cfg.perturb if cfg.perturb is not None else default_perturb(env_id)


def _practice(cfg: SEILConfig, env_id: str, store: EpisodeStore, r: int, models: dict[str, Policy],
              progress: bool) -> None:
    """Roll out each model from its own practice seeds, storing every episode as it finishes."""
    done = {(i.seed, i.round) for i in store.index() if i.source == "self"}
    for slot, (model_name, policy) in enumerate(models.items()):
        start = (2 * (r - 1) + slot) * cfg.practice_episodes
        seeds = [s for s in episode_seeds("practice", cfg.seed, cfg.practice_episodes, start=start)
                 if (s, r) not in done]
        if not seeds:
            continue
        job = RolloutJob(env_id, ActorSpec.policy(policy, name=f"round{r - 1}:{model_name}",
                                                  deterministic=not cfg.sample_actions,
                                                  action_noise=cfg.action_noise),
                         {"perturb": practice_perturb(cfg, env_id)}, source="self", round=r)
        bar = tqdm(total=len(seeds), desc=f"round {r} practice ({model_name})", unit="ep", disable=not progress,
                   leave=False)
        for ep in iter_episodes(job, seeds, cfg.workers):
            store.append(Episode(**{**ep.__dict__, "attrs": {**ep.scalar_attrs(), "model": model_name,
                                                                   "selected": False}}))
            bar.update(1)
        bar.close()


def run_seil(cfg: SEILConfig, out: str | Path, progress: bool = True,
             on_round: Callable[[RoundResult], None] | None = None) -> list[RoundResult]:
    """Run (or resume) SEIL into ``out``; returns one :class:`RoundResult` per round, round 0 = BC."""
    out = Path(out)
    env_id, store = start_round_store(cfg.data, cfg.env_id, cfg.demos, out, "self", {"algo": "seil", **to_dict(cfg)})
    start = pretrained_policy(cfg.init, env_id)
    results = _finished_rounds(out)
    for r in range(len(results), cfg.rounds + 1):
        if cfg.patience and rounds_without_gain(results) >= cfg.patience:
            break
        t0 = time.time()
        practice = successes = selected = 0
        previous = None
        if r > 0:
            prev_dir = RunDir(out / f"round_{r - 1}")
            previous = load_policy(prev_dir.checkpoint("last"))
            models = {"primary": previous}
            if cfg.use_ema:
                models["ema"] = load_policy(prev_dir.checkpoint("ema"))
            _practice(cfg, env_id, store, r, models, progress)
            stored = store.entries()
            # Earlier rounds' picks only, so a resumed selection sees the same context as the first try.
            trained = [e for i, e in stored if i.source != "self" or (e.attrs.get("selected") and i.round < r)]
            infos = [i for i, _ in stored if i.source == "self" and i.round == r]
            pool = [(i.name, e) for i, e in stored if i.source == "self" and i.round == r and i.success]
            candidates = make_candidates([e for _, e in pool], previous, models.get("ema"))
            keep = select(cfg.selector, candidates, cfg.keep, np.random.default_rng([cfg.seed, r]),
                          existing=np.stack([start_features(e, previous.obs_keys) for e in trained]))
            if keep:
                store.annotate([pool[i][0] for i in keep], selected=True)
            training = trained + [pool[i][1] for i in keep]
            practice, successes, selected = len(infos), len(pool), len(keep)
        else:
            training = [e for e in store.episodes() if e.source != "self"]
        run_dir = RunDir(out / f"round_{r}")
        run_dir.write_config({"algo": "seil-round", "round": r, "env_id": env_id, "train_episodes": len(training)})
        policy = fit_policy(training, env_id, run_dir.path, policy=cfg.policy, policy_config=cfg.policy_config,
                            train=dataclasses.replace(cfg.train, ema_decay=cfg.ema_decay if cfg.use_ema else 0.0),
                            seed=cfg.seed,
                            init=previous if cfg.warm_start and previous is not None else start,
                            finetune=cfg.finetune, progress=progress)
        result = evaluate(policy, env_id, cfg.eval_episodes, seed=cfg.seed, workers=cfg.workers, progress=progress)
        row = RoundResult(r, practice, successes, selected, len(training), result.success_rate, result.ci_low,
                          result.ci_high, result.mean_length, time.time() - t0)
        append_row(out / "rounds.jsonl", row)
        results.append(row)
        if on_round is not None:
            on_round(row)
    return results


def write_report(out: str | Path) -> Path:
    """Write ``report.md`` with the per-round table and two PNG plots into the SEIL run folder."""
    from automimic.evaluation.report import markdown_table, plot_counts_per_round, plot_success_per_round

    out = Path(out)
    rows = _finished_rounds(out)
    if not rows:
        raise ValueError(f"{out}: no finished rounds to report")
    cfg = RunDir(out).read_config()
    rounds = [x.round for x in rows]
    plot_success_per_round(rounds, [x.success for x in rows], [x.ci_low for x in rows], [x.ci_high for x in rows],
                           out / "success.png", f"SEIL on {cfg['env_id']}")
    plot_counts_per_round(rounds[1:] or [0], {"practice": [x.practice for x in rows[1:]] or [0],
                                              "successes": [x.successes for x in rows[1:]] or [0],
                                              "selected": [x.selected for x in rows[1:]] or [0]},
                          out / "episodes.png", "practice episodes per round")
    table = markdown_table(
        ["round", "practice", "successes", "selected", "trained on", "eval success", "95% CI", "mean length", "time (s)"],
        [[x.round, x.practice, x.successes, x.selected, x.train_episodes, f"{x.success:.2f}",
          f"[{x.ci_low:.2f}, {x.ci_high:.2f}]", f"{x.mean_length:.1f}", f"{x.seconds:.0f}"] for x in rows])
    text = (f"# SEIL on {cfg['env_id']}\n\n{cfg['demos'] or 'all'} expert demos, selector `{cfg['selector']}` "
            f"(keep {cfg['keep']}), EMA {'on (decay ' + str(cfg['ema_decay']) + ')' if cfg['use_ema'] else 'off'}, "
            f"perturbation σ = {cfg['perturb'] if cfg['perturb'] is not None else default_perturb(cfg['env_id'])}, {cfg['practice_episodes']} practice episodes per model per round, "
            f"{cfg['eval_episodes']} evaluation episodes per round (eval seeds of run seed {cfg['seed']}).\n\n"
            f"{table}\n\n![evaluation success per round](success.png)\n\n![practice episodes](episodes.png)\n")
    (out / "report.md").write_text(text)
    return out / "report.md"


def load_seil_policy(out: str | Path) -> Policy:
    """The policy of the last finished round of a SEIL run folder."""
    rows = _finished_rounds(Path(out))
    if not rows:
        raise ValueError(f"{out}: no finished SEIL round")
    return load_policy(RunDir(Path(out) / f"round_{rows[-1].round}").checkpoint("last"))


register(Algorithm("seil", SEILConfig, run_seil, load_seil_policy, report=write_report, evaluated="last round",
                   stages=("seil-round",)))
