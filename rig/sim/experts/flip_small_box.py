"""Scripted expert for `flip_small_box`: grasp the box across its narrow side, lift, turn it about the
grasp axis past vertical, lower it onto its edge and let go so it topples onto its marked face."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from rig.conventions import ARM_NAMES
from rig.rotations import normalize_quat, rotation
from rig.sim.experts.base import ScriptedExpert, Segment
from rig.sim.experts.motion import RigEnv, best_down_grasp, pick_plan, rotate_about
from rig.sim.tasks.base import body_pos, body_rot
from rig.sim.tasks.flip_small_box import BOX


class FlipSmallBoxExpert(ScriptedExpert):
    """Tilted grasp, lift, turn by `turn_deg` about the closing axis, lower, release, back off.

    A wrist cannot turn a top-down grasp past horizontal near the table (the flange would go below the
    fingers), so the grasp itself is tilted back by `grasp_tilt_deg` and the turn ends tilted forward by
    `turn_deg - grasp_tilt_deg`: the box turns by `turn_deg` while the gripper never points up.
    """

    def script(self, env: RigEnv) -> Iterator[Segment]:
        m, d = env.model, env.data
        task = self.task
        pos, rot = body_pos(m, d, BOX), body_rot(m, d, BOX)
        tilt = np.deg2rad(self.param("grasp_tilt_deg"))
        turn = np.deg2rad(self.param("turn_deg"))
        grasp_z = pos[2] + task.half[2] - self.param("grasp_depth")

        def plan(arm: str, sign: float) -> list[np.ndarray]:
            down = best_down_grasp(np.array([pos[0], pos[1], grasp_z]), [rot[:, 1]], self.commanded_pose(arm)[3:])
            # Positive turns about `axis` tip the approach axis toward the box end `sign * x`.
            tip_dir = sign * rot[:, 0]
            tip_dir = tip_dir - tip_dir[2] * np.array([0.0, 0.0, 1.0])
            axis = np.cross(np.array([0.0, 0.0, -1.0]), tip_dir)
            grasp = rotate_about(down, axis, -tilt)
            approach = rotation(grasp[3:]).apply([0.0, 0.0, 1.0])
            above = grasp.copy()
            above[:3] -= 0.06 * approach
            lifted = grasp.copy()
            lifted[2] = self.param("lift")
            return [above, grasp, lifted, rotate_about(lifted, axis, turn)]

        candidates = [(arm, plan(arm, sign)) for arm in ARM_NAMES for sign in (1.0, -1.0)]
        arm, (above, grasp, planned_lift, planned_turn) = candidates[pick_plan(env, candidates, pos)]
        yield Segment(poses={arm: above}, openings={arm: 1.0})
        yield Segment(poses={arm: grasp}, duration=0.8)
        yield Segment(openings={arm: 0.0}, duration=1.0)
        lifted = self.commanded_pose(arm)
        lifted[2] = self.param("lift")
        yield Segment(poses={arm: lifted}, noise=False)
        # The planned turn, applied to where the hand is actually commanded now.
        delta = rotation(planned_turn[3:]) * rotation(planned_lift[3:]).inv()
        turned = lifted.copy()
        turned[3:] = normalize_quat((delta * rotation(lifted[3:])).as_quat())
        yield Segment(poses={arm: turned}, noise=False)
        yield self.wait(0.3)
        # Lower until the box's lowest corner is just above the table.
        corners = np.array([[sx, sy, sz] for sx in (-1, 1) for sy in (-1, 1) for sz in (-1, 1)]) * task.half
        low = float(np.min((corners @ body_rot(m, d, BOX).T)[:, 2] + body_pos(m, d, BOX)[2]))
        lowered = self.commanded_pose(arm)
        lowered[2] -= low - self.param("release_clearance")
        yield Segment(poses={arm: lowered}, noise=False, duration=1.0)
        yield Segment(openings={arm: 1.0}, duration=0.6)
        # Back off along the approach axis before rising, clear of the falling box.
        back = self.commanded_pose(arm)
        back[:3] -= 0.05 * rotation(back[3:]).apply(np.array([0.0, 0.0, 1.0]))
        yield Segment(poses={arm: back}, noise=False, duration=0.8)
        up = back.copy()
        up[2] += 0.06
        yield Segment(poses={arm: up}, noise=False)
        yield self.wait(1.0)
