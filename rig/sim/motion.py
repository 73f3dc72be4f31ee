"""Online Cartesian motion generator, the twin's stand-in for Flexiv's NRT Cartesian motion planner.

The arm streams a target pose; every control tick the generator moves an internal reference pose toward
it with bounded linear/angular velocity and acceleration, re-planning from its current state whenever the
target changes. Position and orientation each follow a time-optimal bang-coast-bang profile along the
straight line (axis-angle for rotation) to the target: desired speed = min(v_max, sqrt(2 a_max d), d/dt),
and the velocity moves toward it by at most a_max dt per tick.
"""

from __future__ import annotations

from dataclasses import dataclass

import mujoco
import numpy as np
from numpy.typing import NDArray

from rig.rotations import normalize_quat

# Quaternions here are MuJoCo's (w, x, y, z) and the math uses MuJoCo's C helpers, not `rig.rotations`
# (scipy): this runs every control tick for both arms, where scipy's per-call overhead dominated.


def _to_wxyz(q_xyzw: NDArray) -> NDArray[np.float64]:
    q = normalize_quat(q_xyzw)
    return np.array([q[3], q[0], q[1], q[2]])


def _to_xyzw(q_wxyz: NDArray) -> NDArray[np.float64]:
    return normalize_quat(np.array([q_wxyz[1], q_wxyz[2], q_wxyz[3], q_wxyz[0]]))


def _rot_error(target: NDArray, current: NDArray) -> NDArray[np.float64]:
    """Rotation vector taking `current` to `target` (world frame): log(target * current^-1)."""
    inv = np.empty(4)
    mujoco.mju_negQuat(inv, current)
    diff = np.empty(4)
    mujoco.mju_mulQuat(diff, target, inv)
    vel = np.empty(3)
    mujoco.mju_quat2Vel(vel, diff, 1.0)
    return vel


def _rotate(current: NDArray, rotvec: NDArray) -> NDArray[np.float64]:
    """exp(rotvec) * current, normalised."""
    angle = float(np.linalg.norm(rotvec))
    if angle < 1e-15:
        return current.copy()
    delta = np.empty(4)
    mujoco.mju_axisAngle2Quat(delta, rotvec / angle, angle)
    out = np.empty(4)
    mujoco.mju_mulQuat(out, delta, current)
    return out / np.linalg.norm(out)


@dataclass(frozen=True)
class MotionLimits:
    """Cartesian limits: m/s, rad/s, m/s^2, rad/s^2."""

    max_linear_vel: float
    max_angular_vel: float
    max_linear_acc: float
    max_angular_acc: float

    def __post_init__(self) -> None:
        for key in ("max_linear_vel", "max_angular_vel", "max_linear_acc", "max_angular_acc"):
            value = getattr(self, key)
            if not np.isfinite(value) or value <= 0:
                raise ValueError(f"motion limit {key} = {value}, expected a positive number")


def _profile_step(error: NDArray, vel: NDArray, vmax: float, amax: float, dt: float) -> NDArray:
    """New velocity after one tick of the bang-coast-bang law toward `error` (a vector to close)."""
    dist = float(np.linalg.norm(error))
    if dist < 1e-12:
        desired = np.zeros(3)
    else:
        speed = min(vmax, np.sqrt(2.0 * amax * dist), dist / dt)
        desired = error * (speed / dist)
    dv = desired - vel
    dv_norm = float(np.linalg.norm(dv))
    if dv_norm > amax * dt:
        dv *= amax * dt / dv_norm
    return vel + dv


class CartesianMotionGenerator:
    """Reference pose of one arm (in its base frame) rate-limited toward the latest target."""

    def __init__(self, limits: MotionLimits) -> None:
        self.limits = limits
        self.pos = np.zeros(3)
        self.rot = np.array([1.0, 0.0, 0.0, 0.0])
        self.lin_vel = np.zeros(3)
        self.ang_vel = np.zeros(3)
        self.target_pos = np.zeros(3)
        self.target_rot = self.rot.copy()

    def reset(self, pose: NDArray[np.float64]) -> None:
        """Hold `pose` [x, y, z, qx, qy, qz, qw] at rest."""
        self.pos = np.array(pose[:3], dtype=np.float64)
        self.rot = _to_wxyz(pose[3:7])
        self.lin_vel = np.zeros(3)
        self.ang_vel = np.zeros(3)
        self.target_pos = self.pos.copy()
        self.target_rot = self.rot.copy()

    def set_target(self, pose: NDArray[np.float64]) -> None:
        self.target_pos = np.array(pose[:3], dtype=np.float64)
        self.target_rot = _to_wxyz(pose[3:7])

    def step(self, dt: float) -> None:
        lim = self.limits
        self.lin_vel = _profile_step(self.target_pos - self.pos, self.lin_vel, lim.max_linear_vel,
                                     lim.max_linear_acc, dt)
        self.pos = self.pos + self.lin_vel * dt
        rot_err = _rot_error(self.target_rot, self.rot)
        self.ang_vel = _profile_step(rot_err, self.ang_vel, lim.max_angular_vel, lim.max_angular_acc, dt)
        self.rot = _rotate(self.rot, self.ang_vel * dt)

    def pose(self) -> NDArray[np.float64]:
        return np.concatenate([self.pos, _to_xyzw(self.rot)])

    def target(self) -> NDArray[np.float64]:
        return np.concatenate([self.target_pos, _to_xyzw(self.target_rot)])

    @property
    def settled(self) -> bool:
        """True once the reference sits on the target at rest."""
        return bool(
            np.linalg.norm(self.target_pos - self.pos) < 1e-9
            and np.linalg.norm(_rot_error(self.target_rot, self.rot)) < 1e-9
            and not np.any(self.lin_vel)
            and not np.any(self.ang_vel)
        )
