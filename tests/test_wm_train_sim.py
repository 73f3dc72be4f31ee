"""A2World-sim training on the twin recording: init from a tiny base checkpoint, history inputs, both
self-forcing modes, frame replacement, and `a2world worldmodel rollout` on the trained checkpoint."""

from __future__ import annotations

import json

import av
import numpy as np
import pytest
import torch
from test_wm_data_fixtures import TWIN_SIZE, one_thread, trained_run

from a2world_ros.cli.main import main as cli_main
from worldmodel.checkpoint import load_checkpoint
from worldmodel.train import load_train_config
from worldmodel.train_sim import SimTrainer

STEPS = 4


def sim_overrides(data, base, run_dir, *extra: str) -> list[str]:
    return [f"data.roots=[{data}]", f"init_from={base}", f"run_dir={run_dir}", "+train=smoke",
            f"data.resolution=[{TWIN_SIZE},{TWIN_SIZE}]", "data.clip_hop=20", f"trainer.max_steps={STEPS}",
            "trainer.batch_size=2", "trainer.ckpt_every=0", "trainer.eval_batches=1", "trainer.progress=false",
            "self_forcing.warmup_steps=0", "self_forcing.probability=1.0", "self_forcing.max_steps=2", *extra]


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    return trained_run(tmp_path_factory.getbasetemp() / "wm_shared")


@pytest.fixture(scope="module")
def sim_run(base, tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("sim") / "run"
    cfg = load_train_config(sim_overrides(base["data"], base["result"].checkpoint, run_dir), name="train_sim")
    with one_thread():
        trainer = SimTrainer(cfg)
        base_net, _ = load_checkpoint(base["result"].checkpoint)
        shared = "blocks.1.self_attn.q_proj.weight"
        assert torch.equal(trainer.raw_net.state_dict()[shared], base_net.state_dict()[shared])
        result = trainer.fit()
    return {"trainer": trainer, "result": result, "data": base["data"]}


def test_sim_training_self_forces_and_saves_a_sim_checkpoint(sim_run) -> None:
    trainer, result = sim_run["trainer"], sim_run["result"]
    # probability 1, no warm-up: every step self-forces unless all its clips start the episode (gap 0)
    assert result.step == STEPS and 1 <= trainer.forcing_steps <= STEPS
    assert np.isfinite(result.last_eval_loss)
    net, info = load_checkpoint(result.checkpoint)
    assert net.config.variant == "a2world_sim"
    meta = info["metadata"]["training"]
    assert meta["history"]["sampler"] == "arc_dual" and meta["self_forcing"]["mode"] == "release"


def test_teacher_free_mode_trains(base, tmp_path) -> None:
    cfg = load_train_config(sim_overrides(base["data"], base["result"].checkpoint, tmp_path / "tf",
                                          "self_forcing.mode=teacher_free", "trainer.max_steps=2",
                                          "trainer.eval_batches=0"), name="train_sim")
    with one_thread():
        trainer = SimTrainer(cfg)
        result = trainer.fit()
    assert result.step == 2 and trainer.forcing_steps >= 1


def test_self_forcing_replaces_condition_and_matching_history(sim_run, monkeypatch) -> None:
    trainer = sim_run["trainer"]
    batch = next(iter(trainer._loader(trainer.sampler)))
    B, V = batch["pixels"].shape[:2]
    generated = torch.arange(21, dtype=torch.uint8)[None, None, :, None, None, None].expand(
        B, V, 21, TWIN_SIZE, TWIN_SIZE, 3).clone()
    monkeypatch.setattr(trainer, "_generate_forcing", lambda b: generated)
    batch["gap"][:] = 3
    batch["forcing_start"][:] = 10
    batch["history_nodes"][0, -3:] = torch.tensor([11, 13, 14])  # window indices 1, 3 (replaced), 4 (kept)
    out = trainer.prepare_batch(batch)
    assert torch.all(out["pixels"][:, :, 0] == 3)  # window frame `gap` becomes the conditioning frame
    assert torch.all(out["pixels"][:, :, 1:] == batch["pixels"][:, :, 1:])
    assert torch.all(out["history_pixels"][0, :, -3] == 1) and torch.all(out["history_pixels"][0, :, -2] == 3)
    assert torch.equal(out["history_pixels"][0, :, -1], batch["history_pixels"][0, :, -1])


def test_rollout_command_on_the_trained_sim(sim_run, tmp_path, capsys) -> None:
    out, report = tmp_path / "rollout.mp4", tmp_path / "rollout.json"
    with one_thread():
        rc = cli_main(["worldmodel", "rollout", "--checkpoint", str(sim_run["result"].checkpoint),
                       "--episode", f"{sim_run['data']}:1", "--seconds", "4", "--out", str(out), "--steps", "2",
                       "--json", str(report), "--last-seconds", "1", "--no-progress", "--threads", "1"])
    assert rc == 0, capsys.readouterr().err
    assert "history arc_dual" in capsys.readouterr().out
    with av.open(str(out)) as container:
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    assert len(frames) == 41 and frames[0].shape == (3 * TWIN_SIZE, 3 * TWIN_SIZE, 3)  # 3 views x [real|pred|diff]
    data = json.loads(report.read_text())
    assert data["frames"] == 41 and len(data["history_indices"]) == 2
    assert data["last"]["from_s"] == pytest.approx(3.1) and np.isfinite(data["last"]["summary"]["all"]["psnr"])
    rc = cli_main(["worldmodel", "rollout", "--checkpoint", str(sim_run["result"].checkpoint),
                   "--episode", f"{sim_run['data']}:1", "--seconds", "30", "--out", str(out)])
    assert rc == 2 and "need" in capsys.readouterr().err


def test_self_forcing_with_cached_latents_swaps_the_conditioning_latent(sim_run, monkeypatch) -> None:
    trainer = sim_run["trainer"]
    batch = next(iter(trainer._loader(trainer.sampler)))
    B, V = batch["pixels"].shape[:2]
    generated = torch.randint(0, 256, (B, V, 21, TWIN_SIZE, TWIN_SIZE, 3), dtype=torch.uint8)
    monkeypatch.setattr(trainer, "_generate_forcing", lambda b: generated)
    clean = trainer.latents(batch)  # what a latent cache would hold
    cached = {k: v for k, v in batch.items() if k != "pixels"}
    cached["latents"] = clean.reshape(B, -1, V, 6, *clean.shape[-2:]).permute(0, 2, 1, 3, 4, 5)
    cached["gap"] = torch.tensor([2] + [0] * (B - 1))
    out = trainer.latents(trainer.prepare_batch(cached))
    want = trainer._encode_frames(generated[:1, :, 2:3])  # (1, C, V, h, w)
    for v in range(V):
        torch.testing.assert_close(out[0, :, v * 6], want[0, :, v])
        torch.testing.assert_close(out[0, :, v * 6 + 1:(v + 1) * 6], clean[0, :, v * 6 + 1:(v + 1) * 6])
    torch.testing.assert_close(out[1:], clean[1:])  # gap 0: untouched


def test_history_ablation_runner(sim_run, tmp_path) -> None:
    from worldmodel.sim_ablation import long_episodes, main

    assert long_episodes(sim_run["data"], 4.0) == [0, 1] and long_episodes(sim_run["data"], 30.0) == []
    ckpt = sim_run["result"].checkpoint
    out = tmp_path / "ablation.json"
    with one_thread():
        rc = main(["--data", str(sim_run["data"]), "--seconds", "2", "--last-seconds", "1", "--steps", "1",
                   "--episodes", "1", "--entry", f"pose:{ckpt}:arc_dual", "--entry", f"none:{ckpt}:none",
                   "--threads", "1", "--out", str(out)])
    assert rc == 0
    res = json.loads(out.read_text())["results"]
    assert res["pose"]["sampler"] == "arc_dual" and res["none"]["sampler"] == "none"
    assert res["pose"]["mean"]["psnr"] != res["none"]["mean"]["psnr"]  # the history reaches the prediction
