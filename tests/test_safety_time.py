"""The guard and executor against bad time: future and non-finite stamps, stale seeds after a reset,
NaN command times, late and far-future chunks, old policy results, the first gripper command, and
the cross-node time base (one clock offset per boot). Property tests run under tests/safety_profiles.py."""

from __future__ import annotations

import math
import subprocess
import sys
import time

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from rig.dataformats import ros_messages as rm
from rig.executor import ChunkExecutor, ExecutorConfig
from rig.safety import ArmLimits, GuardConfig, SafetyGuard
from rig.schema import CommandChunk
from rig.timing import LockstepClock
from tests.doubles.rig_devices import HOME, RecordingArm, RecordingGripper
from tests.safety_profiles import SAFETY

LIMITS = ArmLimits(
    workspace_min=(0.2, -0.4, 0.05), workspace_max=(0.7, 0.4, 0.6), max_linear_speed=0.25,
    max_angular_speed=1.0, max_linear_acc=1.0, max_angular_acc=3.0, gripper_max_rate=2.0,
)
TIMEOUT = 0.1
TOL = 1e-9


def make_guard(watch: tuple[str, ...] = ("front",)):
    clock = LockstepClock(100.0)
    arms = {n: RecordingArm(n, clock=clock) for n in ("left", "right")}
    grippers = {n: RecordingGripper(n, clock=clock) for n in ("left", "right")}
    config = GuardConfig(arms={"left": LIMITS, "right": LIMITS}, watch=watch, stale_timeout_s=TIMEOUT)
    return SafetyGuard(config, arms, grippers, clock), arms, grippers, clock


def read_all(guard: SafetyGuard, arms: dict, grippers: dict) -> None:
    for name, arm in arms.items():
        guard.observe_arm_state(arm.read_state())
        guard.observe_gripper(name, grippers[name].read_state().opening)


def target(pos, grip: float = 1.0) -> np.ndarray:
    return np.concatenate([np.asarray(pos, float), HOME[3:7], [grip]])


# ------------------------------------------------------------------ 1. future-stamped samples


def test_future_camera_frame_does_not_keep_a_dead_camera_fresh():
    """The review's case: one frame stamped now + 10 s, then the camera dies; the arm must stop."""
    guard, arms, grippers, clock = make_guard()
    read_all(guard, arms, grippers)
    guard.feed("front", clock.now())
    assert guard.feed("front", clock.now() + 10.0) is False
    goal = target([0.65, 0.0, 0.30])
    moved = []
    for _ in range(300):
        clock.advance(0.01)
        read_all(guard, arms, grippers)
        cmd = guard.command("left", goal, clock.now())
        if cmd.sent and "stale_data" not in cmd.reasons:
            moved.append(clock.now())
    assert moved and max(moved) <= 100.0 + TIMEOUT + 1e-6  # only while the real frame was fresh
    assert arms["left"].pose[0] < 0.45 + LIMITS.max_linear_speed * (TIMEOUT + 0.01)
    diag = guard.diagnostics(clock.now())
    assert guard.counters["future_stamp"] == 1 and diag["refused_samples"] == {"front": 1}
    assert diag["ages"]["front"] > 2.9  # the refused stamp never became the newest sample


def test_future_and_non_finite_arm_states_are_ignored():
    guard, arms, grippers, clock = make_guard(watch=())
    read_all(guard, arms, grippers)
    ahead = arms["left"].read_state()
    object.__setattr__(ahead, "t", clock.now() + 5.0)
    object.__setattr__(ahead, "tcp_pose", HOME + np.array([0.1, 0, 0, 0, 0, 0, 0]))
    guard.observe_arm_state(ahead)
    assert guard.counters["future_stamp"] == 1
    assert guard.feed("arm:left", math.nan) is False and guard.counters["non_finite_stamp"] == 1
    cmd = guard.command("left", target(HOME[:3]), clock.now())
    assert cmd.sent and np.allclose(cmd.pose[:3], HOME[:3])  # seeded from the real state, not the future one


FRAME_OFFSETS = [0.0, 0.0, -0.01, -0.05, -0.09, -0.5, 0.004, 0.006, 0.1, 10.0, 1.7e9, math.nan, math.inf, -math.inf]


@st.composite
def feed_script(draw):
    events = []
    for _ in range(draw(st.integers(1, 40))):
        kind = draw(st.sampled_from(["advance", "frame", "frame", "state", "command"]))
        if kind == "advance":
            events.append(("advance", draw(st.sampled_from([0.001, 0.01, 0.05, 0.2, 1.0]))))
        elif kind == "frame":
            events.append(("frame", draw(st.sampled_from(FRAME_OFFSETS))))
        else:
            events.append((kind, 0.0))
    return events


@SAFETY
@given(feed_script())
def test_property_arm_moves_only_on_samples_that_were_not_from_the_future(events):
    """Model: a frame counts only if its stamp was finite and at most `future_tolerance_s` ahead of the
    clock when fed. The guard moves the arm (a non-hold command) only while the newest such frame is
    fresh, and counts every refused frame."""
    guard, arms, grippers, clock = make_guard()
    tol = guard.config.future_tolerance_s
    valid = -math.inf
    refused = 0
    read_all(guard, arms, grippers)
    for kind, value in events:
        if kind == "advance":
            clock.advance(value)
        elif kind == "frame":
            t = clock.now() + value
            if math.isfinite(t) and t <= clock.now() + tol:
                valid = max(valid, t)
            else:
                refused += 1
            guard.feed("front", t)
        elif kind == "state":
            read_all(guard, arms, grippers)
        else:
            cmd = guard.command("left", target([0.6, 0.1, 0.4]), clock.now())
            if cmd.sent and "stale_data" not in cmd.reasons:
                assert -tol <= clock.now() - valid <= TIMEOUT + TOL
    assert sum(guard.watchdog.refused.values()) == refused
    assert guard.counters["future_stamp"] + guard.counters["non_finite_stamp"] == refused


# ------------------------------------------------------------------ 2, 3, 5. seeds, NaN time, first gripper


OPERATOR_EVENTS = ["tick", "tick", "tick", "tick", "read_fail", "estop", "reset", "hand_move", "bad_time",
                   "gripper_read"]
grid = st.integers(-10, 10)  # integer grids draw much faster than floats: more events per second of test


@st.composite
def operator_script(draw):
    events = []
    for _ in range(draw(st.integers(1, 40))):
        kind, dt = draw(st.sampled_from(OPERATOR_EVENTS)), draw(st.sampled_from([0.002, 0.01, 0.01, 0.05, 0.3]))
        move = goal = np.zeros(3)
        grip = 1.0
        if kind == "hand_move":
            move = 0.01 * np.array([draw(grid), draw(grid), draw(grid)])
        elif kind in ("tick", "read_fail", "bad_time"):
            goal = np.array([0.45, 0.0, 0.35]) + 0.04 * np.array([draw(grid), draw(grid), draw(grid)])
            grip = draw(st.sampled_from([0.0, 1.0, 0.5]))
        events.append((kind, dt, move, goal, grip))
    return events


@SAFETY
@given(operator_script())
def test_property_never_commands_from_a_stale_or_unknown_state(events):
    """Whatever happens (read failures, e-stops, resets, the arm moved by hand while stopped, NaN
    times), every pose sent is within one limited step of where the arm really is, sent while its
    state is fresh; every gripper command is within one rate-limited step of the real opening."""
    guard, arms, grippers, clock = make_guard(watch=())
    arm, gripper = arms["left"], grippers["left"]
    last_read = -math.inf
    max_step = LIMITS.max_linear_speed * LIMITS.max_step_dt
    max_grip_step = LIMITS.gripper_max_rate * LIMITS.max_step_dt
    estopped = False
    for kind, dt, move, goal, grip in events:
        clock.advance(dt)
        if kind == "estop":
            guard.estop("test", clock.now())
            estopped = True
            continue
        if kind == "reset":
            guard.reset(clock.now())
            estopped = False
            continue
        if kind == "hand_move":
            if estopped:  # only a stopped arm can be pushed by hand
                arm.pose = arm.pose.copy()
                arm.pose[:3] += move
            continue
        if kind == "gripper_read":
            guard.observe_gripper("left", gripper.read_state().opening)
            continue
        if kind == "tick":
            state = arm.read_state()
            guard.observe_arm_state(state)
            guard.observe_arm_state(arms["right"].read_state())
            last_read = clock.now()
        before_pose, before_grip = arm.pose.copy(), gripper.opening
        n_sent, n_grip = len(arm.sent), len(gripper.commands)
        now = math.nan if kind == "bad_time" else clock.now()
        cmd = guard.command("left", target(goal, grip), now)
        if kind == "bad_time":
            assert not cmd.sent and cmd.reasons == ("bad_time",)
        if len(arm.sent) > n_sent:
            sent = arm.sent[-1]
            assert np.all(np.isfinite(sent))
            assert clock.now() - last_read <= TIMEOUT + TOL, "sent without a fresh arm state"
            assert np.linalg.norm(sent[:3] - before_pose[:3]) <= max_step + 1e-9
        if len(gripper.commands) > n_grip:
            # the deadband lets the real opening trail the commanded one by up to gripper_deadband
            assert abs(gripper.commands[-1] - before_grip) <= max_grip_step + guard.config.gripper_deadband + 1e-9
    assert guard.counters["bad_time"] == sum(1 for e in events if e[0] == "bad_time")


def test_reset_waits_for_a_fresh_state_and_starts_from_it():
    """The review's case: read failures, e-stop, the arm pushed 10 cm, reset: no jump back."""
    guard, arms, grippers, clock = make_guard(watch=())
    read_all(guard, arms, grippers)
    clock.advance(0.01)
    assert guard.command("left", target(HOME[:3]), clock.now()).sent
    clock.advance(0.5)  # read_state fails for 0.5 s: the guard must not hold at the old pose
    n = len(arms["left"].sent)
    held = guard.command("left", target(HOME[:3]), clock.now())
    assert not held.sent and len(arms["left"].sent) == n
    guard.estop("operator", clock.now())
    arms["left"].pose = HOME + np.array([0.1, 0.0, 0.0, 0, 0, 0, 0])
    guard.reset(clock.now())
    assert not guard.command("left", target(HOME[:3]), clock.now()).sent  # no state since the reset
    clock.advance(0.01)
    read_all(guard, arms, grippers)
    cmd = guard.command("left", target(HOME[:3]), clock.now())
    assert cmd.sent and np.linalg.norm(cmd.pose[:3] - arms["left"].pose[:3]) < 1e-9 + 0.005
    pushed = HOME[:3] + np.array([0.1, 0.0, 0.0])
    assert np.linalg.norm(cmd.pose[:3] - pushed) <= LIMITS.max_linear_speed * 0.02 + 1e-9


class _RestartingClock(LockstepClock):
    """The lockstep twin's clock: simulated time restarts at 0 when an episode is reset."""

    def restart(self) -> None:
        with self._lock:
            self._t = 0.0


def test_reset_forgets_samples_of_the_last_episode_when_the_clock_restarts():
    """`a2world run policy` on the lockstep twin: episode 2 starts at t = 0 while the watchdog still held
    episode 1's last frame (t = 12 s), so every command of episode 2 was held as stale (age -11.8 s)."""
    clock = _RestartingClock(0.0)
    arms = {n: RecordingArm(n, clock=clock) for n in ("left", "right")}
    grippers = {n: RecordingGripper(n, clock=clock) for n in ("left", "right")}
    config = GuardConfig(arms={"left": LIMITS, "right": LIMITS}, watch=("front",), stale_timeout_s=TIMEOUT)
    guard = SafetyGuard(config, arms, grippers, clock)
    clock.advance(12.0)
    read_all(guard, arms, grippers)
    assert guard.feed("front", clock.now())
    assert guard.command("left", target(HOME[:3]), clock.now()).sent
    clock.restart()  # the twin's reset_state for the next episode
    guard.reset(clock.now())
    clock.advance(0.01)
    read_all(guard, arms, grippers)
    assert guard.feed("front", clock.now())
    cmd = guard.command("left", target(HOME[:3]), clock.now())
    assert cmd.sent and "stale_data" not in cmd.reasons


def test_nan_time_is_refused_at_the_guard():
    guard, arms, grippers, _clock = make_guard(watch=())
    read_all(guard, arms, grippers)
    for bad in (math.nan, math.inf, -math.inf, None, "now"):
        cmd = guard.command("left", target(HOME[:3]), bad)  # type: ignore[arg-type]
        assert not cmd.sent and cmd.reasons == ("bad_time",)
    assert arms["left"].sent == [] and guard.counters["bad_time"] == 5


def test_first_gripper_command_waits_for_a_measured_opening():
    guard, arms, grippers, clock = make_guard(watch=())
    for arm in arms.values():
        guard.observe_arm_state(arm.read_state())
    cmd = guard.command("left", target(HOME[:3], grip=0.0), clock.now())
    assert cmd.sent and cmd.gripper is None and grippers["left"].commands == []
    guard.observe_gripper("left", 1.0)
    clock.advance(0.01)
    guard.observe_arm_state(arms["left"].read_state())
    cmd = guard.command("left", target(HOME[:3], grip=0.0), clock.now())
    assert cmd.gripper == pytest.approx(1.0 - LIMITS.gripper_max_rate * 0.01)


# ------------------------------------------------------------------ 4. late, far-future chunks; old results


def make_executor(lead: float = 0.5):
    guard, arms, grippers, clock = make_guard(watch=())
    read_all(guard, arms, grippers)
    return ChunkExecutor(ExecutorConfig(latency_s=0.03, max_chunk_lead_s=lead), guard), clock


def chunk_at(t0: float, x0: float = 0.45, steps: int = 10, dt: float = 1 / 30) -> CommandChunk:
    targets = np.zeros((steps, 2, 8))
    targets[:, :, :3] = HOME[:3]
    targets[:, :, 0] = x0 + 0.002 * np.arange(steps)[:, None]
    targets[:, :, 3:7] = HOME[3:7]
    targets[:, :, 7] = 1.0
    return CommandChunk(targets, t0=t0, dt=dt)


@SAFETY
@given(st.lists(st.tuples(st.one_of(st.floats(-20.0, 3.0), st.sampled_from([-0.33, -0.3, 0.4, 0.6, 1.7e9])),
                          st.integers(1, 20)), min_size=1, max_size=8))
def test_property_late_and_far_future_chunks_never_change_the_plan(offsets):
    ex, clock = make_executor()
    ex.submit(chunk_at(clock.now(), steps=60), clock.now())
    late = future = 0
    for offset, steps in offsets:
        now = clock.advance(0.01)
        chunk = chunk_at(now + offset, x0=0.5, steps=steps)
        times = chunk.times()
        t_s = now + ex.config.latency_s
        probe = [t_s, t_s + 0.1, t_s + 1.0]
        before = [ex.committed("left", t) for t in probe]
        outcome = ex.submit(chunk, now)
        if times[-1] < t_s:
            late += 1
            assert set(outcome.values()) == {"late"}
        elif times[0] > t_s + ex.config.max_chunk_lead_s:
            future += 1
            assert set(outcome.values()) == {"future"}
        else:
            assert set(outcome.values()) <= {"start", "splice", "blend"}
            continue
        after = [ex.committed("left", t) for t in probe]
        assert all(np.array_equal(a, b) for a, b in zip(before, after, strict=True))
    assert ex.stats.counters["late_chunks"] == late and ex.stats.counters["future_chunks"] == future


def test_past_chunk_is_not_cut_to_its_last_step():
    """The review's L-shaped path: a chunk entirely in the past used to make the arm cut to its end."""
    ex, clock = make_executor()
    ex.submit(chunk_at(clock.now(), steps=60), clock.now())
    ex.tick(clock.now())
    before = ex.committed("left", clock.now() + 0.5).copy()
    assert ex.submit(chunk_at(clock.now() - 5.0, x0=0.6), clock.now())["left"] == "late"
    assert np.array_equal(ex.committed("left", clock.now() + 0.5), before)
    assert ex.submit(chunk_at(clock.now()), float("nan"))["left"] == "bad_time"


@SAFETY
@given(st.floats(0.0, 2.5), st.floats(0.05, 2.0))
def test_property_policy_results_older_than_the_limit_are_dropped(latency, max_age):
    from tests.test_policy_loop import TimePolicy, inline_loop, observation

    clock = LockstepClock(10.0)
    loop = inline_loop(TimePolicy(), clock, sim_latency_s=latency, max_result_age_s=max_age, initial_latency_s=0.0)
    loop.on_observation(observation(clock.now()))
    clock.advance(latency + 1e-6)
    chunk = loop.next_chunk()
    age = clock.now() - 10.0
    if age <= max_age:
        assert chunk is not None and loop.counters["expired_results"] == 0
    else:
        assert chunk is None and loop.counters["expired_results"] == 1
    loop.close()


# ------------------------------------------------------------------ the time base


def test_shared_clock_map_survives_a_wall_clock_step(tmp_path, monkeypatch):
    """Two nodes started on either side of an NTP step agree on every stamp; each node's own `now()`
    map would not (that was the bug: 10 s apart)."""
    path = tmp_path / "clock.json"
    first = rm.ClockMap.shared(path)
    real_time = time.time
    monkeypatch.setattr(rm.time, "time", lambda: real_time() + 10.0)  # the wall clock steps by +10 s
    second = rm.ClockMap.shared(path)
    naive = rm.ClockMap.now()
    t = time.monotonic()
    assert second.to_monotonic(first.to_ros_ns(t)) == pytest.approx(t, abs=1e-6)  # float64 at 1.7e9 s
    assert abs(naive.to_monotonic(first.to_ros_ns(t)) - t) == pytest.approx(10.0, abs=0.01)
    assert second.wall_step_s() == pytest.approx(10.0, abs=0.01)


def test_shared_clock_map_is_the_same_in_another_process(tmp_path):
    path = tmp_path / "clock.json"
    mine = rm.ClockMap.shared(path)
    code = f"from rig.dataformats.ros_messages import ClockMap; print(repr(ClockMap.shared({str(path)!r}).offset_s))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=str(__import__("pathlib").Path(__file__).resolve().parent.parent))
    assert float(out.stdout) == mine.offset_s


def test_corrupt_clock_file_names_the_file(tmp_path):
    path = tmp_path / "clock.json"
    path.write_text("not json")
    with pytest.raises(rm.MessageError, match="clock.json"):
        rm.ClockMap.shared(path)


def test_arm_diagnostics_report_a_wall_clock_step(tmp_path, monkeypatch):
    from a2world_ros.nodes.bridges import ArmBridge

    guard, arms, grippers, clock = make_guard(watch=())
    bridge = ArmBridge(arms, grippers, ExecutorConfig(), guard.config, rm.ClockMap.shared(tmp_path / "c.json"),
                       clock=clock)
    read_all(bridge.guard, arms, grippers)
    entry = bridge.diagnostics()[0]
    values = dict(entry.values) if not isinstance(entry.values, dict) else entry.values
    assert abs(float(values["wall_clock_step_s"])) < 0.5
    real_time = time.time
    monkeypatch.setattr(rm.time, "time", lambda: real_time() - 3.0)
    entry = bridge.diagnostics()[0]
    assert "wall clock stepped" in entry.message
