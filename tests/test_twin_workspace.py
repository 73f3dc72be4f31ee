"""Both grippers reach the whole shared object workspace pointing straight down, and 45 deg tilts."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from rig.rotations import angle_between
from rig.sim.task_spec import OBJECT_WORKSPACE
from rig.sim.twin import Twin

# Faster motion limits only to keep the test short; reachability does not depend on them.
FAST = {"arms": {"motion": {"max_linear_vel": 1.0, "max_angular_vel": 3.0,
                            "max_linear_acc": 5.0, "max_angular_acc": 15.0}}}
DOWN = Rotation.from_quat([1.0, 0.0, 0.0, 0.0])


@pytest.fixture(scope="module")
def twin() -> Twin:
    return Twin(FAST, render_size=(48, 64))


def _targets(arm: str) -> list[tuple[np.ndarray, Rotation]]:
    (x0, x1), (y0, y1) = OBJECT_WORKSPACE
    out = []
    yaw_turn = -90.0 if arm == "left" else 90.0
    for x, y in itertools.product((x0, x1), (y0, y1)):
        out.append((np.array([x, y, 0.02]), DOWN))
        out.append((np.array([x, y, 0.30]), DOWN))
        # Joint 7 sits near its upper (left) / lower (right) limit when pointing down with the fingers
        # along x, so each arm turns its gripper by 90 deg in the direction its wrist allows (docs/twin.md).
        out.append((np.array([x, y, 0.10]), DOWN * Rotation.from_euler("z", yaw_turn, degrees=True)))
    toward_base = 45.0 if arm == "left" else -45.0
    for axis, angle in (("y", 45.0), ("y", -45.0), ("x", toward_base)):
        out.append((np.array([0.0, 0.0, 0.10]), Rotation.from_euler(axis, angle, degrees=True) * DOWN))
    return out


@pytest.mark.parametrize("arm", ["left", "right"])
def test_workspace_reachable(twin: Twin, arm: str) -> None:
    failures = []
    for pos, rot in _targets(arm):
        twin.reset_state(0)
        quat = rot.as_quat()
        twin.set_arm_target_world(arm, np.r_[pos, quat])
        twin.step(1.6)
        pose = twin.tcp_pose_world(arm)
        pos_err = float(np.linalg.norm(pose[:3] - pos))
        rot_err = float(np.degrees(angle_between(pose[3:], quat)))
        if pos_err > 0.002 or rot_err > 1.0:
            failures.append((pos.tolist(), rot.as_euler("xyz", degrees=True).round(1).tolist(), pos_err, rot_err))
    assert not failures, f"{arm}: unreached targets {failures}"
