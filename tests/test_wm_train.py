"""World-model training: a tiny model learns from twin episodes on CPU, checkpoints resume exactly, and
bad configs are refused with the key named."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file
from test_wm_data_fixtures import CKPT_EVERY, TRAIN_STEPS, train_overrides, trained_run

from rig.config import ConfigError
from worldmodel.train import Trainer, enable_activation_checkpointing, load_train_config, lr_lambda, main


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return trained_run(tmp_path_factory.getbasetemp() / "wm_shared")


def test_tiny_model_learns_on_twin_episodes(run):
    result = run["result"]
    assert result.step == TRAIN_STEPS
    assert result.first_eval_loss is not None and result.last_eval_loss is not None
    assert result.last_eval_loss <= 0.7 * result.first_eval_loss, (result.first_eval_loss, result.last_eval_loss)
    assert run["seconds"] < 120
    lines = [json.loads(x) for x in (result.run_dir / "metrics.jsonl").read_text().splitlines()]
    train_lines = [x for x in lines if "loss" in x]
    assert [x["step"] for x in train_lines] == list(range(10, TRAIN_STEPS + 1, 10))
    assert all(x["samples_per_s"] > 0 and x["lr"] > 0 and x["dataset"] == 0 for x in train_lines)
    assert [x["step"] for x in lines if "eval_loss" in x] == [0, TRAIN_STEPS]
    ckpt = result.checkpoint
    assert ckpt == result.run_dir / "checkpoints" / f"step_{TRAIN_STEPS:07d}"
    assert (result.run_dir / "checkpoints" / "latest.txt").read_text().strip() == ckpt.name
    for name in ("model.safetensors", "config.yaml", "vae.safetensors", "action_stats/twin.json",
                 "train_state/optimizer.pt", "train_state/online.safetensors", "train_state/trainer.json"):
        assert (ckpt / name).is_file(), name


def test_resume_continues_step_count_and_state(run, tmp_path):
    result = run["result"]
    mid = result.run_dir / "checkpoints" / f"step_{CKPT_EVERY:07d}"
    overrides = train_overrides(run["data"], tmp_path / "resumed", run["base"] / "cache")
    cfg = load_train_config([*overrides, f"trainer.resume={mid}"])
    threads = torch.get_num_threads()
    trainer = Trainer(cfg)
    assert trainer.step == CKPT_EVERY and trainer.sched.last_epoch == CKPT_EVERY
    saved = load_file(str(mid / "train_state" / "online.safetensors"))
    for k, v in trainer.raw_net.state_dict().items():
        torch.testing.assert_close(v, saved[k], rtol=0, atol=0)
    saved_optim = torch.load(mid / "train_state" / "optimizer.pt", weights_only=True)["state"]
    assert sum(int(s["step"]) == CKPT_EVERY for s in trainer.opt.state.values()) == len(saved_optim) > 0
    try:
        final = trainer.fit()
    finally:
        torch.set_num_threads(threads)
    assert final.step == TRAIN_STEPS
    steps = [json.loads(x)["step"] for x in (final.run_dir / "metrics.jsonl").read_text().splitlines()
             if "loss" in json.loads(x)]
    assert steps == [20, 30]
    # the interrupted-and-resumed run ends where the uninterrupted one did
    a = load_file(str(final.checkpoint / "model.safetensors"))
    b = load_file(str(result.checkpoint / "model.safetensors"))
    for k in b:
        torch.testing.assert_close(a[k], b[k], rtol=1e-5, atol=1e-6)


def test_config_errors_name_the_key(capsys):
    assert main(["trainer.max_steps=5"]) == 2
    assert "data.roots is empty" in capsys.readouterr().err
    with pytest.raises(ConfigError, match="no_such_key"):
        load_train_config(["data.roots=[/x]", "no_such_key.a=1"])
    cfg = load_train_config(["data.roots=[/x]", "data.resolution=[30,32]"])
    from worldmodel.train import validate_config

    with pytest.raises(ConfigError, match=r"data.resolution=\[30, 32\]"):
        validate_config(cfg)
    cfg = load_train_config(["data.roots=[/x]", "trainer.strategy=zero3"])
    with pytest.raises(ConfigError, match="trainer.strategy='zero3'"):
        validate_config(cfg)
    big = load_train_config(["data.roots=[/x]", "+train=a2world_2b"])
    assert big["net"]["model_channels"] == 2048 and big["net"]["in_channels"] == 16 == big["vae"]["z_dim"]
    assert big["trainer"]["strategy"] == "fsdp2" and big["data"]["resolution"] == [256, 256]


def test_lr_schedule():
    f = lr_lambda("cosine", warmup=10, max_steps=110, min_ratio=0.1)
    assert f(0) == pytest.approx(0.1) and f(9) == pytest.approx(1.0)
    assert f(10) == pytest.approx(1.0) and f(60) == pytest.approx(0.55) and f(110) == pytest.approx(0.1)
    g = lr_lambda("constant", warmup=0, max_steps=100, min_ratio=0.1)
    assert g(0) == g(99) == 1.0


def test_activation_checkpointing_gives_same_gradients():
    from worldmodel.configs import load_net_config
    from worldmodel.diffusion import Conditioning, first_frames_mask, training_loss
    from worldmodel.network.a2world import build_net

    cfg = load_net_config("tiny")
    torch.manual_seed(0)
    a = build_net(cfg)
    b = build_net(cfg)
    b.load_state_dict(a.state_dict())
    enable_activation_checkpointing(b)
    x0 = torch.randn(1, 16, 12, 4, 4)
    cond = Conditioning(latents=x0, frame_mask=first_frames_mask(1, 2, 6), action=torch.randn(1, 20, 14),
                        view_ids=torch.tensor([[0, 2]]))
    sigma, eps = torch.tensor([[1.5]]), torch.randn_like(x0)
    for net in (a, b):
        training_loss(net, x0, cond, sigma, eps).backward()
    for (name, p), q in zip(a.named_parameters(), b.parameters()):
        torch.testing.assert_close(p.grad, q.grad, rtol=1e-5, atol=1e-6, msg=name)


def test_torchrun_fsdp2_two_processes_checkpoint_and_resume(run, tmp_path):
    """`a2world worldmodel train --nproc 2` relaunches under torchrun (gloo on CPU); FSDP2 + EMA checkpoints
    gather the sharded state, and resuming mid-run ends bit-identical to the uninterrupted run."""
    import os
    import subprocess
    import sys

    from safetensors.torch import load_file

    def launch(run_dir, *extra):
        overrides = train_overrides(run["data"], run_dir, run["base"] / "cache", steps=6)
        cmd = [sys.executable, "-m", "a2world_ros.cli.main", "worldmodel", "train", "--nproc", "2", *overrides,
               "trainer.strategy=fsdp2", "trainer.ema_decay=0.9", "trainer.ckpt_every=3", "trainer.eval_batches=1",
               *extra]
        env = {k: v for k, v in os.environ.items() if k not in ("WORLD_SIZE", "RANK", "LOCAL_RANK")}
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
        assert r.returncode == 0, r.stderr[-3000:]
        return run_dir / "checkpoints"

    full = launch(tmp_path / "full")
    assert (full / "latest.txt").read_text().strip() == "step_0000006"
    resumed = launch(tmp_path / "resumed", f"trainer.resume={full / 'step_0000003'}")
    a = load_file(str(full / "step_0000006" / "model.safetensors"))
    b = load_file(str(resumed / "step_0000006" / "model.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_pixel_mode_with_init_ema_checkpointing_and_workers(run, tmp_path):
    """Without a latent cache the VAE encodes each batch; init_from loads a checkpoint; EMA weights are exported."""
    ckpt = run["result"].checkpoint
    overrides = [f"data.roots=[{run['data']}]", f"run_dir={tmp_path}", "+train=smoke", "data.resolution=[32,32]",
                 "data.clip_hop=20", "trainer.max_steps=2", "trainer.batch_size=2", "trainer.eval_batches=0",
                 "trainer.progress=false", "trainer.activation_checkpointing=true", "trainer.ema_decay=0.5",
                 "data.num_workers=1", f"init_from={ckpt}"]
    threads = torch.get_num_threads()
    try:
        trainer = Trainer(load_train_config(overrides))
        assert trainer.data.datasets[0].mode == "pixels"
        init = load_file(str(ckpt / "model.safetensors"))
        for k, v in trainer.raw_net.state_dict().items():
            torch.testing.assert_close(v, init[k], rtol=0, atol=0)
        result = trainer.fit()
    finally:
        torch.set_num_threads(threads)
    assert result.step == 2 and result.first_eval_loss is None
    exported = load_file(str(result.checkpoint / "model.safetensors"))
    ema = load_file(str(result.checkpoint / "train_state" / "ema.safetensors"))
    online = load_file(str(result.checkpoint / "train_state" / "online.safetensors"))
    name = "blocks.0.mlp.layer1.weight"
    assert torch.equal(exported[name], ema[name]) and not torch.equal(ema[name], online[name])
    assert not torch.equal(ema[name], init[name])
