"""Safety guard: limits, holds, watchdog, e-stop latch, faults, counters; property tests with hypothesis."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.spatial.transform import Rotation

from rig.config import ConfigError
from rig.rotations import angle_between
from rig.safety import ArmLimits, GuardConfig, SafetyGuard, load_guard_config
from rig.timing import LockstepClock
from tests.doubles.rig_devices import HOME, RecordingArm, RecordingGripper

DT = 0.01
LIMITS = ArmLimits(
    workspace_min=(0.2, -0.4, 0.05),
    workspace_max=(0.7, 0.4, 0.6),
    max_linear_speed=0.25,
    max_angular_speed=1.0,
    max_linear_acc=1.0,
    max_angular_acc=3.0,
    gripper_max_rate=2.0,
)
TOL = 1e-9


def make_guard(watch: tuple[str, ...] = ("front",)) -> tuple[SafetyGuard, dict, dict, LockstepClock]:
    clock = LockstepClock(100.0)
    arms = {n: RecordingArm(n, clock=clock) for n in ("left", "right")}
    grippers = {n: RecordingGripper(n) for n in ("left", "right")}
    guard = SafetyGuard(GuardConfig(arms={"left": LIMITS, "right": LIMITS}, watch=watch), arms, grippers, clock)
    return guard, arms, grippers, clock


def fresh(guard: SafetyGuard, arms: dict, clock: LockstepClock) -> None:
    for arm in arms.values():
        guard.observe_arm_state(arm.read_state())
        guard.observe_gripper(arm.name, 1.0)
    guard.feed("front", clock.now())


def target(pos, quat=HOME[3:7], grip=1.0) -> np.ndarray:
    return np.concatenate([np.asarray(pos, float), np.asarray(quat, float), [grip]])


def step(guard, arms, clock, tgt, arm="left"):
    clock.advance(DT)
    fresh(guard, arms, clock)
    return guard.command(arm, tgt, clock.now())


def test_moves_within_speed_limit_and_reaches_target():
    guard, arms, _, clock = make_guard()
    goal = HOME[:3] + np.array([0.1, 0.0, 0.0])
    positions = [step(guard, arms, clock, target(goal)).pose[:3] for _ in range(200)]
    steps = np.linalg.norm(np.diff(np.array(positions), axis=0), axis=1)
    assert steps.max() <= LIMITS.max_linear_speed * DT + TOL
    assert np.allclose(positions[-1], goal, atol=1e-4)
    assert guard.counters["linear_speed"] > 0 or guard.counters["linear_acc"] > 0
    assert np.allclose(arms["left"].sent[-1][:3], positions[-1])


def test_workspace_box_clamps_and_counts():
    guard, arms, _, clock = make_guard()
    for _ in range(400):
        cmd = step(guard, arms, clock, target([2.0, 0.0, -1.0]))
    assert cmd.pose[0] == pytest.approx(LIMITS.workspace_max[0])
    assert cmd.pose[2] == pytest.approx(LIMITS.workspace_min[2])
    assert "workspace" in cmd.reasons
    assert guard.counters["workspace"] >= 400
    assert guard.events[-1].reason in {"workspace", "linear_speed", "linear_acc"}


def test_non_finite_and_bad_quaternion_hold_last_pose():
    guard, arms, _, clock = make_guard()
    first = step(guard, arms, clock, target(HOME[:3])).pose
    bad = target(HOME[:3])
    bad[1] = np.nan
    cmd = step(guard, arms, clock, bad)
    assert cmd.reasons == ("non_finite",) and np.array_equal(cmd.pose, first)
    cmd = step(guard, arms, clock, target(HOME[:3], quat=[0, 0, 0, 0.5]))
    assert cmd.reasons == ("bad_quaternion",)
    assert guard.counters["non_finite"] == 1 and guard.counters["bad_quaternion"] == 1
    assert np.all(np.isfinite(arms["left"].sent[-1]))


def test_watchdog_holds_within_timeout_of_last_fresh_sample():
    guard, arms, _, clock = make_guard()
    fresh(guard, arms, clock)
    t_fresh = clock.now()
    goal = target(HOME[:3] + np.array([0.05, 0, 0]))
    clock.set(t_fresh + 0.099)
    assert guard.command("left", goal, clock.now()).reasons != ("stale_data",)
    clock.set(t_fresh + 0.1001)
    held = guard.command("left", goal, clock.now())
    assert held.reasons == ("stale_data",) and not held.sent  # the arm state is stale too: nothing sent
    guard.observe_arm_state(arms["left"].read_state())  # arm fresh, camera stale: hold at the last pose
    held = guard.command("left", goal, clock.now())
    assert held.reasons == ("stale_data",) and held.sent
    before = held.pose.copy()
    clock.set(t_fresh + 0.15)
    guard.observe_arm_state(arms["left"].read_state())
    assert np.array_equal(guard.command("left", goal, clock.now()).pose, before)
    clock.set(t_fresh + 0.2)
    assert "front" in guard.diagnostics(clock.now())["stale"]
    # A fresh camera frame alone is not enough: the arm state is stale too.
    guard.feed("front", clock.now())
    assert guard.command("left", goal, clock.now()).reasons == ("stale_data",)
    guard.observe_arm_state(arms["left"].read_state())
    guard.observe_arm_state(arms["right"].read_state())
    assert guard.command("left", goal, clock.now() + 0.001).reasons != ("stale_data",)


def test_nothing_moves_before_data():
    guard, arms, _, clock = make_guard()
    cmd = guard.command("left", target(HOME[:3]), clock.now())
    assert not cmd.sent and arms["left"].sent == []


def test_estop_latches_until_reset():
    guard, arms, grippers, clock = make_guard()
    step(guard, arms, clock, target(HOME[:3]))
    sent = len(arms["left"].sent)
    grip_sent = list(grippers["left"].commands)
    guard.estop("test", clock.now())
    assert arms["left"].stops == 1 and arms["right"].stops == 1
    for _ in range(20):
        cmd = step(guard, arms, clock, target(HOME[:3] + np.array([0.01, 0, 0]), grip=0.0))
        assert not cmd.sent
    assert len(arms["left"].sent) == sent and grippers["left"].commands == grip_sent
    assert guard.estopped and not guard.ready
    guard.reset(clock.now())
    assert step(guard, arms, clock, target(HOME[:3])).sent
    assert guard.counters["estop"] == 1 and guard.counters["blocked_estop"] == 20


def test_fault_stops_reports_and_requires_reset():
    guard, arms, _, clock = make_guard()
    step(guard, arms, clock, target(HOME[:3]))
    arms["left"].fault = True
    cmd = step(guard, arms, clock, target(HOME[:3]))
    assert not cmd.sent and cmd.reasons == ("fault",)
    assert arms["left"].stops == 1 and "left" in guard.faults()
    arms["left"].fault = False  # clearing on the device is not enough: the guard stays latched
    assert not step(guard, arms, clock, target(HOME[:3])).sent
    assert step(guard, arms, clock, target(HOME[:3]), arm="right").sent  # the other arm is unaffected
    guard.reset(clock.now())
    assert arms["left"].recovers == 1
    assert step(guard, arms, clock, target(HOME[:3])).sent
    assert guard.counters["fault"] == 1


def test_reset_fails_when_arm_stays_faulted():
    from rig.drivers.base import DeviceError

    guard, arms, _, clock = make_guard()
    step(guard, arms, clock, target(HOME[:3]))
    arms["left"].fault = True
    arms["left"].fail_recover = True
    step(guard, arms, clock, target(HOME[:3]))
    with pytest.raises(DeviceError, match="left"):
        guard.reset(clock.now())
    assert not guard.ready


def test_gripper_range_rate_and_deadband():
    guard, arms, grippers, clock = make_guard()
    openings = [step(guard, arms, clock, target(HOME[:3], grip=0.0)).gripper for _ in range(80)]
    assert np.max(np.abs(np.diff([1.0, *openings]))) <= LIMITS.gripper_max_rate * DT + TOL
    assert openings[-1] == pytest.approx(0.0)
    cmds = grippers["left"].commands
    assert len(cmds) < len(openings)  # deadband suppresses repeats once the target is reached
    assert guard.counters["gripper_rate"] > 0


def test_config_errors_name_the_field():
    with pytest.raises(ConfigError, match=r"guard.arms.left.max_linear_speed"):
        GuardConfig.from_mapping({"arms": {"left": {
            "workspace_min": [0, 0, 0], "workspace_max": [1, 1, 1], "max_linear_speed": -1,
            "max_angular_speed": 1, "max_linear_acc": 1, "max_angular_acc": 1}}})
    with pytest.raises(ConfigError, match="workspace_min"):
        GuardConfig.from_mapping({"arms": {"left": {
            "workspace_min": [0, 0], "workspace_max": [1, 1, 1], "max_linear_speed": 1,
            "max_angular_speed": 1, "max_linear_acc": 1, "max_angular_acc": 1}}})
    with pytest.raises(ConfigError, match="'middle'"):
        GuardConfig.from_mapping({"arms": {"middle": {}}})
    with pytest.raises(ConfigError, match="missing mapping 'guard'"):
        load_guard_config({})


finite = st.floats(-3.0, 3.0)
weird = st.one_of(finite, st.just(math.nan), st.just(math.inf), st.just(-math.inf), st.floats(-1e6, 1e6))


@st.composite
def targets(draw):
    pos = [draw(weird) for _ in range(3)]
    if draw(st.booleans()):
        quat = Rotation.from_rotvec([draw(finite), draw(finite), draw(finite)]).as_quat()
    else:
        quat = [draw(weird) for _ in range(4)]
    return np.array([*pos, *quat, draw(weird)])


@st.composite
def scenario(draw):
    return [(draw(targets()), draw(st.sampled_from([0.0, 0.002, 0.01, 0.01, 0.05])), draw(st.booleans()))
            for _ in range(draw(st.integers(1, 40)))]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenario())
def test_property_no_target_sequence_breaks_the_limits(steps):
    guard, arms, _, clock = make_guard()
    fresh(guard, arms, clock)
    prev_pose, prev_t, prev_grip = None, None, None
    for tgt, dt, feed in steps:
        clock.advance(dt)
        if feed:
            fresh(guard, arms, clock)
        cmd = guard.command("left", tgt, clock.now())
        if not cmd.sent:
            continue
        pose = cmd.pose
        assert np.all(np.isfinite(pose))
        assert abs(np.linalg.norm(pose[3:7]) - 1.0) < 1e-9
        assert np.all(pose[:3] >= np.array(LIMITS.workspace_min) - TOL)
        assert np.all(pose[:3] <= np.array(LIMITS.workspace_max) + TOL)
        if cmd.gripper is not None:
            assert LIMITS.gripper_min - TOL <= cmd.gripper <= LIMITS.gripper_max + TOL
        if prev_pose is not None:
            elapsed = clock.now() - prev_t
            assert np.linalg.norm(pose[:3] - prev_pose[:3]) <= LIMITS.max_linear_speed * elapsed + TOL
            assert float(angle_between(pose[3:7], prev_pose[3:7])) <= LIMITS.max_angular_speed * elapsed + 1e-6
            if cmd.gripper is not None and prev_grip is not None:
                assert abs(cmd.gripper - prev_grip) <= LIMITS.gripper_max_rate * elapsed + TOL
        prev_pose, prev_t = pose, clock.now()
        if cmd.gripper is not None:
            prev_grip = cmd.gripper
    for sent in arms["left"].sent:
        assert np.all(np.isfinite(sent))
