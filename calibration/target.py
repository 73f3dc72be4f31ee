"""Calibration targets: chessboard geometry and detection, target pose from 2D-3D correspondences.

The target frame has its origin at the first inner corner, x along the rows of corners (the order
OpenCV reports them), y along the columns, z = 0 on the board plane. Poses are 4x4 `T_camera_target`
in the camera's optical frame (x right, y down, z forward). Any detector can feed `target_pose`
(ChArUco corners with their ids mapped to board coordinates, AprilTag grids, ...): it only needs the
detected pixels and the matching board points.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from numpy.typing import ArrayLike, NDArray

from rig.schema import CameraIntrinsics


class TargetError(ValueError):
    """Target geometry or detections are unusable; the message says which and why."""


@dataclass(frozen=True)
class Chessboard:
    """A planar chessboard with `cols` x `rows` inner corners spaced `square_m` metres."""

    cols: int
    rows: int
    square_m: float

    def __post_init__(self) -> None:
        if int(self.cols) < 3 or int(self.rows) < 3:
            raise TargetError(f"chessboard: {self.cols}x{self.rows} inner corners, expected at least 3x3")
        if not np.isfinite(self.square_m) or self.square_m <= 0:
            raise TargetError(f"chessboard.square_m: {self.square_m}, expected a positive length in metres")

    @property
    def pattern_size(self) -> tuple[int, int]:
        """(cols, rows) as OpenCV's chessboard functions take it."""
        return int(self.cols), int(self.rows)

    def object_points(self) -> NDArray[np.float64]:
        """(cols * rows, 3) corner positions in the target frame, in OpenCV's detection order."""
        grid = np.mgrid[0 : self.cols, 0 : self.rows].T.reshape(-1, 2).astype(np.float64)
        return np.hstack([grid * float(self.square_m), np.zeros((len(grid), 1))])

    def detect(self, image: NDArray[np.uint8]) -> NDArray[np.float64] | None:
        """Sub-pixel inner corners (cols * rows, 2) of the board in an RGB or grey image, None if not found."""
        img = np.asarray(image)
        if img.dtype != np.uint8 or img.ndim not in (2, 3):
            raise TargetError(f"image: dtype {img.dtype} shape {img.shape}, expected uint8 (H, W) or (H, W, 3)")
        gray = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY) if img.ndim == 3 else img
        flags = cv2.CALIB_CB_ADAPTIVE_THRESH | cv2.CALIB_CB_NORMALIZE_IMAGE
        found, corners = cv2.findChessboardCorners(gray, self.pattern_size, flags=flags)
        if not found:
            return None
        criteria = (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_MAX_ITER, 50, 1e-4)
        corners = cv2.cornerSubPix(gray, corners.astype(np.float32), (5, 5), (-1, -1), criteria)
        return corners.reshape(-1, 2).astype(np.float64)


def camera_matrix_and_dist(intrinsics: CameraIntrinsics) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """OpenCV camera matrix K and distortion vector (k1, k2, p1, p2, k3, ...) of schema intrinsics."""
    return intrinsics.matrix(), np.asarray(intrinsics.coeffs, dtype=np.float64)


def _rt_to_matrix(rvec: NDArray, tvec: NDArray) -> NDArray[np.float64]:
    T = np.eye(4)
    T[:3, :3] = cv2.Rodrigues(np.asarray(rvec, dtype=np.float64).reshape(3, 1))[0]
    T[:3, 3] = np.asarray(tvec, dtype=np.float64).reshape(3)
    return T


def target_pose(image_points: ArrayLike, object_points: ArrayLike, intrinsics: CameraIntrinsics) -> NDArray[np.float64]:
    """`T_camera_target` (4x4) from at least 4 detected pixels (N, 2) and their board points (N, 3).

    Planar boards use OpenCV's IPPE solver, others SQPnP; both are refined with Levenberg-Marquardt.
    """
    img = np.asarray(image_points, dtype=np.float64).reshape(-1, 2)
    obj = np.asarray(object_points, dtype=np.float64).reshape(-1, 3)
    if len(img) != len(obj) or len(img) < 4:
        raise TargetError(f"target_pose: {len(img)} pixels for {len(obj)} board points, expected >= 4 matching pairs")
    if not (np.all(np.isfinite(img)) and np.all(np.isfinite(obj))):
        raise TargetError("target_pose: non-finite pixels or board points")
    K, dist = camera_matrix_and_dist(intrinsics)
    planar = np.ptp(obj[:, 2]) < 1e-9
    method = cv2.SOLVEPNP_IPPE if planar else cv2.SOLVEPNP_SQPNP
    ok, rvec, tvec = cv2.solvePnP(obj, img, K, dist, flags=method)
    if not ok:
        raise TargetError(f"target_pose: solvePnP failed on {len(img)} points")
    rvec, tvec = cv2.solvePnPRefineLM(obj, img, K, dist, rvec, tvec)
    return _rt_to_matrix(rvec, tvec)


def project(T_camera_target: ArrayLike, object_points: ArrayLike, intrinsics: CameraIntrinsics) -> NDArray[np.float64]:
    """Pixels (N, 2) of board points (N, 3) seen from `T_camera_target`, with the lens distortion."""
    T = np.asarray(T_camera_target, dtype=np.float64)
    K, dist = camera_matrix_and_dist(intrinsics)
    rvec = cv2.Rodrigues(T[:3, :3])[0]
    points = np.asarray(object_points, dtype=np.float64).reshape(-1, 1, 3)
    pixels, _ = cv2.projectPoints(points, rvec, T[:3, 3], K, dist)
    return pixels.reshape(-1, 2)
