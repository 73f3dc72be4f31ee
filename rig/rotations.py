"""The one place that handles rotations: scipy's Rotation behind a few pose helpers.

Quaternions are scalar-last `(qx, qy, qz, qw)` everywhere (SciPy and ROS order). Functions accept
leading batch dimensions and never loop in Python.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.spatial.transform import Rotation, Slerp

UNIT_QUAT_TOL = 1e-3
"""Largest accepted deviation of |q| from 1 for a quaternion that claims to be a rotation."""


def quat_norm_error(quat: ArrayLike) -> NDArray[np.float64]:
    """Absolute deviation of each quaternion's norm from 1."""
    q = np.asarray(quat, dtype=np.float64)
    return np.abs(np.linalg.norm(q, axis=-1) - 1.0)


def normalize_quat(quat: ArrayLike) -> NDArray[np.float64]:
    """Unit quaternion(s) with a non-negative scalar part (one canonical sign per rotation)."""
    q = np.asarray(quat, dtype=np.float64)
    q = q / np.linalg.norm(q, axis=-1, keepdims=True)
    return np.where(q[..., 3:4] < 0.0, -q, q)


def rotation(quat: ArrayLike) -> Rotation:
    """scipy Rotation from scalar-last quaternion(s)."""
    return Rotation.from_quat(np.asarray(quat, dtype=np.float64))


def pose_to_matrix(pose: ArrayLike) -> NDArray[np.float64]:
    """(..., 7) pose [x, y, z, qx, qy, qz, qw] to (..., 4, 4) homogeneous transform."""
    p = np.asarray(pose, dtype=np.float64)
    out = np.zeros((*p.shape[:-1], 4, 4))
    out[..., :3, :3] = rotation(p[..., 3:7].reshape(-1, 4)).as_matrix().reshape(*p.shape[:-1], 3, 3)
    out[..., :3, 3] = p[..., :3]
    out[..., 3, 3] = 1.0
    return out


def matrix_to_pose(matrix: ArrayLike) -> NDArray[np.float64]:
    """(..., 4, 4) homogeneous transform to (..., 7) pose with a canonical unit quaternion."""
    m = np.asarray(matrix, dtype=np.float64)
    quat = Rotation.from_matrix(m[..., :3, :3].reshape(-1, 3, 3)).as_quat().reshape(*m.shape[:-2], 4)
    return np.concatenate([m[..., :3, 3], normalize_quat(quat)], axis=-1)


def compose_poses(a: ArrayLike, b: ArrayLike) -> NDArray[np.float64]:
    """Pose of b expressed through a: T_a @ T_b, as (..., 7)."""
    return matrix_to_pose(pose_to_matrix(a) @ pose_to_matrix(b))


def invert_pose(pose: ArrayLike) -> NDArray[np.float64]:
    """Inverse transform of (..., 7) pose(s)."""
    return matrix_to_pose(np.linalg.inv(pose_to_matrix(pose)))


def slerp_quat(q0: ArrayLike, q1: ArrayLike, alpha: float) -> NDArray[np.float64]:
    """Spherical interpolation between two unit quaternions, alpha in [0, 1]."""
    key = Rotation.from_quat(np.stack([np.asarray(q0, float), np.asarray(q1, float)]))
    return normalize_quat(Slerp([0.0, 1.0], key)([float(alpha)]).as_quat()[0])


def interpolate_poses(times: ArrayLike, poses: ArrayLike, query: ArrayLike) -> NDArray[np.float64]:
    """Sample a pose trajectory at query times: linear position, slerp rotation, clamped at the ends.

    times: (N,) strictly increasing; poses: (N, 7); query: (M,). Returns (M, 7).
    """
    t = np.asarray(times, dtype=np.float64)
    p = np.asarray(poses, dtype=np.float64)
    q = np.clip(np.asarray(query, dtype=np.float64), t[0], t[-1])
    pos = np.stack([np.interp(q, t, p[:, k]) for k in range(3)], axis=-1)
    if len(t) == 1:
        quat = np.repeat(normalize_quat(p[:1, 3:7]), len(q), axis=0)
    else:
        quat = Slerp(t, Rotation.from_quat(p[:, 3:7]))(q).as_quat()
    return np.concatenate([pos, normalize_quat(quat)], axis=-1)


def angle_between(q0: ArrayLike, q1: ArrayLike) -> NDArray[np.float64]:
    """Geodesic angle in radians between rotations q0 and q1 (broadcast over leading dims)."""
    a = np.asarray(q0, dtype=np.float64)
    b = np.asarray(q1, dtype=np.float64)
    dot = np.abs(np.sum(normalize_quat(a) * normalize_quat(b), axis=-1))
    return 2.0 * np.arccos(np.clip(dot, -1.0, 1.0))
