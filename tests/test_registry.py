"""The algorithm registry: every run folder names its algorithm, and eval/report/resume go by that name."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from typer.testing import CliRunner

from automimic.algos import registry
from automimic.algos.dagger import DAggerConfig, run_dagger
from automimic.algos.seil import SEILConfig, run_seil
from automimic.cli import app
from automimic.config import to_dict
from automimic.training.loop import TrainConfig
from automimic.training.run_dir import RunDir

runner = CliRunner()
SMALL = dict(demos=3, rounds=1, eval_episodes=3, workers=1, policy_config={"hidden": [16]},
             train=TrainConfig(steps=40, log_every=20, checkpoint_every=20))


def invoke(*args: str):
    return runner.invoke(app, list(args), catch_exceptions=False)


@pytest.fixture(scope="module")
def round_runs(point_demos, tmp_path_factory):
    """A finished one-round SEIL folder and a finished one-round DAgger folder."""
    root = tmp_path_factory.mktemp("rounds")
    run_seil(SEILConfig(data=str(point_demos), practice_episodes=4, keep=2, **SMALL), root / "seil", progress=False)
    run_dagger(DAggerConfig(data=str(point_demos), episodes_per_round=2, beta=0.0, **SMALL), root / "dagger",
               progress=False)
    return root


def test_every_algorithm_registers_a_config_a_run_and_a_policy_loader():
    expected = {"bc", "dagger", "seil", "gail", "airl", "bc-rl", "residual", "steps-to-go", "practice"}
    assert expected <= set(registry.names())
    for name in expected:
        a = registry.get(name)
        assert dataclasses.is_dataclass(a.config) and callable(a.run) and callable(a.load_policy), name
    assert registry.get("bc").checkpoints == ("best", "last")
    assert registry.get("gail").overrides == ("algo=gail",)
    with pytest.raises(ValueError, match="already registered: seil"):
        registry.register(registry.Algorithm("seil", SEILConfig, run_seil, lambda out: None))


@pytest.mark.parametrize("kind", ["seil", "dagger"])
def test_eval_reads_round_based_folders_and_their_rounds(kind, round_runs):
    out = round_runs / kind
    r = invoke("eval", str(out), "--episodes", "3")
    assert r.exit_code == 0 and "point/reach (last round): success" in r.output, r.output
    # A round folder is a plain training run: best or last checkpoint, as for bc.
    r = invoke("eval", str(out / "round_1"), "--episodes", "3", "--checkpoint", "last")
    assert r.exit_code == 0 and "point/reach (last): success" in r.output, r.output


def test_report_goes_through_the_registry(round_runs):
    r = invoke("report", str(round_runs / "seil"))
    assert r.exit_code == 0 and (round_runs / "seil" / "report.md").exists(), r.output
    r = invoke("report", str(round_runs / "dagger"))
    assert r.exit_code == 2 and "dagger runs have no report" in r.output and len(r.output.strip().splitlines()) == 1


def test_resume_rebuilds_the_recorded_config_and_finishes_nothing_twice(round_runs):
    out = round_runs / "seil"
    algorithm, cfg = registry.folder_config(out)
    recorded = RunDir(out).read_config()
    assert algorithm.name == "seil" and {"algo": "seil", **to_dict(cfg)} == recorded
    before = (out / "rounds.jsonl").read_text()
    r = invoke("resume", str(out))
    assert r.exit_code == 0 and "seil run finished" in r.output, r.output
    assert (out / "rounds.jsonl").read_text() == before
    r = invoke("resume", str(out / "round_0"))
    assert r.exit_code == 2 and "resume the parent folder" in r.output


@pytest.mark.parametrize("config", [None, "algo: nope\nenv_id: point/reach\n", "env_id: point/reach\n"])
def test_a_folder_without_a_known_algo_gets_one_line_and_exit_2(config, tmp_path):
    run = tmp_path / "odd"
    run.mkdir()
    if config is not None:
        (run / "config.yaml").write_text(config)
    for command in ("eval", "report", "resume"):
        r = invoke(command, str(run))
        lines = r.output.strip().splitlines()
        assert r.exit_code == 2 and len(lines) == 1, (command, r.output)
        assert str(run.name) in lines[0] and "known algorithms: airl, bc, bc-rl, dagger" in lines[0], lines[0]


@dataclass
class ToyConfig:
    """A toy algorithm: behaviour cloning under another name, registered by a test."""

    data: str = ""
    steps: int = 30
    env_id: str = "point/reach"
    policy_config: dict = field(default_factory=lambda: {"hidden": [16]})


def _toy_run(cfg: ToyConfig, out: Path, progress: bool = True, on_row=None):
    from automimic.algos.bc import checked_demos, fit_policy

    demos, env_id = checked_demos(cfg.data, cfg.env_id, 3)
    RunDir(out).write_config({"algo": "toy", **to_dict(cfg)})
    fit_policy(demos, env_id, Path(out) / "inner", policy_config=cfg.policy_config,
               train=TrainConfig(steps=cfg.steps, log_every=10), progress=False)
    (Path(out) / "toy.md").write_text("# toy\n")
    if on_row is not None:
        on_row(type("Row", (), {"line": lambda self: "toy row"})())


def _toy_policy(out: Path):
    from automimic.algos.bc import load_run_policy

    return load_run_policy(out / "inner", "last")


@pytest.fixture
def toy(monkeypatch):
    """Register ``toy`` for one test only (the registry's tables are restored afterwards)."""
    registry.names()  # discover the real algorithms first, so the copies hold them
    monkeypatch.setattr(registry, "_ALGORITHMS", dict(registry._ALGORITHMS))
    monkeypatch.setattr(registry, "_STAGES", set(registry._STAGES))
    return registry.register(registry.Algorithm("toy", ToyConfig, _toy_run, _toy_policy,
                                                report=lambda out: out / "toy.md", evaluated="toy policy"))


def test_a_registered_toy_algorithm_is_evaluable_without_touching_the_cli(toy, point_demos, tmp_path):
    out = tmp_path / "toy"
    toy.run(ToyConfig(data=str(point_demos)), out)
    r = invoke("eval", str(out), "--episodes", "2")
    assert r.exit_code == 0 and "point/reach (toy policy): success" in r.output, r.output
    assert invoke("report", str(out)).output.strip() == f"report: {out / 'toy.md'}"
    r = invoke("resume", str(out))
    assert r.exit_code == 0 and "toy row" in r.output and "toy run finished" in r.output, r.output
    assert "toy: ToyConfig, eval: toy policy, report" in invoke("algos").output
