"""Things that choose actions in a rollout: scripted experts, trained policies and practising policies.

Every actor drives ``slots`` envs that step together (one slot per env), so a policy is queried
once per step for all of them. Workers cannot receive live objects cheaply, so an
:class:`ActorSpec` (picklable; one small dataclass per actor kind, in a registry) says how to build
the actor inside each worker; its weights travel separately (see :mod:`automimic.rollout.collector`),
once per version.
"""

from __future__ import annotations

import abc
import dataclasses
from dataclasses import dataclass
from typing import Any, Callable, ClassVar, Protocol, Sequence

import numpy as np
import torch

from automimic.data.transitions import flatten_obs
from automimic.envs import Obs, expert_for
from automimic.envs.cameras import camera_env_kwargs
from automimic.policies import Policy, policy_from_payload, policy_payload
from automimic.policies.exploration import exploration_distribution
from automimic.rollout.chunking import ChunkRunner, history_window


class Actor(Protocol):
    """Actions for the envs of some slots; ``reset`` once per episode and slot."""

    name: str

    def reset(self, seed: int, slot: int = 0) -> None:
        """Start the episode of ``seed`` in ``slot``."""

    def act(self, obs: Sequence[Obs], slots: Sequence[int]) -> np.ndarray:
        """Actions ``(B, D_act)`` for the current observations of ``slots``."""


@torch.no_grad()
def detector_fires(detector: Policy, threshold: float, obs: Sequence[Obs]) -> np.ndarray:
    """Whether a steps-to-go model's detector ``d(o) <= threshold`` fires on each observation ``(B,)``."""
    flat = np.stack([flatten_obs(o, detector.obs_keys) for o in obs])
    return detector.expected_steps_to_go(torch.as_tensor(flat, dtype=torch.float32)).numpy() <= threshold


class ExpertActor:
    """The env's scripted expert (or the one ``expert`` names, ``"package.module:name"``), one copy per slot."""

    def __init__(self, env_id: str, slots: int = 1, expert: str = "") -> None:
        self.name = f"expert:{expert or env_id}"
        self._experts = [expert_for(env_id, expert) for _ in range(slots)]

    def reset(self, seed: int, slot: int = 0) -> None:
        """Reset that slot's expert (seeds its own randomness, e.g. point/reach waypoints)."""
        self._experts[slot].reset(seed)

    def act(self, obs: Sequence[Obs], slots: Sequence[int]) -> np.ndarray:
        """The experts' actions."""
        return np.stack([self._experts[s](o) for o, s in zip(obs, slots)]).astype(np.float32)


class PolicyActor:
    """A trained policy acting on ``slots`` envs with one batched query per step.

    Sampling and action noise are seeded per episode, so an episode depends on its seed alone.

    Args:
        policy: the policy.
        name: recorded as the episode's ``policy``.
        deterministic: act with the mean action (Gaussian heads sample otherwise).
        action_noise: std of Gaussian noise added to every action (exploration during practice).
        slots: envs driven together.
    """

    def __init__(self, policy: Policy, name: str = "policy", deterministic: bool = True,
                 action_noise: float = 0.0, slots: int = 1) -> None:
        self.name = name
        self.policy = policy
        self.action_noise = action_noise
        self._rngs = [np.random.default_rng(0) for _ in range(slots)]
        self._runner = ChunkRunner(policy, slots, deterministic)

    def reset(self, seed: int, slot: int = 0) -> None:
        """Clear the slot's episode state (history, action queue) and seed its sampling and noise."""
        self._runner.reset(slot, seed)
        self._rngs[slot] = np.random.default_rng([seed, 3])

    def act(self, obs: Sequence[Obs], slots: Sequence[int]) -> np.ndarray:
        """Flatten the observation keys the policy was trained on and act (chunked policies via the runner)."""
        flat = np.stack([flatten_obs(o, self.policy.obs_keys) for o in obs])
        images = {k: np.stack([np.asarray(o[k]) for o in obs]) for k in self.policy.image_keys}
        actions = self._runner.act(flat, images, slots)
        if self.action_noise > 0:
            noise = np.stack([self._rngs[s].normal(0.0, self.action_noise, size=actions.shape[1]) for s in slots])
            actions = actions + noise.astype(np.float32)
        return actions


class StoppingPolicyActor(PolicyActor):
    """A :class:`PolicyActor` whose episodes end when a learned detector fires (off-policy practice
    with the steps-to-go reward); the same test as :class:`PracticeActor`'s.

    Args:
        policy, name, deterministic, slots: as for :class:`PolicyActor`.
        detector: the frozen model with the steps-to-go head (a worker's own copy).
        threshold: detector threshold ``s``.
    """

    def __init__(self, policy: Policy, detector: Policy, threshold: float, name: str = "policy",
                 deterministic: bool = True, slots: int = 1) -> None:
        if detector.steps_to_go is None:
            raise ValueError("the detector needs a steps-to-go head (train the BC prior with one)")
        super().__init__(policy, name, deterministic, slots=slots)
        self.detector = detector.eval()
        self.threshold = float(threshold)

    def stop(self, obs: Sequence[Obs], slots: Sequence[int]) -> np.ndarray:
        """Whether the learned detector fires on these (next) observations."""
        return detector_fires(self.detector, self.threshold, obs)


class SamplingActor:
    """A policy acting on-policy: samples from its exploration distribution and keeps what it sampled.

    Per step and slot it keeps the sampled action in normalised units followed by the latent the
    policy drew (what REINFORCE and PPO score again after an update), in :meth:`kept`.

    Args:
        policy: the acting policy (it must have an action distribution).
        min_std: floor on the exploration std (normalised units).
        slots: envs driven together.
    """

    def __init__(self, policy: Policy, min_std: float, slots: int = 1) -> None:
        self.name = "sample"
        self.policy = policy
        self.min_std = min_std
        self._generators = [torch.Generator() for _ in range(slots)]
        self._scratch = torch.Generator()
        self._history: list[list[np.ndarray]] = [[] for _ in range(slots)]
        self._kept: list[list[np.ndarray]] = [[] for _ in range(slots)]

    def reset(self, seed: int, slot: int = 0) -> None:
        """Start the episode of ``seed`` in ``slot`` (its sampling generator is seeded by it)."""
        self._generators[slot].manual_seed(seed)
        self._history[slot] = []
        self._kept[slot] = []

    @torch.no_grad()
    def act(self, obs: Sequence[Obs], slots: Sequence[int]) -> np.ndarray:
        """Sampled env actions for ``slots``; one padded, fixed-size query as in :class:`ChunkRunner`."""
        for o, s in zip(obs, slots):
            self._history[s].append(flatten_obs(o, self.policy.obs_keys))
        rows = list(slots) + [slots[0]] * (len(self._generators) - len(slots))
        gens = [self._generators[s] for s in slots] + [self._scratch] * (len(rows) - len(slots))
        h = self.policy.history
        x = np.stack([history_window(np.stack(self._history[s][-h:]), h) if h > 0 else self._history[s][-1]
                      for s in rows])
        latent = self.policy.practice_latent(gens)
        dist = exploration_distribution(self.policy, torch.as_tensor(x), self.min_std,
                                        latent=latent if latent.shape[1] else None)
        noise = torch.stack([torch.randn(dist.mean.shape[1:], generator=g) for g in gens])
        a = dist.mean + dist.stddev * noise
        kept = torch.cat([a, latent], dim=1).numpy()
        for j, s in enumerate(slots):
            self._kept[s].append(kept[j])
        # The update scores the raw sample; the env clips what it executes. Scoring the clipped
        # action instead biases the gradient: with positive returns every sample past the bound
        # lands on it, pulling the mean inward (measured: practice slowed down, 0.89 -> 0.10).
        return self.policy.unnormalize_actions(a).numpy()[: len(slots)]

    def kept(self, slot: int) -> np.ndarray:
        """What the slot's episode kept per step ``(T, D_act + L)``."""
        return np.stack(self._kept[slot])


class PracticeActor(SamplingActor):
    """A :class:`SamplingActor` whose episodes end when a learned detector fires (steps-to-go practice).

    Episodes end when ``detector``'s expected steps-to-go ``d(o) <= threshold``: the same test as
    :class:`~automimic.algos.learned_reward.LearnedReward`'s, made here on the model it receives
    (an actor never imports an algorithm).

    Args:
        policy: the practising policy (it must have an action distribution).
        detector: the frozen model with the steps-to-go head (a worker's own copy).
        threshold: detector threshold ``s``.
        min_std: floor on the exploration std (normalised units).
        slots: envs driven together.
    """

    def __init__(self, policy: Policy, detector: Policy, threshold: float, min_std: float, slots: int = 1) -> None:
        if detector.steps_to_go is None:
            raise ValueError("the detector needs a steps-to-go head (train the SFT policy with one)")
        super().__init__(policy, min_std, slots)
        self.name = "practice"
        self.detector = detector.eval()
        self.threshold = float(threshold)

    def stop(self, obs: Sequence[Obs], slots: Sequence[int]) -> np.ndarray:
        """Whether the learned detector fires on these (next) observations."""
        return detector_fires(self.detector, self.threshold, obs)


class DAggerActor:
    """DAgger's mixture: per step, the expert's action with probability ``beta``, else the learner's.

    Every visited state is labelled with the expert's action (:meth:`kept`), whoever acted. The
    coin is seeded per episode.

    Args:
        learner: the policy being trained.
        env_id: whose scripted expert labels.
        beta: probability of executing the expert's action.
        slots: envs driven together.
        expert: another expert to label with, ``"package.module:name"`` (see
            :func:`~automimic.envs.registry.load_expert`).
    """

    def __init__(self, learner: Policy, env_id: str, beta: float, slots: int = 1, expert: str = "") -> None:
        self.name = f"dagger:beta={beta:g}"
        self.beta = beta
        self._learner = PolicyActor(learner, "learner", slots=slots)
        self._expert = ExpertActor(env_id, slots, expert)
        self._rngs = [np.random.default_rng(0) for _ in range(slots)]
        self._labels: list[list[np.ndarray]] = [[] for _ in range(slots)]

    def reset(self, seed: int, slot: int = 0) -> None:
        """Start the episode of ``seed`` in ``slot`` for the learner, the expert and the coin."""
        self._learner.reset(seed, slot)
        self._expert.reset(seed, slot)
        self._rngs[slot] = np.random.default_rng([seed, 5])
        self._labels[slot] = []

    def act(self, obs: Sequence[Obs], slots: Sequence[int]) -> np.ndarray:
        """The executed actions; the expert's are kept as labels."""
        learner = self._learner.act(obs, slots)
        expert = self._expert.act(obs, slots)
        for j, s in enumerate(slots):
            self._labels[s].append(expert[j])
        use_expert = np.array([self._rngs[s].random() < self.beta for s in slots])
        return np.where(use_expert[:, None], expert, learner).astype(np.float32)

    def kept(self, slot: int) -> np.ndarray:
        """The expert's label at every step of the slot's episode ``(T, D_act)``."""
        return np.stack(self._labels[slot])


_SPECS: dict[str, type[ActorSpec]] = {}


def register_actor_spec(kind: str) -> Callable[[type[ActorSpec]], type[ActorSpec]]:
    """Class decorator: make an :class:`ActorSpec` subclass the spec of actor kind ``kind``."""

    def add(cls: type[ActorSpec]) -> type[ActorSpec]:
        cls.kind = kind
        _SPECS[kind] = cls
        return cls

    return add


def actor_kinds() -> list[str]:
    """Registered actor kinds."""
    return sorted(_SPECS)


def actor_spec_class(kind: str) -> type[ActorSpec]:
    """The spec class of actor kind ``kind`` (a one-line error for an unknown kind)."""
    if kind not in _SPECS:
        raise ValueError(f"unknown actor kind {kind!r}; registered: {actor_kinds()}")
    return _SPECS[kind]


class ActorSpec(abc.ABC):
    """A picklable recipe for an actor; one frozen dataclass per kind, registered with :func:`register_actor_spec`.

    ``payload`` holds the weights (in-memory checkpoints; ``None`` for an actor without any).
    Collectors ship it to workers once per version and send the spec :meth:`without_weights`;
    specs compare and hash by kind and fields, which is how a worker knows it holds the actor already.
    The constructors :meth:`expert`, :meth:`policy`, ... build the spec of each kind from live objects.
    """

    kind: ClassVar[str]
    #: Key of the acting policy's checkpoint in a payload of several (``None``: the payload is it).
    acting_key: ClassVar[str | None] = None
    name: str
    payload: dict[str, Any] | None = None

    @abc.abstractmethod
    def build(self, payload: dict[str, Any] | None = None, slots: int = 1) -> Actor:
        """Create the actor for ``slots`` envs (inside the worker that will use it) from ``payload``
        (default: the spec's own)."""

    def acting_checkpoint(self, payload: dict[str, Any]) -> dict[str, Any] | None:
        """The checkpoint, within ``payload``, of the policy that acts in the env (``None``: no policy acts)."""
        return payload if self.acting_key is None else payload[self.acting_key]

    def without_weights(self) -> ActorSpec:
        """This spec with the payload left out (what travels with every task)."""
        return self if self.payload is None else dataclasses.replace(self, payload=None)  # type: ignore[type-var]

    def env_kwargs(self, payload: dict[str, Any] | None = None) -> dict[str, Any]:
        """What the env must provide this actor: the cameras (and frame size) an image policy reads.

        ``payload`` stands in for the spec's own (workers receive specs without weights).
        """
        payload = self.payload if payload is None else payload
        checkpoint = None if payload is None else self.acting_checkpoint(payload)
        return {} if checkpoint is None else camera_env_kwargs(checkpoint["config"])

    def _payload(self, payload: dict[str, Any] | None) -> dict[str, Any]:
        payload = self.payload if payload is None else payload
        if payload is None:
            raise ValueError(f"actor spec {self.kind!r}: no weights to build from (pass the payload)")
        return payload

    @staticmethod
    def expert(env_id: str, expert: str = "") -> ExpertSpec:
        """Spec for the scripted expert of ``env_id`` (or the one ``expert`` names)."""
        return ExpertSpec(env_id, expert)

    @staticmethod
    def policy(policy: Policy, name: str = "policy", deterministic: bool = True,
               action_noise: float = 0.0) -> PolicySpec:
        """Spec for a copy of ``policy`` (weights are copied now; later training does not leak in)."""
        return PolicySpec(policy_payload(policy), name, deterministic, action_noise)

    @staticmethod
    def stopping(policy: Policy, detector: Policy, threshold: float, name: str = "policy",
                 deterministic: bool = True) -> StoppingSpec:
        """Spec for :class:`StoppingPolicyActor` with copies of ``policy`` and ``detector``."""
        return StoppingSpec({"policy": policy_payload(policy), "detector": policy_payload(detector)},
                            threshold, name, deterministic)

    @staticmethod
    def sample(policy: Policy, min_std: float) -> SampleSpec:
        """Spec for :class:`SamplingActor` with a copy of ``policy`` (on-policy RL on any reward)."""
        return SampleSpec({"policy": policy_payload(policy)}, min_std)

    @staticmethod
    def practice(policy: Policy, detector: Policy, threshold: float, min_std: float) -> PracticeSpec:
        """Spec for :class:`PracticeActor` with copies of ``policy`` and ``detector``."""
        return PracticeSpec({"policy": policy_payload(policy), "detector": policy_payload(detector)},
                            threshold, min_std)

    @staticmethod
    def dagger(learner: Policy, env_id: str, beta: float, expert: str = "") -> DAggerSpec:
        """Spec for :class:`DAggerActor` with a copy of ``learner`` and ``env_id``'s expert (or ``expert``)."""
        return DAggerSpec(policy_payload(learner), env_id, beta, expert)


@register_actor_spec("expert")
@dataclass(frozen=True)
class ExpertSpec(ActorSpec):
    """:class:`ExpertActor`: ``env_id``'s scripted expert, or the one ``expert_name`` names
    (``"package.module:name"``); no weights."""

    env_id: str
    expert_name: str = ""

    @property
    def name(self) -> str:  # type: ignore[override]
        """``expert:<expert or env id>``, as the actor records it."""
        return f"expert:{self.expert_name or self.env_id}"

    def build(self, payload: dict[str, Any] | None = None, slots: int = 1) -> Actor:
        """The experts for ``slots`` envs."""
        return ExpertActor(self.env_id, slots, self.expert_name)


@register_actor_spec("policy")
@dataclass(frozen=True)
class PolicySpec(ActorSpec):
    """:class:`PolicyActor`; ``payload`` is the policy's checkpoint."""

    payload: dict[str, Any] | None = None
    name: str = "policy"
    deterministic: bool = True
    action_noise: float = 0.0

    def build(self, payload: dict[str, Any] | None = None, slots: int = 1) -> Actor:
        """The policy acting on ``slots`` envs."""
        return PolicyActor(policy_from_payload(self._payload(payload)), self.name, self.deterministic,
                           self.action_noise, slots)


@register_actor_spec("stopping")
@dataclass(frozen=True)
class StoppingSpec(ActorSpec):
    """:class:`StoppingPolicyActor`; ``payload`` holds the ``policy`` and ``detector`` checkpoints."""

    acting_key: ClassVar[str | None] = "policy"
    payload: dict[str, Any] | None = None
    threshold: float = 0.0
    name: str = "policy"
    deterministic: bool = True

    def build(self, payload: dict[str, Any] | None = None, slots: int = 1) -> Actor:
        """The policy, stopped by the detector, acting on ``slots`` envs."""
        payload = self._payload(payload)
        return StoppingPolicyActor(policy_from_payload(payload["policy"]), policy_from_payload(payload["detector"]),
                                   self.threshold, self.name, self.deterministic, slots)


@register_actor_spec("sample")
@dataclass(frozen=True)
class SampleSpec(ActorSpec):
    """:class:`SamplingActor`; ``payload`` holds the ``policy`` checkpoint."""

    acting_key: ClassVar[str | None] = "policy"
    payload: dict[str, Any] | None = None
    min_std: float = 0.0
    name: str = "sample"

    def build(self, payload: dict[str, Any] | None = None, slots: int = 1) -> Actor:
        """The sampling policy acting on ``slots`` envs."""
        return SamplingActor(policy_from_payload(self._payload(payload)["policy"]), self.min_std, slots)


@register_actor_spec("practice")
@dataclass(frozen=True)
class PracticeSpec(ActorSpec):
    """:class:`PracticeActor`; ``payload`` holds the ``policy`` and ``detector`` checkpoints."""

    acting_key: ClassVar[str | None] = "policy"
    payload: dict[str, Any] | None = None
    threshold: float = 0.0
    min_std: float = 0.0
    name: str = "practice"

    def build(self, payload: dict[str, Any] | None = None, slots: int = 1) -> Actor:
        """The practising policy, stopped by the detector, on ``slots`` envs."""
        payload = self._payload(payload)
        return PracticeActor(policy_from_payload(payload["policy"]), policy_from_payload(payload["detector"]),
                             self.threshold, self.min_std, slots)


@register_actor_spec("dagger")
@dataclass(frozen=True)
class DAggerSpec(ActorSpec):
    """:class:`DAggerActor`; ``payload`` is the learner's checkpoint, ``expert_name`` as for :class:`ExpertSpec`."""

    payload: dict[str, Any] | None = None
    env_id: str = ""
    beta: float = 0.0
    expert_name: str = ""
    name: str = "dagger"

    def build(self, payload: dict[str, Any] | None = None, slots: int = 1) -> Actor:
        """The learner/expert mixture on ``slots`` envs."""
        return DAggerActor(policy_from_payload(self._payload(payload)), self.env_id, self.beta, slots,
                           self.expert_name)
