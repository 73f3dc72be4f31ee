"""A synthetic scene whose camera image is a known function of the left arm's position, and a world-model
double that predicts it exactly from the model actions (no tests in here).

The image is a periodic texture rolled by the tool position (SCALE pixels per metre, x to columns,
y to rows), so a correct prediction of a correctly aligned real frame is pixel-identical. The double
integrates the 14-D model actions with `worldmodel.actions.actions_to_poses` (the inverse of the one
conversion), so it is "known good" for the true action stream and wrong for a wrong one.
"""

from __future__ import annotations

import time

import numpy as np

from rig.schema import CommandChunk
from worldmodel.actions import actions_to_poses

H, W = 48, 64
SCALE = 400.0  # pixels per metre
STEP_M = 1.0 / SCALE  # one pixel per 30 Hz step: every target lands on a whole pixel
DT = 1.0 / 30.0


def texture() -> np.ndarray:
    y, x = np.mgrid[0:H, 0:W].astype(np.float64)
    base = 127 + 55 * np.sin(2 * np.pi * x / W * 3) * np.cos(2 * np.pi * y / H * 2) + 45 * np.sin(
        2 * np.pi * (x / W * 2 + y / H * 3))
    rgb = np.stack([base, np.roll(base, 7, axis=1), np.roll(base, 5, axis=0)], axis=-1)
    return np.clip(rgb, 0, 255).astype(np.uint8)


TEXTURE = texture()


def render(position: np.ndarray) -> np.ndarray:
    """The camera image when the left tool is at `position` (x, y metres)."""
    dx, dy = round(position[0] * SCALE), round(position[1] * SCALE)
    return np.roll(np.roll(TEXTURE, dx, axis=1), dy, axis=0)


def state(position: np.ndarray) -> np.ndarray:
    """(2, 8) command/state rows with identity orientation, gripper open."""
    s = np.zeros((2, 8))
    s[:, :3] = [0.4, 0.0, 0.3]
    s[0, :2] = position[:2]
    s[:, 6] = 1.0
    s[:, 7] = 1.0
    return s


def trajectory(t0: float, steps: int, start: np.ndarray, velocity_px: tuple[int, int] = (1, 0)) -> CommandChunk:
    """A chunk of `steps` 30 Hz targets moving `velocity_px` pixels per step from `start`."""
    targets = np.stack([state(start + np.array(velocity_px) * STEP_M * (i + 1)) for i in range(steps)])
    return CommandChunk(targets, t0, DT)


class KinematicPredictor:
    """A world-model double for this scene: exact for the true actions (see the module doc)."""

    resolution = (H, W)
    fps = 10.0

    def __init__(self, delay_s: float = 0.0) -> None:
        self.delay_s = delay_s
        self.calls = 0

    def predict(self, images, actions, *, steps=None, seed=0, include_condition=True):
        self.calls += 1
        if self.delay_s:
            time.sleep(self.delay_s)
        poses, _ = actions_to_poses(np.array([[0, 0, 0, 0, 0, 0, 1.0]] * 2), actions)
        out = {}
        for key, image in images.items():
            frames = [image]
            for pose in poses[1:, 0]:
                dx, dy = round(pose[0] * SCALE), round(pose[1] * SCALE)
                frames.append(np.roll(np.roll(image, dx, axis=1), dy, axis=0))
            video = np.stack(frames)
            out[key] = video if include_condition else video[1:]
        return out


def observation(t: float, position: np.ndarray, image: np.ndarray | None = None):
    """An `Observation` of the scene at capture time `t` with the left tool at `position`."""
    from rig.schema import ArmState, CameraFrame, GripperState, Observation

    s = state(position)
    arms = {arm: ArmState(arm=arm, t=t, q=np.zeros(7), dq=np.zeros(7), tau=np.zeros(7), tcp_pose=s[i, :7])
            for i, arm in enumerate(("left", "right"))}
    grippers = {arm: GripperState(arm=arm, t=t, opening=1.0, width_m=0.085) for arm in ("left", "right")}
    frame = CameraFrame(camera="front", t=t, color=render(position) if image is None else image)
    return Observation(t=t, frames={"front": frame}, arms=arms, grippers=grippers)


def positions(steps: int) -> list[np.ndarray]:
    """The true tool position at each 30 Hz step of a run moving +1 px per step."""
    start = np.array([0.4, 0.0])
    return [start + np.array((1, 0)) * STEP_M * j for j in range(steps)]
