"""Roll a world model out along a recorded episode and compare it with what really happened.

`load_segment` cuts `seconds` of an episode (LeRobot v3 recording) at the model's frame rate: the real
frames per camera at the model resolution and the physical model actions between them; `rollout_episode`
runs `worldmodel.rollout.rollout` from the segment's first frames; `comparison_video` lays out
real | predicted | |difference| per view (one row per view); `tail_metrics` scores the last seconds with
`worldmodel.metrics` (PSNR, SSIM, temporal SSIM, flow EPE/cosine; the copied first frame excluded).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from worldmodel.history import HistoryConfig
from worldmodel.predict import PredictError, WorldModelPredictor, resize_image
from worldmodel.rollout import RolloutResult, rollout


@dataclass
class SegmentSettings:
    """How a checkpoint was trained to see recordings: cameras, source frames per model frame, actions."""

    cameras: list[str] | None = None
    frame_stride: int = 3
    action_source: str = "state"
    history: HistoryConfig | None = None  # the sampler an A2World-sim checkpoint was trained with

    @classmethod
    def of_checkpoint(cls, path: str | os.PathLike[str]) -> SegmentSettings:
        """From our checkpoint's training metadata; release defaults (stride 3, state actions) otherwise."""
        p = Path(path)
        if not (p.is_dir() or p.suffix == ".safetensors"):
            return cls()
        from worldmodel.checkpoint import read_own_config

        _, info = read_own_config(p)
        meta = (info.get("metadata") or {}).get("training") or {}
        history = HistoryConfig.from_dict(dict(meta["history"])) if isinstance(meta.get("history"), dict) else None
        return cls(list(meta["cameras"]) if meta.get("cameras") else None, int(meta.get("frame_stride", 3)),
                   str(meta.get("action_source", "state")), history)


@dataclass
class EpisodeSegment:
    """Real frames per camera (1 + 20k, H, W, 3) at the model resolution and physical actions (20k, 14)."""

    root: Path
    episode: int
    start: int
    cameras: list[str]
    real: dict[str, NDArray[np.uint8]]
    actions: NDArray[np.float64]
    fps: float


def parse_episode(spec: str) -> tuple[Path, int]:
    """`DIR:INDEX` -> (dataset folder, episode index)."""
    root, sep, index = spec.rpartition(":")
    if not sep or not root or not index.isdigit():
        raise PredictError(f"--episode {spec!r}: expected DIR:INDEX, e.g. /data/lift/lerobot:3")
    return Path(root).expanduser(), int(index)


def load_segment(root: str | os.PathLike[str], episode: int, seconds: float, predictor: WorldModelPredictor,
                 settings: SegmentSettings | None = None, start: int = 0) -> EpisodeSegment:
    """`seconds` (rounded up to whole 20-frame chunks) of episode `episode` from source frame `start`."""
    from worldmodel.data.clips import ClipConfig, DataError, clip_frame_indices
    from worldmodel.data.source import RecordingSource

    s = settings or SegmentSettings()
    try:
        source = RecordingSource(root)
    except DataError as exc:
        raise PredictError(str(exc)) from None
    if not 0 <= episode < source.num_episodes:
        raise PredictError(f"{source.root}: episode {episode} out of range (0..{source.num_episodes - 1})")
    steps = predictor.action_steps
    fps = source.fps / s.frame_stride
    chunks = max(1, math.ceil(seconds * fps / steps - 1e-9))
    cfg = ClipConfig(clip_frames=chunks * steps + 1, frame_stride=s.frame_stride, clip_hop=1,
                     action_source=s.action_source)
    length = source.episode_length(episode)
    if start < 0 or start + cfg.span > length:
        have = (length - 1 - max(start, 0)) / source.fps
        raise PredictError(f"{source.root}: episode {episode} has {length} frames ({have:.1f} s after frame "
                           f"{start}); {chunks} chunks ({chunks * steps / fps:.1f} s) need {cfg.span}")
    cameras = s.cameras or [c for c in source.cameras if c in predictor.view_ids]
    source.check_cameras(cameras)
    idx = clip_frame_indices(start, cfg)
    real = {cam: np.stack([resize_image(f, predictor.resolution) for f in source.frames(episode, cam, idx)])
            for cam in cameras}
    try:
        actions = source.actions(episode, start, cfg)
    except DataError as exc:
        raise PredictError(str(exc)) from None
    return EpisodeSegment(source.root, episode, start, cameras, real, actions, fps)


def rollout_episode(predictor: WorldModelPredictor, segment: EpisodeSegment, *,
                    history: HistoryConfig | str | None = None, seed: int = 0, steps: int | None = None,
                    progress: bool = False) -> RolloutResult:
    """Predict the whole segment from its first frame per camera."""
    first = {cam: frames[0] for cam, frames in segment.real.items()}
    return rollout(predictor, first, segment.actions, history=history, seed=seed, steps=steps, progress=progress)


def comparison_video(real: dict[str, NDArray[np.uint8]], predicted: dict[str, NDArray[np.uint8]]
                     ) -> NDArray[np.uint8]:
    """(T, V*H, 3*W, 3): per view (one row each) real | predicted | absolute difference."""
    rows = []
    for cam, pred in predicted.items():
        r = real[cam][: pred.shape[0]]
        diff = np.abs(r.astype(np.int16) - pred.astype(np.int16)).astype(np.uint8)
        rows.append(np.concatenate([r, pred, diff], axis=2))
    return np.concatenate(rows, axis=1)


def tail_metrics(real: dict[str, NDArray[np.uint8]], predicted: dict[str, NDArray[np.uint8]], fps: float,
                 last_seconds: float | None = None) -> dict[str, Any]:
    """Metric means over the generated frames (frame 0 excluded), and over the last `last_seconds`."""
    from worldmodel.metrics import clip_metrics

    n = next(iter(predicted.values())).shape[0]
    times = np.arange(n) / fps
    first = 1 if last_seconds is None else max(1, n - round(last_seconds * fps))
    metrics = clip_metrics({k: v[first:] for k, v in predicted.items()},
                           {k: real[k][first:n] for k in predicted}, times=times[first:])
    return {"from_s": float(times[first]), "to_s": float(times[-1]), "summary": metrics.summary()}
