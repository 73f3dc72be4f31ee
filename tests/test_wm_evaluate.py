"""World-model evaluation (`worldmodel.evaluate`, `a2world worldmodel eval`): the baselines on hand-made
clips, the shuffled baseline really hands every clip another clip's actions, and the command's report."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from test_wm_data_fixtures import trained_run, twin_recording

from worldmodel.evaluate import (
    PSNR_CAP,
    EvalConfig,
    copy_last_frame,
    derangement,
    evaluate,
    score_prediction,
    summarise,
    verdict,
)


def _moving_square(frames: int = 21, size: int = 32) -> np.ndarray:
    video = np.full((frames, size, size, 3), 40, np.uint8)
    for t in range(frames):
        video[t, 10:18, 2 + t:10 + t] = 220
    return video


def test_copy_last_of_a_static_clip_is_perfect():
    frame = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    real = np.repeat(frame[None], 21, axis=0)
    pred = copy_last_frame(frame, 20)
    assert pred.shape == real.shape and (pred == real).all()
    s = score_prediction(pred, real)
    assert len(s["psnr"]) == 20 and (s["psnr"] == PSNR_CAP).all()
    np.testing.assert_allclose(s["ssim"], 1.0)
    np.testing.assert_allclose(s["flow_epe_all"], 0.0, atol=1e-9)
    # the paper's mask keeps pixels where both flows exceed tau (NaN if none): identical flows, zero error
    np.testing.assert_allclose(np.nan_to_num(s["flow_epe"]), 0.0, atol=1e-9)


def test_copy_last_of_a_moving_clip_pays_the_real_motion():
    real = _moving_square()
    s_copy = score_prediction(copy_last_frame(real[0], 20), real)
    s_self = score_prediction(real, real)
    assert (s_copy["psnr"][-1] < s_copy["psnr"][0] < PSNR_CAP) and (s_self["psnr"] == PSNR_CAP).all()
    assert s_copy["flow_epe_all"].mean() > 0.05 and np.allclose(s_self["flow_epe_all"], 0.0)
    summary = summarise({"model": {"v": [s_self]}, "copy_last": {"v": [s_copy]}, "shuffled": {"v": [s_copy]}})
    assert summary["model"]["v"]["per_step"]["psnr"] == [PSNR_CAP] * 20
    assert verdict(summary) == {"psnr_beats_copy_last": True, "flow_epe_all_beats_copy_last": True,
                                "psnr_beats_shuffled": True, "flow_epe_all_beats_shuffled": True}


@pytest.mark.parametrize("n", [2, 3, 7, 40])
def test_derangement_moves_every_clip(n):
    for seed in range(5):
        perm = derangement(n, seed)
        assert sorted(perm.tolist()) == list(range(n)) and not (perm == np.arange(n)).any()
    with pytest.raises(ValueError, match="at least 2"):
        derangement(1, 0)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return trained_run(tmp_path_factory.getbasetemp() / "wm_shared")


def test_shuffled_baseline_gets_other_clips_actions(run, monkeypatch):
    import torch

    from worldmodel.predict import WorldModelPredictor

    seen: list[np.ndarray] = []
    real_predict = WorldModelPredictor.predict

    def spy(self, images, actions, **kwargs):
        seen.append(np.asarray(actions))
        return real_predict(self, images, actions, **kwargs)

    monkeypatch.setattr(WorldModelPredictor, "predict", spy)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        report = evaluate(run["result"].checkpoint, run["data"], EvalConfig(sampler_steps=1, max_clips=4),
                          progress=False)
    finally:
        torch.set_num_threads(threads)
    n = report["clips"]
    own, shuffled = seen[0::2], seen[1::2]
    assert len(own) == len(shuffled) == n >= 2
    perm = derangement(n, EvalConfig().shuffle_seed)
    for i in range(n):
        np.testing.assert_array_equal(shuffled[i], own[int(perm[i])])
        assert not np.array_equal(shuffled[i], own[i])
    for method in ("model", "copy_last", "shuffled"):
        for view in report["cameras"]:
            steps = report["methods"][method][view]["per_step"]
            assert len(steps["psnr"]) == len(steps["flow_epe_all"]) == report["horizon_steps"] == 20
    assert report["vae_warning"]  # the smoke run's VAE is random: the report says so


def test_cli_writes_json_and_names_bad_data(run, tmp_path):
    out = tmp_path / "eval.json"
    cmd = [sys.executable, "-m", "a2world_ros.cli.main", "worldmodel", "eval", "--checkpoint",
           str(run["result"].checkpoint), "--data", str(twin_recording(run["base"])), "--json", str(out),
           "--steps", "1", "--max-clips", "2", "--threads", "1"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    report = json.loads(out.read_text())
    assert report["clips"] == 2 and set(report["methods"]) == {"model", "copy_last", "shuffled"}
    assert "copy_last" in r.stdout and "UNTRAINED VAE" in r.stderr
    bad = subprocess.run([*cmd[:8], str(tmp_path / "nothing"), "--json", str(out)], capture_output=True,
                         text=True, timeout=300)
    assert bad.returncode == 2 and "nothing" in bad.stderr and "meta/info.json" in bad.stderr


def test_several_datasets_are_pooled_before_thinning(tmp_path_factory):
    from worldmodel.data.clips import ClipConfig
    from worldmodel.data.source import RecordingSource
    from worldmodel.evaluate import load_pooled_clips

    source = RecordingSource(twin_recording(tmp_path_factory.getbasetemp() / "wm_shared"))
    clip = ClipConfig(clip_frames=21, frame_stride=3, clip_hop=20)
    cams = ["front"]
    single = load_pooled_clips([source], clip, cams, (32, 32))
    pooled = load_pooled_clips([source, source], clip, cams, (32, 32))
    assert len(pooled) == 2 * len(single) >= 2
    assert [(c.episode, c.start) for c in pooled] == 2 * [(c.episode, c.start) for c in single]
    assert all(c.dataset == str(source.root) for c in pooled)
    thinned = load_pooled_clips([source, source], clip, cams, (32, 32), max_clips=2)
    assert [(c.episode, c.start) for c in thinned] == [(single[0].episode, single[0].start),
                                                        (single[-1].episode, single[-1].start)]
