"""VAE training (`worldmodel.vae.train`): a tiny run on twin frames lowers the held-out error, writes weights
that carry their fitted latent statistics and training record, resumes exactly, and refuses bad configs
before loading anything."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from test_wm_data_fixtures import TWIN_SIZE, twin_recording

from rig.config import ConfigError
from worldmodel.vae import WanVAE, WanVAEConfig
from worldmodel.vae.checkpoint import VAECheckpointError, is_trained, training_record
from worldmodel.vae.frames import FrameClips, FrameVideo
from worldmodel.vae.train import VAETrainer, load_config, main, reconstruction_loss

STEPS = 40


def overrides(data, run_dir, steps=STEPS, *extra):
    return [f"data.roots=[{data}]", f"run_dir={run_dir}", "data.heldout_every=2",
            f"data.resolution=[{TWIN_SIZE},{TWIN_SIZE}]", "data.crop=null", "data.clip_frames=5",
            "data.eval_clip_frames=13", "trainer.batch_size=2",
            f"trainer.max_steps={steps}", "trainer.eval_every=0", "trainer.eval_clips=2", "trainer.stats_clips=6",
            "trainer.ckpt_every=0", "trainer.progress=false", "trainer.threads=1", "trainer.log_every=10",
            "optim.warmup_steps=5", *extra]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    base = tmp_path_factory.getbasetemp() / "wm_shared"
    data = twin_recording(base)
    threads = torch.get_num_threads()
    try:
        result = VAETrainer(load_config(overrides(data, base / "vae_run"))).fit()
    finally:
        torch.set_num_threads(threads)
    return {"result": result, "data": data}


def test_training_lowers_heldout_error_and_saves_fitted_stats(trained):
    result = trained["result"]
    assert result.step == STEPS
    assert result.last_eval["psnr"] > result.first_eval["psnr"] + 2.0, (result.first_eval, result.last_eval)
    assert set(result.last_eval["cameras"]) == {"front", "wrist_left", "wrist_right"}
    # held-out clips have data.eval_clip_frames frames (2 clips per camera), not the 5 of a training clip
    assert {c["frames"] for c in result.last_eval["cameras"].values()} == {2 * 13}
    vae = WanVAE.from_checkpoint(result.weights, config="auto")
    assert vae.config.latent_stats == "data"
    report = json.loads((result.run_dir / "report.json").read_text())
    torch.testing.assert_close(vae.latent_mean, torch.tensor(report["latent_mean"]))
    torch.testing.assert_close(vae.latent_std, torch.tensor(report["latent_std"]))
    assert not torch.allclose(vae.latent_std, torch.ones_like(vae.latent_std))  # measured, not identity
    record = training_record(result.weights)
    assert record["trained"] and record["steps"] == STEPS and record["heldout_psnr"] == result.last_eval["psnr"]
    assert is_trained(result.weights)
    with pytest.raises(VAECheckpointError, match="fitted latent statistics"):
        WanVAE.from_checkpoint(result.weights, config=WanVAEConfig(dim=8, z_dim=16, num_res_blocks=1,
                                                                   latent_stats="identity"))
    steps = [json.loads(x)["step"] for x in (result.run_dir / "metrics.jsonl").read_text().splitlines()
             if "loss" in json.loads(x)]
    assert steps == list(range(10, STEPS + 1, 10))


def test_normalised_latents_have_unit_scale_on_training_frames(trained):
    vae = WanVAE.from_checkpoint(trained["result"].weights, config="auto")
    from worldmodel.data.source import RecordingSource
    from worldmodel.vae.frames import load_videos
    from worldmodel.vae.train import uint8_to_video

    videos = load_videos([RecordingSource(trained["data"])], ["front"], (TWIN_SIZE, TWIN_SIZE), 3, [[0]])
    clip = videos[0].frames[:5][None]
    with torch.no_grad():
        z = vae.encode(uint8_to_video(clip))
    per_channel_std = z.transpose(0, 1).flatten(1).std(1)
    assert 0.2 < float(per_channel_std.mean()) < 3.0


def test_resume_reproduces_the_uninterrupted_run(trained, tmp_path):
    data = trained["data"]
    threads = torch.get_num_threads()
    try:
        constant = "optim.schedule=constant"  # the cosine length follows max_steps, which differs here
        full = VAETrainer(load_config(overrides(data, tmp_path / "full", 6, constant))).fit()
        VAETrainer(load_config(overrides(data, tmp_path / "cut", 3, constant))).fit()
        cut_dir = tmp_path / "cut"
        trainer = VAETrainer(load_config(overrides(data, cut_dir, 6, constant, "trainer.resume=auto")))
        assert trainer.step == 3
        resumed = trainer.fit()
    finally:
        torch.set_num_threads(threads)
    a = WanVAE.from_checkpoint(full.weights, config="auto").state_dict()
    b = WanVAE.from_checkpoint(resumed.weights, config="auto").state_dict()
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=1e-5, atol=1e-6)


def test_edge_term_charges_blur_that_l1_barely_sees():
    target = torch.zeros(1, 3, 1, 16, 16)
    target[..., 6:10, 6:10] = 1.0
    blurred = torch.nn.functional.avg_pool3d(target, (1, 3, 3), stride=1, padding=(0, 1, 1))
    _, parts = reconstruction_loss(blurred, target, 1.0)
    assert parts["edge"] > parts["l1"]
    loss0, _ = reconstruction_loss(target, target, 1.0)
    assert float(loss0) == 0.0


def test_fixed_clips_are_spread_over_every_camera():
    frames = np.arange(12, dtype=np.uint8)[:, None, None, None] * np.ones((1, 8, 8, 3), np.uint8)
    clips = FrameClips([FrameVideo("d", 0, cam, frames) for cam in ("a", "b")], clip_frames=5)
    assert clips.num_clips == 16
    fixed = clips.fixed(3)
    assert sorted(fixed) == ["a", "b"] and fixed["a"].shape == (3, 5, 8, 8, 3)
    assert [int(c[0, 0, 0, 0]) for c in fixed["a"]] == [0, 4, 7]
    sample = clips.sample(4, np.random.default_rng(0), crop=(8, 8))
    assert sample.shape == (4, 5, 8, 8, 3)
    assert all((np.diff(s[:, 0, 0, 0].astype(int)) == 1).all() for s in sample)  # consecutive frames


@pytest.mark.parametrize(("override", "message"), [
    ("trainer.max_steps=abc", "trainer.max_steps='abc'"),
    ("data.clip_frames=4", "data.clip_frames=4"),
    ("data.crop=[200,64]", "larger than data.resolution"),
    ("data.eval_clip_frames=20", "data.eval_clip_frames=20"),
    ("vae.latent_stats=identity", "vae.latent_stats='identity'"),
])
def test_bad_config_is_refused_before_loading(override, message, tmp_path, capsys):
    assert main([f"data.roots=[{tmp_path / 'missing'}]", override]) == 2
    assert message in capsys.readouterr().err


def test_missing_data_root_is_named(tmp_path, capsys):
    assert main([f"data.roots=[{tmp_path / 'missing'}]"]) == 2
    assert "missing" in capsys.readouterr().err
    with pytest.raises(ConfigError, match="data.roots is empty"):
        from worldmodel.vae.train import validate_config

        validate_config(load_config([]))
