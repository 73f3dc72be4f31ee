"""Typed settings of the shadow predictor (config/shadow.yaml, `shadow:`), read with rig/params.py."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any

from rig.config import ConfigError, load_yaml
from rig.conventions import CAMERA_NAMES
from rig.params import get_float, get_int, get_mapping, get_str, reject_unknown
from worldmodel.metrics import METRIC_NAMES, FlowParams

DIVERGENCE_ACTIONS = ("alert", "hold")


def _names(cls: type) -> set[str]:
    return {f.name for f in fields(cls)}


def _bool(d: Mapping[str, Any], key: str, where: str, default: bool) -> bool:
    value = d.get(key, default)
    if not isinstance(value, bool):
        raise ConfigError(f"{where}.{key}: {value!r}, expected true or false")
    return value


@dataclass(frozen=True)
class DivergenceConfig:
    """When an error counts as divergence and what happens then (worldmodel/shadow/divergence.py)."""

    metric: str = "flow_epe"
    threshold: float | None = None
    higher_is_worse: bool = True
    hold_s: float = 1.0
    action: str = "alert"

    @classmethod
    def from_mapping(cls, d: Mapping[str, Any], where: str = "shadow.divergence") -> DivergenceConfig:
        reject_unknown(d, _names(cls), where)
        base = cls()
        metric = get_str(d, "metric", where, base.metric)
        if metric not in METRIC_NAMES:
            raise ConfigError(f"{where}.metric: {metric!r}, expected one of {list(METRIC_NAMES)}")
        action = get_str(d, "action", where, base.action)
        if action not in DIVERGENCE_ACTIONS:
            raise ConfigError(f"{where}.action: {action!r}, expected one of {list(DIVERGENCE_ACTIONS)}")
        threshold = None if d.get("threshold") is None else get_float(d, "threshold", where)
        return cls(metric, threshold, _bool(d, "higher_is_worse", where, base.higher_is_worse),
                   get_float(d, "hold_s", where, base.hold_s, low=0.0), action)


@dataclass(frozen=True)
class ServerSettings:
    """Where the shadow process listens and how the client queues (wire and security as policy/server.py)."""

    address: str = "tcp://127.0.0.1:5570"
    curve_secret_key_file: str | None = None
    authorized_keys_dir: str | None = None
    send_hwm: int = 8
    max_message_bytes: int = 64 * 1024 * 1024

    @classmethod
    def from_mapping(cls, d: Mapping[str, Any], where: str = "shadow.server") -> ServerSettings:
        reject_unknown(d, _names(cls), where)
        base = cls()
        address = get_str(d, "address", where, base.address)
        if "://" not in address:
            raise ConfigError(f"{where}.address: {address!r}, expected a ZeroMQ endpoint like tcp://HOST:PORT")
        keys = {k: None if d.get(k) is None else get_str(d, k, where) for k in ("curve_secret_key_file",
                                                                            "authorized_keys_dir")}
        return cls(address, keys["curve_secret_key_file"], keys["authorized_keys_dir"],
                   get_int(d, "send_hwm", where, base.send_hwm, low=1),
                   get_int(d, "max_message_bytes", where, base.max_message_bytes, low=1024))


@dataclass(frozen=True)
class ShadowConfig:
    """Everything the shadow predictor reads from config/shadow.yaml (see the comments there)."""

    cameras: tuple[str, ...] = tuple(CAMERA_NAMES)
    horizon_frames: int = 20
    command_offset_steps: int = 1
    match_tolerance_s: float = 0.02
    frame_buffer_s: float = 6.0
    max_pending: int = 4
    sampler_steps: int | None = None
    seed: int = 0
    threads: int | str | None = "auto"
    history: str = "arc_dual"
    nice: int = 10
    flow: FlowParams = field(default_factory=FlowParams)
    divergence: DivergenceConfig = field(default_factory=DivergenceConfig)
    server: ServerSettings = field(default_factory=ServerSettings)

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any] | None, where: str = "shadow") -> ShadowConfig:
        d = dict(data or {})
        reject_unknown(d, _names(cls), where)
        base = cls()
        cams = d.get("cameras", list(base.cameras))
        if not isinstance(cams, (list, tuple)) or not cams or any(c not in CAMERA_NAMES for c in cams):
            raise ConfigError(f"{where}.cameras: {cams!r}, expected a non-empty list from {list(CAMERA_NAMES)}")
        steps = None if d.get("sampler_steps") is None else get_int(d, "sampler_steps", where, low=1)
        try:
            flow = FlowParams.from_mapping(get_mapping(d, "flow", where, {}))
        except ValueError as exc:
            raise ConfigError(f"{where}.flow: {exc}") from None
        threads = d.get("threads", base.threads)
        if threads is not None and not isinstance(threads, (int, str)):
            raise ConfigError(f"{where}.threads: {threads!r}, expected a positive integer or 'auto'")
        return cls(
            cameras=tuple(cams),
            horizon_frames=get_int(d, "horizon_frames", where, base.horizon_frames, low=1),
            command_offset_steps=get_int(d, "command_offset_steps", where, base.command_offset_steps, low=0),
            match_tolerance_s=get_float(d, "match_tolerance_s", where, base.match_tolerance_s, positive=True),
            frame_buffer_s=get_float(d, "frame_buffer_s", where, base.frame_buffer_s, positive=True),
            max_pending=get_int(d, "max_pending", where, base.max_pending, low=1),
            sampler_steps=steps,
            seed=get_int(d, "seed", where, base.seed, low=0),
            threads=threads,
            history=get_str(d, "history", where, base.history),
            nice=get_int(d, "nice", where, base.nice, low=0, high=19),
            flow=flow,
            divergence=DivergenceConfig.from_mapping(get_mapping(d, "divergence", where, {}), f"{where}.divergence"),
            server=ServerSettings.from_mapping(get_mapping(d, "server", where, {}), f"{where}.server"),
        )

    def with_threshold(self, threshold: float | None) -> ShadowConfig:
        return replace(self, divergence=replace(self.divergence, threshold=threshold))


def load_shadow_config(path: str = "shadow.yaml", overrides: Mapping[str, Any] | None = None) -> ShadowConfig:
    """Read `shadow:` from a config file (a name in config/ or a path), with top-level key overrides."""
    data = load_yaml(path)
    section = data.get("shadow")
    if not isinstance(section, Mapping):
        raise ConfigError(f"{path}: no 'shadow:' mapping")
    return ShadowConfig.from_mapping({**section, **(overrides or {})}, f"{path}: shadow")
