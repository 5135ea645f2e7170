"""Video frames in and out of MP4 files with PyAV (``av``), whose wheels bundle FFmpeg.

PyAV is what LeRobot itself encodes with; its manylinux wheel (18.1.0 on Python 3.11) carries
libsvtav1 (AV1 encoder), libdav1d (AV1 decoder), libx264/h264, hevc and vp9, so nothing needs system
FFmpeg headers. We write AV1 with libsvtav1 like LeRobot's default (``g=2``, ``crf=30``, yuv420p)
and read whatever that FFmpeg decodes (AV1, H.264, HEVC, VP9, MPEG-4).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from automimic.data.lerobot.layout import LeRobotError

#: Encoder and settings of exported videos: LeRobot v3's defaults (``encode_video_frames``).
DEFAULT_CODEC = "libsvtav1"
_ENCODER_OPTIONS = {"libsvtav1": {"g": "2", "crf": "30"}, "libx264": {"g": "2", "crf": "23"}}
#: ``info.json`` names the codec by its family, as FFmpeg's stream info reports it.
CODEC_FAMILY = {"libsvtav1": "av1", "libx264": "h264", "h264": "h264", "hevc": "hevc", "libx265": "hevc"}


def _av() -> Any:
    try:
        import av
    except ImportError:
        raise LeRobotError("LeRobot videos need PyAV: pip install 'automimic[lerobot]'") from None
    return av


def resize(image: np.ndarray, size: int | None) -> np.ndarray:
    """``(H, W, 3)`` uint8 image scaled to ``(size, size, 3)`` (bilinear; unchanged when ``size`` is None)."""
    if size is None or image.shape[:2] == (size, size):
        return image
    frame = _av().VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
    return frame.to_ndarray(width=size, height=size, format="rgb24")


def decode_video(path: Path, size: int | None) -> tuple[np.ndarray, np.ndarray]:
    """Every frame of the first video stream of ``path``: ``(N,)`` times in seconds, ``(N, H, W, 3)`` uint8.

    Frames are scaled to ``size`` x ``size`` while decoding (native size when ``size`` is None).
    """
    av = _av()
    if not path.is_file():
        raise LeRobotError(f"{path}: missing video file")
    times, frames = [], []
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            for frame in container.decode(stream):
                times.append(float(frame.pts * stream.time_base) if frame.pts is not None else float(frame.time))
                kwargs = {"width": size, "height": size} if size else {}
                frames.append(frame.to_ndarray(format="rgb24", **kwargs))
    except (av.FFmpegError, IndexError) as err:
        raise LeRobotError(f"{path}: cannot decode as video ({err})") from None
    if not frames:
        raise LeRobotError(f"{path}: holds no video frames")
    return np.asarray(times), np.stack(frames)


def encode_video(path: Path, frames: np.ndarray, fps: int, codec: str = DEFAULT_CODEC) -> None:
    """Write ``(N, H, W, 3)`` uint8 ``frames`` to ``path`` at ``fps``; frame ``i`` has time ``i / fps``."""
    av = _av()
    n, height, width, channels = frames.shape
    if channels != 3 or height % 2 or width % 2:
        raise LeRobotError(f"{path}: video frames must be (N, H, W, 3) with even H and W (yuv420p), "
                           f"got {frames.shape}")
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = dict(_ENCODER_OPTIONS.get(codec, {}))
        for i in range(n):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(frames[i]), format="rgb24")
            frame.pts = i
            container.mux(stream.encode(frame))
        container.mux(stream.encode())


def frames_at(path: Path, times: np.ndarray, frame_times: np.ndarray, fps: float) -> np.ndarray:
    """Indices into ``frame_times`` of the frames nearest ``times``; an error if one is over half a frame off."""
    order = np.searchsorted(frame_times, times).clip(1, len(frame_times) - 1)
    left, right = frame_times[order - 1], frame_times[order]
    index = np.where(np.abs(times - left) <= np.abs(right - times), order - 1, order)
    if len(frame_times) == 1:
        index = np.zeros(len(times), dtype=np.int64)
    gap = np.abs(frame_times[index] - times)
    if len(gap) and gap.max() > 0.5 / fps:
        worst = float(times[int(gap.argmax())])
        raise LeRobotError(f"{path}: no frame near t={worst:.3f}s (video spans {frame_times[0]:.3f}-"
                           f"{frame_times[-1]:.3f}s); expected one every {1 / fps:.3f}s")
    return index
