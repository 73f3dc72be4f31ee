"""The arms node's component with the executor, guard and arms in their own process (ProcessArmBridge)
on the flexivrdk double: command messages in, arm and gripper state messages out, the committed target
(the RTC prefix) across the process boundary, e-stop / reset / start and diagnostics; and the ArmsNode
wired to it through the rclpy double with each arm's SDK in one more process."""

from __future__ import annotations

import functools
import time

import numpy as np
import pytest

from a2world_ros.nodes.arm_process_bridge import ProcessArmBridge
from rig.conventions import ARM_NAMES
from rig.dataformats import ros_messages as rm
from rig.executor import ExecutorConfig
from rig.realtime.arm_process import IsolatedArmFactory
from rig.realtime.executor_process import RealtimeConfig
from rig.safety import GuardConfig
from rig.timing import MonotonicClock
from tests.doubles.rig_devices import RecordingGripper
from tests.flexiv_double_factory import DoubleFlexivFactory
from tests.ros_env import ros_doubles
from tests.test_arm_process import config
from tests.test_executor_process import LIMITS

ros_module = pytest.fixture(scope="module")(ros_doubles)


def factories(serial_base: int, isolate: bool):
    arms = {}
    for i, name in enumerate(ARM_NAMES):
        driver = DoubleFlexivFactory(config(name, f"Rizon4s-{serial_base + i}"))
        arms[name] = IsolatedArmFactory(name, driver) if isolate else driver
    grippers = {name: functools.partial(RecordingGripper, name, 0.5, MonotonicClock()) for name in ARM_NAMES}
    return arms, grippers


def wait_for(poll, seconds: float = 10.0):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        out = poll()
        if out:
            return out
        time.sleep(0.02)
    raise AssertionError(f"nothing from {poll} within {seconds} s")


def chunk_messages(start: np.ndarray, t0_ns: int, dy: float, steps: int = 30):
    targets = np.zeros((steps, len(ARM_NAMES), 8))
    targets[:, :, :7] = start
    targets[:, :, 1] += np.linspace(0.0, dy, steps)[:, None]
    targets[:, :, 7] = 0.5
    return rm.chunk_msgs(targets, t0_ns, 1 / 30)


def test_process_bridge_states_grippers_chunks_committed_estop_reset() -> None:
    arms, grippers = factories(300100, isolate=False)
    # 50 Hz: below the driver's own 100 Hz admission, which a catch-up tick under load would trip.
    cfg = RealtimeConfig(ExecutorConfig(command_hz=50.0), GuardConfig(arms={n: LIMITS for n in ARM_NAMES}),
                         arms, grippers, gripper_hz=20.0)
    bridge = ProcessArmBridge(cfg, rm.ClockMap.now())
    bridge.start_control()
    try:
        states = wait_for(bridge.drain_states)
        topics_seen = {topic for topic, _ in states}
        assert {f"/arms/{a}/joint_states" for a in ARM_NAMES} <= topics_seen
        assert {f"/arms/{a}/tcp_pose" for a in ARM_NAMES} <= topics_seen
        grips = dict(wait_for(bridge.poll_grippers))
        assert set(grips) == {f"/arms/{a}/gripper_state" for a in ARM_NAMES}
        assert grips["/arms/left/gripper_state"].position[0] == pytest.approx(0.5)
        assert bridge.poll_grippers() == [] or all(  # each reading is published once
            rm.stamp_ns(m.header.stamp) > rm.stamp_ns(grips[t].header.stamp) for t, m in bridge.poll_grippers())

        start = bridge.last_tick.states["left"].tcp_pose
        now_ns = bridge.clock_map.to_ros_ns(time.monotonic())
        poses, gripper_msg = chunk_messages(start, now_ns, 0.03)
        assert bridge.on_command_poses(poses) == "waiting"
        assert bridge.on_command_grippers(gripper_msg) == "ignored"  # not started
        assert bridge.start() == (True, "accepting command chunks")
        poses, gripper_msg = chunk_messages(start, bridge.clock_map.to_ros_ns(time.monotonic()), 0.03)
        bridge.on_command_poses(poses)
        assert bridge.on_command_grippers(gripper_msg) == "queued"
        time.sleep(0.4)
        bridge.drain_states()
        sent = bridge.last_tick.commands["left"]
        assert sent is not None and start[1] < sent[0][1] <= start[1] + 0.03 + 1e-6
        committed = bridge.committed("left", time.monotonic() + 0.1)  # across the control pipe
        assert committed is not None and committed.shape == (8,)
        assert start[1] < committed[1] <= start[1] + 0.03 + 1e-6 and committed[7] == pytest.approx(0.5)
        (entry,) = bridge.diagnostics()
        values = dict(entry.values)
        assert entry.level == "OK" and values["started"] == "True" and values["executor.chunks"] == "1"
        assert float(values["tick_period_s"]) == pytest.approx(0.02, rel=0.2)

        bridge.estop(True)
        assert not bridge.started and bridge.committed("left", time.monotonic()) is None  # plans cleared
        ok, message = bridge.start()
        assert not ok and "e-stop" in message
        (entry,) = bridge.diagnostics()
        assert entry.level == "ERROR" and "e-stop latched" in entry.message
        assert bridge.reset()[0] and bridge.start()[0]
        with pytest.raises(RuntimeError, match="no lockstep"):
            bridge.tick(time.monotonic())
    finally:
        bridge.stop_control()
    assert not bridge.runtime.running


def test_arms_node_runs_the_executor_process(ros_module) -> None:
    from rclpy.parameter import Parameter
    from rclpy.testing import call_service, fire_timers, published

    from a2world_ros.nodes.arms_node import ArmsNode
    from a2world_ros.params import flatten, load_node_params

    params = load_node_params("policy.yaml", "arms")
    assert params["executor_process"] is True  # the default of the real rig
    node = ArmsNode(parameter_overrides=[Parameter(k, value=v) for k, v in flatten(params).items()],
                    factories=factories(300200, isolate=True))
    try:
        assert type(node.bridge).__name__ == "ProcessArmBridge" and node.bridge.runtime.running
        for _ in range(50):
            time.sleep(0.05)
            fire_timers(node)
            if published(node, "/arms/right/tcp_pose") and published(node, "/arms/right/gripper_state"):
                break
        assert published(node, "/arms/left/joint_states") and published(node, "/arms/right/tcp_pose")
        assert published(node, "/arms/right/gripper_state")[-1].position[0] == pytest.approx(0.5)
        response = call_service(node, "/arms/start")
        assert response.success, response.message
        diag = published(node, "/diagnostics")[-1].status[0]
        assert diag.name == "arms" and {kv.key for kv in diag.values} >= {"executor_pid", "tick_jitter_p99_s"}
    finally:
        node.close()
        node.destroy_node()
    assert not node.bridge.runtime.running
