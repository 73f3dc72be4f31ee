"""Validated data types that cross package boundaries: camera frames, arm and gripper states,
synchronized multi-view observations and the `(T, 2, 8)` command chunk.

Every type checks itself on construction and raises `SchemaError` naming the field, the value's
problem and what was expected. Arrays are kept as given (no copies) when they already have the right
dtype, so a camera frame can wrap a capture buffer directly.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from rig.conventions import (
    ARM_NAMES,
    CAMERA_NAMES,
    COMMAND_DIM,
    JOINTS_PER_ARM,
    POSE_DIM,
)
from rig.rotations import UNIT_QUAT_TOL, quat_norm_error


class SchemaError(ValueError):
    """A value does not satisfy the shared data contract; the message names the field."""


def _array(
    name: str,
    value: object,
    shape: tuple[int | None, ...],
    dtype: type | np.dtype = np.float64,
    finite: bool = True,
) -> NDArray:
    """Return `value` as an array of `dtype` and `shape` (None = any size), or raise naming `name`."""
    try:
        arr = np.asarray(value, dtype=dtype)
    except (TypeError, ValueError) as exc:
        raise SchemaError(f"{name}: cannot convert to {np.dtype(dtype).name} array ({exc})") from None
    if arr.ndim != len(shape) or any(s is not None and s != a for s, a in zip(shape, arr.shape)):
        want = "(" + ", ".join("N" if s is None else str(s) for s in shape) + ")"
        raise SchemaError(f"{name}: shape {arr.shape}, expected {want}")
    if finite and arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
        bad = np.argwhere(~np.isfinite(arr))[0]
        raise SchemaError(f"{name}: non-finite value {arr[tuple(bad)]} at index {tuple(int(i) for i in bad)}")
    return arr


def _time(name: str, value: object) -> float:
    try:
        t = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise SchemaError(f"{name}: expected a time in seconds, got {value!r}") from None
    if not np.isfinite(t):
        raise SchemaError(f"{name}: non-finite time {t}")
    return t


def _unit_quats(name: str, quat: NDArray) -> None:
    err = quat_norm_error(quat)
    if np.any(err > UNIT_QUAT_TOL):
        idx = tuple(int(i) for i in np.argwhere(err > UNIT_QUAT_TOL)[0]) if err.ndim else ()
        norm = float(np.linalg.norm(np.asarray(quat)[idx], axis=-1))
        raise SchemaError(
            f"{name}: quaternion at index {idx} has norm {norm:.6f}, expected a unit quaternion "
            f"(qx, qy, qz, qw) within {UNIT_QUAT_TOL}"
        )


def _choice(name: str, value: str, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise SchemaError(f"{name}: {value!r} is not one of {list(allowed)}")
    return value


@dataclass(frozen=True)
class CameraIntrinsics:
    """Pinhole intrinsics of a colour stream (pixels) with Brown-Conrady distortion coefficients."""

    width: int
    height: int
    fx: float
    fy: float
    cx: float
    cy: float
    coeffs: tuple[float, ...] = (0.0, 0.0, 0.0, 0.0, 0.0)

    def __post_init__(self) -> None:
        if self.width <= 0 or self.height <= 0:
            raise SchemaError(f"intrinsics.width/height: {self.width}x{self.height}, expected positive")
        for key in ("fx", "fy"):
            if not np.isfinite(getattr(self, key)) or getattr(self, key) <= 0:
                raise SchemaError(f"intrinsics.{key}: {getattr(self, key)}, expected a positive focal length")

    def matrix(self) -> NDArray[np.float64]:
        """3x3 camera matrix K."""
        return np.array([[self.fx, 0.0, self.cx], [0.0, self.fy, self.cy], [0.0, 0.0, 1.0]])


@dataclass(frozen=True)
class CameraFrame:
    """One colour image (H, W, 3) uint8 RGB, optional depth (H, W) uint16 aligned to colour.

    `t` is host monotonic time at exposure (latency-corrected); `device_t` the device's own stamp.
    """

    camera: str
    t: float
    color: NDArray[np.uint8]
    frame_number: int = 0
    device_t: float = float("nan")
    depth: NDArray[np.uint16] | None = None
    depth_scale: float = 0.001

    def __post_init__(self) -> None:
        object.__setattr__(self, "t", _time(f"{self.camera}.t", self.t))
        color = self.color
        if not isinstance(color, np.ndarray) or color.dtype != np.uint8:
            color = _array(f"{self.camera}.color", color, (None, None, 3), np.uint8)
        elif color.ndim != 3 or color.shape[2] != 3:
            raise SchemaError(f"{self.camera}.color: shape {color.shape}, expected (H, W, 3) RGB")
        object.__setattr__(self, "color", color)
        if self.depth is not None:
            depth = _array(f"{self.camera}.depth", self.depth, color.shape[:2], np.uint16)
            object.__setattr__(self, "depth", depth)


@dataclass(frozen=True)
class ArmState:
    """State of one arm in its own base frame: joints (7), external wrench (6), TCP pose (7)."""

    arm: str
    t: float
    q: NDArray[np.float64]
    dq: NDArray[np.float64]
    tau: NDArray[np.float64]
    tcp_pose: NDArray[np.float64]
    tau_ext: NDArray[np.float64] = field(default_factory=lambda: np.zeros(JOINTS_PER_ARM))
    ext_wrench: NDArray[np.float64] = field(default_factory=lambda: np.zeros(6))
    tcp_vel: NDArray[np.float64] = field(default_factory=lambda: np.zeros(6))
    fault: bool = False

    def __post_init__(self) -> None:
        _choice("arm", self.arm, ARM_NAMES)
        object.__setattr__(self, "t", _time(f"{self.arm}.t", self.t))
        for key in ("q", "dq", "tau", "tau_ext"):
            object.__setattr__(self, key, _array(f"{self.arm}.{key}", getattr(self, key), (JOINTS_PER_ARM,)))
        for key in ("ext_wrench", "tcp_vel"):
            object.__setattr__(self, key, _array(f"{self.arm}.{key}", getattr(self, key), (6,)))
        pose = _array(f"{self.arm}.tcp_pose", self.tcp_pose, (POSE_DIM,))
        _unit_quats(f"{self.arm}.tcp_pose[3:7]", pose[3:7])
        object.__setattr__(self, "tcp_pose", pose)


@dataclass(frozen=True)
class GripperState:
    """Gripper state: opening in [0, 1] (1 = open), measured width, motion and grasp flags."""

    arm: str
    t: float
    opening: float
    width_m: float
    is_moving: bool = False
    object_detected: bool = False
    fault: bool = False

    def __post_init__(self) -> None:
        _choice("arm", self.arm, ARM_NAMES)
        object.__setattr__(self, "t", _time(f"{self.arm}.gripper.t", self.t))
        opening = float(self.opening)
        if not np.isfinite(opening) or not -1e-6 <= opening <= 1.0 + 1e-6:
            raise SchemaError(f"{self.arm}.gripper.opening: {opening}, expected a value in [0, 1]")
        object.__setattr__(self, "opening", min(max(opening, 0.0), 1.0))
        if not np.isfinite(float(self.width_m)) or self.width_m < -1e-4:
            raise SchemaError(f"{self.arm}.gripper.width_m: {self.width_m}, expected metres >= 0")


@dataclass(frozen=True)
class Observation:
    """A synchronized multi-view observation: one frame per camera, one state per arm and gripper.

    `t` is the reference time the set was synchronized to (the newest frame's time).
    """

    t: float
    frames: Mapping[str, CameraFrame]
    arms: Mapping[str, ArmState]
    grippers: Mapping[str, GripperState]
    task: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "t", _time("observation.t", self.t))
        for name, frame in self.frames.items():
            _choice("observation.frames key", name, CAMERA_NAMES)
            if frame.camera != name:
                raise SchemaError(f"observation.frames[{name!r}]: holds a frame of camera {frame.camera!r}")
        for kind, states in (("arms", self.arms), ("grippers", self.grippers)):
            for name, state in states.items():
                _choice(f"observation.{kind} key", name, ARM_NAMES)
                if state.arm != name:
                    raise SchemaError(f"observation.{kind}[{name!r}]: holds the state of arm {state.arm!r}")

    def max_skew(self) -> float:
        """Largest time difference between any sample in the set and `t` (seconds)."""
        times = [f.t for f in self.frames.values()] + [a.t for a in self.arms.values()]
        return max((abs(x - self.t) for x in times), default=0.0)


@dataclass(frozen=True)
class CommandChunk:
    """Absolute targets `(T, 2, 8)`: per step and arm (left, right) position (3), quaternion
    (qx, qy, qz, qw) and gripper opening in [0, 1]; step k is due at `t0 + k * dt`.
    """

    targets: NDArray[np.float64]
    t0: float
    dt: float

    def __post_init__(self) -> None:
        arr = _array("chunk.targets", self.targets, (None, len(ARM_NAMES), COMMAND_DIM))
        if arr.shape[0] == 0:
            raise SchemaError("chunk.targets: shape (0, 2, 8), expected at least one step")
        _unit_quats("chunk.targets[..., 3:7]", arr[..., 3:7])
        grip = arr[..., 7]
        if np.any((grip < -1e-6) | (grip > 1.0 + 1e-6)):
            idx = tuple(int(i) for i in np.argwhere((grip < -1e-6) | (grip > 1.0 + 1e-6))[0])
            raise SchemaError(f"chunk.targets[..., 7]: gripper opening {grip[idx]} at (step, arm) {idx}, "
                              "expected a value in [0, 1]")
        object.__setattr__(self, "targets", arr)
        object.__setattr__(self, "t0", _time("chunk.t0", self.t0))
        dt = _time("chunk.dt", self.dt)
        if dt <= 0:
            raise SchemaError(f"chunk.dt: {dt}, expected a positive step period in seconds")
        object.__setattr__(self, "dt", dt)

    @property
    def steps(self) -> int:
        return int(self.targets.shape[0])

    def times(self) -> NDArray[np.float64]:
        """Due time of each step (host monotonic seconds)."""
        return self.t0 + self.dt * np.arange(self.steps)

    def arm(self, name: str) -> NDArray[np.float64]:
        """(T, 8) targets of one arm."""
        return self.targets[:, ARM_NAMES.index(_choice("arm", name, ARM_NAMES))]
