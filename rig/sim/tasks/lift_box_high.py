"""`lift_box_high`: pick a cube up from the table and raise it well above the table.

Milestones of `progress` (state of the current step): gripper touches the box 0.3; box off the table
(> `lift_clear`) 0.5, rising linearly to 0.7 at half the target height and to 0.9 just below it; box
bottom at or above `lift_height` 1.0 (= success).
"""

from __future__ import annotations

from typing import ClassVar

import mujoco
import numpy as np

from rig.sim.tasks.base import (
    add_free_box,
    body_pos,
    cfg_float,
    cfg_range,
    cfg_vec,
    ramp,
    set_free_pose,
    uniform,
    yaw_quat_wxyz,
)
from rig.sim.tasks.common import ConfiguredTask

BOX = "lift_box"


class LiftBoxHigh(ConfiguredTask):
    """Lift a box from a random place on the table to `lift_height` metres above the table top."""

    name: ClassVar[str] = "lift_box_high"
    body_names: ClassVar[tuple[str, ...]] = (BOX,)

    def __init__(self, config: dict | None = None) -> None:
        super().__init__(config)
        self.half = cfg_vec(self.cfg, "box_half_size", self.where, 3)
        self.mass = cfg_float(self.cfg, "mass", self.where)
        self.friction = cfg_float(self.cfg, "friction", self.where)
        self.x_range = cfg_range(self.cfg, "x_range", self.where)
        self.y_range = cfg_range(self.cfg, "y_range", self.where)
        self.yaw_range = cfg_range(self.cfg, "yaw_range", self.where)
        self.lift_height = cfg_float(self.cfg, "lift_height", self.where)
        self.lift_clear = cfg_float(self.cfg, "lift_clear", self.where)

    def build(self, spec: mujoco.MjSpec) -> None:
        add_free_box(spec.worldbody, BOX, self.half, self.mass, [0.85, 0.25, 0.15, 1.0], self.friction)

    def reset(self, model: mujoco.MjModel, data: mujoco.MjData, rng: np.random.Generator) -> None:
        pos = [uniform(rng, self.x_range), uniform(rng, self.y_range), self.half[2] + 5e-4]
        set_free_pose(model, data, f"{BOX}_free", pos, yaw_quat_wxyz(uniform(rng, self.yaw_range)))

    def height(self, model: mujoco.MjModel, data: mujoco.MjData) -> float:
        """Height of the box bottom above the table (centre height minus half the box height)."""
        return float(body_pos(model, data, BOX)[2] - self.half[2])

    def success(self, model: mujoco.MjModel, data: mujoco.MjData) -> bool:
        return bool(self.height(model, data) >= self.lift_height)

    def progress(self, model: mujoco.MjModel, data: mujoco.MjData) -> float:
        if self.success(model, data):
            return 1.0
        h = self.height(model, data)
        if h > self.lift_clear:
            half = 0.5 * self.lift_height
            if h < half:
                return 0.5 + 0.2 * ramp(h, self.lift_clear, half)
            return 0.7 + 0.2 * ramp(h, half, self.lift_height)
        return 0.3 if self.touched(model, data, (BOX,)) else 0.0
