"""Settings of a Flexiv Rizon arm (the `arms:` section of config/rig.yaml) and the pose-order conversion
between the stack's `[x, y, z, qx, qy, qz, qw]` and Flexiv's `[x, y, z, qw, qx, qy, qz]` (the only
place in the stack that converts it). Used by `rig.drivers.flexiv.FlexivArm`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from rig import hardware_limits as hw
from rig.config import ConfigError, load_yaml, node_params
from rig.conventions import ARM_NAMES, ARM_STATE_MIN_HZ, POSE_DIM
from rig.params import get_bool, get_float, get_floats, get_int, get_mapping, get_str, reject_unknown
from rig.rotations import UNIT_QUAT_TOL, normalize_quat, quat_norm_error

FLEXIV_MAX_COMMAND_HZ = 100.0
"""Upper bound of the NRT command rate the Python examples of RDK v1.x accept (1-100 Hz)."""

_ARM_KEYS = {
    "type", "serial", "command_hz", "state_hz", "state_latency_s", "max_linear_vel", "max_angular_vel",
    "max_linear_acc", "max_angular_acc", "home_plan", "tool", "enable_timeout_s", "home_timeout_s",
    "clear_fault_timeout_s", "command_jitter_tolerance", "max_contact_wrench", "zero_ft_sensor",
    "zero_ft_timeout_s", "state_timeout_s", "first_state_timeout_s", "first_target_tolerance_m",
    "first_target_tolerance_rad",
}
_TOOL_KEYS = {"name", "mass", "com", "inertia", "tcp"}


# ------------------------------------------------------------------------------------------------
# Pose order conversion (the only place in the stack)


def pose_to_flexiv(pose: ArrayLike) -> list[float]:
    """[x, y, z, qx, qy, qz, qw] -> Flexiv [x, y, z, qw, qx, qy, qz] (unit quaternion, qw >= 0)."""
    p = np.asarray(pose, dtype=np.float64)
    q = normalize_quat(p[3:7])
    return [float(p[0]), float(p[1]), float(p[2]), float(q[3]), float(q[0]), float(q[1]), float(q[2])]


def pose_from_flexiv(flexiv_pose: ArrayLike) -> NDArray[np.float64]:
    """Flexiv [x, y, z, qw, qx, qy, qz] -> [x, y, z, qx, qy, qz, qw] (unit quaternion, qw >= 0)."""
    f = np.asarray(flexiv_pose, dtype=np.float64)
    quat = normalize_quat(np.array([f[4], f[5], f[6], f[3]]))
    return np.concatenate([f[:3], quat])


# ------------------------------------------------------------------------------------------------
# Configuration


@dataclass(frozen=True)
class FlexivToolConfig:
    """Tool mounted on the flange: mass kg, CoM m (flange frame), inertia [Ixx, Iyy, Izz, Ixy, Ixz,
    Iyz] kg m^2 at the CoM, TCP pose in the flange frame [x, y, z, qx, qy, qz, qw].
    """

    name: str
    mass: float
    com: tuple[float, float, float]
    inertia: tuple[float, ...] = (0.0,) * 6
    tcp: tuple[float, ...] = (0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], where: str) -> FlexivToolConfig:
        reject_unknown(d, _TOOL_KEYS, where)
        tcp = get_floats(d, "tcp", where, POSE_DIM, default=[0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0])
        if float(quat_norm_error(tcp[3:7])) > UNIT_QUAT_TOL:
            raise ConfigError(f"{where}.tcp: quaternion {tcp[3:7]} is not unit length (qx, qy, qz, qw)")
        name = get_str(d, "name", where)
        if not name or name == "Flange":
            raise ConfigError(f"{where}.name: {name!r}, expected a tool name other than '' and 'Flange'")
        return cls(
            name=name,
            mass=get_float(d, "mass", where, low=0.0, high=10.0),
            com=get_floats(d, "com", where, 3),  # type: ignore[arg-type]
            inertia=get_floats(d, "inertia", where, 6, default=[0.0] * 6),
            tcp=tcp,
        )


@dataclass(frozen=True)
class FlexivArmConfig:
    """Settings of one Flexiv arm, read from the `arms:` section of config/rig.yaml."""

    name: str
    serial: str
    command_hz: float = 100.0
    state_hz: float = 200.0
    state_latency_s: float = 0.001
    max_linear_vel: float = 0.25
    max_angular_vel: float = 1.0
    max_linear_acc: float = 1.0
    max_angular_acc: float = 3.0
    home_plan: str = ""
    tool: FlexivToolConfig | None = None
    enable_timeout_s: float = 10.0
    home_timeout_s: float = 60.0
    clear_fault_timeout_s: int = 30
    command_jitter_tolerance: float = 1.0
    max_contact_wrench: tuple[float, ...] = (20.0, 20.0, 20.0, 3.0, 3.0, 3.0)
    """[fx, fy, fz, mx, my, mz] N and Nm: `SetMaxContactWrench` of the motion-controlled axes."""
    zero_ft_sensor: bool = True
    """Run the ZeroFTSensor primitive at startup (the arm must be still and touch nothing)."""
    zero_ft_timeout_s: float = 10.0
    state_timeout_s: float = 0.1
    """The robot timestamp must advance within this time, else the link is taken as lost (fault)."""
    first_state_timeout_s: float = 3.0
    """Wait at most this long after `Robot()` for the first complete state packet."""
    first_target_tolerance_m: float = 0.01
    first_target_tolerance_rad: float = 0.05
    """The first target after (re)starting streaming must lie this close to the measured TCP pose."""
    where: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        where = self.where or f"arms.{self.name}"
        if self.name not in ARM_NAMES:
            raise ConfigError(f"{where}: arm name {self.name!r}, expected one of {list(ARM_NAMES)}")
        if not 0.0 < self.command_hz <= FLEXIV_MAX_COMMAND_HZ:
            raise ConfigError(
                f"{where}.command_hz: {self.command_hz}, expected (0, {FLEXIV_MAX_COMMAND_HZ}] Hz "
                "(flexivrdk NRT commands are accepted at 1-100 Hz)"
            )
        if self.state_hz < ARM_STATE_MIN_HZ:
            raise ConfigError(f"{where}.state_hz: {self.state_hz}, expected >= {ARM_STATE_MIN_HZ} Hz")
        for key in ("max_linear_vel", "max_angular_vel", "max_linear_acc", "max_angular_acc",
                    "enable_timeout_s", "home_timeout_s"):
            if not getattr(self, key) > 0.0:
                raise ConfigError(f"{where}.{key}: {getattr(self, key)}, expected a value > 0")
        for key, high in (("max_linear_vel", hw.RIZON4S_MAX_LINEAR_VEL),
                          ("max_angular_vel", hw.RIZON4S_MAX_ANGULAR_VEL),
                          ("max_linear_acc", hw.RIZON4S_MAX_LINEAR_ACC), ("max_angular_acc", hw.MAX_ANGULAR_ACC)):
            if getattr(self, key) > high:  # rig/hardware_limits.py cites the Rizon 4S figures
                raise ConfigError(f"{where}.{key}: {getattr(self, key)}, expected at most {high:.3g} (Rizon 4S limit)")
        if len(self.max_contact_wrench) != 6 or any(not v > 0.0 for v in self.max_contact_wrench):
            raise ConfigError(f"{where}.max_contact_wrench: {list(self.max_contact_wrench)}, expected 6 positive "
                              "values [fx, fy, fz, mx, my, mz] in N and Nm")
        for key in ("zero_ft_timeout_s", "state_timeout_s", "first_state_timeout_s",
                    "first_target_tolerance_m", "first_target_tolerance_rad"):
            if not getattr(self, key) > 0.0:
                raise ConfigError(f"{where}.{key}: {getattr(self, key)}, expected a value > 0")
        if not 0.0 <= self.command_jitter_tolerance <= 2.0:
            raise ConfigError(f"{where}.command_jitter_tolerance: {self.command_jitter_tolerance}, "
                              "expected a number of command periods in [0, 2]")

    @classmethod
    def from_dict(cls, name: str, d: Mapping[str, Any], where: str | None = None) -> FlexivArmConfig:
        """Build from one arm's mapping (`arms: ros__parameters: <name>:`); errors name the field."""
        where = where or f"config/rig.yaml arms.{name}"
        if not isinstance(d, Mapping):
            raise ConfigError(f"{where}: {d!r}, expected a mapping")
        reject_unknown(d, _ARM_KEYS, where)
        kind = get_str(d, "type", where, default="flexiv")
        if kind != "flexiv":
            raise ConfigError(f"{where}.type: {kind!r}, expected 'flexiv' for FlexivArm")
        tool_d = d.get("tool")
        tool = None if tool_d is None else FlexivToolConfig.from_dict(
            get_mapping(d, "tool", where), f"{where}.tool")
        return cls(
            name=name,
            serial=get_str(d, "serial", where),
            command_hz=get_float(d, "command_hz", where, default=100.0, positive=True),
            state_hz=get_float(d, "state_hz", where, default=200.0, positive=True),
            state_latency_s=get_float(d, "state_latency_s", where, default=0.001, low=0.0, high=1.0),
            max_linear_vel=get_float(d, "max_linear_vel", where, positive=True),
            max_angular_vel=get_float(d, "max_angular_vel", where, positive=True),
            max_linear_acc=get_float(d, "max_linear_acc", where, positive=True),
            max_angular_acc=get_float(d, "max_angular_acc", where, positive=True),
            home_plan=get_str(d, "home_plan", where, default=""),
            tool=tool,
            enable_timeout_s=get_float(d, "enable_timeout_s", where, default=10.0, positive=True),
            home_timeout_s=get_float(d, "home_timeout_s", where, default=60.0, positive=True),
            clear_fault_timeout_s=get_int(d, "clear_fault_timeout_s", where, default=30, low=1, high=300),
            command_jitter_tolerance=get_float(d, "command_jitter_tolerance", where, default=1.0),
            max_contact_wrench=get_floats(d, "max_contact_wrench", where, 6),
            zero_ft_sensor=get_bool(d, "zero_ft_sensor", where, default=True),
            zero_ft_timeout_s=get_float(d, "zero_ft_timeout_s", where, default=10.0, positive=True),
            state_timeout_s=get_float(d, "state_timeout_s", where, default=0.1, positive=True),
            first_state_timeout_s=get_float(d, "first_state_timeout_s", where, default=3.0, positive=True),
            first_target_tolerance_m=get_float(d, "first_target_tolerance_m", where, default=0.01,
                                               positive=True),
            first_target_tolerance_rad=get_float(d, "first_target_tolerance_rad", where, default=0.05,
                                                 positive=True),
            where=where,
        )

    @classmethod
    def from_rig_yaml(cls, name: str, path: str = "rig") -> FlexivArmConfig:
        """Read arm `name` from the `arms:` section of a rig YAML (default config/rig.yaml)."""
        arms = node_params(load_yaml(path), "arms")
        if name not in arms:
            raise ConfigError(f"{path}: arms.{name} not found (present: {sorted(arms)})")
        return cls.from_dict(name, arms[name], where=f"{path} arms.{name}")
