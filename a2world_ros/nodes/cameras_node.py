"""`cameras` node: publishes Image + CameraInfo of every camera, stamped with the capture time,
sensor-data QoS (topics in docs/ros.md). Real cameras come from config/rig.yaml (`rig_config`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from a2world_ros.params import rig_sections
from rig import topics
from rig.drivers.base import Camera
from rig.factory import build_rig
from rig.params import get_float

from .bridges import CameraBridge
from .common import A2WorldNode, run


def wire_cameras(node: A2WorldNode, bridge: CameraBridge, after_poll: Any = None) -> None:
    """Publishers for every camera, the polling timer and the diagnostics feed."""
    for topic, (msgtype, kind) in topics.camera_topics().items():
        if any(topic in (topics.image(c), topics.camera_info(c)) for c in bridge.cameras):
            node.add_publisher(topic, msgtype, kind)
    poll_hz = get_float(node.params, "poll_hz", node.get_name(), default=100.0, positive=True)

    def poll() -> None:
        node.publish_all(bridge.poll())
        if after_poll is not None:
            after_poll()

    node.create_timer(1.0 / poll_hz, poll)


class CamerasNode(A2WorldNode):
    """Thin wrapper over `CameraBridge`; `cameras` may be injected (tests), else built from rig.yaml."""

    def __init__(self, cameras: Mapping[str, Camera] | None = None,
                 parameter_overrides: list[Any] | None = None) -> None:
        super().__init__("cameras", parameter_overrides)
        if cameras is None:
            rig = build_rig(rig_sections(self.param("rig_config", "rig.yaml"), ("cameras",)), rig="real")
            rig.connect()
            self.on_close(rig.disconnect)
            cameras = rig.cameras
        self.bridge = CameraBridge(cameras, self.clock_map, self.distro)
        wire_cameras(self, self.bridge)
        self.add_diagnostics(self.bridge.diagnostics,
                             get_float(self.params, "diagnostics_hz", "cameras", default=1.0, positive=True))


def main(args: list[str] | None = None) -> int:
    return run(CamerasNode, args)
