"""Actor specs: one picklable spec class per actor kind, found by kind in a registry."""

from __future__ import annotations

import pickle

import pytest

from automimic.policies import build_policy
from automimic.rollout.actors import ActorSpec, actor_kinds, actor_spec_class


def _specs() -> dict[str, ActorSpec]:
    policy = build_policy("mlp", {"obs_keys": ("state",), "hidden": (8,), "head": "gaussian"}, 6, 2)
    detector = build_policy("mlp", {"obs_keys": ("state",), "hidden": (8,)}, 6, 2, steps_to_go={})
    return {"expert": ActorSpec.expert("point/reach"),
            "policy": ActorSpec.policy(policy, name="p", deterministic=False, action_noise=0.1),
            "stopping": ActorSpec.stopping(policy, detector, 3.0, name="p"),
            "sample": ActorSpec.sample(policy, 0.1),
            "practice": ActorSpec.practice(policy, detector, 3.0, 0.1),
            "dagger": ActorSpec.dagger(policy, "point/reach", 0.5)}


def test_every_registered_kind_builds_in_a_worker():
    specs = _specs()
    assert sorted(specs) == actor_kinds()  # a new kind gets a case here
    for kind, spec in specs.items():
        assert isinstance(spec, actor_spec_class(kind)) and spec.kind == kind
        # What a worker receives: the spec without weights (hashable: the worker's actor key), then the payload.
        light = pickle.loads(pickle.dumps(spec.without_weights()))
        assert light == spec.without_weights() and hash(light) == hash(spec.without_weights())
        assert light.payload is None and light.env_kwargs(spec.payload) == spec.env_kwargs() == {}
        actor = light.build(spec.payload, slots=2)
        actor.reset(0, 1)
        assert actor.name.startswith(spec.name.split(":")[0])


def test_specs_of_different_kinds_never_share_a_worker_actor():
    specs = _specs()
    assert specs["stopping"].without_weights() != specs["policy"].without_weights()
    assert ActorSpec.expert("point/reach") == ActorSpec.expert("point/reach")
    assert ActorSpec.expert("point/reach") != ActorSpec.expert("point/reach", "pkg.mod:other")


def test_an_unknown_kind_is_a_one_line_error():
    with pytest.raises(ValueError, match=r"^unknown actor kind 'teleop'; registered: \['dagger', 'expert',"):
        actor_spec_class("teleop")
    with pytest.raises(ValueError, match="no weights to build from"):
        _specs()["policy"].without_weights().build()
