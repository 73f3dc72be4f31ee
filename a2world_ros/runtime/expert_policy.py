"""A `Policy` backed by a task's scripted expert on the twin (`--policy expert` on `--rig sim`).

The expert reads privileged simulator state, so this policy only exists on the twin. It is the
reference against which a trained policy is compared, and it exercises the whole graph (loop, executor,
guard, recorder, server) without a trained model. Its timeline: expert step i is due at
`episode_t0 + i * dt`; a request for observation time t with a K-step committed prefix returns the steps
from index round((t - episode_t0) / dt) + K on, generated on demand and cached, so overlapping chunks
agree exactly (and the executor splices them).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from policy.interface import PolicyRequest, PolicyResult
from rig.conventions import POLICY_CHUNK_STEPS, POLICY_HZ


class ExpertPolicy:
    """Scripted-expert chunks for the twin's current task; call `reset(seed, t0)` at each episode start."""

    def __init__(self, twin: Any, steps: int = POLICY_CHUNK_STEPS) -> None:
        if twin.task is None:
            raise ValueError("ExpertPolicy: the twin has no task (build it with a task name)")
        self.twin = twin
        self.steps = int(steps)
        self.dt = 1.0 / POLICY_HZ
        self._expert: Any = None
        self._commands: list[NDArray[np.float64]] = []
        self._t0 = 0.0

    def reset(self, seed: int, t0: float) -> None:
        """Start the expert from the twin's current state; step 0 is due at `t0` (twin clock)."""
        from rig.sim.experts import get_expert

        with self.twin.lock:
            self._expert = get_expert(self.twin.task)
            self._expert.reset(self.twin, np.random.default_rng([seed, 0xE1]))
        self._commands = []
        self._t0 = float(t0)

    def anchor(self, t0: float) -> None:
        """Move step 0 of the current episode to `t0` (the commands generated so far are kept)."""
        self._t0 = float(t0)

    @property
    def done(self) -> bool:
        return self._expert is not None and self._expert.done

    def metadata(self) -> dict[str, Any]:
        return {"name": "scripted_expert", "task": self.twin.task.name, "steps": self.steps, "dt": self.dt,
                "action_layout": "(T, 2, 8)", "max_prefix": self.steps - 1}

    def infer(self, request: PolicyRequest) -> PolicyResult:
        if self._expert is None:
            raise RuntimeError("ExpertPolicy.infer before reset(seed, t0)")
        start = max(0, round((request.t_obs - self._t0) / self.dt)) + int(request.prefix.shape[0])
        while len(self._commands) < start + self.steps:
            with self.twin.lock:  # per step: a realtime twin keeps stepping between them
                self._commands.append(self._expert.act(self.twin))
        chunk = np.stack(self._commands[start:start + self.steps])
        return PolicyResult(chunk=chunk, dt=self.dt, timing={"model_ms": 0.0})
