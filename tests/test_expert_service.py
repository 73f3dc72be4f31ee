"""`ExpertTimeline` (a2world_ros/runtime/expert_service.py): the scripted expert's timeline under the ROS
policy loop: planned ahead, anchored by the first request, restarted after a pause."""

from __future__ import annotations

import time

import numpy as np
import pytest

from a2world_ros.runtime.expert_service import ExpertTimeline
from policy.interface import PolicyRequest, PolicyResult


class RecordingExpert:
    """Stands in for `ExpertPolicy`: records resets, anchors and the observation times it serves."""

    dt = 1.0 / 30.0

    def __init__(self) -> None:
        self.calls: list[tuple[str, float]] = []

    def metadata(self) -> dict:
        return {"name": "recording", "dt": self.dt}

    def reset(self, seed: int, t0: float) -> None:
        self.calls.append(("reset", t0))

    def anchor(self, t0: float) -> None:
        self.calls.append(("anchor", t0))

    def infer(self, request: PolicyRequest) -> PolicyResult:
        self.calls.append(("infer", request.t_obs))
        return PolicyResult(chunk=np.zeros((4, 2, 8)), dt=self.dt)


def _request(t: float) -> PolicyRequest:
    return PolicyRequest(images={}, state=np.zeros((2, 8)), instruction="", t_obs=t)


def test_prepared_episode_is_anchored_by_the_first_request_then_runs_on():
    expert = RecordingExpert()
    timeline = ExpertTimeline(expert, restart_gap_s=2.0, seed=3)
    timeline.prepare(_request(0.0))
    assert expert.calls == [("reset", 0.0), ("infer", 0.0)] and timeline.episodes == 1
    timeline.infer(_request(100.0))
    timeline.infer(_request(100.5))
    assert expert.calls[2:] == [("anchor", 100.0), ("infer", 100.0), ("infer", 100.5)]
    assert timeline.episodes == 1


def test_a_pause_longer_than_the_gap_starts_a_new_episode(monkeypatch):
    expert = RecordingExpert()
    timeline = ExpertTimeline(expert, restart_gap_s=2.0)
    now = [50.0]
    monkeypatch.setattr(time, "monotonic", lambda: now[0])
    timeline.infer(_request(10.0))  # nothing prepared: the first request starts an episode
    now[0] += 1.0
    timeline.infer(_request(11.0))  # within the gap: same episode
    now[0] += 5.0
    timeline.infer(_request(16.0))  # after a pause: a new one from the twin's current state
    resets = [c for c in expert.calls if c[0] == "reset"]
    assert resets == [("reset", 10.0), ("reset", 16.0)] and timeline.episodes == 2


def test_gap_must_be_positive():
    with pytest.raises(ValueError, match="restart_gap_s"):
        ExpertTimeline(RecordingExpert(), restart_gap_s=0.0)
