"""The command line, end to end on point/reach (and the installed entry point)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from automimic.cli import app
from automimic.data import EpisodeStore

runner = CliRunner()


def invoke(*args: str):
    result = runner.invoke(app, list(args), catch_exceptions=False)
    return result


def test_collect_keeps_only_successes_unless_asked(tmp_path):
    out = tmp_path / "demos.h5"
    r = invoke("collect", "--env", "point/reach", "--episodes", "6", "--out", str(out), "--horizon", "22")
    assert r.exit_code == 0, r.output
    eps = EpisodeStore(out).episodes()
    assert len(eps) == 6 and all(e.success for e in eps) and all(e.source == "expert" for e in eps)
    both = tmp_path / "both.h5"
    r = invoke("collect", "--env", "point/reach", "--episodes", "12", "--out", str(both), "--horizon", "22",
               "--keep-failures")
    assert r.exit_code == 0, r.output
    flags = [e.success for e in EpisodeStore(both).episodes()]
    assert len(flags) == 12 and not all(flags) and any(flags)
    # Asking again for more continues with new start seeds instead of repeating old ones.
    r = invoke("collect", "--env", "point/reach", "--episodes", "9", "--out", str(out), "--horizon", "22")
    seeds = [e.seed for e in EpisodeStore(out).episodes()]
    assert len(seeds) == 9 and len(set(seeds)) == 9


def test_data_info_prints_the_summary(point_demos):
    r = invoke("data", "info", str(point_demos))
    assert r.exit_code == 0
    for text in ("point/reach", "episodes", "60", "success rate", "1.000", "expert: 60", "obs/state", "(6,)",
                 "actions", "(2,)"):
        assert text in r.output, text


def test_errors_are_one_line_and_name_the_problem(tmp_path):
    bad = tmp_path / "bad.h5"
    bad.write_text("not hdf5")
    r = invoke("data", "info", str(bad))
    assert r.exit_code == 2 and "bad.h5: not an HDF5 file" in r.output
    r = invoke("collect", "--env", "metaworld/nope-v3", "--episodes", "1", "--out", str(tmp_path / "x.h5"))
    assert r.exit_code == 2 and "unknown env id 'metaworld/nope-v3'" in r.output
    r = invoke("train", "bc", "--data", str(tmp_path / "missing.h5"), "--out", str(tmp_path / "run"))
    assert r.exit_code == 2 and "missing.h5: no such file" in r.output


def test_train_eval_and_video_from_the_command_line(point_demos, tmp_path):
    run = tmp_path / "run"
    r = invoke("train", "bc", "--data", str(point_demos), "--out", str(run), "--set", "train.steps=200",
               "--set", "policy_config={hidden: [32, 32]}")
    assert r.exit_code == 0, r.output
    r = invoke("eval", str(run), "--episodes", "6", "--video", "1")
    assert r.exit_code == 0, r.output
    assert "point/reach (best): success" in r.output and "over 6 episodes" in r.output
    result = json.loads((run / "eval.json").read_text())
    assert len(result["seeds"]) == 6 and result["episodes"] == 6
    assert len(list((run / "videos").glob("*.mp4"))) == 1
    r = invoke("eval", str(run), "--episodes", "2", "--checkpoint", "last")
    assert r.exit_code == 0 and "point/reach (last): success" in r.output, r.output
    r = invoke("eval", str(run), "--episodes", "2", "--checkpoint", "middle")
    assert r.exit_code == 2 and "bc runs have best | last" in r.output
    r = invoke("train", "bc", "--data", str(point_demos), "--out", str(tmp_path / "r2"), "--set", "train.stepz=3")
    assert r.exit_code == 2 and "unknown field 'stepz'" in r.output


def test_main_job_prints_its_table(tmp_path):
    r = invoke("run", "--out", str(tmp_path / "main"), "--env", "point/reach", "--demos", "5", "--episodes", "6",
               "--rounds", "1", "--practice", "4", "--steps", "100", "--workers", "1")
    assert r.exit_code == 0, r.output
    assert "BC (5 demos)" in r.output and "SEIL round 1" in r.output and "95% CI" in r.output
    assert (tmp_path / "main" / "demos.h5").exists() and (tmp_path / "main" / "seil" / "report.md").exists()
    rounds = (tmp_path / "main" / "seil" / "rounds.jsonl").read_text().splitlines()
    assert [json.loads(line)["round"] for line in rounds] == [0, 1]


def test_installed_entry_point():
    proc = subprocess.run([sys.executable, "-m", "automimic.cli", "envs"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and "metaworld/pick-place-v3" in proc.stdout and "point/reach" in proc.stdout


def test_improve_seil_prints_rounds_and_writes_the_report(point_demos, tmp_path):
    out = tmp_path / "seil"
    r = invoke("improve", "seil", "--data", str(point_demos), "--out", str(out), "--rounds", "1",
               "--set", "demos=3", "--set", "practice_episodes=4", "--set", "keep=2", "--set", "eval_episodes=4",
               "--set", "workers=1", "--set", "train.steps=40", "--set", "policy_config={hidden: [16]}")
    assert r.exit_code == 0, r.output
    assert "round 0: practice 0" in r.output and "round 1: practice 8" in r.output
    assert (out / "report.md").exists() and (out / "success.png").exists() and (out / "episodes.png").exists()
    r = invoke("improve", "seil", "--data", str(point_demos), "--out", str(tmp_path / "x"), "--set", "selector=best")
    assert r.exit_code == 2 and "selector must be one of" in r.output


def test_image_diffusion_policy_from_the_command_line(tmp_path):
    demos = tmp_path / "img.h5"
    r = invoke("collect", "--env", "point/reach", "--episodes", "4", "--out", str(demos), "--camera", "top",
               "--image-size", "24")
    assert "4 episodes" in r.output
    run = tmp_path / "dp"
    invoke("train", "bc", "--data", str(demos), "--out", str(run), "--set", "policy=diffusion",
           "--set", "policy_config.image_keys=[top_image]", "--set", "policy_config.image_size=24",
           "--set", "policy_config.obs_keys=[proprio]", "--set", "policy_config.image_width=4",
           "--set", "policy_config.down_dims=[16,32]", "--set", "train.steps=3", "--set", "train.batch_size=4")
    r = invoke("eval", str(run), "--episodes", "2", "--horizon", "16", "--video", "1")
    assert "over 2 episodes" in r.output
    videos = list((run / "videos").glob("*.mp4"))
    assert len(videos) == 1 and videos[0].stat().st_size > 0


@pytest.mark.parametrize("algo", ["gail", "airl", "bc-rl", "residual"])
def test_rl_training_commands_print_iterations_and_evaluate(algo, point_demos, tmp_path):
    out = tmp_path / algo
    policy = "base_config" if algo == "residual" else "policy_config"
    r = invoke("train", algo, "--data", str(point_demos), "--out", str(out), "--iterations", "1",
               "--set", "demos=3", "--set", "bc.steps=50", "--set", f"{policy}.hidden=[16]",
               "--set", "rl.steps_per_iteration=100", "--set", "rl.eval_episodes=3", "--set", "rl.workers=1",
               "--set", "rl.robots=2")
    assert r.exit_code == 0, r.output
    assert "iter 0:" in r.output and "iter 1: env steps" in r.output and f"trained: {out}/rl.pt" in r.output
    r = invoke("eval", str(out), "--episodes", "3")
    assert r.exit_code == 0 and "point/reach (after RL): success" in r.output, r.output
    r = invoke("train", algo, "--data", str(point_demos), "--out", str(tmp_path / "x"), "--set", "rl.gama=0.9")
    assert r.exit_code == 2 and "unknown field 'gama'" in r.output


def test_train_bc_takes_env_and_policy_options_and_cpu_sized_defaults_per_policy_class(point_demos, tmp_path):
    import yaml
    from conftest import CHUNKED_CONFIGS

    act = ",".join(f"{k}: {v}" for k, v in CHUNKED_CONFIGS["act"].items())
    r = invoke("train", "bc", "--data", str(point_demos), "--out", str(tmp_path / "act"), "--policy", "act",
               "--env", "point/reach", "--set", "train.steps=30", "--set", f"policy_config={{{act}}}")
    assert r.exit_code == 0, r.output
    cfg = yaml.safe_load((tmp_path / "act" / "config.yaml").read_text())
    # ACT starts from its CPU-sized batch (64, not TrainConfig's 256); what the user sets still wins.
    assert cfg["policy"] == "act" and cfg["env_id"] == "point/reach"
    assert cfg["train"]["batch_size"] == 64 and cfg["train"]["steps"] == 30
    assert "training: " in r.output and "steps of 64 samples, about" in r.output
    r = invoke("train", "bc", "--data", str(point_demos), "--out", str(tmp_path / "mlp"), "--set", "train.steps=30")
    assert r.exit_code == 0, r.output
    assert yaml.safe_load((tmp_path / "mlp" / "config.yaml").read_text())["train"]["batch_size"] == 256


def test_cpu_sized_defaults_reach_every_training_section():
    """A practice or steps-to-go run trains its prior first: ACT there also starts CPU-sized."""
    from automimic.algos.bc_rl import BCRLConfig
    from automimic.algos.practice import PracticeConfig
    from automimic.algos.run_config import cpu_sized_base
    from automimic.algos.steps_to_go import StepsToGoConfig
    from automimic.policies import cpu_train_defaults

    sized = cpu_train_defaults("act")
    assert sized and sized["batch_size"] < 256
    for cls, section in ((PracticeConfig, "bc"), (StepsToGoConfig, "sft"), (BCRLConfig, "bc")):
        base = cpu_sized_base(cls, "act")
        assert {k: getattr(getattr(base, section), k) for k in sized} == sized, cls.__name__
    assert cpu_sized_base(PracticeConfig, "mlp") is None
