"""Intel RealSense colour (+ optional aligned depth) camera driver on pyrealsense2.

Capture runs in librealsense's own threads: the driver opens the sensor that provides the colour
stream (on a D405 that is the depth/stereo sensor, which also carries the colour options) and starts
it with a native frame callback. The callback maps the frame stamp to host monotonic time
(`rig.drivers.frame_clock`), counts frame-number gaps and copies the pixels once into a preallocated
`FrameRing` slot; consumers get read-only views of the newest slot (`latest()`, `wait_frame()`), so a
slow consumer never stalls capture. With depth enabled, depth and colour frames are paired in a
librealsense processing block and aligned to colour with `rs.align` inside the callback.

A supervisor thread per camera re-opens the device after a USB disconnect (librealsense
devices-changed event) or when no frame arrived for `watchdog_timeout_s`; re-opens are counted.

Devices come from a `DeviceSource`: `ContextSource` (the connected hardware, default),
`PlaybackSource` (recorded files, played frame by frame) or the software devices of
`rig.drivers.realsense_software`, so every path below runs the same librealsense code.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from os import PathLike
from typing import Any, Protocol

import numpy as np
import pyrealsense2 as rs
from numpy.typing import NDArray

from rig.config import ConfigError, load_yaml, node_params
from rig.drivers.base import Camera, DeviceError, DeviceStats
from rig.drivers.frame_clock import FrameClock, StampDomain
from rig.drivers.frame_ring import FrameRing, SlotMeta
from rig.params import get_float, get_int, get_mapping, get_str, reject_unknown
from rig.schema import CameraFrame, CameraIntrinsics

log = logging.getLogger(__name__)

CAMERAS_SECTION = "cameras"

_DOMAINS = {
    rs.timestamp_domain.hardware_clock: StampDomain.HARDWARE_CLOCK,
    rs.timestamp_domain.system_time: StampDomain.SYSTEM_TIME,
    rs.timestamp_domain.global_time: StampDomain.GLOBAL_TIME,
}


# ----------------------------------------------------------------------------------------- config


@dataclass(frozen=True)
class RealSenseConfig:
    """One camera of the `cameras` section of config/rig.yaml."""

    name: str
    serial: str
    model: str
    width: int = 640
    height: int = 480
    fps: int = 30
    depth: bool = False
    latency_s: float = 0.030
    color_options: dict[str, float] = field(default_factory=dict)
    global_time: bool = True
    ring_slots: int = 8
    watchdog_timeout_s: float = 1.0
    first_frame_timeout_s: float = 5.0

    @classmethod
    def from_dict(cls, name: str, data: Mapping[str, Any], where: str | None = None) -> RealSenseConfig:
        """Validate one camera entry; errors name `where`, the key, the value and what is expected."""
        where = where or f"config/rig.yaml {CAMERAS_SECTION}.{name}"
        if not isinstance(data, Mapping):
            raise ConfigError(f"{where}: {data!r}, expected a mapping of camera settings")
        reject_unknown(data, set(cls.__dataclass_fields__) - {"name"}, where)
        serial = get_str(data, "serial", where).strip()
        model = get_str(data, "model", where).strip()
        for key, value in (("serial", serial), ("model", model)):
            if not value:
                raise ConfigError(f"{where}.{key}: empty, expected e.g. serial '123456789012', model 'D405'")
        options = get_mapping(data, "color_options", where, default={})
        for key in options:
            if not hasattr(rs.option, str(key)):
                raise ConfigError(
                    f"{where}.color_options.{key}: not a librealsense option (rs.option names, e.g. "
                    "exposure, gain, enable_auto_exposure, white_balance, enable_auto_white_balance)"
                )
        flags = {}
        for key, default in (("depth", False), ("global_time", True)):
            flags[key] = data.get(key, default)
            if not isinstance(flags[key], bool):
                raise ConfigError(f"{where}.{key}: {flags[key]!r}, expected true or false")
        return cls(
            name=name,
            serial=serial,
            model=model,
            width=get_int(data, "width", where, default=640, low=1),
            height=get_int(data, "height", where, default=480, low=1),
            fps=get_int(data, "fps", where, default=30, low=1),
            depth=flags["depth"],
            latency_s=get_float(data, "latency_s", where, default=0.030, low=0.0, high=1.0),
            color_options={str(k): get_float(options, k, f"{where}.color_options") for k in options},
            global_time=flags["global_time"],
            ring_slots=get_int(data, "ring_slots", where, default=8, low=3, high=256),
            watchdog_timeout_s=get_float(data, "watchdog_timeout_s", where, default=1.0, low=0.05),
            first_frame_timeout_s=get_float(data, "first_frame_timeout_s", where, default=5.0, low=0.05),
        )


def load_camera_configs(config: str | PathLike[str] | Mapping[str, Any] = "rig.yaml") -> dict[str, RealSenseConfig]:
    """All cameras of the `cameras` section of a rig config (file name/path or loaded mapping)."""
    data = dict(config) if isinstance(config, Mapping) else load_yaml(config)
    origin = "rig config" if isinstance(config, Mapping) else str(config)
    shared = node_params(data, "/**")
    section = node_params(data, CAMERAS_SECTION)
    return {
        name: RealSenseConfig.from_dict(name, value, where=f"{origin} {CAMERAS_SECTION}.{name}")
        for name, value in section.items()
        if not (name in shared and value == shared[name])  # `/**` values merged in by node_params
    }


# ----------------------------------------------------------------------------------- device source


@dataclass(frozen=True)
class DeviceInfo:
    """What librealsense reports about a connected device."""

    serial: str
    name: str
    product_line: str
    firmware: str
    usb_type: str

    def label(self) -> str:
        return f"{self.serial} ({self.name})"


class DeviceSource(Protocol):
    """Where devices come from: the USB bus, recorded files or software devices."""

    def query_devices(self) -> Sequence[rs.device]: ...

    def add_listener(self, callback: Callable[[], None]) -> None:
        """Call `callback()` (from any thread) whenever devices are added or removed."""

    def remove_listener(self, callback: Callable[[], None]) -> None: ...


class DeviceListeners:
    """Fan-out of device-change notifications to several cameras sharing one source."""

    def __init__(self) -> None:
        self._callbacks: list[Callable[[], None]] = []
        self._lock = threading.Lock()

    def add(self, callback: Callable[[], None]) -> int:
        with self._lock:
            self._callbacks.append(callback)
            return len(self._callbacks)

    def remove(self, callback: Callable[[], None]) -> None:
        with self._lock:
            if callback in self._callbacks:
                self._callbacks.remove(callback)

    def notify(self) -> None:
        with self._lock:
            callbacks = list(self._callbacks)
        for callback in callbacks:
            try:
                callback()
            except Exception:  # a listener's bug must not stop the others from hearing the event
                log.exception("device-change listener failed")


class ContextSource:
    """The RealSense devices on this machine's USB bus (`rs.context`)."""

    def __init__(self, context: rs.context | None = None) -> None:
        self._context = context if context is not None else rs.context()
        self._listeners = DeviceListeners()
        self._registered = False

    def query_devices(self) -> list[rs.device]:
        return list(self._context.query_devices())

    def add_listener(self, callback: Callable[[], None]) -> None:
        self._listeners.add(callback)
        if not self._registered:
            self._context.set_devices_changed_callback(lambda _event: self._listeners.notify())
            self._registered = True

    def remove_listener(self, callback: Callable[[], None]) -> None:
        self._listeners.remove(callback)


class PlaybackSource:
    """Devices recorded to files (`rs.recorder`), played back frame by frame, not in real time."""

    def __init__(self, paths: Sequence[str | PathLike[str]]) -> None:
        self._context = rs.context()
        self._devices: list[rs.device] = []
        for path in paths:
            device = self._context.load_device(str(path))
            device.as_playback().set_real_time(False)
            self._devices.append(device)

    def query_devices(self) -> list[rs.device]:
        return list(self._devices)

    def add_listener(self, callback: Callable[[], None]) -> None:
        """Recordings never change: nothing to register."""

    def remove_listener(self, callback: Callable[[], None]) -> None:
        """Recordings never change: nothing to remove."""


def _info(device: rs.device, key: rs.camera_info) -> str:
    return str(device.get_info(key)) if device.supports(key) else ""


def device_info(device: rs.device) -> DeviceInfo:
    """Serial, name, product line, firmware and USB type of one librealsense device."""
    return DeviceInfo(
        serial=_info(device, rs.camera_info.serial_number),
        name=_info(device, rs.camera_info.name),
        product_line=_info(device, rs.camera_info.product_line),
        firmware=_info(device, rs.camera_info.firmware_version),
        usb_type=_info(device, rs.camera_info.usb_type_descriptor),
    )


def list_devices(source: DeviceSource | None = None) -> list[DeviceInfo]:
    """Connected RealSense devices (empty list when none), sorted by serial."""
    source = source if source is not None else ContextSource()
    return sorted((device_info(d) for d in source.query_devices()), key=lambda i: i.serial)


def describe_devices(infos: Sequence[DeviceInfo]) -> str:
    """Human-readable list used in error messages."""
    if not infos:
        return "no RealSense devices connected"
    return "connected: " + ", ".join(i.label() for i in infos)


# ------------------------------------------------------------------------------------------ camera


@dataclass
class _Opened:
    """Sensors and profiles of one open session of the device."""

    device: rs.device
    sensors: list[rs.sensor]
    color_profile: rs.video_stream_profile
    pairer: rs.processing_block | None = None
    align: rs.align | None = None


class RealSenseCamera(Camera):
    """One RealSense camera selected by serial, streaming colour (and optional aligned depth)."""

    def __init__(self, config: RealSenseConfig, source: DeviceSource | None = None) -> None:
        self.config = config
        self.name = config.name
        self._source = source
        self._lock = threading.RLock()  # lifecycle: connect, disconnect, re-open
        self._opened: _Opened | None = None
        self._intrinsics: CameraIntrinsics | None = None
        self._depth_scale = 0.001
        fields: dict[str, tuple[tuple[int, ...], type]] = {"color": ((config.height, config.width, 3), np.uint8)}
        if config.depth:
            fields["depth"] = ((config.height, config.width), np.uint16)
        self._ring = FrameRing(config.ring_slots, fields)
        self._clock = FrameClock(config.latency_s)
        self._connected = False
        self._streaming = False
        self._stopping = threading.Event()
        self._wake = threading.Event()
        self._supervisor: threading.Thread | None = None
        self._pending_depth: rs.frame | None = None
        # counters, written by the capture callback, read by stats()
        self._samples = 0
        self._dropped = 0
        self._errors = 0
        self._reconnects = 0
        self._renumbered = 0
        self._prev_number: int | None = None
        self._frames_since_open = 0
        self._last_arrival = 0.0
        self._recent_t: deque[float] = deque(maxlen=31)
        self._delay_sum = 0.0
        self._last_error = ""

    # -- lifecycle

    def connect(self) -> None:
        with self._lock:
            if self._connected:
                return
            if self._source is None:
                self._source = ContextSource()
            self._open_and_start()
            self._connected = True
            self._stopping.clear()
            self._source.add_listener(self._on_devices_changed)
            self._supervisor = threading.Thread(target=self._supervise, name=f"realsense-{self.name}", daemon=True)
            self._supervisor.start()

    def disconnect(self) -> None:
        with self._lock:
            if not self._connected:
                return
            self._connected = False
            self._stopping.set()
            self._wake.set()
        if self._supervisor is not None:
            self._supervisor.join(timeout=5.0)
            self._supervisor = None
        if self._source is not None:
            self._source.remove_listener(self._on_devices_changed)
        with self._lock:
            self._close()
        self._ring.wake_all()

    @property
    def is_connected(self) -> bool:
        return self._connected

    @property
    def streaming(self) -> bool:
        """True while the device is open and its callback is installed (False while unplugged)."""
        return self._streaming

    @property
    def intrinsics(self) -> CameraIntrinsics:
        if self._intrinsics is None:
            raise DeviceError(f"camera {self.name} (serial {self.config.serial}): not connected, no intrinsics yet")
        return self._intrinsics

    # -- frames

    def _frame(self, arrays: dict[str, NDArray], meta: SlotMeta) -> CameraFrame:
        return CameraFrame(
            camera=self.name,
            t=meta.t,
            color=arrays["color"],
            frame_number=meta.frame_number,
            device_t=meta.device_t,
            depth=arrays.get("depth"),
            depth_scale=self._depth_scale,
        )

    def latest(self) -> CameraFrame | None:
        entry = self._ring.latest()
        return None if entry is None else self._frame(entry.arrays, entry.meta)

    def wait_frame(self, newer_than: float, timeout: float) -> CameraFrame:
        if not self._connected:
            raise DeviceError(f"camera {self.name} (serial {self.config.serial}): not connected")
        entry = self._ring.wait(lambda meta: meta.t > newer_than, timeout)
        if entry is None:
            state = "streaming" if self._streaming else "device missing, waiting for it to come back"
            raise DeviceError(
                f"camera {self.name} (serial {self.config.serial}): no frame newer than t={newer_than:.3f} "
                f"within {timeout:.3f} s ({state})"
            )
        return self._frame(entry.arrays, entry.meta)

    def stats(self) -> DeviceStats:
        recent = list(self._recent_t)
        span = recent[-1] - recent[0] if len(recent) > 1 else 0.0
        samples = self._samples
        return DeviceStats(
            samples=samples,
            dropped=self._dropped,
            rate_hz=(len(recent) - 1) / span if span > 0 else 0.0,
            errors=self._errors,
            extra={
                "reconnects": float(self._reconnects),
                "renumbered": float(self._renumbered),
                "ring_full_drops": float(self._ring.full_drops),
                "copies": float(self._ring.writes),
                "reads": float(self._ring.reads),
                "arrival_delay_ms": 1000.0 * self._delay_sum / samples if samples else 0.0,
            },
        )

    @property
    def last_error(self) -> str:
        """The most recent capture or re-open error message ('' if none)."""
        return self._last_error

    # -- opening

    def _find_device(self) -> rs.device:
        assert self._source is not None
        try:
            devices = list(self._source.query_devices())
        except RuntimeError as exc:
            raise DeviceError(f"camera {self.name}: cannot enumerate RealSense devices ({exc})") from None
        for device in devices:
            if _info(device, rs.camera_info.serial_number) == self.config.serial:
                return device
        infos = [device_info(d) for d in devices]
        raise DeviceError(
            f"camera {self.name}: no RealSense device with serial {self.config.serial!r} "
            f"(config cameras.{self.name}.serial); {describe_devices(infos)}. "
            "Run `a2world rig list` and fix the serial in config/rig.yaml."
        )

    def _find_profile(
        self, device: rs.device, stream: rs.stream, fmt: rs.format, prefer_depth_sensor: bool
    ) -> tuple[rs.sensor, rs.video_stream_profile]:
        cfg = self.config
        matches: list[tuple[rs.sensor, rs.video_stream_profile]] = []
        offered: list[str] = []
        for sensor in device.query_sensors():
            for profile in sensor.get_stream_profiles():
                if profile.stream_type() != stream or not profile.is_video_stream_profile():
                    continue
                video = profile.as_video_stream_profile()
                offered.append(f"{video.width()}x{video.height()}@{video.fps()} {video.format()}")
                wanted = (cfg.width, cfg.height, cfg.fps, fmt)
                if (video.width(), video.height(), video.fps(), video.format()) == wanted:
                    matches.append((sensor, video))
        if not matches:
            raise DeviceError(
                f"camera {self.name} (serial {cfg.serial}): no {stream} stream {cfg.width}x{cfg.height}@{cfg.fps} "
                f"{fmt}; the device offers {sorted(set(offered)) or 'none'}"
            )
        if prefer_depth_sensor:
            matches.sort(key=lambda m: not m[0].is_depth_sensor())
        return matches[0]

    def _apply_options(self, device_name: str, color_sensor: rs.sensor, sensors: list[rs.sensor]) -> None:
        cfg = self.config
        sensor_name = _sensor_name(color_sensor)
        for key, value in cfg.color_options.items():
            option = getattr(rs.option, key)
            if not color_sensor.supports(option):
                raise DeviceError(
                    f"camera {self.name} ({device_name}, serial {cfg.serial}): colour option {key!r} "
                    f"(config cameras.{self.name}.color_options) is not supported by sensor {sensor_name!r}"
                )
            try:
                color_sensor.set_option(option, value)
            except RuntimeError as exc:
                raise DeviceError(
                    f"camera {self.name} (serial {cfg.serial}): setting {key}={value} on {sensor_name!r} failed ({exc})"
                ) from None
        if cfg.global_time:
            for sensor in sensors:
                if sensor.supports(rs.option.global_time_enabled) and not sensor.is_option_read_only(
                    rs.option.global_time_enabled
                ):
                    sensor.set_option(rs.option.global_time_enabled, 1.0)

    def _open_and_start(self) -> None:
        """Find the device by serial, open its sensors and start the callbacks; DeviceError on failure."""
        try:
            self._open_and_start_unchecked()
        except DeviceError:
            raise
        except RuntimeError as exc:  # librealsense errors (device vanished mid-open, busy, ...)
            self._close()
            raise DeviceError(f"camera {self.name} (serial {self.config.serial}): cannot open ({exc})") from None

    def _open_and_start_unchecked(self) -> None:
        cfg = self.config
        device = self._find_device()
        info = device_info(device)
        if cfg.model.lower() not in info.name.lower():
            raise DeviceError(
                f"camera {self.name}: serial {cfg.serial} is a {info.name!r}, but config cameras.{self.name}.model "
                f"says {cfg.model!r}; check that the serials are not swapped"
            )
        # The D405 has no RGB sensor: its colour stream (and colour options) live on the depth sensor.
        color_sensor, color_profile = self._find_profile(device, rs.stream.color, rs.format.rgb8, False)
        by_sensor: list[tuple[rs.sensor, list[rs.stream_profile]]] = [(color_sensor, [color_profile])]
        if cfg.depth:
            depth_sensor, depth_profile = self._find_profile(device, rs.stream.depth, rs.format.z16, True)
            same = [entry for entry in by_sensor if _same_sensor(entry[0], depth_sensor)]
            if same:
                same[0][1].append(depth_profile)
            else:
                by_sensor.append((depth_sensor, [depth_profile]))
            if depth_sensor.supports(rs.option.depth_units):
                self._depth_scale = float(depth_sensor.get_option(rs.option.depth_units))
        sensors = [sensor for sensor, _ in by_sensor]
        self._apply_options(info.name, color_sensor, sensors)
        opened = _Opened(device=device, sensors=[], color_profile=color_profile)
        if cfg.depth:
            opened.align = rs.align(rs.stream.color)
            opened.pairer = rs.processing_block(self._pair)
            opened.pairer.start(self._on_frame)
            sink: Callable[[rs.frame], None] = opened.pairer.invoke
        else:
            sink = self._on_frame
        self._pending_depth = None
        self._clock.reset()
        self._prev_number = None
        self._frames_since_open = 0
        self._recent_t.clear()  # the rate window must not span the time the device was closed
        self._opened = opened
        try:
            for sensor, profiles in by_sensor:
                sensor.open(profiles if len(profiles) > 1 else profiles[0])
                opened.sensors.append(sensor)
            self._last_arrival = time.monotonic()
            self._streaming = True
            for sensor in opened.sensors:
                sensor.start(sink)
        except RuntimeError as exc:
            self._close()
            raise DeviceError(f"camera {self.name} (serial {cfg.serial}): cannot start streaming ({exc})") from None
        intr = color_profile.get_intrinsics()
        self._intrinsics = CameraIntrinsics(
            width=intr.width,
            height=intr.height,
            fx=intr.fx,
            fy=intr.fy,
            cx=intr.ppx,
            cy=intr.ppy,
            coeffs=tuple(float(c) for c in intr.coeffs),
        )
        log.info(
            "camera %s: streaming %s serial %s %dx%d@%d",
            self.name,
            info.name,
            cfg.serial,
            cfg.width,
            cfg.height,
            cfg.fps,
        )

    def _close(self) -> None:
        """Stop and close the open sensors; errors from an unplugged device are expected and ignored."""
        self._streaming = False
        opened, self._opened = self._opened, None
        if opened is None:
            return
        for sensor in opened.sensors:
            for action in (sensor.stop, sensor.close):
                try:
                    action()
                except RuntimeError as exc:
                    log.debug("camera %s: %s during close: %s", self.name, action.__name__, exc)
        self._pending_depth = None

    # -- capture (librealsense threads)

    def _pair(self, frame: rs.frame, source: rs.frame_source) -> None:
        """Processing block: emit (depth, colour) composites, pairing each colour with the newest depth."""
        if frame.get_profile().stream_type() == rs.stream.depth:
            self._pending_depth = frame
            return
        depth = self._pending_depth
        if depth is not None:
            source.frame_ready(source.allocate_composite_frame([depth, frame]))

    def _on_frame(self, frame: rs.frame) -> None:
        arrival = time.monotonic()
        wall_minus_mono = time.time() - arrival
        if not self._streaming:
            return
        try:
            depth_frame: rs.depth_frame | None = None
            opened = self._opened
            if frame.is_frameset():
                frames = frame.as_frameset()
                if opened is not None and opened.align is not None:
                    frames = opened.align.process(frames)
                color_frame = frames.get_color_frame()
                depth_frame = frames.get_depth_frame() if self.config.depth else None
            elif frame.get_profile().stream_type() == rs.stream.color:
                color_frame = frame.as_video_frame()
            else:
                return  # a stream of a shared sensor that this camera did not ask for
            number = int(color_frame.get_frame_number())
            stamp_ms = float(color_frame.get_timestamp())
            domain = _DOMAINS.get(color_frame.get_frame_timestamp_domain(), StampDomain.SYSTEM_TIME)
            t = self._clock.to_monotonic(stamp_ms, domain, arrival, wall_minus_mono)
            self._count_number(number)

            def fill(arrays: dict[str, NDArray]) -> None:
                np.copyto(arrays["color"], np.asanyarray(color_frame.get_data()).reshape(arrays["color"].shape))
                if depth_frame is not None and "depth" in arrays:
                    np.copyto(arrays["depth"], np.asanyarray(depth_frame.get_data()).reshape(arrays["depth"].shape))

            self._ring.write(fill, lambda seq: SlotMeta(seq=seq, t=t, device_t=stamp_ms / 1000.0, frame_number=number))
            self._samples += 1
            self._frames_since_open += 1
            self._delay_sum += arrival - t
            self._recent_t.append(t)
            self._last_arrival = arrival
        except Exception as exc:  # an exception must not escape into librealsense's thread
            self._errors += 1
            self._last_error = f"capture callback: {exc}"
            if self._errors == 1 or self._errors % 100 == 0:
                log.error("camera %s: capture callback failed (%d so far): %s", self.name, self._errors, exc)

    def _count_number(self, number: int) -> None:
        prev = self._prev_number
        if prev is not None:
            if number > prev + 1:
                self._dropped += number - prev - 1
            elif number <= prev:
                self._renumbered += 1  # device restarted its counter (re-open, firmware reset)
        self._prev_number = number

    # -- recovery (supervisor thread)

    def _on_devices_changed(self) -> None:
        self._wake.set()

    def _present(self) -> bool:
        assert self._source is not None
        try:
            return any(
                _info(d, rs.camera_info.serial_number) == self.config.serial for d in self._source.query_devices()
            )
        except RuntimeError:
            return False

    def _supervise(self) -> None:
        period = min(self.config.watchdog_timeout_s / 2.0, 0.5)
        while not self._stopping.is_set():
            self._wake.wait(period)
            self._wake.clear()
            if self._stopping.is_set():
                break
            with self._lock:
                if not self._connected:
                    break
                self._check()

    def _check(self) -> None:
        present = self._present()
        if self._streaming:
            if not present:
                log.warning("camera %s (serial %s): device removed, waiting for it", self.name, self.config.serial)
                self._close()
                return
            age = time.monotonic() - self._last_arrival
            limit = self.config.watchdog_timeout_s if self._frames_since_open else self.config.first_frame_timeout_s
            if age <= limit:
                return
            log.warning("camera %s: no frame for %.2f s, re-opening", self.name, age)
            self._close()
        if not present:
            return
        try:
            self._open_and_start()
            self._reconnects += 1
            log.info("camera %s: re-opened (%d re-opens so far)", self.name, self._reconnects)
        except DeviceError as exc:
            self._errors += 1
            self._last_error = str(exc)
            log.warning("camera %s: re-open failed: %s", self.name, exc)


def _sensor_name(sensor: rs.sensor) -> str:
    return str(sensor.get_info(rs.camera_info.name)) if sensor.supports(rs.camera_info.name) else "sensor"


def _same_sensor(a: rs.sensor, b: rs.sensor) -> bool:
    """pyrealsense2 returns a new wrapper per query; compare by the profiles' unique ids."""
    ids_a = {p.unique_id() for p in a.get_stream_profiles()}
    return bool(ids_a & {p.unique_id() for p in b.get_stream_profiles()})
