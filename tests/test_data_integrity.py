"""Readers during an unfinished recorder commit see the last decided commit (journal view), and
`a2world data info` verifies the dataset layout and names what is missing."""

from __future__ import annotations

import os

import numpy as np
import pytest
from recording_data import command, observation

from a2world_ros.cli.main import main
from rig.dataformats import atomic
from rig.dataformats.lerobot_v3 import DatasetError, LeRobotV3Dataset
from teleop.recorder import EpisodeRecorder, RecorderError, RecorderSettings

FAST = RecorderSettings(min_free_bytes=1)


def record(rec, task: str, n: int) -> None:
    rec.start_episode(task)
    for i in range(n):
        rec.add(observation(i), command(i))
    rec.end_episode(success=True)


def killed_at_rename(tmp_path, monkeypatch, k: int) -> int:
    """Record episode 0 (committed), then kill the commit of episode 1 after `k` of its renames;
    returns how many renames that commit has."""
    with EpisodeRecorder(tmp_path, settings=FAST) as rec:
        record(rec, "kept", 4)
        rec.wait()
        total = {}

        def die_after_k(root, journal):
            total["n"] = len(journal)
            for rel_tmp, rel_final in journal[:k]:
                (root / rel_final).parent.mkdir(parents=True, exist_ok=True)
                os.replace(root / rel_tmp, root / rel_final)
            raise KeyboardInterrupt("simulated kill mid-commit")

        monkeypatch.setattr(atomic, "_apply", die_after_k)
        record(rec, "interrupted", 5)
        with pytest.raises(RecorderError):
            rec.wait()
        monkeypatch.undo()
    return total["n"]


@pytest.mark.parametrize("k", [1, 3, 5, 7])
def test_reader_sees_the_decided_commit_while_renames_are_unfinished(tmp_path, monkeypatch, k):
    n = killed_at_rename(tmp_path, monkeypatch, k)
    assert k < n and (tmp_path / atomic.JOURNAL_NAME).is_file()  # the commit is decided, half applied
    ds = LeRobotV3Dataset(tmp_path / "lerobot")  # read-only: no recorder reopened the root
    assert ds.num_episodes == 2 and ds.num_frames == 9
    assert ds.episode_task(0) == "kept" and ds.episode_task(1) == "interrupted"
    assert ds.missing_files() == []
    for ep, length in ((0, 4), (1, 5)):
        assert len(list(ds.episode_frames(ep, cameras=["front"]))) == length
    assert (tmp_path / atomic.JOURNAL_NAME).is_file()  # reading changed nothing


def test_data_info_names_a_missing_episodes_parquet(tmp_path, capsys):
    with EpisodeRecorder(tmp_path, settings=FAST) as rec:
        record(rec, "pick", 4)
        rec.wait()
    for f in (tmp_path / "lerobot" / "meta" / "episodes").rglob("*.parquet"):
        f.unlink()
    assert main(["data", "info", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "damaged LeRobot dataset" in err and "meta/episodes" in err and "lists 1 episodes" in err


def test_data_info_names_a_missing_mp4_and_reading_it_is_a_clear_error(tmp_path, capsys):
    with EpisodeRecorder(tmp_path, settings=FAST) as rec:
        record(rec, "pick", 4)
        rec.wait()
    mp4 = next((tmp_path / "lerobot" / "videos" / "observation.images.wrist_left").rglob("*.mp4"))
    mp4.unlink()
    assert main(["data", "info", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "observation.images.wrist_left" in err and ".mp4" in err
    ds = LeRobotV3Dataset(tmp_path / "lerobot")
    with pytest.raises(DatasetError, match="wrist_left.*missing|missing.*wrist_left"):
        ds.video_frames(0, "wrist_left", [0])


def test_sim_bags_are_stamped_with_the_real_recording_time(tmp_path):
    """Lockstep observations carry simulated seconds from 0; their bags must not all start at boot
    time + 0 s (hours before recorded_at, overlapping when played together)."""
    import datetime as dt
    import json
    import time

    from rig.dataformats.rosbag_mcap import bag_summary, read_bag

    before = time.time()
    with EpisodeRecorder(tmp_path, settings=FAST, sample_clock="sim") as rec:
        for _ in range(2):
            rec.start_episode("sim")
            for i in range(6):
                rec.add(observation(i, t0=0.0), command(i))  # every episode restarts at sim time 0
            rec.end_episode(success=True)
            rec.wait()
            time.sleep(0.05)
    after = time.time()
    spans = []
    for bag in sorted((tmp_path / "bags").iterdir()):
        stamps = [m.log_ns * 1e-9 for m in read_bag(bag, ["/recorded/command/poses"])]
        assert len(stamps) == 6 and np.allclose(np.diff(stamps), 1 / 30, atol=1e-6)  # simulated intervals kept
        assert before - 1.0 <= stamps[0] <= after
        extra = json.loads(bag_summary(bag)["custom_data"]["a2world.extra"])
        recorded = dt.datetime.fromisoformat(extra["recorded_at"]).timestamp()
        assert abs(stamps[0] - recorded) < 1.0 and extra["sample_clock"] == "sim"
        spans.append((stamps[0], stamps[-1]))
    assert spans[0][1] < spans[1][0]  # the two bags do not overlap


def test_recorder_refuses_an_unknown_sample_clock(tmp_path):
    with pytest.raises(RecorderError, match="sample_clock"):
        EpisodeRecorder(tmp_path, settings=FAST, sample_clock="wall")
