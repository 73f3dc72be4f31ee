"""Every metric for a predicted vs real clip, per view and per time, with summaries.

Frame metrics (PSNR, SSIM) have one value per frame; pair metrics (temporal SSIM, flow EPE, flow cosine)
have one value per consecutive frame pair, stamped with the time of the later frame. Conditioning frames
that the model copies rather than generates are excluded with ``conditioning_frames`` (the paper scores
the generated suffix only).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from worldmodel.metrics.flow import DEFAULT_FLOW, FlowParams, video_flow_errors
from worldmodel.metrics.image import psnr, ssim, temporal_ssim
from worldmodel.metrics.validate import check_pair

FRAME_METRICS = ("psnr", "ssim")
PAIR_METRICS = ("tssim", "flow_epe", "flow_cos")
METRIC_NAMES = FRAME_METRICS + PAIR_METRICS


def _finite_mean(values: np.ndarray) -> float:
    finite = values[np.isfinite(values)]
    return float(finite.mean()) if finite.size else float("nan")


@dataclass
class ViewMetrics:
    """One view's metrics over time. ``frame_times`` (T,) and ``pair_times`` (T - 1,) are in seconds."""

    frame_times: np.ndarray
    psnr: np.ndarray
    ssim: np.ndarray
    pair_times: np.ndarray
    tssim: np.ndarray
    flow_epe: np.ndarray
    flow_cos: np.ndarray
    flow_valid_fraction: np.ndarray

    def series(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """(times, values) of metric ``name`` (one of METRIC_NAMES)."""
        if name not in METRIC_NAMES:
            raise ValueError(f"metric {name!r} unknown, expected one of {list(METRIC_NAMES)}")
        times = self.frame_times if name in FRAME_METRICS else self.pair_times
        return times, getattr(self, name)

    def summary(self) -> dict[str, float]:
        """Mean of each metric over time (non-finite values, e.g. PSNR of identical frames, left out)."""
        return {name: _finite_mean(getattr(self, name)) for name in METRIC_NAMES}

    def to_dict(self) -> dict[str, list[float]]:
        """Plain lists (JSON-ready; non-finite values become None)."""

        def clean(values: np.ndarray) -> list[float | None]:
            return [float(v) if np.isfinite(v) else None for v in np.asarray(values, dtype=np.float64)]

        return {
            "frame_times": clean(self.frame_times),
            "pair_times": clean(self.pair_times),
            **{name: clean(getattr(self, name)) for name in METRIC_NAMES},
            "flow_valid_fraction": clean(self.flow_valid_fraction),
        }


@dataclass
class ClipMetrics:
    """Metrics of every view of a clip, keyed by view name."""

    views: dict[str, ViewMetrics] = field(default_factory=dict)

    def summary(self) -> dict[str, dict[str, float]]:
        """Per view means, plus ``all``: the mean over views of each view's mean."""
        per_view = {name: view.summary() for name, view in self.views.items()}
        if per_view:
            per_view["all"] = {
                metric: _finite_mean(np.array([v[metric] for v in per_view.values()])) for metric in METRIC_NAMES
            }
        return per_view


def view_metrics(
    predicted: np.ndarray,
    real: np.ndarray,
    *,
    times: Sequence[float] | np.ndarray | None = None,
    conditioning_frames: int = 0,
    flow: FlowParams = DEFAULT_FLOW,
) -> ViewMetrics:
    """All metrics of one view: ``predicted`` and ``real`` are (T, H, W, 3) uint8, aligned frame by frame.

    ``times`` (T,) are the frames' capture times (default: frame indices); the first
    ``conditioning_frames`` frames are dropped before scoring.
    """
    check_pair(predicted, real)
    count = predicted.shape[0]
    stamps = np.arange(count, dtype=np.float64) if times is None else np.asarray(times, dtype=np.float64)
    if stamps.shape != (count,):
        raise ValueError(f"times: shape {stamps.shape}, expected ({count},) one per frame")
    if not 0 <= conditioning_frames < count:
        raise ValueError(f"conditioning_frames={conditioning_frames}, expected 0..{count - 1} for {count} frames")
    predicted, real, stamps = predicted[conditioning_frames:], real[conditioning_frames:], stamps[conditioning_frames:]
    epe, cos, valid = video_flow_errors(predicted, real, flow)
    return ViewMetrics(
        frame_times=stamps,
        psnr=psnr(predicted, real),
        ssim=ssim(predicted, real),
        pair_times=stamps[1:],
        tssim=temporal_ssim(predicted, real),
        flow_epe=epe,
        flow_cos=cos,
        flow_valid_fraction=valid,
    )


def clip_metrics(
    predicted: Mapping[str, np.ndarray] | np.ndarray,
    real: Mapping[str, np.ndarray] | np.ndarray,
    *,
    times: Mapping[str, Sequence[float]] | Sequence[float] | np.ndarray | None = None,
    conditioning_frames: int = 0,
    flow: FlowParams = DEFAULT_FLOW,
) -> ClipMetrics:
    """All metrics for a predicted vs real clip: views keyed by name (a bare array is the view ``view``).

    ``times`` is one shared (T,) array or a mapping of view name to its own capture times.
    """
    if isinstance(predicted, np.ndarray):
        predicted = {"view": predicted}
    if isinstance(real, np.ndarray):
        real = {"view": real}
    if set(predicted) != set(real):
        raise ValueError(f"views differ: predicted {sorted(predicted)} vs real {sorted(real)}")
    result = ClipMetrics()
    for name in predicted:
        view_times = times.get(name) if isinstance(times, Mapping) else times
        result.views[name] = view_metrics(
            predicted[name], real[name], times=view_times, conditioning_frames=conditioning_frames, flow=flow
        )
    return result
