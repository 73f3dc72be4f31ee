"""The embedded checkpoints shipped in checkpoints/embedded/ load with the code's configs and carry what the
rest of the stack relies on: a trained VAE with fitted latent statistics, a world model that uses it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import yaml

from worldmodel.vae import WanVAE, load_vae_config
from worldmodel.vae.checkpoint import is_trained, training_record

ROOT = Path(__file__).resolve().parent.parent / "checkpoints" / "embedded"
VAE = ROOT / "vae" / "vae.safetensors"
WM = ROOT / "worldmodel"


@pytest.mark.skipif(not VAE.is_file(), reason="no shipped embedded VAE")
def test_shipped_vae_matches_the_code_config_and_is_trained():
    vae = WanVAE.from_checkpoint(VAE, config="auto")
    assert vae.config == load_vae_config("embedded")  # the file's architecture is the one the code ships
    run_config = yaml.safe_load((ROOT / "vae" / "config.yaml").read_text())  # the train-vae run's config
    assert run_config["vae"] == load_vae_config("embedded").to_dict()
    assert is_trained(VAE)
    record = training_record(VAE)
    report = json.loads((ROOT / "vae" / "report.json").read_text())
    assert record["steps"] == report["step"] and record["heldout_psnr"] == pytest.approx(report["heldout"]["psnr"])
    torch.testing.assert_close(vae.latent_std, torch.tensor(report["latent_std"]))
    h, w = record["resolution"]
    with torch.no_grad():
        z = vae.encode(torch.zeros(1, 3, 5, h, w))
    assert z.shape == (1, 16, 2, h // 8, w // 8)


@pytest.mark.skipif(not (WM / "model.safetensors").is_file(), reason="no shipped embedded world model")
def test_shipped_world_model_loads_with_its_vae():
    import numpy as np

    from worldmodel.checkpoint import read_own_config
    from worldmodel.configs import A2WorldNetConfig
    from worldmodel.predict import WorldModelPredictor
    from worldmodel.train import load_train_config

    net_cfg, info = read_own_config(WM)
    code_cfg = load_train_config(["data.roots=[/x]", "+train=embedded"])
    assert net_cfg == A2WorldNetConfig.from_dict(code_cfg["net"], source="code")
    assert info["metadata"]["training"]["vae"]["config"] == code_cfg["vae"]
    assert info["metadata"]["training"]["vae"]["weights"] == "../vae/vae.safetensors"  # travels with the clone
    p = WorldModelPredictor.from_checkpoint(WM)
    assert p.vae_warning is None and p.resolution == tuple(code_cfg["data"]["resolution"])
    # one training dataset per task, each with its own action statistics: a task's actions use its own
    assert p.stats_for_task("lift the box high") == "train_lift_box_high"
    assert p.stats_for_task("an unknown task") is None
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        out = p.predict({"front": np.zeros((96, 128, 3), np.uint8)}, np.zeros((20, 14)), steps=1)
    finally:
        torch.set_num_threads(threads)
    assert out["front"].shape == (21, *p.resolution, 3)
