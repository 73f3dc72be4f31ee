"""Graph helpers shared by the policy graph (`a2world_ros.run_policy`) and the teleop graph (`teleop/`):
reading one synchronized observation from a rig's drivers (feeding the safety guard on the way), the
command in force for the recorder, the twin behind a sim rig, and the lockstep twin as a clock.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from rig.conventions import ARM_NAMES, COMMAND_DIM
from rig.safety import SafetyGuard
from rig.schema import CameraFrame, GripperState, Observation


def read_observation(rig: Any, guard: SafetyGuard, task: str) -> Observation | None:
    """Newest frame of every camera, every arm and gripper state; None until all cameras delivered."""
    frames: dict[str, CameraFrame] = {}
    for name, cam in rig.cameras.items():
        frame = cam.latest()
        if frame is None:
            return None
        frames[name] = frame
        guard.feed(name, frame.t)
    arms = {}
    for name, arm in rig.arms.items():
        state = arm.read_state()
        guard.observe_arm_state(state)
        arms[name] = state
    grippers: dict[str, GripperState] = {}
    for name, gripper in rig.grippers.items():
        gstate = gripper.read_state()
        guard.observe_gripper(name, gstate.opening)
        grippers[name] = gstate
    t = max((f.t for f in frames.values()), default=max(s.t for s in arms.values()))
    return Observation(t=t, frames=frames, arms=arms, grippers=grippers, task=task)


def command_in_force(guard: SafetyGuard, obs: Observation) -> NDArray[np.float64]:
    """The (2, 8) command in force at `obs` (what the recorder stores): the guard's last output, else the
    measured state."""
    cmd = np.zeros((len(ARM_NAMES), COMMAND_DIM))
    for i, arm in enumerate(ARM_NAMES):
        cmd[i, :7] = obs.arms[arm].tcp_pose
        cmd[i, 7] = obs.grippers[arm].opening if arm in obs.grippers else 1.0
        last = guard.last_command(arm)
        if last is not None:
            cmd[i] = last
    return cmd


def twin_of(rig: Any) -> Any:
    """The shared `Twin` behind a sim rig's arms, or None for the real rig."""
    for arm in rig.arms.values():
        twin = getattr(arm, "twin", None)
        if twin is not None:
            return twin
    return None


class TwinClock:
    """The lockstep twin as a `rig.timing.Clock`: now() is simulated time; sleeping steps the physics."""

    def __init__(self, twin: Any) -> None:
        self.twin = twin

    def now(self) -> float:
        return float(self.twin.now())

    def sleep_until(self, t: float) -> None:
        remaining = t - self.now()
        if remaining > 0:
            self.twin.step(remaining)
