"""``EpisodeStore``: an append-only HDF5 file in the robomimic / LIBERO layout.

Layout (what robomimic and LIBERO write, and what we write)::

    data/                      attrs: total (steps), env_args (JSON: env_name, type, env_kwargs)
      demo_0/                  attrs: num_samples, plus automimic provenance (source, round, seed, ...)
        obs/<key>              (T, ...)
        next_obs/<key>         (T, ...)
        actions                (T, A)
        rewards, dones         (T,)
    mask/<name>                optional lists of demo names (e.g. train / valid splits)

Files from other tools are read as they are; attributes they lack get documented defaults (an
imported demo without a ``success`` attribute counts as successful, because demonstration files
hold successful demonstrations). Every append holds an exclusive lock and goes through a rollback
journal (:mod:`automimic.data.journal`), so killing the writer at any moment loses at most the
episode being appended.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import json
import os
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import h5py
import numpy as np

from automimic.data.episode import Episode
from automimic.data.journal import JournaledFile, journal_path, rollback

_DEMO = re.compile(r"^demo_(\d+)$")
#: ``env_name`` of a store that holds episodes of several envs (a multi-task pretraining set); each
#: episode then names its own env in its ``env_id`` attribute.
MULTITASK = "multitask"
#: A row of :class:`EpisodeInfo` per episode (JSON strings), kept beside ``data/`` so that listing a
#: store of thousands of episodes is one read instead of opening every episode group. It sits at
#: the root, where robomimic and LIBERO readers (which look under ``data/`` and ``mask/``) never look.
_INDEX = "automimic_index"
_PROVENANCE = ("source", "round", "seed", "policy", "env_id", "perturb_sigma", "perturb_offset", "start_vector")


class StoreError(ValueError):
    """A file that is not a readable episode store; the message names the file and the problem."""


@dataclass(frozen=True)
class StoreSummary:
    """What ``automimic data info`` prints."""

    path: str
    env_id: str | None
    episodes: int
    steps: int
    successes: int
    sources: dict[str, int]
    obs_shapes: dict[str, tuple[int, ...]]
    action_shape: tuple[int, ...] | None
    masks: dict[str, int]
    tasks: dict[str, int] = dataclasses.field(default_factory=dict)

    @property
    def success_rate(self) -> float:
        """Fraction of episodes flagged successful (0 for an empty store)."""
        return self.successes / self.episodes if self.episodes else 0.0


@dataclass(frozen=True)
class EpisodeInfo:
    """One episode's attributes, read without loading its arrays."""

    name: str
    length: int
    success: bool
    source: str
    seed: int | None
    env_id: str
    round: int


class EpisodeStore:
    """Episodes in one HDF5 file. Open it, append, read; nothing stays open between calls.

    Args:
        path: the ``.h5``/``.hdf5`` file. It need not exist until the first :meth:`append`.
        env_id: written into ``env_args`` when the file is created; checked against on append.
    """

    def __init__(self, path: str | os.PathLike, env_id: str | None = None) -> None:
        self.path = Path(path)
        self._env_id = env_id

    # locking and recovery -----------------------------------------------------------------------
    @contextlib.contextmanager
    def _locked(self, exclusive: bool) -> Iterator[None]:
        if exclusive:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        else:
            try:
                fd = os.open(self.path, os.O_RDONLY)
            except FileNotFoundError:
                raise StoreError(f"{self.path}: no such file") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
            if journal_path(self.path).exists():
                # A writer died mid-append (a live one would hold the lock): undo its partial append.
                if not exclusive:
                    fcntl.flock(fd, fcntl.LOCK_EX)
                rollback(self.path)
                if not exclusive:
                    fcntl.flock(fd, fcntl.LOCK_SH)
            yield
        finally:
            os.close(fd)

    @contextlib.contextmanager
    def _read(self) -> Iterator[h5py.File]:
        with self._locked(exclusive=False):
            try:
                f = h5py.File(self.path, "r", locking=False)
            except OSError as err:
                raise StoreError(f"{self.path}: {_explain_open_error(self.path, err)}") from None
            with f:
                if "data" not in f or not isinstance(f["data"], h5py.Group):
                    raise StoreError(f"{self.path}: no 'data' group; expected the robomimic/LIBERO layout "
                                     f"(data/demo_N/obs/<key>, actions, ...), found {sorted(f.keys())}")
                yield f

    # writing ------------------------------------------------------------------------------------
    @contextlib.contextmanager
    def _write(self, durable: bool = False) -> Iterator[h5py.File]:
        """Exclusive, journaled write access: all of it lands, or (on error or kill) none of it."""
        with self._locked(exclusive=True):
            fresh = os.path.getsize(self.path) == 0
            journaled = JournaledFile(self.path)
            try:
                with h5py.File(journaled, "w" if fresh else "a") as f:
                    yield f
            except BaseException:
                journaled.abort()
                raise
            journaled.commit(durable=durable)

    def append(self, episode: Episode, durable: bool = False) -> str:
        """Append one episode; return its name (``demo_N``). Crash-safe (see module docstring).

        Args:
            episode: the episode to store.
            durable: also fsync, so the episode survives power loss (slower).
        """
        with self._write(durable) as f:
            return _add(self.path, f, episode, self._env_id)

    def append_unique(self, episode: Episode, limit: int) -> str | None:
        """Append ``episode`` unless the store already holds an episode of its env with its seed, or
        ``limit`` episodes of its env; return its name, or ``None`` when it was not appended.

        The check and the append happen under one exclusive lock, so several processes collecting
        into one file (each working through the same seeds) store every seed once and stop at
        ``limit`` together.
        """
        with self._write() as f:
            if "data" in f:
                mine = [i for i in _infos(self.path, f) if i.env_id == episode.env_id]
                if len(mine) >= limit or (episode.seed is not None and any(i.seed == episode.seed for i in mine)):
                    return None
            return _add(self.path, f, episode, self._env_id)

    def annotate(self, names: list[str], **attrs: Any) -> None:
        """Merge ``attrs`` into the ``extra`` attributes of episodes ``names`` (journaled, all or none).

        The arrays of an episode never change; this records decisions made after it was stored,
        such as whether a selector kept it.
        """
        with self._write() as f:
            for name in names:
                if name not in f["data"]:
                    raise StoreError(f"{self.path}: no episode {name!r}")
                g = f["data"][name]
                extra = json.loads(_text(g.attrs["extra"])) if "extra" in g.attrs else {}
                extra.update(attrs)
                g.attrs["extra"] = json.dumps(extra)

    # reading ------------------------------------------------------------------------------------
    def names(self, mask: str | None = None) -> list[str]:
        """Episode names in index order, optionally only those listed in ``mask/<mask>``."""
        with self._read() as f:
            return _names(self.path, f, mask)

    def __len__(self) -> int:
        return len(self.names())

    def read(self, name: str) -> Episode:
        """Load one episode by name."""
        with self._read() as f:
            if name not in f["data"]:
                raise StoreError(f"{self.path}: no episode {name!r}")
            return _read_episode(self.path, f["data"][name], _env_name(f))

    def episodes(self, mask: str | None = None, limit: int | None = None) -> list[Episode]:
        """Load episodes in index order (the first ``limit`` of them, or all)."""
        with self._read() as f:
            names = _names(self.path, f, mask)[:limit]
            env = _env_name(f)
            return [_read_episode(self.path, f["data"][n], env) for n in names]

    def env_id(self) -> str | None:
        """The env id recorded in ``data.attrs['env_args']`` (``None`` if the file names none, or
        holds several envs: see :data:`MULTITASK`)."""
        with self._read() as f:
            return _env_name(f)

    def tasks(self) -> dict[str, int]:
        """Episodes per env id, in first-appearance order (one entry for a single-task store)."""
        return dict(Counter(i.env_id for i in self.index()))

    def entries(self) -> list[tuple[EpisodeInfo, Episode]]:
        """Every episode with its attributes, in index order, from one open of the file."""
        with self._read() as f:
            env = _env_name(f)
            return [(_info(self.path, f["data"][n], n, env), _read_episode(self.path, f["data"][n], env))
                    for n in _names(self.path, f, None)]

    def index(self) -> list[EpisodeInfo]:
        """Attributes of every episode in index order (cheap: no observation or action data is read;
        one read of the store's index where it has an up-to-date one)."""
        with self._read() as f:
            return _infos(self.path, f)

    def summary(self) -> StoreSummary:
        """Counts, shapes and sources, read from attributes and dataset shapes (no bulk data loaded)."""
        with self._read() as f:
            env = _env_name(f)
            infos = _infos(self.path, f)
            obs_shapes: dict[str, tuple[int, ...]] = {}
            action_shape = None
            if infos:
                first = f["data"][infos[0].name]
                obs_shapes = {key: tuple(ds.shape[1:]) for key, ds in first["obs"].items()}
                action_shape = tuple(first["actions"].shape[1:])
            masks = {k: len(v) for k, v in f["mask"].items()} if "mask" in f else {}
            return StoreSummary(str(self.path), env, len(infos), sum(i.length for i in infos),
                                sum(i.success for i in infos), dict(Counter(i.source for i in infos)),
                                obs_shapes, action_shape, masks, dict(Counter(i.env_id for i in infos)))


# helpers ----------------------------------------------------------------------------------------
def _explain_open_error(path: Path, err: OSError) -> str:
    text = str(err)
    if "truncated file" in text:
        match = re.search(r"eof = (\d+).*stored_eof = (\d+)", text)
        detail = f" ({match.group(1)} of {match.group(2)} bytes present)" if match else ""
        return f"truncated HDF5 file{detail}; it was cut short while being copied or written"
    if "file signature not found" in text or "not an HDF5 file" in text.lower():
        return "not an HDF5 file; expected an episode store in the robomimic/LIBERO layout"
    return f"cannot open as HDF5 ({text.splitlines()[0]})"


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _env_name(f: h5py.File) -> str | None:
    raw = f["data"].attrs.get("env_args")
    if raw is None:
        return None
    try:
        name = json.loads(_text(raw)).get("env_name") or None
    except json.JSONDecodeError:
        return None
    return None if name == MULTITASK else name


def _check_env(path: Path, data: h5py.Group, env_id: str) -> None:
    raw = data.attrs.get("env_args")
    stored = json.loads(_text(raw)).get("env_name") if raw is not None else None
    if stored and stored != MULTITASK and env_id and stored != env_id:
        raise StoreError(f"{path}: holds episodes of {stored!r}, refusing to append one of {env_id!r}")


def _names(path: Path, f: h5py.File, mask: str | None) -> list[str]:
    names = sorted((n for n in f["data"] if _DEMO.match(n)), key=lambda n: int(_DEMO.match(n).group(1)))
    if mask is None:
        return names
    if "mask" not in f or mask not in f["mask"]:
        have = sorted(f["mask"]) if "mask" in f else []
        raise StoreError(f"{path}: no mask {mask!r}; masks present: {have}")
    wanted = {_text(n) for n in f["mask"][mask][()]}
    return [n for n in names if n in wanted]


def _add(path: Path, f: h5py.File, episode: Episode, env_id: str | None) -> str:
    """Write ``episode`` as the next ``demo_N`` of an open file (creating ``data`` on first use)."""
    if "data" not in f:
        data = f.create_group("data")
        data.attrs["env_args"] = json.dumps({"env_name": env_id or episode.env_id, "type": "automimic",
                                             "env_kwargs": {}})
        data.attrs["total"] = 0
    else:
        data = f["data"]
        _check_env(path, data, episode.env_id)
    if not episode.env_id and json.loads(_text(data.attrs["env_args"])).get("env_name") == MULTITASK:
        raise StoreError(f"{path}: holds episodes of several envs, so each must name its env; this one names none")
    name = f"demo_{_next_index(data)}"
    _write_episode(data.create_group(name), episode)
    data.attrs["total"] = int(data.attrs.get("total", 0)) + episode.length
    _index_added(path, f, _info(path, data[name], name, _env_name(f)))
    return name


def _infos(path: Path, f: h5py.File) -> list[EpisodeInfo]:
    """Every episode's :class:`EpisodeInfo`: from the index when it lists exactly the file's
    episodes, else by opening each episode (files from other tools, or from before the index)."""
    names = _names(path, f, None)
    rows = _index_rows(f)
    if rows is not None and [r.name for r in rows] == names:
        return rows
    env = _env_name(f)
    return [_info(path, f["data"][n], n, env) for n in names]


def _index_rows(f: h5py.File) -> list[EpisodeInfo] | None:
    if _INDEX not in f:
        return None
    return [EpisodeInfo(**json.loads(_text(row))) for row in f[_INDEX][()]]


def _index_added(path: Path, f: h5py.File, info: EpisodeInfo) -> None:
    """Record the episode just written in the index (inside the same journaled write), or rebuild
    the index from the episodes when it is missing or out of step with them."""
    row = json.dumps(dataclasses.asdict(info))
    rows = _index_rows(f)
    names = _names(path, f, None)
    if rows is not None and [r.name for r in rows] + [info.name] == names:
        ds = f[_INDEX]
        ds.resize((len(rows) + 1,))
        ds[len(rows)] = row
        return
    if _INDEX in f:
        del f[_INDEX]
    env = _env_name(f)
    every = [json.dumps(dataclasses.asdict(_info(path, f["data"][n], n, env))) for n in names]
    f.create_dataset(_INDEX, data=every, maxshape=(None,), chunks=(256,), dtype=h5py.string_dtype())


def _next_index(data: h5py.Group) -> int:
    indices = [int(m.group(1)) for n in data if (m := _DEMO.match(n))]
    return max(indices) + 1 if indices else 0


def _write_episode(g: h5py.Group, ep: Episode) -> None:
    for group_name, source in (("obs", ep.obs), ("next_obs", _next_obs(ep))):
        if source is None:
            continue
        group = g.create_group(group_name)
        for key, value in source.items():
            value = np.asarray(value)
            # Images compress well and dominate size; low-dim arrays are small and faster raw.
            kwargs = {"compression": "gzip", "compression_opts": 4, "chunks": True} if value.ndim >= 3 else {}
            group.create_dataset(key, data=value, **kwargs)
    g.create_dataset("actions", data=np.asarray(ep.actions, dtype=np.float32))
    g.create_dataset("rewards", data=np.asarray(ep.rewards, dtype=np.float32))
    g.create_dataset("dones", data=ep.dones)
    g.attrs["num_samples"] = ep.length
    g.attrs["success"] = bool(ep.success)
    g.attrs["source"] = ep.source
    g.attrs["round"] = int(ep.round)
    g.attrs["seed"] = -1 if ep.seed is None else int(ep.seed)
    g.attrs["policy"] = ep.policy
    g.attrs["env_id"] = ep.env_id
    g.attrs["perturb_sigma"] = float(ep.perturb_sigma)
    g.attrs["perturb_offset"] = np.asarray(ep.perturb_offset, dtype=np.float64).reshape(-1, 2)
    g.attrs["start_vector"] = np.asarray(ep.start_vector, dtype=np.float64)
    if ep.attrs:
        g.attrs["extra"] = json.dumps(ep.attrs)


def _next_obs(ep: Episode) -> dict[str, np.ndarray] | None:
    if ep.final_obs is None:
        return None
    return {k: np.concatenate([v[1:], np.asarray(ep.final_obs[k])[None]], axis=0) for k, v in ep.obs.items()}


def _require(path: Path, g: h5py.Group, name: str) -> None:
    for member in ("actions", "obs"):
        if member not in g:
            raise StoreError(f"{path}: episode {name} has no '{member}'; expected data/{name}/{member}")


def _seed(attrs: h5py.AttributeManager) -> int | None:
    return int(attrs["seed"]) if "seed" in attrs and int(attrs["seed"]) >= 0 else None


def _info(path: Path, g: h5py.Group, name: str, env_name: str | None) -> EpisodeInfo:
    _require(path, g, name)
    a = g.attrs
    return EpisodeInfo(name, int(g["actions"].shape[0]), bool(a.get("success", True)),
                       _text(a.get("source", "imported")), _seed(a), _text(a.get("env_id", env_name or "")),
                       int(a.get("round", 0)))


def _read_episode(path: Path, g: h5py.Group, env_name: str | None) -> Episode:
    name = g.name.rsplit("/", 1)[-1]
    _require(path, g, name)
    actions = np.asarray(g["actions"][()], dtype=np.float32)
    t = len(actions)
    obs = {k: ds[()] for k, ds in g["obs"].items()}
    final = {k: ds[-1] for k, ds in g["next_obs"].items()} if "next_obs" in g and t else None
    rewards = np.asarray(g["rewards"][()], dtype=np.float32) if "rewards" in g else np.zeros(t, np.float32)
    a = g.attrs
    ours = "source" in a
    seed = _seed(a)
    try:
        return Episode(
            obs=obs, actions=actions, rewards=rewards.reshape(t), success=bool(a.get("success", True)),
            final_obs=final if final is not None and set(final) == set(obs) else None,
            source=_text(a["source"]) if ours else "imported", round=int(a.get("round", 0)), seed=seed,
            policy=_text(a.get("policy", "")), env_id=_text(a.get("env_id", env_name or "")),
            perturb_sigma=float(a.get("perturb_sigma", 0.0)),
            perturb_offset=np.asarray(a.get("perturb_offset", np.zeros((0, 2)))).reshape(-1, 2),
            start_vector=np.asarray(a.get("start_vector", np.zeros(0))),
            attrs=json.loads(_text(a["extra"])) if "extra" in a else {},
        )
    except ValueError as err:
        raise StoreError(f"{path}: episode {name} is malformed: {err}") from None
