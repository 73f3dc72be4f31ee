"""Optical-flow action-faithfulness metrics: Farneback flow of predicted and real video, EPE and cosine.

From the paper's appendix: flow u_hat (generated) and u (real) from frame t to t+1 at every pixel; a pixel
is valid where |u_hat| > tau and |u| > tau (tau = 1e-3). Cosine is <u_hat, u> / (|u_hat| |u| + 1e-6)
averaged over valid pixels; the end-point error |u_hat - u| is averaged over the same valid pixels (the
paper leaves the EPE mask open; we use the same one). A frame pair with no valid pixel gives NaN for both.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

import cv2
import numpy as np

from worldmodel.metrics.validate import check_pair, check_video


@dataclass(frozen=True)
class FlowParams:
    """Farneback settings (OpenCV's documented example values) and the paper's validity threshold."""

    pyr_scale: float = 0.5
    levels: int = 3
    winsize: int = 15
    iterations: int = 3
    poly_n: int = 5
    poly_sigma: float = 1.2
    tau: float = 1e-3

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any] | None) -> FlowParams:
        """From a config mapping; an unknown key is an error naming it."""
        values = dict(values or {})
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"flow params: unknown keys {unknown}, expected some of {sorted(known)}")
        return cls(**{**asdict(cls()), **values})


DEFAULT_FLOW = FlowParams()


def farneback_flow(video: np.ndarray, params: FlowParams = DEFAULT_FLOW) -> np.ndarray:
    """Dense flow from frame t to t+1 of a (T, H, W, 3) uint8 video: (T - 1, H, W, 2) float32 pixels."""
    check_video(video, "video")
    grey = [cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY) for frame in video]
    flows = [
        cv2.calcOpticalFlowFarneback(
            a, b, None, params.pyr_scale, params.levels, params.winsize, params.iterations, params.poly_n,
            params.poly_sigma, 0,
        )
        for a, b in itertools.pairwise(grey)
    ]
    if not flows:
        return np.zeros((0, *video.shape[1:3], 2), dtype=np.float32)
    return np.stack(flows)


def flow_errors(
    predicted_flow: np.ndarray, real_flow: np.ndarray, tau: float = FlowParams.tau
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per frame pair: (EPE in pixels, cosine, valid-pixel fraction), each (T - 1,), from two flow stacks."""
    if predicted_flow.shape != real_flow.shape or predicted_flow.ndim != 4 or predicted_flow.shape[-1] != 2:
        raise ValueError(
            f"flow shapes {predicted_flow.shape} and {real_flow.shape}: expected equal (N, H, W, 2)"
        )
    u_hat = predicted_flow.astype(np.float64)
    u = real_flow.astype(np.float64)
    norm_hat = np.linalg.norm(u_hat, axis=-1)
    norm = np.linalg.norm(u, axis=-1)
    valid = (norm_hat > tau) & (norm > tau)
    cosine = np.sum(u_hat * u, axis=-1) / (norm_hat * norm + 1e-6)
    epe = np.linalg.norm(u_hat - u, axis=-1)
    count = valid.sum(axis=(1, 2))
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_epe = np.where(count > 0, np.sum(epe * valid, axis=(1, 2)) / count, np.nan)
        mean_cos = np.where(count > 0, np.sum(cosine * valid, axis=(1, 2)) / count, np.nan)
    fraction = count / float(valid.shape[1] * valid.shape[2]) if valid.size else np.zeros(0)
    return mean_epe, mean_cos, np.asarray(fraction, dtype=np.float64)


def video_flow_errors(
    predicted: np.ndarray, real: np.ndarray, params: FlowParams = DEFAULT_FLOW
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """EPE, cosine and valid fraction per frame pair of two (T, H, W, 3) videos."""
    check_pair(predicted, real)
    return flow_errors(farneback_flow(predicted, params), farneback_flow(real, params), params.tau)
