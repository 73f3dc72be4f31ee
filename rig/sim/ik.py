"""Differential inverse kinematics for one 7-DoF arm: damped least squares with a posture null space.

Why not `mink`: it solves a QP per tick (a general solver and its setup), which costs far more than this
6x6 solve on a 2-core laptop at 250 Hz for two arms, and the twin needs nothing it adds beyond joint
position and velocity limits, which this solver enforces directly (velocity by uniform scaling of the
step, position by clamping with a margin). The joint reference it produces is integrated on a scratch
`MjData`, so the reference trajectory is a pure function of the commands (lockstep determinism) and does
not depend on the tracking error of the physical arm.
"""

from __future__ import annotations

from dataclasses import dataclass

import mujoco
import numpy as np
from numpy.typing import NDArray

from rig.sim import names, rizon4s


def rotation_error(R: NDArray) -> NDArray[np.float64]:
    """Rotation vector (axis * angle) of rotation matrix R.

    MuJoCo's C helpers instead of `rig.rotations` (scipy): this runs twice per arm per control tick and
    scipy's per-call overhead dominated the twin's step time.
    """
    quat = np.empty(4)
    mujoco.mju_mat2Quat(quat, np.ascontiguousarray(R).reshape(9))
    vel = np.empty(3)
    mujoco.mju_quat2Vel(vel, quat, 1.0)
    return vel


@dataclass(frozen=True)
class IKSettings:
    """Damping (lambda), iterations per tick, null-space gain per tick and joint-limit margin (rad)."""

    damping: float
    iterations: int
    nullspace_gain: float
    limit_margin: float


class ArmIK:
    """Solves joint references of `arm` that put its TCP site on a world-frame target."""

    def __init__(self, model: mujoco.MjModel, arm: str, settings: IKSettings, home_q: NDArray) -> None:
        self.model = model
        self.settings = settings
        joint_ids = [model.joint(n).id for n in names.joints(arm)]
        self.qadr = np.array([model.jnt_qposadr[j] for j in joint_ids])
        self.dofadr = np.array([model.jnt_dofadr[j] for j in joint_ids])
        self.site = model.site(names.tcp_site(arm)).id
        lower, upper = rizon4s.joint_limits()
        self.lower = lower + settings.limit_margin
        self.upper = upper - settings.limit_margin
        self.vmax = rizon4s.velocity_limits()
        self.home_q = np.asarray(home_q, dtype=np.float64)
        self._jacp = np.zeros((3, model.nv))
        self._jacr = np.zeros((3, model.nv))

    def tcp(self, scratch: mujoco.MjData, q: NDArray) -> tuple[NDArray, NDArray]:
        """World TCP position and rotation matrix of joint vector `q` (updates scratch kinematics)."""
        scratch.qpos[self.qadr] = q
        mujoco.mj_kinematics(self.model, scratch)
        return scratch.site_xpos[self.site].copy(), scratch.site_xmat[self.site].reshape(3, 3).copy()

    def solve(
        self, scratch: mujoco.MjData, q: NDArray, pos: NDArray, rot: NDArray, dt: float
    ) -> NDArray[np.float64]:
        """One control tick: joint reference after moving from `q` toward (pos, rot) within limits."""
        s = self.settings
        q = q.copy()
        budget = self.vmax * dt  # largest joint step this tick
        q_start = q.copy()
        for _ in range(s.iterations):
            cur_pos, cur_rot = self.tcp(scratch, q)
            mujoco.mj_comPos(self.model, scratch)
            err = np.concatenate([pos - cur_pos, rotation_error(rot @ cur_rot.T)])
            mujoco.mj_jacSite(self.model, scratch, self._jacp, self._jacr, self.site)
            J = np.vstack([self._jacp[:, self.dofadr], self._jacr[:, self.dofadr]])
            posture = s.nullspace_gain * (self.home_q - q)
            # Active set: a joint that would cross its limit is pinned there and the others re-solve the
            # remaining error, so redundancy is used instead of stalling at the limit.
            pinned = np.full(7, np.nan)
            dq = np.zeros(7)
            for _attempt in range(4):
                free = np.isnan(pinned)
                dq = np.zeros(7)
                dq[~free] = pinned[~free] - q[~free]
                if free.any():
                    Jf = J[:, free]
                    rest = err - J[:, ~free] @ dq[~free]
                    pinv = Jf.T @ np.linalg.inv(Jf @ Jf.T + (s.damping**2) * np.eye(6))
                    dq[free] = pinv @ rest + (np.eye(int(free.sum())) - pinv @ Jf) @ posture[free]
                new_q = q + dq
                low = free & (new_q < self.lower)
                high = free & (new_q > self.upper)
                if not (low | high).any():
                    break
                pinned[low] = self.lower[low]
                pinned[high] = self.upper[high]
            q = np.clip(q + dq, self.lower, self.upper)
        step = q - q_start
        scale = float(np.max(np.abs(step) / budget))
        if scale > 1.0:
            q = q_start + step / scale
        return q
