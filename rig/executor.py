"""The chunk executor: turns `CommandChunk`s (30 Hz absolute targets) into a stream of targets at
each arm's command rate (up to 100 Hz), through the safety guard.

Each tick samples the active plan at `now + latency_s` (the command latency: a target sent now takes
effect that much later): linear position, slerp rotation (the `rig.rotations.interpolate_poses`
result, computed with the numpy quaternion helpers), linear gripper. Steps whose time has passed are
dropped; after the last step the last target is held. A chunk that ends before the sample time (all
of it has passed) is dropped and counted (`late_chunks`), one whose step 0 lies more than
`max_chunk_lead_s` ahead (a clock mix-up) is rejected and counted (`future_chunks`), and one with a
non-finite time is rejected (`bad_time_chunks`): none of them changes the running plan.

A new chunk is spliced onto the running plan. When its value at the splice time matches the target
being executed (it begins with the committed prefix the policy was given, as in real-time chunking),
it simply replaces the plan. Otherwise the executor blends from the old plan to the new one with a
smoothstep weight over at least `blend_s`, stretched so the blend adds at most `blend_max_speed`, so
the commanded target never jumps; the guard's speed limits still apply on top.

`tick(now)` does one step (lockstep use with the twin); `ExecutorThread` runs it at the command rate
with a `RateKeeper` (real time).
"""

from __future__ import annotations

import logging
import math
import os
import threading
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from rig import hardware_limits as hw
from rig.config import ConfigError
from rig.conventions import ARM_NAMES, COMMAND_DIM
from rig.drivers.base import Arm, DeviceError
from rig.params import get_float, get_int, reject_unknown
from rig.rotations import angle_between, slerp_quats
from rig.safety import GuardedCommand, SafetyGuard
from rig.schema import ArmState, CommandChunk
from rig.timing import Clock, JitterSummary, MonotonicClock, RateKeeper

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ExecutorConfig:
    """Executor tunables (config/policy.yaml, `executor:` section)."""

    command_hz: float = 100.0
    latency_s: float = 0.03
    """Command latency: each tick sends the plan's value at `now + latency_s`."""
    blend_s: float = 0.2
    """Shortest blend window when a new chunk does not start at the executing target."""
    blend_max_speed: float = 0.1
    """The window is stretched so the blend itself adds at most this linear speed (m/s)..."""
    blend_max_angular_speed: float = 0.5
    """...and at most this angular speed (rad/s) on top of the chunks' own motion."""
    match_pos_m: float = 0.002
    match_rot_rad: float = 0.01
    match_gripper: float = 0.02
    rt_priority: int = 0
    """SCHED_FIFO priority (1-99) of the executor thread on Linux; 0 keeps the normal scheduler."""
    max_chunk_lead_s: float = 0.5
    """Chunks whose step 0 lies further than this beyond the sample time are rejected."""

    def __post_init__(self) -> None:
        if not 0 <= self.rt_priority <= 99:
            raise ConfigError(f"executor.rt_priority: {self.rt_priority}, expected an integer in 0..99")
        checks = {
            "command_hz": self.command_hz > 0,
            "latency_s": self.latency_s >= 0,
            "blend_s": self.blend_s >= 0,
            "blend_max_speed": self.blend_max_speed > 0,
            "blend_max_angular_speed": self.blend_max_angular_speed > 0,
            "match_pos_m": self.match_pos_m >= 0,
            "match_rot_rad": self.match_rot_rad >= 0,
            "match_gripper": self.match_gripper >= 0,
            "max_chunk_lead_s": self.max_chunk_lead_s >= 0,
        }
        for key, ok in checks.items():
            value = getattr(self, key)
            if not (math.isfinite(value) and ok):
                kind = "positive" if key in ("command_hz", "blend_max_speed", "blend_max_angular_speed") \
                    else "non-negative"
                raise ConfigError(f"executor.{key}: {value}, expected a finite {kind} number")

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], where: str = "executor") -> ExecutorConfig:
        """Read and bound every setting (rig/hardware_limits.py); errors name `where.<key>`."""
        reject_unknown(data, set(cls.__dataclass_fields__), where)
        kwargs: dict[str, Any] = {}
        for key, (low, high, positive) in _BOUNDS.items():
            if key in data:
                kwargs[key] = get_float(data, key, where, low=low, high=high, positive=positive)
        if "rt_priority" in data:
            kwargs["rt_priority"] = get_int(data, "rt_priority", where, low=0, high=99)
        return cls(**kwargs)


_BOUNDS: dict[str, tuple[float | None, float | None, bool]] = {
    # key: (low, high, strictly positive)
    "command_hz": (None, hw.FLEXIV_RT_HZ, True),
    "latency_s": (0.0, hw.COMMAND_LATENCY_MAX_S, False),
    "blend_s": (0.0, 5.0, False),
    "blend_max_speed": (None, hw.RIZON4S_MAX_LINEAR_VEL, True),
    "blend_max_angular_speed": (None, hw.RIZON4S_MAX_ANGULAR_VEL, True),
    "match_pos_m": (0.0, 0.05, False),
    "match_rot_rad": (0.0, 0.5, False),
    "match_gripper": (0.0, 0.5, False),
    "max_chunk_lead_s": (0.0, 5.0, False),
}
"""Ranges of the executor settings read from configuration."""


class ArmPlan:
    """A time-indexed target trajectory of one arm: times (N,), targets (N, 8)."""

    def __init__(self, times: NDArray[np.float64], targets: NDArray[np.float64]) -> None:
        if times.ndim != 1 or targets.shape != (times.shape[0], COMMAND_DIM) or times.shape[0] == 0:
            raise ValueError(f"ArmPlan: times {times.shape} and targets {targets.shape} do not match (N,), (N, 8)")
        self.times = times
        self.targets = targets

    @property
    def end(self) -> float:
        return float(self.times[-1])

    def drop_before(self, t: float) -> None:
        """Forget steps whose time has passed, keeping the one bracketing `t` from below."""
        idx = int(np.searchsorted(self.times, t, side="right")) - 1
        if idx > 0:
            self.times = self.times[idx:]
            self.targets = self.targets[idx:]

    def sample(self, t: float) -> NDArray[np.float64]:
        """(8,) target at time t; clamped to the first/last step outside the plan.

        Same interpolation as `rig.rotations.interpolate_poses` (linear position, slerp rotation between
        the bracketing steps), done with the numpy quaternion helpers: this runs every tick per arm.
        """
        times, targets = self.times, self.targets
        if t <= times[0] or times.shape[0] == 1:
            return targets[0].copy()
        if t >= times[-1]:
            return targets[-1].copy()
        hi = int(np.searchsorted(times, t, side="right"))
        lo = hi - 1
        alpha = (t - times[lo]) / (times[hi] - times[lo])
        return blend_targets(targets[lo], targets[hi], alpha)


def blend_targets(a: NDArray[np.float64], b: NDArray[np.float64], w: float) -> NDArray[np.float64]:
    """(1-w)*a + w*b for position and gripper, slerp for rotation (w in [0, 1])."""
    out = (1.0 - w) * a + w * b
    out[3:7] = slerp_quats(a[3:7], b[3:7], w)
    return out


def _smoothstep(x: float) -> float:
    x = min(max(x, 0.0), 1.0)
    return x * x * (3.0 - 2.0 * x)


@dataclass
class _ArmTrack:
    plan: ArmPlan | None = None
    previous: ArmPlan | None = None  # plan being blended out
    prev_frozen: NDArray[np.float64] | None = None  # fixed target blended out (no previous plan)
    blend_start: float = 0.0
    blend_end: float = 0.0
    last_target: NDArray[np.float64] | None = None

    def sample(self, t: float) -> NDArray[np.float64] | None:
        if self.plan is None:
            return None
        new = self.plan.sample(t)
        # Pure: sampling ahead (committed(), the splice check) must not end a blend early.
        if t >= self.blend_end or (self.previous is None and self.prev_frozen is None):
            return new
        old = self.previous.sample(t) if self.previous is not None else self.prev_frozen
        assert old is not None
        w = _smoothstep((t - self.blend_start) / max(self.blend_end - self.blend_start, 1e-9))
        return blend_targets(old, new, w)


@dataclass(frozen=True)
class TickResult:
    """What one tick did: states read, commands issued (per arm), the sample time used."""

    now: float
    sample_t: float
    states: dict[str, ArmState]
    commands: dict[str, GuardedCommand]


@dataclass
class ExecutorStats:
    """Counters for diagnostics: chunks accepted/spliced/blended/late, ticks, read errors."""

    counters: Counter[str] = field(default_factory=Counter)
    last_chunk_t0: float = float("nan")
    last_splice_offset: dict[str, float] = field(default_factory=dict)


class ChunkExecutor:
    """Holds one plan per arm and streams it through the guard; see the module doc."""

    def __init__(
        self,
        config: ExecutorConfig,
        guard: SafetyGuard,
        arms: Mapping[str, Arm] | None = None,
    ) -> None:
        self.config = config
        self.guard = guard
        self.arms = dict(arms if arms is not None else guard.arms)
        unknown = sorted(set(self.arms) - set(ARM_NAMES))
        if unknown:
            raise ConfigError(f"executor: unknown arm name(s) {unknown}, expected {list(ARM_NAMES)}")
        self._tracks = {name: _ArmTrack() for name in self.arms}
        self.stats = ExecutorStats()
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ chunks

    def submit(self, chunk: CommandChunk, now: float) -> dict[str, str]:
        """Splice `chunk` onto the running plans; returns per arm 'start', 'splice' or 'blend', or
        'late' / 'future' / 'bad_time' for every arm when the chunk was refused (see the module doc)."""
        t_s = now + self.config.latency_s
        times = chunk.times()
        outcome: dict[str, str] = {}
        refused = ""
        if not (math.isfinite(t_s) and np.all(np.isfinite(times))):
            refused, counter = "bad_time", "bad_time_chunks"
            log.warning("executor: chunk t0=%r or now=%r is not finite; chunk rejected", chunk.t0, now)
        elif times[-1] < t_s:
            refused, counter = "late", "late_chunks"
            log.warning("executor: chunk t0=%.3f ends %.3f s before the sample time; dropped",
                        chunk.t0, t_s - times[-1])
        elif times[0] > t_s + self.config.max_chunk_lead_s:
            refused, counter = "future", "future_chunks"
            log.warning("executor: chunk t0=%.3f starts %.3f s after the sample time (limit %.3f s); rejected",
                        chunk.t0, times[0] - t_s, self.config.max_chunk_lead_s)
        if refused:
            with self._lock:
                self.stats.counters[counter] += 1
            return {name: refused for name in self._tracks}
        with self._lock:
            self.stats.counters["chunks"] += 1
            self.stats.last_chunk_t0 = chunk.t0
            for name, track in self._tracks.items():
                new = ArmPlan(times.copy(), chunk.arm(name).copy())
                new.drop_before(t_s)
                if t_s >= track.blend_end:
                    track.previous, track.prev_frozen = None, None
                current = track.sample(t_s)  # what the running plan would send at the splice time
                if current is None:
                    track.plan, track.previous, track.prev_frozen = new, None, None
                    track.blend_end = -math.inf
                    outcome[name] = "start"
                    continue
                start = new.sample(t_s)
                offset = float(np.linalg.norm(start[:3] - current[:3]))
                angle = float(angle_between(start[3:7], current[3:7]))
                self.stats.last_splice_offset[name] = offset
                matches = (
                    offset <= self.config.match_pos_m
                    and angle <= self.config.match_rot_rad
                    and abs(start[7] - current[7]) <= self.config.match_gripper
                )
                if matches or self.config.blend_s == 0.0:
                    track.plan, track.previous, track.prev_frozen = new, None, None
                    track.blend_end = -math.inf
                    outcome[name] = "splice"
                else:
                    # Blend out whatever is executing now (a plan, or a blend of plans frozen at its value).
                    if track.plan is not None and (track.previous is None and track.prev_frozen is None):
                        track.previous, track.prev_frozen = track.plan, None
                    else:
                        track.previous, track.prev_frozen = None, current
                    track.plan = new
                    track.blend_start = t_s
                    track.blend_end = t_s + self._blend_duration(offset, angle)
                    outcome[name] = "blend"
                self.stats.counters[outcome[name]] += 1
        return outcome

    def _blend_duration(self, offset: float, angle: float) -> float:
        # The smoothstep weight's peak slope is 1.5 / duration.
        cfg = self.config
        return max(cfg.blend_s, 1.5 * offset / cfg.blend_max_speed, 1.5 * angle / cfg.blend_max_angular_speed)

    def clear(self) -> None:
        """Forget every plan (after an e-stop or on stop): the arms hold until a new chunk arrives."""
        with self._lock:
            for name in self._tracks:
                self._tracks[name] = _ArmTrack()

    def has_plan(self) -> bool:
        with self._lock:
            return any(t.plan is not None for t in self._tracks.values())

    def committed(self, name: str, t: float) -> NDArray[np.float64] | None:
        """The target the executor will send for arm `name` at sample time `t` (for RTC prefixes)."""
        with self._lock:
            return self._tracks[name].sample(t)

    # ------------------------------------------------------------------ ticking

    def tick(self, now: float) -> TickResult:
        """Read every arm, sample each plan at `now + latency_s`, pass the targets through the guard.

        A state is stamped when its driver hands it out, so a read that waited (the twin's lock under
        load) returns a stamp later than the tick's `now`: each state is judged at its receipt, `now`
        plus the time the reads took on the guard's clock (the executor's clock; only its elapsed time
        is used, so a caller on another time base keeps its own), and the rest of the tick runs at the
        time after the reads."""
        states: dict[str, ArmState] = {}
        started = self.guard.clock.now()
        tick_start = now
        for name, arm in self.arms.items():
            try:
                state = arm.read_state()
            except DeviceError as exc:
                self.stats.counters["read_errors"] += 1
                log.warning("executor: arm %s: read_state failed: %s", name, exc)
                continue
            states[name] = state
            now = tick_start + max(0.0, self.guard.clock.now() - started)
            self.guard.observe_arm_state(state, now)
        t_s = now + self.config.latency_s
        commands: dict[str, GuardedCommand] = {}
        with self._lock:
            targets = {}
            for name, track in self._tracks.items():
                if track.plan is not None:
                    track.plan.drop_before(t_s)
                    if t_s >= track.blend_end:
                        track.previous, track.prev_frozen = None, None
                    elif track.previous is not None:
                        track.previous.drop_before(t_s)
                target = track.sample(t_s)
                if target is not None:
                    track.last_target = target
                    targets[name] = target
        for name, target in targets.items():
            commands[name] = self.guard.command(name, target, now)
        self.stats.counters["ticks"] += 1
        return TickResult(now, t_s, states, commands)


class ExecutorThread:
    """Runs `executor.tick` at `executor.config.command_hz` on a daemon thread with a RateKeeper.

    An exception escaping a tick latches the guard's e-stop (reason names the exception) and ends the
    loop; `stop()` joins the thread. `on_tick`, when given, receives each TickResult (state publishing).
    """

    def __init__(
        self,
        executor: ChunkExecutor,
        clock: Clock | None = None,
        on_tick: Any = None,
        name: str = "chunk-executor",
    ) -> None:
        self.executor = executor
        self.clock: Clock = clock if clock is not None else MonotonicClock()
        self.rate = RateKeeper(executor.config.command_hz, self.clock)
        self.on_tick = on_tick
        self.error: BaseException | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> ExecutorThread:
        self._thread.start()
        return self

    def stop(self, timeout: float = 2.0) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def jitter(self) -> JitterSummary:
        return self.rate.stats.summary()

    def _set_priority(self) -> None:
        prio = self.executor.config.rt_priority
        if prio <= 0:
            return
        try:  # affects the calling thread only (Linux); needs CAP_SYS_NICE or an rtprio limit
            os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(prio))
        except (AttributeError, PermissionError, OSError) as exc:
            log.warning("executor thread: cannot use SCHED_FIFO priority %d (%s); running with the normal "
                        "scheduler (see docs/control.md)", prio, exc)

    def _run(self) -> None:
        self._set_priority()
        while not self._stop.is_set():
            self.rate.wait()
            try:
                result = self.executor.tick(self.clock.now())
                if self.on_tick is not None:
                    self.on_tick(result)
            except Exception as exc:  # any escape stops motion: the loop cannot be trusted any more
                self.error = exc
                log.exception("executor thread: tick failed; latching e-stop")
                self.executor.guard.estop(f"executor error: {exc!r}", self.clock.now())
                return

    def __enter__(self) -> ExecutorThread:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
