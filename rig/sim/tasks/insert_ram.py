"""`insert_ram`: pick up a memory card standing on the table and push it into a slot with tight clearance.

The slot is a fixed socket: a base plate with two rails and two end stops whose gap leaves
`clearance` metres on each side of the card. Milestones of `progress`: gripper touches the card 0.2;
card lifted off the table 0.4; card upright above the slot, aligned within `align_tol` 0.6; card
partly inside the slot 0.8; card seated (bottom within `seat_tol` of the slot floor, upright, inside
the slot) 1.0 (= success).
"""

from __future__ import annotations

from typing import ClassVar

import mujoco
import numpy as np

from rig.sim.tasks.base import (
    add_free_box,
    body_pos,
    body_rot,
    cfg_float,
    cfg_range,
    cfg_vec,
    set_free_pose,
    uniform,
    yaw_quat_wxyz,
)
from rig.sim.tasks.common import ConfiguredTask

CARD = "ram_card"
SLOT = "ram_slot"


class InsertRam(ConfiguredTask):
    """Insert a card (RAM module) into a slot whose gap is only `2 * clearance` wider than the card."""

    name: ClassVar[str] = "insert_ram"
    body_names: ClassVar[tuple[str, ...]] = (CARD, SLOT)

    def __init__(self, config: dict | None = None) -> None:
        super().__init__(config)
        self.card_half = cfg_vec(self.cfg, "card_half_size", self.where, 3)
        self.card_mass = cfg_float(self.cfg, "card_mass", self.where)
        self.friction = cfg_float(self.cfg, "friction", self.where)
        self.clearance = cfg_float(self.cfg, "clearance", self.where)
        self.base_height = cfg_float(self.cfg, "base_height", self.where)
        self.rail_height = cfg_float(self.cfg, "rail_height", self.where)
        self.rail_width = cfg_float(self.cfg, "rail_width", self.where)
        self.card_x_range = cfg_range(self.cfg, "card_x_range", self.where)
        self.card_y_range = cfg_range(self.cfg, "card_y_range", self.where)
        self.card_yaw_range = cfg_range(self.cfg, "card_yaw_range", self.where)
        self.slot_x_range = cfg_range(self.cfg, "slot_x_range", self.where)
        self.slot_y_range = cfg_range(self.cfg, "slot_y_range", self.where)
        self.slot_yaw_range = cfg_range(self.cfg, "slot_yaw_range", self.where)
        self.seat_tol = cfg_float(self.cfg, "seat_tol", self.where)
        self.align_tol = cfg_float(self.cfg, "align_tol", self.where)

    @property
    def floor_z(self) -> float:
        """Height of the slot floor (top of the base plate) above the table."""
        return self.base_height

    def build(self, spec: mujoco.MjSpec) -> None:
        cx, cy, _ = self.card_half
        c, w, rh, bh = self.clearance, self.rail_width, self.rail_height, self.base_height
        slot = spec.worldbody.add_body(name=SLOT, pos=[0.0, 0.0, 0.0], mocap=True)
        colour = [0.1, 0.45, 0.2, 1.0]
        out_x, out_y = cx + c + w, cy + c + w
        slot.add_geom(name=f"{SLOT}_base", type=mujoco.mjtGeom.mjGEOM_BOX, size=[out_x + 0.01, out_y + 0.01, bh / 2],
                      pos=[0.0, 0.0, bh / 2], rgba=colour)
        for sign in (-1.0, 1.0):
            slot.add_geom(name=f"{SLOT}_rail{int(sign)}", type=mujoco.mjtGeom.mjGEOM_BOX,
                          size=[out_x, w / 2, rh / 2], pos=[0.0, sign * (cy + c + w / 2), bh + rh / 2],
                          rgba=colour)
            slot.add_geom(name=f"{SLOT}_stop{int(sign)}", type=mujoco.mjtGeom.mjGEOM_BOX,
                          size=[w / 2, cy + c, rh / 2], pos=[sign * (cx + c + w / 2), 0.0, bh + rh / 2],
                          rgba=colour)
        card = add_free_box(spec.worldbody, CARD, self.card_half, self.card_mass, [0.1, 0.3, 0.1, 1.0],
                            self.friction)
        # Gold contact strip along the bottom edge, visual only.
        card.add_geom(name=f"{CARD}_pins", type=mujoco.mjtGeom.mjGEOM_BOX,
                      size=[cx * 0.9, cy + 2e-4, 0.003], pos=[0.0, 0.0, -self.card_half[2] + 0.003],
                      rgba=[0.85, 0.7, 0.2, 1.0], contype=0, conaffinity=0, density=0.0)

    def reset(self, model: mujoco.MjModel, data: mujoco.MjData, rng: np.random.Generator) -> None:
        mocap = model.body_mocapid[mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, SLOT)]
        data.mocap_pos[mocap] = [uniform(rng, self.slot_x_range), uniform(rng, self.slot_y_range), 0.0]
        data.mocap_quat[mocap] = yaw_quat_wxyz(uniform(rng, self.slot_yaw_range))
        pos = [uniform(rng, self.card_x_range), uniform(rng, self.card_y_range), self.card_half[2] + 5e-4]
        set_free_pose(model, data, f"{CARD}_free", pos, yaw_quat_wxyz(uniform(rng, self.card_yaw_range)))

    def card_in_slot(self, model: mujoco.MjModel, data: mujoco.MjData) -> tuple[np.ndarray, np.ndarray]:
        """Card centre in the slot frame (3,) and the card's rotation in the slot frame (3, 3)."""
        slot_pos, slot_rot = body_pos(model, data, SLOT), body_rot(model, data, SLOT)
        rel = slot_rot.T @ (body_pos(model, data, CARD) - slot_pos)
        return rel, slot_rot.T @ body_rot(model, data, CARD)

    def bottom_height(self, model: mujoco.MjModel, data: mujoco.MjData) -> float:
        """Lowest point of the card above the table (its bottom edge when upright)."""
        rot = body_rot(model, data, CARD)
        extent = float(np.abs(rot[2, :]) @ self.card_half)
        return float(body_pos(model, data, CARD)[2] - extent)

    def _aligned(self, model: mujoco.MjModel, data: mujoco.MjData) -> tuple[bool, np.ndarray]:
        rel, rot = self.card_in_slot(model, data)
        upright = rot[2, 2] > 0.97
        # The card is symmetric under a half turn, so its x axis may point either way along the slot.
        yaw_ok = abs(rot[0, 0]) > np.cos(np.deg2rad(8.0))
        inside = abs(rel[0]) < self.clearance + self.align_tol and abs(rel[1]) < self.clearance + self.align_tol
        return bool(upright and yaw_ok and inside), rel

    def success(self, model: mujoco.MjModel, data: mujoco.MjData) -> bool:
        aligned, _ = self._aligned(model, data)
        return bool(aligned and self.bottom_height(model, data) <= self.floor_z + self.seat_tol)

    def progress(self, model: mujoco.MjModel, data: mujoco.MjData) -> float:
        if self.success(model, data):
            return 1.0
        aligned, _ = self._aligned(model, data)
        bottom = self.bottom_height(model, data)
        if aligned and bottom < self.floor_z + self.rail_height:
            return 0.8
        if aligned:
            return 0.6
        if bottom > 0.01:
            return 0.4
        return 0.2 if self.touched(model, data, (CARD,)) else 0.0
