"""Pinhole camera geometry shared by the scene builder, the renderer and the tests.

MuJoCo cameras look along their -z axis with +y up; OpenCV/RealSense optical frames look along +z
with +y down. `optical_from_mujoco` converts between the two. MuJoCo renders square pixels with the
principal point at the image centre, so a rig camera is defined by `fy` at 640x480 (its vertical field
of view) and scales to any render size.
"""

from __future__ import annotations

from typing import Final

import numpy as np
from numpy.typing import ArrayLike, NDArray

from rig.conventions import IMAGE_HEIGHT, IMAGE_WIDTH
from rig.schema import CameraIntrinsics

REFERENCE_SIZE: Final = (IMAGE_HEIGHT, IMAGE_WIDTH)
"""(height, width) the configured intrinsics refer to."""

OPTICAL_FROM_MUJOCO: Final = np.diag([1.0, -1.0, -1.0])
"""Rotation taking MuJoCo camera axes (x right, y up, z back) to optical axes (x right, y down, z forward)."""


def fovy_deg(fy: float, height: int = IMAGE_HEIGHT) -> float:
    """Vertical field of view (degrees) of a pinhole with focal length `fy` pixels and `height` rows."""
    return float(np.degrees(2.0 * np.arctan(0.5 * height / fy)))


def intrinsics_at(fy: float, size: tuple[int, int]) -> CameraIntrinsics:
    """Intrinsics the twin renders at (height, width) `size`, for a camera with `fy` at 640x480."""
    height, width = size
    f = fy * height / REFERENCE_SIZE[0]
    return CameraIntrinsics(width=width, height=height, fx=f, fy=f, cx=width / 2.0, cy=height / 2.0)


def lookat_rotation(pos: ArrayLike, target: ArrayLike, up: ArrayLike) -> NDArray[np.float64]:
    """3x3 rotation (columns = MuJoCo camera x, y, z axes in the parent frame) looking from pos at target."""
    forward = np.asarray(target, float) - np.asarray(pos, float)
    forward /= np.linalg.norm(forward)
    right = np.cross(forward, np.asarray(up, float))
    norm = np.linalg.norm(right)
    if norm < 1e-6:
        raise ValueError(f"camera up vector {up} is parallel to the viewing direction {forward}")
    right /= norm
    back = -forward
    cam_up = np.cross(back, right)
    return np.stack([right, cam_up, back], axis=1)


def project(K: NDArray[np.float64], T_world_optical: NDArray[np.float64], points: ArrayLike) -> NDArray:
    """Pixel coordinates (N, 2) of world points (N, 3) seen by an optical-frame camera."""
    pts = np.atleast_2d(np.asarray(points, float))
    T_optical_world = np.linalg.inv(T_world_optical)
    cam = pts @ T_optical_world[:3, :3].T + T_optical_world[:3, 3]
    uvw = cam @ K.T
    return uvw[:, :2] / uvw[:, 2:3]
