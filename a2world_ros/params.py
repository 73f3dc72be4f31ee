"""Launch-time configuration helpers shared by the ROS nodes and their plain-Python tests.

ROS 2 hands a node its YAML parameters flattened (`guard.arms.left.max_linear_speed`); the plain side
reads the same files as nested mappings (`rig.config.node_params`). `flatten` / `unflatten` convert
between the two, so a node can rebuild the nested section and hand it to the same `from_mapping`
constructors the non-ROS code uses. `calibration_transforms` reads config/calibration.yaml.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from rig.config import ConfigError, load_yaml, node_params

CALIBRATION_KEYS = {
    "T_world_base_left": ("world", "left_base_link"),
    "T_world_base_right": ("world", "right_base_link"),
    "T_world_front": ("world", "front_color_optical_frame"),
    "T_flange_wrist_left": ("left_flange", "wrist_left_color_optical_frame"),
    "T_flange_wrist_right": ("right_flange", "wrist_right_color_optical_frame"),
}
"""Calibration key -> (parent frame, child frame); the parent `world` is renamed by `world_frame`."""


def flatten(mapping: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """{'a': {'b': 1}} -> {'a.b': 1}: the parameter names ROS 2 gives nested YAML."""
    out: dict[str, Any] = {}
    for key, value in mapping.items():
        name = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, Mapping):
            out.update(flatten(value, name))
        else:
            out[name] = value
    return out


def unflatten(flat: Mapping[str, Any]) -> dict[str, Any]:
    """{'a.b': 1} -> {'a': {'b': 1}}; a name that is both a value and a prefix is a ConfigError."""
    out: dict[str, Any] = {}
    for name in sorted(flat):
        node = out
        parts = name.split(".")
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ConfigError(f"parameter {name!r}: {part!r} is both a value and a group")
            node = child
        if isinstance(node.get(parts[-1]), dict):
            raise ConfigError(f"parameter {name!r} is both a value and a group")
        node[parts[-1]] = list(flat[name]) if isinstance(flat[name], tuple) else flat[name]
    return out


def load_node_params(config: str | os.PathLike[str], node: str) -> dict[str, Any]:
    """Nested parameters of `node` from a ROS parameter YAML (name or path), merged over `/**`."""
    return node_params(load_yaml(config), node)


@dataclass(frozen=True)
class StaticTransform:
    """One calibrated transform: `pose` = [x, y, z, qx, qy, qz, qw] of `child` in `parent`."""

    parent: str
    child: str
    pose: tuple[float, ...]


def calibration_transforms(params: Mapping[str, Any], where: str = "calibration") -> list[StaticTransform]:
    """The five calibrated transforms from the `static_tf` parameters of config/calibration.yaml,
    validated by `calibration.transforms` (the one reader of that file)."""
    from calibration.transforms import SECTION, parse_calibration, transform_to_pose

    cal = parse_calibration({SECTION: {"ros__parameters": dict(params)}}, where)
    out = []
    for key, (parent, child) in CALIBRATION_KEYS.items():
        pose = transform_to_pose(cal[key], f"{where}.{key}")
        out.append(StaticTransform(cal.world_frame if parent == "world" else parent, child, tuple(pose)))
    return out


def rig_sections(config: str | os.PathLike[str], sections: tuple[str, ...]) -> dict[str, Any]:
    """Only the given device sections (plus `/**`) of a rig.yaml, for `rig.factory.build_rig`: a node
    builds just its own devices (the cameras node needs no arm SDK)."""
    data = load_yaml(config)
    missing = [s for s in sections if s not in data]
    if missing:
        raise ConfigError(f"{config}: missing section(s) {missing} (present: {sorted(data)})")
    return {key: value for key, value in data.items() if key == "/**" or key in sections}
