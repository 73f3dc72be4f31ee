"""RobotiqGripper and the Modbus RTU client against a fake 2F-85 on a pseudo-terminal."""

from __future__ import annotations

import importlib.util
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
import serial

from rig.config import ConfigError
from rig.drivers.base import DeviceError
from rig.drivers.modbus_rtu import (
    ModbusCrcError,
    ModbusExceptionError,
    ModbusRtuClient,
    ModbusTimeoutError,
    crc16_modbus,
    with_crc,
)
from rig.drivers.robotiq import (
    RobotiqConfig,
    RobotiqGripper,
    RobotiqRequest,
    RobotiqStatus,
    force_to_byte,
    speed_to_byte,
)


def load_fake() -> ModuleType:
    path = Path(__file__).resolve().parent / "doubles" / "robotiq_fake.py"
    spec = importlib.util.spec_from_file_location("robotiq_fake", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("robotiq_fake", module)
    spec.loader.exec_module(module)
    return module


FakeRobotiq = load_fake().FakeRobotiq


@pytest.fixture()
def fake() -> Iterator:
    with FakeRobotiq(activation_time_s=0.15) as f:
        yield f


def config(port: str, **over: object) -> RobotiqConfig:
    d = {"type": "robotiq_modbus", "port": port, "slave_id": 9, "baudrate": 115200, "speed": 0.15,
         "force": 60.0, "timeout_s": 0.03, "retries": 2, "poll_hz": 100.0, "position_open": 3,
         "position_closed": 228}
    d.update(over)
    return RobotiqConfig.from_dict("left", d)


def wait_for(predicate, timeout: float = 3.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.01)


def test_crc_and_documented_frames() -> None:
    assert crc16_modbus(b"123456789") == 0x4B37  # CRC-16/MODBUS check value
    # Activation request frames from the 2F-85 manual's example (clear, then rACT=1).
    clear = with_crc(bytes.fromhex("091003E8000306000000000000"))
    assert clear[-2:] == bytes.fromhex("7330")
    assert RobotiqRequest(act=True).registers() == [0x0100, 0, 0]
    assert with_crc(bytes.fromhex("091003E8000306") + bytes.fromhex("010000000000"))[-2:] == bytes.fromhex("72E1")


def test_register_codec() -> None:
    status = RobotiqStatus.from_registers([0xF900, 0x0EE3, 0xBF1A])  # gOBJ=3 gSTA=3 gGTO gACT; fault 0x0E
    assert (status.gACT, status.gGTO, status.gSTA, status.gOBJ) == (1, 1, 3, 3)
    assert status.gFLT == 0x0E and status.fault and "overcurrent" in status.fault_text
    assert (status.gPR, status.gPO, status.gCU) == (0xE3, 0xBF, 0x1A)
    assert RobotiqRequest(act=True, gto=True, position=0xFF, speed=0x80, force=0x10).registers() == [
        0x0900, 0x00FF, 0x8010]
    assert speed_to_byte(0.02) == 0 and speed_to_byte(0.150) == 255 and speed_to_byte(1.0) == 255
    assert force_to_byte(20.0) == 0 and force_to_byte(235.0) == 255 and force_to_byte(127.5) == 128


def test_config_errors() -> None:
    with pytest.raises(ConfigError, match="slave_id: 300"):
        config("/dev/null", slave_id=300)
    with pytest.raises(ConfigError, match="position_open 200 / position_closed 100"):
        config("/dev/null", position_open=200, position_closed=100)
    cfg = RobotiqConfig.from_rig_yaml("left")
    assert cfg.slave_id == 9 and cfg.baudrate == 115200


def test_activation(fake) -> None:
    gripper = RobotiqGripper(config(fake.port_name))
    t0 = time.monotonic()
    gripper.connect()
    try:
        assert time.monotonic() - t0 >= 0.15  # waited for gSTA == 3
        status = gripper.latest_status()
        assert status is not None and status.activated and status.gACT == 1 and not status.fault
        state = gripper.read_state()
        assert state.opening == pytest.approx(1.0) and not state.fault
    finally:
        gripper.disconnect()


def test_action_before_activation_reports_fault_code(fake) -> None:
    port = serial.Serial(fake.port_name, 115200, timeout=0.03)
    try:
        client = ModbusRtuClient(port, slave_id=9, timeout_s=0.03, retries=1)
        client.write_multiple_registers(0x03E8, RobotiqRequest(act=False, gto=True, position=100).registers())
        status = RobotiqStatus.from_registers(client.read_input_registers(0x07D0, 3))
        assert status.gFLT == 0x07 and "activation bit" in status.fault_text and not status.activated
    finally:
        port.close()


def test_move_and_reach(fake) -> None:
    with RobotiqGripper(config(fake.port_name)) as gripper:
        gripper.command(0.5)  # 0.0425 m at 150 mm/s: ~0.3 s
        wait_for(lambda: gripper.read_state().is_moving)
        wait_for(lambda: not gripper.read_state().is_moving and gripper.latest_status().gOBJ == 3)
        state = gripper.read_state()
        counts_per_m = (228 - 3) / 0.085
        assert state.width_m == pytest.approx(0.0425, abs=1.0 / counts_per_m)
        assert state.opening == pytest.approx(0.5, abs=0.01)
        assert fake.width_m() == pytest.approx(state.width_m, abs=1.0 / counts_per_m)
        assert not state.object_detected
        stats = gripper.stats()
        assert stats.rate_hz > 20.0 and stats.extra["timeouts"] == 0


def test_speed_is_respected(fake) -> None:
    with RobotiqGripper(config(fake.port_name)) as gripper:
        t0 = time.monotonic()
        gripper.command(0.0, speed=0.02)  # slowest: 20 mm/s
        time.sleep(0.3)
        moved_mm = (0.085 - gripper.read_state().width_m) * 1e3
        assert 3.0 < moved_mm < (time.monotonic() - t0) * 20.0 + 1.0


def test_object_detection(fake) -> None:
    fake.object_width_m = 0.030
    with RobotiqGripper(config(fake.port_name)) as gripper:
        gripper.command(0.0, force=100.0)
        wait_for(lambda: gripper.read_state().object_detected)
        state = gripper.read_state()
        assert state.width_m == pytest.approx(0.030, abs=0.001) and not state.is_moving
        assert gripper.latest_status().gOBJ == 2
        gripper.command(1.0)  # opening releases the object
        wait_for(lambda: gripper.latest_status().gOBJ == 3)
        assert gripper.read_state().opening == pytest.approx(1.0)


def test_fault_code_is_reported(fake) -> None:
    with RobotiqGripper(config(fake.port_name)) as gripper:
        fake.inject_fault(0x0E)
        wait_for(lambda: gripper.read_state().fault)
        assert "overcurrent" in gripper.latest_status().fault_text
        gripper.activate()  # reset + reactivation clears it
        wait_for(lambda: not gripper.read_state().fault)


def test_crc_corruption_detected_and_retried(fake) -> None:
    with RobotiqGripper(config(fake.port_name, poll_hz=5.0)) as gripper:
        client = gripper.client
        assert client is not None
        before = client.stats.crc_errors
        fake.corrupt_next(1)
        assert RobotiqStatus.from_registers(client.read_input_registers(0x07D0, 3)).activated
        assert client.stats.crc_errors == before + 1 and client.stats.retries >= 1
        fake.corrupt_next(100)
        with pytest.raises(ModbusCrcError, match="CRC mismatch"):
            client.read_input_registers(0x07D0, 3)
        fake.corrupt_next(0)
        with pytest.raises(ModbusExceptionError, match="illegal data address"):
            client.read_input_registers(0x0000, 3)


def test_timeout_when_peer_is_silent(fake) -> None:
    with RobotiqGripper(config(fake.port_name, poll_hz=5.0)) as gripper:
        client = gripper.client
        assert client is not None
        fake.silent = True
        t0 = time.monotonic()
        with pytest.raises(ModbusTimeoutError, match="timeout after 30 ms"):
            client.read_input_registers(0x07D0, 3)
        elapsed = time.monotonic() - t0
        assert 0.09 <= elapsed < 0.5  # three attempts of 30 ms
        fake.silent = False


def test_connect_fails_cleanly_without_peer(tmp_path: Path) -> None:
    with pytest.raises(DeviceError, match="cannot open"):
        RobotiqGripper(config(str(tmp_path / "ttyNOPE"))).connect()
    with FakeRobotiq() as silent_fake:
        silent_fake.silent = True
        with pytest.raises(ModbusTimeoutError):
            RobotiqGripper(config(silent_fake.port_name, retries=0)).connect()


def test_calibration_finds_mechanical_limits(fake) -> None:
    with RobotiqGripper(config(fake.port_name, position_open=0, position_closed=255)) as gripper:
        assert gripper.calibrate() == (3, 228)
        gripper.command(0.25)
        request = gripper.width_to_position(0.085 * 0.25)
        wait_for(lambda: gripper.latest_status().gPR == request and gripper.latest_status().gOBJ == 3)
        assert gripper.read_state().width_m == pytest.approx(0.085 * 0.25, abs=0.0005)
