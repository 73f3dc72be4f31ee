"""FlexivArm against the flexivrdk v1.9 test double (tests/doubles/flexivrdk.py)."""

from __future__ import annotations

import importlib.util
import sys
import time
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from rig.config import ConfigError
from rig.drivers.base import DeviceError
from rig.drivers.flexiv import (
    CommandRateError,
    FlexivArm,
    FlexivArmConfig,
    pose_from_flexiv,
    pose_to_flexiv,
)
from rig.rotations import angle_between, normalize_quat

DOUBLES = Path(__file__).resolve().parent / "doubles"
SERIAL = "Rizon4s-123456"


def install_double(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """A fresh copy of the flexivrdk double as `sys.modules["flexivrdk"]` for this test only."""
    spec = importlib.util.spec_from_file_location("flexivrdk", DOUBLES / "flexivrdk.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "flexivrdk", module)
    spec.loader.exec_module(module)
    return module


@pytest.fixture()
def sdk(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    return install_double(monkeypatch)


def arm_dict(**over: object) -> dict:
    d = {
        "type": "flexiv",
        "serial": SERIAL,
        "command_hz": 100.0,
        "state_hz": 200.0,
        "max_linear_vel": 0.5,
        "max_angular_vel": 2.0,
        "max_linear_acc": 2.0,
        "max_angular_acc": 5.0, "max_contact_wrench": [20.0, 20.0, 20.0, 3.0, 3.0, 3.0],
        "home_plan": "PLAN-Home",
        "tool": {"name": "Robotiq2F85", "mass": 0.925, "com": [0.0, 0.0, 0.058],
                 "inertia": [2.2e-3, 2.2e-3, 1.0e-3, 0.0, 0.0, 0.0],
                 "tcp": [0.0, 0.0, 0.174, 0.0, 0.0, 0.0, 1.0]},
    }
    d.update(over)
    return d


def make_arm(**over: object) -> FlexivArm:
    return FlexivArm(FlexivArmConfig.from_dict("left", arm_dict(**over)))


def stream(arm: FlexivArm, target: np.ndarray, seconds: float) -> int:
    period = 1.0 / arm.config.command_hz
    next_t = time.monotonic()
    sent = 0
    end = next_t + seconds
    while next_t < end:
        arm.send_pose(target)
        sent += 1
        next_t += period
        now = time.monotonic()
        if now >= next_t:  # a fixed-grid loop skips the ticks it missed instead of catching up
            next_t += (now - next_t) // period * period + period
        time.sleep(max(0.0, next_t - time.monotonic()))
    return sent


def test_config_from_rig_yaml_and_errors() -> None:
    cfg = FlexivArmConfig.from_rig_yaml("left")
    assert cfg.command_hz <= 100.0 and cfg.state_hz >= 100.0 and cfg.tool is not None
    with pytest.raises(ConfigError, match=r"command_hz: 250.0"):
        FlexivArmConfig.from_dict("left", arm_dict(command_hz=250.0))
    with pytest.raises(ConfigError, match=r"state_hz"):
        FlexivArmConfig.from_dict("left", arm_dict(state_hz=50.0))
    with pytest.raises(ConfigError, match=r"unknown key\(s\) \['max_lin_vel'\]"):
        FlexivArmConfig.from_dict("left", arm_dict(max_lin_vel=1.0))
    with pytest.raises(ConfigError, match=r"serial: 12 is not a string"):
        FlexivArmConfig.from_dict("left", arm_dict(serial=12))
    with pytest.raises(ConfigError, match=r"tool.tcp"):
        FlexivArmConfig.from_dict("left", arm_dict(tool={"name": "t", "mass": 1.0, "com": [0, 0, 0],
                                                         "tcp": [0, 0, 0, 0, 0, 0, 2]}))


def test_missing_sdk_is_a_clear_device_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "flexivrdk", None)  # makes `import flexivrdk` raise ImportError
    with pytest.raises(DeviceError, match=r"flexivrdk is not installed"):
        make_arm().connect()


def test_pose_order_round_trip() -> None:
    rng = np.random.default_rng(0)
    for _ in range(50):
        pose = np.concatenate([rng.normal(size=3), normalize_quat(rng.normal(size=4))])
        flex = pose_to_flexiv(pose)
        assert flex[3] == pytest.approx(pose[6]) and flex[4:] == pytest.approx(list(pose[3:6]))
        np.testing.assert_allclose(pose_from_flexiv(flex), pose, atol=1e-12)
    # Identity: Flexiv's scalar-first [1, 0, 0, 0] is our [0, 0, 0, 1].
    assert pose_to_flexiv([0, 0, 0, 0, 0, 0, 1])[3:] == [1.0, 0.0, 0.0, 0.0]


def test_startup_sequence_and_tool(sdk: ModuleType) -> None:
    ctrl = sdk.controller(SERIAL)
    ctrl.faulted = True  # a fault left over from a previous session is cleared at connect
    arm = make_arm()
    with arm:
        calls = ctrl.calls
        expected = ["Robot", "ClearFault", "Enable", "SwitchMode:IDLE", "Tool.Add:Robotiq2F85",
                    "Tool.Switch:Robotiq2F85", "SwitchMode:NRT_PLAN_EXECUTION", "ExecutePlan:PLAN-Home",
                    "SwitchMode:NRT_PRIMITIVE_EXECUTION", "ExecutePrimitive:ZeroFTSensor",
                    "SwitchMode:NRT_CARTESIAN_MOTION_FORCE", "SetForceControlAxis", "SetMaxContactWrench"]
        assert calls[: len(expected)] == expected
        assert ctrl.active_tool == "Robotiq2F85"
        tool = ctrl.tools["Robotiq2F85"]
        assert tool.mass == pytest.approx(0.925)
        assert tool.tcp_location == pytest.approx([0.0, 0.0, 0.174, 1.0, 0.0, 0.0, 0.0])  # qw first
        assert ctrl.mode == sdk.Mode.NRT_CARTESIAN_MOTION_FORCE
        state = arm.read_state()
        np.testing.assert_allclose(state.tcp_pose[:3], ctrl.HOME_POSE[:3], atol=1e-9)
        # Contact safety from rig.yaml, pure motion stated explicitly, FT sensor zeroed with the arm still.
        assert ctrl.max_contact_wrench == [20.0, 20.0, 20.0, 3.0, 3.0, 3.0]
        assert ctrl.force_axes == [False] * 6
        np.testing.assert_allclose(state.ext_wrench, 0.0, atol=1e-9)
        assert not state.fault
    # Second connect: the tool exists already and is updated, not added twice.
    with make_arm():
        assert "Tool.Update:Robotiq2F85" in ctrl.calls


def test_state_rate_at_least_100_hz(sdk: ModuleType) -> None:
    with make_arm(home_plan="") as arm:
        time.sleep(1.2)
        stats = arm.stats()
        state = arm.read_state()
    assert stats.rate_hz >= 100.0, stats
    assert stats.samples >= 120
    assert abs(time.monotonic() - state.t) < 0.5


def test_streaming_moves_the_tcp(sdk: ModuleType) -> None:
    with make_arm(home_plan="") as arm:
        start = arm.read_state().tcp_pose.copy()
        target = start.copy()
        target[1] += 0.05
        with pytest.raises(DeviceError, match="first target is 0.050 m"):
            arm.send_pose(target)  # the stream must start at the measured pose, not jump at max speed
        sent = stream(arm, start, 0.02)
        sent += stream(arm, target, 0.4)  # 0.05 m at 0.5 m/s takes 0.1 s
        time.sleep(0.02)
        state = arm.read_state()
        ctrl = sdk.controller(SERIAL)
        np.testing.assert_allclose(state.tcp_pose[:3], target[:3], atol=1e-6)
        assert float(angle_between(state.tcp_pose[3:], target[3:])) < 1e-6
        # +1: the driver holds the measured pose when streaming starts
        assert len(ctrl.nrt_command_times) == sent + 1 == arm.stats().extra["commands"] + 1
        times = np.asarray(ctrl.nrt_command_times[1:])
        assert (times[-1] - times[0]) / (len(times) - 1) >= 0.0099  # never faster than 100 Hz on average
        assert ctrl.limits == (0.5, 2.0, 2.0, 5.0)


def test_rotation_is_sent_in_flexiv_order(sdk: ModuleType) -> None:
    with make_arm(home_plan="", command_hz=50.0) as arm:
        start = arm.read_state().tcp_pose
        target = start.copy()
        target[3:] = normalize_quat([0.0, 0.7071068, 0.0, 0.7071068])  # 90 deg about y
        stream(arm, start, 0.05)
        arm.send_pose(target)
        ctrl = sdk.controller(SERIAL)
        assert ctrl.target[3:] == pytest.approx([0.7071068, 0.0, 0.7071068, 0.0], abs=1e-6)


def test_command_faster_than_configured_rate_is_refused(sdk: ModuleType) -> None:
    with make_arm(home_plan="", command_hz=50.0) as arm:
        pose = arm.read_state().tcp_pose
        arm.send_pose(pose)
        arm.send_pose(pose)  # one period of jitter tolerance: a late tick then an on-time tick
        with pytest.raises(CommandRateError, match="early"):
            arm.send_pose(pose)  # a third one within the same period is a burst
        time.sleep(0.045)
        arm.send_pose(pose)
        # A 200 Hz loop is mostly refused: the accepted average never exceeds 50 Hz.
        accepted = 0
        t0 = time.monotonic()
        for _ in range(40):
            try:
                arm.send_pose(pose)
                accepted += 1
            except CommandRateError:
                pass
            time.sleep(0.005)
        elapsed = time.monotonic() - t0
        assert accepted <= elapsed * 50.0 + 2
        assert arm.stats().extra["refused"] >= 40 - accepted


def test_fault_mid_stream_requires_recover(sdk: ModuleType) -> None:
    ctrl = sdk.controller(SERIAL)
    with make_arm(home_plan="") as arm:
        pose = arm.read_state().tcp_pose.copy()
        stream(arm, pose, 0.1)
        ctrl.inject_fault()
        sent_before = len(ctrl.nrt_command_times)
        with pytest.raises(DeviceError, match="fault"):
            stream(arm, pose, 0.1)
        assert arm.in_fault()
        time.sleep(0.05)
        assert arm.read_state().fault  # reported in the state stream too
        assert len(ctrl.nrt_command_times) == sent_before  # nothing reached the controller
        # Even if the controller's fault disappears by itself, the driver stays latched.
        ctrl.faulted = False
        with pytest.raises(DeviceError, match="recover"):
            arm.send_pose(pose)
        ctrl.faulted = True
        arm.recover()
        assert not arm.in_fault()
        assert ctrl.calls[-5:] == ["ClearFault", "Enable", "SwitchMode:NRT_CARTESIAN_MOTION_FORCE",
                                   "SetForceControlAxis", "SetMaxContactWrench"]
        time.sleep(0.02)
        arm.send_pose(pose)
        assert len(ctrl.nrt_command_times) == sent_before + 2  # the hold at the stream's start, then ours
        time.sleep(0.02)
        assert not arm.read_state().fault


def test_recover_fails_loudly_when_fault_stays(sdk: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    ctrl = sdk.controller(SERIAL)
    with make_arm(home_plan="", enable_timeout_s=0.2) as arm:
        ctrl.inject_fault()
        monkeypatch.setattr(sdk.Robot, "ClearFault", lambda self, timeout_sec=30: False)
        with pytest.raises(DeviceError, match="ClearFault"):
            arm.recover()
        assert arm.in_fault()


def test_stop_then_recover_and_clean_disconnect(sdk: ModuleType) -> None:
    ctrl = sdk.controller(SERIAL)
    arm = make_arm(home_plan="")
    arm.connect()
    pose = arm.read_state().tcp_pose.copy()
    target = pose.copy()
    target[0] += 0.2
    arm.send_pose(pose)
    time.sleep(0.02)
    arm.send_pose(target)
    time.sleep(0.05)
    arm.stop()
    assert ctrl.mode == sdk.Mode.IDLE
    time.sleep(0.05)
    held = arm.read_state().tcp_pose[0]
    assert pose[0] < held < target[0]  # stopped part-way
    with pytest.raises(DeviceError, match="stopped"):
        arm.send_pose(target)
    arm.recover()
    time.sleep(0.02)
    arm.send_pose(arm.read_state().tcp_pose)
    arm.disconnect()
    assert ctrl.calls[-1] == "Stop" and not arm.is_connected
    arm.disconnect()  # second call is harmless
    with pytest.raises(DeviceError, match="not connected"):
        arm.send_pose(target)


def test_bad_pose_is_rejected(sdk: ModuleType) -> None:
    with make_arm(home_plan="") as arm:
        with pytest.raises(ValueError, match="7 finite"):
            arm.send_pose(np.zeros(6))
        with pytest.raises(ValueError, match="unit length"):
            arm.send_pose(np.array([0.5, 0, 0.4, 0, 0, 0, 2.0]))


def test_bad_serial_is_device_error(sdk: ModuleType) -> None:
    with pytest.raises(DeviceError, match="cannot connect"):
        FlexivArm(FlexivArmConfig.from_dict("left", arm_dict(serial="nonsense"))).connect()
