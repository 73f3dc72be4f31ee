"""Retargeting controller motion onto the arms: a fixed VR-to-base rotation per arm, scaling, a clutch
per arm and optional smoothing.

Frames: the VR frame is the protocol's (+y up, -z forward, +x right; `teleop.protocol`). The operator
stands behind the arms facing the front camera, so VR forward is world +x, VR up is world +z and VR
right is world -y (`R_WORLD_VR`); `operator_yaw_deg` turns that about world z for another stance, and
re-centring also takes out the headset's yaw, so "forward" is where the operator looks. Each arm's base
is yawed 45 degrees (config/calibration.yaml), so per arm `R_base_vr = R_base_world @ R_world_vr`.

Clutch: engaging stores the controller pose and the arm's commanded end-effector pose; while engaged
the target is the stored EE pose moved by the controller's displacement since engaging (position
scaled by `translation_scale`, the rotation's angle by `rotation_scale`), both rotated into the base
frame. At the moment of engaging the target equals the stored EE pose, so nothing jumps.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy.spatial.transform import Rotation

from rig.params import get_float, reject_unknown
from rig.rotations import slerp_quat

R_WORLD_VR = np.array([[0.0, 0.0, -1.0],
                       [-1.0, 0.0, 0.0],
                       [0.0, 1.0, 0.0]])
"""Columns: the world directions of VR +x (operator's right = world -y), +y (up = world +z) and
+z (backward = world -x)."""


@dataclass(frozen=True)
class RetargetConfig:
    """`retarget:` of config/teleop.yaml."""

    translation_scale: float = 1.0
    rotation_scale: float = 1.0
    smoothing: float = 0.0
    """Exponential smoothing weight of the previous target in [0, 1); 0 is off."""
    operator_yaw_deg: float = 0.0
    grip_threshold: float = 0.5
    """Grip (squeeze) value at or above which the clutch is held."""

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], where: str = "retarget") -> RetargetConfig:
        reject_unknown(data, set(cls.__dataclass_fields__), where)
        return cls(
            translation_scale=get_float(data, "translation_scale", where, 1.0, positive=True),
            rotation_scale=get_float(data, "rotation_scale", where, 1.0, low=0.0),
            smoothing=get_float(data, "smoothing", where, 0.0, low=0.0, high=0.95),
            operator_yaw_deg=get_float(data, "operator_yaw_deg", where, 0.0),
            grip_threshold=get_float(data, "grip_threshold", where, 0.5, low=0.01, high=1.0),
        )


def headset_yaw(headset_pose: NDArray[np.float64]) -> float:
    """Yaw (rad, about VR +y) of the headset's forward direction (-z) from the VR frame's -z."""
    fwd = Rotation.from_quat(headset_pose[3:7]).apply([0.0, 0.0, -1.0])
    return float(np.arctan2(-fwd[0], -fwd[2]))


class VRToBase:
    """The fixed rotation and scaling from the VR frame to one arm's base frame, both directions."""

    def __init__(self, R_world_base: NDArray[np.float64], config: RetargetConfig, yaw: float = 0.0) -> None:
        self.R_world_base = np.asarray(R_world_base, dtype=np.float64)
        self.config = config
        self.set_heading(yaw)

    def set_heading(self, headset_yaw_rad: float) -> None:
        """Re-centre: VR directions are measured from the headset's yaw `headset_yaw_rad`."""
        R_world_vr = (Rotation.from_euler("z", self.config.operator_yaw_deg, degrees=True).as_matrix()
                      @ R_WORLD_VR @ Rotation.from_euler("y", -headset_yaw_rad).as_matrix())
        self.R_base_vr = self.R_world_base.T @ R_world_vr

    def target(self, ctrl: NDArray[np.float64], ctrl0: NDArray[np.float64],
               ee0: NDArray[np.float64]) -> NDArray[np.float64]:
        """EE pose (7) in the base frame for controller pose `ctrl`, anchors `ctrl0` (VR) and `ee0` (base)."""
        cfg = self.config
        pos = ee0[:3] + cfg.translation_scale * (self.R_base_vr @ (ctrl[:3] - ctrl0[:3]))
        d_vr = Rotation.from_quat(ctrl[3:7]) * Rotation.from_quat(ctrl0[3:7]).inv()
        d_base = Rotation.from_rotvec(cfg.rotation_scale * (self.R_base_vr @ d_vr.as_rotvec()))
        quat = (d_base * Rotation.from_quat(ee0[3:7])).as_quat()
        return np.concatenate([pos, quat])

    def controller(self, target: NDArray[np.float64], ctrl0: NDArray[np.float64],
                   ee0: NDArray[np.float64]) -> NDArray[np.float64]:
        """The controller pose (VR) that `target` needs (the inverse of `target`; rotation_scale > 0)."""
        cfg = self.config
        pos = ctrl0[:3] + self.R_base_vr.T @ (target[:3] - ee0[:3]) / cfg.translation_scale
        d_base = Rotation.from_quat(target[3:7]) * Rotation.from_quat(ee0[3:7]).inv()
        d_vr = Rotation.from_rotvec(self.R_base_vr.T @ d_base.as_rotvec() / cfg.rotation_scale)
        quat = (d_vr * Rotation.from_quat(ctrl0[3:7])).as_quat()
        return np.concatenate([pos, quat])


class ArmClutch:
    """Clutch, trigger-to-gripper and smoothing of one arm; `update` returns the arm's (8,) target."""

    def __init__(self, mapping: VRToBase) -> None:
        self.mapping = mapping
        self.engaged = False
        self.needs_release = False
        self._ctrl0: NDArray[np.float64] | None = None
        self._ee0: NDArray[np.float64] | None = None
        self.target: NDArray[np.float64] | None = None
        """Last (8,) target [pose, opening]; the frozen target while released."""

    def engage(self, ctrl_pose: NDArray[np.float64], ee_target: NDArray[np.float64]) -> None:
        """Store the anchors: the controller pose and the arm's commanded (8,) target."""
        self._ctrl0 = np.asarray(ctrl_pose, dtype=np.float64).copy()
        self._ee0 = np.asarray(ee_target[:7], dtype=np.float64).copy()
        self.target = np.asarray(ee_target, dtype=np.float64).copy()
        self.engaged = True

    def release(self, hold: NDArray[np.float64] | None = None, needs_release: bool = False) -> None:
        """Disengage; the arm holds `hold` (its commanded pose) or the last target."""
        self.engaged = False
        self.needs_release = self.needs_release or needs_release
        if hold is not None:
            self.target = np.asarray(hold, dtype=np.float64).copy()

    def update(self, ctrl_pose: NDArray[np.float64], trigger: float) -> NDArray[np.float64] | None:
        """New (8,) target while engaged (None while released: the frozen target stands)."""
        if not self.engaged or self._ctrl0 is None or self._ee0 is None:
            return None
        new = np.concatenate([self.mapping.target(ctrl_pose, self._ctrl0, self._ee0), [1.0 - trigger]])
        alpha = self.mapping.config.smoothing
        if alpha > 0.0 and self.target is not None:
            out = (1.0 - alpha) * new + alpha * self.target
            out[3:7] = slerp_quat(self.target[3:7], new[3:7], 1.0 - alpha)
            new = out
        self.target = new
        return new
