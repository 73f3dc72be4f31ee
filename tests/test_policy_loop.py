"""Policy loop (a2world_ros/runtime/policy_loop.py) without the twin: trigger, committed prefix from the
measured latency, simulated latency in lockstep, failures and retry, episode reset, the thread mode
through the policy server, and the factory the ROS policy node calls."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from a2world_ros.nodes.policy_loop import PolicyLoop as NodeProtocol
from a2world_ros.nodes.policy_loop import build_policy_loop
from a2world_ros.runtime.policy_loop import (
    LatencyTracker,
    PolicyLoop,
    PolicyLoopConfig,
    load_loop_config,
    request_from_observation,
)
from policy.interface import PolicyRequest, PolicyResult
from policy.server import PolicyServer, ServerConfig
from rig.config import ConfigError
from rig.schema import ArmState, CameraFrame, GripperState, Observation, SchemaError
from rig.timing import LockstepClock

DT = 1 / 30
POSE = np.array([0.4, 0.1, 0.3, 0.0, 0.0, 0.0, 1.0])


def observation(t: float, with_image: bool = True, z: float = 0.3) -> Observation:
    frames = {}
    if with_image:
        frames = {"front": CameraFrame(camera="front", t=t, color=np.zeros((8, 12, 3), np.uint8))}
    arms, grippers = {}, {}
    for arm in ("left", "right"):
        pose = POSE.copy()
        pose[2] = z
        arms[arm] = ArmState(arm=arm, t=t, q=np.zeros(7), dq=np.zeros(7), tau=np.zeros(7), tcp_pose=pose)
        grippers[arm] = GripperState(arm=arm, t=t, opening=0.5, width_m=0.0425)
    return Observation(t=t, frames=frames, arms=arms, grippers=grippers, task="from obs")


class TimePolicy:
    """Deterministic: step j of the answer (due at t_obs + (K + j) dt) has z = 0.3 + 0.01 * due time."""

    def __init__(self, steps: int = 60, delay_s: float = 0.0, max_prefix: int | None = None) -> None:
        self.steps = steps
        self.delay_s = delay_s
        self.max_prefix = max_prefix
        self.requests: list[PolicyRequest] = []
        self.fail = False

    def metadata(self) -> dict:
        meta = {"name": "time", "dt": DT}
        if self.max_prefix is not None:
            meta["max_prefix"] = self.max_prefix
        return meta

    def infer(self, request: PolicyRequest) -> PolicyResult:
        self.requests.append(request)
        if self.fail:
            raise ConnectionError("server gone")
        time.sleep(self.delay_s)
        k = len(request.prefix)
        due = request.t_obs + (k + np.arange(self.steps)) * DT
        chunk = np.repeat(request.state[None], self.steps, axis=0)
        chunk[:, :, 2] = (0.3 + 0.01 * due)[:, None]
        return PolicyResult(chunk=chunk, dt=DT)


def inline_loop(policy, clock: LockstepClock, **cfg) -> PolicyLoop:
    defaults = {"sim_latency_s": 0.1, "initial_latency_s": 0.1, "prefix_margin_s": 0.0, "trigger_remaining_s": 1.0,
                "min_interval_s": 0.0, "retry_s": 0.5}
    loop = PolicyLoop(policy, "lift the box", PolicyLoopConfig(**{**defaults, **cfg}), clock, mode="inline")
    loop.start()
    return loop


def test_config_from_mapping_and_errors():
    cfg = PolicyLoopConfig.from_mapping({"trigger_remaining_s": 0.5, "sim_latency_s": "measured", "latency_window": 7})
    assert cfg.trigger_remaining_s == 0.5 and cfg.sim_latency_s is None and cfg.latency_window == 7
    with pytest.raises(ConfigError, match=r"policy_loop: unknown keys \['bogus'\]"):
        PolicyLoopConfig.from_mapping({"bogus": 1})
    with pytest.raises(ConfigError, match=r"policy_loop.retry_s: -1.0"):
        PolicyLoopConfig.from_mapping({"retry_s": -1})
    with pytest.raises(ConfigError, match=r"sim_latency_s: 'fast', expected a number or 'measured'"):
        PolicyLoopConfig.from_mapping({"sim_latency_s": "fast"})
    assert isinstance(load_loop_config(), PolicyLoopConfig)  # config/run.yaml parses


def test_latency_tracker_percentiles():
    tracker = LatencyTracker(window=4, initial_s=0.3)
    assert tracker.p50 == tracker.p95 == 0.3
    for v in (0.1, 0.2, 0.3, 0.4, 1.0):  # the window keeps the last four
        tracker.add(v)
    assert tracker.values() == [0.2, 0.3, 0.4, 1.0]
    assert tracker.p50 == pytest.approx(0.35)
    assert 0.4 < tracker.p95 <= 1.0


def test_request_from_observation():
    req = request_from_observation(observation(2.0), "do it", np.zeros((3, 2, 8)) + np.r_[POSE, 1.0])
    assert req.state.shape == (2, 8) and req.state[0, 7] == 0.5 and req.t_obs == 2.0
    assert set(req.images) == {"front"} and req.prefix.shape == (3, 2, 8)
    obs = observation(0.0)
    broken = Observation(t=0.0, frames=obs.frames, arms={"left": obs.arms["left"]}, grippers=obs.grippers)
    with pytest.raises(SchemaError, match=r"no arm or gripper state for \['right'\]"):
        request_from_observation(broken, "x")


def test_inline_first_chunk_is_held_prefix_then_policy_released_after_simulated_latency():
    clock = LockstepClock(10.0)
    policy = TimePolicy()
    loop = inline_loop(policy, clock)
    loop.on_observation(observation(10.0))
    assert len(policy.requests) == 1
    req = policy.requests[0]
    k = len(req.prefix)
    assert k == 3  # ceil(initial latency 0.1 s / dt)
    np.testing.assert_allclose(req.prefix[:, 0, 2], 0.3)  # no plan yet: hold the measured state
    assert req.instruction == "lift the box"  # the configured instruction wins over obs.task
    clock.set(10.09)
    assert loop.next_chunk() is None  # still "thinking" in simulated time
    clock.set(10.1)
    chunk = loop.next_chunk()
    assert chunk is not None and loop.next_chunk() is None  # released once
    assert chunk.t0 == 10.0 and chunk.steps == 60 + k
    np.testing.assert_allclose(chunk.targets[k:, 0, 2], 0.3 + 0.01 * (10.0 + np.arange(k, k + 60) * DT))


def test_trigger_threshold_and_prefix_follows_the_emitted_plan():
    clock = LockstepClock(0.0)
    policy = TimePolicy()
    loop = inline_loop(policy, clock, trigger_remaining_s=0.5)
    loop.on_observation(observation(0.0))
    clock.set(0.1)
    first = loop.next_chunk()
    assert first is not None
    t = 0.1
    while first.times()[-1] - t >= 0.5:  # plan ends at 62/30 s: no new inference while > 0.5 s remain
        t += DT
        clock.set(t)
        loop.on_observation(observation(t))
        if len(policy.requests) > 1:
            break
    assert len(policy.requests) == 2
    assert first.times()[-1] - t < 0.5 <= first.times()[-1] - (t - DT)
    req = policy.requests[1]
    k = len(req.prefix)
    assert k == 3  # measured (simulated) latency 0.1 s -> 3 steps
    # The committed prefix is the running plan at t_obs + i dt (the TimePolicy's line: z = 0.3 + 0.01 t).
    np.testing.assert_allclose(req.prefix[:, 0, 2], 0.3 + 0.01 * (t + np.arange(k) * DT), atol=1e-9)
    assert loop.diagnostics()["inferences"] == 2.0


def test_prefix_grows_with_latency_and_respects_the_policy_maximum():
    clock = LockstepClock(0.0)
    loop = inline_loop(TimePolicy(max_prefix=5), clock, sim_latency_s=0.4, initial_latency_s=0.4,
                       prefix_margin_s=0.05)
    assert loop.prefix_steps() == 5  # ceil(0.45 / dt) = 14, capped by the policy's max_prefix
    loop = inline_loop(TimePolicy(), clock, initial_latency_s=0.2, prefix_margin_s=0.05)
    assert loop.prefix_steps() == 8  # ceil(0.25 * 30)


def test_failure_is_counted_and_retried_after_retry_s():
    clock = LockstepClock(0.0)
    policy = TimePolicy()
    policy.fail = True
    loop = inline_loop(policy, clock, retry_s=0.5)
    loop.on_observation(observation(0.0))
    assert loop.counters["failures"] == 1 and "server gone" in loop.last_error
    for t in np.arange(1, 15) * DT:  # < 0.5 s later: no new attempt
        clock.set(float(t))
        loop.on_observation(observation(float(t)))
    assert len(policy.requests) == 1 and loop.next_chunk() is None
    policy.fail = False
    clock.set(0.5)
    loop.on_observation(observation(0.5))
    assert len(policy.requests) == 2 and loop.last_error == ""
    clock.set(0.6)
    assert loop.next_chunk() is not None


def test_reset_drops_results_of_the_previous_episode_and_stop_blocks_inference():
    clock = LockstepClock(0.0)
    policy = TimePolicy()
    loop = inline_loop(policy, clock)
    loop.on_observation(observation(0.0))
    loop.reset()
    clock.set(1.0)
    assert loop.next_chunk() is None  # the pending result belonged to the old episode
    loop.stop()
    loop.on_observation(observation(1.0))
    assert len(policy.requests) == 1  # stopped: no inference
    loop.start()
    loop.on_observation(observation(1.0))
    assert len(policy.requests) == 2


def test_stale_observation_is_not_used():
    clock = LockstepClock(5.0)
    policy = TimePolicy()
    loop = inline_loop(policy, clock, max_observation_age_s=0.2)
    loop.on_observation(observation(4.5))
    assert policy.requests == [] and loop.counters["stale_skipped"] == 1


def test_bad_result_shape_is_a_failure_not_a_chunk():
    class Broken(TimePolicy):
        def infer(self, request):
            return PolicyResult(chunk=np.zeros((5, 2, 7)), dt=DT)

    clock = LockstepClock(0.0)
    loop = inline_loop(Broken(), clock)
    loop.on_observation(observation(0.0))
    clock.set(1.0)
    assert loop.next_chunk() is None and "expected (T, 2, 8)" in loop.last_error


def test_thread_mode_through_the_policy_server_measures_latency():
    policy = TimePolicy(delay_s=0.05)
    server = PolicyServer(policy, ServerConfig(address="tcp://127.0.0.1:0"))
    server.start_background()
    try:
        params = {"loop": {"trigger_remaining_s": 1.0, "initial_latency_s": 0.1, "prefix_margin_s": 0.0},
                  "client_timeout_s": 2.0}
        loop = build_policy_loop("a2world_ros.runtime.policy_loop:make_policy_loop", server.address, "pick", params)
        assert isinstance(loop, NodeProtocol) and isinstance(loop, PolicyLoop)
        loop.start()
        now = time.monotonic()
        loop.on_observation(observation(now))
        chunk = loop.wait_chunk(3.0)
        assert chunk is not None and chunk.t0 == pytest.approx(now)
        assert chunk.steps == 60 + 3
        assert 0.05 <= loop.latency.p50 < 1.0
        diag = loop.diagnostics()
        assert diag["inferences"] == 1.0 and diag["inference_latency_p50_ms"] >= 50.0
        loop.close()
    finally:
        server.stop()


def test_thread_mode_does_not_block_on_observation():
    gate = threading.Event()

    class Slow(TimePolicy):
        def infer(self, request):
            gate.wait(5.0)
            return super().infer(request)

    loop = PolicyLoop(Slow(), "x", PolicyLoopConfig(initial_latency_s=0.1), mode="thread")
    loop.start()
    t0 = time.perf_counter()
    for _ in range(5):
        loop.on_observation(observation(time.monotonic()))
    assert time.perf_counter() - t0 < 0.05
    gate.set()
    assert loop.wait_chunk(3.0) is not None
    loop.close()
