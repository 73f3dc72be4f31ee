"""Recording in-memory implementations of `rig.drivers.base.Arm` / `Gripper` / `Camera` for executor,
guard and ROS node tests: the arm follows each commanded pose exactly and records every call; the
camera delivers frames the test captures."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from rig.drivers.base import Arm, Camera, DeviceError, Gripper
from rig.schema import ArmState, CameraFrame, CameraIntrinsics, GripperState

HOME = np.array([0.45, 0.0, 0.30, 1.0, 0.0, 0.0, 0.0])
"""Tool pointing down (180 deg about x) in front of the base."""


class RecordingArm(Arm):
    """An arm whose TCP is wherever it was last commanded; `t` comes from a settable clock."""

    def __init__(self, name: str, pose: NDArray[np.float64] | None = None, clock=None) -> None:
        self.name = name
        self.pose = (HOME if pose is None else np.asarray(pose, dtype=float)).copy()
        self.sent: list[NDArray[np.float64]] = []
        self.stops = 0
        self.recovers = 0
        self.fault = False
        self.fail_recover = False
        self.clock = clock
        self._connected = True

    def connect(self) -> None:
        self._connected = True

    def disconnect(self) -> None:
        self._connected = False

    @property
    def is_connected(self) -> bool:
        return self._connected

    def read_state(self) -> ArmState:
        t = self.clock.now() if self.clock is not None else 0.0
        z = np.zeros(7)
        return ArmState(arm=self.name, t=t, q=z, dq=z, tau=z, tcp_pose=self.pose, fault=self.fault)

    def send_pose(self, pose: NDArray[np.float64]) -> None:
        if self.fault:
            raise DeviceError(f"arm {self.name}: in fault, command refused")
        self.pose = np.asarray(pose, dtype=float).copy()
        self.sent.append(self.pose.copy())

    def in_fault(self) -> bool:
        return self.fault

    def recover(self) -> None:
        self.recovers += 1
        if not self.fail_recover:
            self.fault = False

    def stop(self) -> None:
        self.stops += 1


class RecordingGripper(Gripper):
    """A gripper that reaches each commanded opening at once and records the commands."""

    def __init__(self, name: str, opening: float = 1.0, clock=None) -> None:
        self.name = name
        self.opening = opening
        self.clock = clock
        self.commands: list[float] = []

    def connect(self) -> None:
        pass

    def disconnect(self) -> None:
        pass

    @property
    def is_connected(self) -> bool:
        return True

    def read_state(self) -> GripperState:
        t = self.clock.now() if self.clock is not None else 0.0
        return GripperState(arm=self.name, t=t, opening=self.opening, width_m=self.opening * 0.085)

    def command(self, opening: float, speed: float | None = None, force: float | None = None) -> None:
        self.opening = float(opening)
        self.commands.append(float(opening))


class StillCamera(Camera):
    """A camera whose next frame the test sets with `capture(t)`; the image encodes the frame number."""

    def __init__(self, name: str, height: int = 48, width: int = 64) -> None:
        self.name = name
        self.height, self.width = height, width
        self.frame: CameraFrame | None = None
        self.count = 0

    def connect(self) -> None:
        pass

    def disconnect(self) -> None:
        pass

    @property
    def is_connected(self) -> bool:
        return True

    @property
    def intrinsics(self) -> CameraIntrinsics:
        return CameraIntrinsics(self.width, self.height, 50.0, 50.0, self.width / 2, self.height / 2)

    def capture(self, t: float) -> CameraFrame:
        self.count += 1
        color = np.full((self.height, self.width, 3), self.count % 256, dtype=np.uint8)
        color[0, 0] = (1, 2, 3)
        self.frame = CameraFrame(camera=self.name, t=t, color=color, frame_number=self.count)
        return self.frame

    def latest(self) -> CameraFrame | None:
        return self.frame

    def wait_frame(self, newer_than: float, timeout: float) -> CameraFrame:
        if self.frame is None or self.frame.t <= newer_than:
            raise DeviceError(f"camera {self.name}: no frame newer than {newer_than}")
        return self.frame
