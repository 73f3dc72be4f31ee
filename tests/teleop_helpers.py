"""Shared builders of the teleop tests: protocol frames and a session on recording arms (no twin)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from calibration.transforms import load_calibration
from rig.conventions import ARM_NAMES
from rig.executor import ChunkExecutor
from rig.safety import SafetyGuard
from rig.timing import LockstepClock
from teleop.config import TeleopConfig, load_teleop_config
from teleop.protocol import ControllerState, encode_frame
from teleop.scripted import CONTROLLER_HOME, HEADSET_POSE
from teleop.session import TeleopSession
from tests.doubles.rig_devices import HOME, RecordingArm, RecordingGripper


def frame(seq: int, t: float, poses: dict | None = None, grip: dict | None = None, trigger: dict | None = None,
          buttons: dict | None = None, headset: np.ndarray | None = None) -> bytes:
    poses = {**CONTROLLER_HOME, **(poses or {})}
    ctrls = {arm: ControllerState(np.asarray(poses[arm], float), (trigger or {}).get(arm, 0.0),
                                  (grip or {}).get(arm, 0.0), (buttons or {}).get(arm, {})) for arm in ARM_NAMES}
    return encode_frame(seq, t, HEADSET_POSE if headset is None else headset, ctrls)


def moved(arm: str, dx: float = 0.0, dy: float = 0.0, dz: float = 0.0) -> np.ndarray:
    pose = CONTROLLER_HOME[arm].copy()
    pose[:3] += (dx, dy, dz)
    return pose


def make_session(config: TeleopConfig | None = None, clock=None):
    """A session over recording arms at HOME (default: lockstep clock): (session, executor, arms, clock)."""
    config = config or load_teleop_config()
    clock = clock if clock is not None else LockstepClock(0.0)
    arms = {n: RecordingArm(n, clock=clock) for n in ARM_NAMES}
    grippers = {n: RecordingGripper(n) for n in ARM_NAMES}
    guard = SafetyGuard(replace(config.guard, watch=()), arms, grippers)
    for n in ARM_NAMES:
        guard.observe_gripper(n, 1.0)
    executor = ChunkExecutor(config.executor, guard)
    calib = load_calibration()
    session = TeleopSession(config, executor, {a: calib.T_world_base(a)[:3, :3] for a in ARM_NAMES})
    return session, executor, arms, clock


__all__ = ["HOME", "frame", "make_session", "moved"]
