"""Building the whole rig (cameras, arms, grippers) from config/rig.yaml, real or as its MuJoCo twin.

Driver modules are imported lazily by device type, so a machine without a vendor SDK can still build
the parts it has; a missing module or SDK raises a `DeviceError` naming the device and what to install.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from os import PathLike
from types import ModuleType, TracebackType
from typing import Any

from rig.config import ConfigError, load_yaml, node_params
from rig.drivers.base import Arm, Camera, Device, DeviceError, Gripper

log = logging.getLogger(__name__)

RIG_KINDS = ("real", "sim")
GRIPPER_TYPES = ("robotiq_modbus", "flexiv_gripper")


@dataclass
class Rig:
    """The devices of one rig by name; `connect()` opens all of them, `disconnect()` closes all."""

    cameras: dict[str, Camera] = field(default_factory=dict)
    arms: dict[str, Arm] = field(default_factory=dict)
    grippers: dict[str, Gripper] = field(default_factory=dict)

    def devices(self) -> Iterator[tuple[str, str, Device]]:
        """(kind, name, device) in connect order: cameras, arms, then grippers (they may use the arm)."""
        for kind, group in (("camera", self.cameras), ("arm", self.arms), ("gripper", self.grippers)):
            for name, device in group.items():
                yield kind, name, device

    def connect(self) -> None:
        """Connect every device; on a failure, disconnect those already connected and re-raise."""
        done: list[Device] = []
        for kind, name, device in self.devices():
            try:
                device.connect()
            except Exception as exc:
                for opened in reversed(done):
                    _quiet_disconnect(opened)
                raise DeviceError(_labelled(kind, name, exc)) from exc
            done.append(device)

    def disconnect(self) -> None:
        """Disconnect every device in reverse order; raises one DeviceError listing all failures."""
        failures = []
        for kind, name, device in reversed(list(self.devices())):
            try:
                device.disconnect()
            except Exception as exc:
                failures.append(_labelled(kind, name, exc))
        if failures:
            raise DeviceError("; ".join(failures))

    def __enter__(self) -> Rig:
        self.connect()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.disconnect()


def _labelled(kind: str, name: str, exc: BaseException) -> str:
    message = str(exc)
    prefix = f"{kind} {name}"
    return message if message.startswith(prefix) else f"{prefix}: {message}"


def _quiet_disconnect(device: Device) -> None:
    try:
        device.disconnect()
    except Exception as exc:
        log.warning("%s: disconnect after a failed rig connect: %s", getattr(device, "name", device), exc)


def _driver_module(module: str, kind: str, name: str, hint: str) -> ModuleType:
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        if exc.name == module:
            hint = "the module is not part of this installation"
        raise DeviceError(f"{kind} {name}: driver module {module} cannot be imported ({exc}); {hint}") from exc


def _load(config: str | PathLike[str] | Mapping[str, Any]) -> tuple[dict[str, Any], str]:
    if isinstance(config, Mapping):
        return dict(config), "rig config"
    return load_yaml(config), str(config)


def _section(data: Mapping[str, Any], name: str) -> dict[str, Any]:
    """Entries of a ROS parameter section without the values merged in from `/**`."""
    shared = node_params(dict(data), "/**")
    return {k: v for k, v in node_params(dict(data), name).items() if not (k in shared and v == shared[k])}


def build_rig(
    config: str | PathLike[str] | Mapping[str, Any] = "rig.yaml",
    rig: str = "real",
    sim_overrides: Mapping[str, Any] | None = None,
) -> Rig:
    """Construct (without connecting) every device of the rig; `rig` is "real" or "sim".

    "real" reads `config` (config/rig.yaml layout). "sim" builds the MuJoCo twin from config/sim.yaml
    with `sim_overrides` merged over it (e.g. `{"clock": "realtime"}`); the real rig's serials do not
    apply to it, so `config` is not read.
    """
    if rig == "sim":
        sim = _driver_module("rig.sim.devices", "rig", "sim", "the MuJoCo twin needs `pip install -e '.[sim]'`")
        cameras, arms, grippers = sim.make_sim_rig(dict(sim_overrides or {}))
        return Rig(dict(cameras), dict(arms), dict(grippers))
    if rig != "real":
        raise ConfigError(f"rig {rig!r}: expected one of {list(RIG_KINDS)}")
    data, origin = _load(config)
    arms = _real_arms(data, origin)
    return Rig(_real_cameras(data, origin), arms, _real_grippers(data, origin, arms))


def _real_cameras(data: Mapping[str, Any], origin: str) -> dict[str, Camera]:
    section = _section(data, "cameras")
    if not section:
        return {}
    first = next(iter(section))
    realsense = _driver_module(
        "rig.drivers.realsense", "camera", first, "install pyrealsense2 (`pip install pyrealsense2`)"
    )
    configs = {
        name: realsense.RealSenseConfig.from_dict(name, entry, where=f"{origin} cameras.{name}")
        for name, entry in section.items()
    }
    source = realsense.ContextSource()  # one librealsense context shared by all cameras
    return {name: realsense.RealSenseCamera(cfg, source) for name, cfg in configs.items()}


def _real_arms(data: Mapping[str, Any], origin: str) -> dict[str, Arm]:
    arms: dict[str, Arm] = {}
    for name, entry in _section(data, "arms").items():
        where = f"{origin} arms.{name}"
        kind = entry.get("type", "flexiv") if isinstance(entry, Mapping) else None
        if kind != "flexiv":
            raise ConfigError(f"{where}.type: {kind!r}, expected 'flexiv'")
        flexiv = _driver_module(
            "rig.drivers.flexiv", "arm", name, "install the Flexiv RDK with `pip install -e '.[flexiv]'`"
        )
        arms[name] = flexiv.FlexivArm(flexiv.FlexivArmConfig.from_dict(name, entry, where=where))
    return arms


def _real_grippers(data: Mapping[str, Any], origin: str, arms: Mapping[str, Arm]) -> dict[str, Gripper]:
    grippers: dict[str, Gripper] = {}
    for name, entry in _section(data, "grippers").items():
        where = f"{origin} grippers.{name}"
        kind = entry.get("type") if isinstance(entry, Mapping) else None
        if kind == "robotiq_modbus":
            robotiq = _driver_module("rig.drivers.robotiq", "gripper", name, "the Robotiq driver is missing")
            grippers[name] = robotiq.RobotiqGripper(robotiq.RobotiqConfig.from_dict(name, entry))
        elif kind == "flexiv_gripper":
            module = _driver_module(
                "rig.drivers.flexiv_gripper",
                "gripper",
                name,
                "install the Flexiv RDK with `pip install -e '.[flexiv]'`",
            )
            arm = arms.get(name)
            if arm is None or type(arm).__name__ != "FlexivArm":
                raise ConfigError(
                    f"{where}.type: 'flexiv_gripper' runs through the Flexiv arm of the same name, "
                    f"but arms.{name} is {'missing' if arm is None else type(arm).__name__}"
                )
            grippers[name] = module.FlexivGripper(module.FlexivGripperConfig.from_dict(name, entry, where=where), arm)
        else:
            raise ConfigError(f"{where}.type: {kind!r}, expected one of {list(GRIPPER_TYPES)}")
    return grippers
