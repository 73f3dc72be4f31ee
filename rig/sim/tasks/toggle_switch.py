"""`toggle_switch`: push the rocker lever of a power switch from its `off` stop to its `on` side.

The switch is a fixed housing with a lever on a hinge; joint friction holds the lever wherever it is
left, like the detent of a real switch. Milestones of `progress`: gripper touches the lever 0.3; lever
moved off its stop toward `on` 0.3-0.6 (linear up to the middle); past the middle 0.6-0.9; lever at
or beyond `on_angle` 1.0 (= success).
"""

from __future__ import annotations

from typing import ClassVar

import mujoco
import numpy as np

from rig.sim.tasks.base import (
    angle_range,
    cfg_float,
    cfg_range,
    cfg_vec,
    hinge_angle,
    ramp,
    set_hinge,
    uniform,
    yaw_quat_wxyz,
)
from rig.sim.tasks.common import ConfiguredTask

HOUSING = "switch_housing"
LEVER = "switch_lever"
HINGE = "switch_hinge"


class ToggleSwitch(ConfiguredTask):
    """Toggle a hinged switch lever from `off` (negative angle) to `on` (positive angle)."""

    name: ClassVar[str] = "toggle_switch"
    body_names: ClassVar[tuple[str, ...]] = (HOUSING, LEVER)

    def __init__(self, config: dict | None = None) -> None:
        super().__init__(config)
        self.housing_half = cfg_vec(self.cfg, "housing_half_size", self.where, 3)
        self.lever_length = cfg_float(self.cfg, "lever_length", self.where)
        self.lever_half_width = cfg_float(self.cfg, "lever_half_width", self.where)
        self.limit = np.deg2rad(cfg_float(self.cfg, "limit_deg", self.where))
        self.off_angle = np.deg2rad(cfg_float(self.cfg, "off_angle_deg", self.where))
        self.on_angle = np.deg2rad(cfg_float(self.cfg, "on_angle_deg", self.where))
        self.friction_loss = cfg_float(self.cfg, "friction_loss", self.where)
        self.damping = cfg_float(self.cfg, "damping", self.where)
        self.x_range = cfg_range(self.cfg, "x_range", self.where)
        self.y_range = cfg_range(self.cfg, "y_range", self.where)
        self.yaw_range = cfg_range(self.cfg, "yaw_range", self.where)

    def build(self, spec: mujoco.MjSpec) -> None:
        hx, hy, hz = self.housing_half
        # The housing is a mocap body so each reset can place it; nothing moves it during an episode.
        housing = spec.worldbody.add_body(name=HOUSING, pos=[0.0, 0.0, 0.0], mocap=True)
        housing.add_geom(
            name=HOUSING, type=mujoco.mjtGeom.mjGEOM_BOX, size=[hx, hy, hz], pos=[0.0, 0.0, hz],
            rgba=[0.15, 0.15, 0.17, 1.0],
        )
        lever = housing.add_body(name=LEVER, pos=[0.0, 0.0, 2.0 * hz])
        lever.add_joint(
            name=HINGE, type=mujoco.mjtJoint.mjJNT_HINGE, axis=[0.0, 1.0, 0.0],
            range=angle_range(spec, -self.limit, self.limit),
            limited=mujoco.mjtLimited.mjLIMITED_TRUE, frictionloss=self.friction_loss, damping=self.damping,
        )
        w = self.lever_half_width
        lever.add_geom(
            name=LEVER, type=mujoco.mjtGeom.mjGEOM_BOX, size=[w, hy * 0.8, self.lever_length / 2.0],
            pos=[0.0, 0.0, self.lever_length / 2.0], rgba=[0.9, 0.1, 0.1, 1.0], mass=0.02,
            friction=[1.0, 0.01, 0.001],
        )

    def reset(self, model: mujoco.MjModel, data: mujoco.MjData, rng: np.random.Generator) -> None:
        mocap = model.body_mocapid[mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, HOUSING)]
        data.mocap_pos[mocap] = [uniform(rng, self.x_range), uniform(rng, self.y_range), 0.0]
        data.mocap_quat[mocap] = yaw_quat_wxyz(uniform(rng, self.yaw_range))
        set_hinge(model, data, HINGE, self.off_angle)

    def angle(self, model: mujoco.MjModel, data: mujoco.MjData) -> float:
        """Lever angle (radians): negative is `off`, positive is `on`."""
        return hinge_angle(model, data, HINGE)

    def success(self, model: mujoco.MjModel, data: mujoco.MjData) -> bool:
        return bool(self.angle(model, data) >= self.on_angle)

    def progress(self, model: mujoco.MjModel, data: mujoco.MjData) -> float:
        if self.success(model, data):
            return 1.0
        a = self.angle(model, data)
        moved = a > self.off_angle + np.deg2rad(2.0)
        if a > 0.0:
            return 0.6 + 0.3 * ramp(a, 0.0, self.on_angle)
        if moved:
            return 0.3 + 0.3 * ramp(a, self.off_angle, 0.0)
        return 0.3 if self.touched(model, data, (LEVER,)) else 0.0
