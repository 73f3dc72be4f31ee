"""What a user sees when something is wrong: a dead policy server, an unknown task, a root without
brackets, a broken info.json. Each gives a message that says what is wrong and how to fix it."""

from __future__ import annotations

import socket

import pytest

from a2world_ros.cli.main import main


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unknown_task_lists_the_real_tasks(capsys):
    assert main(["run", "policy", "--task", "lift_the_cow", "--policy", "expert"]) == 2
    err = capsys.readouterr().err
    assert "unknown task 'lift_the_cow'" in err
    for task in ("lift_box_high", "flip_small_box", "toggle_switch", "insert_ram", "chain_in_box"):
        assert task in err
    assert "floating_grippers" not in err


def test_task_instruction_lists_only_tasks():
    from a2world_ros.run_policy import task_instruction
    from rig.config import ConfigError

    assert task_instruction("lift_box_high") == "lift the box high"
    with pytest.raises(ConfigError) as info:
        task_instruction("floating_grippers")
    assert "unknown task 'floating_grippers'" in str(info.value) and "lift_box_high" in str(info.value)


def test_policy_server_that_never_answers_exits_non_zero(capsys, tmp_path):
    pytest.importorskip("mujoco")
    address = f"tcp://127.0.0.1:{free_port()}"  # nothing listens: every request times out
    rc = main(["run", "policy", "--task", "lift_box_high", "--policy", address, "--episodes", "3",
               "--no-cameras", "--max-seconds", "1", "--json", str(tmp_path / "r.json")])
    captured = capsys.readouterr()
    assert rc != 0
    assert f"the policy {address} never answered" in captured.err
    assert captured.out.count("episode ") == 1  # no point in running the other episodes
    assert (tmp_path / "r.json").is_file()


def test_world_model_roots_without_brackets():
    from worldmodel.train import load_train_config, validate_config

    cfg = load_train_config(["data.roots=/data/lift_sim"])
    validate_config(cfg)
    assert cfg["data"]["roots"] == ["/data/lift_sim"]


def test_broken_info_json_names_the_file(tmp_path, capsys):
    meta = tmp_path / "ds" / "meta"
    meta.mkdir(parents=True)
    (meta / "info.json").write_text("{not json")
    assert main(["data", "info", str(tmp_path / "ds")]) == 1
    err = capsys.readouterr().err
    assert f"{meta / 'info.json'}: not valid JSON" in err and "Traceback" not in err
    (meta / "info.json").write_text('{"codebase_version": "v3.0"}')
    assert main(["data", "info", str(tmp_path / "ds")]) == 1
    assert f"{meta / 'info.json'}: missing keys ['fps', 'features', 'total_frames']" in capsys.readouterr().err
