"""`shadow report`: replaying recorded episodes (LeRobot v3 and rosbag2 MCAP) through a known-good model
double, the report files, and the command on a tiny trained world model of the twin."""

from __future__ import annotations

import json
import subprocess
import sys

import av
import cv2
import numpy as np
import pytest
import shadow_scene as scene

from worldmodel.shadow.config import ShadowConfig
from worldmodel.shadow.engine import ShadowEngine
from worldmodel.shadow.offline import mirror_motion, replay_episode
from worldmodel.shadow.replay import ReplayError, read_recording
from worldmodel.shadow.report import write_report
from worldmodel.shadow.service import result_to_wire

SECONDS = 7  # three 2 s predictions


@pytest.fixture(scope="module")
def scene_recording(tmp_path_factory):
    """The scene recorded by the real recorder in both formats (commands = the executed targets)."""
    from teleop.recorder import EpisodeRecorder, RecorderSettings

    root = tmp_path_factory.mktemp("shadow_rec")
    settings = RecorderSettings(min_free_bytes=1, overflow="block", block_timeout_s=30.0)
    pos = scene.positions(30 * SECONDS)
    with EpisodeRecorder(root, cameras=("front",), formats=("lerobot", "mcap"), settings=settings) as rec:
        rec.start_episode("scene")
        for j, p in enumerate(pos):
            # the command in force at frame j is the target due then: the pose shown one step later
            rec.add(scene.observation(1000.0 + j * scene.DT, p), scene.state(p + np.array((1, 0)) * scene.STEP_M))
        rec.end_episode(success=True)
        rec.wait()
    return root


def _engine() -> ShadowEngine:
    return ShadowEngine(scene.KinematicPredictor(), ShadowConfig.from_mapping({"cameras": ["front"]}))


@pytest.mark.parametrize("fmt", ["lerobot", "bag"])
def test_replay_of_a_recorded_episode_with_a_known_good_model(scene_recording, fmt):
    path = scene_recording / "lerobot" if fmt == "lerobot" else next((scene_recording / "bags").glob("episode_*"))
    episode = read_recording(path, 0, ["front"], (scene.H, scene.W))
    assert episode.frames["front"].shape[1:] == (scene.H, scene.W, 3)
    results = replay_episode(_engine(), episode, every_s=2.0, progress=False)
    assert len(results) == 3
    for r in results:
        m = r.metrics["front"]
        assert r.missing == {"front": 0} and m.psnr.shape == (20,)
        np.testing.assert_allclose(r.real_times["front"], r.times, atol=1e-3)  # the frames captured then
        assert np.all(m.psnr > 25)  # the bag is lossless (inf); the LeRobot mp4 keeps only codec error
        assert np.all(m.flow_epe < 0.3) and np.all(m.flow_cos > 0.9)
    wrong = replay_episode(_engine(), episode, every_s=2.0, transform=mirror_motion, progress=False)
    assert all(w.metrics["front"].psnr.mean() < r.metrics["front"].psnr.mean() - 10 for w, r in zip(wrong, results))
    assert all(w.metrics["front"].flow_cos.mean() < 0 for w in wrong)


def test_report_files_are_written_and_plausible(scene_recording, tmp_path):
    episode = read_recording(scene_recording, 0, ["front"], (scene.H, scene.W))
    engine = _engine()
    config = engine.config.with_threshold(1.0)
    engine.config = config
    results = replay_episode(engine, episode, every_s=2.0, transform=mirror_motion, progress=False)
    summary = write_report([result_to_wire(r, panels=True) for r in results], tmp_path, fps=10.0,
                           divergence=config.divergence.__dict__, rerun=True, title="scene")
    data = json.loads((tmp_path / "summary.json").read_text())
    assert data["chunks"] == 3 and set(data["summary"]) == {"front", "all"}
    assert data["summary"]["front"]["flow_epe"] > 1.0 and data["divergence"]["events"]  # the wrong stream fires
    assert len(data["series"]["front"]["psnr"]["t"]) == 60
    image = cv2.imread(str(tmp_path / "metrics.png"))
    assert image is not None and image.shape[0] > 400 and image.std() > 10
    with av.open(str(tmp_path / "side_by_side.mp4")) as container:
        stream = container.streams.video[0]
        frames = sum(1 for _ in container.decode(stream))
        assert (stream.width, stream.height) == (3 * scene.W, scene.H)
    assert frames == 60
    assert (tmp_path / "shadow.rrd").stat().st_size > 10_000
    assert summary["files"]["video"].endswith("side_by_side.mp4")


def test_replay_errors_name_the_problem(tmp_path, scene_recording):
    with pytest.raises(ReplayError, match="neither a rosbag2 bag"):
        read_recording(tmp_path)
    with pytest.raises(ReplayError, match="cameras"):
        read_recording(scene_recording, 0, ["wrist_left"])


@pytest.mark.slow
def test_shadow_report_command_on_the_tiny_twin_world_model(tmp_path_factory, tmp_path):
    """End to end on the twin: a tiny trained A2World checkpoint replaying a recorded scripted episode."""
    from test_wm_data_fixtures import trained_run

    run = trained_run(tmp_path_factory.getbasetemp() / "wm_shared")
    ckpt, data = run["result"].checkpoint, run["data"]
    out = tmp_path / "report"
    cmd = [sys.executable, "-m", "a2world_ros.cli.main", "shadow", "report", str(data), "--episode", "1",
           "--checkpoint", str(ckpt), "--out", str(out), "--steps", "2", "--every", "2.0"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600,
                          env={**__import__("os").environ, "A2WORLD_THREADS": "1"})
    assert proc.returncode == 0, proc.stderr
    data = json.loads((out / "summary.json").read_text())
    assert data["chunks"] == 2
    cams = set(data["summary"]) - {"all"}
    assert cams == {"front", "wrist_left", "wrist_right"}
    for cam in cams:
        s = data["summary"][cam]
        assert 0 < s["psnr"] < 60 and -1 <= s["ssim"] <= 1 and s["flow_epe"] >= 0 and -1 <= s["flow_cos"] <= 1
    assert (out / "metrics.png").stat().st_size > 5000 and (out / "side_by_side.mp4").stat().st_size > 1000
    assert "divergence events: 0" in proc.stdout  # no threshold configured: alert never armed
    calib = tmp_path / "calibration.json"
    cmd = [sys.executable, "-m", "a2world_ros.cli.main", "shadow", "calibrate", str(run["data"]), "--episodes", "0",
           "1", "--checkpoint", str(ckpt), "--steps", "2", "--json", str(calib)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600,
                          env={**__import__("os").environ, "A2WORLD_THREADS": "1"})
    assert proc.returncode == 0, proc.stderr
    result = json.loads(calib.read_text())
    assert result["metric"] == "flow_epe" and result["values"] == 2 * 2 * 19 and result["threshold"] > 0
    assert "--threshold" in proc.stdout
