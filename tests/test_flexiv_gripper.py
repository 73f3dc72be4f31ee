"""FlexivGripper against the flexivrdk v1.9 test double."""

from __future__ import annotations

import importlib.util
import sys
import time
from pathlib import Path
from types import ModuleType

import pytest

from rig.config import ConfigError
from rig.drivers.base import DeviceError
from rig.drivers.flexiv import FlexivArm, FlexivArmConfig
from rig.drivers.flexiv_gripper import FlexivGripper, FlexivGripperConfig

SERIAL = "Rizon4s-123456"


@pytest.fixture()
def sdk(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """A fresh copy of the flexivrdk double as `sys.modules["flexivrdk"]` for this test only."""
    path = Path(__file__).resolve().parent / "doubles" / "flexivrdk.py"
    spec = importlib.util.spec_from_file_location("flexivrdk", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "flexivrdk", module)
    spec.loader.exec_module(module)
    return module


def arm_dict(**over: object) -> dict:
    d = {"type": "flexiv", "serial": SERIAL, "max_linear_vel": 0.5, "max_angular_vel": 2.0,
         "max_linear_acc": 2.0, "max_angular_acc": 5.0, "max_contact_wrench": [20.0, 20.0, 20.0, 3.0, 3.0, 3.0],
         "home_plan": ""}
    d.update(over)
    return d


def gripper_cfg(**over: object) -> FlexivGripperConfig:
    d = {"type": "flexiv_gripper", "device_name": "Flexiv-GN01", "speed": 0.2, "force": 20.0, "init": True}
    d.update(over)
    return FlexivGripperConfig.from_dict("left", d)


def wait_still(gripper: FlexivGripper, timeout: float = 2.0) -> None:
    deadline = time.monotonic() + timeout
    time.sleep(0.02)
    while gripper.read_state().is_moving:
        assert time.monotonic() < deadline
        time.sleep(0.01)


def test_config_errors() -> None:
    with pytest.raises(ConfigError, match="type: 'robotiq_modbus'"):
        FlexivGripperConfig.from_dict("left", {"type": "robotiq_modbus", "device_name": "x"})
    with pytest.raises(ConfigError, match="device_name"):
        FlexivGripperConfig.from_dict("left", {"type": "flexiv_gripper"})


def test_enable_move_and_grasp(sdk: ModuleType) -> None:
    ctrl = sdk.controller(SERIAL)
    with FlexivArm(FlexivArmConfig.from_dict("left", arm_dict(home_plan=""))) as arm:
        gripper = FlexivGripper(gripper_cfg(), arm)
        with gripper:
            assert ctrl.gripper_enabled == "Flexiv-GN01" and "Gripper.Init" in ctrl.calls
            gripper.command(0.5)
            assert gripper.read_state().is_moving
            wait_still(gripper)
            state = gripper.read_state()
            assert state.width_m == pytest.approx(0.0425, abs=1e-6)
            assert state.opening == pytest.approx(0.5, abs=1e-6)
            assert not state.object_detected
            ctrl.gripper_object_width = 0.02
            gripper.command(0.0)
            wait_still(gripper)
            state = gripper.read_state()
            assert state.width_m == pytest.approx(0.02, abs=1e-6) and state.object_detected
            gripper.command(1.0, speed=5.0, force=1000.0)  # clipped to the device's max_vel / max_force
            assert ctrl.gripper_vel == pytest.approx(0.2)
            with pytest.raises(ValueError, match="opening"):
                gripper.command(1.5)
        assert ctrl.gripper_enabled == "" and "Gripper.Stop" in ctrl.calls


def test_unknown_device_is_device_error(sdk: ModuleType) -> None:
    arm = FlexivArm(FlexivArmConfig.from_dict("left", arm_dict(home_plan="")))
    with arm, pytest.raises(DeviceError, match="Robotiq"):
        FlexivGripper(gripper_cfg(device_name="Robotiq-2F-85"), arm).connect()

