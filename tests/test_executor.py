"""Chunk executor: latency-compensated sampling, dropping passed steps, holding, splicing and blending,
the real-time thread runner and the rate keeper."""

from __future__ import annotations

import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rig.config import ConfigError
from rig.executor import ArmPlan, ChunkExecutor, ExecutorConfig, ExecutorThread
from rig.rotations import interpolate_poses
from rig.safety import ArmLimits, GuardConfig, SafetyGuard
from rig.schema import CommandChunk
from rig.timing import LockstepClock, MonotonicClock, RateKeeper
from tests.doubles.rig_devices import HOME, RecordingArm, RecordingGripper

TICK = 0.01
SPEED = 0.25


def limits(speed: float = SPEED) -> ArmLimits:
    if speed == SPEED:
        return ArmLimits((0.0, -0.6, 0.0), (0.9, 0.6, 0.8), speed, 1.0, 1.0, 3.0)
    return ArmLimits((0.0, -0.6, 0.0), (0.9, 0.6, 0.8), speed, 100.0, 1e4, 1e4, gripper_max_rate=100.0)


def make(latency: float = 0.03, blend: float = 0.2, speed: float = SPEED):
    clock = LockstepClock(50.0)
    arms = {n: RecordingArm(n, clock=clock) for n in ("left", "right")}
    grippers = {n: RecordingGripper(n) for n in ("left", "right")}
    guard = SafetyGuard(GuardConfig(arms={"left": limits(speed), "right": limits(speed)}), arms, grippers, clock)
    for n in arms:
        guard.observe_gripper(n, 1.0)
    ex = ChunkExecutor(ExecutorConfig(latency_s=latency, blend_s=blend), guard)
    return ex, arms, grippers, clock


def line_chunk(t0: float, start: np.ndarray, velocity: np.ndarray, steps: int = 60, dt: float = 1 / 30,
               grip: float = 1.0) -> CommandChunk:
    targets = np.zeros((steps, 2, 8))
    for a in range(2):
        targets[:, a, :3] = start[:3] + np.outer(np.arange(steps) * dt, velocity)
        targets[:, a, 3:7] = start[3:7]
        targets[:, a, 7] = grip
    return CommandChunk(targets=targets, t0=t0, dt=dt)


def run(ex: ChunkExecutor, clock: LockstepClock, seconds: float) -> list:
    results = []
    for _ in range(round(seconds / TICK)):
        clock.advance(TICK)
        results.append(ex.tick(clock.now()))
    return results


def test_samples_at_now_plus_latency_with_slerp_and_linear_gripper():
    ex, arms, _, clock = make(latency=0.03, speed=10.0)
    targets = np.zeros((3, 2, 8))
    for k, (angle, grip) in enumerate([(0.0, 1.0), (0.2, 0.5), (0.4, 0.0)]):
        quat = np.array([np.sin(angle / 2), 0, 0, np.cos(angle / 2)])
        targets[k, :, :3] = HOME[:3] + np.array([0.001 * k, 0, 0])
        targets[k, :, 3:7] = quat
        targets[k, :, 7] = grip
    chunk = CommandChunk(targets, t0=clock.now() + 0.05, dt=0.1)
    for arm in arms.values():
        arm.pose = targets[0, 0, :7].copy()
    ex.submit(chunk, clock.now())
    ex.tick(clock.now())  # the guard's first command seeds from the measured pose
    clock.set(chunk.t0 + 0.12 - 0.03)  # sample time t0 + 0.12: between steps 1 and 2
    result = ex.tick(clock.now())
    want = interpolate_poses(chunk.times(), chunk.arm("left")[:, :7], [chunk.t0 + 0.12])[0]
    assert result.sample_t == pytest.approx(chunk.t0 + 0.12)
    sampled = ex._tracks["left"].last_target
    assert np.allclose(sampled[:7], want, atol=1e-12)
    assert sampled[7] == pytest.approx(0.5 - 0.5 * 0.2)
    cmd = result.commands["left"]  # generous limits: the guard passes it through
    assert cmd.reasons == () and np.allclose(cmd.pose, want, atol=1e-9)
    assert cmd.gripper == pytest.approx(sampled[7])


def test_gripper_is_interpolated_linearly():
    plan = ArmPlan(np.array([0.0, 1.0]), np.array([[*HOME, 1.0], [*HOME, 0.0]]))
    assert plan.sample(0.25)[7] == pytest.approx(0.75)
    assert plan.sample(-1.0)[7] == 1.0 and plan.sample(5.0)[7] == 0.0


def test_drops_passed_steps_and_holds_last_target():
    ex, arms, _, clock = make()
    chunk = line_chunk(clock.now() - 1.0, HOME, np.array([0.05, 0, 0]), steps=45)
    ex.submit(chunk, clock.now())
    plan = ex._tracks["left"].plan
    assert plan.times[0] <= clock.now() + 0.03 < plan.times[1]  # everything older was dropped
    run(ex, clock, 1.0)
    last = chunk.arm("left")[-1]
    assert np.allclose(arms["left"].sent[-1][:3], last[:3], atol=1e-6)
    n = len(arms["left"].sent)
    run(ex, clock, 0.2)
    assert len(arms["left"].sent) == n + 20  # keeps streaming the held target
    assert np.allclose(arms["left"].sent[-1], arms["left"].sent[n - 1])


def test_splice_with_committed_prefix_does_not_blend():
    ex, _, _, clock = make()
    v = np.array([0.06, 0.0, 0.0])
    first = line_chunk(clock.now(), HOME, v)
    ex.submit(first, clock.now())
    run(ex, clock, 0.5)
    # The policy was given the committed prefix: the new chunk continues the same line from an old step.
    k0 = 12
    second = line_chunk(first.t0 + k0 * first.dt, first.arm("left")[k0], v)
    assert ex.submit(second, clock.now()) == {"left": "splice", "right": "splice"}
    assert ex.stats.last_splice_offset["left"] < 1e-9


@settings(max_examples=10, deadline=None)
@given(offset=st.floats(0.005, 0.15), direction=st.integers(0, 2), when=st.floats(0.1, 0.6))
def test_blend_has_no_position_jump_above_speed_limit(offset, direction, when):
    ex, arms, _, clock = make(speed=10.0)  # generous guard: this checks the executor's own output
    v = np.array([0.05, 0.0, 0.0])
    first = line_chunk(clock.now(), HOME, v)
    ex.submit(first, clock.now())
    run(ex, clock, when)
    t_s = clock.now() + 0.03
    start = ex.committed("left", t_s)[:7].copy()
    start[direction] += offset
    second = line_chunk(t_s, start, v)
    assert ex.submit(second, clock.now())["left"] == "blend"
    spliced_at = len(arms["left"].sent) - 1
    run(ex, clock, 2.5)
    sent = np.array(arms["left"].sent)[spliced_at:, :3]
    speeds = np.linalg.norm(np.diff(sent, axis=0), axis=1) / TICK
    assert speeds.max() <= ex.config.blend_max_speed + np.linalg.norm(v) + 1e-6 < SPEED
    assert np.allclose(sent[-1], second.arm("left")[-1, :3], atol=1e-6)


def test_without_blending_the_jump_reaches_the_guard():
    ex, arms, _, clock = make(blend=0.0, speed=10.0)
    ex.submit(line_chunk(clock.now(), HOME, np.zeros(3)), clock.now())
    run(ex, clock, 0.1)
    shifted = HOME.copy()
    shifted[0] += 0.05
    ex.submit(line_chunk(clock.now(), shifted, np.zeros(3)), clock.now())
    run(ex, clock, 0.05)
    speeds = np.linalg.norm(np.diff(np.array(arms["left"].sent)[:, :3], axis=0), axis=1) / TICK
    assert speeds.max() > SPEED  # sanity check of the test above


def test_guard_limits_speed_even_when_a_chunk_jumps():
    ex, arms, _, clock = make(blend=0.0)
    ex.submit(line_chunk(clock.now(), HOME + np.array([0.3, 0, 0, 0, 0, 0, 0]), np.zeros(3)), clock.now())
    run(ex, clock, 0.5)
    speeds = np.linalg.norm(np.diff(np.array(arms["left"].sent)[:, :3], axis=0), axis=1) / TICK
    assert speeds.max() <= SPEED + 1e-9
    assert ex.guard.counters["linear_speed"] + ex.guard.counters["linear_acc"] > 0


def test_nothing_sent_after_estop_and_clear_forgets_plans():
    ex, arms, _, clock = make()
    ex.submit(line_chunk(clock.now(), HOME, np.array([0.05, 0, 0])), clock.now())
    run(ex, clock, 0.1)
    n = len(arms["left"].sent)
    ex.guard.estop("button", clock.now())
    run(ex, clock, 0.3)
    assert len(arms["left"].sent) == n
    ex.clear()
    ex.guard.reset(clock.now())
    run(ex, clock, 0.1)
    assert len(arms["left"].sent) == n and not ex.has_plan()


def test_config_from_mapping_errors():
    assert ExecutorConfig.from_mapping({"latency_s": 0.05}).latency_s == 0.05
    with pytest.raises(ConfigError, match="executor.blend_s"):
        ExecutorConfig.from_mapping({"blend_s": -1})
    with pytest.raises(ConfigError, match="unknown key"):
        ExecutorConfig.from_mapping({"latency": 0.05})
    assert ExecutorConfig.from_mapping({"rt_priority": 20}).rt_priority == 20
    with pytest.raises(ConfigError, match="rt_priority"):
        ExecutorConfig.from_mapping({"rt_priority": 120})
    with pytest.raises(ConfigError, match="rt_priority"):
        ExecutorConfig.from_mapping({"rt_priority": 2.5})


def test_thread_runs_in_real_time_and_latches_estop_on_error():
    clock = MonotonicClock()
    arms = {n: RecordingArm(n, clock=clock) for n in ("left", "right")}
    guard = SafetyGuard(GuardConfig(arms={"left": limits(), "right": limits()}), arms)
    ex = ChunkExecutor(ExecutorConfig(command_hz=100.0), guard)
    ex.submit(line_chunk(clock.now(), HOME, np.array([0.02, 0, 0])), clock.now())
    ticks = []
    with ExecutorThread(ex, clock, on_tick=ticks.append) as runner:
        time.sleep(0.3)
        assert runner.running
    assert 20 <= len(ticks) <= 35
    summary = runner.jitter()
    assert summary.ticks == len(ticks) and summary.mean_period == pytest.approx(0.01, rel=0.2)

    def boom(_):
        raise RuntimeError("publisher gone")

    runner = ExecutorThread(ex, clock, on_tick=boom).start()
    time.sleep(0.05)
    assert not runner.running and guard.estopped and isinstance(runner.error, RuntimeError)


def test_rate_keeper_lockstep_and_overrun_skip():
    clock = LockstepClock(0.0)
    rk = RateKeeper(100.0, clock)
    times = [rk.wait() for _ in range(5)]
    assert np.allclose(np.diff(times), 0.01)
    clock.advance(0.055)  # the loop stalled for five periods
    t = rk.wait()
    assert t == pytest.approx(0.09) and rk.stats.overruns == 1
    assert rk.wait() == pytest.approx(0.10)


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10_000), n=st.integers(2, 8))
def test_plan_sampling_matches_interpolate_poses(seed, n):
    from scipy.spatial.transform import Rotation

    rng = np.random.default_rng(seed)
    times = np.cumsum(rng.uniform(0.01, 0.2, n))
    targets = np.zeros((n, 8))
    targets[:, :3] = rng.normal(size=(n, 3))
    targets[:, 3:7] = Rotation.random(n, random_state=seed).as_quat()
    targets[:, 7] = rng.uniform(0, 1, n)
    plan = ArmPlan(times, targets)
    query = rng.uniform(times[0] - 0.1, times[-1] + 0.1, 20)
    want = interpolate_poses(times, targets[:, :7], query)
    got = np.array([plan.sample(q) for q in query])
    assert np.allclose(got[:, :3], want[:, :3], atol=1e-12)
    assert np.allclose(np.abs(np.sum(got[:, 3:7] * want[:, 3:7], axis=1)), 1.0, atol=1e-9)
    assert np.allclose(got[:, 7], np.interp(query, times, targets[:, 7]))


def test_numpy_quaternion_helpers_match_scipy():
    from scipy.spatial.transform import Rotation

    from rig.rotations import (
        normalize_quat,
        quat_conjugate,
        quat_multiply,
        quat_to_rotvec,
        rotvec_to_quat,
        slerp_quat,
        slerp_quats,
    )

    a = Rotation.random(50, random_state=1)
    b = Rotation.random(50, random_state=2)
    qa, qb = a.as_quat(), b.as_quat()
    assert np.allclose(normalize_quat(quat_multiply(qa, qb)), normalize_quat((a * b).as_quat()))
    assert np.allclose(normalize_quat(quat_conjugate(qa)), normalize_quat(a.inv().as_quat()))
    assert np.allclose(quat_to_rotvec(qa), a.as_rotvec())
    assert np.allclose(normalize_quat(rotvec_to_quat(a.as_rotvec())), normalize_quat(qa))
    assert np.allclose(quat_to_rotvec([0, 0, 0, 1.0]), 0) and np.allclose(rotvec_to_quat(np.zeros(3)), [0, 0, 0, 1])
    alpha = np.linspace(0, 1, 50)
    want = np.array([slerp_quat(qa[i], qb[i], alpha[i]) for i in range(50)])
    assert np.allclose(slerp_quats(qa, qb, alpha), want)
    assert np.allclose(slerp_quats(qa[0], qa[0], 0.5), normalize_quat(qa[0]))


def test_rate_meter_and_jitter_stats():
    from rig.timing import JitterStats, RateMeter

    meter = RateMeter(window_s=1.0)
    for k in range(50):
        meter.tick(10.0 + k * 0.02)
    assert meter.rate(10.99) == pytest.approx(50.0) and meter.rate(12.5) == 0.0 and meter.count == 50
    stats = JitterStats(window=100)
    for k in range(100):
        stats.record(k * 0.01, k * 0.01 + (0.002 if k == 99 else 0.0001))
    summary = stats.summary()
    assert summary.p50 == pytest.approx(0.0001) and summary.max == pytest.approx(0.002)
    assert summary.mean_period == pytest.approx(0.01, rel=0.01) and summary.ticks == 100


class SlowReadArm(RecordingArm):
    """An arm whose `read_state` takes `delay` seconds (the twin waiting for its lock under load) and
    stamps the state when it hands it out, as a driver must: later than the tick's start."""

    def __init__(self, name: str, clock: LockstepClock, delay: float) -> None:
        super().__init__(name, clock=clock)
        self.delay = delay

    def read_state(self):
        self.clock.advance(self.delay)
        return super().read_state()


def test_a_slow_state_read_is_judged_at_its_receipt_not_the_tick_start():
    """A state handed out 20 ms after the tick began is not a future stamp (guard.future_stamp stayed
    0 only while reads were instant); the tick's commands go out at the time after the reads."""
    clock = LockstepClock(50.0)
    arms = {n: SlowReadArm(n, clock, 0.02) for n in ("left", "right")}
    guard = SafetyGuard(GuardConfig(arms={"left": limits(), "right": limits()}), arms,
                        {n: RecordingGripper(n) for n in arms}, clock)
    ex = ChunkExecutor(ExecutorConfig(latency_s=0.03), guard)
    ex.submit(line_chunk(clock.now(), HOME, np.array([0.02, 0, 0])), clock.now())
    results = run(ex, clock, 0.5)
    assert guard.counters["future_stamp"] == 0, dict(guard.counters)
    assert all(set(r.states) == {"left", "right"} for r in results)
    assert all(r.commands[a].sent for r in results[1:] for a in arms), dict(guard.counters)
    assert all(r.now >= max(s.t for s in r.states.values()) for r in results)
    assert len(arms["left"].sent) == len(results)
