"""Shadow reports outside ROS: JSON summary, metric-over-time plots (matplotlib PNG), the side-by-side
video (mp4: per camera real | predicted | |difference|, cameras stacked), and optionally a Rerun
recording (.rrd) with the same frames and metric series on the capture-time timeline.

Input is a list of scored results in the wire form (`worldmodel.shadow.service.result_to_wire`), so the
live run (`a2world run policy --shadow`) and the offline replay (`a2world shadow report`) write the same.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from worldmodel.metrics import METRIC_NAMES

FRAME_METRICS = ("psnr", "ssim")


def _series(results: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, tuple[list[float], list[float]]]]:
    """{camera: {metric: (times, values)}} over all results, in capture-time order."""
    out: dict[str, dict[str, tuple[list[float], list[float]]]] = {}
    for r in sorted(results, key=lambda r: r["t_obs"]):
        for cam, m in r["metrics"].items():
            per = out.setdefault(cam, {name: ([], []) for name in METRIC_NAMES})
            for name in METRIC_NAMES:
                times = m["frame_times"] if name in FRAME_METRICS else m["pair_times"]
                for t, v in zip(times, m[name]):
                    per[name][0].append(float(t))
                    per[name][1].append(float("nan") if v is None else float(v))
    return out


def summarize(results: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, float]]:
    """Per camera and `all`: mean of every metric over every scored frame (non-finite values left out)."""
    series = _series(results)
    summary: dict[str, dict[str, float]] = {}
    for cam, per in series.items():
        summary[cam] = {}
        for name, (_, values) in per.items():
            arr = np.asarray(values, dtype=np.float64)
            arr = arr[np.isfinite(arr)]
            summary[cam][name] = float(arr.mean()) if arr.size else float("nan")
    if summary:
        summary["all"] = {name: float(np.nanmean([s[name] for s in summary.values()])) if any(
            math.isfinite(s[name]) for s in summary.values()) else float("nan") for name in METRIC_NAMES}
    return summary


def _json_ready(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _json_ready(v) for k, v in value.items() if not isinstance(v, np.ndarray)}
    if isinstance(value, (list, tuple)):
        return [_json_ready(v) for v in value]
    if isinstance(value, np.generic):
        return _json_ready(value.item())
    return value


def plot_metrics(results: Sequence[Mapping[str, Any]], path: Path, threshold: Mapping[str, Any] | None = None,
                 title: str = "") -> Path:
    """One panel per metric over capture time, a line per camera; the divergence threshold dashed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series = _series(results)
    fig, axes = plt.subplots(len(METRIC_NAMES), 1, figsize=(9, 2.0 * len(METRIC_NAMES)), sharex=True)
    t_ref = min((min(r["t_obs"] for r in results),), default=0.0) if results else 0.0
    for ax, name in zip(axes, METRIC_NAMES):
        for cam, per in series.items():
            times, values = per[name]
            ax.plot(np.asarray(times) - t_ref, values, ".-", markersize=3, linewidth=0.8, label=cam)
        if threshold and threshold.get("metric") == name and threshold.get("threshold") is not None:
            ax.axhline(float(threshold["threshold"]), color="red", linestyle="--", linewidth=1, label="threshold")
        ax.set_ylabel(name)
        ax.grid(alpha=0.3)
    axes[0].legend(loc="upper right", fontsize=8, ncol=4)
    axes[-1].set_xlabel("capture time since the first chunk (s)")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def side_by_side_frames(results: Sequence[Mapping[str, Any]]) -> np.ndarray | None:
    """All results' panels in time order, cameras stacked vertically: (T, sum h, 3w, 3) uint8."""
    strips = []
    for r in sorted(results, key=lambda r: r["t_obs"]):
        panels = r.get("panels") or {}
        if not panels:
            continue
        n = min(p.shape[0] for p in panels.values())
        strips.append(np.concatenate([np.asarray(panels[c])[1:n] for c in sorted(panels)], axis=1))
    strips = [s for s in strips if len(s)]
    if not strips:
        return None
    width = max(s.shape[2] for s in strips)
    height = max(s.shape[1] for s in strips)
    padded = [np.pad(s, ((0, 0), (0, height - s.shape[1]), (0, width - s.shape[2]), (0, 0))) for s in strips]
    video = np.concatenate(padded)
    # yuv420p needs even sizes
    return np.pad(video, ((0, 0), (0, video.shape[1] % 2), (0, video.shape[2] % 2), (0, 0)))


def write_rerun(results: Sequence[Mapping[str, Any]], path: Path, name: str = "a2world_shadow") -> Path:
    """A Rerun recording: per camera real/predicted/difference images and metric scalars on capture time."""
    import rerun as rr

    rec = rr.RecordingStream(name)
    rec.save(str(path))
    for r in sorted(results, key=lambda r: r["t_obs"]):
        for cam, m in r["metrics"].items():
            panels = (r.get("panels") or {}).get(cam)
            for k, t in enumerate(m["frame_times"]):
                rec.set_time("capture_time", duration=float(t))
                if panels is not None and k + 1 < len(panels):
                    w = panels.shape[2] // 3
                    frame = np.asarray(panels[k + 1])
                    rec.log(f"{cam}/real", rr.Image(frame[:, :w]))
                    rec.log(f"{cam}/predicted", rr.Image(frame[:, w:2 * w]))
                    rec.log(f"{cam}/difference", rr.Image(frame[:, 2 * w:]))
                for metric in FRAME_METRICS:
                    v = m[metric][k]
                    if v is not None and math.isfinite(v):
                        rec.log(f"metrics/{cam}/{metric}", rr.Scalars(float(v)))
            for k, t in enumerate(m["pair_times"]):
                rec.set_time("capture_time", duration=float(t))
                for metric in ("tssim", "flow_epe", "flow_cos"):
                    v = m[metric][k]
                    if v is not None and math.isfinite(v):
                        rec.log(f"metrics/{cam}/{metric}", rr.Scalars(float(v)))
    rec.flush()
    return path


def write_report(results: Sequence[Mapping[str, Any]], out_dir: str | Path, *, fps: float = 10.0,
                 divergence: Mapping[str, Any] | None = None, settings: Mapping[str, Any] | None = None,
                 status: Mapping[str, Any] | None = None, rerun: bool = False, title: str = "") -> dict[str, Any]:
    """Write summary.json, metrics.png, side_by_side.mp4 (and shadow.rrd) into `out_dir`; returns the summary."""
    from worldmodel.predict import write_side_by_side

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    events = [e for r in results for e in (r.get("divergence") or {}).get("fired", [])]
    summary = {
        "title": title,
        "chunks": len(results),
        "summary": summarize(results),
        "divergence": {**(divergence or {}), "events": events},
        "settings": dict(settings or {}),
        "status": dict(status or {}),
        "per_chunk": [{k: r[k] for k in ("seq", "t_obs", "predict_s", "lag_s", "missing", "summary") if k in r}
                      for r in sorted(results, key=lambda r: r["t_obs"])],
        "series": {cam: {name: {"t": per[name][0], "value": per[name][1]} for name in METRIC_NAMES}
                   for cam, per in _series(results).items()},
        "files": {},
    }
    if results:
        summary["files"]["plot"] = str(plot_metrics(results, out / "metrics.png", divergence, title))
        video = side_by_side_frames(results)
        if video is not None:
            summary["files"]["video"] = str(write_side_by_side(out / "side_by_side.mp4", [video], fps))
        if rerun:
            summary["files"]["rerun"] = str(write_rerun(results, out / "shadow.rrd"))
    (out / "summary.json").write_text(json.dumps(_json_ready(summary), indent=2))
    return summary
