"""Topic and service names, message types and QoS kinds of the A2World ROS graph (table in docs/ros.md)."""

from __future__ import annotations

from typing import Final

from rig.conventions import ARM_NAMES, CAMERA_NAMES

SENSOR: Final = "sensor"
"""QoS kind: KEEP_LAST 5, BEST_EFFORT, VOLATILE (rclpy `qos_profile_sensor_data`)."""
COMMAND: Final = "command"
"""QoS kind: KEEP_LAST 10, RELIABLE, VOLATILE (commands, operator input, diagnostics)."""
LATCHED: Final = "latched"
"""QoS kind: KEEP_LAST 1, RELIABLE, TRANSIENT_LOCAL (late joiners get the last value)."""

IMAGE = "sensor_msgs/msg/Image"
CAMERA_INFO = "sensor_msgs/msg/CameraInfo"
JOINT_STATE = "sensor_msgs/msg/JointState"
POSE_STAMPED = "geometry_msgs/msg/PoseStamped"
MULTI_DOF_TRAJECTORY = "trajectory_msgs/msg/MultiDOFJointTrajectory"
JOINT_TRAJECTORY = "trajectory_msgs/msg/JointTrajectory"
BOOL = "std_msgs/msg/Bool"
DIAGNOSTIC_ARRAY = "diagnostic_msgs/msg/DiagnosticArray"
TRIGGER = "std_srvs/srv/Trigger"


def image(camera: str) -> str:
    return f"/cameras/{camera}/image_raw"


def camera_info(camera: str) -> str:
    return f"/cameras/{camera}/camera_info"


def joint_states(arm: str) -> str:
    return f"/arms/{arm}/joint_states"


def tcp_pose(arm: str) -> str:
    return f"/arms/{arm}/tcp_pose"


def gripper_state(arm: str) -> str:
    return f"/arms/{arm}/gripper_state"


COMMAND_POSES: Final = "/policy/command/poses"
COMMAND_GRIPPERS: Final = "/policy/command/grippers"
ESTOP: Final = "/estop"
DIAGNOSTICS: Final = "/diagnostics"
TF_STATIC: Final = "/tf_static"

ARMS_START: Final = "/arms/start"
ARMS_STOP: Final = "/arms/stop"
ARMS_RESET: Final = "/arms/reset"
POLICY_START: Final = "/policy/start"
POLICY_STOP: Final = "/policy/stop"


def camera_topics() -> dict[str, tuple[str, str]]:
    """{topic: (message type, QoS kind)} published by the cameras (or sim) node."""
    out = {}
    for cam in CAMERA_NAMES:
        out[image(cam)] = (IMAGE, SENSOR)
        out[camera_info(cam)] = (CAMERA_INFO, SENSOR)
    return out


def arm_state_topics() -> dict[str, tuple[str, str]]:
    """{topic: (message type, QoS kind)} published by the arms (or sim) node."""
    out = {}
    for arm in ARM_NAMES:
        out[joint_states(arm)] = (JOINT_STATE, SENSOR)
        out[tcp_pose(arm)] = (POSE_STAMPED, SENSOR)
        out[gripper_state(arm)] = (JOINT_STATE, SENSOR)
    return out
