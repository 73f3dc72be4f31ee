"""Real camera frames kept by capture time so a prediction is scored against the frames taken at its times.

Matching is by capture time (the frame's `t`), never by index: a camera running at 29.4 fps (34 ms) instead
of 30 fps (33.3 ms) drifts by a whole frame within 2 s, so "every third frame" would score the wrong ones.
"""

from __future__ import annotations

import bisect
import threading
from collections import deque

import numpy as np
from numpy.typing import NDArray

RESTART_S = 1.0
"""A frame this much older than the newest means the clock restarted, not a late frame."""


class RealFrameBuffer:
    """Per camera, the frames of the last `keep_s` seconds of capture time (thread-safe)."""

    def __init__(self, keep_s: float = 6.0) -> None:
        self.keep_s = float(keep_s)
        self._times: dict[str, deque[float]] = {}
        self._frames: dict[str, deque[NDArray[np.uint8]]] = {}
        self._lock = threading.Lock()
        self.out_of_order = 0

    def add(self, camera: str, t: float, image: NDArray[np.uint8]) -> None:
        """Store a frame; one older than the camera's newest is ignored and counted (`out_of_order`)."""
        with self._lock:
            times = self._times.setdefault(camera, deque())
            frames = self._frames.setdefault(camera, deque())
            if times and t < times[-1] - RESTART_S:  # the clock restarted (a new twin episode): start over
                times.clear()
                frames.clear()
            if times and t <= times[-1]:
                self.out_of_order += int(t < times[-1])  # the same frame again (t equal) is not an error
                return
            times.append(float(t))
            frames.append(image)
            while times and times[0] < t - self.keep_s:
                times.popleft()
                frames.popleft()

    def newest(self, camera: str) -> float:
        """Capture time of the newest frame of `camera` (-inf when none)."""
        with self._lock:
            times = self._times.get(camera)
            return times[-1] if times else float("-inf")

    def match(self, camera: str, times: NDArray[np.float64], tolerance_s: float
              ) -> tuple[list[NDArray[np.uint8] | None], NDArray[np.float64]]:
        """For each wanted time, the frame captured nearest to it if within `tolerance_s` (else None), and
        that frame's capture time (NaN when none)."""
        with self._lock:
            stamps = list(self._times.get(camera, ()))
            frames = list(self._frames.get(camera, ()))
        out: list[NDArray[np.uint8] | None] = []
        found = np.full(len(times), np.nan)
        for k, t in enumerate(times):
            i = bisect.bisect_left(stamps, t)
            best = min((j for j in (i - 1, i) if 0 <= j < len(stamps)), key=lambda j: abs(stamps[j] - t), default=None)
            if best is not None and abs(stamps[best] - t) <= tolerance_s:
                out.append(frames[best])
                found[k] = stamps[best]
            else:
                out.append(None)
        return out, found
