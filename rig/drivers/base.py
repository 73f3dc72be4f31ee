"""One abstract interface per device kind. Real drivers and the MuJoCo twin implement these, so every
component above (executor, guard, recorder, policy loop, ROS nodes) runs unchanged on either.

All samples carry host monotonic time (`time.monotonic()`), corrected by the device's latency.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from types import TracebackType

import numpy as np
from numpy.typing import NDArray

from rig.schema import ArmState, CameraFrame, CameraIntrinsics, GripperState


class DeviceError(RuntimeError):
    """A device cannot be reached or reports a fault; the message names the device."""


@dataclass
class DeviceStats:
    """Counters every driver keeps: samples delivered, samples lost, and the measured rate."""

    samples: int = 0
    dropped: int = 0
    rate_hz: float = 0.0
    errors: int = 0
    extra: dict[str, float] = field(default_factory=dict)


class Device(ABC):
    """Common lifecycle: connect, disconnect, context manager, counters."""

    name: str

    @abstractmethod
    def connect(self) -> None:
        """Open the device; raises DeviceError naming the device on failure."""

    @abstractmethod
    def disconnect(self) -> None:
        """Release the device; safe to call twice."""

    @property
    @abstractmethod
    def is_connected(self) -> bool: ...

    def stats(self) -> DeviceStats:
        return DeviceStats()

    def __enter__(self) -> Device:
        self.connect()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.disconnect()


class Camera(Device):
    """A colour camera (optionally with aligned depth) delivering timestamped frames."""

    @property
    @abstractmethod
    def intrinsics(self) -> CameraIntrinsics: ...

    @abstractmethod
    def latest(self) -> CameraFrame | None:
        """Newest frame captured so far, without waiting (None before the first frame)."""

    @abstractmethod
    def wait_frame(self, newer_than: float, timeout: float) -> CameraFrame:
        """Block until a frame with `t > newer_than` exists; DeviceError after `timeout` seconds."""


class Arm(Device):
    """A 7-DoF arm streamed with Cartesian targets in its own base frame."""

    max_command_hz: float = 100.0

    @abstractmethod
    def read_state(self) -> ArmState:
        """Latest state (joints, wrench, TCP pose)."""

    @abstractmethod
    def send_pose(self, pose: NDArray[np.float64]) -> None:
        """Stream one Cartesian target [x, y, z, qx, qy, qz, qw] (metres, scalar-last quaternion)."""

    @abstractmethod
    def in_fault(self) -> bool:
        """True while the arm reports a fault; nothing is sent until `recover()` succeeds."""

    @abstractmethod
    def recover(self) -> None:
        """Explicit operator action: clear the fault and re-enable; DeviceError if it stays faulted."""

    @abstractmethod
    def stop(self) -> None:
        """Stop motion now and hold position."""


class Gripper(Device):
    """A parallel gripper commanded by opening in [0, 1] (1 = fully open)."""

    @abstractmethod
    def read_state(self) -> GripperState: ...

    @abstractmethod
    def command(self, opening: float, speed: float | None = None, force: float | None = None) -> None:
        """Move towards `opening`; speed in m/s and force in N when given, else configured defaults."""
