"""`a2world collect` and `a2world sim view` end to end on the twin (small images, short episodes)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from a2world_ros.cli.main import main

pytest.importorskip("mujoco")


def test_collect_writes_lerobot_and_mcap_episodes(tmp_path, capsys):
    out = tmp_path / "rec"
    rc = main(["collect", "--task", "lift_box_high", "--episodes", "2", "--out", str(out), "--seed", "4",
               "--size", "96x128", "--max-seconds", "0.5"])
    assert rc == 0
    text = capsys.readouterr()
    assert "[1/2] seed 4:" in text.err + text.out and "[2/2] seed 5:" in text.err + text.out
    from rig.dataformats.lerobot_v3 import LeRobotV3Dataset

    ds = LeRobotV3Dataset(out / "lerobot")
    assert ds.num_episodes == 2 and ds.num_frames == 30
    assert ds.episode_task(0) == "lift the box high"
    assert ds.episode_success(0) is False  # half a second is not enough to lift anything
    extra = ds.episode(1)["extra"]
    extra = json.loads(extra) if isinstance(extra, str) else extra
    assert extra["seed"] == 5
    action = ds._data["action"]
    assert action.shape == (30, 16)
    assert np.allclose(np.linalg.norm(action[:, 3:7], axis=1), 1.0, atol=1e-5)
    frames = ds.video_frames(0, "front", [0, 14])
    assert frames.shape == (2, 96, 128, 3) and frames.std() > 1.0
    assert sorted(p.name for p in (out / "bags").iterdir()) == ["episode_000000", "episode_000001"]


def test_collect_states_only_and_bad_arguments(tmp_path):
    out = tmp_path / "rec"
    assert main(["collect", "--task", "toggle_switch", "--episodes", "1", "--out", str(out), "--no-video",
                 "--formats", "mcap", "--max-seconds", "0.5"]) == 0
    meta = (out / "bags" / "episode_000000" / "metadata.yaml").read_text()
    assert "/arms/left/tcp_pose" in meta and "image_raw" not in meta
    assert main(["collect", "--task", "toggle_switch", "--episodes", "0", "--out", str(out)]) == 2
    assert main(["collect", "--task", "toggle_switch", "--episodes", "1", "--out", str(out), "--no-video"]) == 2
    with pytest.raises(SystemExit):
        main(["collect", "--task", "no_such_task", "--episodes", "1", "--out", str(out)])


def test_sim_view_writes_png_and_mp4_per_camera(tmp_path, capsys):
    import av

    out = tmp_path / "view"
    assert main(["sim", "view", "--task", "toggle_switch", "--out", str(out), "--seconds", "0.5",
                 "--size", "96x128"]) == 0
    for cam in ("front", "wrist_left", "wrist_right"):
        assert (out / f"{cam}.png").stat().st_size > 0
        with av.open(str(out / f"{cam}.mp4")) as container:
            frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
        assert len(frames) == 15 and frames[0].shape == (96, 128, 3)
    assert "wrote front.png/.mp4" in capsys.readouterr().out
    assert main(["sim"]) == 0  # group without subcommand prints its help
