"""RealSense devices emulated with librealsense's `software_device`, for tests, benchmarks and replay.

A `SoftwareRealSense` registers the same camera info (serial, name, product line, firmware, USB type),
sensors and stream profiles as a D435i (separate "RGB Camera" sensor) or a D405 (colour and depth on
the "Stereo Module"), so `RealSenseCamera` runs its real librealsense code path against it: sensor
open/start, native callbacks, timestamp domains, options, `rs.align`. Frames are injected with
`push()`; the sensor callback runs on the pushing thread (librealsense dispatches software frames
synchronously), which therefore plays the role of the USB capture thread.

`SoftwareSource` is a `DeviceSource` over such devices that can simulate unplugging and re-plugging,
and `FrameFeeder` pushes frames at a fixed rate from its own thread.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Sequence

import numpy as np
import pyrealsense2 as rs
from numpy.typing import NDArray

from rig.drivers.realsense import DeviceListeners

_MODELS = {
    "d435i": ("Intel RealSense D435I", True),  # (device name, separate RGB sensor)
    "d405": ("Intel RealSense D405", False),
}

_DOMAINS = {
    "global_time": rs.timestamp_domain.global_time,
    "system_time": rs.timestamp_domain.system_time,
    "hardware_clock": rs.timestamp_domain.hardware_clock,
}


def _range(low: float, high: float, step: float, default: float) -> rs.option_range:
    # Fields set by name: the positional order of rs.option_range's constructor differs from its doc.
    rng = rs.option_range()
    rng.min, rng.max, rng.step, rng.default = low, high, step, default
    return rng


def _intrinsics(width: int, height: int, fx: float) -> rs.intrinsics:
    intr = rs.intrinsics()
    intr.width, intr.height = width, height
    intr.fx = intr.fy = fx
    intr.ppx, intr.ppy = (width - 1) / 2.0, (height - 1) / 2.0
    intr.model = rs.distortion.brown_conrady
    intr.coeffs = [0.0] * 5
    return intr


class SoftwareRealSense:
    """A software-defined D435i or D405 with a colour stream and optionally a depth stream."""

    def __init__(
        self,
        serial: str,
        model: str = "D435i",
        width: int = 640,
        height: int = 480,
        fps: int = 30,
        fx: float = 615.0,
        firmware: str = "5.16.0.1",
        usb_type: str = "3.2",
    ) -> None:
        key = model.lower()
        if key not in _MODELS:
            raise ValueError(f"SoftwareRealSense: model {model!r}, expected one of {sorted(_MODELS)}")
        self.serial, self.model = serial, model
        self.width, self.height, self.fps, self.fx = width, height, fps, fx
        self.firmware, self.usb_type = firmware, usb_type
        self._lock = threading.Lock()
        self.plugged = True
        self.pushed = 0
        self._build()

    def _build(self) -> None:
        name, separate_rgb = _MODELS[self.model.lower()]
        dev = rs.software_device()
        for key, value in (
            (rs.camera_info.serial_number, self.serial),
            (rs.camera_info.name, name),
            (rs.camera_info.product_line, "D400"),
            (rs.camera_info.firmware_version, self.firmware),
            (rs.camera_info.usb_type_descriptor, self.usb_type),
        ):
            dev.register_info(key, value)
        stereo = dev.add_sensor("Stereo Module")
        rgb = dev.add_sensor("RGB Camera") if separate_rgb else stereo
        intr = _intrinsics(self.width, self.height, self.fx)

        def stream(kind: rs.stream, uid: int, bpp: int, fmt: rs.format) -> rs.video_stream:
            vs = rs.video_stream()
            vs.type, vs.index, vs.uid = kind, 0, uid
            vs.width, vs.height, vs.fps, vs.bpp, vs.fmt = self.width, self.height, self.fps, bpp, fmt
            vs.intrinsics = intr
            return vs

        color_profile = rgb.add_video_stream(stream(rs.stream.color, 1, 3, rs.format.rgb8))
        depth_profile = stereo.add_video_stream(stream(rs.stream.depth, 2, 2, rs.format.z16))
        extr = rs.extrinsics()
        extr.rotation = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
        extr.translation = [0.0, 0.0, 0.0]
        depth_profile.register_extrinsics_to(color_profile, extr)
        stereo.add_read_only_option(rs.option.depth_units, 0.001)
        for sensor in {id(stereo): stereo, id(rgb): rgb}.values():
            sensor.add_option(rs.option.global_time_enabled, _range(0, 1, 1, 1), True)
        rgb.add_option(rs.option.exposure, _range(1, 10000, 1, 156), True)
        rgb.add_option(rs.option.gain, _range(0, 128, 1, 64), True)
        rgb.add_option(rs.option.enable_auto_exposure, _range(0, 1, 1, 1), True)
        self.device = dev
        self._rgb, self._stereo = rgb, stereo
        self._color_profile = color_profile.as_video_stream_profile()
        self._depth_profile = depth_profile.as_video_stream_profile()

    @property
    def color_sensor(self) -> rs.software_sensor:
        """The software sensor carrying the colour stream (the stereo module on a D405)."""
        return self._rgb

    def unplug(self) -> None:
        """Simulate a cable pull: pushed frames are lost until `replug()`."""
        with self._lock:
            self.plugged = False

    def replug(self) -> None:
        """Simulate re-enumeration: a fresh librealsense device with the same serial appears."""
        with self._lock:
            self._build()
            self.plugged = True

    def push(
        self,
        frame_number: int,
        stamp_ms: float | None = None,
        color: NDArray[np.uint8] | None = None,
        depth: NDArray[np.uint16] | None = None,
        domain: str = "global_time",
    ) -> bool:
        """Inject one colour frame (and a depth frame when `depth` is given); False while unplugged.

        `stamp_ms` defaults to the current wall clock in ms, which is what librealsense's global and
        system time domains report.
        """
        stamp = time.time() * 1000.0 if stamp_ms is None else stamp_ms
        with self._lock:
            if not self.plugged:
                return False
            if depth is not None:
                depth_frame = self._video_frame(depth, 2, stamp, frame_number, domain, self._depth_profile)
                self._stereo.on_video_frame(depth_frame)
            image = color if color is not None else np.zeros((self.height, self.width, 3), np.uint8)
            self._rgb.on_video_frame(self._video_frame(image, 3, stamp, frame_number, domain, self._color_profile))
            self.pushed += 1
        return True

    def _video_frame(
        self, pixels: NDArray, bpp: int, stamp: float, number: int, domain: str, profile: rs.video_stream_profile
    ) -> rs.software_video_frame:
        frame = rs.software_video_frame()
        frame.pixels = np.ascontiguousarray(pixels)
        frame.stride, frame.bpp = self.width * bpp, bpp
        frame.timestamp, frame.domain, frame.frame_number = stamp, _DOMAINS[domain], number
        frame.profile = profile
        if bpp == 2:
            frame.depth_units = 0.001
        return frame


class SoftwareSource:
    """A `DeviceSource` listing plugged software devices; plug changes notify listeners."""

    def __init__(self, devices: Iterable[SoftwareRealSense]) -> None:
        self.devices = {d.serial: d for d in devices}
        self._listeners = DeviceListeners()

    def query_devices(self) -> list[rs.device]:
        return [d.device for d in self.devices.values() if d.plugged]

    def add_listener(self, callback: Callable[[], None]) -> None:
        self._listeners.add(callback)

    def remove_listener(self, callback: Callable[[], None]) -> None:
        self._listeners.remove(callback)

    def unplug(self, serial: str) -> None:
        self.devices[serial].unplug()
        self._listeners.notify()

    def replug(self, serial: str) -> None:
        self.devices[serial].replug()
        self._listeners.notify()


class FrameFeeder:
    """Pushes frames into software devices at `fps` from a thread (the stand-in for USB capture).

    `skip` lists frame numbers that are never delivered (simulated drops); `depth` adds a depth frame.
    """

    def __init__(
        self,
        devices: Sequence[SoftwareRealSense],
        fps: float = 30.0,
        skip: Iterable[int] = (),
        depth: bool = False,
        image: Callable[[SoftwareRealSense, int], NDArray[np.uint8]] | None = None,
    ) -> None:
        self.devices = list(devices)
        self.period = 1.0 / fps
        self.skip = set(skip)
        self.depth = depth
        self.image = image
        self.frame_number = 0
        self.push_times: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="realsense-feeder", daemon=True)

    def start(self) -> FrameFeeder:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5.0)

    def _run(self) -> None:
        next_t = time.monotonic()
        while not self._stop.is_set():
            number = self.frame_number
            self.frame_number += 1
            if number not in self.skip:
                for dev in self.devices:
                    color = self.image(dev, number) if self.image is not None else None
                    depth = np.full((dev.height, dev.width), 1000, np.uint16) if self.depth else None
                    dev.push(number, color=color, depth=depth)
                self.push_times.append(time.monotonic())
            next_t += self.period
            delay = next_t - time.monotonic()
            if delay > 0:
                self._stop.wait(delay)
            else:
                next_t = time.monotonic()
