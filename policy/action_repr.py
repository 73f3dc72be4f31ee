"""The policy's action representation and its normalisation.

Each of the 60 steps is expressed relative to the end-effector pose at observation time (not to the
previous step as the world model's actions are): per arm `[x, y, z, roll, pitch, yaw, gripper]` with
    p_k' = R_obs^T (p_k - p_obs),  rot_k' = euler_xyz(R_obs^T R_k),  g_k' = g_k (opening in [0, 1]),
in the official 14-D layout (left arm first). Errors do not accumulate along the chunk (a step's error
stays that step's), and the chunk executes unchanged wherever the arm is. Rotations go through
`rig.rotations` with the world model's Euler convention (`worldmodel.actions`); normalisation reuses
`worldmodel.actions.ActionStats` (mean/std, gripper untouched). The statistics travel in the checkpoint.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from rig.conventions import ARM_NAMES, COMMAND_DIM, MODEL_ACTION_DIM, POSE_DIM
from rig.rotations import compose_poses, euler_xyz_to_quat, invert_pose, quat_to_euler_xyz
from worldmodel.actions import PER_ARM, ActionError, ActionStats

N_ARMS = len(ARM_NAMES)


def _state(state: ArrayLike) -> NDArray[np.float64]:
    s = np.asarray(state, dtype=np.float64)
    if s.shape != (N_ARMS, COMMAND_DIM) or not np.all(np.isfinite(s)):
        raise ActionError(f"state: shape {np.shape(state)}, expected finite ({N_ARMS}, {COMMAND_DIM})")
    return s


def chunk_to_relative(state: ArrayLike, chunk: ArrayLike) -> NDArray[np.float64]:
    """Observation state (2, 8) and absolute targets (T, 2, 8) -> relative actions (T, 14)."""
    s = _state(state)
    c = np.asarray(chunk, dtype=np.float64)
    if c.ndim != 3 or c.shape[1:] != (N_ARMS, COMMAND_DIM):
        raise ActionError(f"chunk: shape {np.shape(chunk)}, expected (T, {N_ARMS}, {COMMAND_DIM})")
    out = np.zeros((c.shape[0], MODEL_ACTION_DIM))
    if c.shape[0] == 0:
        return out
    for arm in range(N_ARMS):
        rel = compose_poses(invert_pose(s[arm, :POSE_DIM])[None], c[:, arm, :POSE_DIM])
        o = arm * PER_ARM
        out[:, o:o + 3] = rel[:, :3]
        out[:, o + 3:o + 6] = quat_to_euler_xyz(rel[:, 3:7])
        out[:, o + 6] = c[:, arm, POSE_DIM]
    return out


def relative_to_chunk(state: ArrayLike, actions: ArrayLike) -> NDArray[np.float64]:
    """Inverse of `chunk_to_relative`: (2, 8) state + (T, 14) relative actions -> absolute (T, 2, 8)."""
    s = _state(state)
    a = np.asarray(actions, dtype=np.float64)
    if a.ndim != 2 or a.shape[1] != MODEL_ACTION_DIM:
        raise ActionError(f"actions: shape {np.shape(actions)}, expected (T, {MODEL_ACTION_DIM})")
    out = np.zeros((a.shape[0], N_ARMS, COMMAND_DIM))
    for arm in range(N_ARMS):
        o = arm * PER_ARM
        delta = np.concatenate([a[:, o:o + 3], euler_xyz_to_quat(a[:, o + 3:o + 6])], axis=-1)
        out[:, arm, :POSE_DIM] = compose_poses(np.broadcast_to(s[arm, :POSE_DIM], delta.shape), delta)
        out[:, arm, POSE_DIM] = np.clip(a[:, o + 6], 0.0, 1.0)
    return out


@dataclass(frozen=True)
class Normalizer:
    """Action statistics (relative actions) and proprioception statistics (flattened (2, 8) state)."""

    actions: ActionStats
    state_mean: tuple[float, ...]
    state_std: tuple[float, ...]

    @classmethod
    def fit(cls, actions: ArrayLike, states: ArrayLike, name: str = "policy", action_min_std: float = 1e-6,
            state_min_std: float = 1e-6) -> Normalizer:
        """Mean/std fit; the floors keep nearly constant dimensions (an idle arm) from blowing up the
        normalised values of unseen episodes."""
        a = np.asarray(actions, dtype=np.float64).reshape(-1, MODEL_ACTION_DIM)
        s = np.asarray(states, dtype=np.float64).reshape(-1, N_ARMS * COMMAND_DIM)
        stats = ActionStats.fit(name, a)
        floored = ActionStats(stats.name, stats.kind, stats.offset,
                              tuple(max(v, action_min_std) for v in stats.scale), stats.count)
        std = np.maximum(s.std(axis=0), state_min_std)
        return cls(floored, tuple(s.mean(axis=0).tolist()), tuple(std.tolist()))

    def norm_actions(self, a: ArrayLike) -> NDArray[np.float32]:
        return self.actions.normalize(a).astype(np.float32)

    def denorm_actions(self, a: ArrayLike) -> NDArray[np.float64]:
        return self.actions.denormalize(a)

    def norm_state(self, state: ArrayLike) -> NDArray[np.float32]:
        s = np.asarray(state, dtype=np.float64).reshape(*np.shape(state)[:-2], N_ARMS * COMMAND_DIM)
        return ((s - np.asarray(self.state_mean)) / np.asarray(self.state_std)).astype(np.float32)

    def to_dict(self) -> dict[str, Any]:
        a = self.actions
        return {"actions": {"name": a.name, "kind": a.kind, "offset": list(a.offset), "scale": list(a.scale),
                            "count": a.count},
                "state_mean": list(self.state_mean), "state_std": list(self.state_std)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Normalizer:
        try:
            a = data["actions"]
            stats = ActionStats(str(a["name"]), str(a["kind"]), tuple(map(float, a["offset"])),
                                tuple(map(float, a["scale"])), int(a.get("count", 0)))
            return cls(stats, tuple(map(float, data["state_mean"])), tuple(map(float, data["state_std"])))
        except (KeyError, TypeError, ValueError) as exc:
            raise ActionError(f"normalizer: malformed statistics ({type(exc).__name__}: {exc})") from None


def smooth_chunk(actions: ArrayLike, window: int, keep: int = 0) -> NDArray[np.float64]:
    """Centred moving average of a (T, 14) relative chunk along time (ends held), the first `keep` steps
    (a committed prefix) left exactly as given. A few-step sampler leaves independent per-step errors in
    the chunk; at 30 Hz even millimetres of them are metres per second of commanded speed, which the
    guard clamps on nearly every tick (bench/bench_policy_chunks.py measures it)."""
    a = np.asarray(actions, dtype=np.float64)
    if window <= 1 or a.shape[0] < 2:
        return a.copy()
    from scipy.ndimage import uniform_filter1d

    out = uniform_filter1d(a, size=int(window), axis=0, mode="nearest")
    out[:keep] = a[:keep]
    return out
