"""`flip_small_box`: turn a small flat box over so that its marked top face ends up facing the table.

Milestones of `progress`: gripper touches the box 0.3; box tilted by 45 deg 0.5; on its side (90 deg)
0.7; upside down (more than `flipped_angle`) but still held or moving 0.9; upside down and resting on
the table, released 1.0 (= success).
"""

from __future__ import annotations

from typing import ClassVar

import mujoco
import numpy as np

from rig.sim.tasks.base import (
    add_free_box,
    body_id,
    body_pos,
    body_rot,
    cfg_float,
    cfg_range,
    cfg_vec,
    ramp,
    set_free_pose,
    uniform,
    yaw_quat_wxyz,
)
from rig.sim.tasks.common import ConfiguredTask

BOX = "flip_box"


class FlipSmallBox(ConfiguredTask):
    """Flip a small flat box (marked top face) upside down and leave it resting on the table."""

    name: ClassVar[str] = "flip_small_box"
    body_names: ClassVar[tuple[str, ...]] = (BOX,)

    def __init__(self, config: dict | None = None) -> None:
        super().__init__(config)
        self.half = cfg_vec(self.cfg, "box_half_size", self.where, 3)
        self.mass = cfg_float(self.cfg, "mass", self.where)
        self.friction = cfg_float(self.cfg, "friction", self.where)
        self.x_range = cfg_range(self.cfg, "x_range", self.where)
        self.y_range = cfg_range(self.cfg, "y_range", self.where)
        self.yaw_range = cfg_range(self.cfg, "yaw_range", self.where)
        self.flipped_angle = np.deg2rad(cfg_float(self.cfg, "flipped_angle_deg", self.where))
        self.rest_speed = cfg_float(self.cfg, "rest_speed", self.where)

    def build(self, spec: mujoco.MjSpec) -> None:
        body = add_free_box(spec.worldbody, BOX, self.half, self.mass, [0.2, 0.45, 0.8, 1.0], self.friction)
        # The marked top face: a thin visual-only plate, massless, not colliding.
        body.add_geom(
            name=f"{BOX}_top_mark",
            type=mujoco.mjtGeom.mjGEOM_BOX,
            size=[self.half[0] * 0.8, self.half[1] * 0.8, 5e-4],
            pos=[0.0, 0.0, self.half[2]],
            rgba=[0.95, 0.85, 0.1, 1.0],
            contype=0,
            conaffinity=0,
            density=0.0,
        )

    def reset(self, model: mujoco.MjModel, data: mujoco.MjData, rng: np.random.Generator) -> None:
        pos = [uniform(rng, self.x_range), uniform(rng, self.y_range), self.half[2] + 5e-4]
        set_free_pose(model, data, f"{BOX}_free", pos, yaw_quat_wxyz(uniform(rng, self.yaw_range)))

    def tilt(self, model: mujoco.MjModel, data: mujoco.MjData) -> float:
        """Angle (radians) between the box's marked top face normal and world up."""
        return float(np.arccos(np.clip(body_rot(model, data, BOX)[2, 2], -1.0, 1.0)))

    def resting(self, model: mujoco.MjModel, data: mujoco.MjData) -> bool:
        """On the table (lying flat), slow, and not touched by the robot."""
        bid = body_id(model, BOX)
        speed = float(np.linalg.norm(data.cvel[bid][3:]))
        on_table = body_pos(model, data, BOX)[2] < self.half[2] + 0.005
        return bool(on_table and speed < self.rest_speed and not self.touched(model, data, (BOX,)))

    def success(self, model: mujoco.MjModel, data: mujoco.MjData) -> bool:
        return bool(self.tilt(model, data) >= self.flipped_angle and self.resting(model, data))

    def progress(self, model: mujoco.MjModel, data: mujoco.MjData) -> float:
        if self.success(model, data):
            return 1.0
        tilt = self.tilt(model, data)
        if tilt >= self.flipped_angle:
            return 0.9
        if tilt >= np.pi / 4:
            return 0.5 + 0.2 * ramp(tilt, np.pi / 4, np.pi / 2)
        return 0.3 if self.touched(model, data, (BOX,)) else 0.0
