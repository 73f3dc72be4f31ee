"""`sim` node: the MuJoCo twin standing in for the cameras and arms nodes (`rig:=sim`). Same topics,
services and behaviour; the twin runs in real time (`sim.clock: realtime`) on its own thread."""

from __future__ import annotations

from typing import Any

from rig.factory import Rig, build_rig
from rig.params import get_float

from .arms_node import make_arm_bridge, wire_arms
from .bridges import CameraBridge
from .cameras_node import wire_cameras
from .common import A2WorldNode, run


class SimNode(A2WorldNode):
    """Cameras + arms of a `Rig` in one node; `rig` may be injected (tests), else the twin is built."""

    def __init__(self, rig: Rig | None = None, parameter_overrides: list[Any] | None = None,
                 start_control: bool = True) -> None:
        super().__init__("sim", parameter_overrides)
        if rig is None:
            overrides = dict(self.param("sim", {}))
            overrides.setdefault("clock", "realtime")
            rig = build_rig(rig="sim", sim_overrides=overrides)
            rig.connect()
            self.on_close(rig.disconnect)
        self.rig = rig
        self.cameras = CameraBridge(rig.cameras, self.clock_map, self.distro)
        self.arms = make_arm_bridge(self, rig.arms, rig.grippers)
        wire_cameras(self, self.cameras, after_poll=self._feed_watchdog)
        wire_arms(self, self.arms, camera_topics=False)
        if start_control:
            self.arms.start_control()
        self.on_close(self.arms.stop_control)
        self.add_diagnostics(lambda: self.cameras.diagnostics() + self.arms.diagnostics(),
                             get_float(self.params, "diagnostics_hz", "sim", default=1.0, positive=True))

    def _feed_watchdog(self) -> None:
        for cam, t in self.cameras.newest().items():
            self.arms.on_camera_time(cam, t)


def main(args: list[str] | None = None) -> int:
    return run(SimNode, args)
