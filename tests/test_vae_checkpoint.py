"""Wan2.1 VAE checkpoint layout (full size, meta device), save/load round trips, clear mismatch errors."""

from __future__ import annotations

import pytest
import torch

from worldmodel.vae import WanVAE, WanVAEConfig
from worldmodel.vae.checkpoint import VAECheckpointError, load_vae, read_state_dict

TINY = WanVAEConfig(dim=8, z_dim=4, num_res_blocks=1, latent_stats="identity")


def reference_layout() -> dict[str, tuple[int, ...]]:
    """Key -> shape of the public `Wan2.1_VAE.pth`, written out from the reference architecture
    (dim 96, z 16, dim_mult 1-2-4-4, 2 res blocks, temporal downsample F-T-T), independent of our modules."""
    out: dict[str, tuple[int, ...]] = {}

    def conv(name: str, o: int, i: int, k: tuple[int, ...]) -> None:
        out[f"{name}.weight"] = (o, i, *k)
        out[f"{name}.bias"] = (o,)

    def res(name: str, i: int, o: int) -> None:
        out[f"{name}.residual.0.gamma"] = (i, 1, 1, 1)
        conv(f"{name}.residual.2", o, i, (3, 3, 3))
        out[f"{name}.residual.3.gamma"] = (o, 1, 1, 1)
        conv(f"{name}.residual.6", o, o, (3, 3, 3))
        if i != o:
            conv(f"{name}.shortcut", o, i, (1, 1, 1))

    def attn(name: str, c: int) -> None:
        out[f"{name}.norm.gamma"] = (c, 1, 1)
        conv(f"{name}.to_qkv", 3 * c, c, (1, 1))
        conv(f"{name}.proj", c, c, (1, 1))

    conv("encoder.conv1", 96, 3, (3, 3, 3))
    enc = [("res", 96, 96), ("res", 96, 96), ("down", 96, 0), ("res", 96, 192), ("res", 192, 192),
           ("down3d", 192, 0), ("res", 192, 384), ("res", 384, 384), ("down3d", 384, 0),
           ("res", 384, 384), ("res", 384, 384)]
    for idx, (kind, a, b) in enumerate(enc):
        name = f"encoder.downsamples.{idx}"
        if kind == "res":
            res(name, a, b)
        else:
            conv(f"{name}.resample.1", a, a, (3, 3))
            if kind == "down3d":
                conv(f"{name}.time_conv", a, a, (3, 1, 1))
    for part in ("encoder", "decoder"):
        res(f"{part}.middle.0", 384, 384)
        attn(f"{part}.middle.1", 384)
        res(f"{part}.middle.2", 384, 384)
    out["encoder.head.0.gamma"] = (384, 1, 1, 1)
    conv("encoder.head.2", 32, 384, (3, 3, 3))
    conv("conv1", 32, 32, (1, 1, 1))
    conv("conv2", 16, 16, (1, 1, 1))
    conv("decoder.conv1", 384, 16, (3, 3, 3))
    dec = [("res", 384, 384)] * 3 + [("up3d", 384, 0)] + [("res", 192, 384)] + [("res", 384, 384)] * 2 + \
          [("up3d", 384, 0)] + [("res", 192, 192)] * 3 + [("up2d", 192, 0)] + [("res", 96, 96)] * 3
    for idx, (kind, a, b) in enumerate(dec):
        name = f"decoder.upsamples.{idx}"
        if kind == "res":
            res(name, a, b)
        else:
            conv(f"{name}.resample.1", a // 2, a, (3, 3))
            if kind == "up3d":
                conv(f"{name}.time_conv", 2 * a, a, (3, 1, 1))
    out["decoder.head.0.gamma"] = (96, 1, 1, 1)
    conv("decoder.head.2", 3, 96, (3, 3, 3))
    return out


def test_full_size_state_dict_matches_the_public_checkpoint_layout():
    with torch.device("meta"):
        model = WanVAE(WanVAEConfig())
    ours = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    expected = reference_layout()
    assert sorted(set(expected) - set(ours)) == [] and sorted(set(ours) - set(expected)) == []
    assert ours == expected
    assert len(ours) == 194
    assert sum(1 for k in ours if k.startswith(("decoder.", "conv2."))) == 108
    # 126.9 M parameters = 507.6 MB in fp32, the size of the released Wan2.1_VAE.pth (about 508 MB)
    assert sum(torch.Size(s).numel() for s in ours.values()) == 126_892_531
    assert model.encoder.conv1.weight.is_meta


def test_safetensors_and_pth_round_trip(tmp_path):
    torch.manual_seed(0)
    model = WanVAE(TINY).eval()
    clip = torch.rand(1, 3, 5, 16, 16) * 2 - 1
    with torch.no_grad():
        expected = model.encode(clip)
    for name in ("vae.safetensors", "vae.pth"):
        path = model.save_checkpoint(tmp_path / name)
        loaded = WanVAE.from_checkpoint(path, config=TINY)
        with torch.no_grad():
            assert torch.equal(loaded.encode(clip), expected)
        assert not any(p.is_meta for p in loaded.parameters())
        assert loaded.latent_mean.device.type == "cpu"
    auto = load_vae(tmp_path / "vae.safetensors", config="auto")  # our files carry their config
    assert auto.config == TINY
    bf16 = WanVAE.from_checkpoint(tmp_path / "vae.pth", dtype=torch.bfloat16, config="tiny")
    assert {p.dtype for p in bf16.parameters()} == {torch.bfloat16}
    assert bf16.encode(clip).dtype == torch.float32


def test_mismatch_names_missing_unexpected_and_misshaped_keys(tmp_path):
    state = WanVAE(TINY).state_dict()
    del state["decoder.head.2.bias"]
    state["encoder.extra.weight"] = torch.zeros(1)
    state["conv2.weight"] = torch.zeros(4, 4, 3, 1, 1)
    path = tmp_path / "bad.pth"
    torch.save(state, path)
    with pytest.raises(VAECheckpointError) as info:
        WanVAE.from_checkpoint(path, config=TINY)
    message = str(info.value)
    assert str(path) in message
    assert "1 missing [decoder.head.2.bias]" in message
    assert "1 unexpected [encoder.extra.weight]" in message
    assert "conv2.weight: file (4, 4, 3, 1, 1) vs model (4, 4, 1, 1, 1)" in message


def test_wrong_config_for_checkpoint_is_reported(tmp_path):
    path = WanVAE(TINY).save_checkpoint(tmp_path / "tiny.safetensors")
    with pytest.raises(VAECheckpointError, match=r"\(194 tensors expected\): .*wrongly shaped.*config=.auto."):
        WanVAE.from_checkpoint(path, config="wan2.1")


def test_unreadable_files_are_named(tmp_path):
    with pytest.raises(VAECheckpointError, match="no such checkpoint"):
        read_state_dict(tmp_path / "absent.pth")
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(VAECheckpointError, match="junk.pth: cannot read"):
        read_state_dict(junk)
    torch.save({"weights": [1, 2, 3]}, tmp_path / "list.pth")
    with pytest.raises(VAECheckpointError, match="mapping of parameter names to tensors"):
        read_state_dict(tmp_path / "list.pth")
