"""A fake Robotiq 2F-85 that speaks Modbus RTU on a pseudo-terminal, for driver tests without hardware.

The driver opens `FakeRobotiq.port_name` (the pty's slave side) like a USB-RS485 adapter; the fake
reads the master side. It implements the gripper's register map: function 0x10 writes the three
robot-output registers at 0x03E8, functions 0x04 (and 0x03) read the three robot-input registers at
0x07D0. Requests with a bad CRC or for another slave id are ignored, as a real RTU slave does;
unsupported functions or addresses get a Modbus exception reply.

Physics: after rACT goes 0 -> 1 the status is "activation in progress" for `activation_time_s`, then
gSTA = 3. With rGTO = 1 the fingers move towards rPR at the requested speed (rSP 0..255 -> 20..150
mm/s) between the mechanical limits `open_count` and `closed_count`, so the width is
0.085 m * (closed_count - gPO) / (closed_count - open_count). An object of width `object_width_m`
stops closing fingers (gOBJ = 2). `inject_fault(code)` sets gFLT; major faults (>= 0x0A) stop the
fingers until the gripper is reset and reactivated. Test knobs: `silent` (no replies) and
`corrupt_next(n)` (the next n replies carry a wrong CRC).
"""

from __future__ import annotations

import os
import select
import struct
import threading
import time
import tty

from rig.drivers.modbus_rtu import crc_ok, with_crc

STROKE_MM = 85.0
OUT_ADDR = 0x03E8
IN_ADDR = 0x07D0


class FakeRobotiq:
    """Simulated 2F-85 behind a pty; use as a context manager or call start()/stop()."""

    def __init__(
        self,
        slave_id: int = 9,
        open_count: int = 3,
        closed_count: int = 228,
        activation_time_s: float = 0.1,
        reply_delay_s: float = 0.0,
    ) -> None:
        self.slave_id = slave_id
        self.open_count = open_count
        self.closed_count = closed_count
        self.activation_time_s = activation_time_s
        self.reply_delay_s = reply_delay_s
        self.object_width_m: float | None = None
        self.silent = False
        self.requests = 0
        self.bad_crc_requests = 0
        self._corrupt = 0
        self._lock = threading.Lock()
        # Robot output registers and simulated state.
        self.out = [0, 0, 0]
        self.gACT = 0
        self.gGTO = 0
        self.gSTA = 0
        self.gOBJ = 0
        self.gFLT = 0
        self.pos = float(open_count)
        self._activation_done_at: float | None = None
        self._last = time.monotonic()
        self._master = -1
        self._slave = -1
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self.port_name = ""

    # -- lifecycle ---------------------------------------------------------------------------------
    def start(self) -> FakeRobotiq:
        self._master, self._slave = os.openpty()
        tty.setraw(self._slave)
        tty.setraw(self._master)
        self.port_name = os.ttyname(self._slave)
        self._thread = threading.Thread(target=self._serve, name="fake-robotiq", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2.0)
        for fd in (self._master, self._slave):
            if fd >= 0:
                os.close(fd)
        self._master = self._slave = -1

    def __enter__(self) -> FakeRobotiq:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- test knobs --------------------------------------------------------------------------------
    def corrupt_next(self, n: int) -> None:
        with self._lock:
            self._corrupt = n

    def inject_fault(self, code: int) -> None:
        with self._lock:
            self._advance()
            self.gFLT = code

    def width_m(self) -> float:
        with self._lock:
            self._advance()
            return self._width_mm(self.pos) / 1000.0

    # -- simulation --------------------------------------------------------------------------------
    def _width_mm(self, pos: float) -> float:
        return STROKE_MM * (self.closed_count - pos) / (self.closed_count - self.open_count)

    def _advance(self) -> None:
        now = time.monotonic()
        dt, self._last = now - self._last, now
        if self.gSTA == 1 and self._activation_done_at is not None and now >= self._activation_done_at:
            self.gSTA = 3
            self.pos = float(self.open_count)
        if self.gSTA != 3 or not self.gGTO or self.gFLT >= 0x0A:
            return
        rpr, rsp = self.out[1] & 0xFF, self.out[2] >> 8
        target = float(min(max(rpr, self.open_count), self.closed_count))
        if self.gOBJ in (1, 2):  # stopped on an object; holds until the request changes direction
            return
        speed_mm_s = 20.0 + rsp / 255.0 * 130.0
        counts_per_mm = (self.closed_count - self.open_count) / STROKE_MM
        step = speed_mm_s * counts_per_mm * dt
        delta = target - self.pos
        new = self.pos + max(-step, min(step, delta))
        if self.object_width_m is not None and delta > 0:
            block = self.closed_count - self.object_width_m * 1000.0 * counts_per_mm
            if self.pos <= block <= new:
                self.pos = block
                self.gOBJ = 2
                return
        self.pos = new
        self.gOBJ = 3 if abs(target - self.pos) < 1e-9 else 0

    def _write_outputs(self, regs: list[int]) -> None:
        self._advance()
        action = regs[0] >> 8
        act, gto = action & 0x01, (action >> 3) & 0x01
        if not act:
            self.gACT = self.gSTA = self.gGTO = 0
            self.gFLT = 0
            self._activation_done_at = None
        elif not self.gACT:
            self.gACT = 1
            self.gSTA = 1
            self._activation_done_at = time.monotonic() + self.activation_time_s
        new_target = regs[1] & 0xFF
        if new_target != (self.out[1] & 0xFF) or (gto and not self.gGTO):
            self.gOBJ = 0
        self.out = list(regs)
        if gto and self.gSTA != 3:
            self.gFLT = 0x05 if self.gACT else 0x07
            self.gGTO = 0
            return
        if self.gFLT in (0x05, 0x07):
            self.gFLT = 0
        self.gGTO = gto

    def _inputs(self) -> list[int]:
        self._advance()
        status = self.gACT | self.gGTO << 3 | self.gSTA << 4 | (self.gOBJ if self.gGTO else 0) << 6
        moving = self.gGTO and self.gOBJ == 0
        current = 25 if moving else (40 if self.gOBJ in (1, 2) else 0)
        gpo = round(self.pos)
        return [status << 8, self.gFLT << 8 | (self.out[1] & 0xFF), gpo << 8 | current]

    # -- Modbus RTU slave --------------------------------------------------------------------------
    def _serve(self) -> None:
        buf = b""
        last_rx = time.monotonic()
        while not self._stop.is_set():
            ready, _, _ = select.select([self._master], [], [], 0.01)
            now = time.monotonic()
            if buf and now - last_rx > 0.02:  # an incomplete frame followed by silence is dropped
                buf = b""
            if not ready:
                continue
            try:
                chunk = os.read(self._master, 256)
            except OSError:
                continue
            buf += chunk
            last_rx = now
            while True:
                size = self._request_size(buf)
                if size is None or len(buf) < size:
                    break
                frame, buf = buf[:size], buf[size:]
                self._handle(frame)

    @staticmethod
    def _request_size(buf: bytes) -> int | None:
        if len(buf) < 2:
            return None
        fc = buf[1]
        if fc == 0x10:
            return 9 + buf[6] if len(buf) >= 7 else None
        return 8  # 0x03, 0x04 and the unsupported functions we answer with an exception

    def _handle(self, frame: bytes) -> None:
        self.requests += 1
        if not crc_ok(frame):
            self.bad_crc_requests += 1
            return
        if frame[0] != self.slave_id:
            return
        fc = frame[1]
        with self._lock:
            if fc in (0x03, 0x04):
                addr, count = struct.unpack(">HH", frame[2:6])
                if addr != IN_ADDR or not 1 <= count <= 3:
                    reply = bytes([self.slave_id, fc | 0x80, 0x02])
                else:
                    regs = self._inputs()[:count]
                    reply = bytes([self.slave_id, fc, 2 * count]) + struct.pack(f">{count}H", *regs)
            elif fc == 0x10:
                addr, count = struct.unpack(">HH", frame[2:6])
                if addr != OUT_ADDR or count != 3 or frame[6] != 6:
                    reply = bytes([self.slave_id, fc | 0x80, 0x02])
                else:
                    self._write_outputs(list(struct.unpack(">3H", frame[7:13])))
                    reply = bytes([self.slave_id, fc]) + frame[2:6]
            else:
                reply = bytes([self.slave_id, fc | 0x80, 0x01])
            out = with_crc(reply)
            if self._corrupt > 0:
                self._corrupt -= 1
                out = out[:-1] + bytes([out[-1] ^ 0xFF])
            silent = self.silent
        if silent:
            return
        if self.reply_delay_s:
            time.sleep(self.reply_delay_s)
        os.write(self._master, out)
