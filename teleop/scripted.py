"""The reference sender's script: a task's scripted expert on a private twin, expressed as controller motion.

`plan_episode(task, seed)` runs the expert on its own lockstep twin (no rendering) from the same seed the
teleop twin uses, and keeps its 30 Hz base-frame targets. `controller_stream` turns them into protocol
messages as an operator would produce them: idle frames (so the receiver learns the clock offset),
press the start button, squeeze both grips (the clutch stores the home poses), move each controller so
the retargeted target follows the expert (`VRToBase.controller`, the exact inverse of the retargeting),
trigger = 1 - gripper opening, hold, release the grips, optionally mark the outcome, press stop.
Messages go out at `rate_hz` (headsets stream 72-90 Hz), interpolating between the expert's steps.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from rig.conventions import ARM_NAMES, POLICY_HZ
from rig.executor import blend_targets
from teleop.protocol import ControllerState, encode_frame
from teleop.retarget import RetargetConfig, VRToBase

HEADSET_POSE = np.array([0.0, 1.6, 0.0, 0.0, 0.0, 0.0, 1.0])
"""Standing operator, looking along the VR frame's -z (heading 0)."""
CONTROLLER_HOME = {"left": np.array([-0.2, 1.1, -0.35, 0.0, 0.0, 0.0, 1.0]),
                   "right": np.array([0.2, 1.1, -0.35, 0.0, 0.0, 0.0, 1.0])}
"""Where the operator's hands are when the clutch engages."""


@dataclass(frozen=True)
class EpisodePlan:
    """The expert's targets: (N, 2, 8) at 30 Hz in each arm's base frame, the home poses, the outcome."""

    task: str
    seed: int
    targets: NDArray[np.float64]
    home: NDArray[np.float64]
    expert_success: bool


def plan_episode(task_name: str, seed: int, max_seconds: float | None = None) -> EpisodePlan:
    """Run `task_name`'s scripted expert on a private lockstep twin reset with `seed`."""
    from rig.sim.experts import get_expert
    from rig.sim.experts.runner import episode_limit, run_episode
    from rig.sim.tasks import get_task
    from rig.sim.twin import Twin

    task = get_task(task_name)
    twin = Twin(task=task, clock="lockstep", render_size=(16, 16))
    try:
        twin.reset_state(seed)
        home = np.stack([np.concatenate([twin.tcp_pose_base(a), [1.0]]) for a in ARM_NAMES])
        steps: list[NDArray[np.float64]] = []
        result = run_episode(twin, get_expert(task), seed, max_seconds or episode_limit(task),
                             on_step=lambda _obs, cmd: steps.append(np.array(cmd, dtype=np.float64)))
    finally:
        twin.close()
    return EpisodePlan(task_name, seed, np.stack(steps), home, bool(result.success))


def _frame(seq: int, t: float, poses: Mapping[str, NDArray[np.float64]], grips: Mapping[str, float],
           triggers: Mapping[str, float], buttons: Mapping[str, dict[str, bool]]) -> bytes:
    ctrls = {arm: ControllerState(poses[arm], triggers[arm], grips[arm], buttons.get(arm, {})) for arm in ARM_NAMES}
    return encode_frame(seq, t, HEADSET_POSE, ctrls)


def controller_stream(plan: EpisodePlan, mappings: Mapping[str, VRToBase], rate_hz: float = 60.0,
                      mark: str | None = None, idle_s: float = 0.5, hold_s: float = 0.5,
                      start_seq: int = 0) -> Iterator[tuple[float, bytes]]:
    """(time since the stream's start, message bytes) of one scripted episode; see the module doc."""
    if mark not in (None, "success", "failure"):
        raise ValueError(f"mark {mark!r}: expected None, 'success' or 'failure'")
    dt = 1.0 / rate_hz
    seq = start_seq
    t = 0.0
    home = {arm: CONTROLLER_HOME[arm] for arm in ARM_NAMES}
    released = dict.fromkeys(ARM_NAMES, 0.0)
    open_trigger = dict.fromkeys(ARM_NAMES, 0.0)

    def emit(poses: Mapping[str, NDArray[np.float64]], grips: Mapping[str, float], triggers: Mapping[str, float],
             buttons: Mapping[str, dict[str, bool]] | None = None,
             seconds: float = dt) -> Iterator[tuple[float, bytes]]:
        nonlocal seq, t
        for _ in range(max(1, round(seconds / dt))):
            yield t, _frame(seq, t, poses, grips, triggers, buttons or {})
            seq += 1
            t += dt

    yield from emit(home, released, open_trigger, seconds=idle_s)
    yield from emit(home, released, open_trigger, {"right": {"a": True}}, seconds=0.1)  # start
    yield from emit(home, released, open_trigger, seconds=0.1)
    held = dict.fromkeys(ARM_NAMES, 1.0)
    yield from emit(home, held, open_trigger, seconds=0.2)  # squeeze: the clutches engage here
    targets = plan.targets
    duration = (len(targets) - 1) / POLICY_HZ
    poses: dict[str, NDArray[np.float64]] = dict(home)
    triggers: dict[str, float] = dict(open_trigger)
    for k in range(int(np.floor(duration * rate_hz)) + 1):
        x = k * dt * POLICY_HZ
        lo = min(int(np.floor(x)), len(targets) - 1)
        hi = min(lo + 1, len(targets) - 1)
        for i, arm in enumerate(ARM_NAMES):
            target = blend_targets(targets[lo, i].copy(), targets[hi, i], x - lo)
            poses[arm] = mappings[arm].controller(target[:7], home[arm], plan.home[i, :7])
            triggers[arm] = float(np.clip(1.0 - target[7], 0.0, 1.0))
        yield from emit(poses, held, triggers)
    yield from emit(poses, held, triggers, seconds=hold_s)
    yield from emit(poses, released, triggers, seconds=0.2)  # release: the arms freeze
    if mark is not None:
        button = {"success": {"right": {"b": True}}, "failure": {"left": {"y": True}}}[mark]
        yield from emit(poses, released, triggers, button, seconds=0.1)
        yield from emit(poses, released, triggers, seconds=0.1)
    yield from emit(poses, released, triggers, {"right": {"a": True}}, seconds=0.1)  # stop
    yield from emit(poses, released, triggers, seconds=0.3)


def default_mappings(retarget: RetargetConfig) -> dict[str, VRToBase]:
    """The retargeting of config/calibration.yaml's base orientations at heading 0 (the sender's headset)."""
    from calibration.transforms import load_calibration

    calib = load_calibration()
    return {arm: VRToBase(calib.T_world_base(arm)[:3, :3], retarget) for arm in ARM_NAMES}
