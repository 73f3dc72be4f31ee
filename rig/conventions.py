"""Contracts shared by every package (ARCHITECTURE.md): names, orders, rates, sizes and units.

These are interface definitions, not tunables: changing one changes the data every package exchanges.
Tunable values (serials, limits, latencies) live in YAML under `config/`.
"""

from __future__ import annotations

from typing import Final

ARM_NAMES: Final = ("left", "right")
"""Arm order in every array with an arm axis (command chunks, model actions)."""

CAMERA_NAMES: Final = ("front", "wrist_left", "wrist_right")
"""Camera names as they appear in config, topics and datasets."""

VIEW_IDS: Final = {"wrist_left": 0, "wrist_right": 1, "front": 2}
"""View id of each camera inside the models (official release: 0/1 wrist, 2/3 third-person)."""

IMAGE_HEIGHT: Final = 480
IMAGE_WIDTH: Final = 640
CAMERA_FPS: Final = 30
ARM_STATE_MIN_HZ: Final = 100.0
POLICY_HZ: Final = 30
POLICY_CHUNK_STEPS: Final = 60
WORLD_MODEL_FPS: Final = 10
WORLD_MODEL_CHUNK_FRAMES: Final = 20

JOINTS_PER_ARM: Final = 7
POSE_DIM: Final = 7
"""Pose layout: position (x, y, z) metres, then quaternion (qx, qy, qz, qw), scalar last."""
COMMAND_DIM: Final = 8
"""Command layout per arm and step: pose (7) then gripper opening (1)."""
MODEL_ACTION_DIM: Final = 14
"""Official A2World action: per arm [dx, dy, dz, droll, dpitch, dyaw, gripper_open], left first."""

GRIPPER_STROKE_M: Final = 0.085
"""Robotiq 2F-85 stroke: opening 1.0 is 0.085 m between the fingers, 0.0 is closed."""


def opening_to_width(opening: float) -> float:
    """Gripper opening in [0, 1] to finger distance in metres."""
    return float(opening) * GRIPPER_STROKE_M


def width_to_opening(width_m: float) -> float:
    """Finger distance in metres to gripper opening in [0, 1], clipped to the stroke."""
    return min(max(float(width_m) / GRIPPER_STROKE_M, 0.0), 1.0)
