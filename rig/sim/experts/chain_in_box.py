"""Scripted expert for `chain_in_box` (both arms): one arm lifts the chain by its end tag, carries it over
the open box and lowers it in; the other arm then pushes the lid past vertical so it falls shut."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from rig.conventions import ARM_NAMES
from rig.sim.experts.base import ScriptedExpert, Segment
from rig.sim.experts.motion import (
    FINGER_HALF_EXTENT,
    PAD_BELOW_TCP,
    REACH_TOL,
    RigEnv,
    best_down_grasp,
    reach_error,
)
from rig.sim.tasks.base import body_pos, body_rot
from rig.sim.tasks.chain_in_box import CONTAINER


class ChainInBoxExpert(ScriptedExpert):
    """Chain arm: grasp end link, lift, carry, lower, release, clear. Lid arm: push the lid shut."""

    def _lid_plan(self, env: RigEnv, arm: str, lid_angle: float) -> list[np.ndarray]:
        """World TCP poses above the push start, at the push start (behind the open lid) and at its end."""
        task = self.task
        box_pos, box_rot = body_pos(env.model, env.data, CONTAINER), body_rot(env.model, env.data, CONTAINER)
        z = self.param("push_height")
        along = (z - task.wall_height) / max(np.sin(lid_angle), 0.3)
        lid_y = task.inner_half[1] + task.wall - along * np.cos(lid_angle) + task.wall
        start = box_pos + box_rot @ np.array([0.0, lid_y + FINGER_HALF_EXTENT + self.param("push_gap"), z])
        finish = box_pos + box_rot @ np.array([0.0, self.param("push_to"), z])
        push = best_down_grasp(start, [box_rot[:, 1]], self.commanded_pose(arm)[3:])
        high, pushed = push.copy(), push.copy()
        high[2] += 0.08
        pushed[:3] = finish
        return [high, push, pushed]

    def script(self, env: RigEnv) -> Iterator[Segment]:
        m, d = env.model, env.data
        task = self.task
        box_pos = body_pos(m, d, CONTAINER)
        # Grasp the end tag (link 0) across its width, pads straddling its middle.
        tag_rot = body_rot(m, d, task.link_names[0])
        grasp_pos = task.link_centres(m, d)[0].copy()
        grasp_pos[2] = max(grasp_pos[2], PAD_BELOW_TCP + 0.003)

        def chain_plan(arm: str) -> list[np.ndarray]:
            grasp = best_down_grasp(grasp_pos, [tag_rot[:, 1]], self.commanded_pose(arm)[3:])
            above, carry = grasp.copy(), grasp.copy()
            above[2] = 0.08
            carry[2] = self.param("carry_height")
            over = carry.copy()
            over[:2] = box_pos[:2]
            drop = over.copy()
            drop[2] = box_pos[2] + self.param("drop_height")
            return [above, grasp, carry, over, drop]

        # Which arm carries the chain and which closes the lid: both plans must be reachable.
        lid_now = task.lid_angle(m, d)
        options = []
        for chain_arm in ARM_NAMES:
            lid_arm = next(a for a in ARM_NAMES if a != chain_arm)
            err = reach_error(env, chain_arm, chain_plan(chain_arm)) + \
                reach_error(env, lid_arm, self._lid_plan(env, lid_arm, lid_now)[:3])
            dist = float(np.linalg.norm(env.T_world_base(chain_arm)[:2, 3] - grasp_pos[:2]))
            options.append(((0.0 if err <= 2 * REACH_TOL else err, dist), chain_arm, lid_arm))
        _, chain_arm, lid_arm = min(options)
        above, grasp = chain_plan(chain_arm)[:2]
        yield Segment(poses={chain_arm: above}, openings={chain_arm: 1.0, lid_arm: 0.0})
        yield Segment(poses={chain_arm: grasp}, duration=0.8)
        yield Segment(openings={chain_arm: 0.0}, duration=1.0)
        carry = self.commanded_pose(chain_arm)
        carry[2] = self.param("carry_height")
        yield Segment(poses={chain_arm: carry}, noise=False)
        over = carry.copy()
        over[:2] = box_pos[:2]
        yield Segment(poses={chain_arm: over})
        yield self.wait(0.6)
        drop = self.commanded_pose(chain_arm)
        drop[2] = box_pos[2] + self.param("drop_height")
        yield Segment(poses={chain_arm: drop}, noise=False, duration=1.5)
        yield Segment(openings={chain_arm: 1.0}, duration=0.8)
        clear = self.commanded_pose(chain_arm)
        clear[2] = self.param("carry_height")
        yield Segment(poses={chain_arm: clear}, noise=False)
        home = clear.copy()
        home[:2] = grasp[:2]
        yield Segment(poses={chain_arm: home}, noise=False)

        # Lid: start behind its open face at push height, push toward the front until it falls shut.
        high, push, pushed = self._lid_plan(env, lid_arm, task.lid_angle(m, d))
        yield Segment(poses={lid_arm: high}, openings={lid_arm: 0.0})
        yield Segment(poses={lid_arm: push}, duration=0.8)
        stroke = pushed[:3] - push[:3]
        pushed = self.commanded_pose(lid_arm)
        pushed[:3] += stroke
        yield Segment(poses={lid_arm: pushed}, noise=False,
                      duration=float(np.linalg.norm(stroke)) / self.param("push_speed"))
        yield self.wait(0.8)
        lift = self.commanded_pose(lid_arm)
        lift[2] += 0.08
        yield Segment(poses={lid_arm: lift}, noise=False)
        yield self.wait(0.5)
