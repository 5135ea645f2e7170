"""The HDF5 episode store: round trips, foreign files, crash safety, clear errors."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

from automimic.data import Episode, EpisodeStore, StoreError
from automimic.data.journal import JournaledFile, journal_path, rollback


def make_episode(t: int = 20, seed: int = 0, success: bool = True, **kw) -> Episode:
    rng = np.random.default_rng(seed)
    return Episode(obs={"state": rng.normal(size=(t, 6)).astype(np.float32)},
                   actions=rng.normal(size=(t, 2)).astype(np.float32), rewards=rng.normal(size=t).astype(np.float32),
                   success=success, final_obs={"state": rng.normal(size=6).astype(np.float32)}, seed=seed,
                   env_id="point/reach", **kw)


def test_round_trip_keeps_data_and_provenance(tmp_path):
    store = EpisodeStore(tmp_path / "d.h5")
    ep = make_episode(seed=4, source="self", round=2, policy="ema", perturb_sigma=0.02,
                      perturb_offset=np.array([[0.01, -0.02]]), attrs={"model": "ema", "selected": True})
    assert store.append(ep) == "demo_0"
    assert store.append(make_episode(seed=5, success=False)) == "demo_1"
    back = store.read("demo_0")
    np.testing.assert_array_equal(back.obs["state"], ep.obs["state"])
    np.testing.assert_array_equal(back.actions, ep.actions)
    np.testing.assert_array_equal(back.final_obs["state"], ep.final_obs["state"])
    assert (back.source, back.round, back.seed, back.policy) == ("self", 2, 4, "ema")
    assert back.perturb_sigma == 0.02 and back.attrs == {"model": "ema", "selected": True}
    np.testing.assert_array_equal(back.perturb_offset, [[0.01, -0.02]])
    s = store.summary()
    assert (s.episodes, s.steps, s.successes, s.env_id) == (2, 40, 1, "point/reach")
    assert s.obs_shapes == {"state": (6,)} and s.action_shape == (2,)
    # The file follows the robomimic layout that other tools read.
    with h5py.File(tmp_path / "d.h5") as f:
        g = f["data/demo_0"]
        assert g.attrs["num_samples"] == 20 and f["data"].attrs["total"] == 40
        assert set(g) >= {"obs", "next_obs", "actions", "rewards", "dones"}
        np.testing.assert_array_equal(g["next_obs/state"][:-1], ep.obs["state"][1:])
        assert json.loads(f["data"].attrs["env_args"])["env_name"] == "point/reach"


def test_refuses_to_mix_envs(tmp_path):
    store = EpisodeStore(tmp_path / "d.h5")
    store.append(make_episode())
    other = make_episode()
    other = Episode(**{**other.__dict__, "env_id": "metaworld/push-v3"})
    with pytest.raises(StoreError, match="refusing to append"):
        store.append(other)
    assert len(store) == 1


def build_robomimic_file(path, images: bool = False) -> None:
    """A file written the way robomimic / LIBERO write theirs (not with automimic)."""
    with h5py.File(path, "w") as f:
        data = f.create_group("data")
        data.attrs["env_args"] = json.dumps({"env_name": "Lift", "type": 1, "env_kwargs": {"control_freq": 20}})
        total = 0
        for i, t in enumerate([12, 9, 15]):
            g = data.create_group(f"demo_{i}")
            g.attrs["num_samples"] = t
            g.create_dataset("actions", data=np.full((t, 7), i, dtype=np.float64))
            g.create_dataset("rewards", data=np.zeros(t))
            g.create_dataset("dones", data=np.eye(1, t, t - 1, dtype=np.int64)[0])
            g.create_dataset("states", data=np.zeros((t, 32)))
            for group in ("obs", "next_obs"):
                o = g.create_group(group)
                o.create_dataset("robot0_eef_pos", data=np.arange(t * 3, dtype=np.float64).reshape(t, 3))
                o.create_dataset("object", data=np.ones((t, 10)))
                if images:
                    o.create_dataset("agentview_image", data=np.zeros((t, 84, 84, 3), np.uint8), compression="gzip")
            total += t
        data.attrs["total"] = total
        mask = f.create_group("mask")
        mask.create_dataset("train", data=np.array([b"demo_0", b"demo_2"]))
        mask.create_dataset("valid", data=np.array([b"demo_1"]))


def test_reads_foreign_robomimic_layout_with_masks(tmp_path):
    path = tmp_path / "lift.hdf5"
    build_robomimic_file(path, images=True)
    store = EpisodeStore(path)
    assert store.env_id() == "Lift"
    assert store.names() == ["demo_0", "demo_1", "demo_2"]
    assert store.names(mask="train") == ["demo_0", "demo_2"]
    eps = store.episodes(mask="valid")
    assert len(eps) == 1 and eps[0].length == 9 and eps[0].source == "imported" and eps[0].success
    assert eps[0].obs["agentview_image"].shape == (9, 84, 84, 3)
    assert eps[0].actions.shape == (9, 7) and eps[0].seed is None
    s = store.summary()
    assert s.masks == {"train": 2, "valid": 1} and s.sources == {"imported": 3}
    assert s.obs_shapes["robot0_eef_pos"] == (3,) and s.steps == 36
    with pytest.raises(StoreError, match="no mask 'test'"):
        store.names(mask="test")
    # Appending to a foreign file keeps its episodes and continues the numbering.
    ep = make_episode()
    ep = Episode(**{**ep.__dict__, "env_id": "Lift"})
    assert store.append(ep) == "demo_3"
    assert len(store) == 4 and store.read("demo_1").length == 9


def test_clear_errors_for_foreign_and_truncated_files(tmp_path):
    text = tmp_path / "notes.h5"
    text.write_text("hello")
    with pytest.raises(StoreError) as err:
        EpisodeStore(text).summary()
    assert str(text) in str(err.value) and "not an HDF5 file" in str(err.value) and "\n" not in str(err.value)

    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as f:
        f.create_dataset("weights", data=np.zeros(3))
    with pytest.raises(StoreError, match=r"no 'data' group.*found \['weights'\]"):
        EpisodeStore(other).names()

    good = tmp_path / "good.h5"
    store = EpisodeStore(good)
    for i in range(3):
        store.append(make_episode(t=200, seed=i))
    cut = tmp_path / "cut.h5"
    cut.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(StoreError, match=r"cut\.h5: truncated HDF5 file"):
        EpisodeStore(cut).summary()

    missing = tmp_path / "partial.h5"
    build_robomimic_file(missing)
    with h5py.File(missing, "a") as f:
        del f["data/demo_1/actions"]
    with pytest.raises(StoreError, match="episode demo_1 has no 'actions'"):
        EpisodeStore(missing).episodes()


def test_journal_rolls_back_an_unfinished_append(tmp_path):
    path = tmp_path / "f.bin"
    path.write_bytes(b"A" * 100)
    j = JournaledFile(path)
    j.seek(10)
    j.write(b"B" * 20)  # overwrites old bytes: journaled
    j.seek(95)
    j.write(b"C" * 30)  # straddles the old end: 5 old bytes journaled, 25 new
    j.truncate(50)  # would cut old data: journaled
    assert journal_path(path).exists()
    # Simulate the kill: the file object is dropped without commit.
    assert rollback(path)
    assert path.read_bytes() == b"A" * 100 and not journal_path(path).exists()


WRITER = textwrap.dedent("""
    import sys, numpy as np
    from automimic.data import Episode, EpisodeStore
    store = EpisodeStore(sys.argv[1])
    i = 0
    while True:
        rng = np.random.default_rng(i)
        t = 400
        store.append(Episode(obs={"state": rng.normal(size=(t, 200)).astype(np.float32)},
                             actions=np.full((t, 4), i, np.float32), rewards=np.zeros(t, np.float32),
                             success=True, seed=i, env_id="point/reach"))
        print(i, flush=True)
        i += 1
""")


def _wait_stopped(pid: int) -> None:
    """Return once ``pid`` is really stopped (kill(2) only queues SIGSTOP; delivery comes later)."""
    stat = Path(f"/proc/{pid}/stat")
    if not stat.exists():
        time.sleep(0.1)  # no procfs: give the signal ample time instead
        return
    # The state letter follows the parenthesised command name, which may itself contain spaces.
    while stat.read_text().rsplit(")", 1)[1].split()[0] not in ("T", "t"):
        time.sleep(0.0005)


def _stop_inside_an_append(proc: subprocess.Popen, path, deadline: float) -> None:
    """Freeze the writer at a moment its journal exists, i.e. inside an append (not between two).

    Polling for the journal and then killing is a race: on a loaded machine the writer can finish
    that append, and start the next, between the two. A stopped process cannot move, so the check
    made after SIGSTOP is the state the SIGKILL lands in.
    """
    while time.time() < deadline:
        if journal_path(path).exists():
            proc.send_signal(signal.SIGSTOP)
            _wait_stopped(proc.pid)
            if journal_path(path).exists():
                return
            proc.send_signal(signal.SIGCONT)  # it was between appends after all: let it go on
        time.sleep(0.001)
    raise AssertionError("the writer was never caught inside an append")


@pytest.mark.slow
def test_sigkill_while_appending_keeps_every_earlier_episode(tmp_path):
    path = tmp_path / "killed.h5"
    kept = 0
    for trial in range(3):
        proc = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], stdout=subprocess.PIPE, text=True)
        target = 3 + 2 * trial
        while int(proc.stdout.readline()) < target:
            pass
        _stop_inside_an_append(proc, path, deadline=time.time() + 30)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        # The writer prints an index only after that append committed, and may have committed
        # more since the test read `target`: every index it printed before the kill counts.
        printed = [target] + [int(line) for line in proc.stdout.read().split()]
        proc.stdout.close()
        assert journal_path(path).exists()
        store = EpisodeStore(path)
        names = store.names()  # opening recovers from the interrupted append
        assert not journal_path(path).exists()
        # Every committed episode, from this trial and the earlier ones, is intact; the one being
        # appended when the kill landed is gone (its journal rolled it back), none other.
        kept += max(printed) + 1
        assert len(names) == kept, (len(names), kept)
        for ep in store.episodes():
            assert ep.actions.shape == (400, 4) and ep.actions[0, 0] == ep.seed
            assert ep.obs["state"].shape == (400, 200)
        # The next trial appends to the same recovered file.


def test_annotate_updates_attributes_of_stored_episodes(tmp_path):
    store = EpisodeStore(tmp_path / "d.h5")
    for i in range(3):
        store.append(make_episode(seed=i, attrs={"model": "ema"}))
    store.annotate(["demo_0", "demo_2"], selected=True)
    assert [e.attrs for e in store.episodes()] == [
        {"model": "ema", "selected": True}, {"model": "ema"}, {"model": "ema", "selected": True}]
    with pytest.raises(StoreError, match="no episode 'demo_7'"):
        store.annotate(["demo_1", "demo_7"], selected=True)
    assert store.read("demo_1").attrs == {"model": "ema"}  # the failed call changed nothing


def test_entries_pair_attributes_with_episodes(tmp_path):
    store = EpisodeStore(tmp_path / "d.h5")
    for i in range(3):
        store.append(make_episode(seed=i, success=i != 1))
    pairs = store.entries()
    assert [info.name for info, _ in pairs] == ["demo_0", "demo_1", "demo_2"]
    assert all(info.seed == ep.seed and info.success == ep.success and info.length == ep.length for info, ep in pairs)


def test_two_collect_processes_into_one_file_store_every_seed_once(tmp_path):
    # Both processes work through the same seeds at the same time; the store decides under its lock
    # which seeds are still missing, so the file ends with exactly the episodes asked for.
    out = tmp_path / "shared.h5"
    code = ("import sys; from automimic.rollout.collect import collect_demos; "
            "collect_demos('point/reach', 40, sys.argv[1], progress=False)")
    procs = [subprocess.Popen([sys.executable, "-c", code, str(out)]) for _ in range(2)]
    assert [p.wait(timeout=300) for p in procs] == [0, 0]
    seeds = [i.seed for i in EpisodeStore(out).index()]
    assert len(seeds) == 40 and len(set(seeds)) == 40


def test_index_lists_episodes_in_one_read_and_recovers_from_foreign_edits(tmp_path):
    """The store keeps a root-level index of its episodes (what ``index()`` and ``append_unique`` read);
    a file edited by a tool that does not keep it is listed by opening every episode, and the next
    append rebuilds the index."""
    import h5py

    path = tmp_path / "s.h5"
    store = EpisodeStore(path, env_id="point/reach")
    for i in range(3):
        store.append(make_episode(seed=i))
    with h5py.File(path, "r") as f:
        assert len(f["automimic_index"]) == 3 and "automimic_index" not in f["data"]
    expected = store.index()
    assert [i.seed for i in expected] == [0, 1, 2]
    # Another tool copies an episode in without touching the index: the index is now stale.
    with h5py.File(path, "a") as f:
        f.copy(f["data/demo_1"], "data/demo_3")
    listed = store.index()
    assert [i.name for i in listed] == ["demo_0", "demo_1", "demo_2", "demo_3"] and listed[3].seed == 1
    assert store.append_unique(make_episode(seed=1), 10) is None  # seed 1 is there twice now
    store.append(make_episode(seed=9))
    with h5py.File(path, "r") as f:
        assert len(f["automimic_index"]) == 5
    assert [i.seed for i in store.index()] == [0, 1, 2, 1, 9]
