"""Input and output embeddings: patchify/unpatchify, timestep sinusoid + MLP, the final layer and the
latent-to-context tokenizer (`black_to_crossattn_emb`). Feature orders follow the release exactly.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from worldmodel.network.layers import adaln_lora_modulation, compute_dtype, init_adaln_lora, modulate, trunc_normal_


class Patchify(nn.Module):
    """(B, C, T*r, H*m, W*n) -> (B, T, H, W, C*r*m*n), feature index ((c*r + r_i)*m + m_i)*n + n_i."""

    def __init__(self, spatial: int, temporal: int) -> None:
        super().__init__()
        self.spatial, self.temporal = spatial, temporal

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, C, T, H, W = x.shape
        r, p = self.temporal, self.spatial
        if T % r or H % p or W % p:
            raise ValueError(f"latent (T={T}, H={H}, W={W}) not divisible by patch (t={r}, h=w={p})")
        x = x.view(B, C, T // r, r, H // p, p, W // p, p).permute(0, 2, 4, 6, 1, 3, 5, 7)
        return x.reshape(B, T // r, H // p, W // p, C * r * p * p)


class PatchEmbed(nn.Module):
    """`proj = Sequential(Patchify, Linear(in*r*p*p, D, bias=False))` (keys `proj.1.weight`)."""

    def __init__(self, spatial: int, temporal: int, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.proj = nn.Sequential(
            Patchify(spatial, temporal),
            nn.Linear(in_channels * spatial * spatial * temporal, out_channels, bias=False),
        )

    def init_weights(self) -> None:
        trunc_normal_(self.proj[1].weight, self.proj[1].in_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x)


def unpatchify(x: torch.Tensor, spatial: int, temporal: int, out_channels: int) -> torch.Tensor:
    """(B, T, H, W, p1*p2*t*C) -> (B, C, T*t, H*p1, W*p2); feature index ((p1_i*p2 + p2_i)*t + t_i)*C + c."""
    B, T, H, W, _ = x.shape
    p, r, C = spatial, temporal, out_channels
    x = x.view(B, T, H, W, p, p, r, C).permute(0, 7, 1, 6, 2, 4, 3, 5)
    return x.reshape(B, C, T * r, H * p, W * p)


class Timesteps(nn.Module):
    """Sinusoidal embedding [cos, sin] of per-frame timesteps (B, T) -> (B, T, dim), fp32 math, input dtype out."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dim = dim

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        half = self.dim // 2
        cd = compute_dtype(t.dtype)
        exponent = -math.log(10000) * torch.arange(half, dtype=cd, device=t.device) / half
        angles = t.to(cd)[..., None] * torch.exp(exponent)
        return torch.cat([torch.cos(angles), torch.sin(angles)], dim=-1).to(t.dtype)


class TimestepEmbedding(nn.Module):
    """AdaLN-LoRA timestep MLP: returns (sinusoid itself, linear_2(SiLU(linear_1(sinusoid))) of width 3*D)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.linear_1 = nn.Linear(dim, dim, bias=False)
        self.linear_2 = nn.Linear(dim, 3 * dim, bias=False)

    def init_weights(self) -> None:
        trunc_normal_(self.linear_1.weight, self.linear_1.in_features)
        trunc_normal_(self.linear_2.weight, self.linear_2.in_features)

    def forward(self, sample: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return sample, self.linear_2(F.silu(self.linear_1(sample)))


class FinalLayer(nn.Module):
    """LayerNorm (no affine) -> AdaLN (shift, scale from adaln_modulation(emb) + lora[..., :2D]) -> Linear."""

    def __init__(self, dim: int, spatial: int, temporal: int, out_channels: int, lora_dim: int,
                 eps: float = 1e-6) -> None:
        super().__init__()
        self.dim = dim
        self.layer_norm = nn.LayerNorm(dim, elementwise_affine=False, eps=eps)
        self.linear = nn.Linear(dim, spatial * spatial * temporal * out_channels, bias=False)
        self.adaln_modulation = adaln_lora_modulation(dim, lora_dim, 2)

    def init_weights(self) -> None:
        trunc_normal_(self.linear.weight, self.dim)
        init_adaln_lora(self.adaln_modulation)

    def forward(self, x: torch.Tensor, emb: torch.Tensor, adaln_lora: torch.Tensor) -> torch.Tensor:
        """x (B, V, T, L, D); emb (B, V*T, D); adaln_lora (B, V*T, 3D) -> (B, V, T, L, out)."""
        B, V, T = x.shape[:3]
        mod = self.adaln_modulation(emb) + adaln_lora[..., : 2 * self.dim]
        shift, scale = mod.view(B, V, T, 1, 2 * self.dim).chunk(2, dim=-1)
        return self.linear(modulate(self.layer_norm(x), shift, scale))


class LatentToContext(nn.Module):
    """The release's `LatentToCrossAttEmb`: 3D convs, adaptive pooling to tokens, LayerNorm, residual MLP.

    Used only when "black" latents are passed (the public rollout never does); kept for weight parity.
    (B, C, T, H, W) -> (B, pool_t * pool_h * pool_w, out_dim), token order (t, h, w).
    """

    def __init__(self, in_channels: int, mid_channels: int, out_dim: int, pool: tuple[int, int, int]) -> None:
        super().__init__()
        self.conv_in = nn.Sequential(
            nn.Conv3d(in_channels, mid_channels, kernel_size=3, padding=1),
            nn.GELU(),
            nn.Conv3d(mid_channels, out_dim, kernel_size=3, padding=1),
            nn.GELU(),
        )
        self.pool = nn.AdaptiveAvgPool3d(pool)
        self.token_norm = nn.LayerNorm(out_dim)
        self.token_mlp = nn.Sequential(nn.Linear(out_dim, out_dim * 2), nn.GELU(), nn.Linear(out_dim * 2, out_dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(self.conv_in(x))
        x = x.flatten(2).transpose(1, 2)
        x = self.token_norm(x)
        return x + self.token_mlp(x)
