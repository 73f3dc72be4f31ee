"""Run a policy on the rig: cameras + arms (rig:=real) or the twin (rig:=sim), static transforms,
the policy node, and optionally a rosbag2 (MCAP) recording of every topic.

    ros2 launch a2world_ros policy.launch.py rig:=sim policy:=tcp://gpu-box:5555 \
        instruction:="put the cup on the plate"

Arguments and topics: docs/ros.md. Nothing moves until /arms/start and /policy/start are called.
"""

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, ExecuteProcess
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution, PythonExpression
from launch_ros.actions import Node
from launch_ros.parameter_descriptions import ParameterValue
from launch_ros.substitutions import FindPackageShare

PACKAGE = "a2world_ros"

ARGUMENTS = [
    ("rig", "sim", "real: RealSense cameras and Flexiv arms from rig_config; sim: the MuJoCo twin"),
    ("config", PathJoinSubstitution([FindPackageShare(PACKAGE), "config", "policy.yaml"]),
     "node parameters: executor, guard limits, rates (ROS parameter YAML)"),
    ("rig_config", PathJoinSubstitution([FindPackageShare(PACKAGE), "config", "rig.yaml"]),
     "device file for rig:=real (serials, tool, gripper ports)"),
    ("calibration", PathJoinSubstitution([FindPackageShare(PACKAGE), "config", "calibration.yaml"]),
     "calibrated transforms broadcast on /tf_static"),
    ("policy", "", "policy to run: a checkpoint path, or tcp://host:port of a policy server"),
    ("instruction", "", "task instruction given to the policy"),
    ("record_dir", "", "when set, record every topic to this rosbag2 directory (MCAP storage)"),
    ("shadow", "false", "true: run the shadow predictor (predicted vs live cameras, docs/shadow.md)"),
    ("shadow_model", "", "world-model checkpoint of the shadow predictor"),
]


def _is(name: str, value: str) -> PythonExpression:
    return PythonExpression(["'", LaunchConfiguration(name), f"' == '{value}'"])


def generate_launch_description() -> LaunchDescription:
    config = LaunchConfiguration("config")
    rig_config = {"rig_config": LaunchConfiguration("rig_config")}
    actions = [
        DeclareLaunchArgument(
            name, default_value=default, description=description,
            **({"choices": ["real", "sim"]} if name == "rig" else {}),
        )
        for name, default, description in ARGUMENTS
    ]
    actions += [
        Node(package=PACKAGE, executable="static_tf_node", name="static_tf", output="screen",
             parameters=[LaunchConfiguration("calibration")]),
        Node(package=PACKAGE, executable="cameras_node", name="cameras", output="screen",
             parameters=[config, rig_config], condition=IfCondition(_is("rig", "real"))),
        Node(package=PACKAGE, executable="arms_node", name="arms", output="screen",
             parameters=[config, rig_config], condition=IfCondition(_is("rig", "real"))),
        Node(package=PACKAGE, executable="sim_node", name="sim", output="screen",
             parameters=[config], condition=IfCondition(_is("rig", "sim"))),
        Node(package=PACKAGE, executable="policy_node", name="policy", output="screen",
             parameters=[config, {
                 # Always strings: an instruction like "true" or a path of digits must not become a bool/int.
                 "policy": ParameterValue(LaunchConfiguration("policy"), value_type=str),
                 "instruction": ParameterValue(LaunchConfiguration("instruction"), value_type=str),
             }]),
        Node(package=PACKAGE, executable="shadow_node", name="shadow", output="screen",
             parameters=[config, {"shadow_model": ParameterValue(LaunchConfiguration("shadow_model"), value_type=str)}],
             condition=IfCondition(LaunchConfiguration("shadow"))),
        ExecuteProcess(
            cmd=["ros2", "bag", "record", "--storage", "mcap", "--all", "--output",
                 LaunchConfiguration("record_dir")],
            output="screen",
            condition=IfCondition(PythonExpression(["'", LaunchConfiguration("record_dir"), "' != ''"])),
        ),
    ]
    return LaunchDescription(actions)
