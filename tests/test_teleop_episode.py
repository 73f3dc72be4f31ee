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


def test_curate_trims_and_keeps_the_successful_episode(recorded, tmp_path) -> None:
    out, *_ = recorded
    from rig.dataformats.lerobot_v3 import LeRobotV3Dataset

    assert main(["data", "curate", str(out), str(tmp_path / "cur"), "--json"]) == 0
    src, cur = LeRobotV3Dataset(out / "lerobot"), LeRobotV3Dataset(tmp_path / "cur")
    assert cur.num_episodes == 1 and 0 < cur.num_frames < src.num_frames  # idle start and end trimmed
    assert cur.episode_success(0)
    assert cur.video_frames(0, "front", [0, cur.num_frames - 1]).shape[0] == 2


REPRODUCTION_MEAN_M = 0.010
REPRODUCTION_MAX_M = 0.060
"""Replay tolerance on the twin: the recorded 30 Hz commands reproduce the recorded TCP motion within
10 mm on average and 60 mm at worst per arm. The recording's commands were streamed at 100 Hz; replayed
as 30 Hz knots, linear interpolation has velocity steps that the guard's acceleration limit (1 m/s^2)
smooths, so the replay lags in the fastest moves (measured: 3-7 mm mean, 18-52 mm max, docs/teleop.md)."""


def test_replay_reproduces_the_recorded_motion(recorded) -> None:
    out, *_ = recorded
    from rig.dataformats.lerobot_v3 import LeRobotV3Dataset
    from rig.factory import build_rig
    from teleop.replay import replay_episode

    cfg = load_teleop_config()
    rig = build_rig(rig="sim", sim_overrides={"task": "lift_box_high", "clock": "lockstep"})
    rig.cameras = {}
    rig.connect()
    try:
        report = replay_episode(LeRobotV3Dataset(out / "lerobot"), 0, rig, cfg.executor, cfg.guard)
    finally:
        rig.disconnect()
    assert report.success
    for arm, err in report.reproduction.items():
        assert err["pos_mean_m"] < REPRODUCTION_MEAN_M, (arm, err)
        assert err["pos_max_m"] < REPRODUCTION_MAX_M, (arm, err)


def test_replay_in_real_time_approaches_then_follows(recorded) -> None:
    """The robot path (wall clock, executor thread) on arms that follow the guard exactly and start away
    from the episode's first pose: the approach is not measured, then the arms track the commands."""
    out, *_ = recorded
    from rig.conventions import ARM_NAMES
    from rig.dataformats.lerobot_v3 import LeRobotV3Dataset
    from rig.factory import Rig
    from rig.timing import MonotonicClock
    from teleop.replay import replay_episode
    from tests.doubles.rig_devices import RecordingArm, RecordingGripper

    ds = LeRobotV3Dataset(out / "lerobot")
    first = np.asarray(ds.data("action")[0], dtype=np.float64).reshape(2, 8)
    clock = MonotonicClock()
    arms = {a: RecordingArm(a, pose=first[i, :7] + np.r_[0.03, 0, 0, 0, 0, 0, 0], clock=clock)
            for i, a in enumerate(ARM_NAMES)}
    rig = Rig({}, arms, {a: RecordingGripper(a) for a in ARM_NAMES})
    cfg = load_teleop_config()
    report = replay_episode(ds, 0, rig, cfg.executor, cfg.guard, approach_speed=0.1)
    assert report.success is None and report.frames == ds.num_frames
    for arm, err in report.tracking.items():
        assert err["pos_mean_m"] < 0.010, (arm, err)  # guard lag plus the wall clock's jitter on a shared box
