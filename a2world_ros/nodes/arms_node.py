"""`arms` node: the chunk executor and safety guard on both arms. Publishes JointState, TCP PoseStamped
and gripper state per arm; takes command chunks (MultiDOFJointTrajectory + gripper JointTrajectory),
the e-stop topic and the start/stop/reset services; reports /diagnostics (docs/ros.md)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from a2world_ros.params import rig_sections
from rig import topics
from rig.config import ConfigError
from rig.drivers.base import Arm, Gripper
from rig.executor import ExecutorConfig
from rig.factory import build_rig
from rig.params import get_float, get_mapping
from rig.realtime.arm_process import device_factories, isolate_flexiv_arms
from rig.realtime.executor_process import RealtimeConfig
from rig.safety import GuardConfig

from .arm_process_bridge import ProcessArmBridge
from .bridges import ArmBridge
from .common import A2WorldNode, run

DeviceFactories = tuple[Mapping[str, Callable[[], Arm]], Mapping[str, Callable[[], Gripper]]]
"""Picklable (arm, gripper) factories by arm name, built in the executor process."""


def _executor_and_guard(node: A2WorldNode, arms: Mapping[str, Any]) -> tuple[ExecutorConfig, GuardConfig]:
    where = node.get_name()
    executor = ExecutorConfig.from_mapping(get_mapping(node.params, "executor", where), f"{where}.executor")
    guard = GuardConfig.from_mapping(get_mapping(node.params, "guard", where), f"{where}.guard")
    missing = sorted(set(arms) - set(guard.arms))
    if missing:
        raise ConfigError(f"{where}.guard.arms: no limits for arm(s) {missing}")
    return executor, guard


def make_arm_bridge(node: A2WorldNode, arms: Mapping[str, Arm], grippers: Mapping[str, Gripper]) -> ArmBridge:
    """ArmBridge configured from the node's `executor` and `guard` parameter sections."""
    executor, guard = _executor_and_guard(node, arms)
    return ArmBridge(arms, grippers, executor, guard, node.clock_map, distro=node.distro)


def make_process_arm_bridge(node: A2WorldNode, factories: DeviceFactories) -> ProcessArmBridge:
    """ProcessArmBridge (executor + guard in their own process) from the same sections, the executor's
    `rt_priority` for the whole process and the node's `gripper_hz` for its gripper reads."""
    arms, grippers = factories
    executor, guard = _executor_and_guard(node, arms)
    gripper_hz = get_float(node.params, "gripper_hz", node.get_name(), default=20.0, positive=True)
    config = RealtimeConfig(executor, guard, dict(arms), dict(grippers), rt_priority=executor.rt_priority,
                            gripper_hz=gripper_hz)
    return ProcessArmBridge(config, node.clock_map, distro=node.distro)


def wire_arms(node: A2WorldNode, bridge: ArmBridge | ProcessArmBridge, camera_topics: bool = True) -> None:
    """Publishers, subscriptions, services and timers of the arms side (diagnostics: the caller).

    `camera_topics`: feed the watchdog from the cameras' CameraInfo stamps (False when the cameras run
    in the same process and feed it directly).
    """
    where = node.get_name()
    for topic, (msgtype, kind) in topics.arm_state_topics().items():
        node.add_publisher(topic, msgtype, kind)
    node.add_subscription(topics.COMMAND_POSES, topics.MULTI_DOF_TRAJECTORY, topics.COMMAND,
                          bridge.on_command_poses)
    node.add_subscription(topics.COMMAND_GRIPPERS, topics.JOINT_TRAJECTORY, topics.COMMAND,
                          bridge.on_command_grippers)
    node.add_subscription(topics.ESTOP, topics.BOOL, topics.COMMAND, lambda msg: bridge.estop(bool(msg.data)))
    if camera_topics:
        for cam in bridge.watched_sources:
            if cam.startswith("arm:"):
                continue
            node.add_subscription(
                topics.camera_info(cam), topics.CAMERA_INFO, topics.SENSOR,
                # Only the stamp matters here: read it from the rclpy message without converting.
                lambda msg, cam=cam: bridge.on_camera_stamp(cam, msg.header.stamp.sec * 1_000_000_000
                                                            + msg.header.stamp.nanosec),
                convert=False,
            )
    node.add_trigger(topics.ARMS_START, bridge.start)
    node.add_trigger(topics.ARMS_STOP, bridge.stop)
    node.add_trigger(topics.ARMS_RESET, bridge.reset)
    state_hz = get_float(node.params, "state_publish_hz", where, default=100.0, positive=True)
    gripper_hz = get_float(node.params, "gripper_hz", where, default=20.0, positive=True)
    node.create_timer(1.0 / state_hz, lambda: node.publish_all(bridge.drain_states()))
    node.create_timer(1.0 / gripper_hz, lambda: node.publish_all(bridge.poll_grippers()))
    if bool(node.param("auto_start", False)):
        _, message = bridge.start()
        node.get_logger().info(f"auto_start: {message}")


class ArmsNode(A2WorldNode):
    """Thin wrapper over `ProcessArmBridge` (parameter `executor_process: true`: executor, guard and
    devices in their own process) or `ArmBridge` (executor thread in this process).

    Devices may be injected (tests): `arms`/`grippers` objects run on the executor thread, `factories`
    (picklable, see `DeviceFactories`) in the executor process; else they are built from rig.yaml.
    `start_control=False` leaves the executor off (tests drive `bridge.tick` in lockstep).
    """

    def __init__(self, arms: Mapping[str, Arm] | None = None, grippers: Mapping[str, Gripper] | None = None,
                 parameter_overrides: list[Any] | None = None, start_control: bool = True,
                 factories: DeviceFactories | None = None) -> None:
        super().__init__("arms", parameter_overrides)
        isolate = bool(self.param("isolate_arms", True))  # each arm's SDK in its own process (docs/drivers_arms.md)
        if arms is None and factories is None:
            rig = build_rig(rig_sections(self.param("rig_config", "rig.yaml"), ("arms", "grippers")), rig="real")
            if bool(self.param("executor_process", False)):
                factories = device_factories(rig.arms, rig.grippers, isolate)
                if factories is None:
                    self.get_logger().warning("executor_process: a device cannot be built in another process "
                                              "(flexiv_gripper shares its arm's SDK); executor thread here")
            if factories is None:
                if isolate:
                    rig.arms = isolate_flexiv_arms(rig.arms, rig.grippers)
                rig.connect()
                self.on_close(rig.disconnect)
                arms, grippers = rig.arms, rig.grippers
        self.bridge: ArmBridge | ProcessArmBridge = (
            make_process_arm_bridge(self, factories) if factories is not None
            else make_arm_bridge(self, arms or {}, grippers or {}))
        wire_arms(self, self.bridge)
        self.add_diagnostics(self.bridge.diagnostics,
                             get_float(self.params, "diagnostics_hz", "arms", default=1.0, positive=True))
        if start_control:
            self.bridge.start_control()
        self.on_close(self.bridge.stop_control)


def main(args: list[str] | None = None) -> int:
    return run(ArmsNode, args)
