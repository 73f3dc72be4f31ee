# ruff: noqa: N815, N816  (names follow the vendor API exactly: kPoseSize, CoM, has_FT_sensor, Enable ...)
"""Test double of the Flexiv RDK Python package `flexivrdk` v1.9.x (single-arm, PascalCase API).

Checked against the real 1.9.4.1 wheel by tests/test_flexiv_sdk_conformance.py (class, enum, method and
field names, parameter names and defaults from the pybind signatures, default lengths of the state
fields). Behaviour that matters to the driver follows the real module:

- pybind argument conversion: a fixed-size vector of the wrong length, or a value of the wrong type,
  raises `TypeError` ("incompatible function arguments"); C++ `std::invalid_argument` arrives as
  `ValueError`, `std::logic_error` and `std::runtime_error` as `RuntimeError`.
- serial numbers: spaces are dropped; exactly one "-" or `ValueError` ("Format of the provided robot
  serial number [..] is invalid"); an unknown model before the "-" is a `RuntimeError` ("Robot model
  [..] is not supported"); an unreachable robot blocks `Timing.unreachable_connect_s` (3.2 s measured
  with the real 1.9.4.1 and no robot) and raises `RuntimeError("... Failed to connect to [..] ...")`.
- blocking calls (`Robot()`, `Enable`, `SwitchMode`, `Stop`, `ClearFault`, `ZeroFTSensor`) take the
  time set in the controller's `Timing` and hold the GIL meanwhile, as the real extension does: the
  wait is a C `usleep` called through `ctypes.PyDLL`, which does not release the GIL.
- `RobotStates()` is zero-initialised like the real struct (joint vectors empty, poses all zero,
  timestamp (0, 0)); `states()` returns that until the first state packet (`Timing.first_state_s`).
- `Mode` has only the NRT modes: the RT modes do not exist in the Python API.
- the link can drop (`_Controller.drop_link()`: `connected()` turns False and the states freeze) or the
  stream can stall with the link up (`_Controller.freeze_states()`: the robot timestamp stops).

Simulation: one simulated controller per serial number, kept in `_CONTROLLERS` so a test can reach the
controller the driver connected to (`controller(serial)`). Motion is integrated lazily whenever the
state is read: the TCP moves towards the latest NRT Cartesian target with the velocity limits given in
`SendCartesianMotionForce`. A fault injected with `_Controller.inject_fault()` makes the robot
non-operational: motion commands raise `RuntimeError` ("not operational"), the TCP stops, and only
`ClearFault()` + `Enable()` bring it back. Every API call is appended to `_Controller.calls`.
Assumption (not documented by Flexiv): switching mode resets the contact-wrench limit and the force
axes, so a driver must set them after every switch to NRT_CARTESIAN_MOTION_FORCE.
"""

from __future__ import annotations

import ctypes
import enum
import math
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

kPoseSize = 7
kCartDoF = 6
kSerialJointDoF = 7

SUPPORTED_MODELS = ("Rizon4", "Rizon4s", "Rizon4R", "Rizon10", "Rizon10s", "Moonlight")
"""Models the real 1.9.4.1 accepts before trying to connect (Grav, Rizon, rizon4s are refused)."""

_LIBC = ctypes.PyDLL(None)  # PyDLL: the call keeps the GIL, like the SDK's blocking C++ calls


def _block(seconds: float) -> None:
    """Wait `seconds` without releasing the GIL (every other Python thread of the process stalls)."""
    end = time.monotonic() + seconds
    while (left := end - time.monotonic()) > 0:
        _LIBC.usleep(ctypes.c_uint(int(min(left, 0.5) * 1e6)))


def _incompatible(func: str, expected: str, value: Any) -> TypeError:
    return TypeError(f"{func}(): incompatible function arguments. The following argument types are "
                     f"supported:\n    1. {expected}\n\nInvoked with: {value!r}")


def _floats(func: str, arg: str, values: Any, size: int | None) -> list[float]:
    """pybind's conversion of `Sequence[float]` (`FixedSize(size)` when given): TypeError on mismatch."""
    expected = f"{arg}: Sequence[float]" + (f" FixedSize({size})" if size else "")
    try:
        vals = [float(v) for v in values]
    except (TypeError, ValueError):
        raise _incompatible(func, expected, values) from None
    if size is not None and len(vals) != size:
        raise _incompatible(func, expected, values)
    return vals


def _bools(func: str, arg: str, values: Any, size: int) -> list[bool]:
    expected = f"{arg}: Sequence[bool] FixedSize({size})"
    try:
        vals = list(values)
    except TypeError:
        raise _incompatible(func, expected, values) from None
    if len(vals) != size or not all(isinstance(v, bool) for v in vals):
        raise _incompatible(func, expected, values)
    return vals


def _float(func: str, arg: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _incompatible(func, f"{arg}: float", value)
    return float(value)


class Mode(enum.IntEnum):
    """Control modes of the Python API (values as in the real module; no RT modes)."""

    UNKNOWN = 0
    IDLE = 1
    NRT_JOINT_IMPEDANCE = 4
    NRT_JOINT_POSITION = 6
    NRT_PLAN_EXECUTION = 7
    NRT_PRIMITIVE_EXECUTION = 8
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
    DoF: int = kSerialJointDoF
    DoF_m: int = kSerialJointDoF
    DoF_e: int = 0
    K_x_nom: list[float] = field(default_factory=lambda: [10000.0] * 3 + [1500.0] * 3)
    K_q_nom: list[float] = field(default_factory=lambda: [8000.0] * 4 + [2000.0] * 3)
    q_min: list[float] = field(default_factory=lambda: [-2.79, -2.27, -2.97, -1.87, -2.97, -1.40, -2.97])
    q_max: list[float] = field(default_factory=lambda: [2.79, 2.27, 2.97, 2.86, 2.97, 4.54, 2.97])
    dq_max: list[float] = field(default_factory=lambda: [2.09, 2.09, 2.44, 2.44, 4.89, 4.89, 4.89])
    tau_max: list[float] = field(default_factory=lambda: [123.0, 123.0, 64.0, 64.0, 39.0, 39.0, 39.0])
    has_FT_sensor: bool = True


@dataclass
class RobotStates:
    """Robot states (data.hpp RobotStates), zero-initialised like the real struct: joint vectors are
    empty, poses are seven zeros ([x, y, z, qw, qx, qy, qz], so not even a unit quaternion)."""

    timestamp: tuple[int, int] = (0, 0)
    q: list[float] = field(default_factory=list)
    theta: list[float] = field(default_factory=list)
    dq: list[float] = field(default_factory=list)
    dtheta: list[float] = field(default_factory=list)
    tau: list[float] = field(default_factory=list)
    tau_dot: list[float] = field(default_factory=list)
    tau_ext: list[float] = field(default_factory=list)
    tau_interact: list[float] = field(default_factory=list)
    temperature: list[float] = field(default_factory=list)
    tcp_pose: list[float] = field(default_factory=lambda: [0.0] * kPoseSize)
    tcp_vel: list[float] = field(default_factory=lambda: [0.0] * kCartDoF)
    flange_pose: list[float] = field(default_factory=lambda: [0.0] * kPoseSize)
    ft_sensor_raw: list[float] = field(default_factory=lambda: [0.0] * kCartDoF)
    ext_wrench_in_tcp: list[float] = field(default_factory=lambda: [0.0] * kCartDoF)
    ext_wrench_in_world: list[float] = field(default_factory=lambda: [0.0] * kCartDoF)
    ext_wrench_in_tcp_raw: list[float] = field(default_factory=lambda: [0.0] * kCartDoF)
    ext_wrench_in_world_raw: list[float] = field(default_factory=lambda: [0.0] * kCartDoF)


class ToolParams:
    """Tool parameters (tool.hpp): mass kg, CoM [3] m, inertia [6], tcp_location [x,y,z,qw,qx,qy,qz];
    the setters convert like pybind (TypeError for a wrong length or type)."""

    _SIZES: ClassVar[dict[str, int]] = {"CoM": 3, "inertia": 6, "tcp_location": kPoseSize}

    def __init__(self) -> None:
        self._mass = 0.0
        self._vec = {key: [0.0] * size for key, size in self._SIZES.items()}

    @property
    def mass(self) -> float:
        return self._mass

    @mass.setter
    def mass(self, value: float) -> None:
        self._mass = _float("mass", "arg0", value)

    def _get(self, key: str) -> list[float]:
        return list(self._vec[key])

    def _set(self, key: str, values: Sequence[float]) -> None:
        self._vec[key] = _floats(key, "arg0", values, self._SIZES[key])

    CoM = property(lambda self: self._get("CoM"), lambda self, v: self._set("CoM", v))
    inertia = property(lambda self: self._get("inertia"), lambda self, v: self._set("inertia", v))
    tcp_location = property(lambda self: self._get("tcp_location"), lambda self, v: self._set("tcp_location", v))


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


@dataclass
class Timing:
    """How long the blocking calls of one controller take, in seconds; each holds the GIL meanwhile."""

    connect_s: float = 0.0
    unreachable_connect_s: float = 3.2
    first_state_s: float = 0.02
    """After `Robot()` returns, `states()` stays zero-initialised this long (first packet not in)."""
    enable_s: float = 0.0
    switch_mode_s: float = 0.0
    stop_s: float = 0.0
    clear_fault_s: float = 0.0
    zero_ft_s: float = 0.05
    request_s: float = 0.0
    """Other [Blocking] requests: SetMaxContactWrench, SetForceControlAxis, ExecutePlan."""


class _Controller:
    """Simulated robot controller behind one serial number."""

    HOME_POSE = (0.5, 0.0, 0.4, 0.0, 0.0, 1.0, 0.0)  # x y z qw qx qy qz: tool pointing down
    FT_BIAS = (1.8, -1.2, 3.5, 0.12, -0.08, 0.03)  # unzeroed sensor offset (N, Nm)

    def __init__(self, serial: str) -> None:
        self.serial = serial
        self.lock = threading.RLock()
        self.timing = Timing()
        self.calls: list[str] = []
        self.mode = Mode.IDLE
        self.enabled = False
        self.faulted = False
        self.critical_fault = False  # ClearFault() fails after its timeout
        self.estop_released = True
        self.reachable = True
        self.link_up = False
        self.frozen: RobotStates | None = None  # last states while the link is down or the stream stalls
        self.connected_at = 0.0
        self.connected_instances = 0
        self.plans = {"PLAN-Home": 0.05}
        self.plan_end = 0.0
        self.primitive: tuple[str, float, float] | None = None  # name, start, end
        self.pose = list(self.HOME_POSE)
        self.pose[0] -= 0.05
        self.target = list(self.pose)
        self.limits = (0.5, 1.0, 2.0, 5.0)
        self.vel = [0.0] * kCartDoF
        self.q0 = [0.0, -0.7, 0.0, 1.57, 0.0, 0.7, 0.0]
        self.last_update = time.monotonic()
        self.nrt_command_times: list[float] = []
        self.contact_wrench = [0.0] * kCartDoF  # test hook: wrench the environment applies at the TCP
        self.ft_offset = [0.0] * kCartDoF  # what ZeroFTSensor subtracts
        self.max_contact_wrench = [math.inf] * kCartDoF
        self.force_axes = [False] * kCartDoF
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

    def drop_link(self) -> None:
        """The Ethernet link goes down: `connected()` is False, states freeze, commands are lost."""
        with self.lock:
            self.frozen = self.snapshot()
            self.link_up = False

    def freeze_states(self) -> None:
        """The state stream stalls with the link still reported up (the robot timestamp stops)."""
        with self.lock:
            self.frozen = self.snapshot()

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

    def sensed_wrench(self) -> list[float]:
        """Contact wrench (regulated to the max contact wrench) plus the sensor bias, minus the zero."""
        contact = [max(-m, min(m, w)) for w, m in zip(self.contact_wrench, self.max_contact_wrench)]
        return [c + b - o for c, b, o in zip(contact, self.FT_BIAS, self.ft_offset)]

    def snapshot(self) -> RobotStates:
        if self.frozen is not None:
            return RobotStates(**vars(self.frozen))
        self._update()
        wall = time.time()
        pos_offset = [p - h for p, h in zip(self.pose[:3], self.HOME_POSE[:3])]
        # A crude linear joint map so joint states follow the TCP.
        q = [q0 + 0.5 * pos_offset[i % 3] for i, q0 in enumerate(self.q0)]
        dq = [0.5 * self.vel[i % 3] for i in range(kSerialJointDoF)]
        tau = [5.0 + 0.1 * i for i in range(kSerialJointDoF)]
        tool = self.tools[self.active_tool]
        wrench = self.sensed_wrench()
        return RobotStates(
            timestamp=(int(wall), int((wall % 1.0) * 1e9)),
            q=q,
            theta=list(q),
            dq=dq,
            dtheta=list(dq),
            tau=tau,
            tau_dot=[0.0] * kSerialJointDoF,
            tau_ext=[0.0] * kSerialJointDoF,
            tau_interact=[0.0] * kSerialJointDoF,
            temperature=[30.0] * kSerialJointDoF,
            tcp_pose=list(self.pose),
            tcp_vel=list(self.vel),
            flange_pose=[self.pose[0], self.pose[1], self.pose[2] + tool.tcp_location[2], *self.pose[3:]],
            ft_sensor_raw=[w - o for w, o in zip(wrench, [0.0] * kCartDoF)],
            ext_wrench_in_tcp=list(wrench),
            ext_wrench_in_world=list(wrench),
            ext_wrench_in_tcp_raw=list(wrench),
            ext_wrench_in_world_raw=list(wrench),
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


_CONNECT_FAILED = (
    "[flexiv::rdk::Robot] Failed to connect to [{sn}]. Please check that: a) Remote mode (Ethernet) is "
    "enabled on the target robot; b) Ethernet connection with the target robot is established; c) The "
    "specified serial number of the target robot is correct; d) No firewall is active or this RDK program "
    "is whitelisted; e) RDK version is compatible with the target robot's software version"
)
_CART_MODES = (Mode.NRT_CARTESIAN_MOTION_FORCE, Mode.NRT_SUPER_PRIMITIVE)


class Robot:
    """Main robot interface (robot.hpp); the constructor blocks until connected (holding the GIL)."""

    def __init__(
        self,
        robot_sn: str,
        network_interface_whitelist: Sequence[str] = (),
        verbose: bool = True,
        lite: bool = False,
    ) -> None:
        if not isinstance(robot_sn, str):
            raise _incompatible("__init__", "robot_sn: str", robot_sn)
        sn = robot_sn.replace(" ", "")
        if sn.count("-") != 1:
            raise ValueError(f"[flexiv::rdk::Robot] Format of the provided robot serial number [{robot_sn}] is invalid")
        model = sn.split("-")[0]
        if model not in SUPPORTED_MODELS:
            raise RuntimeError(f"[flexiv::rdk::Robot] Robot model [{model}] is not supported")
        c = controller(sn)
        if not c.reachable:
            _block(c.timing.unreachable_connect_s)
            raise RuntimeError(_CONNECT_FAILED.format(sn=sn))
        _block(c.timing.connect_s)
        self._c = c
        self._lite = lite
        with c.lock:
            if not lite:
                c.connected_instances += 1
            c.link_up = True
            c.frozen = None
            c.connected_at = time.monotonic()
            c.calls.append("Robot")

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
        return self._c.link_up

    def info(self) -> RobotInfo:
        return RobotInfo(serial_num=self._c.serial)

    def mode(self) -> Mode:
        return self._c.mode

    def states(self) -> RobotStates:
        with self._c.lock:
            if time.monotonic() - self._c.connected_at < self._c.timing.first_state_s:
                return RobotStates()
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
            return OperationalStatus.CRITICAL_FAULT if c.critical_fault else OperationalStatus.MINOR_FAULT
        if not c.estop_released:
            return OperationalStatus.ESTOP_NOT_RELEASED
        if not c.enabled:
            return OperationalStatus.NOT_ENABLED
        return OperationalStatus.READY

    def busy(self) -> bool:
        with self._c.lock:
            now = time.monotonic()
            plan = self._c.mode == Mode.NRT_PLAN_EXECUTION and now < self._c.plan_end
            primitive = self._c.primitive is not None and now < self._c.primitive[2]
            return plan or primitive

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
        _block(self._c.timing.enable_s)
        with self._c.lock:
            self._log("Enable")
            if not self._c.link_up:
                raise RuntimeError("[flexiv::rdk::Robot] Robot is not connected")
            if not self._c.estop_released:
                raise RuntimeError("E-stop is not released")
            if not self._c.faulted:
                self._c._update()
                self._c.enabled = True
                self._c.last_update = time.monotonic()

    def SwitchMode(self, mode: Mode) -> None:
        if not isinstance(mode, Mode):
            raise _incompatible("SwitchMode", "mode: flexivrdk.Mode", mode)
        with self._c.lock:
            self._log(f"SwitchMode:{mode.name}")
            if mode == Mode.UNKNOWN:
                raise ValueError(f"Invalid mode: {mode}")
            self._require_operational()
        _block(self._c.timing.switch_mode_s)
        with self._c.lock:
            self._c._update()
            self._c.mode = mode
            self._c.target = list(self._c.pose)
            self._c.max_contact_wrench = [math.inf] * kCartDoF
            self._c.force_axes = [False] * kCartDoF

    def Stop(self) -> None:
        _block(self._c.timing.stop_s)
        with self._c.lock:
            self._log("Stop")
            self._c._update()
            self._c.target = list(self._c.pose)
            self._c.vel = [0.0] * kCartDoF
            self._c.mode = Mode.IDLE

    def ClearFault(self, timeout_sec: int = 30) -> bool:
        if isinstance(timeout_sec, bool) or not isinstance(timeout_sec, int):
            raise _incompatible("ClearFault", "timeout_sec: int", timeout_sec)
        self._log("ClearFault")
        if self._c.critical_fault:
            _block(timeout_sec)
            return False
        _block(self._c.timing.clear_fault_s)
        with self._c.lock:
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

    def ExecutePrimitive(self, primitive_name: str, input_params: Mapping[str, Any],
                         block_until_started: bool = True) -> None:
        """Only "ZeroFTSensor" is simulated: after `Timing.zero_ft_s` the sensed wrench reads zero."""
        with self._c.lock:
            self._log(f"ExecutePrimitive:{primitive_name}")
            self._require_mode(Mode.NRT_PRIMITIVE_EXECUTION)
            self._require_operational()
            if primitive_name != "ZeroFTSensor":
                raise RuntimeError(f"Primitive [{primitive_name}] is not simulated by the test double")
            now = time.monotonic()
            self._c.primitive = (primitive_name, now, now + self._c.timing.zero_ft_s)

    def primitive_states(self) -> dict[str, Any]:
        with self._c.lock:
            c = self._c
            if c.primitive is None:
                return {}
            name, start, end = c.primitive
            now = time.monotonic()
            done = now >= end
            if done and name == "ZeroFTSensor" and c.ft_offset != list(c.FT_BIAS):
                # The zero is what the sensor reads now: bias plus whatever contact there is.
                c.ft_offset = [o + w for o, w in zip(c.ft_offset, c.sensed_wrench())]
            return {"terminated": int(done), "timePeriod": min(now, end) - start}

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
        func = "SendCartesianMotionForce"
        target = _floats(func, "pose", pose, kPoseSize)
        _floats(func, "wrench", wrench, kCartDoF)
        _floats(func, "velocity", velocity, kCartDoF)
        limits = tuple(_float(func, name, v) for name, v in (
            ("max_linear_vel", max_linear_vel), ("max_angular_vel", max_angular_vel),
            ("max_linear_acc", max_linear_acc), ("max_angular_acc", max_angular_acc)))
        if any(not v > 0.0 for v in limits):
            raise ValueError("The last 4 input parameters must be positive")
        with self._c.lock:
            self._require_mode(*_CART_MODES)
            self._require_operational()
            if not self._c.link_up:
                return  # a non-blocking send: lost on a dead link without an error
            self._c._update()
            self._c.target = target[:3] + _quat_norm(target[3:])
            self._c.limits = limits  # type: ignore[assignment]
            self._c.nrt_command_times.append(time.monotonic())

    def SetForceControlAxis(self, enabled_axes: Sequence[bool],
                            max_linear_vel: Sequence[float] = (1.0, 1.0, 1.0)) -> None:
        axes = _bools("SetForceControlAxis", "enabled_axes", enabled_axes, kCartDoF)
        vel = _floats("SetForceControlAxis", "max_linear_vel", max_linear_vel, 3)
        if any(not 0.005 <= v <= 2.0 for v in vel):
            raise ValueError("[max_linear_vel] contains value outside the valid range [0.005, 2.0]")
        with self._c.lock:
            self._require_mode(*_CART_MODES)
            self._log("SetForceControlAxis")
        _block(self._c.timing.request_s)
        self._c.force_axes = axes

    def SetMaxContactWrench(self, max_wrench: Sequence[float]) -> None:
        wrench = _floats("SetMaxContactWrench", "max_wrench", max_wrench, kCartDoF)
        if any(v < 0.0 for v in wrench):
            raise ValueError("[max_wrench] contains negative value")
        with self._c.lock:
            self._require_mode(*_CART_MODES)
            self._log("SetMaxContactWrench")
        _block(self._c.timing.request_s)
        self._c.max_contact_wrench = wrench


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
        if not isinstance(params, ToolParams):
            raise _incompatible("Add", "params: flexivrdk.ToolParams", params)
        copy = ToolParams()
        copy.mass, copy.CoM, copy.inertia, copy.tcp_location = (
            params.mass, params.CoM, params.inertia, params.tcp_location)
        return copy

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
