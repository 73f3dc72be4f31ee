"""Picklable factory that builds a FlexivArm on the flexivrdk test double inside an arm process
(rig.realtime.arm_process), with the double's blocking-call timings set (tests and bench only)."""

from __future__ import annotations

import importlib.util
import sys
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

from rig.drivers.base import Arm
from rig.drivers.flexiv import FlexivArm, FlexivArmConfig

DOUBLE = Path(__file__).resolve().parent / "doubles" / "flexivrdk.py"


def load_double() -> ModuleType:
    """The double as `flexivrdk` for the rest of this process (arm processes, benches; a test in the
    pytest process uses `tests.test_flexiv_arm.install_double`, which is undone after the test)."""
    module = sys.modules.get("flexivrdk")
    if module is not None and getattr(module, "__file__", "") == str(DOUBLE):
        return module
    spec = importlib.util.spec_from_file_location("flexivrdk", DOUBLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["flexivrdk"] = module
    spec.loader.exec_module(module)
    return module


@dataclass(frozen=True)
class DoubleFlexivFactory:
    """`FlexivArm(config)` on the double; `timing` overrides the controller's `Timing` fields."""

    config: FlexivArmConfig
    timing: dict[str, float] = field(default_factory=dict)

    @property
    def max_command_hz(self) -> float:
        return self.config.command_hz

    def __call__(self) -> Arm:
        ctrl = load_double().controller(self.config.serial)
        for key, value in self.timing.items():
            setattr(ctrl.timing, key, value)
        return FlexivArm(self.config)
