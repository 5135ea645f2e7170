"""The run-level fields algorithm configs share, each declared, documented and checked once.

An algorithm's config inherits the pieces it has instead of re-declaring their fields::

    @dataclass
    class SEILConfig(PretrainedStart, PolicyChoice, DemoSource):
        rounds: int = 4
        ...

        def __post_init__(self) -> None:
            super().__post_init__()  # the pieces' checks
            ...                      # the config's own

The pieces are mixins, not sections: their fields stay top-level keys of the config, so YAML
files, ``--set data=...``, ``--set policy_config.head=gaussian`` and the ``config.yaml`` of every
run folder read as before. Every piece extends :class:`RunConfig` (the run's ``seed`` and the root
of the check chain); each ``__post_init__`` calls ``super().__post_init__()`` first, so every
piece's check runs once, in field order. A dataclass lists inherited fields from the last base to
the first, so bases are written last piece first (``PretrainedStart, PolicyChoice, DemoSource``)
to keep ``config.yaml`` reading ``seed, data, env_id, demos, policy, ...``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, TypeVar

from automimic.config import load_config
from automimic.policies import check_policy_config, cpu_train_defaults
from automimic.policies.multitask import FINETUNE_MODES
from automimic.training.loop import TrainConfig


C = TypeVar("C")


def cpu_sized_base(cls: type[C], policy: str) -> C | None:
    """``cls``'s defaults with policy class ``policy``'s CPU-sized training settings in every
    training section (``train``, and a prior's ``bc`` or ``sft``), or ``None`` when the class keeps
    TrainConfig's own (the MLP) or ``cls`` has no training section.

    ACT and Diffusion Policy at TrainConfig's 5,000 x 256 take tens of minutes on two cores where
    2,000 x 64 learns the same tasks, and a practice run trains its prior before anything else.
    """
    sized = cpu_train_defaults(policy)
    sections = [f.name for f in fields(cls) if f.type in (TrainConfig, "TrainConfig")]
    if not sized or not sections:
        return None
    return cls(**{name: TrainConfig(**sized) for name in sections})


def load_sized_config(cls: type[C], path: str | None = None, overrides: list[str] | None = None) -> C:
    """:func:`~automimic.config.load_config` of ``cls``, with the chosen policy class's CPU-sized
    training settings (:func:`cpu_sized_base`) in place of TrainConfig's defaults; the file and the
    overrides still win."""
    cfg = load_config(cls, path, overrides)
    base = cpu_sized_base(cls, getattr(cfg, "policy", ""))
    return cfg if base is None else load_config(cls, path, overrides, base=base)


@dataclass
class RunConfig:
    """What every algorithm's run has.

    Args:
        seed: the run's one seed: weights, batches and the start states of its rollouts (practice,
            validation, evaluation) all follow from it; a section (``train``, ``bc``) never has its own.
    """

    seed: int = 0

    def __post_init__(self) -> None:
        """The root of the pieces' checks (each piece checks its fields after calling this)."""


@dataclass
class DemoStore(RunConfig):
    """Where a run's demonstrations come from and which env it works in.

    Args:
        data: the HDF5 episode store with the demonstrations.
        env_id: the env the run rolls out in (practice, validation, evaluation); default: the one
            the store records.
    """

    data: str = ""
    env_id: str = ""


@dataclass
class DemoSource(DemoStore):
    """:class:`DemoStore` and how many of its demos a run uses.

    Args:
        demos: successful demos to use, spread evenly over the store (``linspace``, the SEIL
            protocol); 0 uses all.
    """

    demos: int = 0

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.demos < 0:
            raise ValueError(f"demos must be >= 0 (0: all), got {self.demos}")


@dataclass
class PolicyChoice(RunConfig):
    """Which policy a run trains.

    Args:
        policy: registered policy class name (``mlp``, ``act``, ``diffusion``; see ``docs/policies.md``).
        policy_config: that class's config fields (e.g. ``{"head": "gaussian"}``); fields filled in
            from the data (``obs_keys``) may be left out. Checked against the class when the config
            is built, so an unknown or mistyped field is a one-line error before anything runs.
    """

    policy: str = "mlp"
    policy_config: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        super().__post_init__()
        check_policy_config(self.policy, self.policy_config)


@dataclass
class PretrainedStart(RunConfig):
    """Where a run's policy starts: fresh weights, or a trained policy.

    Args:
        init: start from this trained policy (a run folder, e.g. ``automimic pretrain``'s, or a
            ``.pt`` checkpoint) instead of fresh weights: its class and config replace ``policy``
            and ``policy_config``; a multi-task policy learns a new task vector for this env.
        finetune: with ``init``: ``full`` trains every weight, ``embedding`` only the task vectors.
    """

    init: str = ""
    finetune: str = "full"

    def __post_init__(self) -> None:
        super().__post_init__()
        check_finetune(self.init, self.finetune)


def check_finetune(init: str, finetune: str) -> None:
    """Refuse (one line) an unknown fine-tune mode, or a partial fine-tune with nothing to start from."""
    if finetune not in FINETUNE_MODES:
        raise ValueError(f"finetune: expected one of {list(FINETUNE_MODES)}, got {finetune!r}")
    if finetune != "full" and not init:
        raise ValueError(f"finetune={finetune!r} fine-tunes a pretrained policy; give it with init (--init)")
