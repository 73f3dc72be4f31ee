"""Each arm's SDK in its own process (rig.realtime.arm_process): a blocking, GIL-holding SDK call on
one arm (the flexivrdk double's Stop()) never delays the other arm's states or commands, nor the caller;
in one process it stalls both. Also the shared-memory ring the processes talk through."""

from __future__ import annotations

import contextlib
import threading
import time

import numpy as np
import pytest

from rig.drivers.base import DeviceError
from rig.drivers.flexiv import FlexivArm, FlexivArmConfig
from rig.realtime.arm_process import IsolatedArm
from rig.realtime.shm import ShmRing, unique_name
from tests.flexiv_double_factory import DoubleFlexivFactory
from tests.test_flexiv_arm import arm_dict, install_double

STOP_S = 0.6


def config(name: str, serial: str) -> FlexivArmConfig:
    return FlexivArmConfig.from_dict(name, arm_dict(serial=serial, home_plan="", tool=None))


def test_ring_single_writer_many_readers() -> None:
    name = unique_name("test")
    writer = ShmRing(name, 3, 4, create=True)
    reader = ShmRing(name, 3, 4, create=False)
    try:
        assert reader.latest() is None and reader.read_new() == []
        for i in range(3):
            writer.write(np.array([i, i, i], dtype=float))
        assert [r[0] for r in reader.read_new()] == [0, 1, 2]
        for i in range(3, 9):
            writer.write(np.array([i, i, i], dtype=float))
        got = reader.read_new()
        assert [r[0] for r in got] == [5, 6, 7, 8] and reader.lost == 2  # fell behind by more than capacity
        np.testing.assert_array_equal(reader.latest(), [8, 8, 8])
        with pytest.raises(ValueError, match="expected"):
            ShmRing(name, 4, 4, create=False)  # a layout mismatch is refused, not misread
    finally:
        reader.close()
        writer.close()
    assert not writer.path.exists()


class Probe:
    """Streams hold targets to the right arm at 100 Hz and records the largest gap in each arm's states."""

    def __init__(self, arms: dict) -> None:
        self.arms = arms
        self.gaps = {n: 0.0 for n in arms}
        self.last = {n: arms[n].read_state().t for n in arms}
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self) -> None:
        holds = {n: a.read_state().tcp_pose.copy() for n, a in self.arms.items()}
        while not self.stop.wait(0.01):
            now = time.monotonic()
            for n, arm in self.arms.items():
                t = arm.read_state().t
                if t != self.last[n]:  # gap between consecutive fresh samples (their own stamps)
                    self.gaps[n] = max(self.gaps[n], t - self.last[n])
                    self.last[n] = t
                else:
                    self.gaps[n] = max(self.gaps[n], now - self.last[n])
                if n == "right":
                    with contextlib.suppress(DeviceError):
                        arm.send_pose(holds[n])


def test_blocking_call_on_one_arm_never_delays_the_other() -> None:
    timing = {"stop_s": STOP_S, "first_state_s": 0.0}
    arms = {"left": IsolatedArm("left", DoubleFlexivFactory(config("left", "Rizon4s-100001"), timing)),
            "right": IsolatedArm("right", DoubleFlexivFactory(config("right", "Rizon4s-100002"), timing))}
    for arm in arms.values():
        arm.connect()
    try:
        assert arms["left"].pid != arms["right"].pid
        time.sleep(0.1)
        probe = Probe(arms)
        probe.thread.start()
        time.sleep(0.2)
        sent_before = arms["right"].record()["commands"]
        t0 = time.monotonic()
        arms["left"].stop()  # the left SDK now blocks STOP_S holding the GIL of the left process
        call_s = time.monotonic() - t0
        time.sleep(STOP_S + 0.2)
        probe.stop.set()
        probe.thread.join()
        right = arms["right"].record()
        assert call_s < 0.05, call_s
        assert probe.gaps["left"] >= STOP_S * 0.8  # the left process really was stalled
        assert probe.gaps["right"] < 0.15, probe.gaps  # the right arm's states kept coming
        assert right["commands"] - sent_before >= 0.5 * 100 * STOP_S  # and its commands kept flowing
        assert right["last_command_sent_t"] - right["last_command_written_t"] < 0.05
        with pytest.raises(DeviceError, match="stopped"):
            arms["left"].send_pose(arms["left"].read_state().tcp_pose)
        arms["left"].recover()
        arms["left"].send_pose(arms["left"].read_state().tcp_pose)
    finally:
        for arm in arms.values():
            arm.disconnect()
    assert not arms["left"].is_connected


def test_in_one_process_the_same_call_stalls_both_arms(monkeypatch: pytest.MonkeyPatch) -> None:
    """The contrast, so the test above proves something: without isolation the other arm stalls."""
    sdk = install_double(monkeypatch)  # this process only, undone after the test
    for serial in ("Rizon4s-200001", "Rizon4s-200002"):
        sdk.controller(serial).timing.stop_s = STOP_S
        sdk.controller(serial).timing.first_state_s = 0.0
    arms = {"left": FlexivArm(config("left", "Rizon4s-200001")),
            "right": FlexivArm(config("right", "Rizon4s-200002"))}
    for arm in arms.values():
        arm.connect()
    try:
        probe = Probe(arms)
        probe.thread.start()
        time.sleep(0.1)
        t0 = time.monotonic()
        arms["left"].stop()
        call_s = time.monotonic() - t0
        time.sleep(0.1)
        probe.stop.set()
        probe.thread.join()
        assert call_s >= STOP_S * 0.9
        assert probe.gaps["right"] >= STOP_S * 0.8  # the right arm's state thread stood still too
    finally:
        for arm in arms.values():
            arm.disconnect()


def test_connect_failure_in_the_arm_process_is_a_device_error() -> None:
    arm = IsolatedArm("left", DoubleFlexivFactory(config("left", "Grav-1")))
    with pytest.raises(DeviceError, match=r"arm left: cannot connect .*Robot model \[Grav\] is not supported"):
        arm.connect()
    assert not arm.is_connected


def test_state_record_round_trip_and_bad_records() -> None:
    from rig.realtime.arm_process import STATE_FIELDS, STATE_WIDTH, state_from_record
    from rig.schema import SchemaError

    rec = np.zeros(STATE_WIDTH)
    rec[STATE_FIELDS["t"]] = 12.5
    rec[STATE_FIELDS["q"]] = np.arange(7)
    rec[STATE_FIELDS["tcp_pose"]] = [0.4, 0.0, 0.3, 0.0, 0.0, 0.0, 1.0]
    state = state_from_record("left", rec, fault=True)
    assert state.t == 12.5 and state.fault and state.q.tolist() == list(range(7))
    rec[STATE_FIELDS["q"]][0] = 7.0
    assert state.q[0] == 0.0  # a copy, not a view of shared memory
    rec[STATE_FIELDS["tcp_pose"]] = [0.4, 0.0, 0.3, 0.0, 0.0, 0.0, 2.0]
    with pytest.raises(SchemaError, match="tcp_pose"):
        state_from_record("left", rec, fault=False)
    rec[STATE_FIELDS["tcp_pose"]] = [0.4, 0.0, 0.3, 0.0, 0.0, 0.0, 1.0]
    for key in ("dq", "tcp_vel", "ext_wrench"):
        good = rec[STATE_FIELDS[key]][0]
        rec[STATE_FIELDS[key]][0] = np.nan
        with pytest.raises(SchemaError, match=key):
            state_from_record("left", rec, fault=False)
        rec[STATE_FIELDS[key]][0] = good


def test_rig_arms_are_isolated_unless_a_flexiv_gripper_shares_them() -> None:
    from rig.drivers.flexiv_gripper import FlexivGripper, FlexivGripperConfig
    from rig.realtime.arm_process import isolate_flexiv_arms

    arms = {"left": FlexivArm(config("left", "Rizon4s-400001")), "right": FlexivArm(config("right", "Rizon4s-400002"))}
    gripper = FlexivGripper(FlexivGripperConfig("right", "Flexiv-GN01"), arms["right"])
    out = isolate_flexiv_arms(arms, {"right": gripper})
    assert isinstance(out["left"], IsolatedArm) and out["left"].max_command_hz == 100.0
    assert out["right"] is arms["right"]


def test_device_factories_rebuild_the_rig_in_another_process_or_refuse() -> None:
    import pickle

    from rig.drivers.flexiv_gripper import FlexivGripper, FlexivGripperConfig
    from rig.drivers.robotiq import RobotiqGripper
    from rig.realtime.arm_process import ConfiguredDevice, FlexivArmFactory, IsolatedArmFactory, device_factories
    from tests.test_robotiq import config as robotiq_config

    arms = {"left": FlexivArm(config("left", "Rizon4s-400011")), "right": FlexivArm(config("right", "Rizon4s-400012"))}
    grippers = {"left": RobotiqGripper(robotiq_config("/dev/ttyUSB7"))}
    made = device_factories(arms, grippers, isolate=True)
    assert made is not None
    arm_factories, gripper_factories = pickle.loads(pickle.dumps(made))  # they cross a spawn boundary
    assert isinstance(arm_factories["left"], IsolatedArmFactory)
    assert arm_factories["left"].driver.config.serial == "Rizon4s-400011"
    assert isinstance(device_factories(arms, {}, isolate=False)[0]["right"], FlexivArmFactory)
    assert isinstance(gripper_factories["left"], ConfiguredDevice)
    rebuilt = gripper_factories["left"]()
    assert isinstance(rebuilt, RobotiqGripper) and rebuilt.config == grippers["left"].config
    shared = FlexivGripper(FlexivGripperConfig("right", "Flexiv-GN01"), arms["right"])
    assert device_factories(arms, {"right": shared}, isolate=True) is None  # talks through the arm's SDK
