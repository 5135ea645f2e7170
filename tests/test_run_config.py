"""The run-level fields (demos, policy, pretrained start, seed): declared, documented and checked once."""

from __future__ import annotations

import dataclasses

import pytest
import yaml

from automimic.algos import registry
from automimic.algos.run_config import DemoSource, DemoStore, PolicyChoice, PretrainedStart, RunConfig
from automimic.algos.seil import SEILConfig
from automimic.algos.steps_to_go import StepsToGoConfig
from automimic.config import load_config, to_dict
from automimic.training.run_dir import RunDir

PIECES = (RunConfig, DemoStore, DemoSource, PolicyChoice, PretrainedStart)
#: Piece fields a config may declare again, to give them its own default (its docstring says why).
NEW_DEFAULTS = {"policy_config"}


def own_fields(piece: type) -> set[str]:
    return set(piece.__dict__.get("__annotations__", {}))


def configs() -> list[type]:
    return sorted({registry.get(name).config for name in registry.names()}, key=lambda c: c.__name__)


@pytest.mark.parametrize("config", configs(), ids=lambda c: c.__name__)
def test_every_algorithm_config_takes_its_run_fields_from_the_pieces(config):
    names = {f.name for f in dataclasses.fields(config)}
    for piece in PIECES:
        if own_fields(piece) & names:
            assert issubclass(config, piece), f"{config.__name__} declares {sorted(own_fields(piece) & names)} itself"
    assert issubclass(config, RunConfig) and ("data" not in names or issubclass(config, DemoStore))
    redeclared = own_fields(config) & set().union(*map(own_fields, PIECES))
    assert redeclared <= NEW_DEFAULTS, f"{config.__name__} declares {sorted(redeclared)} again"
    documented = {line.strip().split(":")[0] for line in (config.__doc__ or "").splitlines()
                  if line.startswith("        ") and not line.startswith("         ")}
    again = documented & (set().union(*map(own_fields, PIECES)) - NEW_DEFAULTS)
    assert not again, f"{config.__name__}'s docstring documents {sorted(again)} again"


def test_a_piece_documents_each_of_its_fields():
    for piece in PIECES:
        for name in own_fields(piece):
            assert f"        {name}: " in piece.__doc__, (piece.__name__, name)


def test_the_yaml_and_set_keys_stay_flat():
    cfg = load_config(StepsToGoConfig, None, ["data=d.h5", "env_id=point/reach", "demos=5", "seed=3",
                                              "policy_config.head=gaussian", "policy_config.hidden=[16]",
                                              "init=pre", "finetune=embedding"])
    assert (cfg.data, cfg.env_id, cfg.demos, cfg.seed, cfg.init, cfg.finetune) == ("d.h5", "point/reach", 5, 3,
                                                                                   "pre", "embedding")
    assert cfg.policy_config == {"head": "gaussian", "hidden": [16]}
    assert StepsToGoConfig().policy_config == {"head": "gaussian"} and SEILConfig().policy_config == {}
    assert list(to_dict(SEILConfig()))[:8] == ["seed", "data", "env_id", "demos", "policy", "policy_config",
                                               "init", "finetune"]


def test_an_old_flat_config_yaml_still_resumes(tmp_path):
    # config.yaml as SEIL wrote it before the pieces (their fields declared in SEILConfig, in this order).
    old = {"algo": "seil", "data": "d.h5", "env_id": "point/reach", "demos": 5, "rounds": 1, "patience": 0,
           "practice_episodes": 10, "use_ema": True, "ema_decay": 0.999, "perturb": 0.0, "action_noise": 0.3,
           "sample_actions": False, "selector": "uncertain-diverse", "keep": 20, "warm_start": False,
           "eval_episodes": 3, "workers": 1, "policy": "mlp", "policy_config": {"hidden": [16]},
           "train": to_dict(SEILConfig().train), "seed": 2, "init": "", "finetune": "full"}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(old, sort_keys=False))
    _, cfg = registry.folder_config(tmp_path)
    assert isinstance(cfg, SEILConfig) and (cfg.demos, cfg.seed, cfg.policy_config) == (5, 2, {"hidden": [16]})
    # The run rewrites its config on resume: the same fields, so the old folder is not refused.
    RunDir(tmp_path).write_config({"algo": "seil", **to_dict(cfg), "env_id": "point/reach"})


@pytest.mark.parametrize("name", registry.names())
def test_every_piece_check_runs_in_every_config(name):
    algorithm = registry.get(name)
    fields = {f.name for f in dataclasses.fields(algorithm.config)}
    bad = {"policy_config": ("policy_config.hiden=[8]", r"unknown field\(s\) \['hiden'\] for policy"),
           "demos": ("demos=-1", "demos must be >= 0"),
           "finetune": ("finetune=embedding", "fine-tunes a pretrained policy; give it with init")}
    checked = [bad[f] for f in bad if f in fields]
    assert checked or name == "residual"
    for override, message in checked:
        with pytest.raises(ValueError, match=message):
            load_config(algorithm.config, None, [*algorithm.overrides, override])
    load_config(algorithm.config, None, list(algorithm.overrides))  # the defaults pass every check
