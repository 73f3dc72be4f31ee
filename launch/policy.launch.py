"""Run a policy on the rig: cameras + arms (rig:=real) or the twin (rig:=sim), static transforms,
the policy node, and optionally a rosbag2 (MCAP) recording of every topic.

    ros2 launch a2world_ros policy.launch.py rig:=sim policy:=tcp://gpu-box:5555 \
        instruction:="put the cup on the plate"
    ros2 launch a2world_ros policy.launch.py rig:=sim policy:=expert task:=lift_box_high

Arguments and topics: docs/ros.md. Nothing moves until /arms/start and /policy/start are called.
"""

import os
import tempfile

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
    ("rig_overrides", PathJoinSubstitution([FindPackageShare(PACKAGE), "config", "policy_rig_sim.yaml"]),
     "rig:=sim: parameters given after `config` (the twin's observation age and expert timeout)"),
    ("rig_config", PathJoinSubstitution([FindPackageShare(PACKAGE), "config", "rig.yaml"]),
     "device file for rig:=real (serials, tool, gripper ports)"),
    ("calibration", PathJoinSubstitution([FindPackageShare(PACKAGE), "config", "calibration.yaml"]),
     "calibrated transforms broadcast on /tf_static"),
    ("policy", "", "policy to run: a checkpoint path, tcp://host:port of a policy server, or `expert` "
     "(rig:=sim: the task's scripted expert, served by the sim node); empty: the policy node idles"),
    ("task", "lift_box_high", "rig:=sim: the twin's task (rig/sim/tasks; the expert's task for policy:=expert)"),
    ("seed", "0", "rig:=sim: seed of the task's initial layout"),
    ("instruction", "", "task instruction given to the policy"),
    ("server_key", "", "CURVE: the policy server's public key file (required for tcp:// off loopback)"),
    ("client_key", "", "CURVE: this robot's key pair file (its public half in the server's --authorized-keys)"),
    ("record_dir", "", "when set, record every topic to this rosbag2 directory (MCAP storage)"),
    ("shadow", "false", "true: run the shadow predictor (predicted vs live cameras, docs/shadow.md)"),
    ("shadow_model", "", "world-model checkpoint of the shadow predictor"),
]


def _is(name: str, value: str) -> PythonExpression:
    return PythonExpression(["'", LaunchConfiguration(name), f"' == '{value}'"])


def _expert_endpoint() -> str:
    """A local endpoint private to this launch (its pid): parallel launches on one host do not meet."""
    return f"ipc://{tempfile.gettempdir()}/a2world-expert-{os.getpid()}.sock"


def _if_expert(then: str | LaunchConfiguration, otherwise: str | LaunchConfiguration) -> PythonExpression:
    """`then` when policy:=expert (with rig:=sim), else `otherwise` (strings, quoted for the expression)."""
    return PythonExpression(["'", then, "' if '", LaunchConfiguration("policy"), "' == 'expert' and '",
                             LaunchConfiguration("rig"), "' == 'sim' else '", otherwise, "'"])


def _when_sim(path: LaunchConfiguration) -> PythonExpression:
    """The overlay file for rig:=sim; for rig:=real the base config again (a parameter file entry
    cannot be conditional, and repeating `config` changes nothing)."""
    return PythonExpression(["'", path, "' if '", LaunchConfiguration("rig"), "' == 'sim' else '",
                             LaunchConfiguration("config"), "'"])


def generate_launch_description() -> LaunchDescription:
    config = LaunchConfiguration("config")
    expert = _expert_endpoint()
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
             parameters=[config, {
                 "sim.task": ParameterValue(LaunchConfiguration("task"), value_type=str),
                 "sim.seed": ParameterValue(LaunchConfiguration("seed"), value_type=int),
                 "expert_endpoint": ParameterValue(_if_expert(expert, ""), value_type=str),
             }], condition=IfCondition(_is("rig", "sim"))),
        Node(package=PACKAGE, executable="policy_node", name="policy", output="screen",
             parameters=[config, _when_sim(LaunchConfiguration("rig_overrides")), {
                 # Always strings: an instruction like "true" or a path of digits must not become a bool/int.
                 "policy": ParameterValue(_if_expert(expert, LaunchConfiguration("policy")), value_type=str),
                 "instruction": ParameterValue(LaunchConfiguration("instruction"), value_type=str),
                 "server_public_key_file": ParameterValue(LaunchConfiguration("server_key"), value_type=str),
                 "client_secret_key_file": ParameterValue(LaunchConfiguration("client_key"), value_type=str),
             }]),
        Node(package=PACKAGE, executable="shadow_node", name="shadow", output="screen",
             parameters=[config, {"shadow_model": ParameterValue(LaunchConfiguration("shadow_model"), value_type=str)}],
             condition=IfCondition(LaunchConfiguration("shadow"))),
        # `setsid`: the recorder leaves the terminal's process group, so a Ctrl-C reaches it once (from
        # the launch) rather than twice: `ros2 bag record` ends with -2 on a second SIGINT.
        ExecuteProcess(
            cmd=["setsid", "ros2", "bag", "record", "--storage", "mcap", "--all", "--output",
                 LaunchConfiguration("record_dir")],
            output="screen",
            condition=IfCondition(PythonExpression(["'", LaunchConfiguration("record_dir"), "' != ''"])),
        ),
    ]
    return LaunchDescription(actions)
