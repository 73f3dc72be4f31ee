"""THE conversion between absolute end-effector poses and the 14-D A2World model action, both ways,
plus per-dataset action normalisation. Nothing else in the stack re-implements it (ARCHITECTURE.md).

Model action (official A2World convention, `world_model/a2world/actions.py` in the release): per arm
`[dx, dy, dz, droll, dpitch, dyaw, gripper_open]`, left arm first, a single-arm robot zero-padded in the
second half. Step k (k = 0..T-1) goes from pose k to pose k+1:
    dp_k  = R_k^T (p_{k+1} - p_k)                       (translation in the previous EE frame)
    drot_k = euler_xyz(R_k^T R_{k+1})                   (extrinsic xyz: R = Rz @ Ry @ Rx)
    g_k   = gripper opening at pose k+1                  ([0, 1], 1 = open)
Poses are (x, y, z, qx, qy, qz, qw) in each arm's base frame (metres, scalar-last quaternions).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import ArrayLike, NDArray

from rig.conventions import ARM_NAMES, COMMAND_DIM, MODEL_ACTION_DIM, POSE_DIM
from rig.rotations import compose_poses, euler_xyz_to_quat, invert_pose, quat_to_euler_xyz

PER_ARM = MODEL_ACTION_DIM // len(ARM_NAMES)
GRIPPER_COLUMNS = (6, 13)
LIBERO_SERVO_SCALE = np.array([0.05] * 6 + [1.0], dtype=np.float64)
"""The release's LIBERO servo-action scaling (`c_act_scaler`): 0.05 on xyz/rpy, 1 on the gripper."""


class ActionError(ValueError):
    """Bad pose/action input; the message names the argument, its shape or value and what was expected."""


def _poses(name: str, value: ArrayLike) -> NDArray[np.float64]:
    arr = np.asarray(value, dtype=np.float64)
    if arr.ndim == 2:
        arr = arr[:, None]
    if arr.ndim != 3 or arr.shape[-1] != POSE_DIM or not 1 <= arr.shape[1] <= len(ARM_NAMES):
        raise ActionError(f"{name}: shape {np.shape(value)}, expected (T, {POSE_DIM}) or (T, arms<=2, {POSE_DIM})")
    if not np.all(np.isfinite(arr)):
        raise ActionError(f"{name}: contains non-finite values")
    return arr


def poses_to_actions(poses: ArrayLike, grippers: ArrayLike) -> NDArray[np.float64]:
    """Absolute poses (T+1, arms, 7) and gripper openings (T+1, arms) -> model actions (T, 14), float64."""
    p = _poses("poses", poses)
    g = np.asarray(grippers, dtype=np.float64)
    if g.ndim == 1:
        g = g[:, None]
    if g.shape != p.shape[:2]:
        raise ActionError(f"grippers: shape {np.shape(grippers)}, expected {p.shape[:2]} (one per pose and arm)")
    if p.shape[0] < 2:
        raise ActionError(f"poses: {p.shape[0]} pose(s), need at least 2 for one action")
    rel = compose_poses(invert_pose(p[:-1]), p[1:])  # (T, arms, 7): pose k+1 in the frame of pose k
    out = np.zeros((p.shape[0] - 1, MODEL_ACTION_DIM))
    for arm in range(p.shape[1]):
        o = arm * PER_ARM
        out[:, o:o + 3] = rel[:, arm, :3]
        out[:, o + 3:o + 6] = quat_to_euler_xyz(rel[:, arm, 3:7])
        out[:, o + 6] = g[1:, arm]
    return out


def actions_to_poses(start_poses: ArrayLike, actions: ArrayLike, n_arms: int = 2
                     ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Integrate model actions (T, 14) from start poses (arms, 7): returns poses (T+1, arms, 7) and
    grippers (T, arms) (the opening after each step). Exact inverse of `poses_to_actions`."""
    start = np.asarray(start_poses, dtype=np.float64).reshape(-1, POSE_DIM)
    a = np.asarray(actions, dtype=np.float64)
    if a.ndim != 2 or a.shape[1] != MODEL_ACTION_DIM:
        raise ActionError(f"actions: shape {np.shape(actions)}, expected (T, {MODEL_ACTION_DIM})")
    if start.shape[0] != n_arms or not 1 <= n_arms <= len(ARM_NAMES):
        raise ActionError(f"start_poses: {start.shape[0]} pose(s) for n_arms={n_arms} (1 or 2 arms)")
    T = a.shape[0]
    poses = np.zeros((T + 1, n_arms, POSE_DIM))
    poses[0] = start
    grippers = np.zeros((T, n_arms))
    for arm in range(n_arms):
        o = arm * PER_ARM
        deltas = np.concatenate([a[:, o:o + 3], euler_xyz_to_quat(a[:, o + 3:o + 6])], axis=-1)
        for k in range(T):  # sequential by nature: each step is expressed in the previous pose's frame
            poses[k + 1, arm] = compose_poses(poses[k, arm], deltas[k])
        grippers[:, arm] = a[:, o + 6]
    return poses, grippers


def command_chunk_to_actions(current: ArrayLike, chunk: ArrayLike) -> NDArray[np.float64]:
    """Current state (2, 8) and a command chunk (T, 2, 8) [pose 7, gripper 1] -> model actions (T, 14)."""
    cur = np.asarray(current, dtype=np.float64)
    ch = np.asarray(chunk, dtype=np.float64)
    if cur.shape != (len(ARM_NAMES), COMMAND_DIM) or ch.ndim != 3 or ch.shape[1:] != cur.shape:
        raise ActionError(f"current {np.shape(current)} / chunk {np.shape(chunk)}: expected "
                          f"({len(ARM_NAMES)}, {COMMAND_DIM}) and (T, {len(ARM_NAMES)}, {COMMAND_DIM})")
    seq = np.concatenate([cur[None], ch], axis=0)
    return poses_to_actions(seq[..., :POSE_DIM], seq[..., POSE_DIM])


def actions_to_command_chunk(current: ArrayLike, actions: ArrayLike) -> NDArray[np.float64]:
    """Inverse of `command_chunk_to_actions`: (2, 8) current state + (T, 14) actions -> (T, 2, 8) targets."""
    cur = np.asarray(current, dtype=np.float64)
    if cur.shape != (len(ARM_NAMES), COMMAND_DIM):
        raise ActionError(f"current: shape {np.shape(current)}, expected ({len(ARM_NAMES)}, {COMMAND_DIM})")
    poses, grippers = actions_to_poses(cur[:, :POSE_DIM], actions, n_arms=len(ARM_NAMES))
    return np.concatenate([poses[1:], grippers[..., None]], axis=-1)


def libero_servo_to_actions(servo: ArrayLike) -> NDArray[np.float64]:
    """LIBERO servo actions (T, 7) or (T, arms, 7) with gripper -1 open / +1 closed -> model actions (T, 14).

    The release's `libero_servo_actions`: gripper -> (1 - g) / 2, then xyz/rpy times 0.05.
    """
    s = np.asarray(servo, dtype=np.float64)
    s = s.reshape(s.shape[0], -1) if s.ndim == 3 else s
    if s.ndim != 2 or s.shape[1] not in (PER_ARM, MODEL_ACTION_DIM):
        raise ActionError(f"servo: shape {np.shape(servo)}, expected (T, 7), (T, 14) or (T, arms, 7)")
    if s.shape[1] == PER_ARM:
        s = np.pad(s, ((0, 0), (0, PER_ARM)))
    s = s.copy()
    s[:, 6] = (1.0 - s[:, 6]) / 2.0
    return s * np.tile(LIBERO_SERVO_SCALE, 2)


# --------------------------------------------------------------------------------- normalisation
NORMALIZATION_KINDS = ("identity", "meanstd")


@dataclass(frozen=True)
class ActionStats:
    """Per-dataset normalisation `(a - offset) / scale` per action dimension (14 values each).

    `identity` is what the released models expect (raw metres, radians, opening). `meanstd` is fitted on
    a dataset for our own training; gripper columns are never normalised (they stay in [0, 1]).
    """

    name: str
    kind: str
    offset: tuple[float, ...]
    scale: tuple[float, ...]
    count: int = 0

    def __post_init__(self) -> None:
        if self.kind not in NORMALIZATION_KINDS:
            raise ActionError(f"action stats {self.name!r}: kind={self.kind!r}, expected one of {NORMALIZATION_KINDS}")
        if len(self.offset) != MODEL_ACTION_DIM or len(self.scale) != MODEL_ACTION_DIM:
            raise ActionError(f"action stats {self.name!r}: offset/scale need {MODEL_ACTION_DIM} values "
                              f"(got {len(self.offset)}, {len(self.scale)})")
        if any(not s > 0 for s in self.scale):
            raise ActionError(f"action stats {self.name!r}: scale {list(self.scale)} must be positive")

    @classmethod
    def identity(cls, name: str = "identity") -> ActionStats:
        return cls(name, "identity", (0.0,) * MODEL_ACTION_DIM, (1.0,) * MODEL_ACTION_DIM)

    @classmethod
    def fit(cls, name: str, actions: ArrayLike, min_std: float = 1e-6) -> ActionStats:
        """Mean/std over all rows of `actions` (N, 14); zero-variance dims get scale 1."""
        a = np.asarray(actions, dtype=np.float64).reshape(-1, MODEL_ACTION_DIM)
        if a.shape[0] < 2:
            raise ActionError(f"action stats {name!r}: need at least 2 actions to fit, got {a.shape[0]}")
        mean, std = a.mean(axis=0), a.std(axis=0)
        std = np.where(std < min_std, 1.0, std)
        mean[list(GRIPPER_COLUMNS)] = 0.0
        std[list(GRIPPER_COLUMNS)] = 1.0
        return cls(name, "meanstd", tuple(mean.tolist()), tuple(std.tolist()), count=int(a.shape[0]))

    def normalize(self, actions: ArrayLike) -> NDArray[np.float64]:
        return (np.asarray(actions, dtype=np.float64) - np.asarray(self.offset)) / np.asarray(self.scale)

    def denormalize(self, actions: ArrayLike) -> NDArray[np.float64]:
        return np.asarray(actions, dtype=np.float64) * np.asarray(self.scale) + np.asarray(self.offset)

    def save(self, path: str | os.PathLike[str]) -> None:
        Path(path).write_text(json.dumps({"name": self.name, "kind": self.kind, "offset": list(self.offset),
                                          "scale": list(self.scale), "count": self.count}, indent=2))

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> ActionStats:
        try:
            data = json.loads(Path(path).read_text())
            return cls(str(data["name"]), str(data["kind"]), tuple(map(float, data["offset"])),
                       tuple(map(float, data["scale"])), int(data.get("count", 0)))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ActionError(f"{path}: not a valid action-stats file ({type(exc).__name__}: {exc})") from None
