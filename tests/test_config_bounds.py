"""Unsafe configuration is refused: every safety-relevant value bounded by the hardware's published
limits (rig/hardware_limits.py) or a stated range, bool is not a number, `watch` names must exist on
the rig, rig.yaml and calibration.yaml sanity; `a2world rig list` exits 2 naming the file and field."""

from __future__ import annotations

import copy

import pytest
import yaml

from a2world_ros.cli.main import main
from rig.config import ConfigError, config_path, load_yaml
from rig.executor import ExecutorConfig
from rig.params import get_float
from rig.safety import GuardConfig

RIG = load_yaml("rig.yaml")
POLICY = load_yaml("policy.yaml")
CALIBRATION = load_yaml("calibration.yaml")


def write(tmp_path, name: str, data) -> str:
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data))
    return str(path)


def policy_with(**changes) -> dict:
    """config/policy.yaml with `changes` applied: keys 'guard.x', 'guard.arms.left.x', 'executor.x'."""
    data = copy.deepcopy(POLICY)
    params = data["/**"]["ros__parameters"]
    for dotted, value in changes.items():
        *parents, key = dotted.split(".")
        node = params
        for p in parents:
            node = node[p]
        node[key] = value
    return data


def rig_with(arm_key: str, value) -> dict:
    data = copy.deepcopy(RIG)
    data["arms"]["ros__parameters"]["left"][arm_key] = value
    return data


def calibration_with(key: str, translation) -> dict:
    data = copy.deepcopy(CALIBRATION)
    pose = data["static_tf"]["ros__parameters"][key]
    data["static_tf"]["ros__parameters"][key] = [*translation, *pose[3:]]
    return data


POLICY_CASES = {
    "max_linear_speed 1e9": ({"guard.arms.left.max_linear_speed": 1e9}, "max_linear_speed: 1000000000.0"),
    "max_linear_acc 1e9": ({"guard.arms.left.max_linear_acc": 1e9}, "max_linear_acc"),
    "workspace 100 m": ({"guard.arms.left.workspace_max": [100.0, 100.0, 100.0]}, r"workspace_max\[0\]: 100.0 m"),
    "stale_timeout_s 3600": ({"guard.stale_timeout_s": 3600.0}, "stale_timeout_s: 3600.0"),
    "watch empty": ({"guard.watch": []}, "watch: \\[\\], expected a non-empty list"),
    "watch typo": ({"guard.watch": ["frnt", "wrist_left"]}, r"watch: \['frnt'\] not known"),
    "max_step_dt 10": ({"guard.arms.left.max_step_dt": 10.0}, "max_step_dt: 10.0"),
    "latency_s 100": ({"executor.latency_s": 100.0}, "latency_s: 100.0"),
    "command_hz 100000": ({"executor.command_hz": 100000.0}, "command_hz: 100000.0"),
    "max_linear_speed true": ({"guard.arms.left.max_linear_speed": True}, "max_linear_speed: True is a boolean"),
}


@pytest.mark.parametrize("case", sorted(POLICY_CASES))
def test_rig_list_refuses_unsafe_policy_config(tmp_path, capsys, case):
    changes, message = POLICY_CASES[case]
    policy = write(tmp_path, "policy.yaml", policy_with(**changes))
    assert main(["rig", "list", "--policy-config", policy]) == 2
    out = capsys.readouterr().out
    assert out.startswith("error: ") and "policy.yaml" in out
    assert __import__("re").search(message, out), out


RIG_CASES = {
    "max_linear_vel 100": (rig_with("max_linear_vel", 100.0), "arms.left.max_linear_vel: 100.0"),
    "max_linear_vel true": (rig_with("max_linear_vel", True), "max_linear_vel: True is a boolean"),
    "empty file": ("", "empty"),
}


@pytest.mark.parametrize("case", sorted(RIG_CASES))
def test_rig_list_refuses_unsafe_rig_config(tmp_path, capsys, case):
    data, message = RIG_CASES[case]
    assert main(["rig", "list", "--config", write(tmp_path, "rig.yaml", data)]) == 2
    out = capsys.readouterr().out
    assert "rig.yaml" in out and message in out, out


def test_rig_list_refuses_a_watched_camera_the_rig_does_not_have(tmp_path, capsys):
    data = copy.deepcopy(RIG)
    del data["cameras"]["ros__parameters"]["wrist_right"]
    assert main(["rig", "list", "--config", write(tmp_path, "rig.yaml", data)]) == 2
    assert "['wrist_right'] not configured on this rig" in capsys.readouterr().out


def test_rig_list_refuses_a_1000_m_calibration_translation(tmp_path, capsys):
    calib = write(tmp_path, "calibration.yaml", calibration_with("T_world_front", [1000.0, 0.0, 0.68]))
    assert main(["rig", "list", "--calibration", calib]) == 2
    out = capsys.readouterr().out
    assert "T_world_front" in out and "1000.000 m long" in out
    calib = write(tmp_path, "calibration.yaml", calibration_with("T_flange_wrist_left", [0.0, -90.0, 60.0]))
    assert main(["rig", "list", "--calibration", calib]) == 2
    assert "T_flange_wrist_left" in capsys.readouterr().out


def test_repository_configs_pass_and_list_exits_0(capsys):
    assert main(["rig", "list"]) == 0
    assert "error" not in capsys.readouterr().out


def test_bool_is_not_a_number_in_every_float_reader():
    with pytest.raises(ConfigError, match=r"x.k: True is a boolean"):
        get_float({"k": True}, "k", "x")
    with pytest.raises(ConfigError, match="rt_priority"):
        ExecutorConfig.from_mapping({"rt_priority": True})
    guard = POLICY["/**"]["ros__parameters"]["guard"]
    with pytest.raises(ConfigError, match="guard.stale_timeout_s: False is a boolean"):
        GuardConfig.from_mapping({**guard, "stale_timeout_s": False})
    assert config_path("policy.yaml").is_file()
