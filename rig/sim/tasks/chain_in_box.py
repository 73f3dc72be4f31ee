"""`chain_in_box`: put a chain of linked bodies into an open box, then close the box's hinged lid.

The chain is `links` capsules joined by ball joints with limited swing, its free end link a flat tag;
the box is fixed on the table and its lid rests open against its hinge stop, leaning back past
vertical. Milestones of `progress`: robot touches the chain 0.2; chain lifted (any link higher than
`lift_clear`) 0.35; links inside the box 0.35-0.7 (by the fraction inside); every link inside and the
lid closing 0.7-0.95 (by the lid angle); every link inside and the lid closed (angle below
`closed_deg`) 1.0 (= success).
"""

from __future__ import annotations

from typing import ClassVar

import mujoco
import numpy as np

from rig.sim.tasks.base import (
    angle_range,
    body_id,
    body_pos,
    body_rot,
    cfg_float,
    cfg_range,
    cfg_vec,
    hinge_angle,
    joint_id,
    ramp,
    set_free_pose,
    set_hinge,
    uniform,
    yaw_quat_wxyz,
)
from rig.sim.tasks.common import ConfiguredTask

CONTAINER = "chain_box"
LID = "chain_box_lid"
LID_HINGE = "chain_box_lid_hinge"
LINK = "chain_link"


class ChainInBox(ConfiguredTask):
    """Place a chain inside a box and close the lid (one arm carries the chain, the other closes the lid)."""

    name: ClassVar[str] = "chain_in_box"

    def __init__(self, config: dict | None = None) -> None:
        super().__init__(config)
        self.links = int(cfg_float(self.cfg, "links", self.where))
        self.link_pitch = cfg_float(self.cfg, "link_pitch", self.where)
        self.link_radius = cfg_float(self.cfg, "link_radius", self.where)
        self.link_mass = cfg_float(self.cfg, "link_mass", self.where)
        self.swing_limit = np.deg2rad(cfg_float(self.cfg, "swing_limit_deg", self.where))
        self.joint_damping = cfg_float(self.cfg, "joint_damping", self.where)
        self.inner_half = cfg_vec(self.cfg, "box_inner_half", self.where, 2)
        self.wall_height = cfg_float(self.cfg, "wall_height", self.where)
        self.wall = cfg_float(self.cfg, "wall_thickness", self.where)
        self.lid_open = np.deg2rad(cfg_float(self.cfg, "lid_open_deg", self.where))
        self.lid_limit = np.deg2rad(cfg_float(self.cfg, "lid_limit_deg", self.where))
        self.lid_closed = np.deg2rad(cfg_float(self.cfg, "closed_deg", self.where))
        self.lid_damping = cfg_float(self.cfg, "lid_damping", self.where)
        self.lift_clear = cfg_float(self.cfg, "lift_clear", self.where)
        self.box_x_range = cfg_range(self.cfg, "box_x_range", self.where)
        self.box_y_range = cfg_range(self.cfg, "box_y_range", self.where)
        self.box_yaw_range = cfg_range(self.cfg, "box_yaw_range", self.where)
        self.chain_x_range = cfg_range(self.cfg, "chain_x_range", self.where)
        self.chain_y_range = cfg_range(self.cfg, "chain_y_range", self.where)
        self.chain_yaw_range = cfg_range(self.cfg, "chain_yaw_range", self.where)
        if self.links < 2:
            raise ValueError(f"{self.where}.links: {self.links}, expected at least 2")
        self.body_names = (CONTAINER, LID, *self.link_names)  # type: ignore[misc]

    @property
    def link_names(self) -> tuple[str, ...]:
        """Body names of the chain links, from the free end link 0."""
        return tuple(f"{LINK}{i}" for i in range(self.links))

    @property
    def lid_length(self) -> float:
        """Lid depth (hinge to free edge), covering the box's outer footprint."""
        return 2.0 * (self.inner_half[1] + self.wall)

    def build(self, spec: mujoco.MjSpec) -> None:
        ix, iy = self.inner_half
        w, h = self.wall, self.wall_height
        colour = [0.55, 0.4, 0.25, 1.0]
        box = spec.worldbody.add_body(name=CONTAINER, pos=[0.0, 0.0, 0.0], mocap=True)
        box.add_geom(name=f"{CONTAINER}_floor", type=mujoco.mjtGeom.mjGEOM_BOX,
                     size=[ix + w, iy + w, w / 2], pos=[0.0, 0.0, w / 2], rgba=colour)
        for sign in (-1.0, 1.0):
            box.add_geom(name=f"{CONTAINER}_wall_x{int(sign)}", type=mujoco.mjtGeom.mjGEOM_BOX,
                         size=[w / 2, iy + w, h / 2], pos=[sign * (ix + w / 2), 0.0, h / 2], rgba=colour)
            box.add_geom(name=f"{CONTAINER}_wall_y{int(sign)}", type=mujoco.mjtGeom.mjGEOM_BOX,
                         size=[ix, w / 2, h / 2], pos=[0.0, sign * (iy + w / 2), h / 2], rgba=colour)
        # Lid hinged along the top of the +y wall; positive angles lift its free edge up and over.
        lid = box.add_body(name=LID, pos=[0.0, iy + w, h])
        lid.add_joint(name=LID_HINGE, type=mujoco.mjtJoint.mjJNT_HINGE, axis=[-1.0, 0.0, 0.0],
                      range=angle_range(spec, 0.0, self.lid_limit), limited=mujoco.mjtLimited.mjLIMITED_TRUE,
                      damping=self.lid_damping)
        length = self.lid_length
        lid.add_geom(name=LID, type=mujoco.mjtGeom.mjGEOM_BOX, size=[ix + w, length / 2, w / 2],
                     pos=[0.0, -length / 2, w / 2], rgba=[0.65, 0.5, 0.3, 1.0], mass=0.05)
        parent = spec.worldbody
        for i, name in enumerate(self.link_names):
            link = parent.add_body(name=name, pos=[0.0, 0.0, 0.0] if i == 0 else [self.link_pitch, 0.0, 0.0])
            if i == 0:
                link.add_freejoint(name=f"{LINK}_free")
            else:
                link.add_joint(name=f"{name}_ball", type=mujoco.mjtJoint.mjJNT_BALL,
                               range=angle_range(spec, 0.0, self.swing_limit), limited=mujoco.mjtLimited.mjLIMITED_TRUE,
                               damping=self.joint_damping)
            if i == 0:
                # The free end carries a flat tag (like a chain's end plate): the link the expert grasps.
                r = self.link_radius
                link.add_geom(name=name, type=mujoco.mjtGeom.mjGEOM_BOX, size=[self.link_pitch / 2, 1.4 * r, r],
                              pos=[self.link_pitch / 2, 0.0, 0.0], mass=self.link_mass,
                              rgba=[0.8, 0.6, 0.2, 1.0], friction=[1.0, 0.01, 0.001], condim=4)
            else:
                link.add_geom(name=name, type=mujoco.mjtGeom.mjGEOM_CAPSULE, size=[self.link_radius, 0.0, 0.0],
                              fromto=[0.0, 0.0, 0.0, self.link_pitch, 0.0, 0.0], mass=self.link_mass,
                              rgba=[0.7, 0.7, 0.75, 1.0], friction=[1.0, 0.01, 0.001], condim=4)
            parent = link

    def reset(self, model: mujoco.MjModel, data: mujoco.MjData, rng: np.random.Generator) -> None:
        mocap = model.body_mocapid[body_id(model, CONTAINER)]
        data.mocap_pos[mocap] = [uniform(rng, self.box_x_range), uniform(rng, self.box_y_range), 0.0]
        data.mocap_quat[mocap] = yaw_quat_wxyz(uniform(rng, self.box_yaw_range))
        set_hinge(model, data, LID_HINGE, self.lid_open)
        # The chain lies straight, centred on the sampled point.
        yaw = uniform(rng, self.chain_yaw_range)
        centre = np.array([uniform(rng, self.chain_x_range), uniform(rng, self.chain_y_range)])
        half = 0.5 * self.link_pitch * self.links * np.array([np.cos(yaw), np.sin(yaw)])
        start = centre - half
        set_free_pose(model, data, f"{LINK}_free", [start[0], start[1], self.link_radius + 5e-4],
                      yaw_quat_wxyz(yaw))
        for name in self.link_names[1:]:
            jid = joint_id(model, f"{name}_ball")
            qadr, vadr = model.jnt_qposadr[jid], model.jnt_dofadr[jid]
            data.qpos[qadr : qadr + 4] = [1.0, 0.0, 0.0, 0.0]
            data.qvel[vadr : vadr + 3] = 0.0

    def link_centres(self, model: mujoco.MjModel, data: mujoco.MjData) -> np.ndarray:
        """World positions (links, 3) of the link capsules' centres."""
        ids = [mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_GEOM, n) for n in self.link_names]
        return data.geom_xpos[ids].copy()

    def links_inside(self, model: mujoco.MjModel, data: mujoco.MjData) -> np.ndarray:
        """Per link: its centre lies within the box's inner walls and below their top."""
        rel = (self.link_centres(model, data) - body_pos(model, data, CONTAINER)) @ body_rot(model, data, CONTAINER)
        ix, iy = self.inner_half
        return (np.abs(rel[:, 0]) < ix) & (np.abs(rel[:, 1]) < iy) & (rel[:, 2] < self.wall_height) & (rel[:, 2] > 0)

    def lid_angle(self, model: mujoco.MjModel, data: mujoco.MjData) -> float:
        """Lid opening angle (radians): 0 closed."""
        return hinge_angle(model, data, LID_HINGE)

    def success(self, model: mujoco.MjModel, data: mujoco.MjData) -> bool:
        return bool(np.all(self.links_inside(model, data))) and self.lid_angle(model, data) <= self.lid_closed

    def progress(self, model: mujoco.MjModel, data: mujoco.MjData) -> float:
        if self.success(model, data):
            return 1.0
        inside = self.links_inside(model, data)
        if np.all(inside):
            return 0.7 + 0.25 * ramp(self.lid_open - self.lid_angle(model, data), 0.0, self.lid_open - self.lid_closed)
        if np.any(inside):
            return 0.35 + 0.35 * float(np.mean(inside))
        if float(np.max(self.link_centres(model, data)[:, 2])) > self.lift_clear:
            return 0.35
        return 0.2 if self.touched(model, data, self.link_names) else 0.0
