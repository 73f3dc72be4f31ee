"""A tiny policy trained on CPU on scripted twin demonstrations (lift_box_high, box on the left arm's side)
predicts held-out chunks far better than a constant action; `a2world policy train` resumes its run."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from policy_demo_data import record_demos

from a2world_ros.cli.main import main
from policy.checkpoint import load_policy
from policy.config import load_policy_config
from policy.train import train

pytestmark = pytest.mark.slow  # records demonstrations and trains: about 60 s on 2 idle cores

OVERRIDES = ["policy.cameras=[front]", "train.sample_stride=6", "train.steps=500", "train.batch_size=16",
             "train.log_every=50", "train.ckpt_every=0", "train.val_episodes=1"]


@pytest.fixture(scope="module")
def demos(tmp_path_factory):
    # a narrow box placement on one side of the table: six episodes cannot teach which arm to use or where
    # a box far away lies; what they can teach is the task's phases (reach, grasp, lift) from the observation
    return record_demos(tmp_path_factory.mktemp("demos"), episodes=6,
                        task_config={"x_range": [0.0, 0.02], "y_range": [0.06, 0.08], "yaw_range": [-0.1, 0.1]})


@pytest.fixture(scope="module")
def trained(demos, tmp_path_factory):
    torch.manual_seed(0)
    out = tmp_path_factory.mktemp("run")
    return out, train(load_policy_config("tiny", OVERRIDES), [demos], out, resume=False, log=lambda m: None)


def test_held_out_error_well_below_constant_action(trained):
    _, result = trained
    ev = result.eval
    assert result.steps == 500
    assert np.mean(result.losses[-25:]) < 0.5 * np.mean(result.losses[:25])
    assert ev["position_error_m"] < 0.5 * ev["constant_position_error_m"], ev
    assert ev["action_mse"] < 0.75 * ev["constant_action_mse"], ev
    assert ev["position_error_m"] < 0.6 * ev["mean_chunk_position_error_m"], ev
    assert np.isfinite(ev["first_s_position_error_m"]) and "mean_chunk_first_s_position_error_m" in ev


def test_checkpoint_carries_config_and_statistics(trained):
    out, _ = trained
    loaded = load_policy(out / "checkpoint")
    assert loaded.config.policy.cameras == ("front",)
    assert loaded.normalizer.actions.count > 0
    assert len(loaded.meta["model_hash"]) == 64 and loaded.meta["step"] == 500


def test_cli_train_resumes(demos, tmp_path, capsys):
    args = ["policy", "train", "--data", str(demos), "--out", str(tmp_path), "policy.cameras=[front]",
            "train.sample_stride=30", "train.batch_size=4", "train.val_episodes=0", "train.log_every=1"]
    assert main([*args, "train.steps=2"]) == 0
    assert load_policy(tmp_path / "checkpoint").meta["step"] == 2
    assert main([*args, "train.steps=3"]) == 0
    assert load_policy(tmp_path / "checkpoint").meta["step"] == 3


def test_trained_policy_runs_a_full_lockstep_episode_on_the_twin(trained):
    """The tiny trained policy drives the whole no-ROS graph (policy loop, executor, guard) on the twin for
    a full episode in lockstep: every inference succeeds and every chunk reaches the executor."""
    from a2world_ros.run_policy import PolicyRunner, build_sim_rig, load_graph_config, task_instruction
    from a2world_ros.runtime.policy_loop import open_policy

    out, _ = trained
    rig = build_sim_rig("lift_box_high", render_size=(48, 64))
    rig.connect()
    try:
        runner = PolicyRunner(rig, open_policy(str(out / "checkpoint")), load_graph_config(),
                              task_instruction("lift_box_high"))
        try:
            report = runner.run_episode(0, seed=0, max_seconds=3.0)
        finally:
            runner.close()
    finally:
        rig.disconnect()
    assert report.seconds == pytest.approx(3.0, abs=0.1) or report.success
    # the inference started last may still be "thinking" (simulated latency) when the episode ends
    assert report.failures == 0 and report.inferences >= 3 and report.chunks >= report.inferences - 1
    assert "estop" not in report.interventions and "stale_data" not in report.interventions
    assert 0.0 <= report.best_progress <= 1.0
