"""Scripted expert for `toggle_switch`: a closed gripper sweeps the lever from its `off` to its `on` side."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from rig.conventions import ARM_NAMES
from rig.sim.experts.base import ScriptedExpert, Segment
from rig.sim.experts.motion import FINGER_HALF_EXTENT, RigEnv, best_down_grasp, pick_arm
from rig.sim.tasks.base import body_pos, body_rot
from rig.sim.tasks.toggle_switch import HOUSING


class ToggleSwitchExpert(ScriptedExpert):
    """Close the gripper, come down behind the lever, push it across at `push_height`, back off."""

    def script(self, env: RigEnv) -> Iterator[Segment]:
        m, d = env.model, env.data
        task = self.task
        pos, rot = body_pos(m, d, HOUSING), body_rot(m, d, HOUSING)
        hinge = pos + rot @ np.array([0.0, 0.0, 2.0 * task.housing_half[2]])
        c = self.param("push_height") * task.lever_length
        # Where the lever crosses height c now, and where it must be pushed (a bit past `on`).
        x_lever = c * np.tan(task.angle(m, d))
        x_start = x_lever - FINGER_HALF_EXTENT - task.lever_half_width - self.param("approach_gap")
        x_end = c * np.tan(task.on_angle) + self.param("push_past") - FINGER_HALF_EXTENT
        start = hinge + rot @ np.array([x_start, 0.0, c])
        end = hinge + rot @ np.array([x_end, 0.0, c])

        def plan(arm: str) -> list[np.ndarray]:
            # Closing axis along the push direction, so a finger plate's flat outer face does the pushing.
            at_start = best_down_grasp(start, [rot[:, 0]], self.commanded_pose(arm)[3:])
            above, push = at_start.copy(), at_start.copy()
            above[2] += 0.08
            push[:3] = end
            return [above, at_start, push]

        arm = pick_arm(env, {a: plan(a) for a in ARM_NAMES}, hinge)
        above, at_start, _ = plan(arm)
        yield Segment(poses={arm: above}, openings={arm: 0.0})
        yield Segment(poses={arm: at_start}, duration=0.8)
        push = at_start.copy()
        push[:3] = end
        yield Segment(poses={arm: push}, noise=False, duration=(x_end - x_start) / self.param("push_speed"))
        back = push.copy()
        back[:3] -= rot[:, 0] * 0.02
        yield Segment(poses={arm: back}, noise=False, duration=0.4)
        up = back.copy()
        up[2] += 0.08
        yield Segment(poses={arm: up}, noise=False)
