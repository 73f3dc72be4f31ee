"""The Wan2.1 causal video VAE: encoder, decoder and the `WanVAE` module with chunked encode/decode.

Video in [-1, 1], shape (B, 3, T, H, W) with T = 1 + 4k and H, W multiples of 8, maps to latents
(B, 16, 1 + k, H/8, W/8). The first latent frame encodes frame 0 alone (an image latent); latent j >= 1
encodes frames 4j-3 .. 4j with causal access to everything before. Module names reproduce the key
layout of the public `Wan2.1_VAE.pth` state dict exactly (194 tensors at full size, no prefix).
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from pathlib import Path

import torch
from torch import nn

from worldmodel.vae.blocks import AttentionBlock, Resample, ResidualBlock, RMSNorm
from worldmodel.vae.causal_conv import CausalConv3d
from worldmodel.vae.config import WanVAEConfig, load_vae_config
from worldmodel.vae.latent_stats import denormalize_latents, latent_stats, normalize_latents
from worldmodel.vae.stream_state import StreamState

_RANGE_SLACK = 0.01  # tolerance for rounding (bf16) and resampling overshoot in the [-1, 1] input check


class FrameCountError(ValueError):
    """A frame count that breaks the 1 + 4k rule (or a chunk that breaks the chunking rules)."""


def latent_frame_count(num_frames: int, temporal_factor: int = 4) -> int:
    """Latent frames for `num_frames` video frames: 1 + (T - 1) / 4; other T raise FrameCountError."""
    if num_frames < 1 or (num_frames - 1) % temporal_factor:
        raise FrameCountError(
            f"video has {num_frames} frames; the causal VAE needs 1 + {temporal_factor}k frames "
            f"(1, {1 + temporal_factor}, {1 + 2 * temporal_factor}, ...)")
    return 1 + (num_frames - 1) // temporal_factor


def video_frame_count(num_latents: int, temporal_factor: int = 4) -> int:
    """Video frames decoded from `num_latents` latent frames: 1 + 4 (n - 1)."""
    if num_latents < 1:
        raise FrameCountError(f"need at least one latent frame, got {num_latents}")
    return 1 + temporal_factor * (num_latents - 1)


def _run(layers: nn.Sequential, x: torch.Tensor, state: StreamState | None) -> torch.Tensor:
    for layer in layers:
        x = layer(x, state) if isinstance(layer, (ResidualBlock, AttentionBlock, Resample, CausalConv3d)) else layer(x)
    return x


class Encoder3d(nn.Module):
    """Video (B, 3, T, H, W) -> encoder features (B, out_channels, 1 + (T-1)/4, H/8, W/8)."""

    def __init__(self, cfg: WanVAEConfig, out_channels: int) -> None:
        super().__init__()
        dims = [cfg.dim * m for m in (1, *cfg.dim_mult)]
        self.conv1 = CausalConv3d(3, dims[0], 3, padding=1)
        layers: list[nn.Module] = []
        scale = 1.0
        last = len(cfg.dim_mult) - 1
        for i, (in_dim, out_dim) in enumerate(itertools.pairwise(dims)):
            for _ in range(cfg.num_res_blocks):
                layers.append(ResidualBlock(in_dim, out_dim, cfg.dropout))
                if scale in cfg.attn_scales:
                    layers.append(AttentionBlock(out_dim))
                in_dim = out_dim
            if i != last:
                layers.append(Resample(out_dim, "downsample3d" if cfg.temporal_downsample[i] else "downsample2d"))
                scale /= 2.0
        self.downsamples = nn.Sequential(*layers)
        width = dims[-1]
        self.middle = nn.Sequential(
            ResidualBlock(width, width, cfg.dropout), AttentionBlock(width), ResidualBlock(width, width, cfg.dropout))
        self.head = nn.Sequential(RMSNorm(width, 3), nn.SiLU(), CausalConv3d(width, out_channels, 3, padding=1))

    def forward(self, x: torch.Tensor, state: StreamState | None = None) -> torch.Tensor:
        x = self.conv1(x, state)
        x = _run(self.downsamples, x, state)
        x = _run(self.middle, x, state)
        return _run(self.head, x, state)


class Decoder3d(nn.Module):
    """Latents (B, z_dim, n, h, w) -> video (B, 3, 1 + 4(n-1), 8h, 8w)."""

    def __init__(self, cfg: WanVAEConfig) -> None:
        super().__init__()
        mults = cfg.dim_mult[::-1]
        dims = [cfg.dim * m for m in (mults[0], *mults)]
        temporal_upsample = cfg.temporal_downsample[::-1]
        self.conv1 = CausalConv3d(cfg.z_dim, dims[0], 3, padding=1)
        self.middle = nn.Sequential(
            ResidualBlock(dims[0], dims[0], cfg.dropout), AttentionBlock(dims[0]),
            ResidualBlock(dims[0], dims[0], cfg.dropout))
        layers: list[nn.Module] = []
        scale = 1.0 / 2 ** (len(cfg.dim_mult) - 2)
        last = len(cfg.dim_mult) - 1
        for i, (in_dim, out_dim) in enumerate(itertools.pairwise(dims)):
            if i > 0:  # the previous stage's upsampler halved its width
                in_dim //= 2
            for _ in range(cfg.num_res_blocks + 1):
                layers.append(ResidualBlock(in_dim, out_dim, cfg.dropout))
                if scale in cfg.attn_scales:
                    layers.append(AttentionBlock(out_dim))
                in_dim = out_dim
            if i != last:
                layers.append(Resample(out_dim, "upsample3d" if temporal_upsample[i] else "upsample2d"))
                scale *= 2.0
        self.upsamples = nn.Sequential(*layers)
        self.head = nn.Sequential(RMSNorm(dims[-1], 3), nn.SiLU(), CausalConv3d(dims[-1], 3, 3, padding=1))

    def forward(self, x: torch.Tensor, state: StreamState | None = None) -> torch.Tensor:
        x = self.conv1(x, state)
        x = _run(self.middle, x, state)
        x = _run(self.upsamples, x, state)
        return _run(self.head, x, state)


class WanVAE(nn.Module):
    """Wan2.1 causal video VAE (state-dict compatible with `Wan2.1_VAE.pth`).

    `encode` returns the encoder mean normalised per channel, `decode` takes normalised latents, as the
    Wan2.1 / Cosmos-Predict2 / A2World pipelines use them. Both run chunked by default (first frame alone,
    then `encode_chunk_frames` frames; decoding `decode_chunk_latents` latents at a time) with a
    `StreamState`; `chunked=False` runs the clip in one pass with identical results (and more memory).
    """

    def __init__(self, config: WanVAEConfig | None = None) -> None:
        super().__init__()
        self.config = config or WanVAEConfig()
        cfg = self.config
        self.encoder = Encoder3d(cfg, cfg.z_dim * 2)
        self.conv1 = CausalConv3d(cfg.z_dim * 2, cfg.z_dim * 2, 1)
        self.conv2 = CausalConv3d(cfg.z_dim, cfg.z_dim, 1)
        self.decoder = Decoder3d(cfg)
        self.reset_latent_stats()

    def set_latent_stats(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        """Install fitted per-channel statistics (config `latent_stats: data`); saved with the weights."""
        z = self.config.z_dim
        if self.config.latent_stats != "data":
            raise ValueError(f"latent_stats is {self.config.latent_stats!r}: fitted statistics need "
                             "latent_stats 'data'")
        if tuple(mean.shape) != (z,) or tuple(std.shape) != (z,):
            raise ValueError(f"latent statistics shapes {tuple(mean.shape)}, {tuple(std.shape)}: expected ({z},)")
        if not (torch.isfinite(mean).all() and torch.isfinite(std).all() and (std > 0).all()):
            raise ValueError("latent statistics must be finite with std > 0")
        device = self.conv1.weight.device
        self.latent_mean = mean.detach().float().to(device).clone()
        self.latent_std = std.detach().float().to(device).clone()

    def reset_latent_stats(self) -> None:
        """(Re)create the non-persistent mean/std buffers (not in the checkpoint) from `config.latent_stats`."""
        device = self.conv1.weight.device
        mean, std = latent_stats(self.config.latent_stats, self.config.z_dim)  # validates the name always
        if device.type == "meta":  # built for loading: load_vae calls this again once weights are real
            mean, std = torch.empty_like(mean, device="meta"), torch.empty_like(std, device="meta")
        self.register_buffer("latent_mean", mean.to(device), persistent=False)
        self.register_buffer("latent_std", std.to(device), persistent=False)

    @classmethod
    def from_config(cls, name: str | os.PathLike[str] = "wan2.1") -> WanVAE:
        """A randomly initialised model from a config name (`wan2.1`, `tiny`) or YAML path."""
        return cls(load_vae_config(name))

    @classmethod
    def from_checkpoint(cls, path: str | os.PathLike[str], dtype: torch.dtype = torch.float32,
                        config: WanVAEConfig | str | os.PathLike[str] = "wan2.1",
                        device: str | torch.device = "cpu") -> WanVAE:
        """Load `Wan2.1_VAE.pth` (or our safetensors); see `worldmodel.vae.checkpoint.load_vae`."""
        from worldmodel.vae.checkpoint import load_vae

        return load_vae(path, dtype=dtype, config=config, device=device)

    def save_checkpoint(self, path: str | os.PathLike[str], training: dict | None = None) -> Path:
        """Write the weights (safetensors for *.safetensors, else a torch zip file); see checkpoint.save_vae."""
        from worldmodel.vae.checkpoint import save_vae

        return save_vae(self, path, training)

    # ------------------------------------------------------------------ validation helpers
    @property
    def _param(self) -> torch.Tensor:
        return self.conv1.weight

    def _check_video(self, video: torch.Tensor) -> None:
        f = self.config.spatial_factor
        if video.dim() != 5 or video.shape[1] != 3:
            raise ValueError(f"video shape {tuple(video.shape)}: expected (B, 3, T, H, W)")
        if video.shape[3] % f or video.shape[4] % f:
            raise ValueError(f"video size {video.shape[3]}x{video.shape[4]}: H and W must be multiples of {f}")
        if not video.is_floating_point():
            raise ValueError(f"video dtype {video.dtype}: expected a float tensor in [-1, 1]")
        if video.numel() and not video.is_meta:
            low, high = (float(v) for v in torch.aminmax(video.detach()))
            if low < -1.0 - _RANGE_SLACK or high > 1.0 + _RANGE_SLACK:
                raise ValueError(f"video values span [{low:.3g}, {high:.3g}]; expected [-1, 1] "
                                 "(uint8 frames: x / 127.5 - 1)")

    def _check_latents(self, z: torch.Tensor) -> None:
        if z.dim() != 5 or z.shape[1] != self.config.z_dim:
            raise ValueError(f"latent shape {tuple(z.shape)}: expected (B, {self.config.z_dim}, n, h, w)")

    def _encode_chunks(self, video: torch.Tensor, chunked: bool) -> Iterator[torch.Tensor]:
        if not chunked:
            yield video
            return
        step = self.config.encode_chunk_frames
        yield video[:, :, :1]
        for start in range(1, video.shape[2], step):
            yield video[:, :, start:start + step]

    # ------------------------------------------------------------------ encode / decode
    def encode_moments(self, video: torch.Tensor, chunked: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
        """Raw (un-normalised) encoder mean and log-variance, each (B, z_dim, 1 + (T-1)/4, H/8, W/8)."""
        self._check_video(video)
        latent_frame_count(video.shape[2], self.config.temporal_factor)
        video = video.to(device=self._param.device, dtype=self._param.dtype)
        state = StreamState() if chunked else None
        feats = torch.cat([self.encoder(chunk, state) for chunk in self._encode_chunks(video, chunked)], dim=2)
        mu, log_var = self.conv1(feats).chunk(2, dim=1)
        return mu, log_var

    def encode_windowed(self, video: torch.Tensor, temporal_window: int, normalize: bool = True) -> torch.Tensor:
        """Encode like the Cosmos-Predict2 / A2World tokenizer with `temporal_window`: frame 0, then
        windows of `temporal_window` frames, then the remainder, all through one stream.

        For T = 1 + 4k and a window that is a multiple of 4 this equals `encode`. Other T are accepted
        as the reference accepts them: a remainder of r >= 4 frames yields floor(r / 4) latents
        (A2World encodes its 40-frame two-view Libero history this way: 1|16|16|7 -> 10 latents).
        A remainder of 1-3 frames is rejected, since the reference fails on it too.
        """
        self._check_video(video)
        t = video.shape[2]
        factor = self.config.temporal_factor
        if temporal_window <= 0 or temporal_window % factor:
            raise FrameCountError(f"temporal_window={temporal_window} must be a positive multiple of {factor}")
        remainder = (t - 1) % temporal_window
        if (t - 1) % factor and remainder < factor:
            raise FrameCountError(f"video has {t} frames: with temporal_window={temporal_window} the last window "
                                  f"has {remainder} frames, fewer than {factor}")
        video = video.to(device=self._param.device, dtype=self._param.dtype)
        state = StreamState()
        feats = [self.encoder(video[:, :, :1], state)]
        for start in range(1, t, temporal_window):
            chunk = video[:, :, start:start + temporal_window]
            state.ragged_tail = chunk.shape[2] % factor != 0
            feats.append(self.encoder(chunk, state))
        mu, _ = self.conv1(torch.cat(feats, dim=2)).chunk(2, dim=1)
        return self.normalize(mu) if normalize else mu.float()

    def encode(self, video: torch.Tensor, chunked: bool = True, normalize: bool = True) -> torch.Tensor:
        """Video (B, 3, T, H, W) in [-1, 1] -> latents (B, z_dim, 1 + (T-1)/4, H/8, W/8), float32.

        With `normalize` (default) the mean is normalised per channel: (mu - mean_c) / std_c.
        """
        mu, _ = self.encode_moments(video, chunked=chunked)
        return self.normalize(mu) if normalize else mu.float()

    def decode(self, z: torch.Tensor, chunked: bool = True, normalized: bool = True,
               clamp: bool = True) -> torch.Tensor:
        """Latents (B, z_dim, n, h, w) -> video (B, 3, 1 + 4(n-1), 8h, 8w), float32, clamped to [-1, 1].

        `normalized` says the latents are normalised (as `encode` returns them) and must be de-normalised.
        """
        self._check_latents(z)
        if normalized:
            z = self.denormalize(z)
        z = z.to(device=self._param.device, dtype=self._param.dtype)
        x = self.conv2(z)
        if chunked:
            state = StreamState()
            step = self.config.decode_chunk_latents
            out = torch.cat([self.decoder(x[:, :, s:s + step], state) for s in range(0, x.shape[2], step)], dim=2)
        else:
            out = self.decoder(x)
        out = out.float()
        return out.clamp_(-1.0, 1.0) if clamp else out

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        """Reconstruction: decode(encode(video)) through the encoder mean."""
        return self.decode(self.encode(video))

    # ------------------------------------------------------------------ normalisation
    def normalize(self, mu: torch.Tensor) -> torch.Tensor:
        """(mu - mean) / std per latent channel, float32."""
        return normalize_latents(mu, self.latent_mean, self.latent_std)

    def denormalize(self, z: torch.Tensor) -> torch.Tensor:
        """z * std + mean per latent channel, float32."""
        return denormalize_latents(z, self.latent_mean, self.latent_std)

    # ------------------------------------------------------------------ streaming
    def encode_stream(self) -> EncodeStream:
        """Incremental encoder: push frame 0 (or 1 + 4a frames) first, then 4b frames at a time."""
        return EncodeStream(self)

    def decode_stream(self) -> DecodeStream:
        """Incremental decoder: push latent frames in any chunk sizes; frames come out causally."""
        return DecodeStream(self)


class EncodeStream:
    """Encodes a video arriving piecewise; the latents equal those of encoding the whole video at once."""

    def __init__(self, vae: WanVAE) -> None:
        self.vae = vae
        self.state = StreamState()
        self.frames_seen = 0

    def push(self, frames: torch.Tensor, normalize: bool = True) -> torch.Tensor:
        """Frames (B, 3, t, H, W) -> their latents (B, z_dim, t', H/8, W/8).

        The first push needs 1 + 4a frames (a >= 0), later pushes 4b frames (b >= 1).
        """
        vae = self.vae
        vae._check_video(frames)
        factor = vae.config.temporal_factor
        t = frames.shape[2]
        first = self.frames_seen == 0
        if (first and (t - 1) % factor) or (not first and (t == 0 or t % factor)):
            need = f"1 + {factor}k" if first else f"a positive multiple of {factor}"
            raise FrameCountError(f"encode stream: got {t} frames after {self.frames_seen}; this push needs {need}")
        frames = frames.to(device=vae._param.device, dtype=vae._param.dtype)
        mu, _ = vae.conv1(vae.encoder(frames, self.state)).chunk(2, dim=1)
        self.frames_seen += t
        return vae.normalize(mu) if normalize else mu.float()


class DecodeStream:
    """Decodes latents arriving piecewise; the frames equal those of decoding all latents at once."""

    def __init__(self, vae: WanVAE) -> None:
        self.vae = vae
        self.state = StreamState()
        self.latents_seen = 0

    def push(self, z: torch.Tensor, normalized: bool = True, clamp: bool = True) -> torch.Tensor:
        """Latents (B, z_dim, n, h, w) -> frames: 1 + 4(n-1) for the first push, 4n afterwards."""
        vae = self.vae
        vae._check_latents(z)
        if z.shape[2] == 0:
            raise FrameCountError("decode stream: pushed zero latent frames")
        if normalized:
            z = vae.denormalize(z)
        z = z.to(device=vae._param.device, dtype=vae._param.dtype)
        out = vae.decoder(vae.conv2(z), self.state).float()
        self.latents_seen += z.shape[2]
        return out.clamp_(-1.0, 1.0) if clamp else out
