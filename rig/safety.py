"""The safety guard between the chunk executor and the arm and gripper drivers.

Per arm it clamps every target to a workspace box in the arm's base frame, to maximum linear and
angular speed and acceleration (per tick, relative to the previously *commanded* pose, so the guard's
own output is what is limited), and the gripper to a range and a rate. It holds (re-sends the last
safe pose) on non-finite or malformed targets and when the stale-data watchdog sees no fresh camera
frame or arm state within its timeout. An e-stop latches: the arms are stopped and nothing is sent
until `reset()`. An arm fault stops that arm, is reported, and also needs `reset()`.

Time: every time is host monotonic seconds (docs/control.md, "Time base"). A sample stamped later than
the guard's clock plus `future_tolerance_s`, or with a non-finite stamp, is refused and counted
(`future_stamp`, `non_finite_stamp`); a command with a non-finite `now` is refused (`bad_time`). The
guard never commands from an arm state older than `stale_timeout_s`: after `reset()` it waits for a
fresh state and starts from it, a hold with no fresh arm state sends nothing, and the first gripper
command waits for a measured opening so the rate limit has a start.

Every intervention is counted per reason and appended to a bounded event log; Python logging gets
the first occurrence of each (arm, reason) and then at most one line per `log_interval_s`.
"""

from __future__ import annotations

import logging
import math
import threading
from collections import Counter, deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from rig import hardware_limits as hw
from rig.config import ConfigError
from rig.conventions import ARM_NAMES, CAMERA_NAMES, COMMAND_DIM
from rig.drivers.base import Arm, DeviceError, Gripper
from rig.params import get_float, get_floats, get_int
from rig.rotations import (
    angle_between,
    normalize_quat,
    quat_conjugate,
    quat_multiply,
    quat_to_rotvec,
    rotvec_to_quat,
)
from rig.schema import ArmState
from rig.timing import Clock, MonotonicClock

log = logging.getLogger(__name__)

_LIMIT_BOUNDS = {
    "max_linear_speed": hw.RIZON4S_MAX_LINEAR_VEL,
    "max_angular_speed": hw.RIZON4S_MAX_ANGULAR_VEL,
    "max_linear_acc": hw.RIZON4S_MAX_LINEAR_ACC,
    "max_angular_acc": hw.MAX_ANGULAR_ACC,
    "gripper_max_rate": hw.GRIPPER_MAX_RATE,
    "max_step_dt": hw.MAX_STEP_DT_MAX_S,
}
"""Upper bounds of the per-arm limits read from configuration (rig/hardware_limits.py cites them)."""

QUAT_NORM_TOL = 0.05
"""Targets whose quaternion norm is further than this from 1 are malformed and rejected (hold)."""


@dataclass(frozen=True)
class ArmLimits:
    """Limits for one arm; positions in that arm's base frame (metres), angles in radians."""

    workspace_min: tuple[float, float, float]
    workspace_max: tuple[float, float, float]
    max_linear_speed: float
    max_angular_speed: float
    max_linear_acc: float
    max_angular_acc: float
    gripper_min: float = 0.0
    gripper_max: float = 1.0
    gripper_max_rate: float = 2.0
    """Opening units per second (1.0 = full stroke per second)."""
    max_step_dt: float = 0.02
    """Longest interval a single command may cover; bounds the step after a pause."""

    def __post_init__(self) -> None:
        for axis in range(3):
            if self.workspace_min[axis] >= self.workspace_max[axis]:
                raise ConfigError(
                    f"workspace_min[{axis}]={self.workspace_min[axis]} is not below "
                    f"workspace_max[{axis}]={self.workspace_max[axis]}"
                )
        if not 0.0 <= self.gripper_min < self.gripper_max <= 1.0:
            raise ConfigError(f"gripper range [{self.gripper_min}, {self.gripper_max}], expected 0 <= min < max <= 1")

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], where: str) -> ArmLimits:
        """Build from a YAML mapping; errors name `where.<key>`."""
        known = {f for f in cls.__dataclass_fields__}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"{where}: unknown keys {unknown} (known: {sorted(known)})")
        for key in ("workspace_min", "workspace_max", "max_linear_speed", "max_angular_speed",
                    "max_linear_acc", "max_angular_acc"):
            if key not in data:
                raise ConfigError(f"{where}: missing key {key!r}")
        kwargs: dict[str, Any] = {}
        for key in ("workspace_min", "workspace_max"):
            box = get_floats(data, key, where, 3)
            for i, v in enumerate(box):
                if abs(v) > hw.WORKSPACE_ABS_MAX_M:
                    raise ConfigError(f"{where}.{key}[{i}]: {v} m, expected within +-{hw.WORKSPACE_ABS_MAX_M} m of "
                                      f"the base (Rizon 4S reach {hw.RIZON4S_REACH_M} m)")
            kwargs[key] = box
        for key, high in _LIMIT_BOUNDS.items():
            if key in data:
                kwargs[key] = get_float(data, key, where, positive=True, high=high)
        for key in ("gripper_min", "gripper_max"):
            if key in data:
                kwargs[key] = get_float(data, key, where, low=0.0, high=1.0)
        try:
            return cls(**kwargs)
        except ConfigError as exc:
            raise ConfigError(f"{where}: {exc}") from None


@dataclass(frozen=True)
class GuardConfig:
    """Guard configuration: per-arm limits, the watchdog timeout and the sources it watches."""

    arms: Mapping[str, ArmLimits]
    stale_timeout_s: float = 0.1
    watch: tuple[str, ...] = ()
    """Sources that must stay fresh: camera names and `arm:<name>` (the arms are always watched)."""
    gripper_deadband: float = 0.005
    """Gripper commands are sent only when the opening changes by more than this."""
    event_log_size: int = 1000
    log_interval_s: float = 1.0
    future_tolerance_s: float = 0.005
    """Samples stamped later than now + this are refused (clock mix-up or a wall-clock step)."""

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], where: str = "guard") -> GuardConfig:
        """Build from a mapping {arms: {left: {...}, right: {...}}, stale_timeout_s, watch, ...}."""
        if "arms" not in data or not isinstance(data["arms"], Mapping):
            raise ConfigError(f"{where}: missing mapping 'arms' with per-arm limits (one per {list(ARM_NAMES)})")
        arms = {}
        for name, section in data["arms"].items():
            if name not in ARM_NAMES:
                raise ConfigError(f"{where}.arms: {name!r} is not one of {list(ARM_NAMES)}")
            if not isinstance(section, Mapping):
                raise ConfigError(f"{where}.arms.{name}: expected a mapping of limits")
            arms[name] = ArmLimits.from_mapping(section, f"{where}.arms.{name}")
        known = {"arms", "stale_timeout_s", "watch", "gripper_deadband", "event_log_size", "log_interval_s",
                 "future_tolerance_s"}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"{where}: unknown keys {unknown} (known: {sorted(known)})")
        sources = [*CAMERA_NAMES, *(f"arm:{a}" for a in ARM_NAMES)]
        watch = data.get("watch")
        if not isinstance(watch, (list, tuple)) or not watch or not all(isinstance(w, str) for w in watch):
            raise ConfigError(f"{where}.watch: {watch!r}, expected a non-empty list of the cameras to keep fresh "
                              f"(some of {sources}); without it the guard would move on frozen images")
        typos = [w for w in watch if w not in sources]
        if typos:
            raise ConfigError(f"{where}.watch: {typos} not known sources, expected some of {sources}")
        return cls(
            arms=arms,
            stale_timeout_s=get_float(data, "stale_timeout_s", where, 0.1, positive=True,
                                      high=hw.STALE_TIMEOUT_MAX_S),
            watch=tuple(watch),
            gripper_deadband=get_float(data, "gripper_deadband", where, 0.005, low=0.0, high=0.1),
            event_log_size=get_int(data, "event_log_size", where, 1000, low=1, high=1_000_000),
            log_interval_s=get_float(data, "log_interval_s", where, 1.0, low=0.0, high=3600.0),
            future_tolerance_s=get_float(data, "future_tolerance_s", where, 0.005, low=0.0,
                                         high=hw.FUTURE_TOLERANCE_MAX_S),
        )

    def check_sources(self, cameras: Iterable[str], arms: Iterable[str], where: str = "guard") -> None:
        """Every watched camera must be a configured camera, every `arm:<name>` a configured arm."""
        cams, arm_names = set(cameras), set(arms)
        missing = [w for w in self.watch if (w[4:] not in arm_names if w.startswith("arm:") else w not in cams)]
        if missing:
            raise ConfigError(f"{where}.watch: {missing} not configured on this rig (cameras {sorted(cams)}, "
                              f"arms {sorted(arm_names)}); the guard would hold forever")
        unlimited = sorted(arm_names - set(self.arms))
        if unlimited:
            raise ConfigError(f"{where}.arms: no limits for configured arm(s) {unlimited}")


@dataclass(frozen=True)
class Intervention:
    """One guard intervention: when, which arm (or `*`), why, and a human-readable detail."""

    t: float
    arm: str
    reason: str
    detail: str = ""


@dataclass(frozen=True)
class GuardedCommand:
    """What the guard did with one target: the command sent (or held), and why it differs."""

    arm: str
    t: float
    pose: NDArray[np.float64] | None
    gripper: float | None
    sent: bool
    reasons: tuple[str, ...] = ()


class Watchdog:
    """Tracks the newest accepted sample time per source; a source is stale once `now - t > timeout`.

    Sources never fed are stale, so nothing moves before data flows. `feed` refuses a non-finite stamp
    and one later than `now + future_tolerance_s` (returning why), so a single future-stamped sample
    cannot keep a dead source "fresh". `stale` also treats a non-finite `now` and any sample still
    ahead of `now` by more than the tolerance as stale.
    """

    def __init__(self, sources: Iterable[str], timeout_s: float, future_tolerance_s: float = 0.005) -> None:
        self.timeout_s = float(timeout_s)
        self.future_tolerance_s = float(future_tolerance_s)
        self._last: dict[str, float] = {s: -math.inf for s in sources}
        self.refused: Counter[str] = Counter()
        """Refused samples per source (diagnostics)."""
        self._lock = threading.Lock()

    @property
    def sources(self) -> tuple[str, ...]:
        return tuple(self._last)

    def feed(self, source: str, t: float, now: float) -> str:
        """Accept sample time `t` of `source` seen at `now`; returns '' or the refusal reason."""
        with self._lock:
            if source not in self._last:
                return ""
            if not math.isfinite(t):
                self.refused[source] += 1
                return "non_finite_stamp"
            if not math.isfinite(now) or t > now + self.future_tolerance_s:
                self.refused[source] += 1
                return "future_stamp"
            if t > self._last[source]:
                self._last[source] = float(t)
            return ""

    def stale(self, now: float) -> list[str]:
        with self._lock:
            if not math.isfinite(now):
                return list(self._last)
            return [s for s, t in self._last.items()
                    if not -self.future_tolerance_s <= now - t <= self.timeout_s]

    def ages(self, now: float) -> dict[str, float]:
        with self._lock:
            return {s: now - t for s, t in self._last.items()}

    def last(self, source: str) -> float:
        with self._lock:
            return self._last.get(source, -math.inf)

    def forget(self, source: str) -> None:
        """Mark `source` as never seen (its next sample starts afresh)."""
        with self._lock:
            if source in self._last:
                self._last[source] = -math.inf


@dataclass
class _ArmGuardState:
    pose: NDArray[np.float64] | None = None  # last commanded pose (7,)
    lin_vel: NDArray[np.float64] = field(default_factory=lambda: np.zeros(3))
    ang_vel: NDArray[np.float64] = field(default_factory=lambda: np.zeros(3))
    t: float | None = None  # time of the last command
    gripper: float | None = None  # last commanded opening
    gripper_sent: float | None = None
    measured_pose: NDArray[np.float64] | None = None
    measured_t: float = -math.inf  # capture time of measured_pose
    measured_gripper: float | None = None
    fault: str = ""
    goal: NDArray[np.float64] | None = None  # last accepted (clipped) goal, to estimate its speed


def _finite_time(t: object) -> bool:
    try:
        return math.isfinite(float(t))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False


def _scale_to_norm(vec: NDArray[np.float64], limit: float) -> tuple[NDArray[np.float64], bool]:
    norm = float(np.linalg.norm(vec))
    if norm > limit:
        return vec * (limit / norm), True
    return vec, False


def _stopping_speed(distance: NDArray[np.float64], acc: float) -> float:
    """Fastest speed from which `acc` still stops within `distance`: approaching a goal this way
    decelerates in time instead of overshooting it (not an intervention: the goal is reached)."""
    return math.sqrt(2.0 * acc * float(np.linalg.norm(distance)))


class SafetyGuard:
    """Limits and forwards per-arm targets to the drivers; latches e-stop and faults.

    Call `observe_arm_state` / `feed` with fresh samples, `command(arm, target, now)` at the command
    rate, `estop()` from the operator input and `reset()` as the explicit operator action. Thread-safe.
    `clock` is the time base of every sample and of `now` (the executor's clock); it judges whether
    a fed sample lies in the future.
    """

    def __init__(
        self,
        config: GuardConfig,
        arms: Mapping[str, Arm],
        grippers: Mapping[str, Gripper] | None = None,
        clock: Clock | None = None,
    ) -> None:
        missing = sorted(set(arms) - set(config.arms))
        if missing:
            raise ConfigError(f"guard: no limits configured for arm(s) {missing}")
        self.config = config
        self.arms = dict(arms)
        self.grippers = dict(grippers or {})
        sources = [f"arm:{name}" for name in self.arms] + [w for w in config.watch if not w.startswith("arm:")]
        self.clock: Clock = clock if clock is not None else MonotonicClock()
        self.watchdog = Watchdog(sources, config.stale_timeout_s, config.future_tolerance_s)
        self.counters: Counter[str] = Counter()
        self.events: deque[Intervention] = deque(maxlen=config.event_log_size)
        self._state = {name: _ArmGuardState() for name in self.arms}
        self._estop_reason = ""
        self._last_log: dict[tuple[str, str], float] = {}
        self._suppressed: Counter[tuple[str, str]] = Counter()
        self._lock = threading.RLock()

    # ------------------------------------------------------------------ inputs

    def feed(self, source: str, t: float, now: float | None = None) -> bool:
        """Record a fresh sample (camera name or `arm:<name>`) valid at host time `t`; `now` defaults to
        the guard's clock. Returns False when the sample was refused (non-finite or future stamp)."""
        now = self.clock.now() if now is None else now
        reason = self.watchdog.feed(source, t, now)
        if reason:
            with self._lock:
                self._intervene(now, source, reason, f"sample stamped {t!r}, now {now!r}")
            return False
        return True

    def observe_arm_state(self, state: ArmState, now: float | None = None) -> None:
        """Fresh arm state: feeds the watchdog, seeds the guard, latches a reported fault. A refused
        (future- or non-finite-stamped) state is ignored entirely."""
        if not self.feed(f"arm:{state.arm}", state.t, now):
            return
        with self._lock:
            st = self._state.get(state.arm)
            if st is None:
                return
            if state.t >= st.measured_t:
                st.measured_pose = state.tcp_pose
                st.measured_t = float(state.t)
            if state.fault and not st.fault:
                self._fault(state.arm, state.t, "arm reports a fault")

    def observe_gripper(self, arm: str, opening: float) -> None:
        """Measured gripper opening, used as the rate limiter's start when nothing was commanded yet."""
        with self._lock:
            if arm in self._state and math.isfinite(opening):
                self._state[arm].measured_gripper = float(opening)

    def estop(self, reason: str = "operator", now: float = float("nan")) -> None:
        """Latch the e-stop: stop every arm now; nothing is sent until `reset()`."""
        with self._lock:
            first = not self._estop_reason
            self._estop_reason = reason or "operator"
            if first:
                self._intervene(now, "*", "estop", self._estop_reason)
            for name, arm in self.arms.items():
                self._safe_stop(name, arm, now)
                self._state[name].lin_vel[:] = 0.0
                self._state[name].ang_vel[:] = 0.0

    def reset(self, now: float = float("nan")) -> None:
        """Explicit operator action: recover faulted arms, clear the e-stop, re-seed from measured poses.

        Raises DeviceError (and stays latched) when an arm cannot be recovered.
        """
        with self._lock:
            for name, st in self._state.items():
                arm = self.arms[name]
                if st.fault or arm.in_fault():
                    arm.recover()
                    if arm.in_fault():
                        raise DeviceError(f"arm {name}: still in fault after recover()")
                st.fault = ""
                st.pose = None
                st.t = None
                st.gripper = None
                st.gripper_sent = None
                st.goal = None
                # Start again only from states (and openings) measured after the reset.
                st.measured_pose = None
                st.measured_t = -math.inf
                st.measured_gripper = None
                st.lin_vel[:] = 0.0
                st.ang_vel[:] = 0.0
            # Nothing seen before a reset counts as fresh after it: a lockstep twin restarts its clock at
            # each episode, and a stamp of the last episode would otherwise sit in the future and hold.
            for source in self.watchdog.sources:
                self.watchdog.forget(source)
            if self._estop_reason:
                self._intervene(now, "*", "reset", f"e-stop ({self._estop_reason}) cleared by operator")
            self._estop_reason = ""

    # ------------------------------------------------------------------ status

    @property
    def estopped(self) -> bool:
        return bool(self._estop_reason)

    def faults(self) -> dict[str, str]:
        with self._lock:
            return {name: st.fault for name, st in self._state.items() if st.fault}

    @property
    def ready(self) -> bool:
        """True when nothing is latched (no e-stop, no fault)."""
        with self._lock:
            return not self._estop_reason and not any(st.fault for st in self._state.values())

    def diagnostics(self, now: float) -> dict[str, Any]:
        """Counters, latches and watchdog ages for the diagnostics topic."""
        with self._lock:
            return {
                "estop": self._estop_reason,
                "faults": self.faults(),
                "counters": dict(self.counters),
                "stale": self.watchdog.stale(now),
                "ages": self.watchdog.ages(now),
                "refused_samples": dict(self.watchdog.refused),
                "last_event": self.events[-1] if self.events else None,
            }

    def last_command(self, arm: str) -> NDArray[np.float64] | None:
        """Last commanded (pose, gripper) as an (8,) target, or None before the first command."""
        with self._lock:
            st = self._state[arm]
            if st.pose is None:
                return None
            grip = st.gripper if st.gripper is not None else (st.measured_gripper or 0.0)
            return np.concatenate([st.pose, [grip]])

    # ------------------------------------------------------------------ the guard

    def command(self, arm: str, target: NDArray[np.float64], now: float) -> GuardedCommand:
        """Limit `target` (8,) = pose (7) + gripper opening for `arm` and send it; see the module doc."""
        with self._lock:
            if arm not in self._state:
                raise KeyError(f"guard: unknown arm {arm!r} (configured: {sorted(self._state)})")
            st = self._state[arm]
            if not _finite_time(now):
                self._intervene(math.nan, arm, "bad_time", f"command time {now!r} is not a finite number")
                return GuardedCommand(arm, math.nan, None, None, False, ("bad_time",))
            if self._estop_reason:
                self.counters["blocked_estop"] += 1
                return GuardedCommand(arm, now, None, None, False, ("estop",))
            driver = self.arms[arm]
            if not st.fault:
                try:
                    if driver.in_fault():
                        self._fault(arm, now, "driver reports a fault")
                except DeviceError as exc:
                    self._fault(arm, now, f"fault query failed: {exc}")
            if st.fault:
                self.counters["blocked_fault"] += 1
                return GuardedCommand(arm, now, None, None, False, ("fault",))
            state_fresh = self._state_fresh(st, now)
            if st.pose is None:
                if st.measured_pose is None or not state_fresh:
                    self.counters["blocked_no_state"] += 1
                    return GuardedCommand(arm, now, None, None, False, ("no_state",))
                st.pose = self._seed(arm, st.measured_pose, now)
                st.t = now

            hold_reason = self._hold_reason(arm, target, now)
            if hold_reason:
                st.lin_vel[:] = 0.0
                st.ang_vel[:] = 0.0
                st.goal = None
                st.t = now
                if not state_fresh:
                    # Nothing known about where the arm is now: send nothing, and start again from the
                    # next fresh state (never from the pose last commanded before the gap).
                    st.pose = None
                    st.t = None
                    return GuardedCommand(arm, now, None, None, False, (hold_reason,))
                self._send(arm, st.pose, None, now)
                return GuardedCommand(arm, now, st.pose.copy(), st.gripper, True, (hold_reason,))

            reasons: list[str] = []
            pose = self._limit_pose(arm, st, np.asarray(target[:7], dtype=np.float64), now, reasons)
            grip = self._limit_gripper(arm, st, float(target[7]), now, reasons)
            st.pose, st.gripper, st.t = pose, grip, now
            self._send(arm, pose, grip, now)
            return GuardedCommand(arm, now, pose.copy(), grip, True, tuple(reasons))

    def _hold_reason(self, arm: str, target: NDArray[np.float64], now: float) -> str:
        target = np.asarray(target, dtype=np.float64)
        if target.shape != (COMMAND_DIM,):
            self._intervene(now, arm, "malformed", f"target shape {target.shape}, expected ({COMMAND_DIM},)")
            return "malformed"
        if not np.all(np.isfinite(target)):
            self._intervene(now, arm, "non_finite", f"target {np.array2string(target, precision=3)}")
            return "non_finite"
        norm = float(np.linalg.norm(target[3:7]))
        if abs(norm - 1.0) > QUAT_NORM_TOL:
            self._intervene(now, arm, "bad_quaternion", f"quaternion norm {norm:.4f}")
            return "bad_quaternion"
        stale = self.watchdog.stale(now)
        if stale:
            ages = self.watchdog.ages(now)
            self._intervene(now, arm, "stale_data",
                            ", ".join(f"{s} age {ages[s] * 1e3:.0f} ms" for s in stale))
            return "stale_data"
        return ""

    def _state_fresh(self, st: _ArmGuardState, now: float) -> bool:
        age = now - st.measured_t
        return -self.config.future_tolerance_s <= age <= self.config.stale_timeout_s

    def _seed(self, arm: str, measured: NDArray[np.float64], now: float) -> NDArray[np.float64]:
        # Start from where the arm is, never from a clipped copy: a clipped seed would be a jump.
        pose = np.concatenate([measured[:3], normalize_quat(measured[3:7])])
        if not self._inside(arm, pose[:3]):
            self._intervene(now, arm, "outside_workspace",
                            f"measured {np.round(pose[:3], 3).tolist()}: moving back at limited speed")
        return pose

    def _inside(self, arm: str, pos: NDArray[np.float64]) -> bool:
        lim = self.config.arms[arm]
        return bool(np.all(pos >= lim.workspace_min) and np.all(pos <= lim.workspace_max))

    def _limit_pose(
        self, arm: str, st: _ArmGuardState, target: NDArray[np.float64], now: float, reasons: list[str]
    ) -> NDArray[np.float64]:
        lim = self.config.arms[arm]
        assert st.pose is not None and st.t is not None
        dt = min(max(now - st.t, 0.0), lim.max_step_dt)
        prev = st.pose
        goal = target.copy()
        clipped = np.clip(goal[:3], lim.workspace_min, lim.workspace_max)
        if np.any(clipped != goal[:3]):
            self._intervene(now, arm, "workspace", f"target {np.round(goal[:3], 3).tolist()} outside the box")
            reasons.append("workspace")
            goal[:3] = clipped
        if dt <= 0.0:
            return prev.copy()

        # Linear: velocity towards the goal, limited in magnitude and in change per tick.
        want_v = (goal[:3] - prev[:3]) / dt
        lin_v, hit = _scale_to_norm(want_v, lim.max_linear_speed)
        goal_v, goal_w = self._goal_speeds(st, goal, dt)
        lin_v, _ = _scale_to_norm(lin_v, _stopping_speed(goal[:3] - prev[:3], lim.max_linear_acc) + goal_v)
        if hit:
            self._intervene(now, arm, "linear_speed", f"{np.linalg.norm(want_v):.3f} m/s")
            reasons.append("linear_speed")
        dv, hit = _scale_to_norm(lin_v - st.lin_vel, lim.max_linear_acc * dt)
        if hit:
            self._intervene(now, arm, "linear_acc", f"{np.linalg.norm(lin_v - st.lin_vel) / dt:.2f} m/s^2")
            reasons.append("linear_acc")
        lin_v, _ = _scale_to_norm(st.lin_vel + dv, lim.max_linear_speed)
        pos = prev[:3] + lin_v * dt
        if self._inside(arm, prev[:3]):
            # prev is inside the convex box, so clipping only shortens each axis' step.
            pos = np.clip(pos, lim.workspace_min, lim.workspace_max)

        # Angular: body-frame rotation vector from the last commanded orientation, same limits.
        goal_q = goal[3:7] / np.linalg.norm(goal[3:7])
        want_w = quat_to_rotvec(quat_multiply(quat_conjugate(prev[3:7]), goal_q)) / dt
        ang_w, hit = _scale_to_norm(want_w, lim.max_angular_speed)
        ang_w, _ = _scale_to_norm(ang_w, _stopping_speed(want_w * dt, lim.max_angular_acc) + goal_w)
        if hit:
            self._intervene(now, arm, "angular_speed", f"{np.linalg.norm(want_w):.3f} rad/s")
            reasons.append("angular_speed")
        dw, hit = _scale_to_norm(ang_w - st.ang_vel, lim.max_angular_acc * dt)
        if hit:
            self._intervene(now, arm, "angular_acc", f"{np.linalg.norm(ang_w - st.ang_vel) / dt:.2f} rad/s^2")
            reasons.append("angular_acc")
        ang_w, _ = _scale_to_norm(st.ang_vel + dw, lim.max_angular_speed)
        quat = normalize_quat(quat_multiply(prev[3:7], rotvec_to_quat(ang_w * dt)))

        st.lin_vel = (pos - prev[:3]) / dt
        st.ang_vel = ang_w
        st.goal = goal
        return np.concatenate([pos, quat])

    @staticmethod
    def _goal_speeds(st: _ArmGuardState, goal: NDArray[np.float64], dt: float) -> tuple[float, float]:
        # A moving goal (a trajectory being tracked) may be followed at its own speed on top of the
        # stopping-distance bound; without this the guard would trail a moving target by v^2 / 2a.
        if st.goal is None:
            return 0.0, 0.0
        lin = float(np.linalg.norm(goal[:3] - st.goal[:3])) / dt
        ang = float(angle_between(goal[3:7], st.goal[3:7])) / dt
        return lin, ang

    def _limit_gripper(
        self, arm: str, st: _ArmGuardState, opening: float, now: float, reasons: list[str]
    ) -> float | None:
        lim = self.config.arms[arm]
        goal = min(max(opening, lim.gripper_min), lim.gripper_max)
        if goal != opening:
            self._intervene(now, arm, "gripper_range", f"opening {opening:.3f}")
            reasons.append("gripper_range")
        prev = st.gripper if st.gripper is not None else st.measured_gripper
        if prev is None:
            # No commanded or measured opening to limit from: do not command the gripper yet.
            self.counters["blocked_no_gripper_state"] += 1
            return None
        prev = min(max(prev, lim.gripper_min), lim.gripper_max)
        dt = min(max(now - (st.t if st.t is not None else now), 0.0), lim.max_step_dt)
        step = lim.gripper_max_rate * dt
        if abs(goal - prev) > step + 1e-12:
            self._intervene(now, arm, "gripper_rate", f"{abs(goal - prev) / max(dt, 1e-9):.2f} /s")
            reasons.append("gripper_rate")
            goal = prev + math.copysign(step, goal - prev)
        return goal

    # ------------------------------------------------------------------ outputs

    def _send(self, arm: str, pose: NDArray[np.float64], grip: float | None, now: float) -> None:
        st = self._state[arm]
        try:
            self.arms[arm].send_pose(pose)
            gripper = self.grippers.get(arm)
            if gripper is not None and grip is not None and (
                st.gripper_sent is None or abs(grip - st.gripper_sent) > self.config.gripper_deadband
            ):
                gripper.command(grip)
                st.gripper_sent = grip
        except DeviceError as exc:
            self._fault(arm, now, f"send failed: {exc}")

    def _safe_stop(self, name: str, arm: Arm, now: float) -> None:
        try:
            arm.stop()
        except DeviceError as exc:
            self._intervene(now, name, "stop_failed", str(exc))

    def _fault(self, arm: str, now: float, detail: str) -> None:
        st = self._state[arm]
        st.fault = detail
        st.lin_vel[:] = 0.0
        st.ang_vel[:] = 0.0
        self._intervene(now, arm, "fault", detail, level=logging.ERROR)
        self._safe_stop(arm, self.arms[arm], now)

    def _intervene(self, now: float, arm: str, reason: str, detail: str, level: int = logging.WARNING) -> None:
        self.counters[reason] += 1
        self.events.append(Intervention(now, arm, reason, detail))
        key = (arm, reason)
        last = self._last_log.get(key)
        if level >= logging.ERROR or last is None or not (now - last < self.config.log_interval_s):
            extra = f" (+{self._suppressed[key]} similar)" if self._suppressed[key] else ""
            log.log(level, "safety guard: arm %s: %s: %s%s", arm, reason, detail, extra)
            self._last_log[key] = now
            self._suppressed[key] = 0
        else:
            self._suppressed[key] += 1


def load_guard_config(params: Mapping[str, Any], where: str = "guard") -> GuardConfig:
    """GuardConfig from a node's parameter mapping holding a `guard:` section."""
    section = params.get("guard")
    if not isinstance(section, Mapping):
        raise ConfigError(f"{where}: missing mapping 'guard' (per-arm limits, stale_timeout_s, watch)")
    return GuardConfig.from_mapping(section, where)
