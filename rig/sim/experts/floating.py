"""`FloatingGrippers`: a bare scene with a table plane and two free-floating parallel grippers, no arms.

Each gripper is a dynamic hand welded to a mocap target, with two slide-jointed fingers under position
control, sized like the twin's 2F-85 (TCP frame: z approach, x closing). It offers the slice of the
`Twin` API the experts use (`T_world_base`, `tcp_pose_world`, `set_arm_target`, `set_gripper`, `step`,
`reset`, `task_success`, `task_progress`, `model`, `data`), with the twin's base placement from
`config/sim.yaml`. The hands follow their targets with no arm kinematics, so it separates a task's
physics and an expert's script from arm reachability and tracking: fast tests, and a second column in
the expert benchmark. Its own tunables are the `floating_grippers` section of `config/tasks.yaml`.
"""

from __future__ import annotations

from typing import Any

import mujoco
import numpy as np
from numpy.typing import NDArray
from scipy.spatial.transform import Rotation

from rig.conventions import ARM_NAMES, GRIPPER_STROKE_M, width_to_opening
from rig.rotations import matrix_to_pose, pose_to_matrix
from rig.schema import ArmState, GripperState, Observation
from rig.sim.simconfig import SimConfig
from rig.sim.tasks.base import cfg_float, cfg_vec, task_config

DOWN_WXYZ = (0.0, 1.0, 0.0, 0.0)
"""Home orientation: half turn about x, so the approach axis (TCP z) points down."""


def _wxyz(quat_xyzw: NDArray[np.float64]) -> NDArray[np.float64]:
    return np.array([quat_xyzw[3], quat_xyzw[0], quat_xyzw[1], quat_xyzw[2]])


class FloatingGrippers:
    """Two floating grippers around a task on a table plane (see the module docstring)."""

    def __init__(self, task: Any, config: dict[str, Any] | None = None) -> None:
        cfg = config if config is not None else task_config("floating_grippers")
        where = "tasks.yaml:floating_grippers"
        self.task = task
        sim = SimConfig()
        self._T_world_base: dict[str, NDArray[np.float64]] = {}
        self.home: dict[str, NDArray[np.float64]] = {}
        for arm in ARM_NAMES:
            m = np.eye(4)
            m[:3, :3] = Rotation.from_euler("xyz", sim.vector(f"arms.placement.{arm}.rpy_deg", 3),
                                            degrees=True).as_matrix()
            m[:3, 3] = sim.vector(f"arms.placement.{arm}.pos", 3)
            self._T_world_base[arm] = m
            self.home[arm] = cfg_vec(cfg, f"home_{arm}", where, 3)
        spec = mujoco.MjSpec()
        spec.option.timestep = cfg_float(cfg, "timestep", where)
        spec.option.cone = mujoco.mjtCone.mjCONE_ELLIPTIC
        spec.option.impratio = 10.0
        spec.worldbody.add_geom(name="rig/table", type=mujoco.mjtGeom.mjGEOM_PLANE, size=[1, 1, 0.01],
                                rgba=[0.8, 0.8, 0.8, 1])
        spec.worldbody.add_light(pos=[0, 0, 2], dir=[0, 0, -1])
        for arm in ARM_NAMES:
            self._add_hand(spec, arm, cfg, where)
        task.build(spec)
        self.model = spec.compile()
        self.data = mujoco.MjData(self.model)
        self._mocap = {a: int(self.model.body_mocapid[self.model.body(f"rig/{a}/target").id]) for a in ARM_NAMES}
        self._hand = {a: self.model.body(f"rig/{a}/hand").id for a in ARM_NAMES}
        self._target: dict[str, NDArray[np.float64]] = {}
        self.reset(0)

    def _add_hand(self, spec: mujoco.MjSpec, arm: str, cfg: dict[str, Any], where: str) -> None:
        home = list(self.home[arm])
        spec.worldbody.add_body(name=f"rig/{arm}/target", mocap=True, pos=home)
        # A dynamic hand welded to the mocap target: contacts then see real velocities, so friction holds.
        hand = spec.worldbody.add_body(name=f"rig/{arm}/hand", pos=home, gravcomp=1.0)
        hand.add_freejoint(name=f"rig/{arm}/hand_free")
        spec.add_equality(type=mujoco.mjtEq.mjEQ_WELD, name1=f"rig/{arm}/target", name2=f"rig/{arm}/hand",
                          objtype=mujoco.mjtObj.mjOBJ_BODY, solref=[cfg_float(cfg, "weld_timeconst", where), 1.0])
        # Palm, finger plates and pads sized like the twin's 2F-85 (rig/sim/scene.py), TCP at the origin.
        hand.add_geom(type=mujoco.mjtGeom.mjGEOM_BOX, size=[0.045, 0.031, 0.02], pos=[0, 0, -0.088],
                      rgba=[0.2, 0.2, 0.2, 1], mass=0.5)
        kp, force = cfg_float(cfg, "finger_kp", where), cfg_float(cfg, "finger_force", where)
        for side, sign in (("a", 1.0), ("b", -1.0)):
            finger = hand.add_body(name=f"rig/{arm}/finger_{side}", pos=[0, 0, 0], gravcomp=1.0)
            finger.add_joint(name=f"rig/{arm}/finger_{side}", type=mujoco.mjtJoint.mjJNT_SLIDE, axis=[sign, 0, 0],
                             range=[0, GRIPPER_STROKE_M / 2], limited=mujoco.mjtLimited.mjLIMITED_TRUE, damping=5.0)
            finger.add_geom(type=mujoco.mjtGeom.mjGEOM_BOX, size=[0.004, 0.012, 0.041],
                            pos=[sign * 0.012, 0, -0.027], mass=0.04, rgba=[0.2, 0.2, 0.2, 1])
            finger.add_geom(type=mujoco.mjtGeom.mjGEOM_BOX, size=[0.004, 0.011, 0.019], pos=[sign * 0.004, 0, -0.005],
                            mass=0.01, friction=[1.5, 0.02, 0.0002], condim=4, priority=1, rgba=[0.3, 0.3, 0.3, 1])
            act = spec.add_actuator(name=f"rig/{arm}/act_{side}", target=f"rig/{arm}/finger_{side}",
                                    trntype=mujoco.mjtTrn.mjTRN_JOINT)
            act.set_to_position(kp=kp)
            act.forcerange = [-force, force]
            act.forcelimited = mujoco.mjtLimited.mjLIMITED_TRUE

    def T_world_base(self, arm: str) -> NDArray[np.float64]:
        return self._T_world_base[arm].copy()

    def tcp_pose_world(self, arm: str) -> NDArray[np.float64]:
        """Measured TCP pose [x, y, z, qx, qy, qz, qw] of the hand in the world frame."""
        q = self.data.xquat[self._hand[arm]]
        return np.concatenate([self.data.xpos[self._hand[arm]], [q[1], q[2], q[3], q[0]]])

    def tcp_pose_base(self, arm: str) -> NDArray[np.float64]:
        return matrix_to_pose(np.linalg.inv(self._T_world_base[arm]) @ pose_to_matrix(self.tcp_pose_world(arm)))

    def _mocap_pose(self, arm: str) -> NDArray[np.float64]:
        i = self._mocap[arm]
        q = self.data.mocap_quat[i]
        return np.concatenate([self.data.mocap_pos[i], [q[1], q[2], q[3], q[0]]])

    def reset(self, seed: int) -> None:
        """Hands home and open, then the task randomises with a generator seeded by `seed`."""
        mujoco.mj_resetData(self.model, self.data)
        for arm in ARM_NAMES:
            i = self._mocap[arm]
            self.data.mocap_pos[i] = self.home[arm]
            self.data.mocap_quat[i] = DOWN_WXYZ
            free = self.model.joint(f"rig/{arm}/hand_free").qposadr[0]
            self.data.qpos[free : free + 3] = self.home[arm]
            self.data.qpos[free + 3 : free + 7] = DOWN_WXYZ
            self._target[arm] = self._mocap_pose(arm)
            self.set_gripper(arm, 1.0)
            for side in "ab":
                self.data.qpos[self.model.joint(f"rig/{arm}/finger_{side}").qposadr[0]] = GRIPPER_STROKE_M / 2
        self.task.reset(self.model, self.data, np.random.default_rng(seed))
        mujoco.mj_forward(self.model, self.data)

    def set_arm_target(self, arm: str, pose_base: NDArray[np.float64]) -> None:
        self._target[arm] = matrix_to_pose(self._T_world_base[arm] @ pose_to_matrix(pose_base))

    def set_gripper(self, arm: str, opening: float) -> None:
        for side in "ab":
            self.data.ctrl[self.model.actuator(f"rig/{arm}/act_{side}").id] = opening * GRIPPER_STROKE_M / 2

    def step(self, dt: float) -> None:
        """Advance `dt` seconds: each mocap target moves linearly to its latest command position and takes
        its orientation at once (the weld spreads the turn over the substeps)."""
        n = max(1, round(dt / self.model.opt.timestep))
        start = {a: self.data.mocap_pos[self._mocap[a]].copy() for a in ARM_NAMES}
        for arm in ARM_NAMES:
            self.data.mocap_quat[self._mocap[arm]] = _wxyz(self._target[arm][3:])
        for k in range(1, n + 1):
            for arm in ARM_NAMES:
                self.data.mocap_pos[self._mocap[arm]] = start[arm] + (self._target[arm][:3] - start[arm]) * (k / n)
            mujoco.mj_step(self.model, self.data)

    def observe(self, render: bool = False) -> Observation:
        """Arm and gripper states (no joints: q is zero; no cameras) at the current simulated time."""
        if render:
            raise ValueError("FloatingGrippers has no cameras; call observe(render=False)")
        t = float(self.data.time)
        arms, grippers = {}, {}
        for arm in ARM_NAMES:
            zeros = np.zeros(7)
            arms[arm] = ArmState(arm=arm, t=t, q=zeros, dq=zeros, tau=zeros, tcp_pose=self.tcp_pose_base(arm))
            width = float(sum(self.data.qpos[self.model.joint(f"rig/{arm}/finger_{s}").qposadr[0]] for s in "ab"))
            grippers[arm] = GripperState(arm=arm, t=t, opening=width_to_opening(width), width_m=max(width, 0.0))
        return Observation(t=t, frames={}, arms=arms, grippers=grippers, task=self.task.instruction)

    def task_success(self) -> bool:
        return bool(self.task.success(self.model, self.data))

    def task_progress(self) -> float:
        return float(np.clip(self.task.progress(self.model, self.data), 0.0, 1.0))

    def close(self) -> None:
        """Nothing to release (no renderer); present for parity with `Twin`."""
