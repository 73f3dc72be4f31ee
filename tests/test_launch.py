"""launch/policy.launch.py without ROS: the arguments it declares (ast), and which nodes it starts
with which parameters for rig:=sim / rig:=real (launch/launch_ros test double); the YAML it passes is
valid as ROS parameters (one type per array, `ros__parameters` nesting, a section per node)."""

from __future__ import annotations

import ast
import importlib.util
import re
from pathlib import Path

import pytest
import yaml

from tests.ros_env import ros_doubles

ROOT = Path(__file__).resolve().parent.parent
LAUNCH = ROOT / "launch" / "policy.launch.py"
EXPECTED_ARGS = {"rig", "config", "rig_config", "calibration", "policy", "instruction", "record_dir",
                 "task", "seed", "rig_overrides", "server_key", "client_key", "shadow", "shadow_model"}

ros_module = pytest.fixture(scope="module", autouse=True)(ros_doubles)


def test_declared_arguments_by_ast():
    tree = ast.parse(LAUNCH.read_text())
    table = next(n for n in ast.walk(tree) if isinstance(n, ast.Assign)
                 and any(isinstance(t, ast.Name) and t.id == "ARGUMENTS" for t in n.targets))
    names = {elt.elts[0].value for elt in table.value.elts}
    assert names == EXPECTED_ARGS
    imports = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    imports |= {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert imports - {"os", "tempfile"} == {"launch", "launch_ros"}  # no rclpy, nothing from our packages
    assert any(isinstance(n, ast.FunctionDef) and n.name == "generate_launch_description" for n in tree.body)


def _describe():
    spec = importlib.util.spec_from_file_location("policy_launch", LAUNCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.generate_launch_description()


def _run(**args):
    from launch import LaunchContext
    from launch_ros.actions import Node

    desc = _describe()
    ctx = LaunchContext()
    ctx.package_share["a2world_ros"] = str(ROOT)
    ctx.launch_configurations.update(args)
    for arg in desc.launch_arguments:
        arg.apply(ctx)
    nodes = {e.node_name: e for e in desc.entities if isinstance(e, Node) and e.enabled(ctx)}
    others = [e for e in desc.entities if not isinstance(e, Node) and e.enabled(ctx)
              and not hasattr(e, "apply")]
    return desc, ctx, nodes, others


def test_sim_starts_twin_policy_and_tf():
    desc, ctx, nodes, others = _run(rig="sim", policy="tcp://gpu:5555", instruction="true")
    assert {a.name for a in desc.launch_arguments} == EXPECTED_ARGS
    assert set(nodes) == {"static_tf", "sim", "policy"} and others == []
    params = nodes["policy"].parameter_sources(ctx)
    assert params[0] == str(ROOT / "config" / "policy.yaml")
    assert params[1] == str(ROOT / "config" / "policy_rig_sim.yaml")  # the twin's overlay
    assert params[2] == {"policy": "tcp://gpu:5555", "instruction": "true",  # strings, not a bool
                         "server_public_key_file": "", "client_secret_key_file": ""}
    assert nodes["static_tf"].parameter_sources(ctx) == [str(ROOT / "config" / "calibration.yaml")]


def test_real_starts_cameras_and_arms_with_rig_config(tmp_path):
    _, ctx, nodes, others = _run(rig="real", record_dir=str(tmp_path / "bag"))
    assert set(nodes) == {"static_tf", "cameras", "arms", "policy"}
    assert nodes["arms"].parameter_sources(ctx)[1] == {"rig_config": str(ROOT / "config" / "rig.yaml")}
    (bag,) = others
    assert bag.command(ctx) == ["setsid", "ros2", "bag", "record", "--storage", "mcap", "--all", "--output",
                                str(tmp_path / "bag")]


def test_shadow_true_adds_the_shadow_node():
    _, ctx, nodes, _ = _run(rig="sim", shadow="true", shadow_model="/ckpt/wm_tiny")
    assert set(nodes) == {"static_tf", "sim", "policy", "shadow"}
    assert nodes["shadow"].parameter_sources(ctx)[1] == {"shadow_model": "/ckpt/wm_tiny"}


def test_unknown_rig_is_refused():
    with pytest.raises(RuntimeError, match="Valid options"):
        _run(rig="mock")


def test_every_executable_is_a_console_script_and_every_node_has_a_section():
    scripts = dict(re.findall(r'"(\w+) = (a2world_ros\.nodes\.\w+):main"', (ROOT / "setup.py").read_text()))
    _, ctx, sim_nodes, _ = _run(rig="sim")
    _, _, real_nodes, _ = _run(rig="real", shadow="true")
    for name, node in {**sim_nodes, **real_nodes}.items():
        assert node.executable in scripts, node.executable
        module = importlib.util.find_spec(scripts[node.executable])
        assert module is not None
        for source in node.parameter_sources(ctx):
            if isinstance(source, str):
                data = yaml.safe_load(Path(source).read_text())
                assert name in data and "ros__parameters" in data[name], (source, name)


def _check_ros_types(value, where):
    if isinstance(value, dict):
        for k, v in value.items():
            _check_ros_types(v, f"{where}.{k}")
    elif isinstance(value, list):
        assert value, f"{where}: empty arrays have no ROS parameter type"
        kinds = {type(v) for v in value}
        assert len(kinds) == 1 and kinds <= {bool, int, float, str}, f"{where}: mixed types {kinds}"
    else:
        assert isinstance(value, (bool, int, float, str)), f"{where}: {value!r}"


@pytest.mark.parametrize("name", ["policy.yaml", "calibration.yaml"])
def test_parameter_files_are_valid_ros_parameters(name):
    data = yaml.safe_load((ROOT / "config" / name).read_text())
    for node, section in data.items():
        assert set(section) == {"ros__parameters"}, node
        _check_ros_types(section["ros__parameters"], f"{name}:{node}")
