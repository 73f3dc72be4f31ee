"""A scripted VR stream drives the twin through lift_box_high (lockstep): a successful, valid episode that
`a2world data info` and the policy's data loader read; episode actions from buttons and commands."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("mujoco")
pytest.importorskip("av")

from a2world_ros.cli.main import main
from rig.sim import ensure_headless_gl
from teleop.config import load_teleop_config
from teleop.recorder import EpisodeRecorder
from teleop.runner import TeleopRunner
from teleop.scripted import controller_stream, default_mappings, plan_episode

ensure_headless_gl()
pytestmark = pytest.mark.slow  # plans the expert and runs ~8 s of twin with three cameras (about 35 s here)


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    from rig.factory import build_rig

    out = tmp_path_factory.mktemp("teleop") / "lift"
    cfg = load_teleop_config()
    plan = plan_episode("lift_box_high", 3)
    rig = build_rig(rig="sim", sim_overrides={"task": "lift_box_high", "seed": 3, "clock": "lockstep",
                                              "render": {"height": 64, "width": 80}})
    rig.connect()
    try:
        with EpisodeRecorder(out, fps=30) as rec:
            runner = TeleopRunner(rig, cfg, "lift the box high", rec, operator="ci", seed=3, input_label="scripted")
            runner.run_lockstep(controller_stream(plan, default_mappings(cfg.retarget), rate_hz=60,
                                                  mark="success"), max_seconds=20.0)
            rec.wait()
            success = runner.twin.task_success()
    finally:
        rig.disconnect()
    return out, runner, plan, success


def test_scripted_stream_lifts_the_box(recorded) -> None:
    _out, runner, plan, success = recorded
    assert plan.expert_success and success
    assert runner.messages[0].startswith("episode 0 started")
    assert "marked success" in runner.messages[1] and "saved: success (operator)" in runner.messages[2]
    status = runner.session.status()
    assert status["dropped"] == {"malformed": 0, "out_of_order": 0, "late": 0, "future": 0}
    assert runner.session.counters["engage_left"] == 1 and runner.session.counters["engage_right"] == 1


def test_data_info_and_training_loader_read_it(recorded, capsys) -> None:
    out, *_ = recorded
    assert main(["data", "info", str(out), "--json", "--episodes"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["lerobot"]["episodes"] == 1 and info["lerobot"]["success_rate"] == 1.0
    assert info["lerobot"]["episode_list"][0]["frames"] > 150
    assert "/recorded/command/poses" in info["mcap"]["topics"]
    from rig.dataformats.lerobot_v3 import LeRobotV3Dataset

    ds = LeRobotV3Dataset(out / "lerobot")
    extra = ds.episode(0)
    meta = json.dumps({k: str(v) for k, v in extra.items()})
    assert "teleop" in meta and "ci" in meta
    action = np.asarray(ds.data("action"))
    assert np.ptp(action[:, :3], axis=0).max() > 0.1 or np.ptp(action[:, 8:11], axis=0).max() > 0.1
    pytest.importorskip("torch")
    from policy.config import load_policy_config
    from policy.data import PolicyClipDataset

    clips = PolicyClipDataset([out / "lerobot"], load_policy_config("tiny"))
    clip = clips.clip(0)
    assert clip.instruction == "lift the box high" and np.all(np.isfinite(clip.actions))
