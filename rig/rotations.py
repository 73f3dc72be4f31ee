"""The one place that handles rotations: scipy's Rotation behind a few pose helpers.

Quaternions are scalar-last `(qx, qy, qz, qw)` everywhere (SciPy and ROS order). Functions accept
leading batch dimensions and never loop in Python. The per-tick helpers (normalize, multiply, rotation
vectors, angle, slerp) take a scalar `math` path for a single quaternion: for 4 numbers numpy's
per-call overhead (~1-5 us per ufunc) is most of the cost, and the 100 Hz executor + guard call them
dozens of times per tick. Both paths give the same values (tests/test_rotations.py).
"""

from __future__ import annotations

import math

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
    if q.shape == (4,):
        x, y, z, w = q.tolist()
        n = math.sqrt(x * x + y * y + z * z + w * w)
        if n > 0.0:
            n = -n if w / n < 0.0 else n
            return np.array((x / n, y / n, z / n, w / n))
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
    if a.shape == b.shape == (4,):
        ax, ay, az, aw = a.tolist()
        bx, by, bz, bw = b.tolist()
        norms = math.sqrt((ax * ax + ay * ay + az * az + aw * aw) * (bx * bx + by * by + bz * bz + bw * bw))
        if norms > 0.0:
            dot = abs(ax * bx + ay * by + az * bz + aw * bw) / norms
            return np.float64(2.0 * math.acos(min(max(dot, -1.0), 1.0)))  # type: ignore[return-value]
    dot = np.abs(np.sum(normalize_quat(a) * normalize_quat(b), axis=-1))
    return 2.0 * np.arccos(np.clip(dot, -1.0, 1.0))


def quat_to_euler_xyz(quat: ArrayLike) -> NDArray[np.float64]:
    """(..., 4) quaternions to (..., 3) extrinsic xyz Euler angles [roll, pitch, yaw], R = Rz @ Ry @ Rx."""
    q = np.asarray(quat, dtype=np.float64)
    return rotation(q.reshape(-1, 4)).as_euler("xyz").reshape(*q.shape[:-1], 3)


def euler_xyz_to_quat(euler: ArrayLike) -> NDArray[np.float64]:
    """(..., 3) extrinsic xyz Euler angles to (..., 4) canonical unit quaternions (inverse of the above)."""
    e = np.asarray(euler, dtype=np.float64)
    quat = Rotation.from_euler("xyz", e.reshape(-1, 3)).as_quat().reshape(*e.shape[:-1], 4)
    return normalize_quat(quat)


# Plain-numpy quaternion arithmetic for per-tick control code (executor, safety guard at 100 Hz), where
# building scipy Rotation objects costs 50-300 us per call. Same conventions; tests check against scipy.


def quat_multiply(a: ArrayLike, b: ArrayLike) -> NDArray[np.float64]:
    """Hamilton product a * b of scalar-last quaternions (rotation b first, then a)."""
    qa, qb = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if qa.shape == qb.shape == (4,):
        x1, y1, z1, w1 = qa.tolist()
        x2, y2, z2, w2 = qb.tolist()
        return np.array((w1 * x2 + x1 * w2 + y1 * z2 - z1 * y2, w1 * y2 - x1 * z2 + y1 * w2 + z1 * x2,
                         w1 * z2 + x1 * y2 - y1 * x2 + z1 * w2, w1 * w2 - x1 * x2 - y1 * y2 - z1 * z2))
    x1, y1, z1, w1 = np.moveaxis(np.asarray(a, dtype=np.float64), -1, 0)
    x2, y2, z2, w2 = np.moveaxis(np.asarray(b, dtype=np.float64), -1, 0)
    return np.stack([
        w1 * x2 + x1 * w2 + y1 * z2 - z1 * y2,
        w1 * y2 - x1 * z2 + y1 * w2 + z1 * x2,
        w1 * z2 + x1 * y2 - y1 * x2 + z1 * w2,
        w1 * w2 - x1 * x2 - y1 * y2 - z1 * z2,
    ], axis=-1)


def quat_conjugate(quat: ArrayLike) -> NDArray[np.float64]:
    """Inverse rotation of a unit quaternion."""
    q = np.array(quat, dtype=np.float64)
    q[..., :3] *= -1.0
    return q


def quat_to_rotvec(quat: ArrayLike) -> NDArray[np.float64]:
    """Rotation vector (axis * angle, angle in [0, pi]) of unit quaternion(s)."""
    q = normalize_quat(quat)
    if q.shape == (4,):
        x, y, z, w = q.tolist()
        sn = math.sqrt(x * x + y * y + z * z)
        k = 2.0 * math.atan2(sn, w) / sn if sn > 1e-12 else 2.0
        return np.array((x * k, y * k, z * k))
    s = np.linalg.norm(q[..., :3], axis=-1, keepdims=True)
    angle = 2.0 * np.arctan2(s, q[..., 3:4])
    # angle / sin(angle / 2) -> 2 as the angle goes to 0
    scale = np.where(s > 1e-12, angle / np.where(s > 1e-12, s, 1.0), 2.0)
    return q[..., :3] * scale


def rotvec_to_quat(rotvec: ArrayLike) -> NDArray[np.float64]:
    """Unit quaternion(s) of rotation vector(s)."""
    v = np.asarray(rotvec, dtype=np.float64)
    if v.shape == (3,):
        x, y, z = v.tolist()
        theta = math.sqrt(x * x + y * y + z * z)
        k = math.sin(0.5 * theta) / theta if theta > 1e-12 else 0.5
        return np.array((x * k, y * k, z * k, math.cos(0.5 * theta)))
    angle = np.linalg.norm(v, axis=-1, keepdims=True)
    half = 0.5 * angle
    scale = np.where(angle > 1e-12, np.sin(half) / np.where(angle > 1e-12, angle, 1.0), 0.5)
    return np.concatenate([v * scale, np.cos(half)], axis=-1)


def slerp_quats(q0: ArrayLike, q1: ArrayLike, alpha: ArrayLike) -> NDArray[np.float64]:
    """Shortest-path spherical interpolation q0 -> q1 at alpha in [0, 1] (broadcasts); same result as
    `slerp_quat`, canonical sign."""
    a = normalize_quat(q0)
    b = normalize_quat(q1)
    if a.shape == b.shape == (4,) and np.ndim(alpha) == 0:
        ta = float(alpha)  # type: ignore[arg-type]
        ax, ay, az, aw = a.tolist()
        bx, by, bz, bw = b.tolist()
        d = ax * bx + ay * by + az * bz + aw * bw
        if d < 0.0:
            bx, by, bz, bw, d = -bx, -by, -bz, -bw, -d
        theta = math.acos(min(d, 1.0))
        st = math.sin(theta)
        if st < 1e-9:
            w0, w1 = 1.0 - ta, ta
        else:
            w0, w1 = math.sin((1.0 - ta) * theta) / st, math.sin(ta * theta) / st
        return normalize_quat(np.array((w0 * ax + w1 * bx, w0 * ay + w1 * by, w0 * az + w1 * bz,
                                        w0 * aw + w1 * bw)))
    t = np.asarray(alpha, dtype=np.float64)[..., None]
    dot = np.sum(a * b, axis=-1, keepdims=True)
    b = np.where(dot < 0.0, -b, b)
    dot = np.abs(dot)
    theta = np.arccos(np.clip(dot, -1.0, 1.0))
    sin_theta = np.sin(theta)
    near = sin_theta < 1e-9
    safe = np.where(near, 1.0, sin_theta)
    w0 = np.where(near, 1.0 - t, np.sin((1.0 - t) * theta) / safe)
    w1 = np.where(near, t, np.sin(t * theta) / safe)
    return normalize_quat(w0 * a + w1 * b)
