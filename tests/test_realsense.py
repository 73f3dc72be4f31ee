"""RealSense driver against librealsense software devices: the real pyrealsense2 code path
(sensor open/start, native callbacks, timestamp domains, options, rs.align), no hardware.

Software sensors call the driver's frame callback synchronously inside `push()`, so most tests push
frames from the test thread and check the result right after; `FrameFeeder` tests run at 30 fps.
"""

import time

import numpy as np
import pyrealsense2 as rs
import pytest
import yaml

from rig.config import ConfigError
from rig.drivers.base import DeviceError
from rig.drivers.realsense import (
    RealSenseCamera,
    RealSenseConfig,
    describe_devices,
    list_devices,
    load_camera_configs,
)
from rig.drivers.realsense_software import FrameFeeder, SoftwareRealSense, SoftwareSource

RIG = [
    ("front", "111111111111", "D435i"),
    ("wrist_left", "222222222222", "D405"),
    ("wrist_right", "333333333333", "D405"),
]


def make_config(name="front", serial="111111111111", model="D435i", **extra):
    return RealSenseConfig.from_dict(name, {"serial": serial, "model": model, **extra})


@pytest.fixture
def rig_source():
    devices = [SoftwareRealSense(serial, model) for _, serial, model in RIG]
    return SoftwareSource(devices)


@pytest.fixture
def camera_factory(rig_source):
    cameras = []

    def make(name="front", **extra):
        serial, model = {n: (s, m) for n, s, m in RIG}[name]
        cam = RealSenseCamera(make_config(name, serial, model, **extra), rig_source)
        cameras.append(cam)
        return cam

    yield make
    for cam in cameras:
        cam.disconnect()


def image_for(number, value_offset=0):
    return np.full((480, 640, 3), (number + value_offset) % 256, np.uint8)


# ------------------------------------------------------------------------------------------ config


def test_config_section_loads_from_yaml(tmp_path):
    path = tmp_path / "rig.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "/**": {"ros__parameters": {"rig": "real"}},
                "cameras": {
                    "ros__parameters": {
                        "front": {"serial": "1", "model": "D435i", "latency_s": 0.02},
                        "wrist_left": {"serial": "2", "model": "D405", "color_options": {"exposure": 8000}},
                    }
                },
            }
        )
    )
    cfgs = load_camera_configs(path)
    assert sorted(cfgs) == ["front", "wrist_left"]
    assert cfgs["front"].latency_s == 0.02 and cfgs["front"].fps == 30
    assert cfgs["wrist_left"].color_options == {"exposure": 8000.0}


def test_repository_config_has_the_three_cameras():
    cfgs = load_camera_configs("rig.yaml")
    assert {n: c.model for n, c in cfgs.items()} == {"front": "D435i", "wrist_left": "D405", "wrist_right": "D405"}
    assert all((c.width, c.height, c.fps) == (640, 480, 30) for c in cfgs.values())


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"serial": 123, "model": "D405"}, "front.serial: 123 is not a string"),
        ({"serial": "1", "model": "D405", "fsp": 30}, "unknown key(s) ['fsp']"),
        ({"serial": "1", "model": "D405", "color_options": {"exposur": 1}}, "color_options.exposur"),
        ({"serial": "1", "model": "D405", "depth": "yes"}, "front.depth: 'yes'"),
        ({"model": "D405"}, "missing key 'serial'"),
    ],
)
def test_config_errors_name_the_field(entry, message):
    with pytest.raises(ConfigError, match=None) as exc:
        RealSenseConfig.from_dict("front", entry)
    assert message in str(exc.value)


# ------------------------------------------------------------------------------------ enumeration


def test_list_devices_reports_serial_name_line_firmware_usb(rig_source):
    infos = list_devices(rig_source)
    assert [i.serial for i in infos] == ["111111111111", "222222222222", "333333333333"]
    assert infos[0].name == "Intel RealSense D435I" and infos[1].name == "Intel RealSense D405"
    assert {(i.product_line, i.firmware, i.usb_type) for i in infos} == {("D400", "5.16.0.1", "3.2")}


def test_wrong_serial_error_lists_connected_devices(rig_source):
    cam = RealSenseCamera(make_config(serial="999999999999"), rig_source)
    with pytest.raises(DeviceError) as exc:
        cam.connect()
    msg = str(exc.value)
    assert "999999999999" in msg and "cameras.front.serial" in msg
    for _, serial, _ in RIG:
        assert serial in msg
    assert "Intel RealSense D405" in msg and "Intel RealSense D435I" in msg
    assert not cam.is_connected


def test_missing_device_with_nothing_connected():
    cam = RealSenseCamera(make_config(), SoftwareSource([]))
    with pytest.raises(DeviceError, match="no RealSense devices connected"):
        cam.connect()
    assert describe_devices([]) == "no RealSense devices connected"


def test_model_mismatch_is_refused(rig_source):
    cam = RealSenseCamera(make_config("front", "222222222222", "D435i"), rig_source)
    with pytest.raises(DeviceError, match="swapped"):
        cam.connect()


# -------------------------------------------------------------------------------------- capture


def test_frames_carry_pixels_numbers_and_intrinsics(rig_source, camera_factory):
    cam = camera_factory("front")
    cam.connect()
    assert cam.latest() is None
    dev = rig_source.devices["111111111111"]
    for n in range(5):
        dev.push(n, color=image_for(n))
    frame = cam.latest()
    assert frame is not None and frame.frame_number == 4 and frame.camera == "front"
    assert frame.color.shape == (480, 640, 3) and frame.color.dtype == np.uint8
    assert np.all(frame.color == 4)
    assert not frame.color.flags.writeable
    intr = cam.intrinsics
    assert (intr.width, intr.height, intr.fx) == (640, 480, 615.0)
    assert cam.stats().samples == 5 and cam.stats().extra["copies"] == 5


def test_global_time_stamps_map_to_monotonic_minus_latency(rig_source, camera_factory):
    cam = camera_factory("front", latency_s=0.025)
    cam.connect()
    dev = rig_source.devices["111111111111"]
    # wall-minus-monotonic offset from the tightest of a few back-to-back samples (robust to preemption)
    samples = []
    for _ in range(20):
        a = time.monotonic()
        wall = time.time()
        b = time.monotonic()
        samples.append((b - a, wall - (a + b) / 2))
    offset = min(samples)[1]
    mono_ref = time.monotonic() - 0.010  # the device stamped the frame 10 ms ago (host clock)
    dev.push(0, stamp_ms=(mono_ref + offset) * 1000.0)
    frame = cam.latest()
    assert frame.t == pytest.approx(mono_ref - 0.025, abs=0.001)
    assert frame.device_t == pytest.approx(mono_ref + offset, abs=1e-6)


def test_hardware_clock_stamps_keep_device_spacing(rig_source, camera_factory):
    cam = camera_factory("front", latency_s=0.0)
    cam.connect()
    dev = rig_source.devices["111111111111"]
    base_ms = 5_000_000.0  # device clock with an arbitrary epoch
    times = []
    for n in range(4):
        before = time.monotonic()
        dev.push(n, stamp_ms=base_ms + n * 1000.0 / 30.0, domain="hardware_clock")
        times.append((before, cam.latest().t))
        time.sleep(1 / 30)
    spacing = np.diff([t for _, t in times])
    assert spacing == pytest.approx([1 / 30] * 3, abs=1e-6)
    # mapped through the minimum transport delay: never later than the host arrival time
    assert all(t <= time.monotonic() for _, t in times)
    assert times[0][1] >= times[0][0] - 0.01


def test_dropped_frames_counted_from_frame_number_gaps(rig_source, camera_factory):
    cam = camera_factory("wrist_left")
    cam.connect()
    dev = rig_source.devices["222222222222"]
    delivered = [0, 1, 2, 5, 6, 10]
    for n in delivered:
        dev.push(n)
    stats = cam.stats()
    assert stats.samples == len(delivered)
    assert stats.dropped == 2 + 3
    dev.push(0)  # counter restarted (e.g. firmware reset): not counted as a drop
    assert cam.stats().dropped == 5 and cam.stats().extra["renumbered"] == 1


def test_d405_colour_options_go_to_the_depth_sensor(rig_source, camera_factory):
    cam = camera_factory("wrist_right", color_options={"exposure": 8500, "gain": 16})
    cam.connect()
    sensor = rig_source.devices["333333333333"].color_sensor
    assert sensor.name == "Stereo Module"  # the D405 has no RGB sensor
    assert sensor.get_option(rs.option.exposure) == 8500
    assert sensor.get_option(rs.option.gain) == 16


def test_unsupported_colour_option_is_a_device_error(rig_source, camera_factory):
    cam = camera_factory("front", color_options={"laser_power": 150})
    with pytest.raises(DeviceError, match="laser_power"):
        cam.connect()


@pytest.mark.parametrize(("name", "serial"), [("front", "111111111111"), ("wrist_left", "222222222222")])
def test_depth_is_aligned_to_colour(rig_source, camera_factory, name, serial):
    cam = camera_factory(name, depth=True)  # D435i: two sensors; D405: both streams on the stereo module
    cam.connect()
    dev = rig_source.devices[serial]
    for n in range(3):
        dev.push(n, color=image_for(n), depth=np.full((480, 640), 750, np.uint16))
    frame = cam.latest()
    assert frame.depth is not None and frame.depth.shape == (480, 640) and frame.depth.dtype == np.uint16
    assert np.median(frame.depth) == 750 and frame.depth_scale == pytest.approx(0.001)
    assert frame.frame_number == 2 and np.all(frame.color == 2)


def test_wait_frame_blocks_until_newer_and_times_out(rig_source, camera_factory):
    cam = camera_factory("front")
    cam.connect()
    dev = rig_source.devices["111111111111"]
    dev.push(0)
    first = cam.wait_frame(-np.inf, 0.1)
    with pytest.raises(DeviceError, match="no frame newer"):
        cam.wait_frame(first.t, 0.05)
    feeder = FrameFeeder([dev], fps=30).start()
    try:
        newer = cam.wait_frame(first.t, 1.0)
    finally:
        feeder.stop()
    assert newer.t > first.t


def test_held_frame_is_never_overwritten_and_full_ring_drops(rig_source, camera_factory):
    cam = camera_factory("front", ring_slots=3)
    cam.connect()
    dev = rig_source.devices["111111111111"]
    dev.push(0, color=image_for(0, 100))
    held = cam.latest()
    for n in range(1, 10):
        dev.push(n, color=image_for(n, 100))
    assert np.all(held.color == 100) and held.frame_number == 0
    assert cam.latest().frame_number == 9 and cam.stats().extra["ring_full_drops"] == 0
    held2 = cam.latest()  # pins the newest slot; the third slot is still free
    dev.push(10, color=image_for(10, 100))
    assert cam.latest().frame_number == 10
    dev.push(11, color=image_for(11, 100))  # two slots pinned, one newest: nowhere to write
    assert cam.stats().extra["ring_full_drops"] == 1 and cam.latest().frame_number == 10
    assert np.all(held.color == 100) and np.all(held2.color == 109)
    del held, held2
    dev.push(12, color=image_for(12, 100))
    assert cam.latest().frame_number == 12 and np.all(cam.latest().color == 112)


def test_three_cameras_at_30_fps(rig_source, camera_factory):
    cams = [camera_factory(name) for name, _, _ in RIG]
    for cam in cams:
        cam.connect()
    devices = list(rig_source.devices.values())
    offsets = {d.serial: 60 * i for i, d in enumerate(devices)}
    feeder = FrameFeeder(devices, fps=30, skip={7}, image=lambda d, n: image_for(n, offsets[d.serial])).start()
    time.sleep(1.2)
    feeder.stop()
    pushed = feeder.push_times
    # rate the feeder achieved over the driver's window (last 31 frames); 30 fps unless the CPU is starved
    achieved = 30 / (pushed[-1] - pushed[-31])
    for cam, dev in zip(cams, devices):
        stats = cam.stats()
        frame = cam.latest()
        assert stats.samples == len(pushed) and stats.dropped == 1 and stats.errors == 0
        assert stats.rate_hz == pytest.approx(achieved, rel=0.05)
        assert np.all(frame.color == (frame.frame_number + offsets[dev.serial]) % 256)
    assert achieved == pytest.approx(30.0, rel=0.35)
    print(f"capture rate per camera: {[round(c.stats().rate_hz, 2) for c in cams]} Hz (fed {achieved:.2f})")


# ------------------------------------------------------------------------------------- recovery


def _wait_for(predicate, timeout=3.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return False


def test_reopens_after_usb_disconnect(rig_source, camera_factory):
    cam = camera_factory("wrist_left")
    cam.connect()
    dev = rig_source.devices["222222222222"]
    dev.push(0)
    rig_source.unplug("222222222222")
    assert _wait_for(lambda: not cam.streaming)
    assert not dev.push(1)  # frames are lost while the cable is out
    rig_source.replug("222222222222")
    assert _wait_for(lambda: cam.streaming)
    dev.push(2)
    assert cam.latest().frame_number == 2
    assert cam.stats().extra["reconnects"] == 1


def test_watchdog_reopens_a_silent_device(rig_source, camera_factory):
    cam = camera_factory("front", watchdog_timeout_s=0.2)
    cam.connect()
    dev = rig_source.devices["111111111111"]
    dev.push(0)
    assert _wait_for(lambda: cam.stats().extra["reconnects"] >= 1)
    dev.push(1)
    assert cam.latest().frame_number == 1


def test_disconnect_is_idempotent_and_stops_callbacks(rig_source, camera_factory):
    cam = camera_factory("front")
    cam.connect()
    cam.disconnect()
    cam.disconnect()
    assert not cam.is_connected and not cam.streaming
    with pytest.raises(DeviceError, match="not connected"):
        cam.wait_frame(0.0, 0.01)
