"""Flexiv Rizon arm driver over the Flexiv RDK Python API v1.x (`flexivrdk`, PascalCase, serial based).

Implements `rig.drivers.base.Arm` (settings: `rig.drivers.flexiv_config`):
- connect: `Robot(serial)` (blocks up to ~3.3 s, holding the GIL, when the robot is not there: run each
  arm in its own process with `rig.realtime.arm_process.IsolatedArm` so this never stalls the other);
  wait for the first complete state packet (the SDK's states are zero-initialised until then); clear a
  pending fault; `Enable()`; wait for `operational()`; register and switch the tool (IDLE); optional
  home plan (NRT_PLAN_EXECUTION, wait while `busy()`); zero the force-torque sensor (below); then
  NRT_CARTESIAN_MOTION_FORCE with `SetForceControlAxis([False] * 6)` (pure motion, stated explicitly)
  and `SetMaxContactWrench(max_contact_wrench)` from rig.yaml, set again after every mode switch.
- FT zeroing: the `ZeroFTSensor` primitive (NRT_PRIMITIVE_EXECUTION, wait for
  `primitive_states()["terminated"]`), as the RDK examples do before using the wrench. The driver first
  waits for `stopped()`; the arm must touch nothing while it runs (docs/drivers_arms.md). Without it the
  published external wrench carries the sensor's offset.
- a background thread reads `states()` at `state_hz`. Each sample is stamped with the host time at
  which its robot timestamp was first seen (minus `state_latency_s`), so a state that stops updating
  ages instead of being re-stamped as fresh. `connected()` turning False, or the robot timestamp not
  advancing for `state_timeout_s`, latches a fault ("connection lost"): streaming stops and the
  published state carries `fault=True` until `recover()`.
- `send_pose` forwards one target to `SendCartesianMotionForce` with the configured velocity and
  acceleration limits (pure motion, zero wrench). The first target after (re)starting streaming must lie
  within `first_target_tolerance_m` / `_rad` of the measured TCP pose (the stream is anchored at the
  current pose; the driver holds that pose when streaming starts). Commands faster than `command_hz`
  (<= 100 Hz) are refused with `CommandRateError`. Any exception the SDK raises on a send (`TypeError`
  for a malformed vector, `ValueError`, `RuntimeError`) latches the fault; after a fault or a `stop()`
  nothing is sent until `recover()`.

Pose order: `pose_to_flexiv` / `pose_from_flexiv` (rig.drivers.flexiv_config). The SDK is imported
lazily inside `connect()`.
"""

from __future__ import annotations

import dataclasses
import importlib
import logging
import threading
import time
from collections import deque
from types import ModuleType
from typing import Any

import numpy as np
from numpy.typing import NDArray

from rig.config import ConfigError
from rig.conventions import JOINTS_PER_ARM, POSE_DIM
from rig.drivers.base import Arm, DeviceError, DeviceStats
from rig.drivers.flexiv_config import (
    FLEXIV_MAX_COMMAND_HZ,
    FlexivArmConfig,
    FlexivToolConfig,
    pose_from_flexiv,
    pose_to_flexiv,
)
from rig.rotations import UNIT_QUAT_TOL, angle_between, quat_norm_error
from rig.schema import ArmState

__all__ = [
    "FLEXIV_MAX_COMMAND_HZ",
    "SDK_ERRORS",
    "CommandRateError",
    "FlexivArm",
    "FlexivArmConfig",
    "FlexivToolConfig",
    "pose_from_flexiv",
    "pose_to_flexiv",
]

log = logging.getLogger(__name__)

SDK_ERRORS = (RuntimeError, ValueError, TypeError)
"""What flexivrdk 1.9 raises: RuntimeError (std::runtime_error / logic_error), ValueError
(std::invalid_argument), TypeError (pybind argument conversion, e.g. a vector of the wrong length)."""


class CommandRateError(DeviceError):
    """A command arrived earlier than the configured command rate allows; it was not sent."""


def _import_sdk() -> ModuleType:
    try:
        return importlib.import_module("flexivrdk")
    except ImportError as exc:
        raise DeviceError(
            "flexivrdk is not installed: install the Flexiv RDK v1.x Python package with "
            "`pip install -e '.[flexiv]'` (pulls flexivrdk<2.0, CPython 3.10 or 3.12 only)"
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


def _complete(s: Any) -> bool:
    """A state packet has arrived: joint vectors filled, a unit TCP quaternion, a robot timestamp."""
    return (len(s.q) >= JOINTS_PER_ARM and tuple(s.timestamp) != (0, 0)
            and abs(float(np.linalg.norm(np.asarray(s.tcp_pose[3:7], dtype=np.float64))) - 1.0) < 1e-3)


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
        self.fault_reason = ""
        self._streaming = False
        self._anchored = False  # the first target after (re)starting streaming was checked
        self._tat: float | None = None  # rate limiter: earliest conforming time of the next command
        self._robot_stamp: tuple[int, int] = (0, 0)
        self._stamp_seen_at = 0.0  # host time at which the robot timestamp last advanced
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
        except SDK_ERRORS as exc:
            raise DeviceError(f"arm {self.name}: cannot connect to Flexiv robot {cfg.serial!r}: {exc}") from exc
        self._sdk, self._robot = sdk, robot
        try:
            self._startup()
        except Exception:
            self._robot = None
            raise
        self._stop_event.clear()
        self._thread = threading.Thread(target=self._state_loop, name=f"flexiv-state-{self.name}", daemon=True)
        self._thread.start()
        log.info("arm %s: connected to %s, streaming at up to %.0f Hz", self.name, cfg.serial, cfg.command_hz)

    def _startup(self) -> None:
        robot, sdk, cfg = self._robot, self._sdk, self.config
        assert sdk is not None
        try:
            self._wait(lambda: _complete(robot.states()), cfg.first_state_timeout_s, "the first state packet",
                       check_fault=False)
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
            if cfg.zero_ft_sensor:
                self._zero_ft_sensor()
            self._enter_streaming()
        except SDK_ERRORS as exc:
            if isinstance(exc, DeviceError):
                raise
            raise DeviceError(f"arm {self.name}: startup of {cfg.serial} failed: {exc}") from exc
        self._poll_once()

    def _enter_streaming(self) -> None:
        """NRT Cartesian motion-force, pure motion, contact limits; hold the measured TCP pose."""
        robot, sdk, cfg = self._robot, self._sdk, self.config
        assert sdk is not None
        robot.SwitchMode(sdk.Mode.NRT_CARTESIAN_MOTION_FORCE)
        robot.SetForceControlAxis([False] * 6)
        robot.SetMaxContactWrench(list(cfg.max_contact_wrench))
        robot.SendCartesianMotionForce(list(robot.states().tcp_pose), [0.0] * 6, [0.0] * 6,
                                       cfg.max_linear_vel, cfg.max_angular_vel, cfg.max_linear_acc,
                                       cfg.max_angular_acc)
        with self._lock:
            self._streaming = True
            self._anchored = False
            self._tat = None  # the hold above is not charged to the caller's command rate

    def _zero_ft_sensor(self) -> None:
        robot, sdk, cfg = self._robot, self._sdk, self.config
        assert sdk is not None
        self._wait(robot.stopped, cfg.zero_ft_timeout_s, "the arm to stand still before FT zeroing")
        robot.SwitchMode(sdk.Mode.NRT_PRIMITIVE_EXECUTION)
        log.warning("arm %s: zeroing the force-torque sensor; nothing may touch the arm", self.name)
        robot.ExecutePrimitive("ZeroFTSensor", {})
        self._wait(lambda: bool(robot.primitive_states().get("terminated", 0)), cfg.zero_ft_timeout_s,
                   "ZeroFTSensor to terminate")
        log.info("arm %s: FT sensor zeroed, ext wrench now %s", self.name,
                 [round(v, 3) for v in robot.states().ext_wrench_in_world])

    def _enable_and_wait(self) -> None:
        self._robot.Enable()
        self._wait(self._robot.operational, self.config.enable_timeout_s, "operational after Enable()")

    def _wait(self, done: Any, timeout_s: float, what: str, check_fault: bool = True) -> None:
        deadline = time.monotonic() + timeout_s
        while not done():
            if check_fault and self._robot.fault():
                raise DeviceError(f"arm {self.name}: fault while waiting for {what}")
            if not self._robot.connected():
                raise DeviceError(f"arm {self.name}: connection to {self.config.serial} lost while waiting "
                                  f"for {what}")
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
            if robot.connected() and not robot.fault():
                robot.Stop()
        except SDK_ERRORS as exc:
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
        linked = bool(robot.connected())
        s = robot.states()
        faulted = bool(robot.fault())
        now = time.monotonic()
        stamp = tuple(s.timestamp)
        if not linked:
            self._latch_fault(f"connection lost: connected() is False for {self.config.serial}")
        elif faulted:
            self._latch_fault("reported by the controller")
        fresh = stamp != self._robot_stamp and _complete(s)
        if fresh:
            self._robot_stamp, self._stamp_seen_at = stamp, now  # type: ignore[assignment]
        elif self._stamp_seen_at and now - self._stamp_seen_at > self.config.state_timeout_s:
            self._latch_fault(f"connection lost: robot timestamp {stamp} has not advanced for "
                              f"{now - self._stamp_seen_at:.3f} s (state_timeout_s {self.config.state_timeout_s})")
        with self._lock:
            previous = self._state
        if not fresh:
            if previous is not None and previous.fault != self._fault_latched:
                with self._lock:  # same (aging) sample, fault flag updated
                    self._state = dataclasses.replace(previous, fault=self._fault_latched)
            return
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
            self.fault_reason = why
            self._streaming = False
            self._errors += 1
        log.error("arm %s: FAULT (%s); streaming stopped, call recover() after checking the robot",
                  self.name, why)

    def in_fault(self) -> bool:
        if self._fault_latched:
            return True
        robot = self._robot
        if robot is not None:
            if not robot.connected():
                self._latch_fault(f"connection lost: connected() is False for {self.config.serial}")
            elif robot.fault():
                self._latch_fault("reported by the controller")
        return self._fault_latched

    def recover(self) -> None:
        """Operator action: ClearFault, Enable, wait operational, back to NRT Cartesian streaming."""
        robot, sdk, cfg = self._robot, self._sdk, self.config
        if robot is None or sdk is None:
            raise DeviceError(f"arm {self.name}: not connected")
        if not robot.connected():
            raise DeviceError(f"arm {self.name}: no connection to {cfg.serial}; check the cable and "
                              "reconnect (disconnect() then connect())")
        if self._stamp_seen_at and time.monotonic() - self._stamp_seen_at > cfg.state_timeout_s:
            raise DeviceError(f"arm {self.name}: the state stream of {cfg.serial} is still stalled")
        try:
            if robot.fault() and not robot.ClearFault(cfg.clear_fault_timeout_s):
                raise DeviceError(f"arm {self.name}: ClearFault() failed on {cfg.serial}; the fault stays")
            self._enable_and_wait()
            self._enter_streaming()
        except DeviceError:
            raise
        except SDK_ERRORS as exc:
            raise DeviceError(f"arm {self.name}: recovery failed: {exc}") from exc
        with self._lock:
            self._fault_latched = False
            self.fault_reason = ""
        log.info("arm %s: recovered, streaming enabled", self.name)

    def stop(self) -> None:
        """Stop now (controller goes to IDLE and holds); streaming resumes only after `recover()`."""
        with self._lock:
            self._streaming = False
        if self._robot is None:
            return
        try:
            self._robot.Stop()
        except SDK_ERRORS as exc:
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

    def _check_anchor(self, p: NDArray[np.float64]) -> None:
        """The first target of a stream must start at the measured TCP pose (no jump at max speed)."""
        cfg = self.config
        current = self.read_state().tcp_pose
        offset = float(np.linalg.norm(p[:3] - current[:3]))
        angle = float(angle_between(p[3:7], current[3:7]))
        if offset > cfg.first_target_tolerance_m or angle > cfg.first_target_tolerance_rad:
            raise DeviceError(
                f"arm {self.name}: first target is {offset:.3f} m / {angle:.3f} rad from the measured TCP "
                f"pose (first_target_tolerance_m {cfg.first_target_tolerance_m}, _rad "
                f"{cfg.first_target_tolerance_rad}); start the stream at the current pose; not sent"
            )
        self._anchored = True

    accepts_command_time = True
    """`send_pose(pose, t=...)`: rate admission on the caller's clock (see `send_pose`)."""

    def send_pose(self, pose: NDArray[np.float64], t: float | None = None) -> None:
        """Send one target. `t`: when the caller issued it (`time.monotonic()`); the rate check uses it,
        so that an arm process (rig.realtime.arm_process) passing on the executor's command times does
        not count its own transport jitter as a rate violation. Default: now."""
        p = np.asarray(pose, dtype=np.float64)
        if p.shape != (POSE_DIM,) or not np.all(np.isfinite(p)):
            raise ValueError(f"arm {self.name}: pose {p.tolist()} must be 7 finite values [x, y, z, qx, qy, qz, qw]")
        if float(quat_norm_error(p[3:7])) > UNIT_QUAT_TOL:
            raise ValueError(f"arm {self.name}: quaternion {p[3:7].tolist()} is not unit length")
        robot = self._robot
        if robot is None:
            raise DeviceError(f"arm {self.name}: not connected")
        if self.in_fault():
            raise DeviceError(f"arm {self.name}: in fault ({self.fault_reason}); not sending. Call recover() "
                              "after checking the robot")
        if not self._streaming:
            raise DeviceError(f"arm {self.name}: stopped; call recover() to resume streaming")
        if not self._anchored:
            self._check_anchor(p)
        now = time.monotonic() if t is None else min(float(t), time.monotonic())
        with self._lock:
            self._admit(now)
        cfg = self.config
        try:
            robot.SendCartesianMotionForce(
                pose_to_flexiv(p), [0.0] * 6, [0.0] * 6,
                cfg.max_linear_vel, cfg.max_angular_vel, cfg.max_linear_acc, cfg.max_angular_acc,
            )
        except SDK_ERRORS as exc:
            self._latch_fault(f"SendCartesianMotionForce raised {type(exc).__name__}: {exc}")
            raise DeviceError(f"arm {self.name}: SendCartesianMotionForce failed: {exc}") from exc
        with self._lock:
            self._command_meter.tick(now)
