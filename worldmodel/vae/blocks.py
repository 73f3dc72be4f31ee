"""Building blocks of the Wan2.1 VAE: RMS norm, residual block, spatial attention, resamplers.

Attribute names and `nn.Sequential` positions reproduce the parameter names of `Wan2.1_VAE.pth`
(`residual.{0,2,3,6}`, `shortcut`, `norm.gamma`, `to_qkv`, `proj`, `resample.1`, `time_conv`).
Every block takes an optional `StreamState`; without one it processes the whole clip at once, from the
stream's first frame.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from worldmodel.vae.causal_conv import CausalConv3d
from worldmodel.vae.stream_state import StreamState


def frames_to_images(x: torch.Tensor) -> torch.Tensor:
    """(B, C, T, H, W) -> (B*T, C, H, W), frames of one video consecutive."""
    b, c, t, h, w = x.shape
    return x.transpose(1, 2).reshape(b * t, c, h, w)


def images_to_frames(x: torch.Tensor, batch: int) -> torch.Tensor:
    """(B*T, C, H, W) -> (B, C, T, H, W)."""
    bt, c, h, w = x.shape
    return x.reshape(batch, bt // batch, c, h, w).transpose(1, 2)


class RMSNorm(nn.Module):
    """Channel RMS norm: x / rms_c(x) * gamma, over dim 1; gamma shaped to broadcast over the rest.

    Written as L2-normalise times sqrt(C), the form the checkpoint was trained with.
    """

    def __init__(self, dim: int, spatial_dims: int) -> None:
        super().__init__()
        self.scale = dim**0.5
        self.gamma = nn.Parameter(torch.ones(dim, *([1] * spatial_dims)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(x, dim=1) * self.scale * self.gamma


class ResidualBlock(nn.Module):
    """norm-SiLU-conv3 twice (with dropout before the second conv) plus a 1x1x1 shortcut when widths differ."""

    def __init__(self, in_dim: int, out_dim: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.residual = nn.Sequential(
            RMSNorm(in_dim, 3), nn.SiLU(), CausalConv3d(in_dim, out_dim, 3, padding=1),
            RMSNorm(out_dim, 3), nn.SiLU(), nn.Dropout(dropout), CausalConv3d(out_dim, out_dim, 3, padding=1),
        )
        self.shortcut: nn.Module = CausalConv3d(in_dim, out_dim, 1) if in_dim != out_dim else nn.Identity()

    def forward(self, x: torch.Tensor, state: StreamState | None = None) -> torch.Tensor:
        skip = self.shortcut(x)
        for layer in self.residual:
            x = layer(x, state) if isinstance(layer, CausalConv3d) else layer(x)
        return x + skip


class AttentionBlock(nn.Module):
    """Single-head self-attention over the H*W positions of each frame separately (so causal in time)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.norm = RMSNorm(dim, 2)
        self.to_qkv = nn.Conv2d(dim, dim * 3, 1)
        self.proj = nn.Conv2d(dim, dim, 1)
        nn.init.zeros_(self.proj.weight)

    def forward(self, x: torch.Tensor, state: StreamState | None = None) -> torch.Tensor:
        b, c, _, h, w = x.shape
        images = frames_to_images(x)
        qkv = self.to_qkv(self.norm(images))  # (BT, 3C, H, W), channel groups q | k | v
        qkv = qkv.flatten(2).transpose(1, 2).unsqueeze(1)  # (BT, 1 head, HW, 3C)
        q, k, v = qkv.chunk(3, dim=-1)
        out = F.scaled_dot_product_attention(q, k, v)  # (BT, 1, HW, C)
        out = out.squeeze(1).transpose(1, 2).reshape(-1, c, h, w)
        return x + images_to_frames(self.proj(out), b)


class NearestUpsample2x(nn.Module):
    """2x nearest ('nearest-exact') spatial upsampling, computed in float32 for bfloat16 inputs."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.interpolate(x.float(), scale_factor=2.0, mode="nearest-exact").to(x.dtype)


RESAMPLE_MODES = ("downsample2d", "downsample3d", "upsample2d", "upsample3d")


class Resample(nn.Module):
    """Halve (downsample*) or double (upsample*) H and W; the *3d modes also halve/double time.

    Temporal rules (identical for one-shot and chunked runs):
    - downsample3d: the stream's first frame passes through; the rest is a stride-2, 3-tap conv over
      the frames (the first frame included), so 1 + 2k frames become 1 + k.
    - upsample3d: the first frame passes through; every later frame f becomes two frames from a causal
      3-tap conv (2C output channels: first C -> frame 2f', last C -> frame 2f'+1) that sees later frames
      only (the first frame is replaced by zeros in its history), so 1 + k frames become 1 + 2k.
    """

    def __init__(self, dim: int, mode: str) -> None:
        super().__init__()
        if mode not in RESAMPLE_MODES:
            raise ValueError(f"Resample mode {mode!r} unknown; expected one of {list(RESAMPLE_MODES)}")
        self.mode = mode
        if mode.startswith("upsample"):
            self.resample = nn.Sequential(NearestUpsample2x(), nn.Conv2d(dim, dim // 2, 3, padding=1))
        else:
            self.resample = nn.Sequential(nn.ZeroPad2d((0, 1, 0, 1)), nn.Conv2d(dim, dim, 3, stride=2))
        self.time_conv: nn.Module | None = None
        if mode == "upsample3d":
            self.time_conv = CausalConv3d(dim, dim * 2, (3, 1, 1), padding=(1, 0, 0))
        elif mode == "downsample3d":
            self.time_conv = nn.Conv3d(dim, dim, (3, 1, 1), stride=(2, 1, 1))

    def forward(self, x: torch.Tensor, state: StreamState | None = None) -> torch.Tensor:
        if self.mode == "upsample3d":
            x = self._upsample_time(x, state)
        x = images_to_frames(self.resample(frames_to_images(x)), x.shape[0])
        if self.mode == "downsample3d":
            x = self._downsample_time(x, state)
        return x

    def _upsample_time(self, x: torch.Tensor, state: StreamState | None) -> torch.Tensor:
        at_start = state is None or not state.started(self)
        if state is not None:
            state.mark_started(self)
        head, rest = (x[:, :, :1], x[:, :, 1:]) if at_start else (None, x)
        if rest.shape[2] > 0:
            assert self.time_conv is not None
            doubled = self.time_conv(rest, state)  # (B, 2C, n, H, W)
            b, c2, n, h, w = doubled.shape
            # (B, 2, C, n, ...) -> (B, C, n, 2, ...): each input frame yields its two output frames in order
            rest = doubled.reshape(b, 2, c2 // 2, n, h, w).permute(0, 2, 3, 1, 4, 5).reshape(b, c2 // 2, 2 * n, h, w)
        if head is None:
            return rest
        return torch.cat([head, rest], dim=2) if rest.shape[2] > 0 else head

    def _downsample_time(self, x: torch.Tensor, state: StreamState | None) -> torch.Tensor:
        at_start = state is None or not state.started(self)
        n = x.shape[2]
        if at_start and n % 2 != 1:
            raise ValueError(f"temporal downsample: the first chunk needs an odd frame count here, got {n}")
        if not at_start and n % 2 != 0 and not (state is not None and state.ragged_tail):
            raise ValueError(f"temporal downsample: a continuation chunk needs an even frame count here, got {n}")
        assert self.time_conv is not None
        if at_start:
            out = x if n == 1 else torch.cat([x[:, :, :1], self.time_conv(x)], dim=2)
        else:
            past = state.tail(self) if state is not None else None
            assert past is not None
            out = self.time_conv(torch.cat([past.to(dtype=x.dtype), x], dim=2))
        if state is not None:  # after the conv: the stored tail buffer is updated in place
            state.mark_started(self)
            state.store_tail(self, x[:, :, -1:])
        return out
