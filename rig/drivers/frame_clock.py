"""Mapping a camera frame's device stamp to host monotonic time at exposure.

librealsense stamps frames in one of three domains (`rs.timestamp_domain`):

- `global_time`: the device clock converted by librealsense to host time, and `system_time`: host time
  at arrival. Both are milliseconds on the host's `std::chrono::system_clock` (wall clock, epoch
  based). They are moved to `time.monotonic()` by subtracting the current wall-minus-monotonic offset,
  sampled in the frame callback (NTP slews that offset slowly; sampling it per frame follows them).
- `hardware_clock`: milliseconds of the camera's own clock with an unknown epoch. The offset to
  `time.monotonic()` is estimated as the minimum of (arrival - stamp) over a sliding window of
  frames: transport delay is never negative, so the minimum is the closest bound, and the window lets
  the estimate follow the drift between the two clocks.

The configured `latency_s` (exposure to stamp: half the exposure plus readout for device stamps, the
whole capture-to-arrival path for `system_time`) is then subtracted, so `t` is the host monotonic
time at exposure as ARCHITECTURE.md requires.
"""

from __future__ import annotations

import time
from collections import deque
from enum import Enum


class StampDomain(Enum):
    """Our names for librealsense's timestamp domains (kept free of the vendor import)."""

    HARDWARE_CLOCK = "hardware_clock"
    SYSTEM_TIME = "system_time"
    GLOBAL_TIME = "global_time"


class FrameClock:
    """Converts (device stamp in ms, domain, host arrival) to latency-corrected monotonic time."""

    def __init__(self, latency_s: float, window: int = 300) -> None:
        if window < 1:
            raise ValueError(f"FrameClock: window={window}, expected >= 1 frame")
        self.latency_s = float(latency_s)
        self._offsets: deque[float] = deque(maxlen=window)
        self.last_domain: StampDomain | None = None

    def reset(self) -> None:
        """Forget the hardware-clock offset estimate (after the device re-opened)."""
        self._offsets.clear()

    def to_monotonic(
        self,
        stamp_ms: float,
        domain: StampDomain,
        arrival_mono: float | None = None,
        wall_minus_mono: float | None = None,
    ) -> float:
        """Host monotonic time (s) at exposure of a frame stamped `stamp_ms` in `domain`."""
        self.last_domain = domain
        stamp_s = stamp_ms / 1000.0
        if domain is StampDomain.HARDWARE_CLOCK:
            arrival = time.monotonic() if arrival_mono is None else arrival_mono
            self._offsets.append(arrival - stamp_s)
            return stamp_s + min(self._offsets) - self.latency_s
        if wall_minus_mono is None:
            wall_minus_mono = time.time() - time.monotonic()
        return stamp_s - wall_minus_mono - self.latency_s
