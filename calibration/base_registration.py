"""Dual-arm base registration: where each arm's base frame sits in `world`, from corresponding points.

Three ways to get corresponding points, all solved by the same least-squares rigid fit (Kabsch /
Umeyama without scale, `Rotation.align_vectors` on centred points):

- Touch points with known world coordinates (e.g. marked holes on the table): each arm's TCP positions
  (its base frame) against the world points give `T_world_base` per arm.
- Both TCPs touch the same unknown points: the fit gives `T_base_left_base_right`; with the left base
  already placed in `world`, `T_world_base_right = T_world_base_left @ T_base_left_base_right`.
- The front camera observes a marker on the TCP (points in the camera's optical frame, e.g. from
  depth or PnP): with `T_world_front`, `T_world_base = T_world_front @ T_front_base`.

Every result carries the per-point residuals in metres (RMS and max are the quality figures).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.spatial.transform import Rotation

from calibration.transforms import validate_transform

MIN_POINTS: Final = 3
MIN_SPREAD_M: Final = 0.01
"""Smallest accepted second principal extent of the points: below it they are (nearly) collinear."""


class RegistrationError(ValueError):
    """Points cannot determine a rigid transform; the message names the input and why."""


@dataclass(frozen=True)
class Registration:
    """Rigid transform `T` taking source points into the target frame, and per-point residuals (m)."""

    T: NDArray[np.float64]
    residuals_m: NDArray[np.float64]

    @property
    def rms_m(self) -> float:
        return float(np.sqrt(np.mean(self.residuals_m**2)))

    @property
    def max_m(self) -> float:
        return float(np.max(self.residuals_m))


def _points(values: ArrayLike, name: str) -> NDArray[np.float64]:
    pts = np.asarray(values, dtype=np.float64)
    if pts.ndim != 2 or pts.shape[1] != 3 or len(pts) < MIN_POINTS:
        raise RegistrationError(f"{name}: shape {pts.shape}, expected (N, 3) with N >= {MIN_POINTS}")
    if not np.all(np.isfinite(pts)):
        raise RegistrationError(f"{name}: contains non-finite values")
    spread = np.linalg.svd(pts - pts.mean(axis=0), compute_uv=False) / np.sqrt(len(pts))
    if spread[1] < MIN_SPREAD_M:
        raise RegistrationError(f"{name}: points are nearly collinear (second extent {spread[1] * 1000:.1f} mm "
                                f"< {MIN_SPREAD_M * 1000:.0f} mm); spread them over an area")
    return pts


def register_points(points_target: ArrayLike, points_source: ArrayLike,
                    names: tuple[str, str] = ("points_target", "points_source")) -> Registration:
    """Least-squares rigid `T_target_source` with `points_target[k] ~ T @ points_source[k]`."""
    dst = _points(points_target, names[0])
    src = _points(points_source, names[1])
    if len(dst) != len(src):
        raise RegistrationError(f"{names[0]} has {len(dst)} points, {names[1]} has {len(src)}; expected pairs")
    dst_c, src_c = dst.mean(axis=0), src.mean(axis=0)
    R = Rotation.align_vectors(dst - dst_c, src - src_c)[0].as_matrix()
    T = np.eye(4)
    T[:3, :3], T[:3, 3] = R, dst_c - R @ src_c
    residuals = np.linalg.norm(src @ R.T + T[:3, 3] - dst, axis=1)
    return Registration(T, residuals)


@dataclass(frozen=True)
class DualArmRegistration:
    """Both bases in `world` with the residuals of the fit(s) that produced them (metres)."""

    T_world_base_left: NDArray[np.float64]
    T_world_base_right: NDArray[np.float64]
    residuals_left_m: NDArray[np.float64]
    residuals_right_m: NDArray[np.float64]

    def summary(self) -> str:
        """Two-line report of RMS and max residual per arm, in millimetres."""
        lines = []
        for arm, res in (("left", self.residuals_left_m), ("right", self.residuals_right_m)):
            lines.append(f"{arm:5s}: rms {np.sqrt(np.mean(res**2)) * 1000:.2f} mm, max {res.max() * 1000:.2f} mm "
                         f"over {len(res)} points")
        return "\n".join(lines)


def register_dual_arm(tcp_points_left: ArrayLike, tcp_points_right: ArrayLike,
                      world_points: ArrayLike | None = None,
                      T_world_base_left: ArrayLike | None = None) -> DualArmRegistration:
    """Place both bases in `world` from TCP positions (each in its arm's base frame) touching shared points.

    With `world_points` (N, 3) each arm is fitted to them; without, the right base is fitted to the left
    one and `T_world_base_left` (4x4) must be given.
    """
    if world_points is not None:
        left = register_points(world_points, tcp_points_left, ("world_points", "tcp_points_left"))
        right = register_points(world_points, tcp_points_right, ("world_points", "tcp_points_right"))
        return DualArmRegistration(left.T, right.T, left.residuals_m, right.residuals_m)
    if T_world_base_left is None:
        raise RegistrationError("register_dual_arm: give world_points or T_world_base_left")
    T_left = validate_transform(T_world_base_left, "T_world_base_left")
    between = register_points(tcp_points_left, tcp_points_right, ("tcp_points_left", "tcp_points_right"))
    return DualArmRegistration(T_left, T_left @ between.T, between.residuals_m, between.residuals_m)


def register_with_camera(T_world_camera: ArrayLike, points_camera: ArrayLike,
                         tcp_points_base: ArrayLike) -> Registration:
    """`T_world_base` from a marker on the TCP seen by a calibrated fixed camera (points in its optical frame)."""
    T_wc = validate_transform(T_world_camera, "T_world_camera")
    fit = register_points(points_camera, tcp_points_base, ("points_camera", "tcp_points_base"))
    return Registration(T_wc @ fit.T, fit.residuals_m)
