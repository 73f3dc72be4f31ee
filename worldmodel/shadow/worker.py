"""The shadow worker: newest work only, predictions waiting for their real frames, throughput status.

It never queues work: a chunk that arrives while the model is busy replaces the one waiting (the
replaced one is counted in `dropped`), so a slow model skips chunks instead of falling behind. At most
`max_pending` predictions wait for their real frames; beyond that the oldest is dropped
(`dropped_unscored`). Frames go straight into the time-indexed buffer. Prediction and scoring run on the
worker's own thread, so `submit` and `add_frame` return at once.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.typing import NDArray

from rig.timing import RateMeter
from worldmodel.shadow.divergence import DivergenceDetector, DivergenceEvent
from worldmodel.shadow.engine import Prediction, ShadowEngine, ShadowResult
from worldmodel.shadow.frames import RealFrameBuffer
from worldmodel.shadow.work import ShadowWork

log = logging.getLogger(__name__)


class ShadowWorker:
    """See the module doc. `on_result(result)` runs on the worker thread after each scored prediction."""

    def __init__(self, engine: ShadowEngine, on_result: Callable[[ShadowResult], None] | None = None,
                 on_divergence: Callable[[DivergenceEvent], None] | None = None, keep_results: int = 64) -> None:
        self.engine = engine
        self.config = engine.config
        self.buffer = RealFrameBuffer(self.config.frame_buffer_s)
        self.detector = DivergenceDetector(self.config.divergence, on_divergence)
        self.on_result = on_result
        self.results: deque[ShadowResult] = deque(maxlen=keep_results)
        self._slot: tuple[ShadowWork, float] | None = None
        self._pending: deque[Prediction] = deque()
        self._cond = threading.Condition()
        self._stop = False
        self._busy = False
        self._thread: threading.Thread | None = None
        self._rate = RateMeter(window_s=10.0)
        self.counters = {"submitted": 0, "predicted": 0, "scored": 0, "dropped": 0, "dropped_unscored": 0,
                         "failed": 0, "frames": 0}
        self.last_lag_s = float("nan")
        self.last_predict_s = float("nan")
        self.last_error = ""

    # ------------------------------------------------------------------ inputs (any thread, never block)
    def submit(self, work: ShadowWork) -> None:
        with self._cond:
            self.counters["submitted"] += 1
            if self._slot is not None:
                self.counters["dropped"] += 1
            self._slot = (work, time.monotonic())
            self._cond.notify()

    def add_frame(self, camera: str, t: float, image: NDArray[np.uint8]) -> None:
        self.buffer.add(camera, t, image)
        with self._cond:
            self.counters["frames"] += 1
            if self._pending:
                self._cond.notify()

    # ------------------------------------------------------------------ thread
    def start(self) -> ShadowWorker:
        self._thread = threading.Thread(target=self._run, daemon=True, name="shadow-worker")
        self._thread.start()
        return self

    def stop(self, timeout_s: float = 10.0) -> None:
        with self._cond:
            self._stop = True
            self._cond.notify()
        if self._thread is not None:
            self._thread.join(timeout_s)

    def _next_job(self) -> tuple[str, Any] | None:
        """Under the lock: a pending prediction ready to score, else the work in the slot, else None."""
        for pred in list(self._pending):
            if self.engine.ready(pred, self.buffer) or self.engine.expired(pred, self.buffer):
                self._pending.remove(pred)
                return "score", pred
        if self._slot is not None:
            job, self._slot = self._slot, None
            return "predict", job
        return None

    def _run(self) -> None:
        while True:
            with self._cond:
                job = self._next_job()
                while job is None and not self._stop:
                    self._cond.wait(0.05)
                    job = self._next_job()
                if self._stop:
                    return
                self._busy = True
            try:
                self._do(*job)
            except Exception as exc:  # a model or input failure must not end the shadow
                self.counters["failed"] += 1
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.error("shadow: %s failed: %s", job[0], self.last_error)
            finally:
                self._busy = False

    def _do(self, kind: str, job: Any) -> None:
        if kind == "predict":
            work, submitted = job
            pred = self.engine.predict(work)
            pred.submitted_wall, pred.done_wall = submitted, time.monotonic()
            self.last_lag_s = pred.done_wall - submitted
            self.last_predict_s = pred.predict_s
            self._rate.tick(pred.done_wall)
            with self._cond:
                self.counters["predicted"] += 1
                self._pending.append(pred)
                while len(self._pending) > self.config.max_pending:
                    self._pending.popleft()
                    self.counters["dropped_unscored"] += 1
            return
        pred = job
        result = self.engine.score(pred, self.buffer)
        result.lag_s = pred.done_wall - pred.submitted_wall
        times, values = result.series_mean(self.config.divergence.metric)
        fired = self.detector.update(times, values)
        result.divergence = {**self.detector.state(), "fired": [e.message() for e in fired]}
        with self._cond:
            self.results.append(result)
            self.counters["scored"] += 1
        if self.on_result is not None:
            self.on_result(result)

    def results_after(self, seq: int) -> list[ShadowResult]:
        """The kept results with a sequence number above `seq` (safe from any thread)."""
        with self._cond:
            return [r for r in self.results if r.seq > seq]

    # ------------------------------------------------------------------ status
    def status(self) -> dict[str, Any]:
        """Throughput and health: predictions/s (10 s window), counters, lag, divergence state."""
        now = time.monotonic()
        with self._cond:
            pending, waiting = len(self._pending), self._slot is not None
        return {"predictions_per_s": self._rate.rate(now), **self.counters, "pending": pending,
                "waiting": waiting, "busy": self._busy, "lag_s": self.last_lag_s,
                "predict_s": self.last_predict_s, "out_of_order_frames": self.buffer.out_of_order,
                "divergence": self.detector.state(), "last_error": self.last_error}

    def wait_idle(self, timeout_s: float) -> bool:
        """Wait until nothing is waiting, predicting or ready to score (tests, offline replay)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with self._cond:
                idle = self._slot is None and not self._busy and not any(
                    self.engine.ready(p, self.buffer) for p in self._pending)
            if idle:
                return True
            time.sleep(0.01)
        return False
