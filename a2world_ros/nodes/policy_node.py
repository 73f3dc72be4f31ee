"""`policy` node: synchronized observations (three images, arm and gripper states) in, command chunks
out (MultiDOFJointTrajectory + gripper JointTrajectory), around an injected `PolicyLoop`
(policy_loop.py). Services /policy/start and /policy/stop; stops on /estop; reports /diagnostics.
Without a policy it stays up idle (see `PolicyNode`)."""

from __future__ import annotations

from typing import Any

from rig import topics
from rig.config import ConfigError
from rig.conventions import ARM_NAMES, CAMERA_NAMES, POLICY_HZ
from rig.params import get_float

from .bridges import NO_POLICY, PolicyBridge
from .common import A2WorldNode, run
from .convert import ros_class
from .policy_loop import PolicyLoop, build_policy_loop


def wire_policy(node: A2WorldNode, bridge: PolicyBridge) -> None:
    where = node.get_name()
    for cam in CAMERA_NAMES:
        node.add_subscription(topics.image(cam), topics.IMAGE, topics.SENSOR,
                              lambda msg, cam=cam: bridge.on_image(cam, msg))
    for arm in ARM_NAMES:
        node.add_subscription(topics.joint_states(arm), topics.JOINT_STATE, topics.SENSOR,
                              lambda msg, arm=arm: bridge.on_joint_state(arm, msg))
        node.add_subscription(topics.tcp_pose(arm), topics.POSE_STAMPED, topics.SENSOR,
                              lambda msg, arm=arm: bridge.on_tcp_pose(arm, msg))
        node.add_subscription(topics.gripper_state(arm), topics.JOINT_STATE, topics.SENSOR,
                              lambda msg, arm=arm: bridge.on_gripper_state(arm, msg))
    node.add_subscription(topics.ESTOP, topics.BOOL, topics.COMMAND, lambda msg: bridge.estop(bool(msg.data)))
    node.add_publisher(topics.COMMAND_POSES, topics.MULTI_DOF_TRAJECTORY, topics.COMMAND)
    node.add_publisher(topics.COMMAND_GRIPPERS, topics.JOINT_TRAJECTORY, topics.COMMAND)
    node.add_trigger(topics.POLICY_START, bridge.start)
    node.add_trigger(topics.POLICY_STOP, bridge.stop)
    publish_hz = get_float(node.params, "publish_hz", where, default=float(POLICY_HZ), positive=True)
    node.create_timer(1.0 / publish_hz, lambda: node.publish_all(bridge.poll_chunk()))
    node.add_diagnostics(bridge.diagnostics, get_float(node.params, "diagnostics_hz", where, default=1.0,
                                                    positive=True))


class PolicyNode(A2WorldNode):
    """Thin wrapper over `PolicyBridge`; `loop` may be injected, else built by `policy_loop_factory`
    from the `policy` parameter. Without a policy (empty, or one that fails to load) the node comes up
    idle: /diagnostics says "no policy loaded" (with the reason) and /policy/start is refused until a
    policy is set (`ros2 param set /policy policy tcp://HOST:PORT`), which builds and loads it."""

    def __init__(self, loop: PolicyLoop | None = None, parameter_overrides: list[Any] | None = None) -> None:
        super().__init__("policy", parameter_overrides)
        if not self.has_parameter("policy"):
            self.declare_parameter("policy", "")
        self.instruction = str(self.param("instruction", ""))
        self.bridge = PolicyBridge(
            None, self.clock_map, self.instruction,
            slop_s=get_float(self.params, "slop_s", "policy", default=0.02, positive=True),
            state_slop_s=get_float(self.params, "state_slop_s", "policy", default=0.02, positive=True),
            gripper_slop_s=get_float(self.params, "gripper_slop_s", "policy", default=0.1, positive=True),
            distro=self.distro,
        )
        self.on_close(self._close_loop)
        if loop is not None:
            self.bridge.load(loop)
        else:
            self._load(str(self.param("policy", "")))
        wire_policy(self, self.bridge)
        self.add_on_set_parameters_callback(self._on_set_parameters)
        if bool(self.param("auto_start", False)):
            _, message = self.bridge.start()
            self.get_logger().info(f"auto_start: {message}")

    def _build(self, policy: str) -> PolicyLoop:
        return build_policy_loop(str(self.param("policy_loop_factory", "")), policy, self.instruction, self.params)

    def _load(self, policy: str) -> str:
        """Build and load the loop of `policy` ('' = none); returns the error text ('' on success)."""
        if not policy:
            self.get_logger().info(f"{NO_POLICY}: idle until the `policy` parameter is set")
            return ""
        try:
            loop = self._build(policy)
        except (ConfigError, OSError, ValueError) as exc:
            self.bridge.load_error = f"policy {policy!r}: {exc}"
            self.get_logger().error(f"{NO_POLICY}: {self.bridge.load_error}")
            return self.bridge.load_error
        self._close(self.bridge.load(loop))
        self.get_logger().info(f"policy loaded: {policy}")
        return ""

    def _on_set_parameters(self, parameters: list[Any]) -> Any:
        result = ros_class("rcl_interfaces/msg/SetParametersResult")(successful=True)
        for param in parameters:
            if param.name == "policy":
                error = self._load(str(param.value or ""))
                if error:
                    result.successful, result.reason = False, error
        return result

    @staticmethod
    def _close(loop: PolicyLoop | None) -> None:
        if loop is not None and hasattr(loop, "close"):
            loop.close()

    def _close_loop(self) -> None:
        self.bridge.stop("shutdown")
        self._close(self.bridge.loop)


def main(args: list[str] | None = None) -> int:
    return run(PolicyNode, args)
