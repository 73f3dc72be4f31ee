"""Typed teleop settings from config/teleop.yaml (node `teleop`), with the guard's limits from the file it
names (`guard_config`, normally config/policy.yaml) so there is one set of limits."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Final

from rig.config import ConfigError, load_yaml, node_params
from rig.conventions import ARM_NAMES
from rig.executor import ExecutorConfig
from rig.params import get_float, get_int, get_mapping, get_str, reject_unknown
from rig.safety import GuardConfig, load_guard_config
from teleop.retarget import RetargetConfig
from teleop.stream import StreamConfig

ACTIONS: Final = ("start_stop", "success", "failure", "discard", "recenter")


@dataclass(frozen=True)
class WebXRConfig:
    """`webxr:` of config/teleop.yaml: where the page is served and how often status goes out."""

    host: str = "0.0.0.0"
    port: int = 8443
    cert_dir: Path = Path("~/.a2world/teleop")
    status_hz: float = 10.0


@dataclass(frozen=True)
class TeleopConfig:
    """Everything the teleop component reads from config."""

    guard: GuardConfig
    executor: ExecutorConfig
    stream: StreamConfig = field(default_factory=StreamConfig)
    retarget: RetargetConfig = field(default_factory=RetargetConfig)
    buttons: Mapping[str, str] = field(default_factory=dict)
    webxr: WebXRConfig = field(default_factory=WebXRConfig)
    operator: str = ""
    observation_hz: float = 30.0


def _buttons(data: Mapping[str, Any], where: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, action in data.items():
        arm, _, name = str(key).partition(".")
        if arm not in ARM_NAMES or not name:
            raise ConfigError(f"{where}.{key}: expected '<arm>.<button>' with arm in {list(ARM_NAMES)}")
        if action not in ACTIONS:
            raise ConfigError(f"{where}.{key}: action {action!r}, expected one of {list(ACTIONS)}")
        out[str(key)] = str(action)
    return out


def parse_teleop_config(params: Mapping[str, Any], where: str = "teleop.yaml: teleop") -> TeleopConfig:
    """TeleopConfig from the `teleop` node's parameter mapping."""
    reject_unknown(params, {"guard_config", "guard_watch", "operator", "observation_hz", "stream", "retarget",
                            "buttons", "executor", "webxr"}, where)
    guard_file = get_str(params, "guard_config", where, "policy.yaml")
    guard = load_guard_config(node_params(load_yaml(guard_file), "/**"), f"{guard_file}: guard")
    if "guard_watch" in params:
        watch = params["guard_watch"]
        if not isinstance(watch, (list, tuple)) or not all(isinstance(w, str) for w in watch):
            raise ConfigError(f"{where}.guard_watch: {watch!r}, expected a list of source names")
        guard = replace(guard, watch=tuple(watch))
    web = get_mapping(params, "webxr", where, {})
    reject_unknown(web, set(WebXRConfig.__dataclass_fields__), f"{where}.webxr")
    webxr = WebXRConfig(host=get_str(web, "host", f"{where}.webxr", "0.0.0.0"),
                        port=get_int(web, "port", f"{where}.webxr", 8443, low=0, high=65535),
                        cert_dir=Path(get_str(web, "cert_dir", f"{where}.webxr", "~/.a2world/teleop")),
                        status_hz=get_float(web, "status_hz", f"{where}.webxr", 10.0, positive=True))
    return TeleopConfig(
        guard=guard,
        executor=ExecutorConfig.from_mapping(get_mapping(params, "executor", where, {}), f"{where}.executor"),
        stream=StreamConfig.from_mapping(get_mapping(params, "stream", where, {}), f"{where}.stream"),
        retarget=RetargetConfig.from_mapping(get_mapping(params, "retarget", where, {}), f"{where}.retarget"),
        buttons=_buttons(get_mapping(params, "buttons", where, {}), f"{where}.buttons"),
        webxr=webxr,
        operator=get_str(params, "operator", where, ""),
        observation_hz=get_float(params, "observation_hz", where, 30.0, positive=True),
    )


def load_teleop_config(name: str = "teleop.yaml") -> TeleopConfig:
    """Read config/teleop.yaml (or another file of the same layout)."""
    return parse_teleop_config(node_params(load_yaml(name), "teleop"), f"{name}: teleop")
