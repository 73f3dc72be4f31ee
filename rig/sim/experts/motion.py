"""Geometry the scripted experts share: top-down grasp orientations, arm choice, min-jerk blending."""

from __future__ import annotations

from typing import Protocol

import mujoco
import numpy as np
from numpy.typing import NDArray
from scipy.spatial.transform import Rotation

from rig.rotations import angle_between, matrix_to_pose, normalize_quat, rotation, slerp_quat

CLOSING_AXIS = 0
"""Index of the TCP frame axis along which the fingers close (x, as in the twin's gripper); approach is z."""
PAD_BELOW_TCP = 0.014
"""The finger pads reach this far past the TCP along the approach axis (twin gripper, rig/sim/scene.py)."""
FINGER_HALF_EXTENT = 0.016
"""Half width of the closed fingers along the closing axis (outer faces of the finger plates)."""


class RigEnv(Protocol):
    """What an expert needs from the simulated rig (`rig.sim.twin.Twin` provides it)."""

    model: mujoco.MjModel
    data: mujoco.MjData

    def T_world_base(self, arm: str) -> NDArray[np.float64]: ...

    def tcp_pose_world(self, arm: str) -> NDArray[np.float64]: ...

    def set_arm_target(self, arm: str, pose_base: NDArray[np.float64]) -> None: ...

    def set_gripper(self, arm: str, opening: float) -> None: ...

    def step(self, dt: float) -> None: ...


def tool_rotation(approach: NDArray[np.float64], closing: NDArray[np.float64]) -> NDArray[np.float64]:
    """Rotation matrix of a TCP frame whose z is `approach` and whose closing axis is `closing`.

    `closing` is projected orthogonal to `approach` first; both need not be unit length.
    """
    z = np.asarray(approach, float) / np.linalg.norm(approach)
    c = np.asarray(closing, float)
    c = c - (c @ z) * z
    c = c / np.linalg.norm(c)
    rot = np.zeros((3, 3))
    rot[:, 2] = z
    if CLOSING_AXIS == 1:
        rot[:, 1] = c
        rot[:, 0] = np.cross(c, z)
    else:
        rot[:, 0] = c
        rot[:, 1] = np.cross(z, c)
    return rot


def pose_from(pos: NDArray[np.float64], rot: NDArray[np.float64]) -> NDArray[np.float64]:
    """(7,) pose from a position and a rotation matrix."""
    m = np.eye(4)
    m[:3, :3] = rot
    m[:3, 3] = pos
    return matrix_to_pose(m)


def down_grasp(
    pos: NDArray[np.float64], closing: NDArray[np.float64], reference_quat: NDArray[np.float64]
) -> NDArray[np.float64]:
    """Top-down TCP pose at `pos` closing along the horizontal `closing` direction.

    A parallel gripper is symmetric under a half turn about its approach axis, so of the two
    orientations the one nearer `reference_quat` is returned (less wrist rotation).
    """
    down = np.array([0.0, 0.0, -1.0])
    options = [pose_from(pos, tool_rotation(down, s * np.asarray(closing, float))) for s in (1.0, -1.0)]
    dists = [float(angle_between(p[3:], reference_quat)) for p in options]
    return options[int(np.argmin(dists))]


def rotate_about(pose: NDArray[np.float64], axis: NDArray[np.float64], angle: float,
                 pivot: NDArray[np.float64] | None = None) -> NDArray[np.float64]:
    """Pose turned by `angle` about the world `axis` through `pivot` (default: the pose's position)."""
    r = Rotation.from_rotvec(np.asarray(axis, float) / np.linalg.norm(axis) * angle)
    pivot = pose[:3] if pivot is None else np.asarray(pivot, float)
    pos = pivot + r.apply(pose[:3] - pivot)
    quat = (r * rotation(pose[3:])).as_quat()
    return np.concatenate([pos, normalize_quat(quat)])


def yaw_about_z(pose: NDArray[np.float64], angle: float) -> NDArray[np.float64]:
    """Pose with its orientation turned by `angle` about world z (position unchanged)."""
    return rotate_about(pose, np.array([0.0, 0.0, 1.0]), angle)


def min_jerk(tau: float) -> float:
    """Minimum-jerk blend 0 -> 1 for tau in [0, 1]."""
    t = min(max(tau, 0.0), 1.0)
    return t * t * t * (10.0 + t * (-15.0 + 6.0 * t))


def blend(a: NDArray[np.float64], b: NDArray[np.float64], s: float) -> NDArray[np.float64]:
    """Pose between `a` (s=0) and `b` (s=1): linear position, slerp orientation."""
    pos = (1.0 - s) * a[:3] + s * b[:3]
    return np.concatenate([pos, slerp_quat(a[3:], b[3:], s)])


def world_to_base(env: RigEnv, arm: str, pose_world: NDArray[np.float64]) -> NDArray[np.float64]:
    """A world-frame pose expressed in `arm`'s base frame."""
    m = np.eye(4)
    m[:3, :3] = rotation(pose_world[3:]).as_matrix()
    m[:3, 3] = pose_world[:3]
    return matrix_to_pose(np.linalg.inv(env.T_world_base(arm)) @ m)


def best_down_grasp(
    pos: NDArray[np.float64], closing_options: list[NDArray[np.float64]], reference_quat: NDArray[np.float64]
) -> NDArray[np.float64]:
    """Of the top-down grasps closing along any of `closing_options`, the one nearest `reference_quat`."""
    poses = [down_grasp(pos, c, reference_quat) for c in closing_options]
    return poses[int(np.argmin([float(angle_between(p[3:], reference_quat)) for p in poses]))]


REACH_TOL = 0.004
"""Largest IK residual (m, rotation counted at 5 cm per rad) for a waypoint to count as reachable."""


def reach_error(env: RigEnv, arm: str, waypoints: list[NDArray[np.float64]]) -> float:
    """Worst residual when `arm` follows straight paths through `waypoints` (world poses) with the rig's
    own IK, from where the arm is now; the paths are walked one IK tick per millimetre at the rig's
    control period, like the motion generator feeds the IK, so a pose reachable only by a jump (or past a
    joint limit the path runs into) counts as unreachable.

    Uses the twin's `ik` and `q_ref` on a private scratch `MjData`, so the rig's state is untouched.
    A rig without arm IK (floating grippers) reaches everything: 0.
    """
    ik = getattr(env, "ik", None)
    q_ref = getattr(env, "q_ref", None)
    if not isinstance(ik, dict) or not isinstance(q_ref, dict) or arm not in ik:
        return 0.0
    solver = ik[arm]
    dt = float(getattr(env, "control_dt", 0.004))
    scratch = mujoco.MjData(env.model)
    q = np.array(q_ref[arm], dtype=np.float64)
    pos0, rot0 = solver.tcp(scratch, q)
    prev = pose_from(pos0, rot0)
    worst = 0.0
    for pose in waypoints:
        # One IK tick per ~1 mm / 0.25 deg of path, at the twin's control period (its joint-speed budget).
        dist = float(np.linalg.norm(pose[:3] - prev[:3]))
        turn = float(angle_between(pose[3:], prev[3:]))
        n = max(1, int(np.ceil(max(dist / 0.001, turn / 0.004))))
        for k in range(1, n + 1):
            sub = blend(prev, pose, k / n)
            q = solver.solve(scratch, q, sub[:3], rotation(sub[3:]).as_matrix(), dt)
        rot = rotation(pose[3:]).as_matrix()
        for _ in range(100):
            q = solver.solve(scratch, q, pose[:3], rot, dt)
        got_pos, got_rot = solver.tcp(scratch, q)
        err_turn = float(np.linalg.norm(Rotation.from_matrix(rot @ got_rot.T).as_rotvec()))
        worst = max(worst, float(np.linalg.norm(got_pos - pose[:3])) + 0.05 * err_turn)
        prev = np.asarray(pose, dtype=np.float64)
    return worst


def pick_plan(env: RigEnv, candidates: list[tuple[str, list[NDArray[np.float64]]]], point: NDArray[np.float64]) -> int:
    """Index of the candidate (arm, waypoints) to use: of the reachable ones, the one whose arm base is
    nearest `point` (first on ties); if none is reachable, the one with the smallest residual."""
    scores = []
    for arm, waypoints in candidates:
        err = reach_error(env, arm, waypoints)
        dist = float(np.linalg.norm(env.T_world_base(arm)[:2, 3] - np.asarray(point)[:2]))
        scores.append((0.0 if err <= REACH_TOL else err, dist))
    return min(range(len(candidates)), key=lambda i: scores[i])


def pick_arm(env: RigEnv, plans: dict[str, list[NDArray[np.float64]]], point: NDArray[np.float64]) -> str:
    """The arm to use given one plan (waypoints) per arm; see `pick_plan`."""
    candidates = list(plans.items())
    return candidates[pick_plan(env, candidates, point)][0]
