"""World-model metrics: scikit-image agreement, hand-computed cases, flow masks, per-view/per-time layout."""

from __future__ import annotations

import math

import numpy as np
import pytest
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from worldmodel.metrics import (
    FlowParams,
    clip_metrics,
    farneback_flow,
    flow_errors,
    psnr,
    ssim,
    temporal_ssim,
    view_metrics,
)


def _video(seed: int, frames: int = 3, h: int = 32, w: int = 40) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, size=(frames, h, w, 3), dtype=np.uint8)


def _textured(h: int = 64, w: int = 80) -> np.ndarray:
    """A smooth, strongly textured frame that Farneback tracks well."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    base = 127 + 60 * np.sin(x / 3.0) * np.cos(y / 4.0) + 40 * np.sin((x + y) / 7.0)
    return np.repeat(np.clip(base, 0, 255).astype(np.uint8)[..., None], 3, axis=-1)


def _shifted_video(frames: int, dx: int, dy: int = 0) -> np.ndarray:
    base = _textured(80, 96)
    out = [np.roll(np.roll(base, k * dy, axis=0), k * dx, axis=1) for k in range(frames)]
    return np.stack(out)[:, 8:-8, 8:-8]


def test_psnr_matches_skimage_and_hand_value():
    pred, real = _video(0), _video(1)
    ours = psnr(pred, real)
    ref = [peak_signal_noise_ratio(r, p, data_range=255) for p, r in zip(pred, real)]
    np.testing.assert_allclose(ours, ref, rtol=1e-12)
    # Hand case: every pixel off by 5 -> MSE 25 -> 10 log10(255^2 / 25).
    a = np.full((1, 8, 8, 3), 100, np.uint8)
    assert psnr(a, a + 5)[0] == pytest.approx(10 * math.log10(255**2 / 25))
    assert psnr(a, a)[0] == math.inf


def test_ssim_matches_skimage_gaussian():
    pred = _video(2, frames=2, h=48, w=56)
    real = np.clip(pred.astype(int) + _video(3, frames=2, h=48, w=56) // 8 - 16, 0, 255).astype(np.uint8)
    ours = ssim(pred, real)
    ref = [
        structural_similarity(
            r, p, gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=255, channel_axis=-1
        )
        for p, r in zip(pred, real)
    ]
    np.testing.assert_allclose(ours, ref, atol=1e-9)


def test_ssim_hand_cases():
    a = _video(4, frames=1)
    assert ssim(a, a)[0] == pytest.approx(1.0)
    # Two constant images: variances and covariance are 0, so SSIM = (2 mu_x mu_y + C1) / (mu_x^2 + mu_y^2 + C1).
    x = np.full((1, 20, 20, 3), 100, np.uint8)
    y = np.full((1, 20, 20, 3), 150, np.uint8)
    c1 = (0.01 * 255) ** 2
    assert ssim(x, y)[0] == pytest.approx((2 * 100 * 150 + c1) / (100**2 + 150**2 + c1), rel=1e-9)


def test_temporal_ssim_is_ssim_of_frame_differences():
    pred, real = _video(5, frames=3, h=40, w=40), _video(6, frames=3, h=40, w=40)
    ours = temporal_ssim(pred, real)
    assert ours.shape == (2,)
    dp = np.diff(pred.astype(np.float64), axis=0)
    dr = np.diff(real.astype(np.float64), axis=0)
    ref = [
        structural_similarity(
            r, p, gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=510, channel_axis=-1
        )
        for p, r in zip(dp, dr)
    ]
    np.testing.assert_allclose(ours, ref, atol=1e-9)
    # A frozen copy of the first frame scores well below a prediction that moves like the real video.
    moving = _shifted_video(3, dx=1)
    frozen = np.repeat(moving[:1], 3, axis=0)
    assert temporal_ssim(moving, moving)[0] == pytest.approx(1.0)
    assert temporal_ssim(frozen, moving).max() < 0.5


def test_flow_of_known_shift_and_errors():
    video = _shifted_video(3, dx=2)
    flow = farneback_flow(video)
    assert flow.shape == (2, *video.shape[1:3], 2)
    inner = flow[:, 10:-10, 10:-10]
    assert np.median(inner[..., 0]) == pytest.approx(2.0, abs=0.15)
    assert np.median(inner[..., 1]) == pytest.approx(0.0, abs=0.15)
    epe, cos, valid = flow_errors(flow, flow)
    np.testing.assert_allclose(epe, 0.0, atol=1e-12)
    assert np.all(cos > 0.999)
    assert np.all(valid > 0.9)
    # The opposite motion: cosine -1, EPE twice the speed.
    epe, cos, _ = flow_errors(-flow, flow)
    assert np.all(cos < -0.999)
    np.testing.assert_allclose(epe, 2 * np.linalg.norm(flow, axis=-1).mean(axis=(1, 2)), rtol=0.05)


def test_flow_errors_hand_case_and_mask():
    # Two pixels valid: (1,0) vs (0,1): cos 0, EPE sqrt 2; (3,4) vs (3,4): cos 1, EPE 0. One pixel below tau.
    u_hat = np.zeros((1, 1, 3, 2))
    u = np.zeros((1, 1, 3, 2))
    u_hat[0, 0, 0], u[0, 0, 0] = (1, 0), (0, 1)
    u_hat[0, 0, 1], u[0, 0, 1] = (3, 4), (3, 4)
    u_hat[0, 0, 2], u[0, 0, 2] = (1e-4, 0), (1, 0)
    epe, cos, valid = flow_errors(u_hat, u, tau=1e-3)
    assert epe[0] == pytest.approx(math.sqrt(2) / 2)
    assert cos[0] == pytest.approx((0 + 25 / (25 + 1e-6)) / 2)
    assert valid[0] == pytest.approx(2 / 3)
    nothing = np.zeros((1, 4, 4, 2))
    epe, cos, valid = flow_errors(nothing, nothing)
    assert math.isnan(epe[0]) and math.isnan(cos[0]) and valid[0] == 0


def test_clip_metrics_per_view_per_time_and_conditioning():
    real = {"front": _shifted_video(5, dx=1), "wrist_left": _shifted_video(5, dx=0, dy=1)}
    pred = {"front": real["front"].copy(), "wrist_left": np.repeat(real["wrist_left"][:1], 5, axis=0)}
    times = np.array([10.0, 10.1, 10.2, 10.3, 10.4])
    result = clip_metrics(pred, real, times=times, conditioning_frames=1)
    assert set(result.views) == {"front", "wrist_left"}
    front = result.views["front"]
    np.testing.assert_allclose(front.frame_times, times[1:])
    np.testing.assert_allclose(front.pair_times, times[2:])
    assert front.psnr.shape == (4,) and front.tssim.shape == (3,) and front.flow_epe.shape == (3,)
    assert np.all(np.isinf(front.psnr)) and np.allclose(front.ssim, 1.0)
    frozen = result.views["wrist_left"]
    assert np.all(frozen.psnr < 40) and np.all(np.isfinite(frozen.psnr))
    summary = result.summary()
    assert set(summary) == {"front", "wrist_left", "all"}
    assert summary["front"]["flow_epe"] == pytest.approx(0.0, abs=1e-9)
    assert summary["front"]["flow_cos"] > 0.99
    assert math.isnan(summary["front"]["psnr"])  # all frames identical: every PSNR is +inf
    as_dict = front.to_dict()
    assert as_dict["psnr"] == [None] * 4 and len(as_dict["flow_cos"]) == 3


def test_bad_input_names_the_problem():
    good = _video(7)
    with pytest.raises(ValueError, match="dtype float32"):
        psnr(good.astype(np.float32), good)
    with pytest.raises(ValueError, match=r"shape \(3, 32, 40\)"):
        ssim(good[..., 0], good)
    with pytest.raises(ValueError, match="predicted shape"):
        psnr(good, good[:2])
    with pytest.raises(ValueError, match="views differ"):
        clip_metrics({"front": good}, {"wrist_left": good})
    with pytest.raises(ValueError, match="times"):
        view_metrics(good, good, times=[0.0, 1.0])
    with pytest.raises(ValueError, match="unknown keys"):
        FlowParams.from_mapping({"window": 3})
