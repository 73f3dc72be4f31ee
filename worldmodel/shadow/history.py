"""A2World-sim in the shadow predictor: every chunk starts from the real observation, and the history the
network attends to is the REAL past: the real frames at 10 fps that scored the previous chunks, with the
executed model actions between them (not the model's own earlier predictions, which a shadow must not
compound). Chunks overlap in time (a policy re-plans about every second), so only frames newer than the
buffer's last node are appended; a gap (dropped chunks) restarts the buffer from the frame before it.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

import numpy as np
from numpy.typing import NDArray

from worldmodel.rollout import HistoryBuffer, RolloutSession, history_config


def is_history_model(predictor: Any) -> bool:
    net = getattr(predictor, "net", None)
    return getattr(getattr(net, "config", None), "variant", "a2world") == "a2world_sim"


class HistoryShadowPredictor:
    """Wraps a sim `WorldModelPredictor` with a buffer of real frames (see the module doc)."""

    def __init__(self, predictor: Any, history: str = "arc_dual", keep: int = 300) -> None:
        self.predictor = predictor
        self.resolution = predictor.resolution
        self.fps = predictor.fps
        self.history = history_config(history)
        self.keep = int(keep)
        self.buffer: HistoryBuffer | None = None
        self.last_t = -np.inf

    def predict(self, images: Mapping[str, NDArray[np.uint8]], actions: NDArray[np.float64], *,
                steps: int | None = None, seed: int = 0, include_condition: bool = True) -> dict[str, Any]:
        session = RolloutSession(self.predictor, images, history=self.history, seed=seed, steps=steps)
        if self.buffer is not None and set(self.buffer.frames) == set(session.buffer.frames):
            # a copy: the session appends its own predictions, which must not enter the real history
            view = copy.copy(self.buffer)
            view.frames = {c: list(f) for c, f in self.buffer.frames.items()}
            session.buffer = view
        return dict(session.step(actions, include_condition=include_condition).frames)

    def observe(self, times: NDArray[np.float64], real: Mapping[str, NDArray[np.uint8]],
                actions: NDArray[np.float64]) -> None:
        """Real frames (n, h, w, 3) per view at `times` (frame 0 = the observation) and the actions (>= n-1, 14)
        that moved between them."""
        n = min(len(v) for v in real.values())
        new = [k for k in range(1, n) if times[k] > self.last_t + 1e-6]
        if not new:
            return
        first = new[0]
        if self.buffer is None or abs(times[first - 1] - self.last_t) > 1e-3:  # start, or a gap in coverage
            self.buffer = HistoryBuffer({c: v[first - 1] for c, v in real.items()}, self.history.budget)
        self.buffer.append({c: v[first:n] for c, v in real.items()}, np.asarray(actions[first - 1:n - 1]))
        self.last_t = float(times[n - 1])
        extra = len(self.buffer) - self.keep
        if extra > 0:  # bounded memory on long runs: forget the oldest nodes
            b = self.buffer
            b.frames = {c: f[extra:] for c, f in b.frames.items()}
            b.actions, b.poses = b.actions[extra:], b.poses[extra:]
