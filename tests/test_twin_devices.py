"""Sim devices on one shared twin: the driver interfaces, lockstep and realtime clocks, faults, config errors."""

from __future__ import annotations

import time

import numpy as np
import pytest

from rig.config import ConfigError
from rig.conventions import ARM_NAMES, CAMERA_NAMES
from rig.drivers.base import Arm, Camera, DeviceError, Gripper
from rig.sim.devices import SimArm, make_sim_rig
from rig.sim.twin import Twin

SMALL = {"render": {"height": 48, "width": 64}}


def test_lockstep_rig_implements_driver_interfaces() -> None:
    cameras, arms, grippers = make_sim_rig(SMALL)
    assert set(cameras) == set(CAMERA_NAMES) and set(arms) == set(ARM_NAMES) and set(grippers) == set(ARM_NAMES)
    assert all(isinstance(c, Camera) for c in cameras.values())
    assert all(isinstance(a, Arm) for a in arms.values()) and all(isinstance(g, Gripper) for g in grippers.values())
    twin = arms["left"].twin
    assert all(dev.twin is twin for dev in [*cameras.values(), *arms.values(), *grippers.values()])
    with pytest.raises(DeviceError, match="not connected"):
        arms["left"].read_state()
    for dev in [*cameras.values(), *arms.values(), *grippers.values()]:
        dev.connect()

    frame = cameras["front"].latest()
    assert frame is not None and frame.color.shape == (48, 64, 3) and frame.t == 0.0
    assert cameras["front"].intrinsics.width == 64
    with pytest.raises(DeviceError, match="step the twin"):
        cameras["front"].wait_frame(newer_than=frame.t, timeout=0.01)

    start = arms["left"].read_state()
    target = start.tcp_pose.copy()
    target[2] += 0.05
    for _ in range(100):  # 1 s of 100 Hz streaming, stepping the twin in lockstep
        arms["left"].send_pose(target)
        twin.step(0.01)
    state = arms["left"].read_state()
    assert abs(state.t - 1.0) < 1e-9
    assert np.linalg.norm(state.tcp_pose[:3] - target[:3]) < 0.002
    newer = cameras["wrist_left"].wait_frame(newer_than=frame.t, timeout=0.01)
    assert newer.frame_number == 30 and newer.t == pytest.approx(1.0)

    grippers["right"].command(0.2, speed=0.1, force=40.0)
    twin.step(1.0)
    grip = grippers["right"].read_state()
    assert abs(grip.opening - 0.2) < 0.02 and grip.width_m == pytest.approx(0.017, abs=0.002)
    with pytest.raises(DeviceError, match=r"\[0, 1\]"):
        grippers["right"].command(2.0)
    with pytest.raises(DeviceError, match=r"\(7,\)"):
        arms["right"].send_pose(np.zeros(3))
    assert arms["left"].stats().samples == 2 and cameras["wrist_left"].stats().samples == 1
    for dev in [*cameras.values(), *arms.values(), *grippers.values()]:
        dev.disconnect()
    assert not arms["left"].is_connected


def test_fault_blocks_commands_until_recover() -> None:
    _, arms, _ = make_sim_rig(SMALL)
    arm = arms["left"]
    assert isinstance(arm, SimArm)
    arm.connect()
    pose = arm.read_state().tcp_pose
    arm.inject_fault("test")
    assert arm.in_fault() and arm.read_state().fault
    with pytest.raises(DeviceError, match="in fault"):
        arm.send_pose(pose)
    arm.recover()
    assert not arm.in_fault()
    arm.send_pose(pose)
    arm.disconnect()


def test_realtime_rig_paces_to_monotonic_clock() -> None:
    cameras, arms, _ = make_sim_rig({**SMALL, "clock": "realtime"})
    arm, cam = arms["right"], cameras["front"]
    arm.connect()
    cam.connect()
    try:
        frame = cam.wait_frame(newer_than=-1.0, timeout=5.0)
        assert abs(frame.t - time.monotonic()) < 0.5
        first = arm.read_state()
        time.sleep(0.3)
        second = arm.read_state()
        assert 0.29 < second.t - first.t < 1.0  # monotonic host time (upper bound: a loaded CI host)
        sim_elapsed = arm.twin.sim_time
        assert sim_elapsed > 0.1
        later = cam.wait_frame(newer_than=frame.t, timeout=2.0)
        assert later.frame_number > frame.frame_number
    finally:
        arm.disconnect()
        cam.disconnect()
    assert not arm.rig.running


def test_config_errors_name_the_key() -> None:
    with pytest.raises(ConfigError, match=r"arms\.motion\.max_linear_vel"):
        Twin({"arms": {"motion": {"max_linear_vel": "fast"}}, **SMALL})
    with pytest.raises(ValueError, match="control_hz"):
        Twin({"physics": {"control_hz": 250}, **SMALL})  # 600 Hz physics / 250 is not whole
    with pytest.raises(ValueError, match="clock"):
        Twin(SMALL, clock="sometimes")
    with pytest.raises(ConfigError, match=r"home_q\.left"):
        Twin({"arms": {"home_q": {"left": [0, 0]}}, **SMALL})


def test_realtime_twin_states_are_never_future_stamped_for_the_executor() -> None:
    """The twin in realtime (physics and render threads) under the real executor thread and guard of
    config/policy.yaml: every arm state is stamped no later than it is handed out, and the guard
    refuses none as `future_stamp` (208 on the real-ROS expert run before the executor judged states
    at their receipt: reads wait on the twin's lock)."""
    import yaml

    from rig.config import config_path
    from rig.executor import ChunkExecutor, ExecutorConfig, ExecutorThread
    from rig.safety import SafetyGuard, load_guard_config

    params = yaml.safe_load(config_path("policy.yaml").read_text())["/**"]["ros__parameters"]
    cameras, arms, grippers = make_sim_rig({**SMALL, "clock": "realtime"})
    devices = [*cameras.values(), *arms.values(), *grippers.values()]
    for dev in devices:
        dev.connect()
    try:
        guard = SafetyGuard(load_guard_config(params), arms, grippers)
        executor = ChunkExecutor(ExecutorConfig(), guard)
        thread = ExecutorThread(executor).start()
        ahead = []
        deadline = time.monotonic() + 1.5
        while time.monotonic() < deadline:
            for arm in arms.values():
                ahead.append(arm.read_state().t - time.monotonic())
            frame = cameras["front"].latest()
            if frame is not None:
                ahead.append(frame.t - time.monotonic())
            time.sleep(0.002)
        thread.stop()
        assert thread.error is None
        assert max(ahead) <= 0.0, f"a sample stamped {max(ahead) * 1e3:.3f} ms after it was handed out"
        assert executor.stats.counters["ticks"] > 50
        assert guard.counters["future_stamp"] == 0, dict(guard.counters)
    finally:
        for dev in devices:
            dev.disconnect()
