"""Gripper driven through the Flexiv controller (`flexivrdk.Gripper`, RDK v1.x), as an alternative to
driving a Robotiq 2F-85 directly over Modbus RTU (`rig.drivers.robotiq`).

Selected with `type: flexiv_gripper` in the `grippers:` section of config/rig.yaml. The robot allows one
normal RDK connection, so the gripper shares the `flexivrdk.Robot` of its arm's `FlexivArm`.
Opening in [0, 1] maps to finger width with `rig.conventions` (1 = 0.085 m); widths, speeds and
forces are clipped to the ranges the enabled gripper reports in `params()`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from rig.config import ConfigError, load_yaml, node_params
from rig.conventions import ARM_NAMES, opening_to_width, width_to_opening
from rig.drivers.base import DeviceError, Gripper
from rig.drivers.flexiv import SDK_ERRORS, FlexivArm
from rig.params import get_float, get_str, reject_unknown
from rig.schema import GripperState

log = logging.getLogger(__name__)

_KEYS = {"type", "device_name", "speed", "force", "init", "latency_s", "grasp_tolerance_m"}


@dataclass(frozen=True)
class FlexivGripperConfig:
    """Settings of a gripper enabled as a Flexiv device (`grippers: ros__parameters: <arm>:`)."""

    name: str
    device_name: str
    speed: float = 0.1
    force: float = 20.0
    init: bool = False
    latency_s: float = 0.0
    grasp_tolerance_m: float = 0.002
    where: str = ""

    def __post_init__(self) -> None:
        if self.name not in ARM_NAMES:
            raise ConfigError(f"{self.where or 'grippers'}: name {self.name!r}, expected one of {list(ARM_NAMES)}")

    @classmethod
    def from_dict(cls, name: str, d: Mapping[str, Any], where: str | None = None) -> FlexivGripperConfig:
        where = where or f"config/rig.yaml grippers.{name}"
        reject_unknown(d, _KEYS, where)
        kind = get_str(d, "type", where)
        if kind != "flexiv_gripper":
            raise ConfigError(f"{where}.type: {kind!r}, expected 'flexiv_gripper' for FlexivGripper")
        init = d.get("init", False)
        if not isinstance(init, bool):
            raise ConfigError(f"{where}.init: {init!r}, expected true or false")
        return cls(
            name=name,
            device_name=get_str(d, "device_name", where),
            speed=get_float(d, "speed", where, default=0.1, positive=True),
            force=get_float(d, "force", where, default=20.0, positive=True),
            init=init,
            latency_s=get_float(d, "latency_s", where, default=0.0, low=0.0, high=1.0),
            grasp_tolerance_m=get_float(d, "grasp_tolerance_m", where, default=0.002, low=0.0, high=0.05),
            where=where,
        )

    @classmethod
    def from_rig_yaml(cls, name: str, path: str = "rig") -> FlexivGripperConfig:
        grippers = node_params(load_yaml(path), "grippers")
        if name not in grippers:
            raise ConfigError(f"{path}: grippers.{name} not found (present: {sorted(grippers)})")
        return cls.from_dict(name, grippers[name], where=f"{path} grippers.{name}")


class FlexivGripper(Gripper):
    """A gripper enabled as a device on the Flexiv controller of `arm` (connect the arm first)."""

    def __init__(self, config: FlexivGripperConfig, arm: FlexivArm) -> None:
        self.config = config
        self.name = config.name
        self._arm = arm
        self._gripper: Any = None
        self._params: Any = None
        self._target_width: float | None = None
        self._closing = False

    @property
    def is_connected(self) -> bool:
        return self._gripper is not None

    def connect(self) -> None:
        if self._gripper is not None:
            return
        cfg = self.config
        try:
            gripper = self._arm.sdk.Gripper(self._arm.sdk_robot)
            gripper.Enable(cfg.device_name)
            if cfg.init:
                gripper.Init()
        except SDK_ERRORS as exc:
            raise DeviceError(f"gripper {self.name}: cannot enable Flexiv gripper device "
                              f"{cfg.device_name!r}: {exc}") from exc
        self._gripper = gripper
        self._params = gripper.params()
        log.info("gripper %s: Flexiv device %r enabled (width %.3f-%.3f m)", self.name, cfg.device_name,
                 self._params.min_width, self._params.max_width)

    def disconnect(self) -> None:
        gripper, self._gripper = self._gripper, None
        if gripper is None:
            return
        try:
            gripper.Stop()
            gripper.Disable()
        except SDK_ERRORS as exc:
            log.warning("gripper %s: stop/disable at disconnect failed: %s", self.name, exc)

    def _require(self) -> Any:
        if self._gripper is None:
            raise DeviceError(f"gripper {self.name}: not connected")
        return self._gripper

    @staticmethod
    def _clip(value: float, low: float, high: float) -> float:
        return min(max(value, low), high)

    def command(self, opening: float, speed: float | None = None, force: float | None = None) -> None:
        gripper = self._require()
        if not 0.0 <= opening <= 1.0:
            raise ValueError(f"gripper {self.name}: opening {opening}, expected a value in [0, 1]")
        p = self._params
        width = self._clip(opening_to_width(opening), p.min_width, p.max_width)
        vel = self._clip(self.config.speed if speed is None else float(speed), p.min_vel, p.max_vel)
        force_limit = self._clip(self.config.force if force is None else float(force), p.min_force, p.max_force)
        current = gripper.states().width
        try:
            gripper.Move(width, vel, force_limit)
        except SDK_ERRORS as exc:
            raise DeviceError(f"gripper {self.name}: Move({width:.4f}, {vel:.3f}, {force_limit:.1f}) "
                              f"failed: {exc}") from exc
        self._target_width = width
        self._closing = width < current

    def stop(self) -> None:
        """Stop the fingers and hold the current width."""
        try:
            self._require().Stop()
        except SDK_ERRORS as exc:
            raise DeviceError(f"gripper {self.name}: Stop() failed: {exc}") from exc

    def read_state(self) -> GripperState:
        try:
            s = self._require().states()
        except SDK_ERRORS as exc:
            raise DeviceError(f"gripper {self.name}: states() failed: {exc}") from exc
        now = time.monotonic()
        # flexivrdk reports no grasp flag: a stop short of a closing target is taken as a grasp.
        detected = (
            not s.is_moving
            and self._closing
            and self._target_width is not None
            and s.width - self._target_width > self.config.grasp_tolerance_m
        )
        return GripperState(
            arm=self.name,
            t=now - self.config.latency_s,
            opening=width_to_opening(s.width),
            width_m=max(0.0, float(s.width)),
            is_moving=bool(s.is_moving),
            object_detected=bool(detected),
        )
