"""Configs: YAML files and --set overrides, with errors that name the field."""

from __future__ import annotations

import pytest

from automimic.algos.bc import BCConfig
from automimic.config import load_config, to_dict
from automimic.seeding import episode_seeds, purpose_of


def test_yaml_then_overrides(tmp_path):
    path = tmp_path / "bc.yaml"
    path.write_text("episodes: 5\ntrain:\n  steps: 123\n  lr: 0.01\npolicy_config:\n  head: gaussian\n")
    cfg = load_config(BCConfig, path, ["train.steps=77", "val_episodes=3", "train.validate_every=50"])
    assert cfg.episodes == 5 and cfg.train.steps == 77 and cfg.train.lr == 0.01 and cfg.val_episodes == 3
    assert cfg.policy_config == {"head": "gaussian"}
    assert load_config(BCConfig, None, None) == BCConfig()
    # Free-form sections (a policy's own config) accept any key; the policy class validates it.
    assert load_config(BCConfig, None, ["policy_config.head=gaussian"]).policy_config == {"head": "gaussian"}
    assert to_dict(cfg)["train"]["steps"] == 77


@pytest.mark.parametrize("override, message", [
    ("train.stepz=1", "unknown field 'stepz'"),
    ("nosection.x=1", "'nosection' is not a config section"),
    ("steps", "--set expects key=value"),
    ("train.steps=0", "train.steps must be positive, got 0"),
])
def test_bad_overrides_name_the_field(override, message):
    with pytest.raises(ValueError, match=message):
        load_config(BCConfig, None, [override])


def test_yaml_with_unknown_field(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("trian:\n  steps: 3\n")
    with pytest.raises(ValueError, match=r"bad.yaml: unknown field 'trian'"):
        load_config(BCConfig, path)


def test_seed_ranges_are_disjoint_and_validated():
    assert purpose_of(episode_seeds("practice", 3, 1)[0]) == "practice"
    assert episode_seeds("collect", 0, 3) == [0, 1, 2]
    assert episode_seeds("collect", 1, 1, start=5) == [100_005]
    with pytest.raises(ValueError, match="purpose must be one of"):
        episode_seeds("train", 0, 1)
    with pytest.raises(ValueError, match="seed must be in"):
        episode_seeds("eval", 1000, 1)
