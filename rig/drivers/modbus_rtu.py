"""Minimal Modbus RTU master over a serial port: framing, CRC-16/MODBUS, timeouts and retries.

Only the three function codes the Robotiq grippers use: 0x03 read holding registers, 0x04 read input
registers, 0x10 write multiple registers. A frame is `slave id, function, data..., CRC low, CRC high`;
frames are separated by at least 3.5 character times of silence (fixed 1.75 ms above 19200 baud, per
the Modbus serial line specification). A reply with a bad CRC, a wrong slave id or function, or no reply
within the timeout is retried `retries` times; the last failure is raised as a `ModbusError` subclass.
"""

from __future__ import annotations

import struct
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Protocol

from rig.drivers.base import DeviceError

READ_HOLDING_REGISTERS = 0x03
READ_INPUT_REGISTERS = 0x04
WRITE_MULTIPLE_REGISTERS = 0x10
MAX_READ_REGISTERS = 125
MAX_WRITE_REGISTERS = 123

EXCEPTION_TEXT = {
    0x01: "illegal function",
    0x02: "illegal data address",
    0x03: "illegal data value",
    0x04: "slave device failure",
    0x05: "acknowledge",
    0x06: "slave device busy",
}


def _crc_table() -> tuple[int, ...]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
        table.append(crc)
    return tuple(table)


_CRC_TABLE = _crc_table()


def crc16_modbus(data: bytes) -> int:
    """CRC-16/MODBUS (reflected polynomial 0xA001, initial value 0xFFFF)."""
    crc = 0xFFFF
    for b in data:
        crc = (crc >> 8) ^ _CRC_TABLE[(crc ^ b) & 0xFF]
    return crc


def with_crc(frame: bytes) -> bytes:
    """Append the CRC, low byte first."""
    return frame + struct.pack("<H", crc16_modbus(frame))


def crc_ok(frame: bytes) -> bool:
    """Whether the last two bytes of `frame` are the CRC of the rest."""
    return len(frame) >= 4 and struct.unpack("<H", frame[-2:])[0] == crc16_modbus(frame[:-2])


def inter_frame_gap_s(baudrate: int) -> float:
    """Silent interval t3.5 between frames (11-bit characters; fixed 1.75 ms above 19200 baud)."""
    return 0.00175 if baudrate > 19200 else 3.5 * 11.0 / baudrate


class ModbusError(DeviceError):
    """A Modbus transaction failed; the message names the port, slave and function."""


class ModbusTimeoutError(ModbusError):
    """No complete reply within the timeout (the slave is silent, unpowered or on another id)."""


class ModbusCrcError(ModbusError):
    """A reply arrived with a CRC that does not match its content (line noise, wrong baud rate)."""


class ModbusFrameError(ModbusError):
    """A reply with a valid CRC but the wrong slave id, function or length."""


class ModbusExceptionError(ModbusError):
    """The slave answered with a Modbus exception response."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


class SerialPort(Protocol):
    """The part of `serial.Serial` the client uses."""

    timeout: float | None
    baudrate: int
    port: str | None

    def write(self, data: bytes) -> int | None: ...

    def read(self, size: int = 1) -> bytes: ...

    def reset_input_buffer(self) -> None: ...

    def flush(self) -> None: ...


@dataclass
class ModbusStats:
    """Transaction counters and the recent round-trip times (seconds)."""

    transactions: int = 0
    retries: int = 0
    timeouts: int = 0
    crc_errors: int = 0
    frame_errors: int = 0
    exceptions: int = 0
    rtt_s: deque[float] = field(default_factory=lambda: deque(maxlen=1000))


class ModbusRtuClient:
    """Modbus RTU master for one slave on a serial port; thread-safe (one transaction at a time)."""

    def __init__(self, port: SerialPort, slave_id: int, timeout_s: float = 0.05, retries: int = 2) -> None:
        if not 1 <= slave_id <= 247:
            raise ValueError(f"modbus slave id {slave_id}, expected 1..247")
        if timeout_s <= 0 or retries < 0:
            raise ValueError(f"modbus timeout_s {timeout_s} must be > 0 and retries {retries} >= 0")
        self.port = port
        self.slave_id = slave_id
        self.timeout_s = timeout_s
        self.retries = retries
        self.stats = ModbusStats()
        self._lock = threading.Lock()
        self._gap_s = inter_frame_gap_s(int(getattr(port, "baudrate", 115200) or 115200))
        self._quiet_at = 0.0

    def _where(self, function: int) -> str:
        return f"modbus {getattr(self.port, 'port', '?')} slave {self.slave_id} function 0x{function:02X}"

    # -- public functions --------------------------------------------------------------------------
    def read_input_registers(self, address: int, count: int) -> list[int]:
        return self._read(READ_INPUT_REGISTERS, address, count)

    def read_holding_registers(self, address: int, count: int) -> list[int]:
        return self._read(READ_HOLDING_REGISTERS, address, count)

    def write_multiple_registers(self, address: int, values: list[int]) -> None:
        if not 1 <= len(values) <= MAX_WRITE_REGISTERS or any(not 0 <= v <= 0xFFFF for v in values):
            raise ValueError(f"modbus write of {values}: expected 1..{MAX_WRITE_REGISTERS} values in 0..65535")
        pdu = struct.pack(">BHHB", WRITE_MULTIPLE_REGISTERS, address, len(values), 2 * len(values))
        pdu += struct.pack(f">{len(values)}H", *values)
        reply = self._transact(pdu)
        echo = struct.unpack(">HH", reply[2:6])
        if echo != (address, len(values)):
            self.stats.frame_errors += 1
            raise ModbusFrameError(f"{self._where(WRITE_MULTIPLE_REGISTERS)}: reply echoes {echo}, "
                                   f"expected {(address, len(values))}")

    # -- internals ---------------------------------------------------------------------------------
    def _read(self, function: int, address: int, count: int) -> list[int]:
        if not 1 <= count <= MAX_READ_REGISTERS:
            raise ValueError(f"modbus read of {count} registers, expected 1..{MAX_READ_REGISTERS}")
        reply = self._transact(struct.pack(">BHH", function, address, count))
        if reply[2] != 2 * count:
            self.stats.frame_errors += 1
            raise ModbusFrameError(f"{self._where(function)}: {reply[2]} data bytes, expected {2 * count}")
        return list(struct.unpack(f">{count}H", reply[3 : 3 + 2 * count]))

    def _transact(self, pdu: bytes) -> bytes:
        function = pdu[0]
        request = with_crc(bytes([self.slave_id]) + pdu)
        last: ModbusError | None = None
        with self._lock:
            for attempt in range(self.retries + 1):
                if attempt:
                    self.stats.retries += 1
                try:
                    reply = self._once(request, function)
                except ModbusExceptionError:
                    self.stats.exceptions += 1
                    raise
                except ModbusError as exc:
                    last = exc
                    if isinstance(exc, ModbusTimeoutError):
                        self.stats.timeouts += 1
                    elif isinstance(exc, ModbusCrcError):
                        self.stats.crc_errors += 1
                    else:
                        self.stats.frame_errors += 1
                    self._drain()
                    continue
                self.stats.transactions += 1
                return reply
        assert last is not None
        raise type(last)(f"{last} (after {self.retries + 1} attempts)")

    def _drain(self) -> None:
        """Discard a partial or late reply so the next request starts on a frame boundary."""
        time.sleep(self._gap_s)
        self.port.reset_input_buffer()

    def _read_exact(self, size: int, deadline: float, function: int) -> bytes:
        buf = b""
        while len(buf) < size:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise ModbusTimeoutError(
                    f"{self._where(function)}: timeout after {self.timeout_s * 1e3:.0f} ms "
                    f"({len(buf)} of {size} reply bytes)"
                )
            self.port.timeout = remaining
            buf += self.port.read(size - len(buf))
        return buf

    def _once(self, request: bytes, function: int) -> bytes:
        wait = self._quiet_at - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        self.port.reset_input_buffer()
        t0 = time.monotonic()
        self.port.write(request)
        self.port.flush()
        deadline = t0 + self.timeout_s
        head = self._read_exact(3, deadline, function)
        if head[1] == (function | 0x80):
            frame = head + self._read_exact(2, deadline, function)
        elif head[1] in (READ_HOLDING_REGISTERS, READ_INPUT_REGISTERS):
            frame = head + self._read_exact(head[2] + 2, deadline, function)
        else:
            frame = head + self._read_exact(5, deadline, function)  # 0x10 reply: 8 bytes in all
        self._quiet_at = time.monotonic() + self._gap_s
        if not crc_ok(frame):
            raise ModbusCrcError(f"{self._where(function)}: CRC mismatch in reply {frame.hex(' ')}")
        if frame[0] != self.slave_id or frame[1] & 0x7F != function:
            raise ModbusFrameError(f"{self._where(function)}: reply from slave {frame[0]} function "
                                   f"0x{frame[1]:02X} does not match the request")
        if frame[1] & 0x80:
            code = frame[2]
            raise ModbusExceptionError(
                f"{self._where(function)}: exception 0x{code:02X} ({EXCEPTION_TEXT.get(code, 'unknown')})", code
            )
        self.stats.rtt_s.append(time.monotonic() - t0)
        return frame
