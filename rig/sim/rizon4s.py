"""Published kinematics of the Flexiv Rizon 4S (joint origins, axes, limits) and a coarse mass model.

Numbers are Flexiv's public robot description: `flexiv_description/urdf/rizon_joints_links.xacro` in
github.com/flexivrobotics/flexiv_ros2 (the `rizon4s` branch of the macro: flange 0.124 m after joint 7).
They are facts about the robot, not tunables, so they live here rather than in `config/sim.yaml`.
The URDF states its dynamics are approximate; the twin only needs plausible inertia for stable
PD tracking (gravity is compensated), so link masses are taken as published and inertias as given.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np


@dataclass(frozen=True)
class JointSpec:
    """One revolute joint: origin in the parent link frame (xyz, rpy), axis and limits."""

    name: str
    xyz: tuple[float, float, float]
    rpy: tuple[float, float, float]
    axis: tuple[float, float, float]
    lower: float
    upper: float
    velocity: float
    effort: float


@dataclass(frozen=True)
class LinkSpec:
    """Mass model of the link a joint moves: mass (kg), centre of mass and diagonal inertia."""

    mass: float
    com: tuple[float, float, float]
    inertia: tuple[float, float, float]


PI: Final = float(np.pi)

JOINTS: Final = (
    JointSpec("joint1", (0.0, 0.0, 0.155), (0.0, 0.0, PI), (0, 0, 1), -2.7925, 2.7925, 2.0944, 123.0),
    JointSpec("joint2", (0.0, 0.03, 0.210), (0.0, 0.0, 0.0), (0, 1, 0), -2.2689, 2.2689, 2.0944, 123.0),
    JointSpec("joint3", (0.0, 0.035, 0.205), (0.0, 0.0, 0.0), (0, 0, 1), -2.9671, 2.9671, 2.4435, 64.0),
    JointSpec("joint4", (-0.02, -0.03, 0.19), (0.0, 0.0, -PI), (0, 1, 0), -1.8675, 2.6878, 2.4435, 64.0),
    JointSpec("joint5", (-0.02, 0.025, 0.195), (0.0, 0.0, -PI), (0, 0, 1), -2.9671, 2.9671, 4.8869, 39.0),
    JointSpec("joint6", (0.0, 0.03, 0.19), (0.0, 0.0, 0.0), (0, 1, 0), -1.3963, 4.5379, 4.8869, 39.0),
    JointSpec("joint7", (-0.055, 0.070, 0.11), (0.0, -PI / 2, 0.0), (0, 0, 1), -2.9671, 2.9671, 4.8869, 39.0),
)
"""Joint i connects link i-1 to link i (link 0 = base)."""

FLANGE_XYZ: Final = (0.0, 0.0, 0.124)
FLANGE_RPY: Final = (0.0, 0.0, -PI)
"""Fixed transform link7 -> flange (Rizon 4S)."""

BASE_LINK: Final = LinkSpec(3.7, (0.0, 0.0, 0.09), (0.019, 0.02, 0.009))
LINKS: Final = (
    LinkSpec(3.7, (0.0, 0.01, 0.15), (0.028, 0.027, 0.008)),
    LinkSpec(2.7, (0.0, 0.04, 0.10), (0.023, 0.024, 0.004)),
    LinkSpec(2.4, (-0.01, 0.0, 0.13), (0.014, 0.014, 0.004)),
    LinkSpec(2.4, (-0.01, 0.03, 0.10), (0.018, 0.019, 0.003)),
    LinkSpec(2.4, (0.0, 0.0, 0.13), (0.014, 0.013, 0.004)),
    LinkSpec(2.1, (-0.01, 0.06, 0.07), (0.008, 0.009, 0.004)),
    LinkSpec(1.4, (0.0, 0.0, 0.05), (0.003, 0.003, 0.002)),
)
"""Mass model of link1..link7 (the body each joint moves)."""

LINK_RADII: Final = (0.065, 0.055, 0.05, 0.05, 0.045, 0.045, 0.04)
"""Capsule radius of the collision proxy of link1..link7 (approximate outer radius of the castings)."""

FLEXIV_HOME_DEG: Final = (0.0, -40.0, 0.0, 90.0, 0.0, 40.0, 0.0)
"""Flexiv's default home posture (flexiv_description/config/initial_positions.yaml), degrees."""


def joint_limits() -> tuple[np.ndarray, np.ndarray]:
    """Lower and upper joint position limits (rad), shape (7,) each."""
    return np.array([j.lower for j in JOINTS]), np.array([j.upper for j in JOINTS])


def velocity_limits() -> np.ndarray:
    """Joint velocity limits (rad/s), shape (7,)."""
    return np.array([j.velocity for j in JOINTS])
