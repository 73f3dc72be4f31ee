"""Video metrics for world-model predictions: PSNR, SSIM, temporal SSIM, optical-flow EPE and cosine.

All functions take uint8 RGB video arrays of shape (T, H, W, 3) (one view) and return per-time values;
:func:`clip_metrics` computes every metric for a predicted vs real clip of one or more views.
Definitions follow the paper's appendix (shared/reference/paper_facts.md); docs/worldmodel_metrics.md
states the readings we chose where the paper is silent.
"""

from worldmodel.metrics.clip import METRIC_NAMES, ClipMetrics, ViewMetrics, clip_metrics, view_metrics
from worldmodel.metrics.flow import FlowParams, farneback_flow, flow_errors
from worldmodel.metrics.image import psnr, ssim, temporal_ssim

__all__ = [
    "METRIC_NAMES",
    "ClipMetrics",
    "FlowParams",
    "ViewMetrics",
    "clip_metrics",
    "farneback_flow",
    "flow_errors",
    "psnr",
    "ssim",
    "temporal_ssim",
    "view_metrics",
]
