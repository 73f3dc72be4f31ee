"""One arm's vendor SDK in its own process, so that a call that blocks holding the GIL (flexivrdk's
`Robot()`, `Stop`, `ClearFault`, `Enable`, `SwitchMode`: measured 3.3 s for `Robot()` with no robot)
never delays the other arm, the executor or anything else in the caller's process.

`IsolatedArm` implements `rig.drivers.base.Arm` in the caller's process. The child process builds the
real driver with a picklable factory (`FlexivArmFactory`), connects it and then:
- publishes every new state (and the driver's fault / streaming flags and counters) into a shared-memory
  ring (`rig.realtime.shm.ShmRing`) at `state_hz`; `read_state()` and `in_fault()` read the newest
  record without any call into the child;
- takes pose targets from a second ring, woken by a one-byte doorbell on a pipe; when several are
  queued it sends only the newest (the older ones are stale by then). `send_pose()` only writes the
  record and rings: it never waits on the SDK. A refused or failed send shows up as the driver's fault
  flag in the next state record (published at once), and is counted;
- `stop()` is asynchronous too (a stop record): the guard's e-stop on one arm must not wait for the
  other's `Stop()`. `connect()`, `recover()` and `disconnect()` are blocking operator actions, done by
  request and reply over a pipe with a timeout.

Record layouts are in `STATE_FIELDS` / `COMMAND_FIELDS` (float64; times are `time.monotonic()`).
"""

from __future__ import annotations

import contextlib
import logging
import math
import multiprocessing as mp
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from typing import Any

import numpy as np
from numpy.typing import NDArray

from rig.conventions import JOINTS_PER_ARM, POSE_DIM
from rig.drivers.base import Arm, DeviceError, DeviceStats
from rig.realtime.shm import ShmRing, unique_name
from rig.rotations import UNIT_QUAT_TOL
from rig.schema import ArmState

log = logging.getLogger(__name__)


def _layout(fields: list[tuple[str, int]]) -> dict[str, slice]:
    out, i = {}, 0
    for name, n in fields:
        out[name] = slice(i, i + n)
        i += n
    return out


STATE_FIELDS = _layout([
    ("t", 1), ("fault", 1), ("q", JOINTS_PER_ARM), ("dq", JOINTS_PER_ARM), ("tau", JOINTS_PER_ARM),
    ("tau_ext", JOINTS_PER_ARM), ("tcp_pose", POSE_DIM), ("tcp_vel", 6), ("ext_wrench", 6),
    ("published_t", 1), ("streaming", 1), ("commands", 1), ("command_errors", 1), ("skipped", 1),
    ("last_command_written_t", 1), ("last_command_sent_t", 1), ("samples", 1), ("rate_hz", 1),
    ("dropped", 1), ("errors", 1),
])
STATE_WIDTH = max(s.stop for s in STATE_FIELDS.values())
COMMAND_FIELDS = _layout([("written_t", 1), ("kind", 1), ("pose", POSE_DIM)])
COMMAND_WIDTH = max(s.stop for s in COMMAND_FIELDS.values())
_POSE, _STOP = 1.0, 2.0
_RING = 64


@dataclass(frozen=True)
class FlexivArmFactory:
    """Builds `FlexivArm(config)` inside the arm's process (picklable: only the config travels)."""

    config: Any  # rig.drivers.flexiv_config.FlexivArmConfig (not imported here: no SDK at import time)

    @property
    def max_command_hz(self) -> float:
        return float(self.config.command_hz)

    def __call__(self) -> Arm:
        from rig.drivers.flexiv import FlexivArm

        return FlexivArm(self.config)


def flexiv_arm_factory(config: Any) -> FlexivArmFactory:
    return FlexivArmFactory(config)


def isolate_flexiv_arms(arms: Mapping[str, Arm], grippers: Mapping[str, Any]) -> dict[str, Arm]:
    """The rig's arms with every (not yet connected) `FlexivArm` replaced by an `IsolatedArm` running it
    in its own process. An arm whose gripper is a `FlexivGripper` stays in this process: that gripper
    talks through the arm's `flexivrdk.Robot`, which cannot cross a process boundary."""
    out: dict[str, Arm] = {}
    for name, arm in arms.items():
        shared = type(grippers.get(name)).__name__ == "FlexivGripper"
        if type(arm).__name__ != "FlexivArm" or arm.is_connected or shared:
            if shared:
                log.warning("arm %s: gripper type flexiv_gripper shares the arm's SDK connection; the arm's "
                            "SDK stays in this process (no isolation)", name)
            out[name] = arm
            continue
        cfg = arm.config  # type: ignore[attr-defined]
        out[name] = IsolatedArm(name, FlexivArmFactory(cfg), state_hz=cfg.state_hz)
    return out


@dataclass(frozen=True)
class IsolatedArmFactory:
    """Builds an `IsolatedArm` (one more process, for the arm's SDK) around a driver factory."""

    name: str
    driver: Callable[[], Arm]
    state_hz: float = 200.0

    def __call__(self) -> Arm:
        return IsolatedArm(self.name, self.driver, state_hz=self.state_hz)


@dataclass(frozen=True)
class ConfiguredDevice:
    """Builds `cls(config)` in another process (picklable: the class by reference, the config by value)."""

    cls: type
    config: Any

    def __call__(self) -> Any:
        return self.cls(self.config)


def device_factories(arms: Mapping[str, Arm], grippers: Mapping[str, Any], isolate: bool
                     ) -> tuple[dict[str, Callable[[], Arm]], dict[str, Callable[[], Any]]] | None:
    """Picklable factories for the (not yet connected) devices of a real rig, for the executor process
    (`rig.realtime.executor_process.RealtimeConfig`): each `FlexivArm` (in one more process when
    `isolate`), each gripper built from its config alone (`RobotiqGripper`). None when a device cannot be
    rebuilt in another process: a `FlexivGripper` talks through its arm's `flexivrdk.Robot`, a device
    without a `config`, or one already connected."""
    arm_factories: dict[str, Callable[[], Arm]] = {}
    gripper_factories: dict[str, Callable[[], Any]] = {}
    for name, arm in arms.items():
        if type(arm).__name__ != "FlexivArm" or arm.is_connected:
            return None
        cfg = arm.config  # type: ignore[attr-defined]
        arm_factories[name] = (IsolatedArmFactory(name, FlexivArmFactory(cfg), cfg.state_hz) if isolate
                               else FlexivArmFactory(cfg))
    for name, gripper in grippers.items():
        if type(gripper).__name__ == "FlexivGripper" or gripper.is_connected or not hasattr(gripper, "config"):
            return None
        gripper_factories[name] = ConfiguredDevice(type(gripper), gripper.config)
    return arm_factories, gripper_factories


def state_from_record(name: str, rec: NDArray[np.float64], fault: bool) -> ArmState:
    """ArmState from a state record. The record was packed from an ArmState that passed the schema's
    checks in the arm process; here they are redone on the flat record in one pass (finite values,
    unit quaternion) instead of field by field, which costs ~50 us per state at 100 Hz x 2 arms."""
    f = STATE_FIELDS
    body = rec[: f["ext_wrench"].stop]
    qx, qy, qz, qw = rec[f["tcp_pose"]][3:].tolist()
    if not np.isfinite(body).all() or abs(math.sqrt(qx * qx + qy * qy + qz * qz + qw * qw) - 1.0) > UNIT_QUAT_TOL:
        # The field-by-field checks raise a SchemaError naming the bad field.
        return ArmState(arm=name, t=float(rec[0]), fault=fault,
                        **{k: rec[f[k]].copy() for k in ("q", "dq", "tau", "tau_ext", "tcp_pose", "tcp_vel",
                                                         "ext_wrench")})
    state = object.__new__(ArmState)
    values = {"arm": name, "t": float(rec[0]), "fault": fault}
    for key in ("q", "dq", "tau", "tau_ext", "tcp_pose", "tcp_vel", "ext_wrench"):
        values[key] = rec[f[key]].copy()
    for key, value in values.items():
        object.__setattr__(state, key, value)
    return state


def _pack_state(arm: Arm, state: ArmState, rec: NDArray[np.float64], counters: dict[str, float]) -> None:
    f = STATE_FIELDS
    rec[f["t"]] = state.t
    rec[f["fault"]] = float(state.fault or arm.in_fault())
    for key in ("q", "dq", "tau", "tau_ext", "tcp_pose", "tcp_vel", "ext_wrench"):
        rec[f[key]] = getattr(state, key)
    stats = arm.stats()
    rec[f["samples"]], rec[f["rate_hz"]] = stats.samples, stats.rate_hz
    rec[f["dropped"]], rec[f["errors"]] = stats.dropped, stats.errors
    rec[f["streaming"]] = float(getattr(arm, "_streaming", True))
    for key, value in counters.items():
        rec[f[key]] = value
    rec[f["published_t"]] = time.monotonic()


def _child_main(factory: Callable[[], Arm], state_name: str, command_name: str, doorbell: Connection,
                rpc: Connection, state_hz: float) -> None:
    """The arm's process: connect on request, then serve commands and publish states until 'exit'."""
    states = ShmRing(state_name, STATE_WIDTH, _RING, create=False)
    commands = ShmRing(command_name, COMMAND_WIDTH, _RING, create=False)
    arm = factory()
    timed = bool(getattr(arm, "accepts_command_time", False))
    rec = np.zeros(STATE_WIDTH)
    counters = {"commands": 0.0, "command_errors": 0.0, "skipped": 0.0, "last_command_written_t": 0.0,
                "last_command_sent_t": 0.0}
    period = 1.0 / state_hz
    next_t = time.monotonic()
    last_t = float("nan")
    connected = False

    def publish(force: bool = False) -> None:
        nonlocal last_t
        try:
            state = arm.read_state()
        except DeviceError:
            return
        if force or state.t != last_t or bool(rec[STATE_FIELDS["fault"]]) != (state.fault or arm.in_fault()):
            _pack_state(arm, state, rec, counters)
            states.write(rec)
            last_t = state.t

    while True:
        ready = wait([doorbell, rpc], timeout=max(0.0, next_t - time.monotonic()) if connected else None)
        if doorbell in ready:
            if not os.read(doorbell.fileno(), 4096):  # raw bytes from the parent's os.write
                log.error("arm process: the parent closed the command pipe; stopping the arm")
                with contextlib.suppress(DeviceError):
                    arm.stop()
                break
            pending = commands.read_new()
            if connected and pending:
                stops = [r for r in pending if r[COMMAND_FIELDS["kind"]][0] == _STOP]
                poses = [r for r in pending if r[COMMAND_FIELDS["kind"]][0] == _POSE]
                if stops:
                    try:
                        arm.stop()
                    except DeviceError as exc:
                        log.error("arm process: stop failed: %s", exc)
                elif poses:
                    newest = poses[-1]
                    counters["skipped"] += len(poses) - 1
                    try:
                        if timed:  # rate admission on the executor's clock, not after the transport
                            arm.send_pose(newest[COMMAND_FIELDS["pose"]],  # type: ignore[call-arg]
                                          t=float(newest[COMMAND_FIELDS["written_t"]][0]))
                        else:
                            arm.send_pose(newest[COMMAND_FIELDS["pose"]])
                        counters["commands"] += 1
                    except (DeviceError, ValueError) as exc:
                        counters["command_errors"] += 1
                        log.warning("arm process: command not sent: %s", exc)
                    counters["last_command_written_t"] = float(newest[COMMAND_FIELDS["written_t"]][0])
                    counters["last_command_sent_t"] = time.monotonic()
                publish(force=True)
        if rpc in ready:
            request = rpc.recv()
            reply: tuple[bool, str] = (True, "")
            try:
                if request == "connect":
                    arm.connect()
                    connected = True
                elif request == "recover":
                    arm.recover()
                elif request == "disconnect":
                    arm.disconnect()
                    connected = False
                elif request == "exit":
                    rpc.send((True, ""))
                    break
                else:
                    reply = (False, f"unknown request {request!r}")
            except Exception as exc:  # every failure goes back to the caller as its message
                reply = (False, str(exc))
            if connected:
                publish(force=True)
            rpc.send(reply)
        now = time.monotonic()
        if connected and now >= next_t:
            publish()
            next_t += period
            if next_t < now:
                next_t = now + period
    states.close()
    commands.close()


class IsolatedArm(Arm):
    """`Arm` whose driver runs in a child process; see the module docstring."""

    def __init__(self, name: str, factory: Callable[[], Arm], state_hz: float = 200.0,
                 rpc_timeout_s: float = 120.0, start_method: str = "spawn") -> None:
        self.name = name
        self.factory = factory
        self.max_command_hz = float(getattr(factory, "max_command_hz", 100.0))
        self.state_hz = state_hz
        self.rpc_timeout_s = rpc_timeout_s
        self._ctx = mp.get_context(start_method)  # spawn: no SDK or thread state inherited
        self._process: Any = None
        self._states: ShmRing | None = None
        self._commands: ShmRing | None = None
        self._doorbell: Connection | None = None
        self._rpc: Connection | None = None
        self._rec = np.zeros(STATE_WIDTH)
        self._cmd = np.zeros(COMMAND_WIDTH)
        self._stopped = False
        self._alive, self._alive_at = False, -math.inf
        self._cached: ArmState | None = None
        self._cached_key: tuple[float, bool] = (math.nan, False)

    # -- lifecycle ---------------------------------------------------------------------------------
    @property
    def is_connected(self) -> bool:
        """The arm process is running; `is_alive()` (a waitpid) is asked at most every 20 ms, since the
        executor asks several times per tick (a dead process is also a stale state for the guard)."""
        if self._process is None:
            return False
        now = time.monotonic()
        if now - self._alive_at > 0.02:
            self._alive, self._alive_at = self._process.is_alive(), now
        return self._alive

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    def connect(self) -> None:
        if self._process is not None:
            return
        self._states = ShmRing(unique_name(f"{self.name}_state"), STATE_WIDTH, _RING, create=True)
        self._commands = ShmRing(unique_name(f"{self.name}_cmd"), COMMAND_WIDTH, _RING, create=True)
        bell_r, self._doorbell = self._ctx.Pipe(duplex=False)
        self._rpc, child_rpc = self._ctx.Pipe()
        self._process = self._ctx.Process(
            target=_child_main, name=f"arm-{self.name}", daemon=True,
            args=(self.factory, self._states.name, self._commands.name, bell_r, child_rpc, self.state_hz))
        self._process.start()
        self._alive, self._alive_at = True, time.monotonic()
        bell_r.close()
        child_rpc.close()
        try:
            self._request("connect")
        except DeviceError:
            self._shutdown()
            raise
        self._stopped = False

    def _request(self, what: str, timeout: float | None = None) -> None:
        if self._rpc is None or self._process is None:
            raise DeviceError(f"arm {self.name}: not connected")
        self._rpc.send(what)
        timeout = self.rpc_timeout_s if timeout is None else timeout
        deadline = time.monotonic() + timeout
        while not self._rpc.poll(0.05):
            if not self._process.is_alive():
                raise DeviceError(f"arm {self.name}: arm process exited (code {self._process.exitcode}) "
                                  f"during {what}")
            if time.monotonic() > deadline:
                raise DeviceError(f"arm {self.name}: no reply to {what} within {timeout} s")
        ok, message = self._rpc.recv()
        if not ok:
            raise DeviceError(message if message.startswith(f"arm {self.name}") else f"arm {self.name}: {message}")

    def _shutdown(self) -> None:
        process, self._process = self._process, None
        if process is not None:
            try:
                if process.is_alive() and self._rpc is not None:
                    self._rpc.send("exit")
                    self._rpc.poll(5.0)
            except (BrokenPipeError, EOFError, OSError):
                pass
            process.join(5.0)
            if process.is_alive():
                process.terminate()
                process.join(2.0)
        for conn in (self._rpc, self._doorbell):
            if conn is not None:
                conn.close()
        self._rpc = self._doorbell = None
        for ring in (self._states, self._commands):
            if ring is not None:
                ring.close()
        self._states = self._commands = None

    def disconnect(self) -> None:
        if self._process is None:
            return
        try:
            if self._process.is_alive():
                self._request("disconnect")
        except DeviceError as exc:
            log.warning("arm %s: disconnect in the arm process failed: %s", self.name, exc)
        finally:
            self._shutdown()

    # -- state -------------------------------------------------------------------------------------
    def _latest(self) -> NDArray[np.float64]:
        if self._states is None:
            raise DeviceError(f"arm {self.name}: not connected")
        rec = self._states.latest(self._rec)
        if rec is None:
            raise DeviceError(f"arm {self.name}: no state yet")
        return rec

    def read_state(self) -> ArmState:
        """The newest published state; rebuilt only when the arm process published a new record."""
        rec = self._latest()
        alive = self.is_connected
        key = (float(rec[STATE_FIELDS["published_t"]][0]), alive)
        if self._cached is None or key != self._cached_key:
            self._cached = state_from_record(self.name, rec, fault=bool(rec[1]) or not alive)
            self._cached_key = key
        return self._cached

    def record(self) -> dict[str, float]:
        """The scalar fields of the newest state record (counters, publish and command times)."""
        rec = self._latest()
        return {k: float(rec[s][0]) for k, s in STATE_FIELDS.items() if s.stop - s.start == 1}

    def stats(self) -> DeviceStats:
        try:
            r = self.record()
        except DeviceError:
            return DeviceStats()
        return DeviceStats(samples=int(r["samples"]), dropped=int(r["dropped"]), rate_hz=r["rate_hz"],
                           errors=int(r["errors"]),
                           extra={"commands": r["commands"], "command_errors": r["command_errors"],
                                  "skipped": r["skipped"], "pid": float(self.pid or 0)})

    # -- faults and commands -----------------------------------------------------------------------
    def in_fault(self) -> bool:
        if self._process is None:
            return False
        if not self.is_connected:
            return True
        try:
            return bool(self._latest()[1])
        except DeviceError:
            return False

    def recover(self) -> None:
        self._request("recover")
        self._stopped = False

    def stop(self) -> None:
        self._stopped = True
        self._write(_STOP, None)

    def _write(self, kind: float, pose: NDArray[np.float64] | None) -> None:
        if self._commands is None or self._doorbell is None:
            raise DeviceError(f"arm {self.name}: not connected")
        cmd = self._cmd
        cmd[0] = time.monotonic()
        cmd[1] = kind
        if pose is not None:
            cmd[COMMAND_FIELDS["pose"]] = pose
        self._commands.write(cmd)
        try:
            os.write(self._doorbell.fileno(), b"c")  # raw byte: the child only waits and drains
        except (BrokenPipeError, OSError) as exc:
            raise DeviceError(f"arm {self.name}: arm process gone: {exc}") from exc

    def send_pose(self, pose: NDArray[np.float64]) -> None:
        p = np.asarray(pose, dtype=np.float64)
        if p.shape != (POSE_DIM,) or not np.all(np.isfinite(p)):
            raise ValueError(f"arm {self.name}: pose {p.tolist()} must be 7 finite values [x, y, z, qx, qy, qz, qw]")
        if self.in_fault():
            raise DeviceError(f"arm {self.name}: in fault; not sending. Call recover() after checking the robot")
        if self._stopped:
            raise DeviceError(f"arm {self.name}: stopped; call recover() to resume streaming")
        self._write(_POSE, p)
