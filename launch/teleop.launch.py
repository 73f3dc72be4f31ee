"""VR teleoperation into training data: the teleop node (its own rig: the twin or cameras + arms) and the
static transforms.

    ros2 launch a2world_ros teleop.launch.py rig:=sim vr:=zmq://0.0.0.0:5600 task:=lift_box_high \
        record_dir:=/tmp/teleop_lift

vr:=webxr serves the WebXR page on https://<this machine>:8443/. Episode services: /teleop/start, stop,
success, failure, discard, recenter. docs/teleop.md has the operator flow.
"""

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.parameter_descriptions import ParameterValue
from launch_ros.substitutions import FindPackageShare

PACKAGE = "a2world_ros"

ARGUMENTS = [
    ("rig", "sim", "real: RealSense cameras and Flexiv arms from rig_config; sim: the MuJoCo twin"),
    ("vr", "webxr", "zmq://HOST:PORT (any teleop protocol sender) or webxr (the page over HTTPS)"),
    ("record_dir", "", "recording root for the episodes (LeRobot v3.0 + rosbag2 MCAP); empty: no recording"),
    # A default task as in policy.launch.py: rig:=sim cannot build the twin without one.
    ("task", "lift_box_high", "task of config/tasks.yaml: the twin's scene and the episodes' instruction"),
    ("instruction", "", "instruction of the episodes (default: the task's)"),
    ("operator", "", "operator name stored with every episode"),
    ("rig_config", PathJoinSubstitution([FindPackageShare(PACKAGE), "config", "rig.yaml"]),
     "device file for rig:=real"),
    ("calibration", PathJoinSubstitution([FindPackageShare(PACKAGE), "config", "calibration.yaml"]),
     "calibrated transforms broadcast on /tf_static (and the VR-to-base rotations)"),
]


def _text(name: str) -> ParameterValue:
    # Always strings: an instruction like "true" or a path of digits must not become a bool/int.
    return ParameterValue(LaunchConfiguration(name), value_type=str)


def generate_launch_description() -> LaunchDescription:
    actions = [
        DeclareLaunchArgument(name, default_value=default, description=description,
                              **({"choices": ["real", "sim"]} if name == "rig" else {}))
        for name, default, description in ARGUMENTS
    ]
    actions += [
        Node(package=PACKAGE, executable="static_tf_node", name="static_tf", output="screen",
             parameters=[LaunchConfiguration("calibration")]),
        Node(package=PACKAGE, executable="teleop_node", name="teleop", output="screen",
             parameters=[{name: _text(name) for name in ("rig", "vr", "record_dir", "task", "instruction",
                                                         "operator", "rig_config")}]),
    ]
    return LaunchDescription(actions)
