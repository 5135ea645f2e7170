"""Export an :class:`~automimic.data.store.EpisodeStore` as a LeRobot v3.0 dataset folder.

One data file, one episodes file and one video file per camera (``chunk-000/file-000``): LeRobot
splits at 100 MB (data) and 200 MB (video) when it records, but reads files of any size. automimic's
provenance (source, round, seed, policy, env id, perturbation, ``attrs`` such as ``weights_version``)
goes into the per-episode column ``automimic/provenance`` as JSON; ``next.success`` flags the last
frame of a successful episode. The folder is built under a temporary name and renamed when complete.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from automimic.data.episode import Episode
from automimic.data.lerobot.layout import (
    CODEBASE_VERSION,
    DATA_PATH,
    EPISODES_PATH,
    INFO_PATH,
    PROVENANCE_COLUMN,
    STATS_PATH,
    TASKS_PATH,
    VIDEO_PATH,
    LeRobotError,
    feature_name,
)
from automimic.data.lerobot.video import CODEC_FAMILY, DEFAULT_CODEC, encode_video
from automimic.data.store import EpisodeStore

_SCALAR = [1]


def _is_image(value: np.ndarray) -> bool:
    return value.ndim == 4 and value.shape[-1] == 3 and value.dtype == np.uint8


def _features(path: Path, first: Episode, fps: int, codec: str) -> dict[str, dict[str, Any]]:
    """``info.json`` features of the store's episodes (all checked to share keys and shapes)."""
    features: dict[str, dict[str, Any]] = {}
    for key, value in first.obs.items():
        if _is_image(value):
            h, w = value.shape[1:3]
            features[feature_name(key, True)] = {
                "dtype": "video", "shape": [h, w, 3], "names": ["height", "width", "channels"],
                "info": {"video.height": h, "video.width": w, "video.codec": CODEC_FAMILY.get(codec, codec),
                         "video.pix_fmt": "yuv420p", "video.is_depth_map": False, "video.fps": fps,
                         "video.channels": 3, "has_audio": False}}
        elif value.ndim in (1, 2):
            features[feature_name(key, False)] = {"dtype": "float32", "shape": list(value.shape[1:]) or _SCALAR,
                                                  "names": None}
        else:
            raise LeRobotError(f"{path}: obs/{key} has shape {value.shape}; export takes (T, D) vectors and "
                               f"(T, H, W, 3) uint8 images")
    features["action"] = {"dtype": "float32", "shape": [first.actions.shape[1]], "names": None}
    features["next.reward"] = {"dtype": "float32", "shape": _SCALAR, "names": None}
    features["next.done"] = {"dtype": "bool", "shape": _SCALAR, "names": None}
    features["next.success"] = {"dtype": "bool", "shape": _SCALAR, "names": None}
    for name, dtype in (("timestamp", "float32"), ("frame_index", "int64"), ("episode_index", "int64"),
                        ("index", "int64"), ("task_index", "int64")):
        features[name] = {"dtype": dtype, "shape": _SCALAR, "names": None}
    return features


def _check_alike(path: Path, episodes: list[Episode]) -> None:
    first = episodes[0]
    want = {k: (v.shape[1:], v.dtype == np.uint8) for k, v in first.obs.items()}
    for i, ep in enumerate(episodes[1:], start=1):
        have = {k: (v.shape[1:], v.dtype == np.uint8) for k, v in ep.obs.items()}
        if have != want or ep.actions.shape[1] != first.actions.shape[1]:
            raise LeRobotError(f"{path}: episode {i} has obs {have} and {ep.actions.shape[1]} action dims; "
                               f"episode 0 has {want} and {first.actions.shape[1]}: one dataset needs one layout")


def _provenance(ep: Episode) -> str:
    return json.dumps({"source": ep.source, "round": ep.round, "seed": ep.seed, "policy": ep.policy,
                       "env_id": ep.env_id, "success": bool(ep.success), "perturb_sigma": ep.perturb_sigma,
                       "perturb_offset": np.asarray(ep.perturb_offset).tolist(),
                       "start_vector": np.asarray(ep.start_vector).tolist(), "attrs": ep.attrs})


def _column(values: np.ndarray) -> Any:
    """A pyarrow column: scalars plain, ``(T, D)`` vectors as fixed-size lists (HF ``Sequence(length=D)``)."""
    import pyarrow as pa

    values = np.ascontiguousarray(values)
    if values.ndim == 1:
        return pa.array(values)
    return pa.FixedSizeListArray.from_arrays(pa.array(values.reshape(-1)), values.shape[1])


def _stats(values: np.ndarray, image: bool) -> dict[str, list]:
    """LeRobot's per-feature statistics; images per channel in [0, 1], shaped ``(3, 1, 1)``."""
    flat = values.reshape(-1, 3) / 255.0 if image else values.reshape(len(values), -1)
    shape = (3, 1, 1) if image else flat.shape[1:]
    stats = {name: fn(flat.astype(np.float64), axis=0).reshape(shape).tolist()
             for name, fn in (("min", np.min), ("max", np.max), ("mean", np.mean), ("std", np.std))}
    return {**stats, "count": [len(values)]}


def _tasks_table(tasks: list[str]) -> Any:
    """``meta/tasks.parquet``: task strings as the pandas index, so LeRobot's ``pd.read_parquet`` indexes by task."""
    import pyarrow as pa

    table = pa.table({"task_index": pa.array(range(len(tasks)), pa.int64()), "__index_level_0__": tasks})
    meta = {"index_columns": ["__index_level_0__"],
            "column_indexes": [{"name": None, "field_name": None, "pandas_type": "unicode",
                                "numpy_type": "object", "metadata": {"encoding": "UTF-8"}}],
            "columns": [{"name": "task_index", "field_name": "task_index", "pandas_type": "int64",
                         "numpy_type": "int64", "metadata": None},
                        {"name": None, "field_name": "__index_level_0__", "pandas_type": "unicode",
                         "numpy_type": "object", "metadata": None}],
            "creator": {"library": "pyarrow", "version": pa.__version__}, "pandas_version": "2.2.3"}
    return table.replace_schema_metadata({"pandas": json.dumps(meta)})


def export_lerobot(store: str | os.PathLike, out: str | os.PathLike, fps: int | None = None,
                   task: str | None = None, codec: str = DEFAULT_CODEC) -> int:
    """Write the episodes of HDF5 store ``store`` as a LeRobot v3.0 dataset in a new folder ``out``.

    Args:
        store: the episode store.
        out: the dataset folder to create (must not exist, or be empty).
        fps: frame rate recorded in the dataset (default: the episodes' ``attrs["fps"]``, else 10).
        task: task string of every episode (default: each episode's ``attrs["task"]``, else its env id).
        codec: video encoder (``libsvtav1``, LeRobot's default; or ``libx264``).

    Returns:
        The number of episodes written.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    store, out = Path(store), Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise LeRobotError(f"{out}: already exists and is not an empty folder; export writes a new dataset")
    episodes = EpisodeStore(store).episodes()
    if not episodes:
        raise LeRobotError(f"{store}: holds no episodes to export")
    _check_alike(store, episodes)
    fps = int(fps or episodes[0].attrs.get("fps") or 10)
    names = [task or ep.attrs.get("task") or ep.env_id or "unknown task" for ep in episodes]
    tasks = list(dict.fromkeys(names))
    features = _features(store, episodes[0], fps, codec)
    image_keys = [k for k, v in episodes[0].obs.items() if _is_image(v)]
    lengths = np.array([ep.length for ep in episodes])
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])

    frames: dict[str, Any] = {}
    for key in (k for k in episodes[0].obs if k not in image_keys):
        frames[feature_name(key, False)] = np.concatenate([ep.obs[key] for ep in episodes]).astype(np.float32)
    frames["action"] = np.concatenate([ep.actions for ep in episodes]).astype(np.float32)
    frames["next.reward"] = np.concatenate([ep.rewards for ep in episodes]).astype(np.float32)
    frames["next.done"] = np.concatenate([ep.dones.astype(bool) for ep in episodes])
    frames["next.success"] = frames["next.done"] & np.repeat([ep.success for ep in episodes], lengths)
    frames["frame_index"] = np.concatenate([np.arange(n) for n in lengths]).astype(np.int64)
    frames["timestamp"] = (frames["frame_index"] / fps).astype(np.float32)
    frames["episode_index"] = np.repeat(np.arange(len(episodes)), lengths).astype(np.int64)
    frames["index"] = np.arange(int(lengths.sum()), dtype=np.int64)
    frames["task_index"] = np.repeat([tasks.index(n) for n in names], lengths).astype(np.int64)

    partial = out.with_name(out.name + ".exporting")
    shutil.rmtree(partial, ignore_errors=True)
    try:
        where = {"chunk_index": 0, "file_index": 0}
        data_path = partial / DATA_PATH.format(**where)
        data_path.parent.mkdir(parents=True)
        pq.write_table(pa.table({k: _column(v) for k, v in frames.items()}), data_path)
        stats = {k: _stats(v, False) for k, v in frames.items()}
        rows: dict[str, list] = {
            "episode_index": list(range(len(episodes))), "tasks": [[n] for n in names], "length": lengths.tolist(),
            "data/chunk_index": [0] * len(episodes), "data/file_index": [0] * len(episodes),
            "dataset_from_index": starts.tolist(), "dataset_to_index": (starts + lengths).tolist()}
        for key in image_keys:
            name = feature_name(key, True)
            pixels = np.concatenate([ep.obs[key] for ep in episodes])
            encode_video(partial / VIDEO_PATH.format(video_key=name, **where), pixels, fps, codec)
            stats[name] = _stats(pixels, True)
            rows.update({f"videos/{name}/chunk_index": [0] * len(episodes),
                         f"videos/{name}/file_index": [0] * len(episodes),
                         f"videos/{name}/from_timestamp": (starts / fps).tolist(),
                         f"videos/{name}/to_timestamp": ((starts + lengths) / fps).tolist()})
        rows.update({"meta/episodes/chunk_index": [0] * len(episodes), "meta/episodes/file_index": [0] * len(episodes),
                     PROVENANCE_COLUMN: [_provenance(ep) for ep in episodes]})
        episodes_path = partial / EPISODES_PATH.format(**where)
        episodes_path.parent.mkdir(parents=True)
        pq.write_table(pa.table(rows), episodes_path)
        pq.write_table(_tasks_table(tasks), partial / TASKS_PATH)
        info = {"codebase_version": CODEBASE_VERSION, "robot_type": None, "total_episodes": len(episodes),
                "total_frames": int(lengths.sum()), "total_tasks": len(tasks), "chunks_size": 1000,
                "data_files_size_in_mb": 100, "video_files_size_in_mb": 200, "fps": fps,
                "splits": {"train": f"0:{len(episodes)}"}, "data_path": DATA_PATH,
                "video_path": VIDEO_PATH if image_keys else None, "features": features}
        (partial / INFO_PATH).write_text(json.dumps(info, indent=4))
        (partial / STATS_PATH).write_text(json.dumps(stats, indent=4))
        if out.exists():
            out.rmdir()
        os.replace(partial, out)
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    return len(episodes)
