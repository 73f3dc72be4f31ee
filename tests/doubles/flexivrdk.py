# ruff: noqa: N815, N816  (names follow the vendor API exactly: kPoseSize, CoM, has_FT_sensor, gACT ...)
"""Test double of the Flexiv RDK Python package `flexivrdk` v1.9.x (single-arm, PascalCase API).

Names, argument order and defaults follow the v1.9.1 headers (include/flexiv/rdk/robot.hpp, tool.hpp,
gripper.hpp, data.hpp, mode.hpp) as exposed through pybind: C++ `std::invalid_argument` arrives in
Python as `ValueError`, `std::logic_error` and `std::runtime_error` as `RuntimeError`.

Simulation: one simulated controller per serial number, kept in `_CONTROLLERS` so a test can reach the
controller the driver connected to (`controller(serial)`). Motion is integrated lazily whenever the
state is read: the TCP moves towards the latest NRT Cartesian target with the velocity limits given in
`SendCartesianMotionForce` (linear speed for position, angular speed for orientation). A fault injected
with `_Controller.inject_fault()` makes the robot non-operational: motion commands raise
`RuntimeError` ("not operational"), the TCP stops, and only `ClearFault()` + `Enable()` bring it back.
Every API call is appended to `_Controller.calls` so tests can check call order.
"""

from __future__ import annotations

import enum
import math
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

kPoseSize = 7
kCartDoF = 6
kSerialJointDoF = 7

_SERIAL_PREFIXES = ("Rizon", "Moonlight", "Grav")


class Mode(enum.IntEnum):
    """Control modes (mode.hpp)."""

    UNKNOWN = 0
    IDLE = 1
    RT_JOINT_TORQUE = 2
    RT_JOINT_IMPEDANCE = 3
    NRT_JOINT_IMPEDANCE = 4
    RT_JOINT_POSITION = 5
    NRT_JOINT_POSITION = 6
    NRT_PLAN_EXECUTION = 7
    NRT_PRIMITIVE_EXECUTION = 8
    RT_CARTESIAN_MOTION_FORCE = 9
    NRT_CARTESIAN_MOTION_FORCE = 10
    NRT_SUPER_PRIMITIVE = 11


class OperationalStatus(enum.IntEnum):
    """Operational status (data.hpp)."""

    UNKNOWN = 0
    READY = 1
    BOOTING = 2
    ESTOP_NOT_RELEASED = 3
    NOT_ENABLED = 4
    RELEASING_BRAKE = 5
    MINOR_FAULT = 6
    CRITICAL_FAULT = 7
    IN_REDUCED_STATE = 8
    IN_RECOVERY_STATE = 9
    IN_MANUAL_MODE = 10
    IN_AUTO_MODE = 11


class CoordType(enum.IntEnum):
    """Reference frames for force control (data.hpp)."""

    WORLD = 0
    TCP = 1


@dataclass
class RobotInfo:
    """General robot information (data.hpp RobotInfo)."""

    serial_num: str = ""
    software_ver: str = "v3.8-sim"
    model_name: str = "Rizon4s"
    license_type: str = "RDK"
    K_x_nom: list[float] = field(default_factory=lambda: [10000.0] * 3 + [1500.0] * 3)
    K_q_nom: list[float] = field(default_factory=lambda: [8000.0] * 4 + [2000.0] * 3)
    q_min: list[float] = field(default_factory=lambda: [-2.79, -2.27, -2.97, -1.87, -2.97, -1.40, -2.97])
    q_max: list[float] = field(default_factory=lambda: [2.79, 2.27, 2.97, 2.86, 2.97, 4.54, 2.97])
    dq_max: list[float] = field(default_factory=lambda: [2.09, 2.09, 2.44, 2.44, 4.89, 4.89, 4.89])
    tau_max: list[float] = field(default_factory=lambda: [123.0, 123.0, 64.0, 64.0, 39.0, 39.0, 39.0])
    has_FT_sensor: bool = True


@dataclass
class RobotStates:
    """Robot states (data.hpp RobotStates); poses are [x, y, z, qw, qx, qy, qz]."""

    timestamp: tuple[int, int] = (0, 0)
    q: list[float] = field(default_factory=lambda: [0.0] * kSerialJointDoF)
    theta: list[float] = field(default_factory=lambda: [0.0] * kSerialJointDoF)
    dq: list[float] = field(default_factory=lambda: [0.0] * kSerialJointDoF)
    dtheta: list[float] = field(default_factory=lambda: [0.0] * kSerialJointDoF)
    tau: list[float] = field(default_factory=lambda: [0.0] * kSerialJointDoF)
    tau_des: list[float] = field(default_factory=lambda: [0.0] * kSerialJointDoF)
    tau_dot: list[float] = field(default_factory=lambda: [0.0] * kSerialJointDoF)
    tau_ext: list[float] = field(default_factory=lambda: [0.0] * kSerialJointDoF)
    tau_interact: list[float] = field(default_factory=lambda: [0.0] * kSerialJointDoF)
    temperature: list[float] = field(default_factory=lambda: [30.0] * kSerialJointDoF)
    tcp_pose: list[float] = field(default_factory=lambda: [0.0] * 3 + [1.0, 0.0, 0.0, 0.0])
    tcp_vel: list[float] = field(default_factory=lambda: [0.0] * kCartDoF)
    flange_pose: list[float] = field(default_factory=lambda: [0.0] * 3 + [1.0, 0.0, 0.0, 0.0])
    ft_sensor_raw: list[float] = field(default_factory=lambda: [0.0] * kCartDoF)
    ext_wrench_in_tcp: list[float] = field(default_factory=lambda: [0.0] * kCartDoF)
    ext_wrench_in_world: list[float] = field(default_factory=lambda: [0.0] * kCartDoF)
    ext_wrench_in_tcp_raw: list[float] = field(default_factory=lambda: [0.0] * kCartDoF)
    ext_wrench_in_world_raw: list[float] = field(default_factory=lambda: [0.0] * kCartDoF)


@dataclass
class ToolParams:
    """Tool parameters (tool.hpp): mass kg, CoM [3] m, inertia [6], tcp_location [x,y,z,qw,qx,qy,qz]."""

    mass: float = 0.0
    CoM: list[float] = field(default_factory=lambda: [0.0, 0.0, 0.0])
    inertia: list[float] = field(default_factory=lambda: [0.0] * 6)
    tcp_location: list[float] = field(default_factory=lambda: [0.0] * kPoseSize)


@dataclass
class GripperParams:
    """Gripper parameters (gripper.hpp)."""

    name: str = ""
    min_width: float = 0.0
    max_width: float = 0.0
    min_vel: float = 0.0
    max_vel: float = 0.0
    min_force: float = 0.0
    max_force: float = 0.0


@dataclass
class GripperStates:
    """Gripper states (gripper.hpp): width m, force N (positive opening), is_moving."""

    width: float = 0.0
    force: float = 0.0
    is_moving: bool = False


# ------------------------------------------------------------------------------------------------
# Simulated controller


def _quat_mul(a: Sequence[float], b: Sequence[float]) -> list[float]:
    aw, ax, ay, az = a
    bw, bx, by, bz = b
    return [
        aw * bw - ax * bx - ay * by - az * bz,
        aw * bx + ax * bw + ay * bz - az * by,
        aw * by - ax * bz + ay * bw + az * bx,
        aw * bz + ax * by - ay * bx + az * bw,
    ]


def _quat_norm(q: Sequence[float]) -> list[float]:
    n = math.sqrt(sum(v * v for v in q))
    return [v / n for v in q]


def _quat_step(q0: Sequence[float], q1: Sequence[float], max_angle: float) -> tuple[list[float], float]:
    """Rotate wxyz quaternion q0 towards q1 by at most max_angle; returns (q, remaining angle)."""
    q0 = _quat_norm(q0)
    q1 = _quat_norm(q1)
    dot = sum(a * b for a, b in zip(q0, q1))
    if dot < 0.0:
        q1 = [-v for v in q1]
        dot = -dot
    angle = 2.0 * math.acos(min(1.0, dot))
    if angle <= max_angle or angle < 1e-12:
        return q1, 0.0
    # Relative rotation q0^-1 * q1, scaled down to max_angle about the same axis.
    inv0 = [q0[0], -q0[1], -q0[2], -q0[3]]
    rel = _quat_mul(inv0, q1)
    s = math.sqrt(max(1e-24, 1.0 - rel[0] * rel[0]))
    axis = [rel[1] / s, rel[2] / s, rel[3] / s]
    half = max_angle / 2.0
    step = [math.cos(half), *(a * math.sin(half) for a in axis)]
    return _quat_norm(_quat_mul(q0, step)), angle - max_angle


class _Controller:
    """Simulated robot controller behind one serial number."""

    HOME_POSE = (0.5, 0.0, 0.4, 0.0, 0.0, 1.0, 0.0)  # x y z qw qx qy qz: tool pointing down

    def __init__(self, serial: str) -> None:
        self.serial = serial
        self.lock = threading.RLock()
        self.calls: list[str] = []
        self.mode = Mode.IDLE
        self.enabled = False
        self.faulted = False
        self.estop_released = True
        self.connected_instances = 0
        self.plans = {"PLAN-Home": 0.05}
        self.plan_end = 0.0
        self.pose = list(self.HOME_POSE)
        self.pose[0] -= 0.05
        self.target = list(self.pose)
        self.limits = (0.5, 1.0, 2.0, 5.0)
        self.vel = [0.0] * kCartDoF
        self.q0 = [0.0, -0.7, 0.0, 1.57, 0.0, 0.7, 0.0]
        self.last_update = time.monotonic()
        self.nrt_command_times: list[float] = []
        self.tools: dict[str, ToolParams] = {"Flange": ToolParams()}
        self.active_tool = "Flange"
        self.grippers = {"Flexiv-GN01": GripperParams("Flexiv-GN01", 0.0, 0.1, 0.01, 0.2, 10.0, 80.0)}
        self.gripper_enabled = ""
        self.gripper_width = 0.1
        self.gripper_target = 0.1
        self.gripper_vel = 0.1
        self.gripper_last = time.monotonic()
        self.gripper_object_width: float | None = None  # test hook: an object between the fingers

    # -- test hooks --------------------------------------------------------------------------------
    def inject_fault(self) -> None:
        """Put the robot into a (minor) fault: it stops and refuses motion until cleared and enabled."""
        with self.lock:
            self._update()
            self.faulted = True
            self.enabled = False
            self.target = list(self.pose)
            self.vel = [0.0] * kCartDoF

    # -- simulation --------------------------------------------------------------------------------
    def operational(self) -> bool:
        return self.enabled and not self.faulted and self.estop_released

    def _update(self) -> None:
        now = time.monotonic()
        dt = now - self.last_update
        self.last_update = now
        if dt <= 0.0:
            return
        if self.faulted or not self.enabled:
            self.vel = [0.0] * kCartDoF
            return
        lin_v, ang_v = self.limits[0], self.limits[1]
        delta = [t - p for t, p in zip(self.target[:3], self.pose[:3])]
        dist = math.sqrt(sum(d * d for d in delta))
        step = min(dist, lin_v * dt)
        if dist > 1e-12:
            move = [d / dist * step for d in delta]
            self.pose[:3] = [p + m for p, m in zip(self.pose[:3], move)]
            self.vel[:3] = [m / dt for m in move]
        else:
            self.vel[:3] = [0.0, 0.0, 0.0]
        quat, _ = _quat_step(self.pose[3:], self.target[3:], ang_v * dt)
        self.pose[3:] = quat
        self.vel[3:] = [0.0, 0.0, 0.0]

    def snapshot(self) -> RobotStates:
        self._update()
        wall = time.time()
        pos_offset = [p - h for p, h in zip(self.pose[:3], self.HOME_POSE[:3])]
        # A crude linear joint map so joint states follow the TCP.
        q = [q0 + 0.5 * pos_offset[i % 3] for i, q0 in enumerate(self.q0)]
        dq = [0.5 * self.vel[i % 3] for i in range(kSerialJointDoF)]
        tau = [5.0 + 0.1 * i for i in range(kSerialJointDoF)]
        tool = self.tools[self.active_tool]
        return RobotStates(
            timestamp=(int(wall), int((wall % 1.0) * 1e9)),
            q=q,
            theta=list(q),
            dq=dq,
            dtheta=list(dq),
            tau=tau,
            tau_des=list(tau),
            tau_ext=[0.0] * kSerialJointDoF,
            tcp_pose=list(self.pose),
            tcp_vel=list(self.vel),
            flange_pose=[self.pose[0], self.pose[1], self.pose[2] + tool.tcp_location[2], *self.pose[3:]],
            ext_wrench_in_world=[0.0, 0.0, -9.81 * 0.0, 0.0, 0.0, 0.0],
        )


_CONTROLLERS: dict[str, _Controller] = {}
_CONTROLLERS_LOCK = threading.Lock()


def controller(serial: str) -> _Controller:
    """The simulated controller for a serial (created on first use); test-only helper."""
    with _CONTROLLERS_LOCK:
        if serial not in _CONTROLLERS:
            _CONTROLLERS[serial] = _Controller(serial)
        return _CONTROLLERS[serial]


def reset() -> None:
    """Forget every simulated controller; test-only helper."""
    with _CONTROLLERS_LOCK:
        _CONTROLLERS.clear()


def _check_size(name: str, values: Sequence[float], size: int) -> list[float]:
    vals = [float(v) for v in values]
    if len(vals) != size:
        raise ValueError(f"[{name}] has size {len(vals)}, expected {size}")
    return vals


class Robot:
    """Main robot interface (robot.hpp); constructor blocks until connected."""

    def __init__(
        self,
        robot_sn: str,
        network_interface_whitelist: Sequence[str] = (),
        verbose: bool = True,
        lite: bool = False,
    ) -> None:
        sn = robot_sn.replace(" ", "")
        if "-" not in sn or not sn.startswith(_SERIAL_PREFIXES):
            raise ValueError(f"Invalid robot serial number format: [{robot_sn}]")
        self._c = controller(sn)
        self._lite = lite
        with self._c.lock:
            if not lite:
                self._c.connected_instances += 1
            self._c.calls.append("Robot")

    def _log(self, name: str) -> None:
        self._c.calls.append(name)

    def _require_mode(self, *modes: Mode) -> None:
        if self._c.mode not in modes:
            raise RuntimeError(f"Robot is not in the correct control mode (current: {self._c.mode.name})")

    def _require_operational(self) -> None:
        if not self._c.operational():
            raise RuntimeError("Robot is not operational")

    # -- non-blocking status -----------------------------------------------------------------------
    def lite(self) -> bool:
        return self._lite

    def connected(self) -> bool:
        return True

    def info(self) -> RobotInfo:
        return RobotInfo(serial_num=self._c.serial)

    def mode(self) -> Mode:
        return self._c.mode

    def states(self) -> RobotStates:
        with self._c.lock:
            return self._c.snapshot()

    def stopped(self) -> bool:
        with self._c.lock:
            self._c._update()
            return all(abs(v) < 1e-9 for v in self._c.vel)

    def operational(self) -> bool:
        return self._c.operational()

    def operational_status(self) -> OperationalStatus:
        c = self._c
        if c.faulted:
            return OperationalStatus.MINOR_FAULT
        if not c.estop_released:
            return OperationalStatus.ESTOP_NOT_RELEASED
        if not c.enabled:
            return OperationalStatus.NOT_ENABLED
        return OperationalStatus.READY

    def busy(self) -> bool:
        with self._c.lock:
            return self._c.mode == Mode.NRT_PLAN_EXECUTION and time.monotonic() < self._c.plan_end

    def fault(self) -> bool:
        return self._c.faulted

    def reduced(self) -> bool:
        return False

    def recovery(self) -> bool:
        return False

    def estop_released(self) -> bool:
        return self._c.estop_released

    def enabling_button_pressed(self) -> bool:
        return False

    def reached_timeliness_failure_limit(self) -> bool:
        return False

    # -- lifecycle ---------------------------------------------------------------------------------
    def Enable(self) -> None:
        with self._c.lock:
            self._log("Enable")
            if not self._c.estop_released:
                raise RuntimeError("E-stop is not released")
            if not self._c.faulted:
                self._c._update()
                self._c.enabled = True
                self._c.last_update = time.monotonic()

    def SwitchMode(self, mode: Mode) -> None:
        with self._c.lock:
            self._log(f"SwitchMode:{Mode(mode).name}")
            if not isinstance(mode, Mode) or mode == Mode.UNKNOWN:
                raise ValueError(f"Invalid mode: {mode}")
            self._require_operational()
            self._c._update()
            self._c.mode = mode
            self._c.target = list(self._c.pose)

    def Stop(self) -> None:
        with self._c.lock:
            self._log("Stop")
            self._c._update()
            self._c.target = list(self._c.pose)
            self._c.vel = [0.0] * kCartDoF
            self._c.mode = Mode.IDLE

    def ClearFault(self, timeout_sec: int = 30) -> bool:
        with self._c.lock:
            self._log("ClearFault")
            self._c.faulted = False
            return True

    def ExecutePlan(self, name: str, continue_exec: bool = False, block_until_started: bool = True) -> None:
        with self._c.lock:
            self._log(f"ExecutePlan:{name}")
            self._require_mode(Mode.NRT_PLAN_EXECUTION)
            self._require_operational()
            if name not in self._c.plans:
                raise RuntimeError(f"Plan [{name}] does not exist")
            self._c.plan_end = time.monotonic() + self._c.plans[name]
            self._c.pose = list(self._c.HOME_POSE)
            self._c.target = list(self._c.HOME_POSE)

    def plan_list(self) -> list[str]:
        return list(self._c.plans)

    # -- NRT Cartesian motion-force ----------------------------------------------------------------
    def SendCartesianMotionForce(
        self,
        pose: Sequence[float],
        wrench: Sequence[float] = (0.0,) * kCartDoF,
        velocity: Sequence[float] = (0.0,) * kCartDoF,
        max_linear_vel: float = 0.5,
        max_angular_vel: float = 1.0,
        max_linear_acc: float = 2.0,
        max_angular_acc: float = 5.0,
    ) -> None:
        target = _check_size("pose", pose, kPoseSize)
        _check_size("wrench", wrench, kCartDoF)
        _check_size("velocity", velocity, kCartDoF)
        limits = (float(max_linear_vel), float(max_angular_vel), float(max_linear_acc), float(max_angular_acc))
        if any(not v > 0.0 for v in limits):
            raise ValueError("The last 4 input parameters must be positive")
        with self._c.lock:
            self._require_mode(Mode.NRT_CARTESIAN_MOTION_FORCE, Mode.NRT_SUPER_PRIMITIVE)
            self._require_operational()
            self._c._update()
            self._c.target = target[:3] + _quat_norm(target[3:])
            self._c.limits = limits
            self._c.nrt_command_times.append(time.monotonic())

    def SetForceControlAxis(
        self, enabled_axes: Sequence[bool], max_linear_vel: Sequence[float] = (1.0, 1.0, 1.0)
    ) -> None:
        self._require_mode(Mode.RT_CARTESIAN_MOTION_FORCE, Mode.NRT_CARTESIAN_MOTION_FORCE,
                           Mode.NRT_SUPER_PRIMITIVE)
        if len(enabled_axes) != kCartDoF:
            raise ValueError("[enabled_axes] must have size 6")
        self._log("SetForceControlAxis")


class Tool:
    """Robot tool manager (tool.hpp); changes require IDLE mode."""

    def __init__(self, robot: Robot) -> None:
        self._c = robot._c

    def _require_idle(self) -> None:
        if self._c.mode != Mode.IDLE:
            raise RuntimeError("Robot is not in the correct control mode (IDLE required)")

    def list(self) -> list[str]:
        return list(self._c.tools)

    def name(self) -> str:
        return self._c.active_tool

    def exist(self, name: str) -> bool:
        return name in self._c.tools

    def params(self, name: str | None = None) -> ToolParams:
        key = self._c.active_tool if name is None else name
        if key not in self._c.tools:
            raise ValueError(f"Tool [{name}] does not exist")
        return self._c.tools[key]

    @staticmethod
    def _validated(params: ToolParams) -> ToolParams:
        return ToolParams(
            mass=float(params.mass),
            CoM=_check_size("CoM", params.CoM, 3),
            inertia=_check_size("inertia", params.inertia, 6),
            tcp_location=_check_size("tcp_location", params.tcp_location, kPoseSize),
        )

    def Add(self, name: str, params: ToolParams) -> None:
        with self._c.lock:
            self._c.calls.append(f"Tool.Add:{name}")
            if name in self._c.tools:
                raise ValueError(f"Tool [{name}] already exists")
            self._require_idle()
            self._c.tools[name] = self._validated(params)

    def Update(self, name: str, params: ToolParams) -> None:
        with self._c.lock:
            self._c.calls.append(f"Tool.Update:{name}")
            if name not in self._c.tools:
                raise ValueError(f"Tool [{name}] does not exist")
            self._require_idle()
            self._c.tools[name] = self._validated(params)

    def Switch(self, name: str) -> None:
        with self._c.lock:
            self._c.calls.append(f"Tool.Switch:{name}")
            if name not in self._c.tools:
                raise ValueError(f"Tool [{name}] does not exist")
            self._require_idle()
            self._c.active_tool = name

    def Remove(self, name: str) -> None:
        with self._c.lock:
            if name not in self._c.tools:
                raise ValueError(f"Tool [{name}] does not exist")
            self._require_idle()
            if name == self._c.active_tool:
                raise RuntimeError("Cannot remove the tool currently in use")
            del self._c.tools[name]


class Gripper:
    """Gripper device control (gripper.hpp); fingers move at the commanded velocity."""

    def __init__(self, robot: Robot) -> None:
        self._c = robot._c

    def _require_enabled(self) -> None:
        if not self._c.gripper_enabled:
            raise RuntimeError("No gripper is enabled")

    def _update(self) -> None:
        c = self._c
        now = time.monotonic()
        dt, c.gripper_last = now - c.gripper_last, now
        target = c.gripper_target
        if c.gripper_object_width is not None and c.gripper_width >= c.gripper_object_width > target:
            target = c.gripper_object_width  # the object blocks the fingers
        delta = target - c.gripper_width
        c.gripper_width += math.copysign(min(abs(delta), c.gripper_vel * dt), delta)

    def Enable(self, name: str) -> None:
        with self._c.lock:
            self._c.calls.append(f"Gripper.Enable:{name}")
            if name not in self._c.grippers:
                raise ValueError(f"Gripper [{name}] does not exist")
            if self._c.gripper_enabled:
                raise RuntimeError("A gripper is already enabled")
            self._c.gripper_enabled = name

    def Disable(self) -> None:
        with self._c.lock:
            self._require_enabled()
            self._c.gripper_enabled = ""

    def Init(self) -> None:
        with self._c.lock:
            self._c.calls.append("Gripper.Init")
            self._require_enabled()

    def Grasp(self, force: float) -> None:
        p = self.params()
        if not p.min_force <= force <= p.max_force:
            raise ValueError(f"[force] {force} outside [{p.min_force}, {p.max_force}]")
        self.Move(p.min_width, p.max_vel, force)

    def Move(self, width: float, velocity: float, force_limit: float) -> None:
        with self._c.lock:
            self._require_enabled()
            p = self.params()
            if not (p.min_width <= width <= p.max_width and p.min_vel <= velocity <= p.max_vel
                    and p.min_force <= force_limit <= p.max_force):
                raise ValueError(f"Move({width}, {velocity}, {force_limit}): input outside valid range")
            self._c.calls.append("Gripper.Move")
            self._update()
            self._c.gripper_target = float(width)
            self._c.gripper_vel = float(velocity)

    def Stop(self) -> None:
        with self._c.lock:
            self._require_enabled()
            self._c.calls.append("Gripper.Stop")
            self._update()
            self._c.gripper_target = self._c.gripper_width

    def params(self) -> GripperParams:
        return self._c.grippers.get(self._c.gripper_enabled, GripperParams())

    def states(self) -> GripperStates:
        with self._c.lock:
            if not self._c.gripper_enabled:
                return GripperStates()
            self._update()
            c = self._c
            blocked = c.gripper_object_width is not None and abs(c.gripper_width - c.gripper_object_width) < 1e-9 \
                and c.gripper_target < c.gripper_width
            moving = abs(c.gripper_target - c.gripper_width) > 1e-9 and not blocked
            return GripperStates(width=c.gripper_width, force=-10.0 if blocked else 0.0, is_moving=moving)
