"""Locating and reading the YAML configuration in `config/` (one file set for ROS and non-ROS runs).

ROS parameter files nest values under `<node>: ros__parameters:`; `node_params` merges a node's
section over the `/**` wildcard section so the plain-Python side reads the same files.
"""

from __future__ import annotations

import copy
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

PACKAGE = "a2world_ros"


class ConfigError(ValueError):
    """A configuration file is missing or malformed; the message names the file and the key."""


def config_dirs() -> list[Path]:
    """Where config files are looked up, in order: $A2WORLD_CONFIG_DIR, the source tree, share/ of a
    sourced ROS 2 workspace ($AMENT_PREFIX_PATH, e.g. after `colcon build`), share/ of the interpreter."""
    dirs: list[Path] = []
    if env := os.environ.get("A2WORLD_CONFIG_DIR"):
        dirs.append(Path(env))
    dirs.append(Path(__file__).resolve().parent.parent / "config")
    for prefix in filter(None, os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep)):
        if (Path(prefix) / "share" / PACKAGE / "config").is_dir():
            dirs.append(Path(prefix) / "share" / PACKAGE / "config")
    dirs.append(Path(sys.prefix) / "share" / PACKAGE / "config")
    return dirs


def config_path(name: str | os.PathLike[str]) -> Path:
    """Resolve a config file given as a path or as a bare name like `rig.yaml` or `rig`."""
    candidate = Path(name)
    if candidate.is_file():
        return candidate
    file_name = candidate.name if candidate.suffix else f"{candidate.name}.yaml"
    for directory in config_dirs():
        if (directory / file_name).is_file():
            return directory / file_name
    searched = ", ".join(str(d) for d in config_dirs())
    raise ConfigError(f"config {str(name)!r}: not a file and not found in {searched}")


def load_yaml(name: str | os.PathLike[str]) -> dict[str, Any]:
    """Load a YAML mapping from a config name or path; errors name the file."""
    path = config_path(name)
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: invalid YAML ({exc})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: top level is {type(data).__name__}, expected a mapping")
    return data


def deep_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """Recursive merge: mappings merge key by key, anything else in `override` replaces `base`."""
    out = copy.deepcopy(dict(base))
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def node_params(data: dict[str, Any], node: str) -> dict[str, Any]:
    """Parameters of `node` from a ROS parameter mapping, merged over the `/**` section key by key
    (as ROS merges the flattened names: a node's `guard.stale_timeout_s` keeps `/**`'s `guard.arms`)."""
    merged: dict[str, Any] = {}
    for key in ("/**", node, f"/{node}"):
        section = data.get(key)
        if isinstance(section, dict):
            merged = deep_merge(merged, section.get("ros__parameters", {}))
    return merged


def require(mapping: dict[str, Any], key: str, where: str) -> Any:
    """`mapping[key]`, or a ConfigError naming `where.key`."""
    if key not in mapping:
        raise ConfigError(f"{where}: missing key {key!r} (present: {sorted(mapping)})")
    return mapping[key]
