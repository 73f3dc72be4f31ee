"""`Twin`: the MuJoCo twin of the dual-arm rig (two Rizon 4S + 2F-85-sized grippers, three cameras).

Control path per arm, like Flexiv's NRT Cartesian mode: a target pose in the arm's base frame ->
`CartesianMotionGenerator` (velocity/acceleration limits) -> `ArmIK` (damped least squares on a scratch
`MjData`, joint position and velocity limits) -> joint position actuators plus reference-velocity damping
on the physical arm, with gravity compensated. Motion generator and IK run at `physics.control_hz`,
physics at `physics.timestep`.

Clock: in "lockstep" the caller advances time with `step(dt)` and every timestamp (`t`) is simulated time
(seconds since `reset`); runs are bit-for-bit repeatable for the same seed and commands. In "realtime"
`step(dt)` also sleeps so simulated time keeps pace with `time.monotonic()`, and timestamps are host
monotonic time, like the real drivers. The twin serialises access with a lock so a stepping thread and
reader threads can share it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from typing import Any

import mujoco
import numpy as np
from numpy.typing import NDArray

from rig.config import ConfigError
from rig.conventions import ARM_NAMES, CAMERA_NAMES, POLICY_HZ, POSE_DIM
from rig.rotations import UNIT_QUAT_TOL, matrix_to_pose, normalize_quat, pose_to_matrix, quat_norm_error
from rig.schema import ArmState, CameraFrame, CameraIntrinsics, GripperState, Observation
from rig.sim import names
from rig.sim.camera_model import OPTICAL_FROM_MUJOCO, intrinsics_at
from rig.sim.ik import ArmIK, IKSettings
from rig.sim.motion import CartesianMotionGenerator, MotionLimits
from rig.sim.render import MultiViewRenderer
from rig.sim.scene import build_scene
from rig.sim.simconfig import SimConfig
from rig.sim.task_spec import TaskSpec

CLOCKS = ("lockstep", "realtime")



EXECUTOR_HZ = 100.0
"""The chunk executor's command rate on the twin (config/policy.yaml `executor.command_hz`)."""


def whole_steps(period: float, timestep: float, what: str, value: float) -> int:
    """`period / timestep` when it is a whole number >= 1, else a ConfigError naming the setting."""
    ratio = period / timestep
    if round(ratio) < 1 or abs(ratio - round(ratio)) > 1e-6:
        raise ConfigError(
            f"sim config: physics.timestep = {timestep:.9g} s does not divide the period {period:.9g} s of {what} "
            f"= {value:g} ({ratio:.4f} steps); use a timestep of 1/N of it (e.g. 1/600 s for 30, 100 and 300 Hz)")
    return round(ratio)

class _ArmHandles:
    """Indices of one arm's joints, actuators and sites in the compiled model."""

    def __init__(self, model: mujoco.MjModel, arm: str) -> None:
        joint_ids = [model.joint(n).id for n in names.joints(arm)]
        self.qadr = np.array([model.jnt_qposadr[j] for j in joint_ids])
        self.dofadr = np.array([model.jnt_dofadr[j] for j in joint_ids])
        self.pos_act = np.array([model.actuator(names.position_actuator(arm, i)).id for i in range(1, 8)])
        self.vel_act = np.array([model.actuator(names.velocity_actuator(arm, i)).id for i in range(1, 8)])
        self.base = model.body(names.base(arm)).id
        self.tcp = model.site(names.tcp_site(arm)).id
        self.finger_qadr = np.array(
            [model.jnt_qposadr[model.joint(names.finger_joint(arm, s)).id] for s in ("a", "b")]
        )
        self.finger_dofadr = np.array(
            [model.jnt_dofadr[model.joint(names.finger_joint(arm, s)).id] for s in ("a", "b")]
        )
        self.grip_act = model.actuator(names.gripper_actuator(arm)).id


class Twin:
    """The simulated rig: one MuJoCo world, Cartesian arm targets, gripper openings, three cameras."""

    def __init__(
        self,
        config: Mapping[str, Any] | None = None,
        task: TaskSpec | None = None,
        clock: str | None = None,
        render_size: tuple[int, int] | None = None,
    ) -> None:
        overrides: dict[str, Any] = dict(config or {})
        if render_size is not None:
            overrides = {**overrides, "render": {"height": int(render_size[0]), "width": int(render_size[1])}}
        self.cfg = SimConfig(overrides)
        self.clock = clock if clock is not None else self.cfg.choice("clock", CLOCKS)
        if self.clock not in CLOCKS:
            raise ValueError(f"Twin clock {self.clock!r}: expected one of {list(CLOCKS)}")
        self.task = task
        self.render_size = (int(self.cfg.number("render.height", positive=True)),
                            int(self.cfg.number("render.width", positive=True)))

        spec = build_scene(self.cfg)
        if task is not None:
            task.build(spec)
        self.spec = spec
        self.model: mujoco.MjModel = spec.compile()
        self.data = mujoco.MjData(self.model)
        self._scratch = mujoco.MjData(self.model)
        self.lock = threading.RLock()

        self.timestep = float(self.model.opt.timestep)
        control_hz = self.cfg.number("physics.control_hz", positive=True)
        self.decimation = whole_steps(1.0 / control_hz, self.timestep, "physics.control_hz", control_hz)
        self.control_dt = self.decimation * self.timestep

        self.handles = {arm: _ArmHandles(self.model, arm) for arm in ARM_NAMES}
        self.home_q = {arm: self.cfg.vector(f"arms.home_q.{arm}", 7) for arm in ARM_NAMES}
        limits = MotionLimits(
            max_linear_vel=self.cfg.number("arms.motion.max_linear_vel", positive=True),
            max_angular_vel=self.cfg.number("arms.motion.max_angular_vel", positive=True),
            max_linear_acc=self.cfg.number("arms.motion.max_linear_acc", positive=True),
            max_angular_acc=self.cfg.number("arms.motion.max_angular_acc", positive=True),
        )
        self.motion_limits = limits
        ik_settings = IKSettings(
            damping=self.cfg.number("arms.ik.damping", positive=True),
            iterations=int(self.cfg.number("arms.ik.iterations", positive=True)),
            nullspace_gain=self.cfg.number("arms.ik.nullspace_gain"),
            limit_margin=self.cfg.number("arms.ik.limit_margin"),
        )
        self.ik = {arm: ArmIK(self.model, arm, ik_settings, self.home_q[arm]) for arm in ARM_NAMES}
        self.motion = {arm: CartesianMotionGenerator(limits) for arm in ARM_NAMES}
        self.q_ref = {arm: self.home_q[arm].copy() for arm in ARM_NAMES}

        self.stroke = self.cfg.number("gripper.stroke", positive=True)
        self.gripper_speed_default = self.cfg.number("gripper.speed", positive=True)
        self.gripper_force_default = self.cfg.number("gripper.force", positive=True)
        self._grip_target = dict.fromkeys(ARM_NAMES, self.stroke)
        self._grip_cmd = dict.fromkeys(ARM_NAMES, self.stroke)
        self._grip_speed = dict.fromkeys(ARM_NAMES, self.gripper_speed_default)

        self._fy = {cam: self.cfg.number(f"cameras.{cam}.fy", positive=True) for cam in CAMERA_NAMES}
        self.camera_fps = self.cfg.number("cameras.fps", positive=True)
        # Whole physics steps per camera frame, per control tick and per policy/executor period, so sim
        # time, bag stamps and dataset time (frame k at k / fps) never drift apart.
        self.steps_per_frame = whole_steps(1.0 / self.camera_fps, self.timestep, "cameras.fps", self.camera_fps)
        for hz in (POLICY_HZ, EXECUTOR_HZ):
            whole_steps(1.0 / hz, self.timestep, f"the {hz:g} Hz policy/executor period", hz)
        self.renderer = MultiViewRenderer(self.model, self.render_size)

        mujoco.mj_kinematics(self.model, self.data)
        self._T_world_base = {arm: self._body_pose(self.handles[arm].base) for arm in ARM_NAMES}
        self._T_base_world = {arm: np.linalg.inv(T) for arm, T in self._T_world_base.items()}
        self._steps = 0
        self._wall_origin = time.monotonic()
        self._sim_origin = 0.0
        self.seed: int | None = None
        self.reset_state(0)

    # ------------------------------------------------------------------ lifecycle

    def reset(self, seed: int) -> Observation:
        """Home both arms, open the grippers, let the task randomise (rng seeded by `seed`); observe."""
        with self.lock:
            self.reset_state(seed)
            return self.observe(render=True)

    def reset_state(self, seed: int) -> None:
        """`reset` without the observation (renders nothing)."""
        with self.lock:
            self.seed = int(seed)
            mujoco.mj_resetData(self.model, self.data)
            mujoco.mj_resetData(self.model, self._scratch)
            for arm in ARM_NAMES:
                h = self.handles[arm]
                self.data.qpos[h.qadr] = self.home_q[arm]
                self.data.qpos[h.finger_qadr] = self.stroke / 2
                self.q_ref[arm] = self.home_q[arm].copy()
                self._scratch.qpos[h.qadr] = self.home_q[arm]
                self.data.ctrl[h.pos_act] = self.home_q[arm]
                self.data.ctrl[h.vel_act] = 0.0
                self._grip_target[arm] = self._grip_cmd[arm] = self.stroke
                self._grip_speed[arm] = self.gripper_speed_default
                self.data.ctrl[h.grip_act] = self.stroke
                self.model.actuator_forcerange[h.grip_act] = [-self.gripper_force_default,
                                                              self.gripper_force_default]
            if self.task is not None:
                self.task.reset(self.model, self.data, np.random.default_rng(self.seed))
            mujoco.mj_forward(self.model, self.data)
            for arm in ARM_NAMES:
                self.motion[arm].reset(self.tcp_pose_base(arm))
            self._steps = 0
            self._wall_origin = time.monotonic()
            self._sim_origin = float(self.data.time)

    def close(self) -> None:
        self.renderer.close()

    # ------------------------------------------------------------------ commands

    def set_arm_target(self, arm: str, pose_base: NDArray[np.float64]) -> None:
        """Stream a TCP target [x, y, z, qx, qy, qz, qw] in `arm`'s base frame (metres, unit quaternion)."""
        pose = self._check_pose(arm, pose_base)
        with self.lock:
            self.motion[self._arm(arm)].set_target(pose)

    def set_arm_target_world(self, arm: str, pose_world: NDArray[np.float64]) -> None:
        """Same as `set_arm_target` with the target in the world (table) frame."""
        pose = self._check_pose(arm, pose_world)
        self.set_arm_target(arm, matrix_to_pose(self._T_base_world[self._arm(arm)] @ pose_to_matrix(pose)))

    def arm_target(self, arm: str) -> NDArray[np.float64]:
        """Latest target pose of `arm` in its base frame."""
        with self.lock:
            return self.motion[self._arm(arm)].target()

    def set_gripper(self, arm: str, opening: float, speed: float | None = None, force: float | None = None) -> None:
        """Move the fingers toward `opening` in [0, 1] (1 = 85 mm apart) at `speed` m/s with `force` N."""
        arm = self._arm(arm)
        value = float(opening)
        if not np.isfinite(value) or not -1e-6 <= value <= 1.0 + 1e-6:
            raise ValueError(f"gripper {arm}: opening {opening!r}, expected a value in [0, 1]")
        for label, x in (("speed", speed), ("force", force)):
            if x is not None and (not np.isfinite(x) or x <= 0):
                raise ValueError(f"gripper {arm}: {label} {x!r}, expected a positive number")
        with self.lock:
            self._grip_target[arm] = min(max(value, 0.0), 1.0) * self.stroke
            self._grip_speed[arm] = float(speed) if speed is not None else self.gripper_speed_default
            f = float(force) if force is not None else self.gripper_force_default
            self.model.actuator_forcerange[self.handles[arm].grip_act] = [-f, f]

    # ------------------------------------------------------------------ time

    @property
    def sim_time(self) -> float:
        """Simulated seconds since the last reset."""
        return float(self.data.time) - self._sim_origin

    def now(self) -> float:
        """The twin clock: simulated time in lockstep, `time.monotonic()` in realtime."""
        return time.monotonic() if self.clock == "realtime" else self.sim_time

    def sync_wall_clock(self) -> None:
        """Realtime: pace from now on (simulated time so far maps to the current monotonic time)."""
        with self.lock:
            self._wall_origin = time.monotonic() - self.sim_time

    def step(self, dt: float) -> None:
        """Advance by `dt` seconds (rounded to whole physics steps; at least one)."""
        if not np.isfinite(dt) or dt < 0:
            raise ValueError(f"Twin.step: dt = {dt}, expected a non-negative number of seconds")
        n = max(1, round(dt / self.timestep))
        with self.lock:
            for _ in range(n):
                if self._steps % self.decimation == 0:
                    self._control_tick()
                mujoco.mj_step(self.model, self.data)
                self._steps += 1
            sim_elapsed = self.sim_time
        if self.clock == "realtime":
            lag = self._wall_origin + sim_elapsed - time.monotonic()
            if lag > 0:
                time.sleep(lag)

    def _control_tick(self) -> None:
        dt = self.control_dt
        for arm in ARM_NAMES:
            h = self.handles[arm]
            gen = self.motion[arm]
            gen.step(dt)
            T = self._T_world_base[arm] @ pose_to_matrix(gen.pose())
            q_prev = self.q_ref[arm]
            q_new = self.ik[arm].solve(self._scratch, q_prev, T[:3, 3], T[:3, :3], dt)
            self.q_ref[arm] = q_new
            self.data.ctrl[h.pos_act] = q_new
            self.data.ctrl[h.vel_act] = (q_new - q_prev) / dt
            target, cmd = self._grip_target[arm], self._grip_cmd[arm]
            max_step = self._grip_speed[arm] * dt
            self._grip_cmd[arm] = cmd + float(np.clip(target - cmd, -max_step, max_step))
            self.data.ctrl[h.grip_act] = self._grip_cmd[arm]

    # ------------------------------------------------------------------ state

    def _body_pose(self, body_id: int) -> NDArray[np.float64]:
        T = np.eye(4)
        T[:3, :3] = self.data.xmat[body_id].reshape(3, 3)
        T[:3, 3] = self.data.xpos[body_id]
        return T

    def T_world_base(self, arm: str) -> NDArray[np.float64]:
        """4x4 pose of `arm`'s base frame in the world (table) frame."""
        return self._T_world_base[self._arm(arm)].copy()

    def tcp_matrix_world(self, arm: str) -> NDArray[np.float64]:
        h = self.handles[self._arm(arm)]
        T = np.eye(4)
        T[:3, :3] = self.data.site_xmat[h.tcp].reshape(3, 3)
        T[:3, 3] = self.data.site_xpos[h.tcp]
        return T

    def tcp_pose_world(self, arm: str) -> NDArray[np.float64]:
        """Measured TCP pose [x, y, z, qx, qy, qz, qw] in the world frame."""
        with self.lock:
            return matrix_to_pose(self.tcp_matrix_world(arm))

    def tcp_pose_base(self, arm: str) -> NDArray[np.float64]:
        """Measured TCP pose in `arm`'s base frame (what the arm reports)."""
        with self.lock:
            return matrix_to_pose(self._T_base_world[self._arm(arm)] @ self.tcp_matrix_world(arm))

    def joint_positions(self, arm: str) -> NDArray[np.float64]:
        with self.lock:
            return self.data.qpos[self.handles[self._arm(arm)].qadr].copy()

    def arm_state(self, arm: str, t: float | None = None) -> ArmState:
        arm = self._arm(arm)
        h = self.handles[arm]
        with self.lock:
            vel = np.zeros(6)
            mujoco.mj_objectVelocity(self.model, self.data, mujoco.mjtObj.mjOBJ_SITE, h.tcp, vel, 0)
            R = self._T_base_world[arm][:3, :3]
            tcp_vel = np.concatenate([R @ vel[3:], R @ vel[:3]])  # linear then angular, base frame
            return ArmState(
                arm=arm, t=self.now() if t is None else t,
                q=self.data.qpos[h.qadr].copy(), dq=self.data.qvel[h.dofadr].copy(),
                tau=self.data.qfrc_actuator[h.dofadr].copy(), tcp_pose=self.tcp_pose_base(arm),
                tcp_vel=tcp_vel,
            )

    def gripper_state(self, arm: str, t: float | None = None) -> GripperState:
        arm = self._arm(arm)
        h = self.handles[arm]
        with self.lock:
            width = max(float(np.sum(self.data.qpos[h.finger_qadr])), 0.0)
            speed = float(np.sum(self.data.qvel[h.finger_dofadr]))
            force = abs(float(self.data.actuator_force[h.grip_act]))
            limit = float(self.model.actuator_forcerange[h.grip_act][1])
            commanded = self._grip_cmd[arm]
            return GripperState(
                arm=arm, t=self.now() if t is None else t, opening=min(width / self.stroke, 1.0),
                width_m=width, is_moving=abs(speed) > 1e-3 or abs(self._grip_target[arm] - commanded) > 1e-6,
                object_detected=force > 0.9 * limit and width > commanded + 0.002,
            )

    # ------------------------------------------------------------------ cameras

    def intrinsics(self, camera: str) -> CameraIntrinsics:
        """Intrinsics of `camera` at the twin's render size."""
        if camera not in CAMERA_NAMES:
            raise ValueError(f"camera {camera!r}: expected one of {list(CAMERA_NAMES)}")
        return intrinsics_at(self._fy[camera], self.render_size)

    def camera_pose_world(self, camera: str) -> NDArray[np.float64]:
        """4x4 pose of `camera`'s optical frame (x right, y down, z forward) in the world frame."""
        cam = self.model.camera(names.camera(camera)).id
        with self.lock:
            T = np.eye(4)
            T[:3, :3] = self.data.cam_xmat[cam].reshape(3, 3) @ OPTICAL_FROM_MUJOCO
            T[:3, 3] = self.data.cam_xpos[cam]
            return T

    def render(self) -> dict[str, NDArray[np.uint8]]:
        """RGB images (H, W, 3) uint8 of front, wrist_left and wrist_right at the current state."""
        with self.lock:
            return self.renderer.render(self.data)

    def observe(self, render: bool = True) -> Observation:
        """Synchronised observation at the current instant (`t` = twin clock, see module doc)."""
        with self.lock:
            t = self.now()
            frame_number = int(np.floor(self.sim_time * self.camera_fps + 1e-9))
            frames: dict[str, CameraFrame] = {}
            if render:
                images = self.renderer.render(self.data)
                frames = {cam: CameraFrame(camera=cam, t=t, color=img, frame_number=frame_number,
                                           device_t=self.sim_time)
                          for cam, img in images.items()}
            return Observation(
                t=t, frames=frames,
                arms={arm: self.arm_state(arm, t) for arm in ARM_NAMES},
                grippers={arm: self.gripper_state(arm, t) for arm in ARM_NAMES},
                task=self.task.instruction if self.task is not None else "",
            )

    # ------------------------------------------------------------------ task

    def task_success(self) -> bool:
        if self.task is None:
            return False
        with self.lock:
            return bool(self.task.success(self.model, self.data))

    def task_progress(self) -> float:
        if self.task is None:
            return 0.0
        with self.lock:
            return float(np.clip(self.task.progress(self.model, self.data), 0.0, 1.0))

    # ------------------------------------------------------------------ helpers

    @staticmethod
    def _arm(arm: str) -> str:
        if arm not in ARM_NAMES:
            raise ValueError(f"arm {arm!r}: expected one of {list(ARM_NAMES)}")
        return arm

    def _check_pose(self, arm: str, pose: NDArray[np.float64]) -> NDArray[np.float64]:
        self._arm(arm)
        arr = np.asarray(pose, dtype=np.float64)
        if arr.shape != (POSE_DIM,) or not np.all(np.isfinite(arr)):
            raise ValueError(f"arm {arm}: target {pose!r}, expected 7 finite numbers [x, y, z, qx, qy, qz, qw]")
        if quat_norm_error(arr[3:7]) > UNIT_QUAT_TOL:
            raise ValueError(f"arm {arm}: target quaternion {arr[3:7]} is not unit length (qx, qy, qz, qw)")
        return np.concatenate([arr[:3], normalize_quat(arr[3:7])])
