"""The twin's scripted expert as a policy server (`policy:=expert` on `rig:=sim`, docs/ros.md).

The expert reads privileged simulator state, so it runs where the twin is: inside the sim node, served
with the ordinary `PolicyServer` on a local endpoint. The policy node connects to it as to any policy
server, so the graph under test is the real one: policy node, `PolicyLoop` (real-time chunking),
chunk messages, executor and guard in the sim node.

`ExpertTimeline` restarts the expert's timeline (`ExpertPolicy.reset`) on the first request, and on
any request that comes more than `restart_gap_s` after the previous one (the policy was stopped and
started again: the expert starts over from the twin's current state instead of skipping ahead).
"""

from __future__ import annotations

import threading
from typing import Any

from a2world_ros.runtime.expert_policy import ExpertPolicy
from policy.interface import PolicyRequest, PolicyResult
from policy.server import PolicyServer, ServerConfig


class ExpertTimeline:
    """A `Policy` over `ExpertPolicy` that starts a new expert episode after a pause in requests."""

    def __init__(self, expert: ExpertPolicy, restart_gap_s: float = 2.0, seed: int = 0) -> None:
        if not restart_gap_s > 0:
            raise ValueError(f"ExpertTimeline.restart_gap_s: {restart_gap_s}, expected > 0")
        self.expert = expert
        self.restart_gap_s = float(restart_gap_s)
        self.seed = int(seed)
        self.episodes = 0
        self._last_t: float | None = None
        self._lock = threading.Lock()

    def metadata(self) -> dict[str, Any]:
        return self.expert.metadata()

    def infer(self, request: PolicyRequest) -> PolicyResult:
        with self._lock:
            last = self._last_t
            if last is None or abs(request.t_obs - last) > self.restart_gap_s:
                self.expert.reset(self.seed + self.episodes, t0=request.t_obs)
                self.episodes += 1
            self._last_t = request.t_obs
            return self.expert.infer(request)


class ExpertService:
    """`PolicyServer` of the twin's expert on `address` (loopback or ipc), serving on its own thread."""

    def __init__(self, twin: Any, address: str, restart_gap_s: float = 2.0, seed: int = 0) -> None:
        self.timeline = ExpertTimeline(ExpertPolicy(twin), restart_gap_s, seed)
        self.server = PolicyServer(self.timeline, ServerConfig(address=address))
        self._thread = self.server.start_background()

    @property
    def address(self) -> str:
        return self.server.address

    def close(self) -> None:
        """Stop serving and release the sockets (idempotent)."""
        self.server.stop()
        self._thread.join(timeout=5.0)
