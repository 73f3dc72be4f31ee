"""`policy` node: synchronized observations (three images, arm and gripper states) in, command chunks
out (MultiDOFJointTrajectory + gripper JointTrajectory), around an injected `PolicyLoop`
(policy_loop.py). Services /policy/start and /policy/stop; stops on /estop; reports /diagnostics."""

from __future__ import annotations

from typing import Any

from rig import topics
from rig.conventions import ARM_NAMES, CAMERA_NAMES, POLICY_HZ
from rig.params import get_float

from .bridges import PolicyBridge
from .common import A2WorldNode, run
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
    """Thin wrapper over `PolicyBridge`; `loop` may be injected, else built by `policy_loop_factory`."""

    def __init__(self, loop: PolicyLoop | None = None, parameter_overrides: list[Any] | None = None) -> None:
        super().__init__("policy", parameter_overrides)
        instruction = str(self.param("instruction", ""))
        if loop is None:
            loop = build_policy_loop(str(self.param("policy_loop_factory", "")), str(self.param("policy", "")),
                                     instruction, self.params)
        if hasattr(loop, "close"):
            self.on_close(loop.close)
        self.bridge = PolicyBridge(
            loop, self.clock_map, instruction,
            slop_s=get_float(self.params, "slop_s", "policy", default=0.02, positive=True),
            state_slop_s=get_float(self.params, "state_slop_s", "policy", default=0.02, positive=True),
            gripper_slop_s=get_float(self.params, "gripper_slop_s", "policy", default=0.1, positive=True),
            distro=self.distro,
        )
        wire_policy(self, self.bridge)
        if bool(self.param("auto_start", False)):
            self.bridge.start()


def main(args: list[str] | None = None) -> int:
    return run(PolicyNode, args)
