"""The chunk executor, the safety guard and the arm streaming in a dedicated process (one per rig), so
that the 100 Hz tick never waits for the GIL of the cameras, the recorder, the policy or the ROS
executor, and may run under SCHED_FIFO.

`RealtimeExecutor` is the handle in the caller's process. The child builds the arms (and grippers)
with picklable factories, e.g. `IsolatedArmFactory` for one more process per arm SDK
(rig.realtime.arm_process), builds `SafetyGuard` + `ChunkExecutor` from their configs, and then ticks
with a `RateKeeper`:
- inputs, read after each tick's sends without blocking: command chunks from a shared-memory ring
  (`submit`), watchdog stamps from another (`feed`), and control requests (e-stop, reset, clear,
  diagnostics, the committed target of a plan for real-time chunking) from a pipe; the grippers are read
  at `gripper_hz` in the same slack;
- outputs: one record per tick into a shared-memory ring (`drain` decodes them into `TickRecord`s with
  the arm and gripper states, the guarded commands, the wake-up lateness and the tick's compute time).
The child disables the cyclic garbage collector during the loop (`gc.freeze` after setup, a young-
generation collection every second right after a tick) so that a collection never lands inside a tick.
`rt_priority` > 0 asks for SCHED_FIFO for the whole child (needs root or an rtprio limit; otherwise a
warning and the normal scheduler), `cpu` pins it to one core.
"""

from __future__ import annotations

import gc
import logging
import math
import multiprocessing as mp
import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

import numpy as np
from numpy.typing import NDArray

from rig.conventions import ARM_NAMES, COMMAND_DIM, JOINTS_PER_ARM, POSE_DIM
from rig.drivers.base import Arm, DeviceError, Gripper
from rig.executor import ChunkExecutor, ExecutorConfig, TickResult
from rig.realtime.arm_process import IsolatedArmFactory
from rig.realtime.shm import ShmRing, unique_name
from rig.safety import GuardConfig, SafetyGuard
from rig.schema import ArmState, CommandChunk, GripperState

__all__ = ["IsolatedArmFactory", "RealtimeConfig", "RealtimeExecutor", "TickRecord"]
from rig.timing import RateKeeper

log = logging.getLogger(__name__)

_GRIPPER_WIDTH = 7
"""Per gripper: valid, t, opening, width_m, is_moving, object_detected, fault (its newest reading)."""
_ARM_WIDTH = 3 + 4 * JOINTS_PER_ARM + POSE_DIM + 6 + 6 + _GRIPPER_WIDTH + 1 + POSE_DIM + 1
"""Per arm: valid, t, fault, q, dq, tau, tau_ext, tcp_pose, tcp_vel, ext_wrench, gripper state, sent, pose,
gripper command."""
_GRIPPER_AT = 3 + 4 * JOINTS_PER_ARM + POSE_DIM + 6 + 6
_TICK_HEAD = 7  # scheduled, now, late, compute, overrun, estopped, inputs (previous cycle)
TICK_WIDTH = _TICK_HEAD + len(ARM_NAMES) * _ARM_WIDTH
_FEED_WIDTH = 2  # source index, t


@dataclass(frozen=True)
class RealtimeConfig:
    """What the executor process runs: executor and guard settings, device factories, scheduling."""

    executor: ExecutorConfig
    guard: GuardConfig
    arms: Mapping[str, Callable[[], Arm]]
    grippers: Mapping[str, Callable[[], Gripper]] = field(default_factory=dict)
    max_chunk_steps: int = 64
    rt_priority: int = 0
    cpu: int | None = None
    tick_ring: int = 1024
    connect_devices: bool = True
    """Call `connect()` on every device built in the process (False: the factories return them ready)."""
    gripper_hz: float = 20.0
    """How often the process reads the grippers (after a tick's sends), for the guard and the records."""


@dataclass(frozen=True)
class TickRecord:
    """One tick as seen from outside the process."""

    scheduled: float
    now: float
    late: float
    compute: float
    """Read the arms, sample the plans, guard and send: from wake-up to the last command out."""
    overrun: bool
    estopped: bool
    inputs: float
    """Time the previous cycle spent on control requests and new chunks / stamps, after its sends."""
    states: dict[str, ArmState]
    commands: dict[str, tuple[NDArray[np.float64], float] | None]
    """Per arm the (pose, gripper) the guard sent this tick, or None when it sent nothing."""
    grippers: dict[str, GripperState] = field(default_factory=dict)
    """Per arm with a gripper its newest reading (the same one repeats until the next read)."""


def _pack_gripper(rec: NDArray[np.float64], state: GripperState | None) -> None:
    if state is not None:
        rec[:] = (1.0, state.t, state.opening, state.width_m, float(state.is_moving),
                  float(state.object_detected), float(state.fault))


def _pack_arm(rec: NDArray[np.float64], state: ArmState | None, command: Any,
              gripper: GripperState | None = None) -> None:
    rec[:] = 0.0
    _pack_gripper(rec[_GRIPPER_AT:_GRIPPER_AT + _GRIPPER_WIDTH], gripper)
    if state is not None:
        rec[0], rec[1], rec[2] = 1.0, state.t, float(state.fault)
        i = 3
        for key, n in (("q", 7), ("dq", 7), ("tau", 7), ("tau_ext", 7), ("tcp_pose", 7), ("tcp_vel", 6),
                       ("ext_wrench", 6)):
            rec[i:i + n] = getattr(state, key)
            i += n
    if command is not None and command.sent and command.pose is not None:
        rec[-POSE_DIM - 2] = 1.0
        rec[-POSE_DIM - 1:-1] = command.pose
        rec[-1] = math.nan if command.gripper is None else command.gripper


def _unpack_tick(name_order: tuple[str, ...], rec: NDArray[np.float64]) -> TickRecord:
    states: dict[str, ArmState] = {}
    commands: dict[str, tuple[NDArray[np.float64], float] | None] = {}
    grippers: dict[str, GripperState] = {}
    for k, name in enumerate(name_order):
        a = rec[_TICK_HEAD + k * _ARM_WIDTH:_TICK_HEAD + (k + 1) * _ARM_WIDTH]
        if a[0]:
            v = a[3:]
            states[name] = ArmState(arm=name, t=float(a[1]), fault=bool(a[2]), q=v[0:7], dq=v[7:14],
                                    tau=v[14:21], tau_ext=v[21:28], tcp_pose=v[28:35], tcp_vel=v[35:41],
                                    ext_wrench=v[41:47])
        commands[name] = (a[-POSE_DIM - 1:-1].copy(), float(a[-1])) if a[-POSE_DIM - 2] else None
        g = a[_GRIPPER_AT:_GRIPPER_AT + _GRIPPER_WIDTH]
        if g[0]:
            grippers[name] = GripperState(arm=name, t=float(g[1]), opening=float(g[2]), width_m=float(g[3]),
                                          is_moving=bool(g[4]), object_detected=bool(g[5]), fault=bool(g[6]))
    return TickRecord(float(rec[0]), float(rec[1]), float(rec[2]), float(rec[3]), bool(rec[4]), bool(rec[5]),
                      float(rec[6]), states, commands, grippers)


def _set_scheduling(rt_priority: int, cpu: int | None) -> str:
    notes = []
    if cpu is not None:
        try:
            os.sched_setaffinity(0, {cpu})
            notes.append(f"pinned to cpu {cpu}")
        except (AttributeError, OSError) as exc:
            log.warning("executor process: cannot pin to cpu %s (%s)", cpu, exc)
    if rt_priority > 0:
        try:
            os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(rt_priority))
            notes.append(f"SCHED_FIFO {rt_priority}")
        except (AttributeError, PermissionError, OSError) as exc:
            log.warning("executor process: cannot use SCHED_FIFO priority %d (%s); normal scheduler "
                        "(docs/control.md)", rt_priority, exc)
    return ", ".join(notes) or "normal scheduler"


class _Child:
    """State of the executor process (built and run inside it)."""

    def __init__(self, cfg: RealtimeConfig, rings: dict[str, str], control: Connection) -> None:
        self.cfg = cfg
        self.control = control
        self.arms = {name: make() for name, make in cfg.arms.items()}
        self.grippers = {name: make() for name, make in cfg.grippers.items()}
        if cfg.connect_devices:
            for device in (*self.arms.values(), *self.grippers.values()):
                device.connect()
        self.guard = SafetyGuard(cfg.guard, self.arms, self.grippers)
        self.executor = ChunkExecutor(cfg.executor, self.guard)
        self.names = tuple(n for n in ARM_NAMES if n in self.arms)  # the record order, as in the parent
        self.sources = list(cfg.guard.watch)
        self.chunks = ShmRing(rings["chunks"], 3 + cfg.max_chunk_steps * len(ARM_NAMES) * COMMAND_DIM, 16,
                              create=False)
        self.feeds = ShmRing(rings["feeds"], _FEED_WIDTH, 256, create=False)
        self.ticks = ShmRing(rings["ticks"], TICK_WIDTH, cfg.tick_ring, create=False)
        self.requests = ShmRing(rings["requests"], 1, 4, create=False)
        self.requests_seen = 0
        self.rec = np.zeros(TICK_WIDTH)
        self.rate = RateKeeper(cfg.executor.command_hz)
        self.gripper_states: dict[str, GripperState] = {}
        self.gripper_period = 1.0 / cfg.gripper_hz
        self.gripper_due = -math.inf
        self.running = True
        self.parent = os.getppid()

    def handle_control(self, now: float) -> None:
        # The parent bumps the `requests` ring with every request: checking its count costs ~0.1 us,
        # polling the pipe (a selector per call) ~20-50 us, which is too much for every tick.
        if self.requests.count == self.requests_seen:
            return
        self.requests_seen = self.requests.count
        while self.control.poll():
            seq, (request, *args) = self.control.recv()
            reply: tuple[bool, Any] = (True, None)
            try:
                if request == "estop":
                    self.guard.estop(args[0], now)
                    self.executor.clear()
                elif request == "reset":
                    self.guard.reset(now)
                    self.rate.reset()  # the reset may have blocked for a while: restart the schedule
                elif request == "clear":
                    self.executor.clear()
                elif request == "committed":  # the RTC prefix: what the plan will send for arm at time t
                    reply = (True, self.executor.committed(args[0], args[1]))
                elif request == "diagnostics":
                    reply = (True, {"guard": self.guard.diagnostics(now),
                                    "executor": dict(self.executor.stats.counters),
                                    "jitter": self.rate.stats.summary().as_dict(), "pid": os.getpid()})
                elif request == "exit":
                    self.running = False
                else:
                    reply = (False, f"unknown request {request!r}")
            except Exception as exc:  # the caller gets the message; the loop goes on
                reply = (False, str(exc))
            self.control.send((seq, *reply))

    def poll_grippers(self, now: float) -> None:
        """Read the grippers at `gripper_hz` (the guard's rate limiter starts from the measured opening)."""
        if now < self.gripper_due:
            return
        self.gripper_due = now + self.gripper_period
        for name, gripper in self.grippers.items():
            try:
                state = gripper.read_state()
            except DeviceError as exc:
                log.warning("executor process: gripper %s: read_state failed: %s", name, exc)
                continue
            self.guard.observe_gripper(name, state.opening)
            self.gripper_states[name] = state

    def take_inputs(self, now: float) -> None:
        for rec in self.feeds.read_new():
            self.guard.feed(self.sources[int(rec[0])], float(rec[1]))
        for rec in self.chunks.read_new():
            steps = int(rec[2])
            targets = rec[3:3 + steps * len(ARM_NAMES) * COMMAND_DIM].reshape(steps, len(ARM_NAMES), COMMAND_DIM)
            try:
                self.executor.submit(CommandChunk(targets, t0=float(rec[0]), dt=float(rec[1])), now)
            except ValueError as exc:  # SchemaError: a bad chunk is refused, the plan stays
                log.warning("executor process: chunk refused: %s", exc)

    def publish(self, scheduled: float, now: float, result: TickResult, overrun: bool, done: float,
                inputs: float) -> None:
        rec = self.rec
        rec[0], rec[1], rec[2] = scheduled, now, now - scheduled
        rec[3] = done - now
        rec[4], rec[5], rec[6] = float(overrun), float(self.guard.estopped), inputs
        for k, name in enumerate(self.names):
            _pack_arm(rec[_TICK_HEAD + k * _ARM_WIDTH:_TICK_HEAD + (k + 1) * _ARM_WIDTH],
                      result.states.get(name), result.commands.get(name), self.gripper_states.get(name))
        self.ticks.write(rec)

    def run(self) -> None:
        gc.collect()
        gc.freeze()  # setup objects are never scanned again
        gc.disable()
        last_gc = time.monotonic()
        overruns = 0
        inputs = 0.0
        try:
            while self.running:
                scheduled = self.rate.wait()
                now = time.monotonic()
                result = self.executor.tick(now)  # the commands go out first ...
                done = time.monotonic()
                self.publish(scheduled, now, result, self.rate.stats.overruns != overruns, done, inputs)
                overruns = self.rate.stats.overruns
                # ... then requests and new chunks / stamps, in the slack before the next tick (a new
                # chunk is spliced in by the next tick, as it would be if it had arrived a moment later).
                self.handle_control(done)
                self.take_inputs(done)
                self.poll_grippers(done)
                inputs = time.monotonic() - done
                if now - last_gc > 1.0:
                    gc.collect(0)
                    last_gc = now
                    if os.getppid() != self.parent:
                        log.error("executor process: parent process gone; e-stop and exit")
                        break
        finally:
            gc.enable()
            self.guard.estop("executor process exiting", time.monotonic())
            for device in (*self.grippers.values(), *self.arms.values()):
                try:
                    device.disconnect()
                except Exception as exc:  # every device gets its disconnect
                    log.warning("executor process: disconnect %s: %s", getattr(device, "name", device), exc)
            for ring in (self.chunks, self.feeds, self.ticks, self.requests):
                ring.close()


def _child_main(cfg: RealtimeConfig, rings: dict[str, str], control: Connection) -> None:
    logging.basicConfig(level=logging.WARNING)
    try:
        child = _Child(cfg, rings, control)
    except Exception as exc:  # reported to the parent's start()
        control.send((False, f"executor process setup failed: {exc!r}"))
        return
    control.send((True, _set_scheduling(cfg.rt_priority, cfg.cpu)))
    child.run()


class RealtimeExecutor:
    """Handle of the executor process; see the module docstring."""

    def __init__(self, config: RealtimeConfig, start_method: str = "spawn") -> None:
        self.config = config
        self._ctx = mp.get_context(start_method)
        self._process: Any = None
        self._control: Connection | None = None
        self._rings: dict[str, ShmRing] = {}
        self.scheduling = ""
        self.names = tuple(n for n in ARM_NAMES if n in config.arms)
        self._sources = list(config.guard.watch)
        self._chunk = np.zeros(3 + config.max_chunk_steps * len(ARM_NAMES) * COMMAND_DIM)
        self._feed = np.zeros(_FEED_WIDTH)
        self._request_lock = threading.Lock()  # one request and its reply at a time on the pipe
        self._seq = 0

    def start(self, timeout: float = 120.0) -> RealtimeExecutor:
        cfg = self.config
        self._rings = {
            "chunks": ShmRing(unique_name("chunks"), self._chunk.shape[0], 16, create=True),
            "feeds": ShmRing(unique_name("feeds"), _FEED_WIDTH, 256, create=True),
            "ticks": ShmRing(unique_name("ticks"), TICK_WIDTH, cfg.tick_ring, create=True),
            "requests": ShmRing(unique_name("requests"), 1, 4, create=True),
        }
        self._control, child = self._ctx.Pipe()
        # Not a daemon: it may start one process per arm. It exits on its own if this process dies.
        self._process = self._ctx.Process(target=_child_main, name="realtime-executor", daemon=False,
                                          args=(cfg, {k: r.name for k, r in self._rings.items()}, child))
        self._process.start()
        child.close()
        if not self._control.poll(timeout):
            self.stop()
            raise DeviceError(f"executor process: not up within {timeout} s")
        ok, message = self._control.recv()
        if not ok:
            self.stop()
            raise DeviceError(message)
        self.scheduling = message
        deadline = time.monotonic() + timeout
        while self._rings["ticks"].count == 0:  # return once it ticks
            if not self.running or time.monotonic() > deadline:
                self.stop()
                raise DeviceError("executor process: no tick after setup")
            time.sleep(0.005)
        return self

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.is_alive()

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    def _request(self, *request: Any, timeout: float = 60.0) -> Any:
        with self._request_lock:
            if self._control is None or not self.running:
                raise DeviceError("executor process: not running")
            # Numbered: the late reply to a request that timed out is skipped, not taken for this one's.
            self._seq += 1
            self._control.send((self._seq, request))
            self._rings["requests"].write(np.zeros(1))
            deadline = time.monotonic() + timeout
            while True:
                if not self._control.poll(max(0.0, deadline - time.monotonic())):
                    raise DeviceError(f"executor process: no reply to {request[0]} within {timeout} s")
                seq, ok, payload = self._control.recv()
                if seq == self._seq:
                    break
        if not ok:
            raise DeviceError(f"executor process: {request[0]} failed: {payload}")
        return payload

    def submit(self, chunk: CommandChunk) -> None:
        """Queue a chunk; the process splices it in at its next tick."""
        steps = chunk.steps
        if steps > self.config.max_chunk_steps:
            raise ValueError(f"chunk has {steps} steps, the executor process takes at most "
                             f"{self.config.max_chunk_steps} (RealtimeConfig.max_chunk_steps)")
        rec = self._chunk
        rec[0], rec[1], rec[2] = chunk.t0, chunk.dt, steps
        rec[3:3 + chunk.targets.size] = chunk.targets.ravel()
        self._rings["chunks"].write(rec)

    def feed(self, source: str, t: float) -> None:
        """A fresh sample of a watched source (camera name) valid at host time `t`."""
        try:
            index = self._sources.index(source)
        except ValueError:
            raise KeyError(f"executor process: {source!r} is not watched (guard.watch: {self._sources})") from None
        self._feed[0], self._feed[1] = index, t
        self._rings["feeds"].write(self._feed)

    def estop(self, reason: str = "operator") -> None:
        self._request("estop", reason, timeout=2.0)

    def reset(self) -> None:
        self._request("reset")

    def clear(self) -> None:
        self._request("clear", timeout=2.0)

    def diagnostics(self) -> dict[str, Any]:
        return self._request("diagnostics", timeout=2.0)

    def committed(self, name: str, t: float) -> NDArray[np.float64] | None:
        """The target the process's executor will send for arm `name` at time `t` (None: no plan);
        answered after the process's next tick, so within one tick period."""
        return self._request("committed", name, t, timeout=2.0)

    def drain(self) -> list[TickRecord]:
        """Every tick published since the previous call (oldest first)."""
        ring = self._rings.get("ticks")
        if ring is None:
            return []
        return [_unpack_tick(self.names, rec) for rec in ring.read_new()]

    def stop(self, timeout: float = 10.0) -> None:
        process, self._process = self._process, None
        if process is not None:
            if process.is_alive() and self._control is not None:
                try:
                    self._control.send((-1, ("exit",)))
                    self._rings["requests"].write(np.zeros(1))
                    self._control.poll(timeout)
                except (BrokenPipeError, OSError):
                    pass
            process.join(timeout)
            if process.is_alive():
                process.terminate()
                process.join(2.0)
        if self._control is not None:
            self._control.close()
            self._control = None
        for ring in self._rings.values():
            ring.close()
        self._rings = {}

    def __enter__(self) -> RealtimeExecutor:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
