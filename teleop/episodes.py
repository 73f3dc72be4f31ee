"""`EpisodeControl`: the operator's episode actions on top of the one `EpisodeRecorder`.

Actions (from controller buttons, the page, the command line and ROS services, all as strings):
`start` opens an episode with the current instruction; `success` / `failure` mark the open episode
(the last mark wins); `stop` saves it with its mark; `start_stop` is `start` when idle and `stop` while
recording; `discard` drops it; `instruction:<text>` sets the instruction of the next episodes. A stop
without a mark takes the outcome from `judge` (the twin's task success) when there is one, else it is
saved as a failure with `outcome: unmarked`. Every saved
episode carries the operator, the input, the mark and the teleop counters in its `extra` metadata.

Only the recording thread calls `apply` and `add`; other threads queue actions (`TeleopSession`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from rig.schema import Observation
from teleop.recorder import EpisodeRecorder, RecorderError

log = logging.getLogger(__name__)


@dataclass
class EpisodeLog:
    """What happened to the episodes of this session."""

    saved: list[dict[str, Any]] = field(default_factory=list)
    discarded: int = 0
    refused: list[str] = field(default_factory=list)


class EpisodeControl:
    """See the module doc. `on_end(saved)` runs after each stop or discard (e.g. reset the twin)."""

    def __init__(self, recorder: EpisodeRecorder | None, instruction: str, operator: str = "",
                 judge: Callable[[], bool] | None = None, extra: dict[str, Any] | None = None,
                 on_end: Callable[[bool], None] | None = None) -> None:
        self.recorder = recorder
        self.instruction = instruction
        self.operator = operator
        self.judge = judge
        self.extra = dict(extra or {})
        self.on_end = on_end
        self.log = EpisodeLog()
        self.mark: bool | None = None
        self.index: int | None = None
        self.frames = 0
        self.dropped = 0

    @property
    def recording(self) -> bool:
        return self.index is not None

    def set_instruction(self, instruction: str) -> None:
        """Instruction of the next episode (the open one keeps its own)."""
        if not instruction.strip():
            raise ValueError("instruction: empty, expected a task description")
        self.instruction = instruction

    def apply(self, action: str, stats: dict[str, Any] | None = None) -> str:
        """Carry out one action; returns what was done (for the operator's log)."""
        if action.startswith("instruction:"):
            try:
                self.set_instruction(action.split(":", 1)[1])
            except ValueError as exc:
                return self._refuse(str(exc))
            return f"instruction of the next episodes: {self.instruction!r}"
        if action == "start_stop":
            action = "stop" if self.recording else "start"
        if action == "start":
            if self.recording:
                return self._refuse("start: an episode is already recording")
            if self.recorder is None:
                return self._refuse("start: no recorder (run with --out DIR)")
            self.index = self.recorder.start_episode(self.instruction)
            self.mark, self.frames, self.dropped = None, 0, 0
            return f"episode {self.index} started: {self.instruction!r}"
        if action in ("success", "failure"):
            if not self.recording:
                return self._refuse(f"{action}: no episode is recording")
            self.mark = action == "success"
            return f"episode {self.index} marked {action}"
        if action == "stop":
            if not self.recording or self.recorder is None:
                return self._refuse("stop: no episode is recording")
            return self._stop(stats or {})
        if action == "discard":
            if not self.recording or self.recorder is None:
                return self._refuse("discard: no episode is recording")
            index, self.index = self.index, None
            self.recorder.discard_episode("discarded by the operator")
            self.log.discarded += 1
            if self.on_end is not None:
                self.on_end(False)
            return f"episode {index} discarded"
        return self._refuse(f"{action}: unknown episode action")

    def add(self, obs: Observation, command: NDArray[np.float64]) -> None:
        """Record one observation with the command in force, while an episode is open."""
        if self.recorder is not None and self.recording and all(c in obs.frames for c in self.recorder.cameras):
            if self.recorder.add(obs, command):
                self.frames += 1
            else:
                self.dropped += 1

    def close(self) -> None:
        if self.recording and self.recorder is not None:
            self.recorder.discard_episode("teleop ended while recording")
            self.index = None

    def _stop(self, stats: dict[str, Any]) -> str:
        assert self.recorder is not None
        index, self.index = self.index, None
        if self.mark is not None:
            success, outcome = self.mark, "operator"
        elif self.judge is not None:
            success, outcome = bool(self.judge()), "sim_task"
        else:
            success, outcome = False, "unmarked"
        extra = {**self.extra, "source": "teleop", "operator": self.operator, "outcome": outcome,
                 "teleop": stats}
        try:
            self.recorder.end_episode(success, extra)
        except RecorderError as exc:
            return self._refuse(f"stop: {exc}")
        self.log.saved.append({"episode": index, "success": success, "outcome": outcome, "frames": self.frames,
                               "dropped": self.dropped})
        if self.on_end is not None:
            self.on_end(True)
        return (f"episode {index} saved: {'success' if success else 'failure'} ({outcome}), {self.frames} frames"
                + (f", {self.dropped} dropped (writer behind)" if self.dropped else ""))

    def _refuse(self, text: str) -> str:
        self.log.refused.append(text)
        log.warning("teleop: %s", text)
        return f"refused: {text}"
