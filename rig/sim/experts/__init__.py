"""Scripted experts for the simulated tasks: privileged-state scripts emitting 30 Hz dual-arm commands.

`get_expert(task)` returns the expert of a task built by `rig.sim.tasks.get_task`; its parameters and
noise come from the task's `expert` section of `config/tasks.yaml`. `rig.sim.experts.runner.run_episode`
runs one on the twin.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from rig.config import ConfigError

if TYPE_CHECKING:
    from rig.sim.experts.base import ExpertNoise, ScriptedExpert

_EXPERTS: dict[str, tuple[str, str]] = {
    "lift_box_high": ("rig.sim.experts.lift_box_high", "LiftBoxExpert"),
    "flip_small_box": ("rig.sim.experts.flip_small_box", "FlipSmallBoxExpert"),
    "toggle_switch": ("rig.sim.experts.toggle_switch", "ToggleSwitchExpert"),
    "insert_ram": ("rig.sim.experts.insert_ram", "InsertRamExpert"),
    "chain_in_box": ("rig.sim.experts.chain_in_box", "ChainInBoxExpert"),
}


def get_expert(task: Any, noise: ExpertNoise | None = None) -> ScriptedExpert:
    """The scripted expert of `task` (a task from `get_task`), optionally with `noise` overridden."""
    if task.name not in _EXPERTS:
        raise KeyError(f"no scripted expert for task {task.name!r}, have {sorted(_EXPERTS)}")
    cfg = task.cfg.get("expert")
    if not isinstance(cfg, dict):
        raise ConfigError(f"tasks.yaml: {task.name}.expert: missing or not a mapping")
    module, cls = _EXPERTS[task.name]
    return getattr(importlib.import_module(module), cls)(task, cfg, noise)


__all__ = ["get_expert"]
