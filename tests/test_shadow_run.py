"""`a2world run policy --shadow`: the shadow process beside a twin run shows live metrics and writes the
report (tiny trained world model, scripted expert)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest


@pytest.mark.slow
def test_run_policy_with_shadow_shows_live_metrics_and_writes_the_report(tmp_path_factory, tmp_path):
    from test_wm_data_fixtures import trained_run

    ckpt = trained_run(tmp_path_factory.getbasetemp() / "wm_shared")["result"].checkpoint
    config = tmp_path / "shadow.yaml"
    config.write_text("shadow:\n  sampler_steps: 2\n  threads: 1\n")
    out = tmp_path / "report"
    cmd = [sys.executable, "-m", "a2world_ros.cli.main", "run", "policy", "--task", "lift_box_high",
           "--policy", "expert", "--episodes", "1", "--max-seconds", "2.5", "--size", "32x32",
           "--shadow", str(ckpt), "--shadow-config", str(config), "--shadow-out", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "A2WORLD_THREADS": "1", "MUJOCO_GL": os.environ.get("MUJOCO_GL",
                                                                                                 "osmesa")})
    assert proc.returncode == 0, proc.stderr[-3000:]
    live = [line for line in proc.stdout.splitlines() if line.startswith("shadow chunk")]
    assert live, proc.stdout
    assert "pred/s" in live[0] and "psnr" in live[0]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["chunks"] == len(live) >= 1
    assert summary["status"]["predicted"] >= summary["chunks"]
    assert set(summary["summary"]) >= {"front", "wrist_left", "wrist_right", "all"}
    assert (out / "metrics.png").is_file() and (out / "side_by_side.mp4").is_file()
