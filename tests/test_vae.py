"""Wan2.1 VAE model: shapes, the 1 + 4k rule, causality, chunked == one-shot, streams, normalisation, bf16."""

from __future__ import annotations

import math

import pytest
import torch

from worldmodel.vae import (
    FrameCountError,
    WanVAE,
    WanVAEConfig,
    latent_frame_count,
    load_vae_config,
    video_frame_count,
)
from worldmodel.vae.latent_stats import WAN21_LATENT_MEAN, WAN21_LATENT_STD

TINY = WanVAEConfig(dim=8, z_dim=4, num_res_blocks=1, latent_stats="identity")


def randomised(cfg: WanVAEConfig = TINY, seed: int = 0) -> WanVAE:
    """A model whose every parameter (gammas, the zero-initialised attention projection) is random."""
    torch.manual_seed(seed)
    model = WanVAE(cfg).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn_like(p) * (0.5 if p.dim() == 1 else 0.2))
    return model


def video(b: int = 1, t: int = 9, h: int = 16, w: int = 24, seed: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(b, 3, t, h, w, generator=g) * 2 - 1


@pytest.fixture(scope="module")
def model() -> WanVAE:
    return randomised()


def test_configs_on_disk_load():
    assert load_vae_config("wan2.1") == WanVAEConfig()
    tiny = load_vae_config("tiny")
    assert tiny.dim <= 16 and tiny.spatial_factor == 8 and tiny.temporal_factor == 4


def test_shapes_are_8x_spatial_4x_temporal(model):
    with torch.no_grad():
        z = model.encode(video(b=2, t=13, h=16, w=32))
        assert z.shape == (2, 4, 4, 2, 4) and z.dtype == torch.float32
        x = model.decode(z)
    assert x.shape == (2, 3, 13, 16, 32)
    assert x.min() >= -1 and x.max() <= 1


@pytest.mark.parametrize(("frames", "latents"), [(1, 1), (5, 2), (9, 3), (21, 6), (81, 21)])
def test_frame_rule(frames, latents):
    assert latent_frame_count(frames) == latents
    assert video_frame_count(latents) == frames


@pytest.mark.parametrize("frames", [0, 2, 4, 8, 20])
def test_frame_rule_rejects_other_counts(model, frames):
    with pytest.raises(FrameCountError, match=r"1 \+ 4k"):
        latent_frame_count(frames)
    if frames:
        with pytest.raises(FrameCountError, match=f"{frames} frames"):
            model.encode(video(t=frames))


def test_bad_inputs_are_named(model):
    with pytest.raises(ValueError, match="multiples of 8"):
        model.encode(video(h=12))
    with pytest.raises(ValueError, match=r"\(B, 3, T, H, W\)"):
        model.encode(torch.zeros(1, 4, 5, 16, 16))
    with pytest.raises(ValueError, match=r"expected \[-1, 1\]"):
        model.encode(video() * 255)
    with pytest.raises(ValueError, match="float"):
        model.encode(torch.zeros(1, 3, 5, 16, 16, dtype=torch.uint8))
    with pytest.raises(ValueError, match=r"\(B, 4, n, h, w\)"):
        model.decode(torch.zeros(1, 16, 2, 2, 2))


def test_chunked_encode_decode_equal_one_shot(model):
    x = video(b=1, t=13)
    with torch.no_grad():
        z_chunked = model.encode(x)
        z_once = model.encode(x, chunked=False)
        wide = WanVAE(WanVAEConfig(**{**TINY.to_dict(), "encode_chunk_frames": 8, "decode_chunk_latents": 2}))
        wide.load_state_dict(model.state_dict())
        z_wide = wide.eval().encode(x)
        torch.testing.assert_close(z_chunked, z_once, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(z_chunked, z_wide, atol=1e-5, rtol=1e-5)
        x_chunked = model.decode(z_chunked, clamp=False)
        x_once = model.decode(z_chunked, chunked=False, clamp=False)
        x_wide = wide.decode(z_chunked, clamp=False)
    torch.testing.assert_close(x_chunked, x_once, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(x_chunked, x_wide, atol=1e-5, rtol=1e-5)


def test_streams_match_whole_clip(model):
    x = video(t=13)
    with torch.no_grad():
        z = model.encode(x)
        enc = model.encode_stream()
        pieces = [enc.push(x[:, :, :1]), enc.push(x[:, :, 1:5])]
        buffers = {layer: tail.data_ptr() for layer, tail in enc.state._tails.items()}
        pieces += [enc.push(x[:, :, 5:9]), enc.push(x[:, :, 9:13])]
        torch.testing.assert_close(torch.cat(pieces, dim=2), z, atol=1e-5, rtol=1e-5)
        # same-shaped chunks reuse every layer's tail buffer (filled in place, not reallocated)
        assert {layer: tail.data_ptr() for layer, tail in enc.state._tails.items()} == buffers
        with pytest.raises(FrameCountError, match="multiple of 4"):
            enc.push(x[:, :, :3])
        with pytest.raises(FrameCountError, match=r"1 \+ 4k"):
            model.encode_stream().push(x[:, :, :4])
        frames = model.decode(z)
        dec = model.decode_stream()
        out = [dec.push(z[:, :, :1]), dec.push(z[:, :, 1:3]), dec.push(z[:, :, 3:])]
    assert [o.shape[2] for o in out] == [1, 8, 4]
    torch.testing.assert_close(torch.cat(out, dim=2), frames, atol=1e-5, rtol=1e-5)


def test_encoder_is_causal(model):
    x = video(t=13)
    later = x.clone()
    later[:, :, 5:] = video(t=8, seed=7)  # frames 5..12 changed: latents 2, 3 may change, 0, 1 must not
    first_only = x.clone()
    first_only[:, :, 1:] = 0.0
    with torch.no_grad():
        z, z_later, z_first = model.encode(x), model.encode(later), model.encode(first_only)
        z_image = model.encode(x[:, :, :1])
        z_once, z_later_once = model.encode(x, chunked=False), model.encode(later, chunked=False)
    assert torch.equal(z[:, :, :2], z_later[:, :, :2])  # chunked: bit-exact
    assert not torch.allclose(z[:, :, 2:], z_later[:, :, 2:])
    assert torch.equal(z[:, :, :1], z_first[:, :, :1])
    torch.testing.assert_close(z[:, :, :1], z_image, atol=1e-6, rtol=0)  # latent 0 = image latent of frame 0
    torch.testing.assert_close(z_once[:, :, :2], z_later_once[:, :, :2], atol=1e-6, rtol=0)


def test_decoder_is_causal(model):
    z = torch.randn(1, 4, 4, 2, 3, generator=torch.Generator().manual_seed(3))
    changed = z.clone()
    changed[:, :, 2:] = torch.randn(1, 4, 2, 2, 3)
    with torch.no_grad():
        x, x_changed = model.decode(z, clamp=False), model.decode(changed, clamp=False)
        x_first = model.decode(z[:, :, :1], clamp=False)
    assert torch.equal(x[:, :, :5], x_changed[:, :, :5])  # frames 0..4 come from latents 0, 1
    assert not torch.allclose(x[:, :, 5:], x_changed[:, :, 5:])
    torch.testing.assert_close(x[:, :, :1], x_first, atol=1e-6, rtol=0)


def test_latent_normalisation_round_trip():
    cfg = WanVAEConfig(dim=8, z_dim=16, num_res_blocks=1, latent_stats="wan2.1")
    model = randomised(cfg)
    x = video(t=5)
    with torch.no_grad():
        mu = model.encode(x, normalize=False)
        z = model.encode(x)
        for c in (0, 7, 15):
            expected = (mu[:, c] - WAN21_LATENT_MEAN[c]) / WAN21_LATENT_STD[c]
            torch.testing.assert_close(z[:, c], expected, atol=1e-6, rtol=1e-6)
        torch.testing.assert_close(model.denormalize(z), mu, atol=1e-6, rtol=1e-6)
        torch.testing.assert_close(model.decode(z), model.decode(mu, normalized=False), atol=1e-6, rtol=1e-6)
    with pytest.raises(ValueError, match="z_dim=4"):
        WanVAE(WanVAEConfig(dim=8, z_dim=4, latent_stats="wan2.1"))


def test_bf16_autocast_and_bf16_weights(model):
    x = video(t=5)
    with torch.no_grad():
        ref = model.encode(x)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            z_auto = model.encode(x)
            x_auto = model.decode(ref)
        bf16 = randomised().to(torch.bfloat16)
        z_bf16 = bf16.encode(x)
    assert z_auto.dtype == torch.float32 and x_auto.shape == (1, 3, 5, 16, 24)
    scale = ref.abs().mean()
    assert (z_auto - ref).abs().mean() < 0.05 * scale
    assert (z_bf16 - ref).abs().mean() < 0.05 * scale


def test_gradients_flow_in_one_shot_mode():
    model = randomised().train()
    loss = model.decode(model.encode(video(t=5), chunked=False), chunked=False, clamp=False).square().mean()
    loss.backward()
    assert model.encoder.conv1.weight.grad is not None and model.encoder.conv1.weight.grad.abs().sum() > 0


def _wave_fill(model: WanVAE) -> None:
    """Deterministic, RNG-free weights (same recipe used to produce the golden numbers below)."""
    with torch.no_grad():
        for k, (name, p) in enumerate(sorted(model.state_dict().items())):
            wave = torch.sin(torch.arange(p.numel(), dtype=torch.float64) * 0.37 + k).float().reshape(p.shape)
            if name.endswith("gamma"):
                p.copy_(1.0 + 0.3 * wave)
            elif p.dim() == 1:
                p.copy_(0.05 * wave)
            else:
                p.copy_(wave * (1.5 / math.sqrt(p[0].numel())))


def wave_clip(t: int, h: int, w: int) -> torch.Tensor:
    tt = torch.arange(float(t)).view(1, 1, t, 1, 1)
    y = torch.arange(float(h)).view(1, 1, 1, h, 1)
    x = torch.arange(float(w)).view(1, 1, 1, 1, w)
    c = torch.arange(3.0).view(1, 3, 1, 1, 1)
    return torch.sin(0.9 * x + 0.5 * y + 0.7 * tt + 2.0 * c) * torch.cos(0.3 * y - 0.2 * x + tt)


def test_windowed_encode_matches_the_cosmos_split(model):
    """A2World/Cosmos encode with temporal_window=16: 1|16|16|7 frames for its 40-frame Libero history."""
    x = video(t=40)
    with torch.no_grad():
        z = model.encode_windowed(x, 16)
        aligned = model.encode(x[:, :, :33])
        short = video(t=21)
        torch.testing.assert_close(model.encode_windowed(short, 16), model.encode(short), atol=1e-5, rtol=1e-5)
    assert z.shape[2] == 10
    torch.testing.assert_close(z[:, :, :9], aligned, atol=1e-5, rtol=1e-5)
    with pytest.raises(FrameCountError, match="last window has 3 frames"):
        model.encode_windowed(video(t=20), 16)
    with pytest.raises(FrameCountError, match="multiple of 4"):
        model.encode_windowed(x, 6)
    # the ragged last latent, against numbers from the reference modules run with the Cosmos split
    wave = WanVAE(TINY).eval()
    _wave_fill(wave)
    with torch.no_grad():
        last = wave.encode_windowed(wave_clip(40, 16, 16), 16)[0, :, 9].sum(dim=(1, 2))
    golden = torch.tensor([0.9290707111358643, -0.7768797874450684, 0.876266360282898, -0.430093377828598])
    torch.testing.assert_close(last, golden, atol=1e-4, rtol=1e-4)


def test_matches_numbers_from_the_public_reference_implementation():
    """Golden values computed with the public Wan2.1 `wan/modules/vae.py` (WanVAE_ with dim=8, z_dim=4,
    num_res_blocks=1, identity scale) loaded with the same `_wave_fill` weights and the same input."""
    model = WanVAE(TINY).eval()
    _wave_fill(model)
    clip = wave_clip(9, 16, 24)
    with torch.no_grad():
        mu = model.encode(clip)
        rec = model.decode(mu, clamp=False)
    assert mu.shape == (1, 4, 3, 2, 3)
    golden_sums = torch.tensor([0.7263100147247314, 0.8523715734481812, 0.627925455570221])
    torch.testing.assert_close(mu.sum(dim=(0, 1, 3, 4)), golden_sums, atol=1e-4, rtol=1e-4)
    golden_mu = torch.tensor([0.27925845980644226, -0.2227344959974289, 0.22816723585128784, -0.096910759806633])
    torch.testing.assert_close(mu[0, :, 1, 1, 2], golden_mu, atol=1e-5, rtol=1e-4)
    golden_means = torch.tensor([0.08561111986637115, -0.13078457117080688, 0.3748660981655121,
                                 -0.29333263635635376, 0.2770327925682068, -0.05531716346740723,
                                 0.10250867903232574, -0.016395488753914833, 0.22159560024738312])
    torch.testing.assert_close(rec.mean(dim=(0, 1, 3, 4)), golden_means, atol=1e-4, rtol=1e-4)
    golden_px = torch.tensor([1.9895776510238647, 3.839055299758911, -3.3449792861938477])
    torch.testing.assert_close(rec[0, :, 5, 3, 7], golden_px, atol=1e-4, rtol=1e-4)
