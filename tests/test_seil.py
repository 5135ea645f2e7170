"""SEIL end to end on point/reach: provenance, rounds, resume after a real kill, report."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from automimic.algos.seil import SEILConfig, rounds_without_gain, run_seil, write_report
from automimic.data import EpisodeStore
from automimic.policies import load_policy
from automimic.seeding import purpose_of
from automimic.training.loop import TrainConfig


def small_config(data, **kw) -> SEILConfig:
    base = dict(data=str(data), demos=5, rounds=1, practice_episodes=6, keep=3, eval_episodes=6, workers=1,
                perturb=0.05, ema_decay=0.9, train=TrainConfig(steps=60, batch_size=64, log_every=30,
                                                              checkpoint_every=30),
                policy_config={"hidden": [32, 32]})
    base.update(kw)
    return SEILConfig(**base)


def test_one_round_stores_practice_with_provenance(point_demos, tmp_path):
    rows = run_seil(small_config(point_demos), tmp_path / "seil", progress=False)
    assert [r.round for r in rows] == [0, 1]
    assert rows[0].practice == 0 and rows[0].train_episodes == 5
    store = EpisodeStore(tmp_path / "seil" / "episodes.h5")
    practice = [e for e in store.episodes() if e.source == "self"]
    assert len(practice) == 12 == rows[1].practice  # 6 primary + 6 EMA
    assert {e.attrs["model"] for e in practice} == {"primary", "ema"}
    assert all(e.attrs["weights_version"] >= 1 for e in practice)  # provenance survives SEIL's own attrs
    assert all(e.round == 1 and purpose_of(e.seed) == "practice" for e in practice)
    assert all(e.perturb_sigma == 0.05 and e.perturb_offset.shape == (1, 2) for e in practice)
    assert len({e.seed for e in practice}) == 12  # the two models practise from different starts
    selected = [e for e in practice if e.attrs["selected"]]
    assert all(e.success for e in selected)
    assert len(selected) == rows[1].selected == min(3, rows[1].successes)
    assert rows[1].train_episodes == 5 + len(selected)
    report = write_report(tmp_path / "seil")
    assert "| round |" in report.read_text() and (tmp_path / "seil" / "success.png").stat().st_size > 1000


def test_patience_counts_rounds_without_a_new_high():
    from automimic.algos.seil import RoundResult

    def row(r, s):
        return RoundResult(r, 0, 0, 0, 0, s, 0, 1, 0, 0)

    assert rounds_without_gain([row(0, 0.5), row(1, 0.7)]) == 0
    assert rounds_without_gain([row(0, 0.5), row(1, 0.7), row(2, 0.7), row(3, 0.6)]) == 2


def test_config_validation():
    with pytest.raises(ValueError, match="selector must be one of"):
        SEILConfig(selector="best")


KILLED_RUN = textwrap.dedent("""
    import sys, time
    from automimic.algos.seil import SEILConfig, run_seil
    from automimic.data.store import EpisodeStore
    from automimic.threads import configure_threads
    from automimic.training.loop import TrainConfig
    configure_threads()  # what a Python API script does; torch would take a thread per core
    if len(sys.argv) > 3:
        # Pause after the 3rd practice episode of round 1 is stored, so the kill lands mid-round
        # however loaded the machine is (a polling parent can be descheduled past the round's end).
        plain_append, stored = EpisodeStore.append, []
        def append(self, episode, durable=False):
            name = plain_append(self, episode, durable)
            if episode.source == "self" and episode.round == 1:
                stored.append(name)
                if len(stored) == 3:
                    print("paused", flush=True)
                    time.sleep(3600)
            return name
        EpisodeStore.append = append
    cfg = SEILConfig(data=sys.argv[1], demos=5, rounds=2, practice_episodes=6, keep=3, eval_episodes=4,
                     workers=1, perturb=0.05, ema_decay=0.9,
                     train=TrainConfig(steps=60, batch_size=64, log_every=30, checkpoint_every=30),
                     policy_config={"hidden": [32, 32]})
    if __name__ == "__main__":
        run_seil(cfg, sys.argv[2], progress=False, on_round=lambda r: print("done", r.round, flush=True))
""")


@pytest.mark.slow
def test_resume_after_a_real_kill_continues_in_the_same_round(point_demos, tmp_path):
    script = tmp_path / "run.py"
    script.write_text(KILLED_RUN)
    out = tmp_path / "seil"
    proc = subprocess.Popen([sys.executable, str(script), str(point_demos), str(out), "pause"],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().split() == ["done", "0"]
    # Kill once round 1 has stored some, but not all, of its practice episodes.
    assert proc.stdout.readline().split() == ["paused"]
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    store = EpisodeStore(out / "episodes.h5")
    before = [(i.seed, i.round) for i in store.index() if i.source == "self"]
    assert len(before) == 3 and {r for _, r in before} == {1}
    lines = (out / "rounds.jsonl").read_text().splitlines()
    assert [json.loads(x)["round"] for x in lines] == [0]

    proc = subprocess.run([sys.executable, str(script), str(point_demos), str(out)], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split() == ["done", "1", "done", "2"]  # round 0 was not redone
    after = [(i.seed, i.round) for i in store.index() if i.source == "self"]
    assert after[: len(before)] == before  # nothing stored before the kill was lost
    assert len(after) == 24 and len(set(after)) == 24  # no practice start was run twice


def test_practice_noise_is_seeded_per_episode(point_demos, tmp_path):
    from automimic.algos.bc import BCConfig, train_bc
    from automimic.envs import make_env
    from automimic.rollout.actors import PolicyActor
    from automimic.rollout.episode_runner import run_episode

    policy = train_bc(BCConfig(data=str(point_demos), train=TrainConfig(steps=30, batch_size=32)), tmp_path / "bc",
                      progress=False)
    env = make_env("point/reach", horizon=20)
    clean = run_episode(env, PolicyActor(policy), 7)
    noisy = run_episode(env, PolicyActor(policy, action_noise=0.3), 7)
    again = run_episode(env, PolicyActor(policy, action_noise=0.3), 7)
    other = run_episode(env, PolicyActor(policy, action_noise=0.3), 8)
    assert (noisy.actions == again.actions).all()
    assert not (noisy.actions[:5] == clean.actions[:5]).all()
    assert not (noisy.actions[:5] == other.actions[:5]).all()
    # The first action (same start state) differs from the clean one by exactly the noise drawn for it.
    expected = np.random.default_rng([7, 3]).normal(0.0, 0.3, size=2).astype(np.float32)
    np.testing.assert_allclose(noisy.actions[0] - clean.actions[0], expected, atol=1e-6)


@pytest.mark.slow
def test_one_round_with_a_chunked_policy_uses_chunked_rollouts_and_disagreement(point_demos, tmp_path, chunked):
    name, config = chunked
    rows = run_seil(small_config(point_demos, policy=name, policy_config=config, selector="low-confidence"),
                    tmp_path / "seil", progress=False)
    assert [r.round for r in rows] == [0, 1] and rows[1].practice == 12
    assert load_policy(tmp_path / "seil" / "round_1" / "checkpoints" / "best.pt").name == name
    practice = [e for e in EpisodeStore(tmp_path / "seil" / "episodes.h5").episodes() if e.source == "self"]
    assert {e.attrs["model"] for e in practice} == {"primary", "ema"}
    assert rows[1].selected == min(3, rows[1].successes)


@pytest.mark.slow
def test_same_round_in_process_in_local_workers_and_on_ray(point_demos, tmp_path):
    from conftest import ray_backend

    def run(name: str, workers: int) -> list:
        rows = run_seil(small_config(point_demos, workers=workers), tmp_path / name, progress=False)
        episodes = EpisodeStore(tmp_path / name / "episodes.h5").episodes()
        return [(r.practice, r.successes, r.selected, r.success) for r in rows], [e.actions for e in episodes]

    here, local = run("here", 1), run("local", 2)
    with ray_backend():
        on_ray = run("ray", 2)
    for other in (local, on_ray):
        assert other[0] == here[0]
        assert len(other[1]) == len(here[1]) and all(np.array_equal(a, b) for a, b in zip(other[1], here[1]))


def test_practice_perturbation_defaults_to_the_envs_own():
    from automimic.algos.seil import practice_perturb
    from automimic.envs import default_perturb
    from automimic.envs.metaworld import DEFAULT_PERTURB

    assert default_perturb("metaworld/push-v3") == DEFAULT_PERTURB and default_perturb("gym/Pendulum-v1") == 0.0
    assert practice_perturb(SEILConfig(), "gym/Pendulum-v1") == 0.0
    assert practice_perturb(SEILConfig(perturb=0.1), "gym/Pendulum-v1") == 0.1
