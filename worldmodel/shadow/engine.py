"""Predict one chunk of shadow work and score it against the real frames taken at the predicted times.

The predictor is anything with the `WorldModelPredictor` call shape (`predict(images, actions, steps=,
seed=, include_condition=True)`, `resolution`, `fps`): the base A2World predictor, the A2World-sim
rollout adapter, or a test double. Real frames are resized to the model resolution with the predictor's
own resize (cv2 INTER_AREA) and scored with `worldmodel.metrics` on the generated frames only.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray

from worldmodel.metrics import ViewMetrics, view_metrics
from worldmodel.predict import resize_image
from worldmodel.shadow.config import ShadowConfig
from worldmodel.shadow.frames import RealFrameBuffer
from worldmodel.shadow.work import ShadowWork


class Predictor(Protocol):
    """What the shadow needs from a world model."""

    resolution: tuple[int, int]
    fps: float

    def predict(self, images: Any, actions: Any, *, steps: int | None = None, seed: int = 0,
                include_condition: bool = True) -> dict[Any, NDArray[np.uint8]]: ...


@dataclass
class Prediction:
    """Predicted frames per camera, (H + 1, h, w, 3) uint8, frame k at `times[k]` (frame 0: the observation)."""

    work: ShadowWork
    times: NDArray[np.float64]
    frames: dict[str, NDArray[np.uint8]]
    predict_s: float
    actions: NDArray[np.float64] | None = None
    submitted_wall: float = 0.0
    done_wall: float = 0.0


@dataclass
class ShadowResult:
    """A scored prediction: metrics per camera over the predicted times that had a real frame."""

    seq: int
    t_obs: float
    times: NDArray[np.float64]
    real_times: dict[str, NDArray[np.float64]]
    metrics: dict[str, ViewMetrics]
    predicted: dict[str, NDArray[np.uint8]]
    real: dict[str, NDArray[np.uint8]]
    missing: dict[str, int]
    predict_s: float
    lag_s: float = 0.0
    divergence: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> dict[str, dict[str, float]]:
        return {cam: m.summary() for cam, m in self.metrics.items()}

    def panels(self, camera: str) -> NDArray[np.uint8]:
        """Side-by-side real | predicted | |difference| frames of one camera, (T, h, 3w, 3) uint8."""
        real, pred = self.real[camera], self.predicted[camera][: len(self.real[camera])]
        diff = np.abs(real.astype(np.int16) - pred.astype(np.int16)).astype(np.uint8)
        return np.concatenate([real, pred, diff], axis=2)

    def series_mean(self, metric: str) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """(times, mean over cameras) of one metric, over the times every camera scored."""
        per_cam = [m.series(metric) for m in self.metrics.values()]
        if not per_cam:
            return np.zeros(0), np.zeros(0)
        n = min(len(v) for _, v in per_cam)
        with np.errstate(invalid="ignore"):
            values = np.nanmean(np.stack([v[:n] for _, v in per_cam]), axis=0) if n else np.zeros(0)
        return per_cam[0][0][:n], values


class ShadowEngine:
    """Predict (`predict`) and score (`ready`, `score`) shadow work with one predictor and config."""

    def __init__(self, predictor: Predictor, config: ShadowConfig) -> None:
        self.predictor = predictor
        self.config = config
        self.fps = float(predictor.fps)
        self.resolution = tuple(int(v) for v in predictor.resolution)

    def predict(self, work: ShadowWork) -> Prediction:
        cams = [c for c in self.config.cameras if c in work.images]
        if not cams:
            raise ValueError(f"work {work.seq}: none of the configured cameras {list(self.config.cameras)} "
                             f"in its images {sorted(work.images)}")
        horizon = self.config.horizon_frames
        actions = work.model_actions(self.fps, horizon, self.config.command_offset_steps)
        t0 = time.perf_counter()
        out = self.predictor.predict({c: work.images[c] for c in cams}, actions, steps=self.config.sampler_steps,
                                     seed=self.config.seed, include_condition=True)
        return Prediction(work, work.frame_times(self.fps, horizon), {c: out[c] for c in cams},
                          time.perf_counter() - t0, actions)

    def ready(self, prediction: Prediction, buffer: RealFrameBuffer) -> bool:
        """True once every camera has a frame captured at or after the last predicted time."""
        last = prediction.times[-1]
        return all(buffer.newest(c) >= last for c in prediction.frames)

    def expired(self, prediction: Prediction, buffer: RealFrameBuffer) -> bool:
        """True when some camera is past the prediction by more than the buffer keeps (score what there is)."""
        last = prediction.times[-1]
        return any(buffer.newest(c) > last + self.config.frame_buffer_s / 2 for c in prediction.frames)

    def score(self, prediction: Prediction, buffer: RealFrameBuffer) -> ShadowResult:
        """Metrics per camera on the generated frames 1..H that have a real frame within the tolerance
        (the leading run of matched frames; the count of the others is in `missing`)."""
        metrics, real, predicted, real_times, missing = {}, {}, {}, {}, {}
        for cam, frames in prediction.frames.items():
            matched, stamps = buffer.match(cam, prediction.times, self.config.match_tolerance_s)
            n = 0
            while n < len(matched) and matched[n] is not None:
                n += 1
            missing[cam] = len(matched) - n
            real_times[cam] = stamps[:n]
            if n < 2:
                continue
            real_frames = np.stack([resize_image(f, self.resolution) for f in matched[:n]])  # type: ignore[arg-type]
            real[cam], predicted[cam] = real_frames, frames[:n]
            metrics[cam] = view_metrics(frames[:n], real_frames, times=prediction.times[:n], conditioning_frames=1,
                                        flow=self.config.flow)
        observe = getattr(self.predictor, "observe", None)  # A2World-sim: the real frames become its history
        if observe is not None and real and prediction.actions is not None:
            observe(prediction.times, real, prediction.actions)
        return ShadowResult(prediction.work.seq, prediction.work.t_obs, prediction.times, real_times, metrics,
                            predicted, real, missing, prediction.predict_s)
