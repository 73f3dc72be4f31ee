"""`a2world eval`: the success classifier from twin episodes and a closed-loop evaluation of a served policy
inside the tiny trained world model, compared with the same policy on the twin."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from policy.interface import PolicyResult


class HoldPolicy:
    """Holds the current state (a policy that never succeeds at lifting)."""

    def metadata(self):
        return {"name": "hold", "dt": 1 / 30}

    def infer(self, request):
        return PolicyResult(chunk=np.repeat(np.asarray(request.state)[None], 60, axis=0), dt=1 / 30)


def _labelled_recording(root):
    """Six recorded episodes, alternately successful (a bright box high in the front view at the end)."""
    import shadow_scene as scene

    from teleop.recorder import EpisodeRecorder, RecorderSettings

    settings = RecorderSettings(min_free_bytes=1, overflow="block", block_timeout_s=30.0)
    rng = np.random.default_rng(0)
    with EpisodeRecorder(root, cameras=("front",), formats=("lerobot",), settings=settings) as rec:
        for ep in range(6):
            rec.start_episode("lift the box high")
            for j in range(12):
                image = rng.integers(0, 60, (scene.H, scene.W, 3), dtype=np.uint8)
                top = 4 if (ep % 2 == 0 and j >= 6) else 30
                image[top:top + 10, 20:36] = 230
                obs = scene.observation(100.0 * ep + j / 30, np.array([0.4, 0.0]), image)
                rec.add(obs, scene.state(np.array([0.4, 0.0])))
            rec.end_episode(success=ep % 2 == 0)
        rec.wait()
    return root / "lerobot"


def _a2world(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "A2WORLD_THREADS": "1", "MUJOCO_GL": os.environ.get("MUJOCO_GL", "osmesa")}
    return subprocess.run([sys.executable, "-m", "a2world_ros.cli.main", *args], capture_output=True, text=True,
                          timeout=600, env=env)


@pytest.mark.slow
def test_classifier_and_in_world_model_evaluation(tmp_path_factory, tmp_path):
    from test_wm_data_fixtures import trained_run

    from policy.server import PolicyServer, ServerConfig

    ckpt = trained_run(tmp_path_factory.getbasetemp() / "wm_shared")["result"].checkpoint
    data = _labelled_recording(tmp_path / "labelled")
    clf = tmp_path / "clf"
    proc = _a2world("eval", "--train-classifier", "--data", str(data), "--heldout-episodes", "2", "--out", str(clf),
                    "--classifier-steps", "60")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "held-out accuracy" in proc.stdout and "on 4 held-out clips" in proc.stdout
    assert (clf / "classifier.safetensors").is_file()

    server = PolicyServer(HoldPolicy(), ServerConfig(address="tcp://127.0.0.1:0"))
    server.start_background()
    try:
        out = tmp_path / "eval.json"
        proc = _a2world("eval", "--in-world-model", "--policy", server.address, "--world-model", str(ckpt),
                        "--task", "lift_box_high", "--episodes", "2", "--seconds", "2", "--classifier", str(clf),
                        "--steps", "2", "--size", "32x32", "--twin", "--json", str(out))
    finally:
        server.stop()
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(out.read_text())
    (row,) = result["policies"]
    assert row["episodes"] == 2 and 0 <= row["world_model_successes"] <= 2
    assert row["twin_successes"] == 0  # holding still never lifts the box
    lo, hi = row["world_model_ci95"]
    assert 0.0 <= lo <= row["world_model_rate"] <= hi <= 1.0
    assert result["classifier_heldout_accuracy"] is not None
    assert "world model" in proc.stdout and "twin 0/2" in proc.stdout
