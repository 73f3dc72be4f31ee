"""Assembles synchronized `Observation`s from independently arriving samples (the no-ROS equivalent of
message_filters' approximate time policy, specialised to our rig).

Every camera frame, arm state and gripper state is added with its capture time. An observation is
emitted when every camera has a frame within `slop_s` of the reference time (the newest frame's time)
and every arm has a state within `state_slop_s` and a gripper state within `gripper_slop_s` of it
(grippers report more slowly); the check runs on every added sample, because states may arrive
after the frames they belong with. Each reference time is emitted once. Samples older than `history_s` are forgotten.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterable
from typing import Generic, TypeVar

from rig.schema import ArmState, CameraFrame, GripperState, Observation

S = TypeVar("S", CameraFrame, ArmState, GripperState)


class _History(Generic[S]):
    def __init__(self, maxlen: int) -> None:
        self.items: deque[S] = deque(maxlen=maxlen)

    def add(self, sample: S) -> None:
        if self.items and sample.t < self.items[-1].t:
            return  # out of order: keep the history sorted
        self.items.append(sample)

    def nearest(self, t: float, slop: float) -> S | None:
        best = min(self.items, key=lambda s: abs(s.t - t), default=None)
        return best if best is not None and abs(best.t - t) <= slop else None


class ObservationSync:
    """Pairs camera frames with arm and gripper states by capture time; see the module doc."""

    def __init__(
        self,
        cameras: Iterable[str],
        arms: Iterable[str],
        slop_s: float = 0.02,
        state_slop_s: float = 0.02,
        gripper_slop_s: float = 0.1,
        history: int = 200,
        task: str = "",
    ) -> None:
        self.cameras = tuple(cameras)
        self.arm_names = tuple(arms)
        self.slop_s = slop_s
        self.state_slop_s = state_slop_s
        self.gripper_slop_s = gripper_slop_s
        self.task = task
        self._frames = {c: _History[CameraFrame](max(4, history // 10)) for c in self.cameras}
        self._arms = {a: _History[ArmState](history) for a in self.arm_names}
        self._grippers = {a: _History[GripperState](history) for a in self.arm_names}
        self._last_emitted = float("-inf")
        self._lock = threading.Lock()
        self.emitted = 0
        self.incomplete = 0

    def add_frame(self, frame: CameraFrame) -> Observation | None:
        """Add a frame; returns an observation when this frame completes a new synchronized set."""
        with self._lock:
            if frame.camera not in self._frames:
                return None
            self._frames[frame.camera].add(frame)
            return self._try(frame.t)

    def add_arm_state(self, state: ArmState) -> Observation | None:
        """Add an arm state; it may complete the newest frame set (states can arrive after frames)."""
        with self._lock:
            if state.arm not in self._arms:
                return None
            self._arms[state.arm].add(state)
            return self._try(state.t) if self._has_frames() else None

    def add_gripper_state(self, state: GripperState) -> Observation | None:
        with self._lock:
            if state.arm not in self._grippers:
                return None
            self._grippers[state.arm].add(state)
            return self._try(state.t) if self._has_frames() else None

    def _has_frames(self) -> bool:
        return all(h.items for h in self._frames.values())

    def _try(self, t_new: float) -> Observation | None:
        ref = max((h.items[-1].t for h in self._frames.values() if h.items), default=t_new)
        if ref <= self._last_emitted:
            return None
        if t_new < ref - max(self.state_slop_s, self.gripper_slop_s, self.slop_s):
            return None  # an old sample cannot complete the newest set
        frames = {c: h.nearest(ref, self.slop_s) for c, h in self._frames.items()}
        arms = {a: h.nearest(ref, self.state_slop_s) for a, h in self._arms.items()}
        grippers = {a: h.nearest(ref, self.gripper_slop_s) for a, h in self._grippers.items()}
        if any(v is None for v in (*frames.values(), *arms.values(), *grippers.values())):
            self.incomplete += 1
            return None
        self._last_emitted = ref
        self.emitted += 1
        return Observation(t=ref, frames=frames, arms=arms, grippers=grippers, task=self.task)  # type: ignore[arg-type]
