"""Per-frame image metrics: PSNR, SSIM (Wang et al. 2004, Gaussian window) and temporal SSIM.

SSIM is computed with OpenCV separable Gaussian filtering rather than by calling scikit-image at run time:
the shadow predictor scores every predicted frame of every view live, and the OpenCV filter is several
times faster on 480x640 frames. The settings reproduce ``skimage.metrics.structural_similarity(...,
gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=..., channel_axis=-1)``
(tests/test_wm_metrics.py checks the agreement): 11x11 Gaussian window of sigma 1.5, K1 = 0.01,
K2 = 0.03, the mean over the map with the 5-pixel border cropped, channels averaged.
"""

from __future__ import annotations

import cv2
import numpy as np

from worldmodel.metrics.validate import check_pair

SIGMA = 1.5
RADIUS = 5  # int(3.5 * sigma + 0.5): scikit-image's truncate=3.5 window
K1, K2 = 0.01, 0.03


def psnr(predicted: np.ndarray, real: np.ndarray) -> np.ndarray:
    """PSNR in dB per frame, (T,), over all pixels and channels, peak 255; identical frames give +inf."""
    check_pair(predicted, real)
    diff = predicted.astype(np.float64) - real.astype(np.float64)
    mse = np.mean(diff * diff, axis=(1, 2, 3))
    with np.errstate(divide="ignore"):
        return np.where(mse > 0, 10.0 * np.log10(255.0**2 / np.maximum(mse, 1e-300)), np.inf)


def _gaussian_kernel() -> np.ndarray:
    kernel = cv2.getGaussianKernel(2 * RADIUS + 1, SIGMA, cv2.CV_64F)
    return kernel[:, 0]


def ssim_map_mean(x: np.ndarray, y: np.ndarray, data_range: float) -> float:
    """Mean SSIM of two float64 (H, W, C) images, border of RADIUS cropped, channels averaged."""
    if x.shape[0] <= 2 * RADIUS or x.shape[1] <= 2 * RADIUS:
        raise ValueError(f"SSIM needs frames larger than {2 * RADIUS + 1}x{2 * RADIUS + 1}, got {x.shape[:2]}")
    kernel = _gaussian_kernel()

    def blur(image: np.ndarray) -> np.ndarray:
        out = cv2.sepFilter2D(image, cv2.CV_64F, kernel, kernel, borderType=cv2.BORDER_REFLECT)
        return out.reshape(image.shape)

    mu_x, mu_y = blur(x), blur(y)
    var_x = blur(x * x) - mu_x * mu_x
    var_y = blur(y * y) - mu_y * mu_y
    cov = blur(x * y) - mu_x * mu_y
    c1 = (K1 * data_range) ** 2
    c2 = (K2 * data_range) ** 2
    num = (2 * mu_x * mu_y + c1) * (2 * cov + c2)
    den = (mu_x * mu_x + mu_y * mu_y + c1) * (var_x + var_y + c2)
    ssim_map = num / den
    return float(ssim_map[RADIUS:-RADIUS, RADIUS:-RADIUS].mean())


def ssim(predicted: np.ndarray, real: np.ndarray) -> np.ndarray:
    """SSIM per frame, (T,), on RGB (channel mean), data range 255."""
    check_pair(predicted, real)
    return np.array(
        [ssim_map_mean(p.astype(np.float64), r.astype(np.float64), 255.0) for p, r in zip(predicted, real)],
        dtype=np.float64,
    )


def temporal_ssim(predicted: np.ndarray, real: np.ndarray) -> np.ndarray:
    """Temporal SSIM per frame pair, (T - 1,): SSIM of the frame differences x[t+1] - x[t].

    The paper names the metric without defining it; this reading scores whether the prediction changes
    where and how the real video changes (a static copy of the first frame scores low even when its
    per-frame SSIM is high). Differences lie in [-255, 255], so the data range is 510.
    """
    check_pair(predicted, real)
    if predicted.shape[0] < 2:
        return np.zeros(0, dtype=np.float64)
    dp = np.diff(predicted.astype(np.float64), axis=0)
    dr = np.diff(real.astype(np.float64), axis=0)
    return np.array([ssim_map_mean(p, r, 510.0) for p, r in zip(dp, dr)], dtype=np.float64)
