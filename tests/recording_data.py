"""Synthetic observations and commands for the recorder and data-format tests (deterministic)."""

from __future__ import annotations

import numpy as np

from rig.conventions import ARM_NAMES, CAMERA_NAMES
from rig.schema import ArmState, CameraFrame, GripperState, Observation


def smooth_image(i: int, cam: int, height: int, width: int) -> np.ndarray:
    """A smooth moving gradient (compresses well, so codec error is small and predictable)."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    r = 128 + 100 * np.sin((x + 2 * i) / 13.0 + cam)
    g = 128 + 100 * np.cos((y - i) / 17.0 + 0.5 * cam)
    b = 128 + 60 * np.sin((x + y) / 23.0 + 0.1 * i)
    return np.stack([r, g, b], axis=-1).clip(0, 255).astype(np.uint8)


def quat(i: int, arm: int) -> np.ndarray:
    a = 0.01 * i + arm
    q = np.array([np.sin(a) * 0.3, np.cos(a) * 0.2, 0.1, 0.9])
    return q / np.linalg.norm(q)


def observation(i: int, t0: float = 1000.0, fps: int = 30, height: int = 64, width: int = 80,
                cameras: tuple[str, ...] = CAMERA_NAMES) -> Observation:
    t = t0 + i / fps
    frames = {c: CameraFrame(camera=c, t=t - 0.001 * k, color=smooth_image(i, k, height, width), frame_number=i)
              for k, c in enumerate(cameras)}
    arms, grippers = {}, {}
    for a, arm in enumerate(ARM_NAMES):
        q = np.linspace(-1, 1, 7) * 0.1 * (a + 1) + 0.001 * i
        pose = np.concatenate([[0.4 + 0.001 * i, 0.1 * (a * 2 - 1), 0.3], quat(i, a)])
        arms[arm] = ArmState(arm=arm, t=t - 0.002, q=q, dq=q * 0.1, tau=q * 3, tcp_pose=pose)
        opening = 0.5 + 0.4 * np.sin(0.1 * i + a)
        grippers[arm] = GripperState(arm=arm, t=t - 0.003, opening=opening, width_m=opening * 0.085)
    return Observation(t=t, frames=frames, arms=arms, grippers=grippers)


def command(i: int) -> np.ndarray:
    out = np.zeros((2, 8))
    for a in range(2):
        out[a, :3] = [0.41 + 0.001 * i, 0.1 * (a * 2 - 1), 0.31]
        out[a, 3:7] = quat(i + 1, a)
        out[a, 7] = 0.5 + 0.4 * np.cos(0.1 * i + a)
    return out
