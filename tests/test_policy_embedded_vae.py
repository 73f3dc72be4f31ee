"""A policy on the trained embedded VAE (config/policy/embedded.yaml) carries that VAE inside its file, fitted
latent statistics included, so a copied checkpoint folder encodes exactly as it did in training; the full
Wan2.1 VAE stays a reference by path."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import torch

from policy.action_repr import Normalizer
from policy.checkpoint import build_text_encoder, build_vae, embeds_vae, load_policy, save_policy
from policy.config import VaeSection, load_policy_config
from policy.model import build_policy_net
from worldmodel.vae import WanVAE

REPO = Path(__file__).resolve().parents[1]


def test_embedded_policy_checkpoint_holds_its_vae_and_statistics(tmp_path):
    vae_file = REPO / "checkpoints" / "embedded" / "vae" / "vae.safetensors"
    cfg = load_policy_config("embedded", [f"vae.checkpoint={vae_file}"])
    vae = build_vae(cfg.vae)
    reference = WanVAE.from_checkpoint(vae_file, config="auto")
    assert not torch.allclose(vae.latent_std, torch.ones_like(vae.latent_std))  # fitted, not identity
    rng = np.random.default_rng(0)
    actions, states = rng.normal(0, 0.02, (200, 14)), rng.normal(0, 0.1, (20, 2, 8))
    norm = Normalizer.fit(actions, states, action_min_std=0.005, state_min_std=0.02)
    saved = save_policy(tmp_path / "a", cfg, norm, build_policy_net(cfg).eval(), build_text_encoder(cfg), vae)
    moved = tmp_path / "elsewhere"
    shutil.copytree(saved, moved)
    loaded = load_policy(moved)
    torch.testing.assert_close(loaded.vae.latent_mean, reference.latent_mean)
    torch.testing.assert_close(loaded.vae.latent_std, reference.latent_std)
    frames = torch.rand(1, 3, 5, 96, 128) * 2 - 1
    with torch.no_grad():
        torch.testing.assert_close(loaded.vae.encode(frames), reference.encode(frames))


def test_only_the_full_wan_vae_is_referenced_by_path():
    assert not embeds_vae(VaeSection(config="wan2.1", checkpoint="checkpoints/Wan2.1_VAE.pth"))
    assert embeds_vae(VaeSection(config="embedded", checkpoint="checkpoints/embedded/vae/vae.safetensors"))
    assert embeds_vae(VaeSection(config="tiny", checkpoint=None))
