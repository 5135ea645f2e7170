"""Import a local LeRobot v3.0 dataset folder into an :class:`~automimic.data.store.EpisodeStore`.

Everything cheap is checked before any frame is decoded (info.json, the episodes table, that every
data and video file exists, that each episode's frame count matches its recorded length), and the
store is written under a temporary name and renamed at the end, so a bad dataset leaves no output.
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from automimic.data.episode import Episode
from automimic.data.lerobot.layout import (
    DATA_PATH,
    EPISODES_DIR,
    PROVENANCE_COLUMN,
    VIDEO_PATH,
    LeRobotError,
    is_visual,
    obs_key,
    observation_features,
    read_info,
)
from automimic.data.lerobot.video import decode_video, frames_at, resize
from automimic.data.store import EpisodeStore

_EPISODE_COLUMNS = ("episode_index", "length", "data/chunk_index", "data/file_index")


def read_parquet(path: Path, columns: list[str] | None = None, optional: tuple[str, ...] = ()) -> Any:
    """``pyarrow.Table`` of ``path``: all columns, or the required ``columns`` plus those of ``optional`` present.

    A missing file, a damaged one or a missing required column gets a one-line error naming the file.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    if not path.is_file():
        raise LeRobotError(f"{path}: missing parquet file")
    try:
        table = pq.read_table(path)
    except (pa.ArrowException, OSError) as err:
        raise LeRobotError(f"{path}: not a readable parquet file ({str(err).splitlines()[0]})") from None
    missing = [c for c in columns or () if c not in table.column_names]
    if missing:
        raise LeRobotError(f"{path}: missing columns {missing}; found {table.column_names}")
    return table.select([*columns, *(c for c in optional if c in table.column_names)]) if columns else table


def _episode_rows(root: Path, video_keys: list[str]) -> list[dict[str, Any]]:
    files = sorted((root / EPISODES_DIR).glob("chunk-*/file-*.parquet"))
    if not files:
        raise LeRobotError(f"{root / EPISODES_DIR}: no chunk-*/file-*.parquet; a v3.0 dataset lists its "
                           f"episodes there")
    wanted = [*_EPISODE_COLUMNS, *(f"videos/{k}/{c}" for k in video_keys
                                   for c in ("chunk_index", "file_index", "from_timestamp"))]
    rows = [row for f in files for row in read_parquet(f, wanted, ("tasks", PROVENANCE_COLUMN)).to_pylist()]
    return sorted(rows, key=lambda r: r["episode_index"])


def _groups(path: Path, episode_index: np.ndarray) -> dict[int, np.ndarray]:
    """Row numbers of each episode in one data file."""
    order = np.argsort(episode_index, kind="stable")
    keys, starts = np.unique(episode_index[order], return_index=True)
    ends = [*starts[1:], len(order)]
    return {int(k): order[s:e] for k, s, e in zip(keys, starts, ends)}


class LeRobotReader:
    """A checked, local LeRobot v3.0 dataset; :meth:`episodes` yields it as automimic episodes.

    Args:
        root: the dataset folder (holding ``meta/info.json``).
        image_size: scale camera frames to ``image_size`` x ``image_size`` (native size when None).
    """

    def __init__(self, root: str | os.PathLike, image_size: int | None = None) -> None:
        self.root = Path(root)
        self.image_size = image_size
        self.info = read_info(self.root)
        self.fps = float(self.info["fps"])
        self.obs_features = observation_features(self.info)
        self.video_keys = [k for k, s in self.obs_features.items() if s.get("dtype") == "video"]
        self.rows = _episode_rows(self.root, self.video_keys)
        self._check_files()

    def _data_path(self, row: dict[str, Any]) -> Path:
        return self.root / DATA_PATH.format(chunk_index=row["data/chunk_index"], file_index=row["data/file_index"])

    def _video_path(self, row: dict[str, Any], key: str) -> Path:
        return self.root / VIDEO_PATH.format(video_key=key, chunk_index=row[f"videos/{key}/chunk_index"],
                                             file_index=row[f"videos/{key}/file_index"])

    def _check_files(self) -> None:
        """Every file exists and every episode has as many frames as its recorded length."""
        for key in self.video_keys:
            for path in sorted({self._video_path(r, key) for r in self.rows}):
                if not path.is_file():
                    raise LeRobotError(f"{path}: missing video file for feature {key!r}")
        for path in sorted({self._data_path(r) for r in self.rows}):
            groups = _groups(path, read_parquet(path, ["episode_index"])["episode_index"].to_numpy())
            for row in (r for r in self.rows if self._data_path(r) == path):
                found = len(groups.get(row["episode_index"], ()))
                if found != row["length"]:
                    raise LeRobotError(f"{path}: episode {row['episode_index']} has {found} frames; "
                                       f"{EPISODES_DIR} gives its length as {row['length']}")

    def __len__(self) -> int:
        return len(self.rows)

    def episodes(self) -> Iterator[Episode]:
        """The episodes in ``episode_index`` order, decoding each data and video file once."""
        table_path, table, groups = None, None, {}
        videos: dict[str, tuple[Path, np.ndarray, np.ndarray]] = {}
        for row in self.rows:
            path = self._data_path(row)
            if path != table_path:
                table_path, table = path, read_parquet(path)
                groups = _groups(path, table["episode_index"].to_numpy())
            rows = table.take(groups[row["episode_index"]])
            rows = rows.take(np.argsort(rows["frame_index"].to_numpy(), kind="stable"))
            obs = {}
            for name, spec in self.obs_features.items():
                if spec.get("dtype") == "video":
                    video = self._video_path(row, name)
                    if videos.get(name, (None,))[0] != video:
                        videos[name] = (video, *decode_video(video, self.image_size))
                    _, times, frames = videos[name]
                    wanted = row[f"videos/{name}/from_timestamp"] + rows["timestamp"].to_numpy().astype(np.float64)
                    obs[obs_key(name)] = frames[frames_at(video, wanted, times, self.fps)]
                else:
                    obs[obs_key(name)] = self._column(path, rows, name, spec)
            yield self._episode(path, row, rows, obs)

    def _column(self, path: Path, rows: Any, name: str, spec: dict[str, Any]) -> np.ndarray:
        if name not in rows.column_names:
            raise LeRobotError(f"{path}: no column {name!r}, which meta/info.json lists as a feature")
        if is_visual(spec):  # dtype "image": PNG/JPEG bytes per frame in the parquet file
            import imageio.v3 as iio

            images = [iio.imread(io.BytesIO(cell["bytes"])) for cell in rows[name].to_pylist()]
            return np.stack([resize(np.asarray(im)[..., :3], self.image_size) for im in images])
        column = rows[name].combine_chunks()
        n = len(column)
        values = (column.flatten() if hasattr(column, "flatten") else column).to_numpy(zero_copy_only=False)
        shape = tuple(spec.get("shape") or ())
        if values.size != n * int(np.prod(shape or (1,))):
            raise LeRobotError(f"{path}: column {name!r} holds {values.size} values for {n} frames; "
                               f"meta/info.json gives its shape as {list(shape)}")
        return values.reshape(n, *shape) if shape != (1,) else values.reshape(n, 1)

    def _episode(self, path: Path, row: dict[str, Any], rows: Any, obs: dict[str, np.ndarray]) -> Episode:
        features = self.info["features"]
        actions = self._column(path, rows, "action", features["action"]).reshape(len(rows), -1)
        rewards = (self._column(path, rows, "next.reward", features["next.reward"]).reshape(-1)
                   if "next.reward" in features else np.zeros(len(rows)))
        saved = json.loads(row[PROVENANCE_COLUMN]) if row.get(PROVENANCE_COLUMN) else {}
        if "next.success" in features:
            success = bool(self._column(path, rows, "next.success", features["next.success"]).any())
        else:  # demonstration datasets hold successes (the same default EpisodeStore gives foreign files)
            success = bool(saved.get("success", True))
        tasks = row.get("tasks") or []
        attrs = {**saved.get("attrs", {}), "lerobot_dataset": self.root.name,
                 "lerobot_episode": int(row["episode_index"]), "fps": self.fps}
        if tasks:
            attrs["task"] = tasks[0]
        if "source" in saved:
            attrs["original_source"] = saved["source"]
        try:
            return Episode(obs=obs, actions=actions.astype(np.float32), rewards=rewards.astype(np.float32),
                           success=success, source="imported", round=int(saved.get("round", 0)),
                           seed=saved.get("seed"), policy=saved.get("policy", ""), env_id=saved.get("env_id", ""),
                           perturb_sigma=float(saved.get("perturb_sigma", 0.0)),
                           perturb_offset=np.asarray(saved.get("perturb_offset", np.zeros((0, 2)))).reshape(-1, 2),
                           start_vector=np.asarray(saved.get("start_vector", np.zeros(0))), attrs=attrs)
        except ValueError as err:
            raise LeRobotError(f"{path}: episode {row['episode_index']}: {err}") from None


def import_lerobot(root: str | os.PathLike, out: str | os.PathLike, image_size: int | None = None) -> int:
    """Convert the LeRobot v3.0 dataset at ``root`` into a new HDF5 store ``out``; return the episode count.

    Raises:
        LeRobotError: ``out`` exists, or the dataset is not one this reads (nothing is written then).
    """
    out = Path(out)
    if out.exists():
        raise LeRobotError(f"{out}: already exists; import writes a new store")
    reader = LeRobotReader(root, image_size)
    partial = out.with_name(out.name + ".importing")
    partial.unlink(missing_ok=True)
    try:
        store = EpisodeStore(partial)
        count = 0
        for episode in reader.episodes():
            store.append(episode)
            count += 1
        os.replace(partial, out)
    finally:
        partial.unlink(missing_ok=True)
    return count
