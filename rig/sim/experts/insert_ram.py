"""Scripted expert for `insert_ram`: grasp the card's top edge, align it over the slot from the card's
measured pose (closed-loop corrections), insert slowly, release."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
from numpy.typing import NDArray

from rig.conventions import ARM_NAMES
from rig.rotations import matrix_to_pose, pose_to_matrix
from rig.sim.experts.base import ScriptedExpert, Segment
from rig.sim.experts.motion import RigEnv, best_down_grasp, pick_arm
from rig.sim.tasks.base import body_pos, body_rot
from rig.sim.tasks.insert_ram import CARD, SLOT


def _matrix(pos: NDArray[np.float64], rot: NDArray[np.float64]) -> NDArray[np.float64]:
    m = np.eye(4)
    m[:3, :3], m[:3, 3] = rot, pos
    return m


class InsertRamExpert(ScriptedExpert):
    """Pick the card, hover it above the slot, correct twice from its true pose, insert, release."""

    corrections = 2

    def _card_target(self, env: RigEnv, height: float) -> NDArray[np.float64]:
        """World 4x4 pose for the card: upright over the slot, bottom `height` above the slot floor."""
        m, d = env.model, env.data
        slot_pos, slot_rot = body_pos(m, d, SLOT), body_rot(m, d, SLOT)
        card_rot = body_rot(m, d, CARD)
        # The card and the slot are symmetric under a half turn: keep the nearer of the two yaws.
        rot = slot_rot if slot_rot[:, 0] @ card_rot[:, 0] >= 0 else slot_rot @ np.diag([-1.0, -1.0, 1.0])
        pos = slot_pos + np.array([0.0, 0.0, self.task.floor_z + self.task.card_half[2] + height])
        return _matrix(pos, rot)

    def _correct(self, env: RigEnv, arm: str, target: NDArray[np.float64]) -> NDArray[np.float64]:
        """Commanded TCP pose that moves the card from where it is to `target` (world correction)."""
        m, d = env.model, env.data
        card = _matrix(body_pos(m, d, CARD), body_rot(m, d, CARD))
        delta = target @ np.linalg.inv(card)
        return matrix_to_pose(delta @ pose_to_matrix(self.commanded_pose(arm)))

    def script(self, env: RigEnv) -> Iterator[Segment]:
        m, d = env.model, env.data
        task = self.task
        pos, rot = body_pos(m, d, CARD), body_rot(m, d, CARD)
        top = pos[2] + task.card_half[2]
        card_now = _matrix(pos, rot)
        hover = task.rail_height + self.param("hover")

        def plan(arm: str) -> list[np.ndarray]:
            grasp = best_down_grasp(np.array([pos[0], pos[1], top - self.param("grasp_depth")]), [rot[:, 1]],
                                    self.commanded_pose(arm)[3:])
            above, up = grasp.copy(), grasp.copy()
            above[2] = top + 0.06
            up[2] += 0.10
            # Where the hand goes if the card stays in the grasp as it is now.
            carry = [matrix_to_pose(self._card_target(env, h) @ np.linalg.inv(card_now) @ pose_to_matrix(grasp))
                     for h in (hover + 0.03, 0.001)]
            return [above, grasp, up, *carry]

        arm = pick_arm(env, {a: plan(a) for a in ARM_NAMES}, pos)
        above, grasp = plan(arm)[:2]
        yield Segment(poses={arm: above}, openings={arm: 1.0})
        yield Segment(poses={arm: grasp}, duration=0.8)
        yield Segment(openings={arm: 0.0}, duration=1.0)
        up = self.commanded_pose(arm)
        up[2] += 0.10
        yield Segment(poses={arm: up}, noise=False, duration=1.0)
        yield Segment(poses={arm: self._correct(env, arm, self._card_target(env, hover + 0.03))})
        yield Segment(poses={arm: self._correct(env, arm, self._card_target(env, hover))}, duration=0.8)
        for _ in range(self.corrections):
            yield self.wait(0.3)
            yield Segment(poses={arm: self._correct(env, arm, self._card_target(env, hover))}, noise=False,
                          duration=0.5)
        depth = hover + 0.001
        yield Segment(poses={arm: self._correct(env, arm, self._card_target(env, 0.001))}, noise=False,
                      duration=depth / self.param("insert_speed"))
        yield Segment(openings={arm: 1.0}, duration=0.8)
        release = self.commanded_pose(arm)
        release[2] += 0.08
        yield Segment(poses={arm: release}, noise=False)
