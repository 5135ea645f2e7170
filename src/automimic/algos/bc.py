"""Behaviour cloning: fit a policy to demonstrations with the shared training loop."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from automimic.algos.registry import Algorithm, register
from automimic.algos.run_config import DemoStore, PolicyChoice, PretrainedStart, check_finetune  # noqa: F401 (moved)
from automimic.config import to_dict
from automimic.data.checks import check_episodes
from automimic.data.episode import Episode
from automimic.data.store import EpisodeStore
from automimic.data.transitions import Transitions, low_dim_keys
from automimic.envs import env_spec
from automimic.envs.cameras import camera_env_kwargs
from automimic.evaluation.evaluate import check_policy_env, evaluate
from automimic.policies import Policy, build_policy, check_policy_config, load_policy
from automimic.policies.multitask import freeze_for_finetune, pretrained_start
from automimic.policies.steps_to_go_head import StepsToGoHeadConfig
from automimic.seeding import seed_everything
from automimic.training.loop import TrainConfig, train_policy
from automimic.training.run_dir import RunDir

T = TypeVar("T")


@dataclass
class BCConfig(PretrainedStart, PolicyChoice, DemoStore):
    """Behaviour-cloning run: the fields of :class:`~automimic.algos.run_config.DemoStore`,
    :class:`~automimic.algos.run_config.PolicyChoice` and
    :class:`~automimic.algos.run_config.PretrainedStart` (``seed``, ``data``, ``env_id``, ``policy``,
    ``policy_config``, ``init``, ``finetune``), and:

    Args:
        episodes: use this many episodes spread evenly over the store (``linspace``, the SEIL
            protocol); 0 uses all. (BC's name for the other algorithms' ``demos``: with
            ``only_success`` off it counts failed episodes too.)
        only_success: train on successful episodes only.
        train: optimisation settings.
        val_episodes: rollouts on validation seeds per check to pick ``best.pt`` (0: by loss).
        steps_to_go: also train a steps-to-go head (``steps_to_go_head`` configures it), making the
            run usable by ``automimic calibrate`` and as a learned reward.
        steps_to_go_head: bins, range and loss weights of that head.
    """

    episodes: int = 0
    only_success: bool = True
    train: TrainConfig = field(default_factory=TrainConfig)
    val_episodes: int = 0
    steps_to_go: bool = False
    steps_to_go_head: StepsToGoHeadConfig = field(default_factory=StepsToGoHeadConfig)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.episodes < 0 or self.val_episodes < 0:
            raise ValueError("episodes and val_episodes must be >= 0")
        if self.val_episodes and not self.train.validate_every:
            raise ValueError("val_episodes needs train.validate_every > 0 (how often to validate); "
                             "without it no validation runs")


def load_init(path: str) -> Policy:
    """The policy a run starts from (``--init``): a run folder's ``best`` checkpoint, or a ``.pt`` file."""
    where = Path(path)
    if not where.exists():
        raise FileNotFoundError(f"--init {path}: no such run folder or checkpoint")
    if where.is_dir():
        where = RunDir(where).checkpoint("best")
        if not where.exists():
            raise FileNotFoundError(f"--init {path}: holds no checkpoints/best.pt; expected a finished training "
                                    "run (e.g. from automimic pretrain) or a policy checkpoint (.pt)")
    return load_policy(where)


def pretrained_policy(init: str, env_id: str, loaded: Policy | None = None) -> Policy | None:
    """The pretrained start of a run on ``env_id`` (``None`` without ``init``): loaded (unless
    ``loaded`` is it already), given a task vector for ``env_id`` if it is multi-task, and checked
    against the env, before any work starts."""
    if not init:
        return None
    start = pretrained_start(loaded if loaded is not None else load_init(init), env_id)
    check_policy_env(start, env_id, f"--init {init}")
    return start


def select_episodes(episodes: list[T], k: int) -> list[T]:
    """``k`` episodes spread evenly over the list (all when ``k`` is 0 or too large)."""
    if k <= 0 or k >= len(episodes):
        return episodes
    return [episodes[i] for i in np.round(np.linspace(0, len(episodes) - 1, k)).astype(int)]


def checked_demos(data: str, env_id: str, k: int, *, only_success: bool = True, policy: str | None = None,
                  policy_config: dict[str, Any] | None = None) -> tuple[list[Episode], str]:
    """``k`` episodes spread over the store (successful ones unless ``only_success`` is off; 0: all)
    and the env id (``env_id``, else the store's), checked before any work starts.

    The checks (:func:`automimic.data.checks.check_episodes`) cover what training would otherwise
    trip over later: empty episodes, ragged widths, NaN or inf, and, when an env is known, keys and
    widths the env does not produce. An env id the registry does not know, and (with ``policy``) a
    policy config its class rejects, are refused here too.
    """
    if policy is not None:
        check_policy_config(policy, policy_config or {})
    store = EpisodeStore(data)
    named = [(info.name, ep) for info, ep in store.entries()]
    if only_success:
        named = [(n, e) for n, e in named if e.success]
    named = select_episodes(named, k)
    if not named:
        raise ValueError(f"{data}: no {'successful ' if only_success else ''}episodes to train on")
    recorded = store.env_id() or ""
    env_id = env_id or recorded
    keys = (policy_config or {}).get("obs_keys")
    keys = low_dim_keys(named[0][1]) if keys is None else list(keys)
    env_obs, env_actions = None, None
    if env_id:
        try:
            # A camera policy reads keys (frames, proprioception) only a camera env gives.
            env_obs, env_actions = env_spec(env_id, **camera_env_kwargs(policy_config or {}))
        except ValueError as err:
            where = "the env this store records" if env_id == recorded else "the env given"
            raise ValueError(f"{data}: {err} ({where}; pass --env with one automimic can build)") from None
    check_episodes(data, named, keys, env_obs, env_actions, env_id)
    return [ep for _, ep in named], env_id


def load_demos(cfg: BCConfig, start: Policy | None = None) -> tuple[list[Episode], str]:
    """The training episodes and env id that ``cfg`` asks for (checked: :func:`checked_demos`), read
    with the observation keys of ``start`` (the ``--init`` policy) when there is one."""
    policy, policy_config = (cfg.policy, cfg.policy_config) if start is None else (
        start.name, dataclasses.asdict(start.config))
    return checked_demos(cfg.data, cfg.env_id, cfg.episodes, only_success=cfg.only_success, policy=policy,
                         policy_config=policy_config)


def fit_policy(episodes: list[Episode], env_id: str, out: str | Path, *, policy: str = "mlp",
               policy_config: dict[str, Any] | None = None, train: TrainConfig | None = None,
               val_episodes: int = 0, seed: int = 0, init: Policy | None = None, finetune: str = "full",
               steps_to_go: StepsToGoHeadConfig | None = None, shared_head: bool = False,
               progress: bool = True) -> Policy:
    """Behaviour-clone ``episodes`` into run folder ``out`` (resuming from its ``last.pt`` if present).

    Args:
        episodes: training episodes.
        env_id: env for validation rollouts ('' disables them).
        out: run folder (its config must already be written by the caller).
        policy: registered policy class.
        policy_config: that class's config fields.
        train: optimisation settings (run with its seed replaced by ``seed``).
        val_episodes: validation rollouts per check (0: best by training loss).
        seed: seeds weight init, batches and validation seeds.
        init: warm start: this policy's class, config, weights and normalisers instead of
            ``policy``/``policy_config`` and fitted statistics (a multi-task policy must already
            know the episodes' tasks: :func:`~automimic.policies.multitask.pretrained_start`).
        finetune: with ``init``, which weights train: ``full`` (all) or ``embedding`` (task vectors only).
        steps_to_go: also train a steps-to-go head with this config (labels from successful episodes).
        shared_head: with ``init``, fine-tune its steps-to-go head on shared features instead of
            detached ones (see :func:`warm_start`).
    """
    train = dataclasses.replace(train or TrainConfig(), seed=seed)
    seed_everything(seed)
    if init is not None:
        policy, policy_config = init.name, dataclasses.asdict(init.config)
    policy_config = dict(policy_config or {})
    # An explicit empty obs_keys means "no state" (an image-only policy); absent means every state key.
    data = Transitions.from_episodes(episodes, policy_config.get("obs_keys"),
                                     image_keys=policy_config.get("image_keys") or ())
    if init is None:
        model = build_policy(policy, {**policy_config, "obs_keys": data.obs_keys}, data.obs.shape[1],
                             data.actions.shape[1], steps_to_go=steps_to_go)
        model.fit_normalizers(data)
    else:
        model = warm_start(init, steps_to_go, shared_head)
        freeze_for_finetune(model, finetune)
    if model.tasks:
        data = data.with_tasks(episodes, model.tasks, default=env_id)
    validate = None
    if val_episodes and env_id:
        def validate(p: Policy) -> float:
            return evaluate(p, env_id, val_episodes, seed=seed, purpose="validate", progress=False).success_rate
    return train_policy(model, data, train, RunDir(out), validate=validate, progress=progress)


def warm_start(init: Policy, steps_to_go: StepsToGoHeadConfig | None = None, shared_head: bool = False) -> Policy:
    """A trainable copy of ``init`` (same class, config and weights), with a fresh steps-to-go head
    of config ``steps_to_go`` when ``init`` has none, or ``init``'s own head otherwise.

    ``init``'s own head is fine-tuned *detached* unless ``shared_head``: it keeps learning on the
    policy's features, but its loss does not move them, so a few demos' steps-to-go labels cannot
    pull the pretrained trunk away from what behaviour cloning needs. Measured on ML45's 5 test tasks from 5 demos, 3
    seeds (docs/multitask.md): BC(5) 0.66 with the shared head, 0.77 detached, 0.72 from scratch.
    The price is a weaker detector on the fine-tuned head (same page), so a run whose reward or
    success detector is that head (steps-to-go practice) fine-tunes it shared, as it was pretrained.
    """
    head = steps_to_go if init.steps_to_go is None else dataclasses.replace(init.steps_to_go.config,
                                                                           detach=not shared_head)
    # Built like a fresh model (same draws from the global RNG), so a warm-started run samples
    # the same training noise as before warm starts could change class.
    model = build_policy(init.name, dataclasses.asdict(init.config), init.obs_dim, init.action_dim, steps_to_go=head)
    missing, unexpected = model.load_state_dict(init.state_dict(), strict=False)
    if unexpected or any(not k.startswith("steps_to_go.") for k in missing):
        raise ValueError(f"warm start: weights do not fit the rebuilt {init.name} policy "
                         f"(missing {missing[:3]}, unexpected {unexpected[:3]})")
    return model


def train_bc(cfg: BCConfig, out: str | Path, progress: bool = True) -> Policy:
    """Train BC into run folder ``out`` (resuming if it holds a checkpoint); returns the final policy."""
    start = load_init(cfg.init) if cfg.init else None
    episodes, env_id = load_demos(cfg, start)
    start = pretrained_policy(cfg.init, env_id, start)
    record = to_dict(cfg)
    record["env_id"] = env_id
    RunDir(out).write_config({"algo": "bc", **record})
    return fit_policy(episodes, env_id, out, policy=cfg.policy, policy_config=cfg.policy_config, train=cfg.train,
                      val_episodes=cfg.val_episodes, seed=cfg.seed, init=start, finetune=cfg.finetune,
                      steps_to_go=cfg.steps_to_go_head if cfg.steps_to_go else None, progress=progress)


def load_run_policy(out: str | Path, which: str = "best") -> Policy:
    """The ``best`` or ``last`` policy of a training run folder."""
    path = RunDir(out).checkpoint(which)
    if not path.exists():
        raise FileNotFoundError(f"{out}: no {which} checkpoint ({path}); has training run?")
    return load_policy(path)


def start_round_store(data: str, env_id: str, demos: int, out: Path, generated: str,
                      config: dict[str, Any]) -> tuple[str, EpisodeStore]:
    """The env id and ``out/episodes.h5`` of a round-based run (SEIL, DAgger), with the demos copied in.

    Writes ``config`` (plus the resolved env id) as the run's config. Episodes of source
    ``generated`` are the run's own; a copy of the demos cut short by a kill is completed, never
    repeated.
    """
    episodes, env_id = checked_demos(data, env_id, demos, policy=config.get("policy"),
                                     policy_config=config.get("policy_config"))
    if not env_id:
        raise ValueError(f"{data}: the store names no env; pass env_id")
    RunDir(out).write_config({**config, "env_id": env_id})
    existed = (out / "episodes.h5").exists()
    store = EpisodeStore(out / "episodes.h5", env_id=env_id)
    copied = sum(1 for i in store.index() if i.source != generated) if existed else 0
    for ep in episodes[copied:]:
        store.append(ep)
    return env_id, store


def _run(cfg: BCConfig, out: str | Path, progress: bool = True, on_row: Any = None) -> Policy:
    """:func:`train_bc` under the registry's ``run`` contract (BC writes metrics, not progress rows)."""
    return train_bc(cfg, out, progress)


register(Algorithm("bc", BCConfig, _run, load_run_policy, checkpoints=("best", "last")))
