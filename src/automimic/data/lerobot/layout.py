"""The LeRobot v3.0 folder layout: paths, the key naming rule, and ``meta/info.json`` checks.

A v3.0 dataset (what LeRobot's ``LeRobotDataset`` writes and reads)::

    meta/info.json                                   codebase_version "v3.0", fps, features, path templates
    meta/stats.json                                  per-feature min / max / mean / std / count
    meta/tasks.parquet                               task string (pandas index) -> task_index
    meta/episodes/chunk-000/file-000.parquet         one row per episode: length, tasks, where its frames
                                                     and video segments are (dataset_from_index, videos/<key>/...)
    data/chunk-000/file-000.parquet                  one row per frame: action, observation.state, timestamp, ...
    videos/<video_key>/chunk-000/file-000.mp4        many episodes back to back; an episode is a time range

Naming rule between LeRobot features and automimic keys (one place, used both ways):

    observation.images.<camera>   <->  obs/<camera>_image   (video or image features; (T, H, W, 3) uint8)
    observation.<name>            <->  obs/<name>           (dots in <name> become underscores on import)
    action                        <->  actions
    next.reward / next.success    <->  rewards / success    (success = any frame flagged)
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

CODEBASE_VERSION = "v3.0"
INFO_PATH = "meta/info.json"
STATS_PATH = "meta/stats.json"
TASKS_PATH = "meta/tasks.parquet"
EPISODES_DIR = "meta/episodes"
DATA_PATH = "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
VIDEO_PATH = "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4"
EPISODES_PATH = EPISODES_DIR + "/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"

#: Per-frame bookkeeping columns every v3.0 dataset has; they become episode structure, not observations.
BOOKKEEPING = ("timestamp", "frame_index", "episode_index", "index", "task_index")
#: Per-episode column holding automimic's provenance (JSON) in the episodes metadata.
PROVENANCE_COLUMN = "automimic/provenance"

_IMAGES = "observation.images."
_OBS = "observation."
_IMAGE_SUFFIX = "_image"


class LeRobotError(ValueError):
    """A dataset (or store) that cannot be converted; the message names the file and what was expected."""


def obs_key(feature: str) -> str:
    """automimic observation key of LeRobot feature ``feature`` (``observation.images.top`` -> ``top_image``)."""
    if feature.startswith(_IMAGES):
        return feature[len(_IMAGES):].replace(".", "_") + _IMAGE_SUFFIX
    return feature[len(_OBS):].replace(".", "_")


def feature_name(key: str, is_image: bool) -> str:
    """Inverse of :func:`obs_key`: ``top_image`` -> ``observation.images.top``, ``state`` -> ``observation.state``."""
    if is_image:
        camera = key[: -len(_IMAGE_SUFFIX)] if key.endswith(_IMAGE_SUFFIX) and key != _IMAGE_SUFFIX else key
        return _IMAGES + camera
    return _OBS + key


def is_visual(spec: dict[str, Any]) -> bool:
    """Whether a feature spec from ``info.json`` is stored as video or as encoded images."""
    return spec.get("dtype") in ("video", "image")


def read_info(root: Path) -> dict[str, Any]:
    """``meta/info.json`` of a v3.0 dataset at ``root``, checked enough to import from.

    Raises:
        LeRobotError: ``root`` is no LeRobot dataset, another version, or lacks an ``action`` feature.
    """
    path = root / INFO_PATH
    if not root.is_dir():
        raise LeRobotError(f"{root}: no such folder; expected a LeRobot {CODEBASE_VERSION} dataset folder")
    if not path.is_file():
        raise LeRobotError(f"{path}: missing; {root} is not a LeRobot dataset (expected meta/info.json, "
                           f"meta/episodes/, data/chunk-*/file-*.parquet)")
    try:
        info = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise LeRobotError(f"{path}: not valid JSON ({err})") from None
    version = info.get("codebase_version") if isinstance(info, dict) else None
    if version != CODEBASE_VERSION:
        hint = " (convert it with LeRobot's convert_dataset_v21_to_v30 first)" if str(version).startswith("v2") else ""
        raise LeRobotError(f"{path}: codebase_version {version!r}; this importer reads {CODEBASE_VERSION!r}{hint}")
    features = info.get("features")
    if not isinstance(features, dict) or "action" not in features:
        raise LeRobotError(f"{path}: features must include 'action'; found {sorted(features or {})}")
    if not isinstance(info.get("fps"), (int, float)) or info["fps"] <= 0:
        raise LeRobotError(f"{path}: 'fps' must be a positive number, got {info.get('fps')!r}")
    return info


def observation_features(info: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The ``observation.*`` features of ``info``, by LeRobot name, in file order."""
    return {name: spec for name, spec in info["features"].items() if name.startswith(_OBS)}
