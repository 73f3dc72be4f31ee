"""The manipulation tasks of the simulated rig, each a `TaskSpec` (see `rig.sim.task_spec`).

`get_task(name)` builds a task with its parameters from `config/tasks.yaml`; `TASK_NAMES` lists them.
Task modules (and mujoco) are imported on first use, so importing this package stays cheap (the CLI
lists the names without loading MuJoCo).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rig.sim.tasks.common import ConfiguredTask

_CLASSES: dict[str, tuple[str, str]] = {
    "lift_box_high": ("rig.sim.tasks.lift_box_high", "LiftBoxHigh"),
    "flip_small_box": ("rig.sim.tasks.flip_small_box", "FlipSmallBox"),
    "toggle_switch": ("rig.sim.tasks.toggle_switch", "ToggleSwitch"),
    "insert_ram": ("rig.sim.tasks.insert_ram", "InsertRam"),
    "chain_in_box": ("rig.sim.tasks.chain_in_box", "ChainInBox"),
}
TASK_NAMES: tuple[str, ...] = tuple(_CLASSES)


def get_task(name: str, config: dict[str, Any] | None = None) -> ConfiguredTask:
    """A fresh task `name`; parameters from `config` if given, else from `config/tasks.yaml`."""
    if name not in _CLASSES:
        raise KeyError(f"unknown task {name!r}, expected one of {list(TASK_NAMES)}")
    module, cls = _CLASSES[name]
    return getattr(importlib.import_module(module), cls)(config)


__all__ = ["TASK_NAMES", "get_task"]
