"""FlexivArm against the flexivrdk double where the real SDK differs from a happy path: zero-initialised
states, a dropped link, a stalled state stream, TypeError from pybind, serial checks, blocking calls
that hold the GIL, FT zeroing and contact limits."""

from __future__ import annotations

import threading
import time
from types import ModuleType

import numpy as np
import pytest

import rig.drivers.flexiv as flexiv_driver
from rig.config import ConfigError
from rig.drivers.base import DeviceError
from rig.drivers.flexiv import FlexivArmConfig
from tests.test_flexiv_arm import SERIAL, arm_dict, install_double, make_arm, stream


@pytest.fixture()
def sdk(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    return install_double(monkeypatch)


def wait_for(pred: object, timeout: float = 2.0) -> None:
    deadline = time.monotonic() + timeout
    while not pred():  # type: ignore[operator]
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.005)


def test_contact_wrench_is_required_and_validated() -> None:
    d = arm_dict()
    del d["max_contact_wrench"]
    with pytest.raises(ConfigError, match=r"missing key 'max_contact_wrench'"):
        FlexivArmConfig.from_dict("left", d)
    with pytest.raises(ConfigError, match=r"max_contact_wrench: \[20.0, 20.0, 0.0"):
        FlexivArmConfig.from_dict("left", arm_dict(max_contact_wrench=[20, 20, 0, 3, 3, 3]))
    with pytest.raises(ConfigError, match=r"zero_ft_sensor: 'yes', expected true or false"):
        FlexivArmConfig.from_dict("left", arm_dict(zero_ft_sensor="yes"))


def test_connect_waits_for_the_first_state_packet(sdk: ModuleType) -> None:
    ctrl = sdk.controller(SERIAL)
    ctrl.timing.first_state_s = 0.15  # states() is zero-initialised (empty q, zero quaternion) until then
    assert len(sdk.RobotStates().q) == 0 and sdk.RobotStates().tcp_pose == [0.0] * 7
    with make_arm(home_plan="") as arm:
        state = arm.read_state()
        assert state.q.shape == (7,) and abs(np.linalg.norm(state.tcp_pose[3:]) - 1.0) < 1e-9
    ctrl.timing.first_state_s = 5.0
    with pytest.raises(DeviceError, match="first state packet"):
        make_arm(home_plan="", first_state_timeout_s=0.1).connect()


def test_dropped_link_latches_a_fault_and_ages_the_state(sdk: ModuleType) -> None:
    ctrl = sdk.controller(SERIAL)
    with make_arm(home_plan="") as arm:
        pose = arm.read_state().tcp_pose.copy()
        stream(arm, pose, 0.05)
        ctrl.drop_link()
        wait_for(arm.in_fault, 0.5)
        assert "connection lost" in arm.fault_reason
        wait_for(lambda: arm.read_state().fault, 0.5)
        t_last = arm.read_state().t
        time.sleep(0.1)
        assert arm.read_state().t == t_last  # the frozen sample keeps its time: it ages, it is not re-stamped
        sent = len(ctrl.nrt_command_times)
        with pytest.raises(DeviceError, match="connection lost"):
            arm.send_pose(pose)
        assert len(ctrl.nrt_command_times) == sent
        with pytest.raises(DeviceError, match="no connection"):
            arm.recover()


def test_stalled_state_stream_latches_a_fault(sdk: ModuleType) -> None:
    ctrl = sdk.controller(SERIAL)
    with make_arm(home_plan="", state_timeout_s=0.05) as arm:
        pose = arm.read_state().tcp_pose.copy()
        stream(arm, pose, 0.05)
        ctrl.freeze_states()  # connected() still True, but the robot timestamp stops
        t0 = time.monotonic()
        wait_for(arm.in_fault, 1.0)
        assert time.monotonic() - t0 < 0.5
        assert "has not advanced" in arm.fault_reason
        with pytest.raises(DeviceError, match="in fault"):
            arm.send_pose(pose)
        with pytest.raises(DeviceError, match="still stalled"):
            arm.recover()
        ctrl.frozen = None  # the stream resumes: recovery is possible again
        time.sleep(0.05)
        arm.recover()
        arm.send_pose(arm.read_state().tcp_pose)


def test_type_error_from_the_sdk_latches_the_fault(sdk: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    with make_arm(home_plan="") as arm:
        pose = arm.read_state().tcp_pose.copy()
        arm.send_pose(pose)
        time.sleep(0.02)
        # A malformed vector reaches the SDK: pybind raises TypeError (not ValueError); it must latch.
        monkeypatch.setattr(flexiv_driver, "pose_to_flexiv", lambda p: list(p)[:6])
        with pytest.raises(DeviceError, match="incompatible function arguments"):
            arm.send_pose(pose)
        assert arm.in_fault() and "TypeError" in arm.fault_reason


def test_serial_checks_follow_the_real_sdk(sdk: ModuleType) -> None:
    with pytest.raises(DeviceError, match=r"Format of the provided robot serial number \[Rizon4s123456\]"):
        make_arm(serial="Rizon4s123456").connect()
    with pytest.raises(DeviceError, match=r"Robot model \[Grav\] is not supported"):
        make_arm(serial="Grav-1").connect()


def test_unreachable_robot_blocks_holding_the_gil(sdk: ModuleType) -> None:
    ctrl = sdk.controller(SERIAL)
    ctrl.reachable = False
    ctrl.timing.unreachable_connect_s = 0.3
    gaps: list[float] = []
    stop = threading.Event()

    def ticker() -> None:
        last = time.monotonic()
        while not stop.wait(0.002):
            now = time.monotonic()
            gaps.append(now - last)
            last = now

    thread = threading.Thread(target=ticker)
    thread.start()
    time.sleep(0.02)
    t0 = time.monotonic()
    with pytest.raises(DeviceError, match=r"Failed to connect to \[Rizon4s-123456\]"):
        make_arm().connect()
    elapsed = time.monotonic() - t0
    stop.set()
    thread.join()
    assert elapsed >= 0.3
    assert max(gaps) >= 0.25  # every other Python thread stood still, as with the real SDK (3.2 s there)


def test_ft_zeroing_removes_the_offset(sdk: ModuleType) -> None:
    ctrl = sdk.controller(SERIAL)
    with make_arm(home_plan="", zero_ft_sensor=False) as arm:
        np.testing.assert_allclose(arm.read_state().ext_wrench, ctrl.FT_BIAS, atol=1e-9)  # unzeroed
    ctrl.timing.zero_ft_s = 0.1
    with make_arm(home_plan="") as arm:
        calls = ctrl.calls
        i = calls.index("ExecutePrimitive:ZeroFTSensor")
        assert calls[i - 1] == "SwitchMode:NRT_PRIMITIVE_EXECUTION"
        np.testing.assert_allclose(arm.read_state().ext_wrench, 0.0, atol=1e-9)
        # A contact now shows up, capped by the max contact wrench from rig.yaml.
        ctrl.contact_wrench = [0.0, 0.0, 50.0, 0.0, 0.0, 0.0]
        time.sleep(0.02)
        assert arm.read_state().ext_wrench[2] == pytest.approx(20.0)


def test_contact_limits_are_set_again_after_recover(sdk: ModuleType) -> None:
    ctrl = sdk.controller(SERIAL)
    with make_arm(home_plan="", max_contact_wrench=[10, 10, 10, 1, 1, 1]) as arm:
        ctrl.inject_fault()
        wait_for(arm.in_fault)
        arm.recover()
        assert ctrl.max_contact_wrench == [10.0, 10.0, 10.0, 1.0, 1.0, 1.0]
        assert ctrl.force_axes == [False] * 6


def test_rate_check_on_the_callers_clock(sdk: ModuleType) -> None:
    """An arm process passes the executor's command times: transport jitter is not a rate violation,
    but the caller's own rate still is."""
    with make_arm(home_plan="") as arm:
        pose = arm.read_state().tcp_pose.copy()
        t0 = time.monotonic()
        for k in range(5):  # delivered back to back, issued 10 ms apart
            arm.send_pose(pose, t=t0 + 0.01 * k - 0.05)
        with pytest.raises(flexiv_driver.CommandRateError):
            for _ in range(3):  # issued at the same instant: a burst
                arm.send_pose(pose, t=t0)
