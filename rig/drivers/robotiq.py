"""Robotiq 2F-85 driven from the host over Modbus RTU (USB-RS485 adapter, pyserial).

Register protocol (Robotiq 2F-85/140 instruction manual, "Control" section):
- Robot output / gripper input, 3 registers from 0x03E8, written with function 0x10:
  byte 0 action request (rACT bit 0, rGTO bit 3, rATR bit 4, rARD bit 5), bytes 1-2 reserved,
  byte 3 rPR position request, byte 4 rSP speed, byte 5 rFR force.
- Gripper output / robot input, 3 registers from 0x07D0, read with function 0x04:
  byte 0 gripper status (gACT bit 0, gGTO bit 3, gSTA bits 4-5, gOBJ bits 6-7), byte 1 reserved,
  byte 2 fault status (gFLT low nibble, kFLT high nibble), byte 3 gPR echo, byte 4 gPO position,
  byte 5 gCU current (x 10 mA).
Each register holds two bytes, the first byte in the high half.

Activation: write rACT=0 (reset), then rACT=1 and wait until gSTA == 3.
Position 0 is fully open and 255 fully closed. The finger distance is linear in the position count
between the calibrated counts `position_open` (0.085 m) and `position_closed` (0 m); `calibrate()`
measures both with nothing between the fingers. Speed in m/s and force in N map linearly onto 0-255
over the 2F-85 datasheet ranges 20-150 mm/s and 20-235 N (values outside are clipped).
A background thread polls the status at `poll_hz`; `stats().rate_hz` is the measured rate.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from rig.config import ConfigError, load_yaml, node_params
from rig.conventions import ARM_NAMES, GRIPPER_STROKE_M, width_to_opening
from rig.drivers.base import DeviceError, DeviceStats, Gripper
from rig.drivers.modbus_rtu import ModbusError, ModbusRtuClient, SerialPort
from rig.params import get_float, get_int, get_str, reject_unknown
from rig.schema import GripperState

log = logging.getLogger(__name__)

OUTPUT_REGISTERS = 0x03E8
INPUT_REGISTERS = 0x07D0
REGISTER_COUNT = 3

SPEED_RANGE_M_S = (0.020, 0.150)
FORCE_RANGE_N = (20.0, 235.0)

GSTA_RESET, GSTA_ACTIVATING, GSTA_ACTIVE = 0, 1, 3
GOBJ_MOVING, GOBJ_CONTACT_OPENING, GOBJ_CONTACT_CLOSING, GOBJ_AT_POSITION = 0, 1, 2, 3

FAULT_TEXT = {
    0x00: "no fault",
    0x05: "action delayed: activation (reactivation) must complete first",
    0x07: "the activation bit must be set before an action",
    0x08: "maximum operating temperature exceeded, wait for cool-down",
    0x09: "no communication for at least 1 second",
    0x0A: "under minimum operating voltage",
    0x0B: "automatic release in progress",
    0x0C: "internal fault, contact Robotiq support",
    0x0D: "activation fault, check for interference",
    0x0E: "overcurrent triggered",
    0x0F: "automatic release completed",
}
MINOR_FAULTS = frozenset({0x05, 0x07, 0x08, 0x09})
"""Faults that clear by themselves once the cause is gone (priority and minor faults)."""


# ------------------------------------------------------------------------------------------------
# Register encoding


@dataclass(frozen=True)
class RobotiqRequest:
    """Robot output registers: action bits and the position, speed and force requests (0-255)."""

    act: bool = False
    gto: bool = False
    atr: bool = False
    ard: bool = False
    position: int = 0
    speed: int = 0
    force: int = 0

    def registers(self) -> list[int]:
        for key in ("position", "speed", "force"):
            if not 0 <= getattr(self, key) <= 255:
                raise ValueError(f"robotiq request {key} {getattr(self, key)}, expected 0..255")
        action = int(self.act) | int(self.gto) << 3 | int(self.atr) << 4 | int(self.ard) << 5
        return [action << 8, self.position, self.speed << 8 | self.force]


@dataclass(frozen=True)
class RobotiqStatus:
    """Decoded robot input registers."""

    gACT: int  # noqa: N815 (register name from the Robotiq manual)
    gGTO: int  # noqa: N815 (register name from the Robotiq manual)
    gSTA: int  # noqa: N815 (register name from the Robotiq manual)
    gOBJ: int  # noqa: N815 (register name from the Robotiq manual)
    gFLT: int  # noqa: N815 (register name from the Robotiq manual)
    kFLT: int  # noqa: N815 (register name from the Robotiq manual)
    gPR: int  # noqa: N815 (register name from the Robotiq manual)
    gPO: int  # noqa: N815 (register name from the Robotiq manual)
    gCU: int  # noqa: N815 (register name from the Robotiq manual)

    @classmethod
    def from_registers(cls, regs: list[int]) -> RobotiqStatus:
        if len(regs) != REGISTER_COUNT:
            raise ValueError(f"robotiq status: {len(regs)} registers, expected {REGISTER_COUNT}")
        status, fault_byte = regs[0] >> 8, regs[1] >> 8
        return cls(
            gACT=status & 0x01,
            gGTO=(status >> 3) & 0x01,
            gSTA=(status >> 4) & 0x03,
            gOBJ=(status >> 6) & 0x03,
            gFLT=fault_byte & 0x0F,
            kFLT=(fault_byte >> 4) & 0x0F,
            gPR=regs[1] & 0xFF,
            gPO=regs[2] >> 8,
            gCU=regs[2] & 0xFF,
        )

    @property
    def activated(self) -> bool:
        return self.gSTA == GSTA_ACTIVE

    @property
    def fault(self) -> bool:
        return self.gFLT != 0

    @property
    def fault_text(self) -> str:
        return FAULT_TEXT.get(self.gFLT, f"unknown fault 0x{self.gFLT:02X}")

    @property
    def object_detected(self) -> bool:
        return self.gGTO == 1 and self.gOBJ in (GOBJ_CONTACT_OPENING, GOBJ_CONTACT_CLOSING)

    @property
    def moving(self) -> bool:
        return self.gGTO == 1 and self.gOBJ == GOBJ_MOVING

    @property
    def current_a(self) -> float:
        return self.gCU * 0.01


def _to_byte(value: float, low: float, high: float) -> int:
    fraction = (min(max(value, low), high) - low) / (high - low)
    return round(fraction * 255)


def speed_to_byte(speed_m_s: float) -> int:
    """Finger speed in m/s -> rSP (0 = 20 mm/s, 255 = 150 mm/s)."""
    return _to_byte(speed_m_s, *SPEED_RANGE_M_S)


def force_to_byte(force_n: float) -> int:
    """Grip force in N -> rFR (0 = 20 N, 255 = 235 N)."""
    return _to_byte(force_n, *FORCE_RANGE_N)


# ------------------------------------------------------------------------------------------------
# Configuration

_KEYS = {
    "type", "port", "slave_id", "baudrate", "speed", "force", "timeout_s", "retries", "poll_hz",
    "latency_s", "position_open", "position_closed", "activation_timeout_s",
}


@dataclass(frozen=True)
class RobotiqConfig:
    """Settings of one Robotiq 2F-85 on a USB-RS485 port (`grippers: ros__parameters: <arm>:`)."""

    name: str
    port: str
    slave_id: int = 9
    baudrate: int = 115200
    speed: float = 0.1
    force: float = 60.0
    timeout_s: float = 0.05
    retries: int = 2
    poll_hz: float = 50.0
    latency_s: float = 0.005
    position_open: int = 0
    position_closed: int = 255
    activation_timeout_s: float = 5.0
    where: str = ""

    def __post_init__(self) -> None:
        where = self.where or f"grippers.{self.name}"
        if self.name not in ARM_NAMES:
            raise ConfigError(f"{where}: name {self.name!r}, expected one of {list(ARM_NAMES)}")
        if not 0 <= self.position_open < self.position_closed <= 255:
            raise ConfigError(f"{where}: position_open {self.position_open} / position_closed "
                              f"{self.position_closed}, expected 0 <= open < closed <= 255")

    @classmethod
    def from_dict(cls, name: str, d: Mapping[str, Any], where: str | None = None) -> RobotiqConfig:
        where = where or f"config/rig.yaml grippers.{name}"
        reject_unknown(d, _KEYS, where)
        kind = get_str(d, "type", where)
        if kind != "robotiq_modbus":
            raise ConfigError(f"{where}.type: {kind!r}, expected 'robotiq_modbus' for RobotiqGripper")
        return cls(
            name=name,
            port=get_str(d, "port", where),
            slave_id=get_int(d, "slave_id", where, default=9, low=1, high=247),
            baudrate=get_int(d, "baudrate", where, default=115200, low=1200, high=921600),
            speed=get_float(d, "speed", where, default=0.1, positive=True),
            force=get_float(d, "force", where, default=60.0, positive=True),
            timeout_s=get_float(d, "timeout_s", where, default=0.05, positive=True),
            retries=get_int(d, "retries", where, default=2, low=0, high=10),
            poll_hz=get_float(d, "poll_hz", where, default=50.0, low=1.0, high=500.0),
            latency_s=get_float(d, "latency_s", where, default=0.005, low=0.0, high=1.0),
            position_open=get_int(d, "position_open", where, default=0, low=0, high=255),
            position_closed=get_int(d, "position_closed", where, default=255, low=0, high=255),
            activation_timeout_s=get_float(d, "activation_timeout_s", where, default=5.0, positive=True),
            where=where,
        )

    @classmethod
    def from_rig_yaml(cls, name: str, path: str = "rig") -> RobotiqConfig:
        grippers = node_params(load_yaml(path), "grippers")
        if name not in grippers:
            raise ConfigError(f"{path}: grippers.{name} not found (present: {sorted(grippers)})")
        return cls.from_dict(name, grippers[name], where=f"{path} grippers.{name}")


# ------------------------------------------------------------------------------------------------
# Driver


class RobotiqGripper(Gripper):
    """Robotiq 2F-85 over Modbus RTU with a background status poller; see the module docstring."""

    def __init__(self, config: RobotiqConfig, port: SerialPort | None = None) -> None:
        self.config = config
        self.name = config.name
        self._given_port = port
        self._port: Any = None
        self.client: ModbusRtuClient | None = None
        self.position_open = config.position_open
        self.position_closed = config.position_closed
        self._lock = threading.Lock()
        self._status: RobotiqStatus | None = None
        self._status_t = 0.0
        self._poll_times: deque[float] = deque()
        self._samples = 0
        self._errors = 0
        self._thread: threading.Thread | None = None
        self._stop_event = threading.Event()

    # -- lifecycle ---------------------------------------------------------------------------------
    @property
    def is_connected(self) -> bool:
        return self.client is not None

    def connect(self) -> None:
        if self.client is not None:
            return
        cfg = self.config
        if self._given_port is not None:
            self._port = self._given_port
        else:
            import serial  # pyserial; imported here so the module loads without it

            try:
                self._port = serial.Serial(cfg.port, baudrate=cfg.baudrate, bytesize=8, parity="N",
                                           stopbits=1, timeout=cfg.timeout_s)
            except (serial.SerialException, OSError) as exc:
                raise DeviceError(f"gripper {self.name}: cannot open {cfg.port!r}: {exc} "
                                  "(check the USB-RS485 adapter and dialout group)") from exc
        self.client = ModbusRtuClient(self._port, cfg.slave_id, cfg.timeout_s, cfg.retries)
        try:
            self.activate()
        except Exception:
            self._close_port()
            raise
        self._stop_event.clear()
        self._thread = threading.Thread(target=self._poll_loop, name=f"robotiq-{self.name}", daemon=True)
        self._thread.start()

    def _close_port(self) -> None:
        if self._port is not None and self._given_port is None:
            self._port.close()
        self._port = None
        self.client = None

    def disconnect(self) -> None:
        self._stop_event.set()
        if self._thread is not None:
            self._thread.join(timeout=2.0)
            self._thread = None
        self._close_port()

    def _client(self) -> ModbusRtuClient:
        if self.client is None:
            raise DeviceError(f"gripper {self.name}: not connected")
        return self.client

    # -- protocol ----------------------------------------------------------------------------------
    def write_request(self, request: RobotiqRequest) -> None:
        self._client().write_multiple_registers(OUTPUT_REGISTERS, request.registers())

    def read_status(self) -> RobotiqStatus:
        """One status read over the bus (the poller keeps the latest in `read_state()`)."""
        status = RobotiqStatus.from_registers(self._client().read_input_registers(INPUT_REGISTERS, REGISTER_COUNT))
        now = time.monotonic()
        with self._lock:
            self._status, self._status_t = status, now
            self._samples += 1
            self._poll_times.append(now)
            while self._poll_times and now - self._poll_times[0] > 1.0:
                self._poll_times.popleft()
        return status

    def activate(self) -> None:
        """Reset (rACT=0) then activate (rACT=1) and wait for gSTA == 3."""
        self.write_request(RobotiqRequest())
        self.write_request(RobotiqRequest(act=True))
        deadline = time.monotonic() + self.config.activation_timeout_s
        while True:
            status = self.read_status()
            if status.activated:
                break
            if status.fault and status.gFLT not in MINOR_FAULTS:
                raise DeviceError(f"gripper {self.name}: activation failed, fault 0x{status.gFLT:02X} "
                                  f"({status.fault_text})")
            if time.monotonic() > deadline:
                raise DeviceError(f"gripper {self.name}: not activated after {self.config.activation_timeout_s} s "
                                  f"(gSTA={status.gSTA}, fault: {status.fault_text})")
            time.sleep(0.01)
        log.info("gripper %s: activated on %s", self.name, self.config.port)

    def _poll_loop(self) -> None:
        period = 1.0 / self.config.poll_hz
        next_t = time.monotonic()
        while not self._stop_event.is_set():
            next_t += period
            try:
                self.read_status()
            except ModbusError as exc:
                self._errors += 1
                log.warning("gripper %s: status poll failed: %s", self.name, exc)
            delay = next_t - time.monotonic()
            if delay > 0:
                self._stop_event.wait(delay)
            elif delay < -period:
                next_t = time.monotonic()

    # -- mapping -----------------------------------------------------------------------------------
    def width_to_position(self, width_m: float) -> int:
        """Finger distance (m) -> position count with the calibrated open/closed counts."""
        fraction = min(max(width_m / GRIPPER_STROKE_M, 0.0), 1.0)
        return round(self.position_closed - fraction * (self.position_closed - self.position_open))

    def position_to_width(self, position: int) -> float:
        """Position count -> finger distance (m), clipped to [0, stroke]."""
        span = self.position_closed - self.position_open
        fraction = (self.position_closed - position) / span
        return min(max(fraction, 0.0), 1.0) * GRIPPER_STROKE_M

    # -- Gripper interface -------------------------------------------------------------------------
    def command(self, opening: float, speed: float | None = None, force: float | None = None) -> None:
        if not 0.0 <= opening <= 1.0:
            raise ValueError(f"gripper {self.name}: opening {opening}, expected a value in [0, 1]")
        request = RobotiqRequest(
            act=True,
            gto=True,
            position=self.width_to_position(opening * GRIPPER_STROKE_M),
            speed=speed_to_byte(self.config.speed if speed is None else speed),
            force=force_to_byte(self.config.force if force is None else force),
        )
        self.write_request(request)

    def stop(self) -> None:
        """Stop the fingers where they are (rGTO=0 keeps the activation)."""
        self.write_request(RobotiqRequest(act=True, gto=False))

    def read_state(self) -> GripperState:
        with self._lock:
            status, t = self._status, self._status_t
        if status is None:
            raise DeviceError(f"gripper {self.name}: no status yet (connect() first)")
        width = self.position_to_width(status.gPO)
        return GripperState(
            arm=self.name,
            t=t - self.config.latency_s,
            opening=width_to_opening(width),
            width_m=width,
            is_moving=status.moving,
            object_detected=status.object_detected,
            fault=status.fault,
        )

    def latest_status(self) -> RobotiqStatus | None:
        """The most recent decoded status (raw register fields)."""
        with self._lock:
            return self._status

    def stats(self) -> DeviceStats:
        with self._lock:
            times = list(self._poll_times)
            samples = self._samples
        rate = (len(times) - 1) / (times[-1] - times[0]) if len(times) > 1 and times[-1] > times[0] else 0.0
        extra: dict[str, float] = {}
        if self.client is not None:
            s = self.client.stats
            extra = {"timeouts": float(s.timeouts), "crc_errors": float(s.crc_errors),
                     "retries": float(s.retries), "transactions": float(s.transactions)}
            if s.rtt_s:
                extra["rtt_ms_last"] = 1e3 * s.rtt_s[-1]
        return DeviceStats(samples=samples, rate_hz=rate, errors=self._errors, extra=extra)

    def calibrate(self, timeout_s: float = 5.0) -> tuple[int, int]:
        """Measure the position counts of the fully open and fully closed fingers (nothing between
        them) and use them for the width mapping; returns (open, closed) for config/rig.yaml.
        """
        counts = []
        for target in (0, 255):
            self.write_request(RobotiqRequest(act=True, gto=True, position=target, speed=255, force=0))
            deadline = time.monotonic() + timeout_s
            time.sleep(0.05)
            while True:
                status = self.read_status()
                if status.gOBJ != GOBJ_MOVING and status.gPR == target:
                    break
                if time.monotonic() > deadline:
                    raise DeviceError(f"gripper {self.name}: calibration move to {target} did not finish")
                time.sleep(0.02)
            if status.object_detected:
                raise DeviceError(f"gripper {self.name}: object detected during calibration; empty the fingers")
            counts.append(status.gPO)
        if counts[0] >= counts[1]:
            raise DeviceError(f"gripper {self.name}: calibration read open {counts[0]} >= closed {counts[1]}")
        self.position_open, self.position_closed = counts[0], counts[1]
        log.info("gripper %s: calibrated open=%d closed=%d", self.name, *counts)
        return counts[0], counts[1]
