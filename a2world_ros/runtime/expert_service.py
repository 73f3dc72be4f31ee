"""The twin's scripted expert as a policy server (`policy:=expert` on `rig:=sim`, docs/ros.md).

The expert reads privileged simulator state, so it runs where the twin is: inside the sim node, served
with the ordinary `PolicyServer` on a local endpoint. The policy node connects to it as to any policy
server, so the graph under test is the real one: policy node, `PolicyLoop` (real-time chunking),
chunk messages, executor and guard in the sim node.

`ExpertTimeline` keeps the expert's timeline in step with the policy loop. Its first motion plan
(choosing an arm, checking reach: seconds of CPU on a loaded 2-core box) is made when the service
starts (`prepare`), before anyone calls /policy/start, and the first request then only anchors step 0
at its observation time. A request that comes more than `restart_gap_s` after the previous one was
answered (the policy was stopped and started again) starts a new expert episode from the twin's
current state instead of skipping ahead.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import numpy as np

from a2world_ros.runtime.expert_policy import ExpertPolicy
from policy.interface import PolicyRequest, PolicyResult
from policy.server import PolicyServer, ServerConfig
from rig.conventions import ARM_NAMES, COMMAND_DIM


class ExpertTimeline:
    """A `Policy` over `ExpertPolicy`: planned ahead, anchored by the first request, restarted after
    a pause in requests (see the module doc)."""

    def __init__(self, expert: ExpertPolicy, restart_gap_s: float = 2.0, seed: int = 0) -> None:
        if not restart_gap_s > 0:
            raise ValueError(f"ExpertTimeline.restart_gap_s: {restart_gap_s}, expected > 0")
        self.expert = expert
        self.restart_gap_s = float(restart_gap_s)
        self.seed = int(seed)
        self.episodes = 0
        self._prepared = False
        self._last_done: float | None = None  # host monotonic time the previous answer was ready
        self._lock = threading.Lock()

    def metadata(self) -> dict[str, Any]:
        return self.expert.metadata()

    def _new_episode(self, t0: float) -> None:
        self.expert.reset(self.seed + self.episodes, t0=t0)
        self.episodes += 1

    def prepare(self, request: PolicyRequest) -> None:
        """Start an episode and generate its first chunk now (from `request`, any t_obs)."""
        with self._lock:
            self._new_episode(request.t_obs)
            self.expert.infer(request)
            self._prepared = True

    def infer(self, request: PolicyRequest) -> PolicyResult:
        with self._lock:
            if self._prepared:
                self.expert.anchor(request.t_obs)
                self._prepared = False
            elif self._last_done is None or time.monotonic() - self._last_done > self.restart_gap_s:
                self._new_episode(request.t_obs)
            result = self.expert.infer(request)
            self._last_done = time.monotonic()
            return result


class ExpertService:
    """`PolicyServer` of the twin's expert on `address` (loopback or ipc), serving on its own thread."""

    def __init__(self, twin: Any, address: str, restart_gap_s: float = 2.0, seed: int = 0) -> None:
        self.timeline = ExpertTimeline(ExpertPolicy(twin), restart_gap_s, seed)
        self.server = PolicyServer(self.timeline, ServerConfig(address=address))
        self._thread = self.server.start_background()
        # The first plan in the background: the node comes up at once; an early request waits for it.
        warmup = PolicyRequest(images={}, state=np.zeros((len(ARM_NAMES), COMMAND_DIM)), instruction="",
                               t_obs=0.0)
        self._prepare = threading.Thread(target=self.timeline.prepare, args=(warmup,), name="expert-plan",
                                         daemon=True)
        self._prepare.start()

    @property
    def address(self) -> str:
        return self.server.address

    def close(self) -> None:
        """Stop serving and release the sockets (idempotent)."""
        self.server.stop()
        self._thread.join(timeout=5.0)
        self._prepare.join(timeout=5.0)
