"""Held-out evaluation of a trained world model against two baselines (`a2world worldmodel eval`).

For every clip of a held-out LeRobot dataset (1 observed frame + 20 future frames at 10 fps, the
checkpoint's clip geometry) and every view, three predictions of the 20 future frames are scored against
the real video:

- `model`: the world model, conditioned on the real first frame of each view and the clip's real actions;
- `copy_last`: the last observed frame (the real frame 0) repeated: what "nothing moves" scores;
- `shuffled`: the same model with the action chunks permuted across clips (a derangement: no clip keeps
  its own actions). A model that ignores its actions scores the same as `model`; a gap measures how much
  the actions steer the prediction.

Metrics come from `worldmodel.metrics` (PSNR, SSIM, Farneback flow EPE), per view and per horizon step
k = 1..20 (frame k; flow from frame k-1 to k). `flow_epe` is the paper's masked EPE (pixels where both
flows move); it is undefined for `copy_last`, whose flow is zero everywhere, so `flow_epe_all` (the EPE
over every pixel, the same Farneback flows) is what compares all three methods.
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from rig.config import ConfigError, config_dirs, load_yaml
from worldmodel.data.clips import ClipConfig, DataError, clip_frame_indices
from worldmodel.data.dataset import resize_frames
from worldmodel.data.source import RecordingSource

LOG = logging.getLogger(__name__)
METHODS = ("model", "copy_last", "shuffled")
STEP_METRICS = ("psnr", "ssim", "flow_epe", "flow_epe_all")
PSNR_CAP = 100.0
"""PSNR of an exactly reproduced frame is +inf; it is capped here so means stay finite."""


@dataclass(frozen=True)
class EvalConfig:
    """Evaluation settings (config/worldmodel/eval.yaml)."""

    clip_hop: int = 20
    max_clips: int | None = None
    sampler_steps: int = 10
    seed: int = 0
    shuffle_seed: int = 1
    source: str = field(default="<defaults>", compare=False)

    def __post_init__(self) -> None:
        for key in ("clip_hop", "sampler_steps"):
            value = getattr(self, key)
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise ConfigError(f"{self.source}: {key}={value!r}: expected a positive integer")
        if self.max_clips is not None and (not isinstance(self.max_clips, int) or self.max_clips < 2):
            raise ConfigError(f"{self.source}: max_clips={self.max_clips!r}: expected an integer >= 2 or null "
                              "(the shuffled baseline needs two clips)")

    @classmethod
    def load(cls, path: str | os.PathLike[str] | None = None, **overrides: Any) -> EvalConfig:
        """Read config/worldmodel/eval.yaml (or `path`); keyword overrides that are not None win."""
        if path is None:
            found = [f for d in config_dirs() if (f := d / "worldmodel" / "eval.yaml").is_file()]
            if not found:
                raise ConfigError("worldmodel/eval.yaml not found in the config folders")
            path = found[0]
        data = dict(load_yaml(Path(path)))
        known = {"clip_hop", "max_clips", "sampler_steps", "seed", "shuffle_seed"}
        if unknown := sorted(set(data) - known):
            raise ConfigError(f"{path}: unknown keys {unknown} (known: {sorted(known)})")
        data.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**data, source=str(path))


# ------------------------------------------------------------------------------------------- baselines
def copy_last_frame(observed: NDArray[np.uint8], horizon: int) -> NDArray[np.uint8]:
    """The copy-last-frame prediction: frame `observed` (H, W, 3) repeated -> (1 + horizon, H, W, 3)."""
    if observed.ndim != 3:
        raise ValueError(f"observed frame shape {observed.shape}: expected (H, W, 3)")
    return np.repeat(observed[None], 1 + horizon, axis=0)


def derangement(n: int, seed: int) -> NDArray[np.int64]:
    """A seeded permutation of range(n) with no fixed point (every clip gets another clip's actions)."""
    if n < 2:
        raise ValueError(f"cannot shuffle actions across {n} clip(s): need at least 2")
    rng = np.random.default_rng(seed)
    while True:
        perm = rng.permutation(n)
        if not (perm == np.arange(n)).any():
            return perm


# ------------------------------------------------------------------------------------------- scoring
def score_prediction(predicted: NDArray[np.uint8], real: NDArray[np.uint8]) -> dict[str, NDArray[np.float64]]:
    """Per horizon step k = 1..T-1 of one view: PSNR and SSIM of frame k, flow EPE (paper mask, and over
    every pixel) of the flow from frame k-1 to k. Inputs are (T, H, W, 3) uint8, frame 0 the observation."""
    from worldmodel.metrics.clip import view_metrics
    from worldmodel.metrics.flow import farneback_flow, flow_errors

    m = view_metrics(predicted, real)
    all_pixels, _, _ = flow_errors(farneback_flow(predicted), farneback_flow(real), tau=-1.0)
    return {"psnr": np.minimum(m.psnr[1:], PSNR_CAP), "ssim": m.ssim[1:], "flow_epe": m.flow_epe,
            "flow_epe_all": all_pixels}


def _nanmean(values: Sequence[NDArray[np.float64]]) -> list[float | None]:
    stack = np.stack(values)
    with warnings.catch_warnings():  # a step where every clip is NaN (no valid flow pixel) stays NaN
        warnings.simplefilter("ignore", RuntimeWarning)
        mean = np.nanmean(stack, axis=0)
    return [float(v) if np.isfinite(v) else None for v in mean]


def summarise(scores: Mapping[str, Mapping[str, list[dict[str, NDArray[np.float64]]]]]) -> dict[str, Any]:
    """{method: {view: [per-clip scores]}} -> per method and view: the per-step means over clips and their
    mean over the horizon; view `all` averages the views."""
    out: dict[str, Any] = {}
    for method, per_view in scores.items():
        views: dict[str, Any] = {}
        for view, clips in per_view.items():
            steps = {metric: _nanmean([c[metric] for c in clips]) for metric in STEP_METRICS}
            horizon = {metric: _mean_of(steps[metric]) for metric in STEP_METRICS}
            views[view] = {"per_step": steps, "horizon_mean": horizon, "clips": len(clips)}
        views["all"] = {"horizon_mean": {metric: _mean_of([views[v]["horizon_mean"][metric] for v in per_view])
                                         for metric in STEP_METRICS}}
        out[method] = views
    return out


def _mean_of(values: Sequence[float | None]) -> float | None:
    finite = [v for v in values if v is not None and np.isfinite(v)]
    return float(np.mean(finite)) if finite else None


# ------------------------------------------------------------------------------------------- clips
@dataclass
class EvalClip:
    """One held-out clip: real frames per camera (T, H, W, 3) at the model resolution and raw actions."""

    episode: int
    start: int
    frames: dict[str, NDArray[np.uint8]]
    actions: NDArray[np.float64]
    dataset: str = ""
    task: str | None = None


def load_clips(source: RecordingSource, clip: ClipConfig, cameras: Sequence[str], resolution: tuple[int, int],
               max_clips: int | None = None) -> list[EvalClip]:
    """Every full clip of `source` (clip starts `clip.clip_hop` strided frames apart), evenly thinned to
    `max_clips`, with its frames resized to `resolution` and its model actions (unnormalised)."""
    return load_pooled_clips([source], clip, cameras, resolution, max_clips)


def load_pooled_clips(sources: Sequence[RecordingSource], clip: ClipConfig, cameras: Sequence[str],
                      resolution: tuple[int, int], max_clips: int | None = None) -> list[EvalClip]:
    """`load_clips` over several datasets: the clip starts of all are pooled, then evenly thinned to
    `max_clips` (so a dataset with more clips keeps proportionally more), then loaded."""
    refs = [(s, ep, start) for s in sources for ep, start in s.clips(clip)]
    if max_clips is not None and len(refs) > max_clips:
        refs = [refs[int(i)] for i in np.linspace(0, len(refs) - 1, max_clips).round()]
    if len(refs) < 2:
        names = ", ".join(f"{s.name!r} ({s.root})" for s in sources)
        raise DataError(f"dataset(s) {names}: {len(refs)} clip(s) of {clip.span} frames; the evaluation needs "
                        "at least 2 (record longer or more episodes)")
    out = []
    for source, ep, start in refs:
        idx = clip_frame_indices(start, clip)
        frames = {cam: resize_frames(source.frames(ep, cam, idx), resolution) for cam in cameras}
        out.append(EvalClip(ep, start, frames, source.actions(ep, start, clip), str(source.root),
                            source.episode_task(ep)))
    return out


# ------------------------------------------------------------------------------------------- run
def evaluate(checkpoint: str | os.PathLike[str], data: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
             config: EvalConfig | None = None, device: str = "cpu", progress: bool = True) -> dict[str, Any]:
    """Score the world model at `checkpoint` and both baselines on every clip of the dataset(s) `data`
    (several datasets are pooled before `max_clips` thins them, so each keeps its share)."""
    from tqdm import tqdm

    from worldmodel.predict import PredictError, WorldModelPredictor

    cfg = config or EvalConfig.load()
    predictor = WorldModelPredictor.from_checkpoint(checkpoint, device=device)
    meta = _training_meta(checkpoint)
    clip = ClipConfig(clip_frames=predictor.clip_frames, frame_stride=int(meta.get("frame_stride", 3)),
                      clip_hop=cfg.clip_hop, action_source=str(meta.get("action_source", "state")))
    cameras = list(meta.get("cameras") or predictor.view_ids)
    roots = [data] if isinstance(data, (str, os.PathLike)) else list(data)
    sources = [RecordingSource(root) for root in roots]
    for source in sources:
        source.check_cameras(cameras)
    clips = load_pooled_clips(sources, clip, cameras, predictor.resolution, cfg.max_clips)
    perm = derangement(len(clips), cfg.shuffle_seed)
    horizon = clip.clip_frames - 1
    scores: dict[str, dict[str, list]] = {m: {cam: [] for cam in cameras} for m in METHODS}
    bar = tqdm(total=2 * len(clips), desc="eval", unit="rollout", dynamic_ncols=True, disable=not progress)
    try:
        for i, c in enumerate(clips):
            observed = {cam: c.frames[cam][0] for cam in cameras}
            other = clips[int(perm[i])]
            # each action chunk is normalised as its own task's training data was
            for method, source_clip in (("model", c), ("shuffled", other)):
                try:
                    pred = predictor.predict(observed, source_clip.actions, steps=cfg.sampler_steps, seed=cfg.seed + i,
                                             stats=predictor.stats_for_task(source_clip.task))
                except PredictError as exc:
                    raise DataError(f"{c.dataset}: clip {i} (episode {c.episode}, frame {c.start}): {exc}") from None
                for cam in cameras:
                    scores[method][cam].append(score_prediction(pred[cam], c.frames[cam]))
                bar.update(1)
            for cam in cameras:
                scores["copy_last"][cam].append(score_prediction(copy_last_frame(c.frames[cam][0], horizon),
                                                                 c.frames[cam]))
    finally:
        bar.close()
    summary = summarise(scores)
    return {
        "checkpoint": str(checkpoint), "data": [str(s.root) for s in sources], "clips": len(clips),
        "episodes": sorted({f"{c.dataset}:{c.episode}" for c in clips}), "cameras": cameras,
        "resolution": list(predictor.resolution),
        "horizon_steps": horizon, "fps": predictor.fps, "sampler_steps": cfg.sampler_steps,
        "vae_warning": predictor.vae_warning, "methods": summary, "verdict": verdict(summary),
    }


def verdict(summary: Mapping[str, Any]) -> dict[str, bool | None]:
    """Does the model beat both baselines over the horizon (all views): higher PSNR, lower flow_epe_all?"""
    def get(method: str, metric: str) -> float | None:
        return summary[method]["all"]["horizon_mean"][metric]

    out: dict[str, bool | None] = {}
    for other in ("copy_last", "shuffled"):
        for metric, better in (("psnr", np.greater), ("flow_epe_all", np.less)):
            a, b = get("model", metric), get(other, metric)
            out[f"{metric}_beats_{other}"] = None if a is None or b is None else bool(better(a, b))
    return out


def _training_meta(checkpoint: str | os.PathLike[str]) -> dict[str, Any]:
    from worldmodel.checkpoint import read_own_config

    _, info = read_own_config(Path(checkpoint).expanduser())
    return dict((info.get("metadata") or {}).get("training") or {})
