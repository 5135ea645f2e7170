"""Bad input gets one line naming the file or field, exit code 2, and nothing written or changed."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
from typer.testing import CliRunner

from automimic.cli import app
from automimic.data.episode import Episode
from automimic.data.store import EpisodeStore


def invoke(*args: str):
    return CliRunner().invoke(app, list(args))


def snapshot(folder) -> dict[str, str]:
    """Every file under ``folder`` with a hash of its bytes (empty if it does not exist)."""
    if not folder.exists():
        return {}
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def refused(result, *needles: str) -> None:
    assert result.exit_code == 2, result.output
    text = result.output.strip()
    assert "\n" not in text and "Traceback" not in text, text
    for needle in needles:
        assert needle in text, text


def store(path, env_id="point/reach", episodes=3, length=5, obs=None, actions=2, fill=None):
    """A small hand-made store: ``obs`` maps key -> width (default the point mass's 6-wide state)."""
    rng = np.random.default_rng(0)
    s = EpisodeStore(path, env_id=env_id)
    for i in range(episodes):
        o = {k: rng.normal(size=(length, w)).astype(np.float32) for k, w in (obs or {"state": 6}).items()}
        a = rng.uniform(-1, 1, size=(length, actions)).astype(np.float32)
        if fill is not None and i == episodes - 1:
            fill(o, a)
        s.append(Episode(obs=o, actions=a, rewards=np.zeros(length, np.float32), success=True, env_id=env_id))
    return path


def train(tmp_path, data, *extra):
    out = tmp_path / "run"
    return invoke("train", "bc", "--data", str(data), "--out", str(out), "--set", "train.steps=20", *extra), out


def train_refused(tmp_path, data, *needles: str, extra: tuple[str, ...] = ()) -> None:
    """``train bc`` on ``data`` is refused in one line holding ``needles``, and writes no run folder."""
    r, out = train(tmp_path, data, *extra)
    refused(r, *needles)
    assert snapshot(out) == {}


def test_obs_keys_the_env_does_not_produce(tmp_path):
    train_refused(tmp_path, store(tmp_path / "d.h5", obs={"robot0_eef_pos": 3}), "d.h5",
                  "obs/robot0_eef_pos is not an observation of env point/reach")


def test_actions_wider_than_the_env_takes(tmp_path):
    train_refused(tmp_path, store(tmp_path / "d.h5", actions=7), "d.h5", "actions are 7 wide, env point/reach takes 2")


def test_observations_wider_than_the_env_gives(tmp_path):
    train_refused(tmp_path, store(tmp_path / "d.h5", obs={"state": 10}), "d.h5",
                  "obs/state is 10 wide, env point/reach gives 6")


def test_an_env_id_the_registry_does_not_know(tmp_path):
    train_refused(tmp_path, store(tmp_path / "d.h5", env_id="Lift"), "d.h5", "unknown env id 'Lift'",
                  "the env this store records")


@pytest.mark.parametrize("field", ["actions", "obs/state"])
def test_nan_in_the_data(tmp_path, field):
    def poison(o, a):
        (a if field == "actions" else o["state"])[3, 0] = np.nan

    train_refused(tmp_path, store(tmp_path / "d.h5", fill=poison), "d.h5",
                  f"episode demo_2: {field} holds NaN or inf (first at step 3)")


def test_episodes_without_steps(tmp_path):
    train_refused(tmp_path, store(tmp_path / "d.h5", length=0), "d.h5", "episode demo_0 has no steps")


def test_ragged_widths_without_an_env(tmp_path):
    data = store(tmp_path / "d.h5", env_id="")
    EpisodeStore(data).append(Episode(obs={"state": np.zeros((4, 5), np.float32)}, actions=np.zeros((4, 2), np.float32),
                                      rewards=np.zeros(4, np.float32), success=True))
    train_refused(tmp_path, data, "d.h5", "episode demo_3: obs/state is 5 wide, episode demo_0's is 6")


@pytest.fixture(scope="module")
def trained(tmp_path_factory, point_demos):
    out = tmp_path_factory.mktemp("trained") / "run"
    r = invoke("train", "bc", "--data", str(point_demos), "--out", str(out), "--set", "train.steps=20",
               "--set", "policy_config={hidden: [16]}")
    assert r.exit_code == 0, r.output
    return out


def test_eval_on_an_env_with_other_observation_sizes(trained):
    before = snapshot(trained)
    r = invoke("eval", str(trained), "--env", "metaworld/reach-v3", "--episodes", "2")
    refused(r, str(trained), "reads 6 observation values (state), env metaworld/reach-v3 gives 39")
    assert snapshot(trained) == before


def test_eval_on_an_unknown_env_id(trained):
    before = snapshot(trained)
    r = invoke("eval", str(trained), "--env", "metaworld/nonexistent-v3", "--episodes", "2")
    refused(r, "unknown env id 'metaworld/nonexistent-v3'")
    assert snapshot(trained) == before


@pytest.mark.parametrize("damage, message", [
    (lambda b: b[: len(b) // 2], "not a readable automimic policy checkpoint"),
    (lambda b: b"", "empty file"),
    (lambda b: b"hello, not a checkpoint\n", "not a readable automimic policy checkpoint"),
])
def test_eval_of_a_damaged_checkpoint(trained, tmp_path, damage, message):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(trained, copy)
    best = copy / "checkpoints" / "best.pt"
    best.write_bytes(damage(best.read_bytes()))
    before = snapshot(copy)
    refused(invoke("eval", str(copy), "--episodes", "2"), "best.pt", message)
    assert snapshot(copy) == before


def test_eval_of_a_damaged_config(trained, tmp_path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(trained, copy)
    (copy / "config.yaml").write_text("env_id: [unclosed\n")
    before = snapshot(copy)
    refused(invoke("eval", str(copy), "--episodes", "2"), "config.yaml: not valid YAML")
    assert snapshot(copy) == before


def test_a_config_value_of_the_wrong_type(tmp_path, point_demos):
    train_refused(tmp_path, point_demos, "config.train.steps: expected an integer, got 'abc'",
                  extra=("--set", "train.steps=abc"))


def test_a_bad_policy_config_writes_nothing(tmp_path, point_demos):
    train_refused(tmp_path, point_demos, "unknown field(s) ['hiden'] for policy 'mlp'",
                  extra=("--set", "policy_config.hiden=[8]"))
    r, out = train(tmp_path, point_demos, "--set", "policy_config.hidden=[8]")  # the corrected command runs
    assert r.exit_code == 0, r.output


@pytest.mark.parametrize("value, message", [("abc", "policy_config.hidden: expected tuple[int, ...], got 'abc'"),
                                            ("[8, x]", "policy_config.hidden: expected tuple[int, ...], got [8, 'x']")])
def test_a_policy_config_value_of_the_wrong_type_is_named(tmp_path, point_demos, value, message):
    train_refused(tmp_path, point_demos, message, extra=("--set", f"policy_config.hidden={value}"))


def test_a_section_seed_that_the_run_seed_would_replace(tmp_path, point_demos):
    train_refused(tmp_path, point_demos, "train.seed is replaced by the run's seed", extra=("--set", "train.seed=3"))


def test_validation_episodes_without_a_validation_schedule(tmp_path, point_demos):
    train_refused(tmp_path, point_demos, "val_episodes needs train.validate_every", extra=("--set", "val_episodes=5"))


def test_a_damaged_config_file(tmp_path, point_demos):
    bad = tmp_path / "bc.yaml"
    bad.write_text("train: {steps: 3\n")
    train_refused(tmp_path, point_demos, "bc.yaml: not valid YAML", extra=("--config", str(bad)))
