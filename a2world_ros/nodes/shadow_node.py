"""`shadow` node: the shadow predictor beside a running policy (`policy.launch.py shadow:=true`).

Starts the shadow process for `shadow_model` (or connects to `shadow_address`), feeds it the graph's
camera, arm and command topics through `ShadowBridge`, and publishes `/shadow/<camera>/image` (sensor
QoS: real | predicted | |difference|), `/shadow/metrics` and `/diagnostics`. Never publishes commands;
with `divergence.action: hold` in the shadow config it publishes True on /estop (the guard's latched stop).
"""

from __future__ import annotations

from typing import Any

from rig import topics
from rig.conventions import ARM_NAMES, CAMERA_NAMES
from rig.params import get_float

from .common import A2WorldNode, run
from .shadow_bridge import ShadowBridge, shadow_topics


class ShadowNode(A2WorldNode):
    """Thin wrapper over `ShadowBridge` and `ShadowSession`; `session` may be injected (tests)."""

    def __init__(self, session: Any = None, parameter_overrides: list[Any] | None = None) -> None:
        super().__init__("shadow", parameter_overrides)
        cameras = tuple(c for c in self.param("cameras", list(CAMERA_NAMES)))
        self.bridge = ShadowBridge(self, self.clock_map, cameras, distro=self.distro)
        if session is None:
            from a2world_ros.shadow_session import ShadowSession
            from worldmodel.shadow.config import load_shadow_config

            config_file = str(self.param("shadow_config", "shadow.yaml"))
            address = str(self.param("shadow_address", "")) or None
            session = ShadowSession.start(str(self.param("shadow_model", "")), load_shadow_config(config_file),
                                          config_file, address=address, printer=self.get_logger().info,
                                          live_panels=True)
        self.session = session
        session.on_result = self.bridge.on_result
        session.on_hold = self._hold
        self.on_close(session.close)
        for topic, (msgtype, kind) in shadow_topics(cameras).items():
            self.add_publisher(topic, msgtype, kind)
        self.add_publisher(topics.ESTOP, topics.BOOL, topics.COMMAND)
        for cam in cameras:
            self.add_subscription(topics.image(cam), topics.IMAGE, topics.SENSOR,
                                  lambda msg, cam=cam: self.bridge.on_image(cam, msg))
        for arm in ARM_NAMES:
            self.add_subscription(topics.joint_states(arm), topics.JOINT_STATE, topics.SENSOR,
                                  lambda msg, arm=arm: self.bridge.on_joint_state(arm, msg))
            self.add_subscription(topics.tcp_pose(arm), topics.POSE_STAMPED, topics.SENSOR,
                                  lambda msg, arm=arm: self.bridge.on_tcp_pose(arm, msg))
            self.add_subscription(topics.gripper_state(arm), topics.JOINT_STATE, topics.SENSOR,
                                  lambda msg, arm=arm: self.bridge.on_gripper_state(arm, msg))
        self.add_subscription(topics.COMMAND_POSES, topics.MULTI_DOF_TRAJECTORY, topics.COMMAND,
                              lambda msg: self.bridge.on_command("poses", msg))
        self.add_subscription(topics.COMMAND_GRIPPERS, topics.JOINT_TRAJECTORY, topics.COMMAND,
                              lambda msg: self.bridge.on_command("grippers", msg))
        image_hz = get_float(self.params, "image_hz", "shadow", default=10.0, positive=True)
        self.create_timer(1.0 / image_hz, lambda: self.publish_all(self.bridge.poll_images()))
        self.create_timer(0.5, lambda: self.publish_all(self.bridge.poll_metrics()))
        self.add_diagnostics(self.bridge.diagnostics, get_float(self.params, "diagnostics_hz", "shadow",
                                                                default=1.0, positive=True))

    # ShadowSink: the bridge calls these; they go to the session
    def on_observation(self, now: float, obs: Any) -> None:
        self.session.on_observation(now, obs)

    def on_chunk(self, chunk: Any) -> None:
        self.session.on_chunk(chunk)

    def _hold(self, reason: str) -> None:
        from rig.dataformats import ros_messages as rm

        self.get_logger().error(f"{reason}: requesting the guard's stop on {topics.ESTOP}")
        self.publish_all([(topics.ESTOP, rm._cls(topics.BOOL, self.distro)(data=True))])


def main(args: list[str] | None = None) -> int:
    return run(ShadowNode, args)
