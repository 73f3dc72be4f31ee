"""Scripted expert for `lift_box_high`: top-down grasp across two box faces with an arm that reaches, lift."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from rig.conventions import ARM_NAMES
from rig.sim.experts.base import ScriptedExpert, Segment
from rig.sim.experts.motion import RigEnv, best_down_grasp, pick_arm
from rig.sim.tasks.base import body_pos, body_rot
from rig.sim.tasks.lift_box_high import BOX


class LiftBoxExpert(ScriptedExpert):
    """Approach above the box, descend, close, raise the box bottom to `hold_height`, hold."""

    def script(self, env: RigEnv) -> Iterator[Segment]:
        m, d = env.model, env.data
        pos, rot = body_pos(m, d, BOX), body_rot(m, d, BOX)
        half = self.task.half
        grasp_z = pos[2] + half[2] - self.param("grasp_depth")
        hold = self.param("hold_height") - (pos[2] - half[2])

        def plan(arm: str) -> list[np.ndarray]:
            grasp = best_down_grasp(np.array([pos[0], pos[1], grasp_z]), [rot[:, 0], rot[:, 1]],
                                    self.commanded_pose(arm)[3:])
            above, lifted = grasp.copy(), grasp.copy()
            above[2] = pos[2] + half[2] + 0.08
            lifted[2] += hold
            return [above, grasp, lifted]

        arm = pick_arm(env, {a: plan(a) for a in ARM_NAMES}, pos)
        above, grasp, _ = plan(arm)
        yield Segment(poses={arm: above}, openings={arm: 1.0})
        yield Segment(poses={arm: grasp}, duration=0.8)
        yield Segment(openings={arm: 0.0}, duration=1.0)
        lifted = self.commanded_pose(arm)
        lifted[2] += hold
        yield Segment(poses={arm: lifted}, noise=False, duration=1.5)
        yield self.wait(0.5)
