"""Flexiv Rizon arm driver over the Flexiv RDK Python API v1.x (`flexivrdk`, PascalCase, serial based).

Implements `rig.drivers.base.Arm`:
- connect: `Robot(serial)`; clear a pending fault; `Enable()`; wait for `operational()`; register and
  switch the tool (IDLE mode); optional home plan (NRT_PLAN_EXECUTION, wait while `busy()`); then
  NRT_CARTESIAN_MOTION_FORCE for streaming.
- a background thread reads `states()` at `state_hz` (>= 100 Hz) into an `ArmState` stamped with host
  monotonic time minus `state_latency_s`; the measured rate is in `stats().rate_hz`.
- `send_pose` forwards one target to `SendCartesianMotionForce` with the configured velocity and
  acceleration limits (pure motion, zero wrench). Commands faster than `command_hz` (<= 100 Hz) are
  refused with `CommandRateError`; nothing is sent while the robot is faulted, and after a fault or a
  `stop()` nothing is sent until `recover()`.

This module is the only place that converts between the stack's scalar-last quaternion order
`[x, y, z, qx, qy, qz, qw]` and Flexiv's `[x, y, z, qw, qx, qy, qz]` (`pose_to_flexiv`,
`pose_from_flexiv`). The SDK is imported lazily inside `connect()`.
"""

from __future__ import annotations

import importlib
import logging
import threading
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from rig import hardware_limits as hw
from rig.config import ConfigError, load_yaml, node_params
from rig.conventions import ARM_NAMES, ARM_STATE_MIN_HZ, JOINTS_PER_ARM, POSE_DIM
from rig.drivers.base import Arm, DeviceError, DeviceStats
from rig.params import get_float, get_floats, get_int, get_mapping, get_str, reject_unknown
from rig.rotations import UNIT_QUAT_TOL, normalize_quat, quat_norm_error
from rig.schema import ArmState

log = logging.getLogger(__name__)

FLEXIV_MAX_COMMAND_HZ = 100.0
"""Upper bound of the NRT command rate the Python examples of RDK v1.x accept (1-100 Hz)."""

_ARM_KEYS = {
    "type", "serial", "command_hz", "state_hz", "state_latency_s", "max_linear_vel", "max_angular_vel",
    "max_linear_acc", "max_angular_acc", "home_plan", "tool", "enable_timeout_s", "home_timeout_s",
    "clear_fault_timeout_s", "command_jitter_tolerance",
}
_TOOL_KEYS = {"name", "mass", "com", "inertia", "tcp"}


class CommandRateError(DeviceError):
    """A command arrived earlier than the configured command rate allows; it was not sent."""


# ------------------------------------------------------------------------------------------------
# Pose order conversion (the only place in the stack)


def pose_to_flexiv(pose: ArrayLike) -> list[float]:
    """[x, y, z, qx, qy, qz, qw] -> Flexiv [x, y, z, qw, qx, qy, qz] (unit quaternion, qw >= 0)."""
    p = np.asarray(pose, dtype=np.float64)
    q = normalize_quat(p[3:7])
    return [float(p[0]), float(p[1]), float(p[2]), float(q[3]), float(q[0]), float(q[1]), float(q[2])]


def pose_from_flexiv(flexiv_pose: ArrayLike) -> NDArray[np.float64]:
    """Flexiv [x, y, z, qw, qx, qy, qz] -> [x, y, z, qx, qy, qz, qw] (unit quaternion, qw >= 0)."""
    f = np.asarray(flexiv_pose, dtype=np.float64)
    quat = normalize_quat(np.array([f[4], f[5], f[6], f[3]]))
    return np.concatenate([f[:3], quat])


# ------------------------------------------------------------------------------------------------
# Configuration


@dataclass(frozen=True)
class FlexivToolConfig:
    """Tool mounted on the flange: mass kg, CoM m (flange frame), inertia [Ixx, Iyy, Izz, Ixy, Ixz,
    Iyz] kg m^2 at the CoM, TCP pose in the flange frame [x, y, z, qx, qy, qz, qw].
    """

    name: str
    mass: float
    com: tuple[float, float, float]
    inertia: tuple[float, ...] = (0.0,) * 6
    tcp: tuple[float, ...] = (0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], where: str) -> FlexivToolConfig:
        reject_unknown(d, _TOOL_KEYS, where)
        tcp = get_floats(d, "tcp", where, POSE_DIM, default=[0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0])
        if float(quat_norm_error(tcp[3:7])) > UNIT_QUAT_TOL:
            raise ConfigError(f"{where}.tcp: quaternion {tcp[3:7]} is not unit length (qx, qy, qz, qw)")
        name = get_str(d, "name", where)
        if not name or name == "Flange":
            raise ConfigError(f"{where}.name: {name!r}, expected a tool name other than '' and 'Flange'")
        return cls(
            name=name,
            mass=get_float(d, "mass", where, low=0.0, high=10.0),
            com=get_floats(d, "com", where, 3),  # type: ignore[arg-type]
            inertia=get_floats(d, "inertia", where, 6, default=[0.0] * 6),
            tcp=tcp,
        )


@dataclass(frozen=True)
class FlexivArmConfig:
    """Settings of one Flexiv arm, read from the `arms:` section of config/rig.yaml."""

    name: str
    serial: str
    command_hz: float = 100.0
    state_hz: float = 200.0
    state_latency_s: float = 0.001
    max_linear_vel: float = 0.25
    max_angular_vel: float = 1.0
    max_linear_acc: float = 1.0
    max_angular_acc: float = 3.0
    home_plan: str = ""
    tool: FlexivToolConfig | None = None
    enable_timeout_s: float = 10.0
    home_timeout_s: float = 60.0
    clear_fault_timeout_s: int = 30
    command_jitter_tolerance: float = 1.0
    where: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        where = self.where or f"arms.{self.name}"
        if self.name not in ARM_NAMES:
            raise ConfigError(f"{where}: arm name {self.name!r}, expected one of {list(ARM_NAMES)}")
        if not 0.0 < self.command_hz <= FLEXIV_MAX_COMMAND_HZ:
            raise ConfigError(
                f"{where}.command_hz: {self.command_hz}, expected (0, {FLEXIV_MAX_COMMAND_HZ}] Hz "
                "(flexivrdk NRT commands are accepted at 1-100 Hz)"
            )
        if self.state_hz < ARM_STATE_MIN_HZ:
            raise ConfigError(f"{where}.state_hz: {self.state_hz}, expected >= {ARM_STATE_MIN_HZ} Hz")
        for key in ("max_linear_vel", "max_angular_vel", "max_linear_acc", "max_angular_acc",
                    "enable_timeout_s", "home_timeout_s"):
            if not getattr(self, key) > 0.0:
                raise ConfigError(f"{where}.{key}: {getattr(self, key)}, expected a value > 0")
        for key, high in (("max_linear_vel", hw.RIZON4S_MAX_LINEAR_VEL),
                          ("max_angular_vel", hw.RIZON4S_MAX_ANGULAR_VEL),
                          ("max_linear_acc", hw.RIZON4S_MAX_LINEAR_ACC), ("max_angular_acc", hw.MAX_ANGULAR_ACC)):
            if getattr(self, key) > high:  # rig/hardware_limits.py cites the Rizon 4S figures
                raise ConfigError(f"{where}.{key}: {getattr(self, key)}, expected at most {high:.3g} (Rizon 4S limit)")
        if not 0.0 <= self.command_jitter_tolerance <= 2.0:
            raise ConfigError(f"{where}.command_jitter_tolerance: {self.command_jitter_tolerance}, "
                              "expected a number of command periods in [0, 2]")

    @classmethod
    def from_dict(cls, name: str, d: Mapping[str, Any], where: str | None = None) -> FlexivArmConfig:
        """Build from one arm's mapping (`arms: ros__parameters: <name>:`); errors name the field."""
        where = where or f"config/rig.yaml arms.{name}"
        if not isinstance(d, Mapping):
            raise ConfigError(f"{where}: {d!r}, expected a mapping")
        reject_unknown(d, _ARM_KEYS, where)
        kind = get_str(d, "type", where, default="flexiv")
        if kind != "flexiv":
            raise ConfigError(f"{where}.type: {kind!r}, expected 'flexiv' for FlexivArm")
        tool_d = d.get("tool")
        tool = None if tool_d is None else FlexivToolConfig.from_dict(
            get_mapping(d, "tool", where), f"{where}.tool")
        return cls(
            name=name,
            serial=get_str(d, "serial", where),
            command_hz=get_float(d, "command_hz", where, default=100.0, positive=True),
            state_hz=get_float(d, "state_hz", where, default=200.0, positive=True),
            state_latency_s=get_float(d, "state_latency_s", where, default=0.001, low=0.0, high=1.0),
            max_linear_vel=get_float(d, "max_linear_vel", where, positive=True),
            max_angular_vel=get_float(d, "max_angular_vel", where, positive=True),
            max_linear_acc=get_float(d, "max_linear_acc", where, positive=True),
            max_angular_acc=get_float(d, "max_angular_acc", where, positive=True),
            home_plan=get_str(d, "home_plan", where, default=""),
            tool=tool,
            enable_timeout_s=get_float(d, "enable_timeout_s", where, default=10.0, positive=True),
            home_timeout_s=get_float(d, "home_timeout_s", where, default=60.0, positive=True),
            clear_fault_timeout_s=get_int(d, "clear_fault_timeout_s", where, default=30, low=1, high=300),
            command_jitter_tolerance=get_float(d, "command_jitter_tolerance", where, default=1.0),
            where=where,
        )

    @classmethod
    def from_rig_yaml(cls, name: str, path: str = "rig") -> FlexivArmConfig:
        """Read arm `name` from the `arms:` section of a rig YAML (default config/rig.yaml)."""
        arms = node_params(load_yaml(path), "arms")
        if name not in arms:
            raise ConfigError(f"{path}: arms.{name} not found (present: {sorted(arms)})")
        return cls.from_dict(name, arms[name], where=f"{path} arms.{name}")


# ------------------------------------------------------------------------------------------------
# Driver


def _import_sdk() -> ModuleType:
    try:
        return importlib.import_module("flexivrdk")
    except ImportError as exc:
        raise DeviceError(
            "flexivrdk is not installed: install the Flexiv RDK v1.x Python package with "
            "`pip install -e '.[flexiv]'` (pulls flexivrdk<2.0; needs numpy and spdlog)"
        ) from exc


class _RateMeter:
    """Sample counter with a sliding one-second rate estimate."""

    def __init__(self, window_s: float = 1.0) -> None:
        self.window_s = window_s
        self.times: deque[float] = deque()
        self.count = 0

    def tick(self, t: float) -> None:
        self.count += 1
        self.times.append(t)
        while self.times and t - self.times[0] > self.window_s:
            self.times.popleft()

    def rate(self) -> float:
        if len(self.times) < 2 or self.times[-1] <= self.times[0]:
            return 0.0
        return (len(self.times) - 1) / (self.times[-1] - self.times[0])


class FlexivArm(Arm):
    """One Flexiv Rizon arm streamed with NRT Cartesian targets; see the module docstring."""

    def __init__(self, config: FlexivArmConfig) -> None:
        if config.command_hz > FLEXIV_MAX_COMMAND_HZ:  # also enforced by the config; kept for clarity
            raise ConfigError(f"{config.where}.command_hz: {config.command_hz} > {FLEXIV_MAX_COMMAND_HZ}")
        self.config = config
        self.name = config.name
        self.max_command_hz = config.command_hz
        self._sdk: ModuleType | None = None
        self._robot: Any = None
        self._lock = threading.Lock()
        self._state: ArmState | None = None
        self._state_meter = _RateMeter()
        self._command_meter = _RateMeter()
        self._dropped = 0
        self._errors = 0
        self._refused = 0
        self._fault_latched = False
        self._streaming = False
        self._tat: float | None = None  # rate limiter: earliest conforming time of the next command
        self._thread: threading.Thread | None = None
        self._stop_event = threading.Event()

    # -- lifecycle ---------------------------------------------------------------------------------
    @property
    def is_connected(self) -> bool:
        return self._robot is not None

    @property
    def sdk_robot(self) -> Any:
        """The connected `flexivrdk.Robot` (shared with `FlexivGripper`; one connection per robot)."""
        if self._robot is None:
            raise DeviceError(f"arm {self.name}: not connected")
        return self._robot

    @property
    def sdk(self) -> ModuleType:
        """The imported `flexivrdk` module."""
        if self._sdk is None:
            raise DeviceError(f"arm {self.name}: not connected")
        return self._sdk

    def connect(self) -> None:
        if self._robot is not None:
            return
        sdk = _import_sdk()
        cfg = self.config
        try:
            robot = sdk.Robot(cfg.serial)
        except (RuntimeError, ValueError) as exc:
            raise DeviceError(f"arm {self.name}: cannot connect to Flexiv robot {cfg.serial!r}: {exc}") from exc
        self._sdk, self._robot = sdk, robot
        try:
            self._startup()
        except Exception:
            self._robot = None
            raise
        self._stop_event.clear()
        self._poll_once()
        self._thread = threading.Thread(target=self._state_loop, name=f"flexiv-state-{self.name}", daemon=True)
        self._thread.start()
        log.info("arm %s: connected to %s, streaming at up to %.0f Hz", self.name, cfg.serial, cfg.command_hz)

    def _startup(self) -> None:
        robot, sdk, cfg = self._robot, self._sdk, self.config
        assert sdk is not None
        try:
            if robot.fault():
                log.warning("arm %s: fault present at connect, clearing", self.name)
                if not robot.ClearFault(cfg.clear_fault_timeout_s):
                    raise DeviceError(f"arm {self.name}: fault on {cfg.serial} cannot be cleared; "
                                      "check the robot in Flexiv Elements")
            self._enable_and_wait()
            if cfg.tool is not None:
                self._register_tool(cfg.tool)
            if cfg.home_plan:
                robot.SwitchMode(sdk.Mode.NRT_PLAN_EXECUTION)
                robot.ExecutePlan(cfg.home_plan)
                self._wait(lambda: not robot.busy(), cfg.home_timeout_s, f"home plan {cfg.home_plan!r}")
            robot.SwitchMode(sdk.Mode.NRT_CARTESIAN_MOTION_FORCE)
        except (RuntimeError, ValueError) as exc:
            if isinstance(exc, DeviceError):
                raise
            raise DeviceError(f"arm {self.name}: startup of {cfg.serial} failed: {exc}") from exc
        self._streaming = True
        self._tat = None

    def _enable_and_wait(self) -> None:
        self._robot.Enable()
        self._wait(self._robot.operational, self.config.enable_timeout_s, "operational after Enable()")

    def _wait(self, done: Any, timeout_s: float, what: str) -> None:
        deadline = time.monotonic() + timeout_s
        while not done():
            if self._robot.fault():
                raise DeviceError(f"arm {self.name}: fault while waiting for {what}")
            if time.monotonic() > deadline:
                status = getattr(self._robot, "operational_status", lambda: "unknown")()
                raise DeviceError(f"arm {self.name}: timeout after {timeout_s} s waiting for {what} "
                                  f"(operational status: {status})")
            time.sleep(0.01)

    def _register_tool(self, tool: FlexivToolConfig) -> None:
        sdk, robot = self._sdk, self._robot
        assert sdk is not None
        robot.SwitchMode(sdk.Mode.IDLE)  # tool changes are accepted in IDLE only
        params = sdk.ToolParams()
        params.mass = tool.mass
        params.CoM = list(tool.com)
        params.inertia = list(tool.inertia)
        params.tcp_location = pose_to_flexiv(tool.tcp)
        manager = sdk.Tool(robot)
        if manager.exist(tool.name):
            manager.Update(tool.name, params)
        else:
            manager.Add(tool.name, params)
        manager.Switch(tool.name)
        log.info("arm %s: tool %r active (mass %.3f kg)", self.name, tool.name, tool.mass)

    def disconnect(self) -> None:
        self._stop_event.set()
        if self._thread is not None:
            self._thread.join(timeout=2.0)
            self._thread = None
        robot, self._robot = self._robot, None
        self._streaming = False
        if robot is None:
            return
        try:
            if not robot.fault():
                robot.Stop()
        except RuntimeError as exc:
            log.warning("arm %s: Stop() at disconnect failed: %s", self.name, exc)
        # flexivrdk v1.x closes the connection when the Robot object is released.
        del robot

    # -- state -------------------------------------------------------------------------------------
    def _state_loop(self) -> None:
        period = 1.0 / self.config.state_hz
        next_t = time.monotonic()
        while not self._stop_event.is_set():
            next_t += period
            try:
                self._poll_once()
            except Exception as exc:  # the loop must survive a bad sample; it is counted and logged
                self._errors += 1
                log.error("arm %s: state read failed: %s", self.name, exc)
            delay = next_t - time.monotonic()
            if delay > 0:
                self._stop_event.wait(delay)
            elif delay < -period:
                self._dropped += int(-delay // period)
                next_t = time.monotonic()

    def _poll_once(self) -> None:
        robot = self._robot
        if robot is None:
            return
        s = robot.states()
        faulted = bool(robot.fault())
        now = time.monotonic()
        if faulted and not self._fault_latched:
            self._latch_fault("reported by the controller")
        n = JOINTS_PER_ARM  # external axes, if any, come first in the joint vectors
        state = ArmState(
            arm=self.name,
            t=now - self.config.state_latency_s,
            q=np.asarray(s.q, dtype=np.float64)[-n:],
            dq=np.asarray(s.dq, dtype=np.float64)[-n:],
            tau=np.asarray(s.tau, dtype=np.float64)[-n:],
            tau_ext=np.asarray(s.tau_ext, dtype=np.float64)[-n:],
            tcp_pose=pose_from_flexiv(s.tcp_pose),
            tcp_vel=np.asarray(s.tcp_vel, dtype=np.float64),
            ext_wrench=np.asarray(s.ext_wrench_in_world, dtype=np.float64),
            fault=self._fault_latched,
        )
        with self._lock:
            self._state = state
            self._state_meter.tick(now)

    def read_state(self) -> ArmState:
        with self._lock:
            state = self._state
        if state is None:
            raise DeviceError(f"arm {self.name}: no state yet (connect() first)")
        return state

    def stats(self) -> DeviceStats:
        with self._lock:
            rate = self._state_meter.rate()
            samples = self._state_meter.count
            cmd_rate = self._command_meter.rate()
            commands = self._command_meter.count
        return DeviceStats(samples=samples, dropped=self._dropped, rate_hz=rate, errors=self._errors,
                           extra={"commands": float(commands), "command_rate_hz": cmd_rate,
                                  "refused": float(self._refused)})

    # -- fault handling ----------------------------------------------------------------------------
    def _latch_fault(self, why: str) -> None:
        with self._lock:
            if self._fault_latched:
                return
            self._fault_latched = True
            self._streaming = False
            self._errors += 1
        log.error("arm %s: FAULT (%s); streaming stopped, call recover() after checking the robot",
                  self.name, why)

    def in_fault(self) -> bool:
        if self._fault_latched:
            return True
        if self._robot is not None and self._robot.fault():
            self._latch_fault("reported by the controller")
            return True
        return False

    def recover(self) -> None:
        """Operator action: ClearFault, Enable, wait operational, back to NRT Cartesian streaming."""
        robot, sdk, cfg = self._robot, self._sdk, self.config
        if robot is None or sdk is None:
            raise DeviceError(f"arm {self.name}: not connected")
        try:
            if robot.fault() and not robot.ClearFault(cfg.clear_fault_timeout_s):
                raise DeviceError(f"arm {self.name}: ClearFault() failed on {cfg.serial}; the fault stays")
            self._enable_and_wait()
            robot.SwitchMode(sdk.Mode.NRT_CARTESIAN_MOTION_FORCE)
        except DeviceError:
            raise
        except RuntimeError as exc:
            raise DeviceError(f"arm {self.name}: recovery failed: {exc}") from exc
        with self._lock:
            self._fault_latched = False
            self._streaming = True
            self._tat = None
        log.info("arm %s: recovered, streaming enabled", self.name)

    def stop(self) -> None:
        """Stop now (controller goes to IDLE and holds); streaming resumes only after `recover()`."""
        with self._lock:
            self._streaming = False
        if self._robot is None:
            return
        try:
            self._robot.Stop()
        except RuntimeError as exc:
            raise DeviceError(f"arm {self.name}: Stop() failed: {exc}") from exc

    # -- commands ----------------------------------------------------------------------------------
    def _admit(self, now: float) -> None:
        """Generic cell-rate algorithm: the average rate never exceeds command_hz; a command may come
        up to `command_jitter_tolerance` periods early, so a late tick followed by an on-time tick of
        a fixed-rate loop passes while catch-up bursts and faster loops are refused.
        """
        period = 1.0 / self.config.command_hz
        slack = self.config.command_jitter_tolerance * period
        if self._tat is not None and now < self._tat - slack:
            self._refused += 1
            raise CommandRateError(
                f"arm {self.name}: command {1e3 * (self._tat - now):.1f} ms early for the configured "
                f"{self.config.command_hz:g} Hz (tolerance {1e3 * slack:.1f} ms); not sent"
            )
        self._tat = max(self._tat if self._tat is not None else now, now) + period

    def send_pose(self, pose: NDArray[np.float64]) -> None:
        p = np.asarray(pose, dtype=np.float64)
        if p.shape != (POSE_DIM,) or not np.all(np.isfinite(p)):
            raise ValueError(f"arm {self.name}: pose {p.tolist()} must be 7 finite values [x, y, z, qx, qy, qz, qw]")
        if float(quat_norm_error(p[3:7])) > UNIT_QUAT_TOL:
            raise ValueError(f"arm {self.name}: quaternion {p[3:7].tolist()} is not unit length")
        robot = self._robot
        if robot is None:
            raise DeviceError(f"arm {self.name}: not connected")
        if self.in_fault():
            raise DeviceError(f"arm {self.name}: in fault; not sending. Call recover() after checking the robot")
        if not self._streaming:
            raise DeviceError(f"arm {self.name}: stopped; call recover() to resume streaming")
        now = time.monotonic()
        with self._lock:
            self._admit(now)
        cfg = self.config
        try:
            robot.SendCartesianMotionForce(
                pose_to_flexiv(p), [0.0] * 6, [0.0] * 6,
                cfg.max_linear_vel, cfg.max_angular_vel, cfg.max_linear_acc, cfg.max_angular_acc,
            )
        except (RuntimeError, ValueError) as exc:
            self._errors += 1
            if robot.fault():
                self._latch_fault(f"command refused: {exc}")
            raise DeviceError(f"arm {self.name}: SendCartesianMotionForce failed: {exc}") from exc
        with self._lock:
            self._command_meter.tick(now)
