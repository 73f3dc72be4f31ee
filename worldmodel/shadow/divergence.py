"""Divergence signal: an error that stays beyond a threshold for a configured time, and its calibration.

The detector consumes (capture time, value) points in time order, the mean over cameras of one metric
per predicted frame. Points at or before the last one seen are skipped (consecutive chunks overlap).
It fires once per excursion: when the value has been beyond the threshold continuously for `hold_s`;
it re-arms when the value comes back. Without a threshold (not calibrated) it never fires.

Calibration: on held-out episodes where the prediction is known good, the threshold is the `quantile`
of the per-frame values in the bad direction (99th percentile of EPE, 1st percentile of PSNR, ...),
so a sustained excursion beyond what good predictions ever do is needed to fire.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np

from worldmodel.shadow.config import DivergenceConfig

log = logging.getLogger(__name__)


@dataclass
class DivergenceEvent:
    """One firing: when the excursion began, when it fired, the value then and the threshold."""

    since: float
    fired_at: float
    value: float
    threshold: float
    metric: str

    def message(self) -> str:
        return (f"shadow divergence: {self.metric} {self.value:.4g} beyond {self.threshold:.4g} for "
                f"{self.fired_at - self.since:.2f} s (since t={self.since:.3f})")


@dataclass
class DivergenceDetector:
    """See the module doc. `on_fire(event)` is called on each firing (alert log, or a guard hold request)."""

    config: DivergenceConfig
    on_fire: Callable[[DivergenceEvent], None] | None = None
    events: list[DivergenceEvent] = field(default_factory=list)
    _last_t: float = -math.inf
    _since: float | None = None
    _fired: bool = False

    def beyond(self, value: float) -> bool:
        threshold = self.config.threshold
        if threshold is None or not math.isfinite(value):
            return False
        return value > threshold if self.config.higher_is_worse else value < threshold

    @property
    def active(self) -> bool:
        """True while the current excursion has fired and not yet ended."""
        return self._fired

    def update(self, times: Iterable[float], values: Iterable[float]) -> list[DivergenceEvent]:
        """Feed points; returns the events fired by them."""
        fired = []
        for t, v in zip(times, values):
            t, v = float(t), float(v)
            if t < self._last_t - 1.0:  # the clock restarted (a new episode): a fresh timeline
                self._last_t, self._since, self._fired = -math.inf, None, False
            if t <= self._last_t:
                continue
            self._last_t = t
            if not self.beyond(v):
                self._since, self._fired = None, False
                continue
            if self._since is None:
                self._since = t
            if not self._fired and t - self._since >= self.config.hold_s:
                self._fired = True
                assert self.config.threshold is not None
                event = DivergenceEvent(self._since, t, v, self.config.threshold, self.config.metric)
                self.events.append(event)
                fired.append(event)
                log.warning(event.message())
                if self.on_fire is not None:
                    self.on_fire(event)
        return fired

    def state(self) -> dict[str, object]:
        return {"metric": self.config.metric, "threshold": self.config.threshold, "active": self._fired,
                "events": len(self.events), "action": self.config.action}


def calibrate_threshold(values: Iterable[float], higher_is_worse: bool, quantile: float = 0.99) -> float:
    """The threshold from known-good per-frame values: their `quantile` in the bad direction."""
    arr = np.asarray([v for v in values if math.isfinite(v)], dtype=np.float64)
    if arr.size < 10:
        raise ValueError(f"calibration: {arr.size} finite values, need at least 10 from known-good episodes")
    if not 0.5 <= quantile < 1.0:
        raise ValueError(f"calibration quantile {quantile}, expected a value in [0.5, 1)")
    return float(np.quantile(arr, quantile if higher_is_worse else 1.0 - quantile))
