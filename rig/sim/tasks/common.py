"""The base class every task derives from: its name, instruction and parameters from `config/tasks.yaml`."""

from __future__ import annotations

from typing import Any, ClassVar

import mujoco
import numpy as np

from rig.config import ConfigError
from rig.sim.tasks.base import body_id, robot_contact, task_config


class ConfiguredTask:
    """A task whose parameters come from its section of `config/tasks.yaml` (or a given mapping).

    Subclasses set `name` and `body_names` (the task's own movable and fixed bodies, used to tell
    robot contacts from contacts among the task's parts) and implement the TaskSpec methods.
    """

    name: ClassVar[str] = ""
    body_names: ClassVar[tuple[str, ...]] = ()

    def __init__(self, config: dict[str, Any] | None = None) -> None:
        self.cfg: dict[str, Any] = dict(config) if config is not None else task_config(self.name)
        instruction = self.cfg.get("instruction")
        if not isinstance(instruction, str) or not instruction.strip():
            raise ConfigError(f"tasks.yaml: {self.name}.instruction: {instruction!r}, expected a sentence")
        self.instruction: str = instruction
        self.where = f"tasks.yaml:{self.name}"

    def own_body_ids(self, model: mujoco.MjModel) -> list[int]:
        """MuJoCo ids of all the task's bodies."""
        return [body_id(model, n) for n in self.body_names]

    def touched(self, model: mujoco.MjModel, data: mujoco.MjData, bodies: tuple[str, ...]) -> bool:
        """True when the robot touches any of `bodies` (task body names)."""
        return robot_contact(model, data, [body_id(model, n) for n in bodies], self.own_body_ids(model))

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"


def up_alignment(rot: np.ndarray) -> float:
    """Cosine between a body's local +z axis and world up."""
    return float(rot[2, 2])
