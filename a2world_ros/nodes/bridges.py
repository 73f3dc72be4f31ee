"""Plain components behind the ROS nodes (no rclpy): each turns devices or message inputs into
rosbags messages to publish, so the nodes only wire topics, timers and services to these methods.

- `CameraBridge`: new frames of each camera -> Image + CameraInfo stamped with the capture time.
- `ArmBridge`: the chunk executor and safety guard running on the arms; states -> JointState,
  PoseStamped, gripper JointState; command trajectories in; start/stop/reset/e-stop; diagnostics.
- `PolicyBridge`: image/state messages -> synchronized `Observation`s for a `PolicyLoop`; its chunks
  -> MultiDOFJointTrajectory + gripper JointTrajectory; start/stop; diagnostics.

Messages are rosbags dataclasses from `rig.dataformats.ros_messages`; `convert.to_ros` makes rclpy
objects of them at the node boundary. Stamps: `ClockMap` maps host monotonic sample times to ROS time.
"""

from __future__ import annotations

import logging
import math
import threading
from collections import deque
from collections.abc import Mapping
from typing import Any

from rig import topics
from rig.conventions import ARM_NAMES, CAMERA_NAMES, POLICY_HZ
from rig.dataformats import ros_messages as rm
from rig.drivers.base import Arm, Camera, DeviceError, Gripper
from rig.executor import ChunkExecutor, ExecutorConfig, ExecutorThread, TickResult
from rig.safety import GuardConfig, SafetyGuard
from rig.schema import ArmState, CameraFrame, CommandChunk, Observation, SchemaError
from rig.timing import Clock, MonotonicClock, RateMeter

from .observation_sync import ObservationSync
from .policy_loop import PolicyLoop

log = logging.getLogger(__name__)

Outgoing = list[tuple[str, Any]]
"""(topic, rosbags message) pairs to publish."""


class CameraBridge:
    """Publishes each camera's newest frame once: Image (rgb8) + CameraInfo with the same stamp."""

    def __init__(self, cameras: Mapping[str, Camera], clock_map: rm.ClockMap, distro: str = "humble",
                 clock: Clock | None = None) -> None:
        self.cameras = dict(cameras)
        self.clock_map = clock_map
        self.distro = distro
        self.clock: Clock = clock or MonotonicClock()
        self._last_t = {name: -math.inf for name in self.cameras}
        self.rates = {name: RateMeter() for name in self.cameras}
        self.latency = {name: math.nan for name in self.cameras}

    def poll(self) -> Outgoing:
        """Messages for every frame newer than the last one published per camera."""
        out: Outgoing = []
        now = self.clock.now()
        for name, cam in self.cameras.items():
            frame = cam.latest()
            if frame is None or frame.t <= self._last_t[name]:
                continue
            self._last_t[name] = frame.t
            self.rates[name].tick(now)
            self.latency[name] = now - frame.t
            out.extend(self.frame_messages(name, frame, cam))
        return out

    def frame_messages(self, name: str, frame: CameraFrame, cam: Camera) -> Outgoing:
        stamp = self.clock_map.to_ros_ns(frame.t)
        frame_id = rm.camera_frame(name)
        return [
            (topics.image(name), rm.image_msg(frame.color, stamp, frame_id, "rgb8", self.distro)),
            (topics.camera_info(name), rm.camera_info_msg(cam.intrinsics, stamp, frame_id,
                                                          width=frame.color.shape[1], height=frame.color.shape[0],
                                                          distro=self.distro)),
        ]

    def newest(self) -> dict[str, float]:
        """Capture time of the last frame published per camera (for the guard's watchdog in-process)."""
        return dict(self._last_t)

    def diagnostics(self) -> list[rm.DiagnosticEntry]:
        now = self.clock.now()
        out = []
        for name in self.cameras:
            rate = self.rates[name].rate(now)
            age = now - self._last_t[name]
            level = "OK" if age < 0.1 else ("WARN" if age < 1.0 else "ERROR")
            out.append(rm.diagnostic_entry(
                f"cameras/{name}", level, "streaming" if level == "OK" else f"no frame for {age:.2f} s",
                {"rate_hz": rate, "frame_age_s": age, "publish_latency_s": self.latency[name]},
            ))
        return out


WALL_STEP_WARN_S = 0.5
"""A wall-clock step larger than this since the boot's time base was captured is reported (WARN)."""


class ArmBridge:
    """Executor + guard on the arms, with the node-facing inputs and outputs; see the module doc.

    Chunks are accepted only while started (`start()`); an e-stop or `stop()` clears the plans so the
    arms hold, and after an e-stop or fault `reset()` is needed before `start()` succeeds.
    """

    def __init__(
        self,
        arms: Mapping[str, Arm],
        grippers: Mapping[str, Gripper],
        executor_config: ExecutorConfig,
        guard_config: GuardConfig,
        clock_map: rm.ClockMap,
        clock: Clock | None = None,
        distro: str = "humble",
        default_dt: float = 1.0 / POLICY_HZ,
    ) -> None:
        self._init_io(clock, clock_map, distro, default_dt, tuple(arms))
        self.grippers = dict(grippers)
        self.guard = SafetyGuard(guard_config, arms, grippers, self.clock)
        self.executor = ChunkExecutor(executor_config, self.guard)
        self.thread: ExecutorThread | None = None
        self._ticks: deque[TickResult] = deque(maxlen=1000)

    def _init_io(self, clock: Clock | None, clock_map: rm.ClockMap, distro: str, default_dt: float,
                 arms: tuple[str, ...]) -> None:
        """The node-facing state, whichever process runs the executor."""
        self.clock: Clock = clock or MonotonicClock()
        self.clock_map = clock_map
        self.distro = distro
        self.default_dt = default_dt
        self.started = False
        self._pending: dict[str, tuple[int, Any]] = {}
        self._lock = threading.Lock()
        self.state_rates = {name: RateMeter() for name in arms}
        self.chunk_rate = RateMeter()
        self.chunk_latency = math.nan  # receipt time minus the chunk's step-0 time
        self.rejected_chunks = 0

    # ------------------------------------------------------------------ control loop

    def start_control(self) -> None:
        """Start the real-time executor thread (it streams nothing until a chunk is accepted)."""
        if self.thread is None or not self.thread.running:
            self.thread = ExecutorThread(self.executor, self.clock, on_tick=self._ticks.append).start()

    def stop_control(self) -> None:
        if self.thread is not None:
            self.thread.stop()

    def tick(self, now: float) -> TickResult:
        """One executor step (lockstep use, e.g. the twin); the result is queued for publishing."""
        result = self.executor.tick(now)
        self._ticks.append(result)
        return result

    # ------------------------------------------------------------------ outputs

    def drain_states(self) -> Outgoing:
        """JointState + PoseStamped of every arm state read since the last call."""
        out: Outgoing = []
        while self._ticks:
            result = self._ticks.popleft()
            out.extend(self.state_messages(result.states))
        return out

    def state_messages(self, states: Mapping[str, ArmState]) -> Outgoing:
        """JointState + PoseStamped of each arm state (counted in the state rates)."""
        out: Outgoing = []
        for name, state in states.items():
            stamp = self.clock_map.to_ros_ns(state.t)
            self.state_rates[name].tick(state.t)
            out.append((topics.joint_states(name), rm.arm_joint_state_msg(state, stamp, self.distro)))
            out.append((topics.tcp_pose(name), rm.tcp_pose_msg(state.tcp_pose, stamp, rm.base_frame(name),
                                                               self.distro)))
        return out

    def poll_grippers(self) -> Outgoing:
        """Gripper states (JointState) of every gripper; also feeds the guard's rate limiter."""
        out: Outgoing = []
        for name, gripper in self.grippers.items():
            try:
                state = gripper.read_state()
            except DeviceError as exc:
                log.warning("gripper %s: read_state failed: %s", name, exc)
                continue
            self.guard.observe_gripper(name, state.opening)
            out.append((topics.gripper_state(name),
                        rm.gripper_state_msg(state, self.clock_map.to_ros_ns(state.t), self.distro)))
        return out

    # ------------------------------------------------------------------ inputs

    def on_camera_stamp(self, camera: str, stamp_ns: int) -> None:
        """A camera frame was captured at ROS time `stamp_ns` (feeds the stale-data watchdog)."""
        self.guard.feed(camera, self.clock_map.to_monotonic(stamp_ns))

    def on_camera_time(self, camera: str, t: float) -> None:
        """Same as `on_camera_stamp` with host monotonic time (in-process cameras, the twin)."""
        self.guard.feed(camera, t)

    def on_command_poses(self, msg: Any) -> str:
        return self._on_command("poses", msg)

    def on_command_grippers(self, msg: Any) -> str:
        return self._on_command("grippers", msg)

    def _on_command(self, kind: str, msg: Any) -> str:
        """Pair the two halves of a chunk by header stamp; submit when both are there.

        Returns what happened: 'waiting', 'ignored' (not started), 'rejected' (bad chunk) or the
        executor's outcome for the left arm ('start', 'splice', 'blend').
        """
        chunk = self._pair_command(kind, msg)
        if isinstance(chunk, str):
            return chunk
        now = self.clock.now()
        outcome = self.executor.submit(chunk, now)
        return outcome.get(ARM_NAMES[0], next(iter(outcome.values()), "none"))

    def _pair_command(self, kind: str, msg: Any) -> CommandChunk | str:
        """The chunk once both halves with one stamp are in (counted in the chunk rate), else what
        happened: 'waiting', 'ignored' (not started) or 'rejected' (bad chunk)."""
        stamp = rm.stamp_ns(msg.header.stamp)
        with self._lock:
            self._pending[kind] = (stamp, msg)
            other = self._pending.get("grippers" if kind == "poses" else "poses")
            if other is None or other[0] != stamp:
                return "waiting"
            poses, grippers = self._pending.pop("poses")[1], self._pending.pop("grippers")[1]
        if not self.started:
            return "ignored"
        try:
            chunk = rm.command_chunk_from_msgs(poses, grippers, self.clock_map, self.default_dt)
        except (rm.MessageError, SchemaError) as exc:
            self.rejected_chunks += 1
            log.warning("arms: rejected command chunk: %s", exc)
            return "rejected"
        now = self.clock.now()
        self.chunk_rate.tick(now)
        self.chunk_latency = now - chunk.t0
        return chunk

    # ------------------------------------------------------------------ operator

    def start(self) -> tuple[bool, str]:
        try:
            why = self._not_ready()
        except DeviceError as exc:
            return False, f"not started: {exc}"
        if why:
            return False, f"not started: {why}; call reset first"
        self.started = True
        return True, "accepting command chunks"

    def stop(self) -> tuple[bool, str]:
        self.started = False
        try:
            self._clear()
        except DeviceError as exc:
            return False, f"stop failed: {exc}"
        return True, "stopped: arms hold their last target"

    def reset(self) -> tuple[bool, str]:
        try:
            self._clear()
            self._reset_guard()
        except DeviceError as exc:
            return False, f"reset failed: {exc}"
        return True, "reset: latches cleared; call start to accept chunks"

    def estop(self, active: bool, reason: str = "estop topic") -> None:
        if not active:
            return  # releasing the button does not un-latch; reset does
        self.started = False
        self._estop(reason)

    # Where the executor and guard run (this process here; ProcessArmBridge overrides these).
    def _not_ready(self) -> str:
        """Why chunks may not be accepted ('' when ready)."""
        if self.guard.ready:
            return ""
        return f"e-stop ({self.guard.diagnostics(self.clock.now())['estop']})" if self.guard.estopped \
            else f"faults {self.guard.faults()}"

    def _clear(self) -> None:
        self.executor.clear()

    def _reset_guard(self) -> None:
        self.guard.reset(self.clock.now())

    def _estop(self, reason: str) -> None:
        self.executor.clear()
        self.guard.estop(reason, self.clock.now())

    # ------------------------------------------------------------------ diagnostics

    @property
    def watched_sources(self) -> tuple[str, ...]:
        """What the guard's stale-data watchdog watches (camera names and `arm:<name>`)."""
        return tuple(self.guard.watchdog.sources)

    def committed(self, name: str, t: float) -> Any:
        """The target the executor will send for arm `name` at time `t` (the RTC prefix), or None."""
        return self.executor.committed(name, t)

    def diagnostics(self) -> list[rm.DiagnosticEntry]:
        now = self.clock.now()
        jitter = self.thread.jitter().as_dict() if self.thread is not None else None
        return self.arm_diagnostics(now, self.guard.diagnostics(now), dict(self.executor.stats.counters), jitter)

    def arm_diagnostics(self, now: float, g: Mapping[str, Any], counters: Mapping[str, Any],
                        jitter: Mapping[str, float] | None,
                        extra: Mapping[str, Any] | None = None) -> list[rm.DiagnosticEntry]:
        """The `arms` entry from the guard's diagnostics, the executor's counters and the tick jitter
        (`JitterSummary.as_dict()`), wherever the executor runs."""
        level = "ERROR" if (g["estop"] or g["faults"]) else ("WARN" if g["stale"] else "OK")
        if g["estop"]:
            message = f"e-stop latched: {g['estop']}"
        elif g["faults"]:
            message = "fault: " + "; ".join(f"{k}: {v}" for k, v in g["faults"].items())
        elif g["stale"]:
            message = "holding: stale " + ", ".join(g["stale"])
        else:
            message = "started" if self.started else "idle (call /arms/start)"
        values: dict[str, Any] = {
            "started": self.started,
            "chunk_rate_hz": self.chunk_rate.rate(now),
            "chunk_latency_s": self.chunk_latency,
            "rejected_chunks": self.rejected_chunks,
        }
        values.update({f"executor.{k}": v for k, v in counters.items()})
        values.update({f"guard.{k}": v for k, v in g["counters"].items()})
        values.update({f"age_s.{k}": v for k, v in g["ages"].items()})
        values.update({f"refused_samples.{k}": v for k, v in g["refused_samples"].items()})
        # Runtime check of the time-base convention: stamps stay consistent across nodes after a wall
        # step (one offset per boot), but the recording's wall-clock stamps are off by this much.
        step = self.clock_map.wall_step_s()
        values["wall_clock_step_s"] = step
        if abs(step) > WALL_STEP_WARN_S and level == "OK":
            level, message = "WARN", f"{message}; wall clock stepped {step:+.3f} s since the time base was set"
        if jitter is not None:
            values.update({"tick_jitter_p50_s": jitter["jitter_p50_s"], "tick_jitter_p99_s": jitter["jitter_p99_s"],
                           "tick_overruns": int(jitter["overruns"]), "tick_period_s": jitter["mean_period_s"]})
        for name, meter in self.state_rates.items():
            values[f"state_rate_hz.{name}"] = meter.rate(self.clock.now())
        values.update(extra or {})
        last = g["last_event"]
        if last is not None:
            values["last_intervention"] = f"{last.arm}: {last.reason}: {last.detail}"
        return [rm.diagnostic_entry("arms", level, message, values)]


NO_POLICY = "no policy loaded"


class PolicyBridge:
    """Observation messages in, chunk messages out, around an injected `PolicyLoop`.

    `loop` may be None (no policy given): the bridge is idle, refuses `start()` with the reason and
    reports it in its diagnostics until `load()` hands it one.
    """

    def __init__(
        self,
        loop: PolicyLoop | None,
        clock_map: rm.ClockMap,
        instruction: str = "",
        slop_s: float = 0.02,
        state_slop_s: float = 0.02,
        gripper_slop_s: float = 0.1,
        cameras: tuple[str, ...] = CAMERA_NAMES,
        arms: tuple[str, ...] = ARM_NAMES,
        clock: Clock | None = None,
        distro: str = "humble",
    ) -> None:
        self.loop = loop
        self.clock_map = clock_map
        self.clock: Clock = clock or MonotonicClock()
        self.distro = distro
        self.sync = ObservationSync(cameras, arms, slop_s, state_slop_s, gripper_slop_s, task=instruction)
        self.running = False
        self._pose_msgs: dict[str, Any] = {}
        self._joint_msgs: dict[str, Any] = {}
        self.obs_rate = RateMeter()
        self.chunk_rate = RateMeter()
        self.obs_latency = math.nan  # time from the observation's capture to handing it to the loop
        self.last_skew = math.nan
        self.errors = 0
        self.load_error = ""  # why the last attempt to load a policy failed (shown while none is loaded)

    # ------------------------------------------------------------------ inputs

    def on_image(self, camera: str, msg: Any) -> bool:
        """An Image message; returns True when it completed an observation handed to the loop."""
        try:
            frame = CameraFrame(camera=camera, t=self.clock_map.to_monotonic(rm.stamp_ns(msg.header.stamp)),
                                color=rm.image_array(msg))
        except (rm.MessageError, SchemaError) as exc:
            self.errors += 1
            log.warning("policy: dropped image of %s: %s", camera, exc)
            return False
        return self._emit(self.sync.add_frame(frame))

    def _emit(self, obs: Observation | None) -> bool:
        if obs is None or not self.running or self.loop is None:
            return False
        now = self.clock.now()
        self.obs_rate.tick(now)
        self.obs_latency = now - obs.t
        self.last_skew = obs.max_skew()
        self.loop.on_observation(obs)
        return True

    def on_joint_state(self, arm: str, msg: Any) -> None:
        self._joint_msgs[arm] = msg
        self._pair_arm(arm)

    def on_tcp_pose(self, arm: str, msg: Any) -> None:
        self._pose_msgs[arm] = msg
        self._pair_arm(arm)

    def _pair_arm(self, arm: str) -> None:
        joint, pose = self._joint_msgs.get(arm), self._pose_msgs.get(arm)
        if joint is None or pose is None or rm.stamp_ns(joint.header.stamp) != rm.stamp_ns(pose.header.stamp):
            return
        try:
            self._emit(self.sync.add_arm_state(rm.arm_state_from_msgs(arm, joint, pose, self.clock_map)))
        except (rm.MessageError, SchemaError) as exc:
            self.errors += 1
            log.warning("policy: dropped state of arm %s: %s", arm, exc)

    def on_gripper_state(self, arm: str, msg: Any) -> None:
        try:
            self._emit(self.sync.add_gripper_state(rm.gripper_state_from_msg(arm, msg, self.clock_map)))
        except (rm.MessageError, SchemaError) as exc:
            self.errors += 1
            log.warning("policy: dropped gripper state of %s: %s", arm, exc)

    # ------------------------------------------------------------------ outputs

    def poll_chunk(self) -> Outgoing:
        """The loop's next chunk as the two command messages (empty when none or not running)."""
        if not self.running or self.loop is None:
            return []
        chunk = self.loop.next_chunk()
        if chunk is None:
            return []
        self.chunk_rate.tick(self.clock.now())
        poses, grippers = rm.command_chunk_msgs(chunk, self.clock_map, self.distro)
        return [(topics.COMMAND_POSES, poses), (topics.COMMAND_GRIPPERS, grippers)]

    # ------------------------------------------------------------------ operator

    def no_policy_reason(self) -> str:
        detail = f" ({self.load_error})" if self.load_error else ""
        return f"{NO_POLICY}{detail}: set the `policy` parameter (checkpoint directory or tcp://HOST:PORT)"

    def load(self, loop: PolicyLoop) -> PolicyLoop | None:
        """Take a (new) loop, stopped; returns the previous one for the caller to close."""
        self.stop("policy replaced")
        previous, self.loop = self.loop, loop
        self.load_error = ""
        return previous

    def start(self) -> tuple[bool, str]:
        if self.loop is None:
            return False, self.no_policy_reason()
        self.running = True
        if hasattr(self.loop, "start"):
            self.loop.start()
        return True, "policy running"

    def stop(self, reason: str = "operator") -> tuple[bool, str]:
        was = self.running
        self.running = False
        if was and self.loop is not None and hasattr(self.loop, "stop"):
            self.loop.stop()
        return True, f"policy stopped ({reason})"

    def estop(self, active: bool) -> None:
        if active:
            self.stop("e-stop")

    def diagnostics(self) -> list[rm.DiagnosticEntry]:
        now = self.clock.now()
        values: dict[str, Any] = {
            "running": self.running,
            "observation_rate_hz": self.obs_rate.rate(now),
            "observation_latency_s": self.obs_latency,
            "observation_skew_s": self.last_skew,
            "chunk_rate_hz": self.chunk_rate.rate(now),
            "incomplete_sets": self.sync.incomplete,
            "dropped_messages": self.errors,
        }
        if self.loop is None:
            return [rm.diagnostic_entry("policy", "WARN", self.no_policy_reason(), values)]
        if hasattr(self.loop, "diagnostics"):
            values.update({f"loop.{k}": v for k, v in dict(self.loop.diagnostics()).items()})
        level = "OK" if not self.running or self.obs_rate.rate(now) > 0 else "WARN"
        message = ("running" if level == "OK" else "running but no synchronized observations") \
            if self.running else "stopped (call /policy/start)"
        return [rm.diagnostic_entry("policy", level, message, values)]
