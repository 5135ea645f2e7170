"""The training device: --device / AUTOMIMIC_DEVICE resolution, CPU results unchanged, device-clean code.

No test here needs a GPU (CI has none). What a GPU would exercise is checked on the CPU instead:
device resolution with ``torch.cuda`` patched (names only, no tensors); policies' training losses on
the ``meta`` device, which refuses to mix its tensors with CPU ones as CUDA does; and the off-policy
learner's separate-copy path (what a GPU runs) forced on the CPU, where it must match the in-place path bit for bit.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from conftest import CHUNKED_CONFIGS, run_killed_at_update
from test_practice import _cfg as practice_cfg

import automimic.device as device_mod
from automimic.algos import practice as practice_mod
from automimic.algos.bc import BCConfig, train_bc
from automimic.algos.offpolicy import OffPolicyLearner, UpdateConfig
from automimic.algos.practice import PracticeConfig, load_practice_policy, run_practice
from automimic.cli import app
from automimic.data.normalize import Normalizer
from automimic.device import ENV_VAR, compute_device, resolve_device, set_device, to_device
from automimic.policies import build_policy
from automimic.training.loop import TrainConfig


@pytest.fixture(autouse=True)
def _no_device_choice(monkeypatch):
    # Each test starts as a fresh process would: nothing chosen, no variable; the choice is undone after.
    monkeypatch.delenv(ENV_VAR, raising=False)
    monkeypatch.setattr(device_mod, "_chosen", None)


def _cuda(monkeypatch, available: bool, count: int = 1) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: available)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: count if available else 0)


# resolution -----------------------------------------------------------------------------------------
def test_auto_is_the_cpu_without_cuda_and_cuda_with_it(monkeypatch):
    _cuda(monkeypatch, False)
    assert resolve_device() == resolve_device("auto") == torch.device("cpu")
    _cuda(monkeypatch, True)
    assert resolve_device() == resolve_device("AUTO") == torch.device("cuda")
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("cuda:0") == torch.device("cuda", 0)


@pytest.mark.parametrize("name", ["cuda", "cuda:0"])
def test_a_gpu_this_machine_lacks_is_a_one_line_error(monkeypatch, name):
    _cuda(monkeypatch, False)
    with pytest.raises(ValueError) as err:
        resolve_device(name)
    assert str(err.value) == (f"device: {name!r} asks for a GPU, but torch sees none (no CUDA device or a CPU-only "
                              "torch build); use cpu or auto")


def test_a_gpu_index_past_the_last_gpu_is_refused(monkeypatch):
    _cuda(monkeypatch, True, count=2)
    assert resolve_device("cuda:1") == torch.device("cuda", 1)
    with pytest.raises(ValueError, match=r"^device: 'cuda:2' names GPU 2, but torch sees 2 \(cuda:0 to cuda:1\)$"):
        resolve_device("cuda:2")


@pytest.mark.parametrize("bad", ["gpu", "", "cpu:0", "cuda:", "cuda:x", "cuda:-1", "mps", "cuda cuda"])
def test_an_unknown_name_is_refused_naming_what_was_expected(bad):
    with pytest.raises(ValueError) as err:
        resolve_device(bad)
    assert str(err.value) == f"device: expected auto, cpu, cuda or cuda:N, got {bad!r}"


def test_the_environment_variable_is_read_and_an_argument_beats_it(monkeypatch):
    _cuda(monkeypatch, False)
    monkeypatch.setenv(ENV_VAR, "cpu")
    assert resolve_device() == torch.device("cpu") and compute_device() == torch.device("cpu")
    monkeypatch.setenv(ENV_VAR, "cuda")
    with pytest.raises(ValueError, match=r"^AUTOMIMIC_DEVICE: 'cuda' asks for a GPU"):
        compute_device()
    assert resolve_device("cpu") == torch.device("cpu")
    monkeypatch.setenv(ENV_VAR, "tpu")
    with pytest.raises(ValueError, match=r"^AUTOMIMIC_DEVICE: expected auto, cpu, cuda or cuda:N, got 'tpu'$"):
        resolve_device()
    monkeypatch.setenv(ENV_VAR, " ")  # set but blank: as if unset
    assert resolve_device() == torch.device("cpu")


def test_set_device_is_what_compute_device_returns_until_set_again(monkeypatch):
    _cuda(monkeypatch, True)
    assert compute_device() == torch.device("cuda")  # nothing chosen: auto
    assert set_device("cpu") == torch.device("cpu")
    monkeypatch.setenv(ENV_VAR, "cuda")
    assert compute_device() == torch.device("cpu")  # the choice stands; the variable is read by set_device
    assert set_device() == torch.device("cuda")


def test_to_device_moves_nested_tensors_and_leaves_the_rest():
    batch = {"obs": torch.zeros(2, 3), "images": {"cam": torch.zeros(2, 4, 4, 3, dtype=torch.uint8)}, "n": 3}
    moved = to_device(batch, torch.device("meta"))
    assert moved["obs"].is_meta and moved["images"]["cam"].is_meta and moved["n"] == 3
    assert to_device(batch, torch.device("cpu"))["obs"] is batch["obs"]  # already there: no copy


# command line ---------------------------------------------------------------------------------------
def test_the_cli_refuses_a_gpu_it_does_not_have_in_one_line_and_accepts_cpu(monkeypatch):
    _cuda(monkeypatch, False)
    runner = CliRunner()
    r = runner.invoke(app, ["--device", "cuda", "envs"], catch_exceptions=False)
    assert r.exit_code == 2
    assert r.output.strip().splitlines() == [
        ("error: device: 'cuda' asks for a GPU, but torch sees none (no CUDA device or a CPU-only torch build); "
         "use cpu or auto")]
    r = runner.invoke(app, ["--device", "nvidia", "envs"], catch_exceptions=False)
    assert r.exit_code == 2 and r.output.strip() == "error: device: expected auto, cpu, cuda or cuda:N, got 'nvidia'"
    monkeypatch.setenv(ENV_VAR, "cuda:1")
    r = runner.invoke(app, ["envs"], catch_exceptions=False)
    assert r.exit_code == 2 and r.output.strip().startswith("error: AUTOMIMIC_DEVICE: 'cuda:1' asks for a GPU")
    r = runner.invoke(app, ["--device", "cpu", "envs"], catch_exceptions=False)
    assert r.exit_code == 0 and compute_device() == torch.device("cpu") and "point/reach" in r.output


# training on the CPU ----------------------------------------------------------------------------------
def _bc(data) -> BCConfig:
    return BCConfig(data=str(data), train=TrainConfig(steps=60, batch_size=32, log_every=20, checkpoint_every=30),
                    policy_config={"hidden": [32, 32]})


def _tensors(value):
    if isinstance(value, torch.Tensor):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _tensors(v)
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from _tensors(v)


def test_training_on_the_chosen_cpu_gives_the_same_bits_and_cpu_checkpoints(point_demos, tmp_path, monkeypatch):
    _cuda(monkeypatch, False)
    unset = train_bc(_bc(point_demos), tmp_path / "unset", progress=False)
    set_device("cpu")
    chosen = train_bc(_bc(point_demos), tmp_path / "cpu", progress=False)
    assert unset.state_dict().keys() == chosen.state_dict().keys()
    for k, v in unset.state_dict().items():
        torch.testing.assert_close(chosen.state_dict()[k], v, rtol=0, atol=0)
    assert all(p.device.type == "cpu" for p in chosen.parameters())
    for name in ("last", "best"):
        # Loaded as saved (no map_location): every tensor in the file is a CPU tensor.
        payload = torch.load(tmp_path / "cpu" / "checkpoints" / f"{name}.pt", weights_only=False)
        assert all(t.device.type == "cpu" for t in _tensors(payload))


# device-clean training losses -----------------------------------------------------------------------
_IMAGES = {"image_keys": ("cam",), "image_size": 12, "image_width": 4, "crop_size": 10}
_LOSS_CASES = {
    "mlp": ("mlp", {"hidden": (16, 16), "obs_noise": 0.1}),
    "mlp-gaussian": ("mlp", {"hidden": (16,), "head": "gaussian"}),
    "act": ("act", CHUNKED_CONFIGS["act"]),
    "act-images": ("act", {**CHUNKED_CONFIGS["act"], **_IMAGES}),
    "diffusion": ("diffusion", CHUNKED_CONFIGS["diffusion"]),
    "diffusion-images": ("diffusion", {**CHUNKED_CONFIGS["diffusion"], **_IMAGES}),
    "multitask": ("multitask", {"base": "mlp", "base_config": {"hidden": (16,)}, "tasks": ("a", "b")}),
    "multitask-act": ("multitask", {"base": "act", "base_config": CHUNKED_CONFIGS["act"], "tasks": ("a", "b")}),
    "multitask-rows": ("multitask", {"base": "mlp", "base_config": {"hidden": (16,)}, "tasks": ("a", "b")}),
}


@pytest.mark.parametrize("case", sorted(_LOSS_CASES))
def test_training_losses_create_their_tensors_on_the_batch_device(case, monkeypatch):
    """The policy and batch on ``meta``: a tensor a loss creates on the CPU instead fails, as on a GPU.

    ``meta`` lets some ops take CPU operands that CUDA refuses (an embedding lookup with CPU indices),
    so every module input is also checked to be on ``meta``.
    ``meta`` tensors hold no values, so the normalisers' NaN check (a value check, fine on a GPU) is
    switched off; a steps-to-go head is left out because its loss selects the labelled rows, whose
    number a ``meta`` tensor cannot know (its own code creates no tensors).
    """
    name, config = _LOSS_CASES[case]
    monkeypatch.setattr(Normalizer, "_check", lambda self: None)
    obs_dim, action_dim, batch_size = 5, 3, 6
    policy = build_policy(name, {**config, "obs_keys": ("state",)}, obs_dim, action_dim)
    history, chunk = policy.history, policy.chunk
    steps = max(history, 1)
    batch = {"obs": torch.randn(batch_size, history, obs_dim) if history else torch.randn(batch_size, obs_dim),
             "actions": torch.randn(batch_size, chunk, action_dim) if chunk else torch.randn(batch_size, action_dim),
             "steps_to_go": torch.full((batch_size,), -1.0)}
    if chunk:
        batch["action_mask"] = torch.arange(chunk)[None].expand(batch_size, -1) < 3
        batch["obs_pad"] = torch.zeros(batch_size, history, dtype=torch.bool)
    if policy.image_keys:
        batch["images"] = {"cam": torch.randint(0, 256, (batch_size, steps, 12, 12, 3), dtype=torch.uint8)}
    if case == "multitask-rows":  # each row's own task; the others act on the policy's task
        batch["task"] = torch.tensor([0, 1] * (batch_size // 2))
    policy.train().to("meta")

    def on_meta(module: torch.nn.Module, args: tuple) -> None:
        for arg in args:
            if isinstance(arg, torch.Tensor):
                assert arg.is_meta, f"{type(module).__name__} got an input on {arg.device}"

    hook = torch.nn.modules.module.register_module_forward_pre_hook(on_meta)
    try:
        losses = policy.training_loss(to_device(batch, torch.device("meta")))
    finally:
        hook.remove()
    losses["loss"].backward()
    assert all(v.is_meta for v in losses.values())
    assert all(p.grad is None or p.grad.is_meta for p in policy.parameters())


# the off-policy learner's device path, on the CPU ------------------------------------------------------
def _practice(data, **over) -> PracticeConfig:
    """test_practice's small point/reach run, smaller still."""
    small = dict(budget=1200, bc=TrainConfig(steps=100, checkpoint_every=10**6), eval_every=600, eval_episodes=4,
                 warmup_updates=30, actor_start=300, actor_hidden=(16, 16), critic_hidden=(16, 16),
                 update=UpdateConfig(batch=32))
    return practice_cfg(data, **{**small, **over})


class _CopyingLearner(OffPolicyLearner):
    """The learner practice builds, on a copy as off the CPU."""

    def __init__(self, policy, cfg) -> None:
        super().__init__(policy, cfg, device="cpu", own_copy=True)


def test_a_learner_on_its_own_copy_matches_the_in_place_learner_bit_for_bit(point_demos, tmp_path, monkeypatch):
    """What a GPU runs (a separate copy, batches moved over, weights published back), forced on the CPU."""
    in_place = run_practice(_practice(point_demos), tmp_path / "in-place", progress=False)
    monkeypatch.setattr(practice_mod, "OffPolicyLearner", _CopyingLearner)
    copied = run_practice(_practice(point_demos), tmp_path / "copy", progress=False)
    assert [r.success for r in copied] == [r.success for r in in_place]
    assert [(r.critic_loss, r.actor_loss, r.q_mean) for r in copied] == [
        (r.critic_loss, r.actor_loss, r.q_mean) for r in in_place]
    want = load_practice_policy(tmp_path / "in-place").state_dict()
    got = load_practice_policy(tmp_path / "copy").state_dict()
    for k, v in want.items():
        torch.testing.assert_close(got[k], v, rtol=0, atol=0)

    # Killed inside a later cycle's updates and resumed: the copy is loaded back from the acting policy.
    run_killed_at_update(monkeypatch, lambda: run_practice(_practice(point_demos), tmp_path / "cut",
                                                           progress=False), 201)
    resumed = run_practice(_practice(point_demos), tmp_path / "cut", progress=False)
    assert [r.success for r in resumed] == [r.success for r in in_place]
    got = load_practice_policy(tmp_path / "cut").state_dict()
    for k, v in want.items():
        torch.testing.assert_close(got[k], v, rtol=0, atol=0)


def test_the_learners_copy_leaves_the_prior_behind_and_publishes_only_when_asked(point_demos):
    from automimic.data.store import EpisodeStore

    demos = EpisodeStore(point_demos).episodes()[:2]
    base = practice_mod.initial_policy(demos, "point/reach", None, policy="mlp", policy_config={"hidden": [16]},
                                       train=TrainConfig(steps=1), seed=0, warm_start=False)
    policy = practice_mod.PriorActorPolicy.from_base(base, practice_mod.Transitions.from_episodes(demos),
                                                     -np.ones(2), np.ones(2), mode="actor", actor_hidden=(8,),
                                                     critic_hidden=(8,))
    learner = OffPolicyLearner(policy, UpdateConfig(batch=4), device="cpu", own_copy=True)
    assert learner.net is not policy and not any(k.startswith("base.") for k in learner.net.state_dict())
    with torch.no_grad():
        for p in learner.net.actor.parameters():
            p.add_(1.0)
    before = {k: v.clone() for k, v in policy.actor.state_dict().items()}
    assert all(torch.equal(policy.actor.state_dict()[k], v) for k, v in before.items())
    learner.publish()
    for k, v in learner.net.actor.state_dict().items():
        assert torch.equal(policy.actor.state_dict()[k], v) and not torch.equal(before[k], v)
    assert OffPolicyLearner(policy, UpdateConfig(), device="cpu").net is policy  # the CPU default: in place
