"""Twin configuration: `config/sim.yaml` defaults, a user dict merged over them, typed and checked access.

Every accessor names the dotted key, the offending value and what was expected, so a typo in a YAML file
is reported as `sim config: arms.motion.max_linear_vel = 'fast', expected a positive number`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from rig.config import ConfigError, deep_merge, load_yaml

DEFAULT_CONFIG = "sim.yaml"


class SimConfig:
    """The merged twin configuration with checked getters (dotted keys, e.g. "physics.timestep")."""

    def __init__(self, overrides: Mapping[str, Any] | None = None, source: str = DEFAULT_CONFIG) -> None:
        if overrides is not None and not isinstance(overrides, Mapping):
            raise ConfigError(f"sim config: expected a mapping, got {type(overrides).__name__}")
        self.source = source
        self.data: dict[str, Any] = deep_merge(load_yaml(source), overrides or {})

    def raw(self, key: str) -> Any:
        node: Any = self.data
        for part in key.split("."):
            if not isinstance(node, Mapping) or part not in node:
                raise ConfigError(f"sim config ({self.source}): missing key {key!r}")
            node = node[part]
        return node

    def has(self, key: str) -> bool:
        try:
            self.raw(key)
        except ConfigError:
            return False
        return True

    def number(self, key: str, positive: bool = False) -> float:
        value = self.raw(key)
        try:
            out = float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"sim config ({self.source}): {key} = {value!r}, expected a number") from None
        if not np.isfinite(out) or (positive and out <= 0):
            kind = "a positive number" if positive else "a finite number"
            raise ConfigError(f"sim config ({self.source}): {key} = {value!r}, expected {kind}")
        return out

    def vector(self, key: str, size: int) -> np.ndarray:
        value = self.raw(key)
        try:
            arr = np.asarray(value, dtype=np.float64)
        except (TypeError, ValueError):
            arr = np.empty(0)
        if arr.shape != (size,) or not np.all(np.isfinite(arr)):
            raise ConfigError(
                f"sim config ({self.source}): {key} = {value!r}, expected a list of {size} finite numbers"
            )
        return arr

    def choice(self, key: str, allowed: tuple[str, ...]) -> str:
        value = self.raw(key)
        if value not in allowed:
            raise ConfigError(f"sim config ({self.source}): {key} = {value!r}, expected one of {list(allowed)}")
        return str(value)
