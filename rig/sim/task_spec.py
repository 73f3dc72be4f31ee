"""The task hook protocol: how a manipulation task plugs into the twin.

A task adds its bodies to the scene before compilation (`build`), randomises them after the arms
are homed on every reset (`reset`), and reports `success` and a shaped `progress` in [0, 1]. The
twin calls `build` once in its constructor and `reset` inside `Twin.reset(seed)` with a
`numpy.random.Generator` seeded from that seed, so a lockstep episode is a pure function of the seed
and the commands. `rig.sim.tasks.get_task(name)` returns registered tasks.

World frame = table frame: origin at the centre of the table top, z up, table surface at z = 0.
The shared object workspace is x in [-0.15, 0.15], y in [-0.2, 0.2] (see `OBJECT_WORKSPACE`).
"""

from __future__ import annotations

from typing import Final, Protocol, runtime_checkable

import mujoco
import numpy as np

OBJECT_WORKSPACE: Final = ((-0.15, 0.15), (-0.2, 0.2))
"""(x range, y range) on the table top in metres that both grippers reach from above."""


@runtime_checkable
class TaskSpec(Protocol):
    """A manipulation task: scene additions, reset randomisation, success and progress."""

    name: str
    """Registry name, e.g. "lift_box_high"."""
    instruction: str
    """Language instruction given to the policy."""

    def build(self, spec: mujoco.MjSpec) -> None:
        """Add bodies, joints, geoms and sites to `spec.worldbody` (names must not start with "rig/")."""
        ...

    def reset(self, model: mujoco.MjModel, data: mujoco.MjData, rng: np.random.Generator) -> None:
        """Randomise the task state; called after the arms are homed and before `mj_forward`."""
        ...

    def success(self, model: mujoco.MjModel, data: mujoco.MjData) -> bool:
        """True when the task is accomplished in the current state."""
        ...

    def progress(self, model: mujoco.MjModel, data: mujoco.MjData) -> float:
        """Shaped progress in [0, 1] (1 when successful)."""
        ...
