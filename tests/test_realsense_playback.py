"""Record a software RealSense device with `rs.recorder`, then play the file back through the driver
(`PlaybackSource`, not real time): timestamps, frame numbers and drops survive the round trip.

pyrealsense2 2.59 writes rosbag2 `.db3` recordings (older releases wrote ROS 1 `.bag`); the test
uses whichever extension the installed librealsense accepts.
"""

import time

import numpy as np
import pyrealsense2 as rs
import pytest

from rig.drivers.realsense import PlaybackSource, RealSenseCamera, RealSenseConfig, list_devices
from rig.drivers.realsense_software import SoftwareRealSense

SERIAL = "444444444444"
FRAMES = 40
SKIPPED = {10, 11, 25}
T0_MS = 1_700_000_000_000.0


def record(tmp_path):
    dev = SoftwareRealSense(SERIAL, "D405")
    for suffix in (".db3", ".bag"):
        path = tmp_path / f"wrist{suffix}"
        try:
            recorder = rs.recorder(str(path), dev.device)
        except RuntimeError as exc:
            if "extension" in str(exc):
                continue
            raise
        break
    else:
        pytest.skip("this librealsense accepts neither .db3 nor .bag recordings")
    sensor = next(s for s in recorder.query_sensors() if s.get_info(rs.camera_info.name) == "Stereo Module")
    color = next(p for p in sensor.get_stream_profiles() if p.stream_type() == rs.stream.color)
    sensor.open(color)
    sensor.start(lambda frame: None)
    for n in range(FRAMES):
        if n not in SKIPPED:
            dev.push(n, stamp_ms=T0_MS + n * 1000.0 / 30.0, color=np.full((480, 640, 3), n, np.uint8))
    sensor.stop()
    sensor.close()
    del sensor, recorder  # the file is finalised when the recorder is released
    return path


def test_playback_round_trip(tmp_path):
    path = record(tmp_path)
    source = PlaybackSource([path])
    assert [i.serial for i in list_devices(source)] == [SERIAL]
    cfg = RealSenseConfig.from_dict(
        "wrist_left", {"serial": SERIAL, "model": "D405", "latency_s": 0.0, "watchdog_timeout_s": 30.0}
    )
    cam = RealSenseCamera(cfg, source)
    cam.connect()
    try:
        expected = FRAMES - len(SKIPPED)
        deadline = time.monotonic() + 10.0
        while cam.stats().samples < expected and time.monotonic() < deadline:
            time.sleep(0.01)
        stats = cam.stats()
        frame = cam.latest()
    finally:
        cam.disconnect()
    assert stats.samples == expected
    assert stats.dropped == len(SKIPPED)
    assert frame.frame_number == FRAMES - 1 and np.all(frame.color == FRAMES - 1)
    # global-time stamps come back unchanged; the rate window (last 31 frames: numbers 6..39 without
    # 10, 11, 25) spans 33 frame periods of the recorded 30 fps, so 30 intervals in 33/30 s
    assert frame.device_t == pytest.approx((T0_MS + (FRAMES - 1) * 1000.0 / 30.0) / 1000.0)
    assert stats.rate_hz == pytest.approx(30.0 * 30 / 33, rel=1e-3)
