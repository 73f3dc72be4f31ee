"""Clocks and loop timing for the control side: the host monotonic clock, a lockstep clock for the
twin and tests, and a rate keeper that records how late each tick woke up.

Every component that needs "now" takes a `Clock`, so the same executor and guard run in real time
(`MonotonicClock`) or stepped by the simulator (`LockstepClock`, where sleeping advances time).
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class Clock(Protocol):
    """Source of host monotonic time (seconds) that can also wait until a given time."""

    def now(self) -> float:
        """Current time in seconds on the `time.monotonic()` scale (or the simulated equivalent)."""
        ...

    def sleep_until(self, t: float) -> None:
        """Return once `now() >= t` (immediately if that is already so)."""
        ...


class MonotonicClock:
    """`time.monotonic()` with a precise wait: sleep until `spin_s` before the deadline, then spin.

    Plain `time.sleep` overshoots by 50-100 us on Linux; the final busy-wait trades a little CPU for
    sub-100 us wake-up accuracy (the same idea as diffusion_policy's `precise_wait`).
    """

    def __init__(self, spin_s: float = 0.0005) -> None:
        if not math.isfinite(spin_s) or spin_s < 0:
            raise ValueError(f"MonotonicClock.spin_s: {spin_s}, expected a non-negative number of seconds")
        self.spin_s = spin_s

    def now(self) -> float:
        return time.monotonic()

    def sleep_until(self, t: float) -> None:
        remaining = t - time.monotonic()
        if remaining > self.spin_s:
            time.sleep(remaining - self.spin_s)
        while time.monotonic() < t:
            pass


class LockstepClock:
    """Simulated time that only moves when told to: `advance`, `set`, or `sleep_until`.

    A loop driven by this clock runs as fast as the CPU allows while seeing exact periods; the twin
    advances it by its physics step so controller and simulation stay in lockstep. Thread-safe.
    """

    def __init__(self, start: float = 0.0) -> None:
        self._t = float(start)
        self._lock = threading.Lock()

    def now(self) -> float:
        with self._lock:
            return self._t

    def set(self, t: float) -> None:
        """Jump to `t`; time never runs backwards."""
        with self._lock:
            if t < self._t:
                raise ValueError(f"LockstepClock.set: {t} is before the current time {self._t}")
            self._t = float(t)

    def advance(self, dt: float) -> float:
        """Move time forward by `dt` seconds and return the new time."""
        if not math.isfinite(dt) or dt < 0:
            raise ValueError(f"LockstepClock.advance: dt={dt}, expected a finite value >= 0")
        with self._lock:
            self._t += dt
            return self._t

    def sleep_until(self, t: float) -> None:
        with self._lock:
            self._t = max(self._t, float(t))


@dataclass(frozen=True)
class JitterSummary:
    """Wake-up lateness of a periodic loop, in seconds: percentiles over the recorded window."""

    ticks: int
    overruns: int
    p50: float
    p99: float
    max: float
    mean_period: float

    def as_dict(self) -> dict[str, float]:
        return {
            "ticks": float(self.ticks),
            "overruns": float(self.overruns),
            "jitter_p50_s": self.p50,
            "jitter_p99_s": self.p99,
            "jitter_max_s": self.max,
            "mean_period_s": self.mean_period,
        }


class JitterStats:
    """Rolling record of how late each tick started relative to its schedule."""

    def __init__(self, window: int = 2000) -> None:
        if window < 1:
            raise ValueError(f"JitterStats.window: {window}, expected >= 1")
        self._late: deque[float] = deque(maxlen=window)
        self._starts: deque[float] = deque(maxlen=window)
        self.ticks = 0
        self.overruns = 0
        self._lock = threading.Lock()

    def record(self, scheduled: float, actual: float, overrun: bool = False) -> None:
        with self._lock:
            self._late.append(actual - scheduled)
            self._starts.append(actual)
            self.ticks += 1
            self.overruns += int(overrun)

    def summary(self) -> JitterSummary:
        with self._lock:
            late = np.asarray(self._late, dtype=np.float64)
            starts = np.asarray(self._starts, dtype=np.float64)
            ticks, overruns = self.ticks, self.overruns
        if late.size == 0:
            return JitterSummary(ticks, overruns, 0.0, 0.0, 0.0, 0.0)
        period = float(np.mean(np.diff(starts))) if starts.size > 1 else 0.0
        return JitterSummary(
            ticks=ticks,
            overruns=overruns,
            p50=float(np.percentile(late, 50)),
            p99=float(np.percentile(late, 99)),
            max=float(np.max(late)),
            mean_period=period,
        )


class RateKeeper:
    """Keeps a loop at `hz` on an absolute schedule (no drift) and records the wake-up jitter.

    `wait()` sleeps until the next scheduled tick and returns its scheduled time. When the loop falls
    more than one period behind, the schedule skips the missed ticks (counted as overruns) rather than
    firing them in a burst.
    """

    def __init__(self, hz: float, clock: Clock | None = None, window: int = 2000) -> None:
        if not math.isfinite(hz) or hz <= 0:
            raise ValueError(f"RateKeeper.hz: {hz}, expected a positive rate")
        self.hz = float(hz)
        self.period = 1.0 / self.hz
        self.clock: Clock = clock if clock is not None else MonotonicClock()
        self.stats = JitterStats(window)
        self._next: float | None = None

    def reset(self) -> None:
        """Restart the schedule at the next `wait()`."""
        self._next = None

    def wait(self) -> float:
        now = self.clock.now()
        if self._next is None:
            self._next = now
        overrun = False
        if now - self._next > self.period:
            missed = math.floor((now - self._next) / self.period)
            self._next += missed * self.period
            overrun = True
        self.clock.sleep_until(self._next)
        scheduled = self._next
        self.stats.record(scheduled, self.clock.now(), overrun)
        self._next = scheduled + self.period
        return scheduled


class RateMeter:
    """Event rate over a sliding window (diagnostics: frames, states, chunks per second)."""

    def __init__(self, window_s: float = 2.0) -> None:
        if not math.isfinite(window_s) or window_s <= 0:
            raise ValueError(f"RateMeter.window_s: {window_s}, expected a positive number of seconds")
        self.window_s = window_s
        self._times: deque[float] = deque()
        self.count = 0
        self._lock = threading.Lock()

    def tick(self, t: float) -> None:
        with self._lock:
            self._times.append(t)
            self.count += 1
            self._trim(t)

    def rate(self, now: float) -> float:
        """Events per second in the window ending at `now`."""
        with self._lock:
            self._trim(now)
            return len(self._times) / self.window_s

    def last(self) -> float:
        with self._lock:
            return self._times[-1] if self._times else -math.inf

    def _trim(self, now: float) -> None:
        while self._times and self._times[0] < now - self.window_s:
            self._times.popleft()
