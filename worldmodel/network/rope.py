"""3D rotary position embedding with the release's temporal (fps) scaling, rotate-half convention.

The head dim splits into t/h/w parts (dim_h = dim_w = head_dim // 6 * 2, dim_t = the rest). Frequencies use
NTK-scaled bases theta_axis = 10000 * ratio ** (d / (d - 2)). With fps modulation (always on in the
released multiview network, see docs/worldmodel.md) the temporal positions are t / fps * base_fps, i.e.
0, 2.4, 4.8, ... at 10 fps. Every view reuses the same positions; views are told apart by the view
embedding and cross-view attention.

The angle table is computed with the buffers' dtype, like the release: after `.to(bfloat16)` the buffers,
the frequencies and the positions are bf16, which quantises the angles exactly as the official
inference does. cos/sin are then taken in fp32 and the rotation is applied in fp32.
"""

from __future__ import annotations

import torch
from torch import nn

from worldmodel.network.layers import compute_dtype


class RopePosition3D(nn.Module):
    """Buffers `seq`, `dim_spatial_range`, `dim_temporal_range` (state-dict compatible) and a cos/sin cache."""

    def __init__(
        self,
        head_dim: int,
        len_h: int,
        len_w: int,
        len_t: int,
        h_extrapolation: float,
        w_extrapolation: float,
        t_extrapolation: float,
        base_fps: float,
        fps_modulation: bool,
    ) -> None:
        super().__init__()
        self.dim_h = head_dim // 6 * 2
        self.dim_t = head_dim - 2 * self.dim_h
        self.max_h, self.max_w, self.max_t = len_h, len_w, len_t
        self.base_fps = base_fps
        self.fps_modulation = fps_modulation
        self.h_ntk = h_extrapolation ** (self.dim_h / (self.dim_h - 2))
        self.w_ntk = w_extrapolation ** (self.dim_h / (self.dim_h - 2))
        self.t_ntk = t_extrapolation ** (self.dim_t / (self.dim_t - 2))
        self.register_buffer("seq", torch.arange(max(len_h, len_w, len_t), dtype=torch.float32))
        self.register_buffer(
            "dim_spatial_range", torch.arange(0, self.dim_h, 2)[: self.dim_h // 2].float() / self.dim_h
        )
        self.register_buffer(
            "dim_temporal_range", torch.arange(0, self.dim_t, 2)[: self.dim_t // 2].float() / self.dim_t
        )
        self._cache: dict[tuple, tuple[torch.Tensor, torch.Tensor]] = {}

    def reset_parameters(self) -> None:
        with torch.no_grad():
            self.seq.copy_(torch.arange(self.seq.numel(), dtype=torch.float32))
            self.dim_spatial_range.copy_(torch.arange(0, self.dim_h, 2)[: self.dim_h // 2].float() / self.dim_h)
            self.dim_temporal_range.copy_(torch.arange(0, self.dim_t, 2)[: self.dim_t // 2].float() / self.dim_t)
        self._cache.clear()

    def angles(self, T: int, H: int, W: int, fps: float) -> torch.Tensor:
        """Angle table (T*H*W, head_dim), fp32 (fp64 for fp64 buffers); tokens (t, h, w), layout [t, h, w] * 2."""
        if self.max_h < H or self.max_w < W or self.max_t < T:
            raise ValueError(f"RoPE: grid (T={T}, H={H}, W={W}) exceeds the table "
                             f"(T<={self.max_t}, H<={self.max_h}, W<={self.max_w})")
        dsr, dtr, seq = self.dim_spatial_range, self.dim_temporal_range, self.seq
        h_freqs = 1.0 / ((10000.0 * self.h_ntk) ** dsr)
        w_freqs = 1.0 / ((10000.0 * self.w_ntk) ** dsr)
        t_freqs = 1.0 / ((10000.0 * self.t_ntk) ** dtr)
        half_h = torch.outer(seq[:H], h_freqs)
        half_w = torch.outer(seq[:W], w_freqs)
        if self.fps_modulation:
            fps_t = torch.full((1,), float(fps), dtype=seq.dtype, device=seq.device)
            half_t = torch.outer(seq[:T] / fps_t * self.base_fps, t_freqs)
        else:
            half_t = torch.outer(seq[:T], t_freqs)
        parts = [
            half_t[:, None, None, :].expand(T, H, W, -1),
            half_h[None, :, None, :].expand(T, H, W, -1),
            half_w[None, None, :, :].expand(T, H, W, -1),
        ]
        return torch.cat(parts * 2, dim=-1).reshape(T * H * W, -1).to(compute_dtype(seq.dtype))

    def cos_sin(self, T: int, H: int, W: int, fps: float) -> tuple[torch.Tensor, torch.Tensor]:
        """Cached fp32 (cos, sin), each (T*H*W, head_dim); recomputed when the buffers change."""
        bufs = (self.seq, self.dim_spatial_range, self.dim_temporal_range)
        key = (T, H, W, float(fps), self.seq.device, *((id(b), b._version, b.dtype) for b in bufs))
        hit = self._cache.get(key)
        if hit is None:
            if len(self._cache) > 16:
                self._cache.clear()
            ang = self.angles(T, H, W, fps)
            hit = (ang.cos(), ang.sin())
            self._cache[key] = hit
        return hit


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate-half RoPE. x: (B, N, heads, d) with N a multiple of P = cos.shape[0] (the table repeats).

    Computed in fp32 and cast back (TE fused `apply_rotary_pos_emb` semantics).
    """
    B, N, Hh, d = x.shape
    P = cos.shape[0]
    xf = x.to(compute_dtype(x.dtype)).view(B, N // P, P, Hh, d)
    c = cos.view(1, 1, P, 1, d)
    s = sin.view(1, 1, P, 1, d)
    x1, x2 = xf[..., : d // 2], xf[..., d // 2 :]
    rotated = torch.cat((-x2, x1), dim=-1)
    return (xf * c + rotated * s).view(B, N, Hh, d).to(x.dtype)
