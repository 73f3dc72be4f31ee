"""`a2world rig list|check` and `rig.factory.build_rig` on a machine without any rig hardware,
plus `check_rig` against software RealSense cameras streaming at and below 30 fps."""

import importlib.util
import sys
import time

import numpy as np
import pytest
import yaml

from a2world_ros.cli.cmd_rig import check_rig
from a2world_ros.cli.main import main
from rig.config import ConfigError, load_yaml
from rig.drivers.base import DeviceError
from rig.drivers.realsense import RealSenseCamera, RealSenseConfig
from rig.drivers.realsense_software import FrameFeeder, SoftwareRealSense, SoftwareSource
from rig.factory import Rig, build_rig


def write_config(tmp_path, cameras=None, arms=None, grippers=None):
    data = {"/**": {"ros__parameters": {"rig": "real"}}}
    for key, value in (("cameras", cameras), ("arms", arms), ("grippers", grippers)):
        if value is not None:
            data[key] = {"ros__parameters": value}
    path = tmp_path / "rig.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


CAMS = {
    "front": {"model": "D435i", "serial": "000000000001"},
    "wrist_left": {"model": "D405", "serial": "000000000002"},
}


# ------------------------------------------------------------------------------------------- list


def test_list_without_devices_reports_cleanly(tmp_path, capsys):
    cams = {**CAMS, "wrist_right": {"model": "D405", "serial": "000000000003"}}  # every watched camera
    left = {**load_yaml("rig.yaml")["arms"]["ros__parameters"]["left"], "serial": "Rizon4s-1"}  # complete entry
    path = write_config(tmp_path, cameras=cams, arms={"left": left})
    assert main(["rig", "list", "--config", str(path)]) == 0
    out = capsys.readouterr().out
    assert "no RealSense devices connected" in out
    assert "front" in out and "000000000001" in out and "NOT CONNECTED" in out
    assert "Rizon4s-1" in out


def test_list_with_repository_config(capsys):
    assert main(["rig", "list"]) == 0
    out = capsys.readouterr().out
    for name in ("front", "wrist_left", "wrist_right"):
        assert name in out


def test_list_bad_config_is_exit_2(tmp_path, capsys):
    assert main(["rig", "list", "--config", str(tmp_path / "nope.yaml")]) == 2
    assert "nope.yaml" in capsys.readouterr().out


def test_rig_group_without_subcommand_prints_help(capsys):
    assert main(["rig"]) == 0
    assert "list" in capsys.readouterr().out


# ------------------------------------------------------------------------------------------ check


def test_check_reports_missing_cameras(tmp_path, capsys):
    path = write_config(tmp_path, cameras=CAMS)
    assert main(["rig", "check", "--config", str(path), "--seconds", "0.2"]) == 1
    out = capsys.readouterr().out
    assert out.count("FAIL camera") == 2
    assert "no RealSense device with serial '000000000001'" in out
    assert "no RealSense devices connected" in out
    assert "0/2 devices OK" in out


def test_check_with_repository_config_fails_every_missing_device(capsys):
    assert main(["rig", "check", "--seconds", "0.2"]) == 1
    out = capsys.readouterr().out
    for kind, name in [("camera", "front"), ("camera", "wrist_left"), ("arm", "left"), ("gripper", "right")]:
        assert f"FAIL {kind}" in out and name in out
    assert "0/7 devices OK" in out


def test_check_bad_arguments_and_config(tmp_path, capsys):
    assert main(["rig", "check", "--seconds", "0"]) == 2
    path = write_config(tmp_path, cameras={"front": {"model": "D435i", "serial": 1}})
    assert main(["rig", "check", "--config", str(path)]) == 2
    assert "cameras.front.serial" in capsys.readouterr().out


def software_rig(fps_by_serial):
    devices = [SoftwareRealSense(s, "D405") for s in fps_by_serial]
    source = SoftwareSource(devices)
    cams = {
        f"cam{i}": RealSenseCamera(RealSenseConfig.from_dict(f"cam{i}", {"serial": d.serial, "model": "D405"}), source)
        for i, d in enumerate(devices)
    }
    feeders = [FrameFeeder([d], fps=fps_by_serial[d.serial]) for d in devices]
    return Rig(cameras=cams), feeders


def test_check_rig_measures_camera_rates():
    rig, feeders = software_rig({"555555555555": 30.0, "666666666666": 10.0})
    for f in feeders:
        f.start()
    try:
        time.sleep(0.05)
        reports = {r.name: r for r in check_rig(rig, seconds=1.0)}
    finally:
        for f in feeders:
            f.stop()
    fast, slow = reports["cam0"], reports["cam1"]
    pushes = np.array(feeders[0].push_times)
    fed = np.count_nonzero(pushes > pushes[-1] - 1.0)  # frames fed during the last second of the check
    assert fast.rate_hz == pytest.approx(fed, rel=0.1) and fast.dropped == 0
    if fed >= 28:  # the feeder kept 30 fps (not starved of CPU): the check passes this camera
        assert fast.ok
    assert not slow.ok and "below 90% of 30 Hz" in slow.problems[0]
    assert not rig.cameras["cam0"].is_connected  # check disconnects what it connected


# ---------------------------------------------------------------------------------------- factory


def test_build_real_rig_from_repository_config():
    rig = build_rig("rig.yaml")
    assert sorted(rig.cameras) == ["front", "wrist_left", "wrist_right"]
    assert all(isinstance(c, RealSenseCamera) for c in rig.cameras.values())
    assert sorted(rig.arms) == ["left", "right"] and type(rig.arms["left"]).__name__ == "FlexivArm"
    assert sorted(rig.grippers) == ["left", "right"]
    assert [kind for kind, _, _ in rig.devices()] == ["camera"] * 3 + ["arm"] * 2 + ["gripper"] * 2


def test_rig_connect_failure_names_the_device_and_closes_the_rest():
    with pytest.raises(DeviceError, match=r"camera front: no RealSense device with serial"):
        build_rig("rig.yaml").connect()


def test_missing_driver_module_names_the_device(monkeypatch):
    data = load_yaml("rig.yaml")
    monkeypatch.setitem(sys.modules, "rig.drivers.robotiq", None)  # import fails like a missing SDK
    with pytest.raises(DeviceError, match=r"gripper left: driver module rig.drivers.robotiq cannot be imported"):
        build_rig(data)


def test_unknown_gripper_type_and_orphan_flexiv_gripper(tmp_path):
    path = write_config(tmp_path, grippers={"left": {"type": "schunk"}})
    with pytest.raises(ConfigError, match=r"grippers.left.type: 'schunk'"):
        build_rig(path)
    path = write_config(tmp_path, grippers={"left": {"type": "flexiv_gripper", "device_name": "Flexiv-GN01"}})
    with pytest.raises(ConfigError, match="arms.left is missing"):
        build_rig(path)
    with pytest.raises(ConfigError, match="expected one of"):
        build_rig(path, rig="mars")


HAVE_TWIN = importlib.util.find_spec("rig.sim.devices") is not None


@pytest.mark.skipif(HAVE_TWIN, reason="the twin's device module exists (covered by the next test)")
def test_sim_rig_without_twin_module_is_a_clear_error():
    with pytest.raises(DeviceError, match="rig sim: driver module rig.sim.devices"):
        build_rig("rig.yaml", rig="sim")


@pytest.mark.skipif(not HAVE_TWIN, reason="rig.sim.devices is not installed")
def test_sim_rig_has_the_same_device_names():
    pytest.importorskip("mujoco")
    rig = build_rig(rig="sim", sim_overrides={"clock": "lockstep"})
    assert sorted(rig.cameras) == ["front", "wrist_left", "wrist_right"]
    assert sorted(rig.arms) == ["left", "right"] and sorted(rig.grippers) == ["left", "right"]


class MonotonicClock:
    now = staticmethod(time.monotonic)


def test_check_rig_reads_arms_without_commanding_them():
    from tests.doubles.rig_devices import RecordingArm, RecordingGripper

    healthy, faulted = RecordingArm("left", clock=MonotonicClock()), RecordingArm("right", clock=MonotonicClock())
    faulted.fault = True
    rig = Rig(arms={"left": healthy, "right": faulted}, grippers={"left": RecordingGripper("left")})
    reports = {(r.kind, r.name): r for r in check_rig(rig, seconds=0.3)}
    assert reports[("arm", "left")].ok and reports[("arm", "left")].rate_hz > 100.0
    assert not reports[("arm", "right")].ok and "fault" in reports[("arm", "right")].problems[0]
    assert reports[("gripper", "left")].ok  # no required rate for grippers
    assert healthy.sent == [] and healthy.stops == 0 and faulted.sent == []
