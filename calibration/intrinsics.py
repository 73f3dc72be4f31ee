"""Camera intrinsics for calibration: from a RealSense stream profile, or estimated from chessboard views.

A RealSense colour profile carries factory intrinsics (`width, height, fx, fy, ppx, ppy, model, coeffs`
as in `rs.intrinsics`); they are used as they are when their distortion model is OpenCV's
Brown-Conrady, or when the coefficients are all zero. Otherwise (or to check the factory values),
`calibrate_from_images` runs `cv2.calibrateCamera` on chessboard views.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import cv2
import numpy as np
from numpy.typing import ArrayLike, NDArray

from calibration.target import Chessboard, TargetError
from rig.schema import CameraIntrinsics, SchemaError

OPENCV_COMPATIBLE_MODELS: Final = ("none", "brown_conrady")
"""RealSense distortion models whose coefficients mean what OpenCV's (k1, k2, p1, p2, k3) mean."""
ZERO_COEFF_MODELS: Final = ("modified_brown_conrady", "inverse_brown_conrady")
"""Models accepted only with all-zero coefficients (then the model does not matter)."""
MIN_VIEWS: Final = 3


class IntrinsicsError(ValueError):
    """Intrinsics cannot be built or estimated; the message names the field or the views."""


def _field(profile: Mapping[str, Any] | Any, key: str, where: str) -> Any:
    if isinstance(profile, Mapping):
        if key not in profile:
            raise IntrinsicsError(f"{where}: missing key {key!r} (present: {sorted(profile)})")
        return profile[key]
    if not hasattr(profile, key):
        raise IntrinsicsError(f"{where}: has no attribute {key!r}")
    return getattr(profile, key)


def from_realsense_profile(profile: Mapping[str, Any] | Any, where: str = "realsense profile") -> CameraIntrinsics:
    """Intrinsics from a RealSense profile dict (or an `rs.intrinsics` object) with the keys
    width, height, fx, fy, ppx, ppy and optionally model (e.g. "brown_conrady") and coeffs (5 numbers)."""
    values = {key: _field(profile, key, where) for key in ("width", "height", "fx", "fy", "ppx", "ppy")}
    has = (lambda k: k in profile) if isinstance(profile, Mapping) else (lambda k: hasattr(profile, k))
    coeffs = tuple(float(c) for c in (_field(profile, "coeffs", where) if has("coeffs") else (0.0,) * 5))
    model = str(_field(profile, "model", where)) if has("model") else "brown_conrady"
    model = model.rsplit(".", 1)[-1].lower()  # str(rs.distortion.x) is "distortion.x"
    if len(coeffs) != 5 or not np.all(np.isfinite(coeffs)):
        raise IntrinsicsError(f"{where}.coeffs: {coeffs}, expected 5 finite numbers (k1, k2, p1, p2, k3)")
    if model not in OPENCV_COMPATIBLE_MODELS and not (model in ZERO_COEFF_MODELS and not any(coeffs)):
        raise IntrinsicsError(
            f"{where}.model: {model!r} with coefficients {coeffs} is not OpenCV's distortion model; "
            "estimate the intrinsics from chessboard views (calibrate_from_images) instead"
        )
    try:
        return CameraIntrinsics(
            width=int(values["width"]), height=int(values["height"]), fx=float(values["fx"]),
            fy=float(values["fy"]), cx=float(values["ppx"]), cy=float(values["ppy"]),
            coeffs=coeffs if model != "none" else (0.0,) * 5,
        )
    except (SchemaError, TypeError, ValueError) as exc:
        raise IntrinsicsError(f"{where}: {exc}") from None


def from_matrix(camera_matrix: ArrayLike, dist_coeffs: ArrayLike, width: int, height: int,
                where: str = "intrinsics") -> CameraIntrinsics:
    """Intrinsics from an OpenCV camera matrix (3, 3) and distortion vector (4, 5, 8, 12 or 14 numbers)."""
    K = np.asarray(camera_matrix, dtype=np.float64)
    dist = np.asarray(dist_coeffs, dtype=np.float64).reshape(-1)
    if K.shape != (3, 3) or not np.all(np.isfinite(K)) or not np.allclose(K[2], [0, 0, 1]):
        raise IntrinsicsError(f"{where}.camera_matrix: {K.tolist()}, expected [[fx, 0, cx], [0, fy, cy], [0, 0, 1]]")
    if dist.size not in (0, 4, 5, 8, 12, 14) or not np.all(np.isfinite(dist)):
        raise IntrinsicsError(f"{where}.dist_coeffs: {dist.tolist()}, expected 4, 5, 8, 12 or 14 finite numbers")
    try:
        return CameraIntrinsics(width=int(width), height=int(height), fx=float(K[0, 0]), fy=float(K[1, 1]),
                                cx=float(K[0, 2]), cy=float(K[1, 2]), coeffs=tuple(float(c) for c in dist))
    except SchemaError as exc:
        raise IntrinsicsError(f"{where}: {exc}") from None


@dataclass(frozen=True)
class IntrinsicsResult:
    """Estimated intrinsics with the overall and per-view RMS reprojection error in pixels."""

    intrinsics: CameraIntrinsics
    rms_px: float
    per_view_rms_px: tuple[float, ...]
    used_views: tuple[int, ...]
    """Indices of the input views the estimate used (views where the board was found)."""


def calibrate_from_points(object_points: Sequence[ArrayLike], image_points: Sequence[ArrayLike],
                          image_size: tuple[int, int], view_ids: Sequence[int] | None = None) -> IntrinsicsResult:
    """`cv2.calibrateCamera` on per-view board points (M, 3) and pixels (M, 2); image_size is (width, height).

    Estimates fx, fy, cx, cy and (k1, k2, p1, p2, k3).
    """
    if len(object_points) != len(image_points) or len(object_points) < MIN_VIEWS:
        raise IntrinsicsError(f"calibrate: {len(object_points)} board views with {len(image_points)} detections, "
                              f"expected at least {MIN_VIEWS} matching views")
    obj = [np.asarray(o, dtype=np.float32).reshape(-1, 3) for o in object_points]
    img = [np.asarray(i, dtype=np.float32).reshape(-1, 2) for i in image_points]
    width, height = int(image_size[0]), int(image_size[1])
    rms, K, dist, rvecs, tvecs = cv2.calibrateCamera(obj, img, (width, height), None, None)
    per_view = []
    for o, i, r, t in zip(obj, img, rvecs, tvecs):
        proj, _ = cv2.projectPoints(o, r, t, K, dist)
        per_view.append(float(np.sqrt(np.mean(np.sum((proj.reshape(-1, 2) - i) ** 2, axis=1)))))
    ids = tuple(int(v) for v in view_ids) if view_ids is not None else tuple(range(len(obj)))
    return IntrinsicsResult(from_matrix(K, dist.reshape(-1)[:5], width, height), float(rms), tuple(per_view), ids)


def calibrate_from_images(images: Sequence[NDArray[np.uint8]], board: Chessboard) -> IntrinsicsResult:
    """Detect `board` in each image (RGB or grey, all the same size) and estimate the intrinsics."""
    if not images:
        raise IntrinsicsError("calibrate_from_images: no images")
    sizes = {np.asarray(im).shape[:2] for im in images}
    if len(sizes) != 1:
        raise IntrinsicsError(f"calibrate_from_images: images of different sizes {sorted(sizes)}")
    height, width = sizes.pop()
    detections, used = [], []
    for index, image in enumerate(images):
        try:
            corners = board.detect(image)
        except TargetError as exc:
            raise IntrinsicsError(f"image {index}: {exc}") from None
        if corners is not None:
            detections.append(corners)
            used.append(index)
    if len(detections) < MIN_VIEWS:
        raise IntrinsicsError(f"calibrate_from_images: board {board.cols}x{board.rows} found in {len(detections)} of "
                              f"{len(images)} images, expected at least {MIN_VIEWS}")
    obj = [board.object_points()] * len(detections)
    return calibrate_from_points(obj, detections, (width, height), used)
