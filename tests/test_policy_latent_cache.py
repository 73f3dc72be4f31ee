"""The policy's on-disk clip-latent cache: reused when clips and VAE are the same, never stale."""

from __future__ import annotations

import torch

from policy.checkpoint import build_vae
from policy.config import load_policy_config
from policy.latent_cache import cached_latents, latent_cache_key
from worldmodel.data.latents import vae_fingerprint


def _dataset(root):
    (root / "meta").mkdir(parents=True)
    (root / "data").mkdir()
    (root / "meta" / "info.json").write_text('{"fps": 30}')
    (root / "data" / "file-000.parquet").write_bytes(b"rows")
    return root


def test_cache_reuses_latents_and_keys_on_what_they_depend_on(tmp_path):
    root = _dataset(tmp_path / "ds")
    cfg = load_policy_config("tiny")
    key = latent_cache_key(cfg, [root], [(0, 0), (0, 1)], 6, "vae0")
    calls = []

    def encode():
        calls.append(1)
        return torch.arange(6.0).reshape(2, 3)

    first = cached_latents(tmp_path / "cache", key, "train", encode, log=lambda m: None)
    again = cached_latents(tmp_path / "cache", key, "train", encode, log=lambda m: None)
    assert torch.equal(first, again) and len(calls) == 1
    # not part of the key: network, steps, initialisation
    assert latent_cache_key(load_policy_config("tiny", ["train.steps=9", "net.num_blocks=1"]), [root],
                            [(0, 0), (0, 1)], 6, "vae0") == key
    # part of it: episodes, stride, image size, cameras, VAE, the dataset's files
    assert latent_cache_key(cfg, [root], [(0, 0)], 6, "vae0") != key
    assert latent_cache_key(cfg, [root], [(0, 0), (0, 1)], 3, "vae0") != key
    assert latent_cache_key(load_policy_config("tiny", ["policy.image_size=[64,64]"]), [root],
                            [(0, 0), (0, 1)], 6, "vae0") != key
    assert latent_cache_key(load_policy_config("tiny", ["policy.cameras=[front]"]), [root],
                            [(0, 0), (0, 1)], 6, "vae0") != key
    assert latent_cache_key(cfg, [root], [(0, 0), (0, 1)], 6, "vae1") != key
    (root / "data" / "file-000.parquet").write_bytes(b"more rows")
    assert latent_cache_key(cfg, [root], [(0, 0), (0, 1)], 6, "vae0") != key


def test_vae_weights_are_part_of_the_key(tmp_path):
    """The key takes the loaded VAE's fingerprint: another seed or other weights give another key."""
    root = _dataset(tmp_path / "ds")
    cfg = load_policy_config("tiny")
    vae = build_vae(cfg.vae)
    key = latent_cache_key(cfg, [root], [(0, 0)], 6, vae_fingerprint(vae))
    assert latent_cache_key(cfg, [root], [(0, 0)], 6, vae_fingerprint(build_vae(cfg.vae))) == key
    other_seed = build_vae(load_policy_config("tiny", ["vae.seed=1"]).vae)
    assert latent_cache_key(cfg, [root], [(0, 0)], 6, vae_fingerprint(other_seed)) != key
    with torch.no_grad():
        next(vae.parameters()).add_(1e-3)
    assert latent_cache_key(cfg, [root], [(0, 0)], 6, vae_fingerprint(vae)) != key


def test_unreadable_or_foreign_cache_file_is_encoded_again(tmp_path):
    messages: list[str] = []
    path = tmp_path / f"train-{'a' * 16}.pt"
    path.write_bytes(b"not a torch file")
    out = cached_latents(tmp_path, "a" * 64, "train", lambda: torch.ones(2), log=messages.append)
    assert torch.equal(out, torch.ones(2)) and "unreadable" in messages[0]
    torch.save({"key": "a" * 16 + "b" * 48, "latents": torch.zeros(2)}, path)
    out = cached_latents(tmp_path, "a" * 64, "train", lambda: torch.full((2,), 3.0), log=messages.append)
    assert torch.equal(out, torch.full((2,), 3.0)) and "another key" in messages[1]
    assert cached_latents(None, "x", "train", lambda: torch.zeros(1)).shape == (1,)
    assert not list(tmp_path.glob("*.tmp"))
